"""Token accounting: prompt, cached and completion tokens per role, agent, round and run, and their cost.

Every LLM turn in a transcript carries its own token counts; this module only adds them up,
so the same figures appear in the store, ``malles show``, the run summary, the TUI and the
prompt experiments.

``prompt_tokens`` is the whole prompt; ``cached_prompt_tokens`` is the part of it the server read
from its prompt cache (llama.cpp slot cache, OpenAI/vLLM prefix cache). Answers replayed from our
own response cache keep the figures of the call that first made them (so a rerun shows the same
numbers) and are counted in ``replayed``. The cost is the price of all these tokens, i.e. what the
run costs without the response cache; the replayed share of it was paid by the first call.

Cost, in US dollars, from the scenario's price table (``prices``, USD per 1M tokens)::

    (prompt - cached) x prompt_per_1m + cached x cached_per_1m + completion x completion_per_1m

with ``cached_per_1m`` = ``prompt_per_1m`` when the table gives none. The table is looked up by
:func:`priced_model`: ``backend.model`` (for the ``local`` backend, the GGUF file name without its
folder) or, when empty, the backend's default model (:data:`DEFAULT_MODELS`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from malles_graph.agents import TranscriptTurn
from malles_graph.scenario import LLM_BACKENDS, BackendConfig, ModelPrice, Scenario

# The model a backend calls when backend.model is empty (what its price-table entry is named).
DEFAULT_MODELS = {"local": "SmolLM2-135M-Instruct.Q4_1.gguf", "openai": "gpt-4o-mini", "ollama": "llama3.2"}


class TokenUsage(BaseModel):
    """Tokens spent by some group of LLM calls."""

    model_config = ConfigDict(extra="forbid")

    calls: int = 0
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0  # prompt tokens the server read from its prompt cache
    completion_tokens: int = 0
    replayed: int = 0  # of calls, answers served by the response cache (their tokens were paid once, earlier)

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            calls=self.calls + other.calls,
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            cached_prompt_tokens=self.cached_prompt_tokens + other.cached_prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            replayed=self.replayed + other.replayed,
        )

    @property
    def uncached_prompt_tokens(self) -> int:
        return max(0, self.prompt_tokens - self.cached_prompt_tokens)

    @property
    def cache_hit_rate(self) -> float:
        """Share of prompt tokens served from the server's prompt cache."""
        return self.cached_prompt_tokens / self.prompt_tokens if self.prompt_tokens else 0.0


def turn_usage(turn: TranscriptTurn) -> TokenUsage:
    """The tokens of one turn (computed turns and system notes cost nothing)."""
    if not (turn.prompt_tokens or turn.completion_tokens):
        return TokenUsage()
    return TokenUsage(
        calls=1,
        prompt_tokens=turn.prompt_tokens,
        cached_prompt_tokens=turn.cached_prompt_tokens,
        completion_tokens=turn.completion_tokens,
        replayed=int(turn.cached),
    )


def usage_by(turns: Iterable[TranscriptTurn], key: Callable[[TranscriptTurn], Hashable]) -> dict[Any, TokenUsage]:
    """Tokens per ``key(turn)`` (role, agent, round, ...), in first-seen order; turns without tokens skipped."""
    out: dict[Any, TokenUsage] = {}
    for turn in turns:
        used = turn_usage(turn)
        if used.calls:
            group = key(turn)
            out[group] = out.get(group, TokenUsage()) + used
    return out


def usage_by_role(turns: Iterable[TranscriptTurn]) -> dict[str, TokenUsage]:
    """Tokens per role (product_specialist, price_analyst, persona, decide, ...), in first-seen order."""
    return usage_by(turns, lambda t: t.role)


def usage_by_agent(turns: Iterable[TranscriptTurn]) -> dict[str, TokenUsage]:
    return usage_by(turns, lambda t: t.agent_id)


