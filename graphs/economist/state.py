"""State schemas of the economist graph: input, full state, output, and the worker subgraph's state.

Only what must survive a checkpoint is here, all plain JSON-able values: the step, the rates in force,
the per-step figures, the credited observations, the incumbent, the planner's log and the values told to
its CMA-ES, the votes, and the memory of the simulated LLM workers (a few per representative). Random
draws are derived from (seed, step, purpose), so no generator state is needed to resume. Every list
field declares its reducer.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any

from typing_extensions import TypedDict  # pydantic needs it for JSON schemas on Python < 3.12


def merge_decisions(old: list[dict] | None, new: list[dict] | None) -> list[dict]:
    """Append worker decisions; ``None`` clears them (aggregate does this after each step)."""
    if new is None:
        return []
    return (old or []) + new


def replace(_old: Any, new: Any) -> Any:
    """Reducer: the latest write wins."""
    return new


class EconomistInput(TypedDict, total=False):
    """Nothing is needed: the setup node builds the first state from the runtime context."""


class EconomistState(TypedDict, total=False):
    step: int  # the step being simulated (1-based)
    rates: list[float]  # marginal rates in force, percent
    source: str  # who set them: initial, planner, vote:<platform>, leader:<worker>
    rebate: float  # last step's rebate per worker
    rep_hours: list[float | None]  # last valid hours of each simulated LLM worker
    rep_income: list[float]  # last income of each simulated LLM worker (for ballots and candidates)
    rep_memory: Annotated[list[list[str]], replace]
    decisions: Annotated[list[dict], merge_decisions]
    history: Annotated[list[dict], operator.add]  # one row of figures per step
    observations: Annotated[list[dict], operator.add]  # credited (schedule, welfare) pairs
    credited_to: int  # the last step whose row has been credited
    incumbent: dict | None  # the best observation so far
    pending: list[float] | None  # the planner's proposal still waiting for its observation
    told: Annotated[list[float], replace]  # welfare values told to the CMA-ES, in ask order
    planner_log: Annotated[list[dict], operator.add]
    votes: Annotated[list[dict], operator.add]
    final_rates: list[float]  # the incumbent's rates, set when the run ends


class EconomistOutput(TypedDict, total=False):
    rates: list[float]
    final_rates: list[float]
    incumbent: dict | None
    history: list[dict]
    observations: list[dict]
    planner_log: list[dict]
    votes: list[dict]


class WorkerState(TypedDict, total=False):
    slot: int
    step: int
    rates: list[float]
    rebate: float
    memory: list[str]
    decisions: Annotated[list[dict], merge_decisions]


__all__ = ["EconomistInput", "EconomistOutput", "EconomistState", "WorkerState", "merge_decisions"]
