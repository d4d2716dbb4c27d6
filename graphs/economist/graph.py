"""The LLM Economist graph (Karten et al. 2025): workers choose hours, a planner sets the tax schedule.

Shape (pinned by the mermaid snapshot in tests/economist/test_graph.py)::

    setup -> dispatch -> worker (one Send per simulated worker) -> aggregate
                      -> best_response (all workers at once, exact)
    aggregate | best_response -> planner (every planner_every steps) -> vote (every vote_every steps)
                              -> advance -> dispatch (next step) | finish -> END

Two time scales: workers act every step; the planner every T steps. Large LLM populations are clustered
into archetypes; one representative per archetype is simulated and its choice applies to its members.
"""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph

from malles_graph.scenario import Scenario

from .context import EconomistContext
from .nodes import advance, after_step, aggregate, best_response_step, decide_hours, dispatch, finish, setup
from .planning import after_planner, planner, vote
from .state import EconomistInput, EconomistOutput, EconomistState, WorkerState


def build_economist_graph() -> StateGraph:
    """The uncompiled builder (the runner compiles it with the store's checkpointer)."""
    builder = StateGraph(
        EconomistState, context_schema=EconomistContext, input_schema=EconomistInput, output_schema=EconomistOutput
    )
    builder.add_node("setup", setup)
    # one LLM worker per Send; a plain node (not a subgraph) so its events reach the parent's custom stream
    builder.add_node("worker", decide_hours, input_schema=WorkerState)
    builder.add_node("best_response", best_response_step)
    builder.add_node("aggregate", aggregate)
    builder.add_node("planner", planner)
    builder.add_node("vote", vote)
    builder.add_node("advance", advance)
    builder.add_node("finish", finish)
    builder.add_edge(START, "setup")
    targets = ["worker", "best_response", "finish"]
    builder.add_conditional_edges("setup", dispatch, targets)
    builder.add_edge("worker", "aggregate")
    builder.add_conditional_edges("best_response", after_step, ["planner", "vote", "advance"])
    builder.add_conditional_edges("aggregate", after_step, ["planner", "vote", "advance"])
    builder.add_conditional_edges("planner", after_planner, ["vote", "advance"])
    builder.add_edge("vote", "advance")
    builder.add_conditional_edges("advance", dispatch, targets)
    builder.add_edge("finish", END)
    return builder


def run_inputs(scenario: Scenario) -> dict:
    """The initial state of an economist run: empty, the setup node builds it from the runtime context."""
    return {}


def recursion_limit(scenario: Scenario) -> int:
    """Supersteps a run needs (about five per step), with room to spare."""
    steps = scenario.economist.steps if scenario.economist else 1
    return steps * 8 + 50


builder = build_economist_graph()
graph = builder.compile(name="economist")

__all__ = ["build_economist_graph", "builder", "graph", "recursion_limit", "run_inputs"]
