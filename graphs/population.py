"""The population supervisor: representatives decide in parallel, the market responds, m is damped.

Shape (pinned by tests/population/test_graph.py)::

    START -> prepare -> start_round -> (Send per representative) run_agent -> aggregate
          -> environment -> mean_field -> start_round (next round) | END

* ``prepare``: the environment's initial market and m0 (skipped when the input carries them).
* ``start_round``: the environment turns (market, m) into one task per representative; tasks
  with nothing to decide carry a fixed outcome and go straight into the round's outcomes.
* ``run_agent``: invokes the agent subgraph with ``{"agent_id", "situation"}`` (the contract of
  :mod:`malles_graph.agents`) and records the outcome (idempotently) through the recorder.
  Fan-out concurrency is bounded by ``max_concurrency`` in the run config.
* ``aggregate``: weighted outcomes -> mu, units per customer, failure share.
* ``environment``: the market's response (retail: prices, promotions, stock).
* ``mean_field``: m(t+1) = (1 - a) m(t) + a mu(t); stop when TV(m(t+1), m(t)) < epsilon or at
  ``max_rounds``; one :class:`RoundReport` per round.

The agent graph and the environment are parameters of :func:`build_population_graph`, so the
same supervisor drives retail customers or any other agents behind the
:class:`~malles_graph.population.environment.Environment` protocol.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.types import Send
from pydantic import ConfigDict
from pydantic.json_schema import SkipJsonSchema
from typing_extensions import TypedDict  # pydantic needs it for JSON schemas on Python < 3.12

from malles_graph.agents import AgentOutcome
from malles_graph.population.environment import AgentSpec, AgentTask, Environment
from malles_graph.population.meanfield import (
    Aggregate,
    WeightedOutcome,
    aggregate,
    converged,
    damped_update,
    total_variation,
)
from malles_graph.population.recorder import Recorder
from malles_graph.population.reporters import DataCollector, RoundReport
from malles_graph.population.retail import RetailEnvironment


# -- configuration -----------------------------------------------------------------------------
@dataclass(kw_only=True)
class PopulationContext:
    """Run configuration of the supervisor (LangGraph ``context_schema``).

    Collaborators (agent context, recorder, collector) are objects set in code and left out of
    the JSON schema that ``langgraph dev`` shows.
    """

    __pydantic_config__ = ConfigDict(arbitrary_types_allowed=True)

    run_id: str = field(default="run", metadata={"description": "run id used for recorded rows"})
    damping: float = field(default=0.5, metadata={"description": "a in m(t+1) = (1-a) m(t) + a mu(t), in (0, 1]"})
    epsilon: float = field(default=0.01, metadata={"description": "stop when TV(m(t+1), m(t)) falls below this"})
    max_rounds: int = field(default=5, metadata={"description": "round limit"})
    agent_context: SkipJsonSchema[Any] = field(
        default=None, metadata={"description": "runtime context handed to the agent subgraph (e.g. DecisionContext)"}
    )
    recorder: SkipJsonSchema[Recorder | None] = field(
        default=None, metadata={"description": "where decisions and rounds are written; nothing is stored when empty"}
    )
    collector: SkipJsonSchema[DataCollector | None] = field(
        default=None, metadata={"description": "reporters computing per-round metrics; the defaults when empty"}
    )


# -- state -------------------------------------------------------------------------------------
def round_outcomes(current: list[WeightedOutcome] | None, update: list[WeightedOutcome] | None) -> list[WeightedOutcome]:
    """Reducer of the round's outcomes: append; ``None`` clears (at the start of each round)."""
    if update is None:
        return []
    return (current or []) + update


class PopulationInput(TypedDict, total=False):
    agents: list[AgentSpec]
    n_customers: int
    market: dict[str, Any]
    m: dict[str, float]


class PopulationState(TypedDict, total=False):
    agents: list[AgentSpec]
    n_customers: int
    market: dict[str, Any]
    m: dict[str, float]
    round: int
    tasks: list[AgentTask]
    fixed: list[WeightedOutcome]
    outcomes: Annotated[list[WeightedOutcome], round_outcomes]
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


