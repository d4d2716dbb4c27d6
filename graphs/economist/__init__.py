"""The LLM Economist graph (react-agent layout): context, state, nodes, planning, graph, and a Python runner.

``run_inputs(scenario)`` and ``run_context(scenario, client=None)`` are what the generic runner calls;
``graph`` is the compiled graph listed in langgraph.json; ``run_economist`` runs a scenario end to end.
"""

from .context import EconomistContext, World, build_world, run_context
from .graph import build_economist_graph, builder, graph, recursion_limit, run_inputs, run_summary
from .run import EconomistRun, run_economist

__all__ = [
    "EconomistContext",
    "EconomistRun",
    "World",
    "build_economist_graph",
    "build_world",
    "builder",
    "graph",
    "recursion_limit",
    "run_context",
    "run_economist",
    "run_inputs",
    "run_summary",
]
