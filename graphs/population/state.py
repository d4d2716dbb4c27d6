"""State schemas of the population supervisor: input, full state, output, and one Send's payload."""

from __future__ import annotations

import operator
from typing import Annotated, Any

from typing_extensions import TypedDict  # pydantic needs it for JSON schemas on Python < 3.12

from malles_graph.events import ArchetypeInfo, DecisionFinished
from malles_graph.population.environment import AgentSpec, AgentTask
from malles_graph.population.meanfield import Aggregate, WeightedOutcome
from malles_graph.population.reporters import RoundReport


def round_outcomes(current: list[WeightedOutcome] | None, update: list[WeightedOutcome] | None) -> list[WeightedOutcome]:
    """Reducer of the round's outcomes: append; ``None`` clears (at the start of each round)."""
    if update is None:
        return []
    return (current or []) + update


class PopulationInput(TypedDict, total=False):
    agents: list[AgentSpec]
    n_customers: int
    archetypes: list[ArchetypeInfo]
    market: dict[str, Any]
    m: dict[str, float]


class PopulationState(TypedDict, total=False):
    agents: list[AgentSpec]
    n_customers: int
    archetypes: list[ArchetypeInfo]
    market: dict[str, Any]
    m: dict[str, float]
    round: int
    tasks: list[AgentTask]
    fixed: list[WeightedOutcome]
    outcomes: Annotated[list[WeightedOutcome], round_outcomes]
    # The round's decision events, also written with each agent's result: a run stopped before their
    # events reached the recorder records them from the checkpoint (graphs/run/handle.py, _recover).
    decided: Annotated[list[DecisionFinished], round_outcomes]
    aggregate: Aggregate
    demand: dict[str, float]
    prices: dict[str, float]
    figures: dict[str, float]
    reports: Annotated[list[RoundReport], operator.add]
    converged: bool


class PopulationOutput(TypedDict):
    round: int
    market: dict[str, Any]
    m: dict[str, float]
    reports: list[RoundReport]
    converged: bool


class AgentPayload(TypedDict):
    """What one Send to ``run_agent`` carries."""

    task: AgentTask
    round: int
