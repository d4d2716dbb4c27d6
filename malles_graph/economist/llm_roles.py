"""The LLM roles of the economist scenario: worker, planner, voter.

Each role renders its prompt file (prompts/worker.txt, planner.txt, voter.txt), asks the client for a
schema-validated answer and returns a typed result. Invalid answers are repaired a bounded number of
times by the client; after that the result says ``ok=False`` with the error and nothing is invented.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

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


class PlannerAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")
    rates: list[float] = Field(description="marginal rate per bracket in percent, lowest bracket first")


class VoteAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")
    vote: str = Field(description="letter of the chosen platform")


@dataclass
class RoleResult:
    """One role call: the parsed value (None on failure), the raw answers and the cost."""

    value: object | None
    error: str | None
    texts: list[str] = field(default_factory=list)
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def ok(self) -> bool:
        return self.value is not None


def _call(
    client: LLMClient,
    prompt: str,
    schema: type[BaseModel],
    validator,
    max_retries: int,
    seed: int | None,
    max_tokens: int | None = None,
) -> RoleResult:
    res = client.structured(
        [HumanMessage(content=prompt)], schema, validator=validator, max_retries=max_retries, seed=seed,
        max_tokens=max_tokens,
    )
    return RoleResult(
        value=res.value,
        error=res.error,
        texts=[a.text for a in res.attempts],
        calls=len(res.attempts),
        prompt_tokens=res.prompt_tokens,
        completion_tokens=res.completion_tokens,
    )


def hours_validator(grid: Sequence[float]):
    allowed = {int(h) for h in grid}

    def check(answer: WorkerAnswer) -> list[str]:
        if answer.hours not in allowed:
            return [f"hours must be one of {sorted(allowed)}, got {answer.hours}"]
        return []

    return check


def worker_prompt(
    persona: str,
    step: int,
    schedule: TaxSchedule,
    grid: Sequence[float],
    cost: float,
    exponent: float,
    rebate: float,
    own_history: str,
) -> str:
    return load_prompt("worker").render(
        persona=persona,
        step=step,
        schedule=schedule.describe(),
        hours_grid=", ".join(str(int(h)) for h in grid),
        hours_max=int(max(grid)),
        labour_cost=f"{cost:.4g} x hours^{exponent:g} dollars a year "
        f"(e.g. {cost * 40**exponent:,.0f} $ at 40 hours, {cost * 60**exponent:,.0f} $ at 60 hours)",
        rebate=f"{rebate:,.0f}",
        own_history=own_history or "(none yet)",
    )


def ask_worker(client: LLMClient, prompt: str, grid: Sequence[float], max_retries: int, seed: int | None = None) -> RoleResult:
    return _call(client, prompt, WorkerAnswer, hours_validator(grid), max_retries, seed)


def planner_validator(n_brackets: int):
    def check(answer: PlannerAnswer) -> list[str]:
        problems = []
        if len(answer.rates) != n_brackets:
            problems.append(f"rates needs exactly {n_brackets} numbers, got {len(answer.rates)}")
        bad = [r for r in answer.rates if not 0 <= r <= 100]
        if bad:
            problems.append(f"every rate must be in [0, 100] percent, got {bad}")
        return problems

    return check


def planner_prompt(
    step: int, objective: str, schedule: TaxSchedule, history: str, max_change: float, n_workers: int
) -> str:
    return load_prompt("planner").render(
        step=step,
        objective=objective,
        objective_text=OBJECTIVE_TEXT[objective],
        schedule=schedule.describe(),
        history=history or "(no history yet)",
        max_change=f"{max_change:g}",
        n_workers=n_workers,
        brackets=", ".join(f"${t:,.0f}" for t in schedule.thresholds),
        n_brackets=len(schedule.rates),
    )


def ask_planner(
    client: LLMClient, prompt: str, n_brackets: int, max_retries: int, seed: int | None = None, max_tokens: int | None = None
) -> RoleResult:
    return _call(client, prompt, PlannerAnswer, planner_validator(n_brackets), max_retries, seed, max_tokens)


def voter_prompt(persona: str, current_income: float, platforms: dict[str, TaxSchedule]) -> tuple[str, dict[str, str]]:
    """The ballot prompt and the letter -> platform name mapping."""
    letters = {}
    blocks = []
    for i, (name, sched) in enumerate(platforms.items()):
        letter = chr(ord("A") + i)
        letters[letter] = name
        blocks.append(f"Platform {letter}:\n{sched.describe()}")
    prompt = load_prompt("voter").render(
        persona=persona,
        current_income=f"{current_income:,.0f}",
        platforms="\n".join(blocks),
        letters=", ".join(letters),
    )
    return prompt, letters


def ask_voter(client: LLMClient, prompt: str, letters: Sequence[str], max_retries: int, seed: int | None = None) -> RoleResult:
    allowed = set(letters)

    def check(answer: VoteAnswer) -> list[str]:
        return [] if answer.vote.strip().upper() in allowed else [f"vote must be one of {sorted(allowed)}, got {answer.vote!r}"]

    return _call(client, prompt, VoteAnswer, check, max_retries, seed)
