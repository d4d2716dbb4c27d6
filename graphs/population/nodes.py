"""Nodes of the population supervisor; each emits the run events of what it did (malles_graph.events).

The agent graph and the default environment are the graph's parameters, so the nodes are
methods of :class:`PopulationNodes` built once per graph; everything else comes from the
state and the runtime context.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END
from langgraph.runtime import Runtime
from langgraph.types import Send
from malles_graph.graphs.population.context import PopulationContext, resolve
from malles_graph.graphs.population.executor import LOCAL
from malles_graph.graphs.population.state import AgentPayload, PopulationState

from malles_graph.agents import AgentOutcome
from malles_graph.events import DecisionFinished, PopulationPrepared, RoundFinished, RoundStarted, emit
from malles_graph.population.environment import AgentTask, Environment
from malles_graph.population.meanfield import (
    Aggregate,
    WeightedOutcome,
    aggregate,
    converged,
    damped_update,
    total_variation,
)
from malles_graph.population.reporters import DataCollector, RoundReport


class PopulationNodes:
    """The supervisor's nodes over ``agent_graph`` (any runnable honouring the agent contract)."""

    def __init__(self, agent_graph: Any, environment: Environment,
                 default_agent_context: Callable[[], Any] | None = None) -> None:
        self.agent_graph = agent_graph
        self.environment = environment
        self.default_agent_context = default_agent_context

    def _env(self, runtime: Runtime[PopulationContext]) -> Environment:
        return resolve(runtime.context).environment or self.environment

    def prepare(self, state: PopulationState, runtime: Runtime[PopulationContext]) -> dict[str, Any]:
        """The environment's initial market and m0 (unless the input carries them); announces the population."""
        agents = state.get("agents") or []
        if not agents:
            raise ValueError("the population graph needs at least one agent in 'agents'")
        n_customers = state.get("n_customers") or len(agents)
        emit(PopulationPrepared(n_customers=n_customers, archetypes=state.get("archetypes") or []))
        update: dict[str, Any] = {"round": 0, "converged": False}
        if not state.get("market"):
            market, m0 = self._env(runtime).initial(agents, n_customers)
            update |= {"market": market, "m": state.get("m") or m0}
        return update

    def start_round(self, state: PopulationState, runtime: Runtime[PopulationContext]) -> dict[str, Any]:
        """One task per representative; tasks with nothing to decide carry a fixed outcome."""
        number = state.get("round", 0) + 1
        tasks = self._env(runtime).situations(state["market"], state["m"], state["agents"], number)
        fixed = [t for t in tasks if t.outcome is not None]
        emit(RoundStarted(round=number, total=len(tasks), done=len(fixed)))
        for t in fixed:
            assert t.outcome is not None
            emit(DecisionFinished.of(number, t.outcome, archetype=t.archetype, weight=t.weight))
        return {"round": number, "tasks": tasks, "fixed": [weighted(t, t.outcome) for t in fixed], "outcomes": None,
                "decided": None}

    def run_agent(self, payload: AgentPayload, config: RunnableConfig, runtime: Runtime[PopulationContext]) -> dict:
        """One agent's decision, where the run's executor runs it (here by default); then its DecisionFinished."""
        task, number = payload["task"], payload["round"]
        ctx = resolve(runtime.context)
        agent_ctx = ctx.agent_context
        if agent_ctx is None and self.default_agent_context is not None:
            agent_ctx = self.default_agent_context()
        outcome = (ctx.executor or LOCAL).decide(self.agent_graph, task, config, agent_ctx)
        event = DecisionFinished.of(number, outcome, archetype=task.archetype, weight=task.weight)
        emit(event)
        return {"outcomes": [weighted(task, outcome)], "decided": [event]}

    def aggregate(self, state: PopulationState) -> dict[str, Any]:
        return {"aggregate": aggregate([*state.get("fixed", []), *(state.get("outcomes") or [])])}

    def environment_step(self, state: PopulationState, runtime: Runtime[PopulationContext]) -> dict[str, Any]:
        step = self._env(runtime).update(state["market"], state["aggregate"], state["round"])
        return {"market": step.market, "demand": step.demand, "prices": step.prices, "figures": step.figures}

    def mean_field(self, state: PopulationState, runtime: Runtime[PopulationContext]) -> dict[str, Any]:
        """m(t+1) = (1 - a) m(t) + a mu(t); the round's report and metrics."""
        ctx = resolve(runtime.context)
        agg: Aggregate = state["aggregate"]
        m_old, mu = state["m"], agg.mu
        m_new = damped_update(m_old, mu, ctx.damping)
        distance = total_variation(m_new, m_old)
        done = converged(distance, ctx.epsilon, agg.failed_share)
        report = RoundReport(
            round=state["round"], n_decisions=agg.n_decisions, n_failed=agg.n_failed, failed_share=agg.failed_share,
            distance=distance, converged=done, demand=state.get("demand", {}), prices=state.get("prices", {}),
            mu=mu, m=m_new, figures=state.get("figures", {}),
        )
        metrics = (ctx.collector or DataCollector()).metrics(report)
        emit(RoundFinished(round=report.round, metrics=metrics, summary=report.model_dump(mode="json")))
        return {"m": m_new, "reports": [report], "converged": done}


def dispatch(state: PopulationState) -> list[Send] | Literal["aggregate"]:
    """One Send per task that needs a decision; straight to aggregation when none does."""
    sends = [Send("run_agent", AgentPayload(task=t, round=state["round"])) for t in state["tasks"] if t.outcome is None]
    return sends or "aggregate"


def next_round(state: PopulationState, runtime: Runtime[PopulationContext]) -> Literal["start_round", "__end__"]:
    if state.get("converged") or state["round"] >= resolve(runtime.context).max_rounds:
        return END
    return "start_round"


def weighted(task: AgentTask, outcome: AgentOutcome | None) -> WeightedOutcome:
    assert outcome is not None
    return WeightedOutcome(agent_id=task.agent_id, archetype=task.archetype, weight=task.weight, ok=outcome.ok,
                           choice=outcome.choice, quantity=outcome.quantity)
