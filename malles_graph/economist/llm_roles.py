"""The LLM roles of the economist scenario: worker, planner, voter and (democratic mode) candidate.

Each role renders its prompt file (prompts/worker.txt, planner.txt, voter.txt, candidate.txt) and asks the
client for an answer constrained by a JSON schema the server enforces (llama.cpp turns it into a grammar;
OpenAI-compatible servers and Ollama take it as the response format): hours from the grid as an enum, one
integer rate per bracket within its allowed range, a ballot letter as an enum. The same limits are checked
again after parsing (for servers that ignore the schema); an invalid answer is repaired a bounded number
of times by the client, after that the result says ``ok=False`` with the error and nothing is invented.
Prompts carry no example answer a small model could copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.messages import HumanMessage
from pydantic import BaseModel, ConfigDict, Field

from malles_graph.backends import LLMClient
from malles_graph.economist.tax import TaxSchedule
from malles_graph.prompts import load_prompt

OBJECTIVE_TEXT = {
    "skill_weighted": "the average utility of workers, each weighted by 1 / (their earning ability), so gains to "
    "workers with low earning ability count more",
    "utilitarian": "the plain average utility of all workers (after-tax income plus rebate minus strain of work)",
    "inverse_income": "the average of each worker's utility divided by their pre-tax income",
}


class WorkerAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")
    hours: int = Field(description="weekly hours of work")


class VoteAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")
    vote: str = Field(description="letter of the chosen platform")


class RatesAnswer(BaseModel):
    """One integer rate per bracket, keys bracket_1 ... bracket_n (extra keys are ignored)."""

    model_config = ConfigDict(extra="allow")

    def rates(self, n: int) -> list[float] | None:
        extra = self.model_extra or {}
        values = [extra.get(f"bracket_{k + 1}") for k in range(n)]
        if any(not isinstance(v, int | float) or isinstance(v, bool) for v in values):
            return None
        return [float(v) for v in values]  # type: ignore[arg-type]


@dataclass
class RoleResult:
    """One role call: the parsed value (None on failure), the raw answers and the cost."""

    value: Any | None
    error: str | None
    texts: list[str] = field(default_factory=list)
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0  # of prompt_tokens, read from the server's prompt cache

    @property
    def ok(self) -> bool:
        return self.value is not None


def _folder(prompts: str | Path | None) -> Path | None:
    return Path(prompts) if prompts else None


def _call(client: LLMClient, prompt: str, schema: type[BaseModel], json_schema: dict, validator, max_retries: int,
          seed: int | None, max_tokens: int | None = None) -> RoleResult:
    res = client.structured(
        [HumanMessage(content=prompt)], schema, validator=validator, max_retries=max_retries, seed=seed,
        max_tokens=max_tokens, json_schema=json_schema,
    )
    return RoleResult(value=res.value, error=res.error, texts=[a.text for a in res.attempts], calls=len(res.attempts),
                      prompt_tokens=res.prompt_tokens, completion_tokens=res.completion_tokens,
                      cached_prompt_tokens=res.cached_prompt_tokens)


# -- worker ----------------------------------------------------------------------------------------
def worker_schema(grid: Sequence[float]) -> dict:
    hours = sorted({int(h) for h in grid})
    return {"type": "object", "properties": {"hours": {"type": "integer", "enum": hours}}, "required": ["hours"],
            "additionalProperties": False}


def worker_prompt(persona: str, step: int, schedule: TaxSchedule, grid: Sequence[float], cost: float, exponent: float,
                  rebate: float, own_history: str, prompts: str | Path | None = None) -> str:
    """``prompts``: the run's prompt folder (None: $MALLES_PROMPTS, else the bundled prompts); likewise below."""
    strain = ", ".join(f"{int(h)} h ${cost * h**exponent:,.0f}" for h in grid)
    return load_prompt("worker", _folder(prompts)).render(
        persona=persona,
        step=step,
        schedule=schedule.describe(),
        hours_grid=", ".join(str(int(h)) for h in grid),
        hours_max=int(max(grid)),
        labour_cost=f"in dollars a year by weekly hours: {strain}",
        rebate=f"{rebate:,.0f}",
        own_history=own_history or "(none yet)",
    )


def ask_worker(client: LLMClient, prompt: str, grid: Sequence[float], max_retries: int, seed: int | None = None
               ) -> RoleResult:
    allowed = {int(h) for h in grid}

    def check(answer: WorkerAnswer) -> list[str]:
        return [] if answer.hours in allowed else [f"hours must be one of {sorted(allowed)}, got {answer.hours}"]

    return _call(client, prompt, WorkerAnswer, worker_schema(grid), check, max_retries, seed)