def usage_by_round(turns: Iterable[TranscriptTurn]) -> dict[int, TokenUsage]:
    return usage_by(turns, lambda t: t.round)


def total_usage(turns: Iterable[TranscriptTurn]) -> TokenUsage:
    return sum((turn_usage(t) for t in turns), TokenUsage())


# -- cost ------------------------------------------------------------------------------------------
def cost_usd(usage: TokenUsage, price: ModelPrice) -> float:
    """What ``usage`` costs at ``price`` (cached prompt tokens at the prompt price when none is given)."""
    cached_price = price.prompt_per_1m if price.cached_per_1m is None else price.cached_per_1m
    return (
        usage.uncached_prompt_tokens * price.prompt_per_1m
        + usage.cached_prompt_tokens * cached_price
        + usage.completion_tokens * price.completion_per_1m
    ) / 1_000_000


def priced_model(backend: BackendConfig) -> str | None:
    """The name looked up in the price table for ``backend`` (None for backends that call no LLM)."""
    if backend.name not in LLM_BACKENDS:
        return None
    if not backend.model:
        return DEFAULT_MODELS[backend.name]
    return os.path.basename(backend.model) if backend.name == "local" else backend.model


def price_problem(scenario: Scenario) -> str | None:
    """One line when the scenario has a price table that lacks the model in use (None: it can be priced or has none)."""
    model = priced_model(scenario.backend)
    if not scenario.prices or model is None or model in scenario.prices:
        return None
    where = f"backend.model of backend {scenario.backend.name!r}" if scenario.backend.model else (
        f"the default model of backend {scenario.backend.name!r}")
    return (f"prices has no entry for model {model!r} ({where}); priced models: "
            f"{', '.join(sorted(scenario.prices))} (add it, or remove prices to show tokens without cost)")


def model_price(scenario: Scenario) -> ModelPrice | None:
    """The price of the scenario's model, None when the table is empty or lacks it."""
    model = priced_model(scenario.backend)
    return scenario.prices.get(model) if model is not None else None


class UsageReport(BaseModel):
    """A run's tokens: in total, per role and per round, with the cache hit rate and the cost when priced."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(default=None, description="the model name looked up in the price table")
    price: ModelPrice | None = Field(default=None, description="its price (None: no price table, or it lacks the model)")
    total: TokenUsage = Field(default_factory=TokenUsage)
    by_role: dict[str, TokenUsage] = Field(default_factory=dict)
    by_round: dict[int, TokenUsage] = Field(default_factory=dict)
    cache_hit_rate: float = Field(default=0.0, description="share of prompt tokens read from the server's prompt cache")
    cost_usd: float | None = Field(default=None, description="None when unpriced")
    cost_by_role: dict[str, float] = Field(default_factory=dict)

    def cost_of(self, usage: TokenUsage) -> float | None:
        return cost_usd(usage, self.price) if self.price is not None else None


def usage_report(
    by_role: dict[str, TokenUsage], by_round: dict[int, TokenUsage], scenario: Scenario | None = None
) -> UsageReport:
    """The report of a run from its per-role and per-round sums (each covers every turn once)."""
    total = sum(by_role.values(), TokenUsage())
    model = priced_model(scenario.backend) if scenario is not None else None
    price = model_price(scenario) if scenario is not None else None
    return UsageReport(
        model=model, price=price, total=total, by_role=by_role, by_round=by_round,
        cache_hit_rate=total.cache_hit_rate,
        cost_usd=cost_usd(total, price) if price is not None else None,
        cost_by_role={role: cost_usd(u, price) for role, u in by_role.items()} if price is not None else {},
    )


def report_from_turns(turns: Iterable[TranscriptTurn], scenario: Scenario | None = None) -> UsageReport:
    """The report of turns held in memory (the TUI's live figures)."""
    turns = list(turns)
    return usage_report(usage_by_role(turns), usage_by_round(turns), scenario)