# -- builder -----------------------------------------------------------------------------------
def build_population_graph(
    agent_graph: Any,
    environment: Environment,
    *,
    name: str = "population",
    checkpointer: Any = None,
    default_agent_context: Callable[[], Any] | None = None,
) -> CompiledStateGraph:
    """The supervisor graph for ``agent_graph`` (any runnable honouring the agent contract) in ``environment``.

    ``default_agent_context`` gives the agent subgraph's context when the run's context has none
    (e.g. the module-level graph served by ``langgraph dev``).
    """

    def prepare(state: PopulationState) -> dict[str, Any]:
        agents = state.get("agents") or []
        if not agents:
            raise ValueError("the population graph needs at least one agent in 'agents'")
        update: dict[str, Any] = {"round": 0, "converged": False}
        if not state.get("market"):
            market, m0 = environment.initial(agents, state.get("n_customers") or len(agents))
            update |= {"market": market, "m": state.get("m") or m0}
        return update

    def start_round(state: PopulationState, runtime: Runtime[PopulationContext]) -> dict[str, Any]:
        ctx = _context(runtime)
        number = state.get("round", 0) + 1
        tasks = environment.situations(state["market"], state["m"], state["agents"], number)
        fixed = []
        for t in tasks:
            if t.outcome is not None:
                fixed.append(_weighted(t, t.outcome))
                if ctx.recorder is not None:
                    ctx.recorder.decision(ctx.run_id, number, t.archetype, t.weight, t.outcome)
        return {"round": number, "tasks": tasks, "fixed": fixed, "outcomes": None}

    def dispatch(state: PopulationState) -> list[Send] | Literal["aggregate"]:
        sends = [
            Send("run_agent", AgentPayload(task=t, round=state["round"])) for t in state["tasks"] if t.outcome is None
        ]
        return sends or "aggregate"

    def run_agent(payload: AgentPayload, config: RunnableConfig, runtime: Runtime[PopulationContext]) -> dict:
        task, number = payload["task"], payload["round"]
        ctx = _context(runtime)
        agent_ctx = ctx.agent_context
        if agent_ctx is None and default_agent_context is not None:
            agent_ctx = default_agent_context()
        result = agent_graph.invoke({"agent_id": task.agent_id, "situation": task.situation}, config, context=agent_ctx)
        outcome = result["outcome"] if isinstance(result, dict) else result
        if not isinstance(outcome, AgentOutcome):
            outcome = AgentOutcome.model_validate(outcome)
        if ctx.recorder is not None:
            ctx.recorder.decision(ctx.run_id, number, task.archetype, task.weight, outcome)
        return {"outcomes": [_weighted(task, outcome)]}

    def aggregate_node(state: PopulationState) -> dict[str, Any]:
        return {"aggregate": aggregate([*state.get("fixed", []), *(state.get("outcomes") or [])])}

    def environment_node(state: PopulationState) -> dict[str, Any]:
        step = environment.update(state["market"], state["aggregate"], state["round"])
        return {"market": step.market, "demand": step.demand, "prices": step.prices, "figures": step.figures}

    def mean_field(state: PopulationState, runtime: Runtime[PopulationContext]) -> dict[str, Any]:
        ctx = _context(runtime)
        agg: Aggregate = state["aggregate"]
        m_old, mu = state["m"], agg.mu
        m_new = damped_update(m_old, mu, ctx.damping)
        distance = total_variation(m_new, m_old)
        done = converged(distance, ctx.epsilon, agg.failed_share)
        report = RoundReport(
            round=state["round"],
            n_decisions=agg.n_decisions,
            n_failed=agg.n_failed,
            failed_share=agg.failed_share,
            distance=distance,
            converged=done,
            demand=state.get("demand", {}),
            prices=state.get("prices", {}),
            mu=mu,
            m=m_new,
            figures=state.get("figures", {}),
        )
        if ctx.recorder is not None:
            collector = ctx.collector or DataCollector()
            ctx.recorder.round(ctx.run_id, report, collector.metrics(report))
        return {"m": m_new, "reports": [report], "converged": done}

    def next_round(state: PopulationState, runtime: Runtime[PopulationContext]) -> Literal["start_round", "__end__"]:
        ctx = _context(runtime)
        if state.get("converged") or state["round"] >= ctx.max_rounds:
            return END
        return "start_round"

    builder = StateGraph(
        PopulationState, context_schema=PopulationContext, input_schema=PopulationInput, output_schema=PopulationOutput
    )
    builder.add_node("prepare", prepare)
    builder.add_node("start_round", start_round)
    builder.add_node("run_agent", run_agent)
    builder.add_node("aggregate", aggregate_node)
    builder.add_node("environment", environment_node)
    builder.add_node("mean_field", mean_field)
    builder.add_edge(START, "prepare")
    builder.add_edge("prepare", "start_round")
    builder.add_conditional_edges("start_round", dispatch, ["run_agent", "aggregate"])
    builder.add_edge("run_agent", "aggregate")
    builder.add_edge("aggregate", "environment")
    builder.add_edge("environment", "mean_field")
    builder.add_conditional_edges("mean_field", next_round, ["start_round", END])
    return builder.compile(name=name, checkpointer=checkpointer)


def _context(runtime: Runtime[PopulationContext]) -> PopulationContext:
    """The run's context; a plain dict (JSON from a server) is coerced, nothing given means the defaults."""
    ctx = runtime.context
    if ctx is None:
        return PopulationContext()
    if isinstance(ctx, dict):
        return PopulationContext(**ctx)
    return ctx


def _weighted(task: AgentTask, outcome: AgentOutcome) -> WeightedOutcome:
    return WeightedOutcome(
        agent_id=task.agent_id,
        archetype=task.archetype,
        weight=task.weight,
        ok=outcome.ok,
        choice=outcome.choice,
        quantity=outcome.quantity,
    )


def _default_graph() -> CompiledStateGraph:
    """The retail supervisor over the customer decision graph (for ``langgraph.json``)."""
    from malles_graph.graphs.decision import graph as decision_graph
    from malles_graph.graphs.decision import resolve_context

    return build_population_graph(decision_graph, RetailEnvironment(), default_agent_context=lambda: resolve_context(None))


graph = _default_graph()