# -- planner and candidates: bounded integer rates ----------------------------------------------------
def rate_bounds(centre: Sequence[float], max_change: float) -> list[tuple[int, int]]:
    """Whole-percent range of each bracket: within ``max_change`` points of ``centre``, inside [0, 100]."""
    return [(max(0, int(np.ceil(c - max_change - 1e-9))), min(100, int(np.floor(c + max_change + 1e-9))))
            for c in centre]


def rates_schema(bounds: Sequence[tuple[int, int]]) -> dict:
    props = {f"bracket_{k + 1}": {"type": "integer", "minimum": lo, "maximum": hi} for k, (lo, hi) in enumerate(bounds)}
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


def describe_bounds(schedule: TaxSchedule, bounds: Sequence[tuple[int, int]]) -> str:
    lines = []
    for k, (lo, hi) in enumerate(bounds):
        t = schedule.thresholds
        band = f"${t[k]:,.0f} to ${t[k + 1]:,.0f}" if k + 1 < len(t) else f"${t[k]:,.0f} and above"
        lines.append(f"  bracket_{k + 1} ({band}): {lo} to {hi}")
    return "\n".join(lines)


def ask_rates(client: LLMClient, prompt: str, bounds: Sequence[tuple[int, int]], max_retries: int,
              seed: int | None = None, max_tokens: int | None = None) -> RoleResult:
    """Rates within ``bounds`` (value: the list of rates), or a recorded failure."""
    n = len(bounds)

    def check(answer: RatesAnswer) -> list[str]:
        rates = answer.rates(n)
        if rates is None:
            return [f"give a number for each of bracket_1 ... bracket_{n}"]
        return [f"bracket_{k + 1} must be in [{lo}, {hi}], got {r:g}"
                for k, (r, (lo, hi)) in enumerate(zip(rates, bounds, strict=True)) if not lo <= r <= hi]

    out = _call(client, prompt, RatesAnswer, rates_schema(bounds), check, max_retries, seed, max_tokens)
    if out.ok:
        out.value = out.value.rates(n)
    return out


def planner_prompt(step: int, objective: str, schedule: TaxSchedule, history: str, best: TaxSchedule,
                   best_welfare: float, bounds: Sequence[tuple[int, int]], max_change: float, n_workers: int,
                   prompts: str | Path | None = None) -> str:
    return load_prompt("planner", _folder(prompts)).render(
        step=step, objective=objective, objective_text=OBJECTIVE_TEXT[objective], schedule=schedule.describe(),
        history=history or "(no history yet)", best=best.describe(), best_welfare=f"{best_welfare:,.1f}",
        allowed=describe_bounds(schedule, bounds), keys=", ".join(f"bracket_{k + 1}" for k in range(len(bounds))),
        max_change=f"{max_change:g}", n_workers=n_workers, brackets=", ".join(f"${t:,.0f}" for t in schedule.thresholds),
        n_brackets=len(schedule.rates),
    )


def candidate_prompt(persona: str, current_income: float, schedule: TaxSchedule, bounds: Sequence[tuple[int, int]],
                     prompts: str | Path | None = None) -> str:
    return load_prompt("candidate", _folder(prompts)).render(
        persona=persona, current_income=f"{current_income:,.0f}", n_brackets=len(schedule.rates),
        brackets=", ".join(f"${t:,.0f}" for t in schedule.thresholds), schedule=schedule.describe(),
        allowed=describe_bounds(schedule, bounds), keys=", ".join(f"bracket_{k + 1}" for k in range(len(bounds))),
    )


# -- voter: ballot in a shuffled order -----------------------------------------------------------------
def voter_prompt(persona: str, current_income: float, platforms: dict[str, TaxSchedule], rng: np.random.Generator,
                 prompts: str | Path | None = None) -> tuple[str, dict[str, str]]:
    """The ballot prompt (platforms in a random order per voter) and the letter -> platform name mapping."""
    names = list(platforms)
    order = [names[i] for i in rng.permutation(len(names))]
    letters = {chr(ord("A") + i): name for i, name in enumerate(order)}
    blocks = [f"Platform {letter}:\n{platforms[name].describe()}" for letter, name in letters.items()]
    prompt = load_prompt("voter", _folder(prompts)).render(persona=persona, current_income=f"{current_income:,.0f}",
                                         platforms="\n".join(blocks), letters=", ".join(letters))
    return prompt, letters


def ask_voter(client: LLMClient, prompt: str, letters: Sequence[str], max_retries: int, seed: int | None = None
              ) -> RoleResult:
    allowed = list(letters)
    schema = {"type": "object", "properties": {"vote": {"type": "string", "enum": allowed}}, "required": ["vote"],
              "additionalProperties": False}

    def check(answer: VoteAnswer) -> list[str]:
        return [] if answer.vote.strip().upper() in allowed else [f"vote must be one of {allowed}, got {answer.vote!r}"]

    return _call(client, prompt, VoteAnswer, schema, check, max_retries, seed)
