"""The population supervisor: representatives decide in parallel, the market responds, m is damped.

Shape (pinned by tests/population/test_graph.py)::

    START -> prepare -> start_round -> (Send per representative) run_agent -> aggregate
          -> environment -> mean_field -> start_round (next round) | END

The agent graph and the environment are parameters of :func:`build_population_graph`, so the same
supervisor drives retail customers or any other agents behind the
:class:`~malles_graph.population.environment.Environment` protocol. The module-level
``builder`` / ``graph`` are the retail supervisor over the customer decision graph.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langgraph.graph import START, StateGraph
from malles_graph.graphs.population.context import PopulationContext
from malles_graph.graphs.population.nodes import PopulationNodes, dispatch, next_round
from malles_graph.graphs.population.state import PopulationInput, PopulationOutput, PopulationState

from malles_graph.population.environment import Environment
from malles_graph.population.retail import RetailEnvironment


def build_population_graph(agent_graph: Any, environment: Environment | None = None, *,
                           default_agent_context: Callable[[], Any] | None = None) -> StateGraph:
    """The supervisor's builder for ``agent_graph`` in ``environment`` (the context may replace it per run);
    compile it with your checkpointer, as every ``build_*`` function of ``malles_graph.graphs``.

    ``default_agent_context`` gives the agent subgraph's context when the run's context has none
    (e.g. the module-level graph served by ``langgraph dev``).
    """
    nodes = PopulationNodes(agent_graph, environment or RetailEnvironment(), default_agent_context)
    builder = StateGraph(
        PopulationState, context_schema=PopulationContext, input_schema=PopulationInput, output_schema=PopulationOutput
    )
    builder.add_node("prepare", nodes.prepare)
    builder.add_node("start_round", nodes.start_round)
    builder.add_node("run_agent", nodes.run_agent)
    builder.add_node("aggregate", nodes.aggregate)
    builder.add_node("environment", nodes.environment_step)
    builder.add_node("mean_field", nodes.mean_field)
    builder.add_edge(START, "prepare")
    builder.add_edge("prepare", "start_round")
    builder.add_conditional_edges("start_round", dispatch, ["run_agent", "aggregate"])
    builder.add_edge("run_agent", "aggregate")
    builder.add_edge("aggregate", "environment")
    builder.add_edge("environment", "mean_field")
    builder.add_conditional_edges("mean_field", next_round, ["start_round", "__end__"])
    return builder


def _retail_builder() -> StateGraph:
    from malles_graph.graphs.decision import graph as decision_graph
    from malles_graph.graphs.decision import resolve_context

    return build_population_graph(decision_graph, RetailEnvironment(),
                                  default_agent_context=lambda: resolve_context(None))


builder = _retail_builder()
graph = builder.compile(name="population")
