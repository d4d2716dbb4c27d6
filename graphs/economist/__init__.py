"""The LLM Economist graph (react-agent layout): context, state, nodes, planning, graph, and the run summary.

``run_inputs(scenario)``, ``run_context(scenario, client=None)`` and ``run_summary(values, context)`` are what
the generic runner (:mod:`malles_graph.graphs.run`) calls; ``graph`` is the compiled graph listed in
langgraph.json. Run a scenario with ``malles_graph.graphs.run.run_scenario`` (stored like any kind).
"""

from .context import EconomistContext, World, build_world, run_context
from .graph import build_economist_graph, builder, graph, recursion_limit, run_inputs
from .summary import run_summary

__all__ = [
    "EconomistContext",
    "World",
    "build_world",
    "build_economist_graph",
    "builder",
    "graph",
    "recursion_limit",
    "run_context",
    "run_inputs",
    "run_summary",
]
