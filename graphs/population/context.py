"""Run configuration of the population supervisor (LangGraph ``context_schema``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ConfigDict
from pydantic.json_schema import SkipJsonSchema

from malles_graph.population.environment import Environment
from malles_graph.population.reporters import DataCollector


@dataclass(kw_only=True)
class PopulationContext:
    """How the supervisor runs: the mean-field constants and its collaborators.

    Collaborators (agent context, environment, collector) are objects set in code and left out of
    the JSON schema that ``langgraph dev`` shows; a JSON context gets the defaults for them.
    """

    __pydantic_config__ = ConfigDict(arbitrary_types_allowed=True)

    damping: float = field(default=0.5, metadata={"description": "a in m(t+1) = (1-a) m(t) + a mu(t), in (0, 1]"})
    epsilon: float = field(default=0.01, metadata={"description": "stop when TV(m(t+1), m(t)) falls below this"})
    max_rounds: int = field(default=5, metadata={"description": "round limit"})
    agent_context: SkipJsonSchema[Any] = field(
        default=None, metadata={"description": "runtime context handed to the agent subgraph (e.g. DecisionContext)"}
    )
    environment: SkipJsonSchema[Environment | None] = field(
        default=None, metadata={"description": "the market the agents face; the graph's default environment when empty"}
    )
    collector: SkipJsonSchema[DataCollector | None] = field(
        default=None, metadata={"description": "reporters computing per-round metrics; the defaults when empty"}
    )
    executor: SkipJsonSchema[Any] = field(
        default=None,
        metadata={"description": "where the agent graphs run (graphs/population/executor.py); in this process when empty"},
    )


def resolve(ctx: PopulationContext | dict[str, Any] | None) -> PopulationContext:
    """The run's context; a plain dict (JSON from a server) is coerced, nothing given means the defaults."""
    if ctx is None:
        return PopulationContext()
    if isinstance(ctx, dict):
        return PopulationContext(**ctx)
    return ctx
