"""The Environment protocol: what the population supervisor needs from a market (or a planner).

The supervisor graph (``graphs/population.py``) is generic. It knows agents, weights and the
mean-field m; everything domain-specific sits behind three methods:

``initial(agents, n_customers) -> (market, m0)``
    The starting market state (a JSON-able dict the environment owns) and the initial m.
``situations(market, m, agents, number) -> list[AgentTask]``
    What each agent is sent this round: the agent subgraph's ``situation`` (retail: a
    ``ChoiceSituation`` with current prices, in-stock candidates and a ``MarketSignal`` built
    from m), or a fixed ``outcome`` when there is nothing to decide (everything sold out).
``update(market, aggregate, number) -> EnvironmentStep``
    The market's response to the round's aggregate demand (retail: prices, promotions, stock;
    economist: the tax planner's move), with figures for the round report.

Markets are plain dicts so they checkpoint as JSON and any environment fits the same state;
environments validate them into their own pydantic model inside the methods.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from malles_graph.agents import AgentOutcome
from malles_graph.population.meanfield import Aggregate


class AgentSpec(BaseModel):
    """A simulated representative: who it is, which archetype it stands for, with what weight."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    agent_id: str = Field(min_length=1)
    archetype: int = Field(ge=0)
    weight: float = Field(gt=0, le=1, description="archetype mass / representatives")
    base: Any = Field(default=None, description="environment-specific template (retail: a ChoiceSituation)")


class AgentTask(BaseModel):
    """One agent's work in one round: a situation for the agent graph, or an already fixed outcome."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    agent_id: str
    archetype: int = Field(ge=0)
    weight: float = Field(ge=0)
    situation: Any = None
    outcome: AgentOutcome | None = Field(default=None, description="set when no decision is needed")


class EnvironmentStep(BaseModel):
    """The environment's answer to one round of demand."""

    model_config = ConfigDict(extra="forbid")

    market: dict[str, Any]
    demand: dict[str, float] = Field(default_factory=dict, description="units demanded by the population per option")
    prices: dict[str, float] = Field(default_factory=dict, description="prices set for the next round")
    figures: dict[str, float] = Field(default_factory=dict, description="named numbers for reporters")


@runtime_checkable
class Environment(Protocol):
    """A market (or planner) the population supervisor loops with. See the module docstring."""

    name: str

    def initial(self, agents: list[AgentSpec], n_customers: int) -> tuple[dict[str, Any], dict[str, float]]: ...

    def situations(
        self, market: dict[str, Any], m: dict[str, float], agents: list[AgentSpec], number: int
    ) -> list[AgentTask]: ...

    def update(self, market: dict[str, Any], aggregate: Aggregate, number: int) -> EnvironmentStep: ...
