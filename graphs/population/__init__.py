"""The population supervisor graph (react-agent layout): context, state, nodes, graph, and the retail run contract.

``build_population_graph`` takes any agent graph and environment; the
module-level ``builder`` and ``graph`` are the retail supervisor over the customer decision graph,
run by the generic runner through ``run_inputs`` / ``run_context`` / ``run_preflight`` / ``run_summary``.
"""

from malles_graph.graphs.population.context import PopulationContext, resolve
from malles_graph.graphs.population.graph import build_population_graph, builder, graph
from malles_graph.graphs.population.run import (
    decision_context,
    run_context,
    run_inputs,
    run_preflight,
    run_summary,
)
from malles_graph.graphs.population.state import AgentPayload, PopulationInput, PopulationOutput, PopulationState

__all__ = [
    "AgentPayload",
    "PopulationContext",
    "PopulationInput",
    "PopulationOutput",
    "PopulationState",
    "build_population_graph",
    "builder",
    "decision_context",
    "graph",
    "resolve",
    "run_context",
    "run_inputs",
    "run_preflight",
    "run_summary",
]
