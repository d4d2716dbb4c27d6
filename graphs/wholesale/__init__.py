"""The wholesale dialogue graph (react-agent layout): context, state, prompting, nodes, graph, and its run contract."""

from malles_graph.graphs.wholesale.context import WholesaleContext
from malles_graph.graphs.wholesale.graph import build_wholesale_graph, builder, graph
from malles_graph.graphs.wholesale.nodes import ROUND
from malles_graph.graphs.wholesale.prompting import (
    TRANSCRIPT_TURNS,
    TURN_CHARS,
    prompt_values,
    proposal_validator,
    rule_json_schema,
    transcript_text,
)
from malles_graph.graphs.wholesale.run import run_context, run_inputs, run_preflight, run_summary, run_wholesale
from malles_graph.graphs.wholesale.state import (
    RuleAttempt,
    RuleProposal,
    WholesaleInput,
    WholesaleOutput,
    WholesaleState,
)

__all__ = [
    "ROUND",
    "TRANSCRIPT_TURNS",
    "TURN_CHARS",
    "RuleAttempt",
    "RuleProposal",
    "WholesaleContext",
    "WholesaleInput",
    "WholesaleOutput",
    "WholesaleState",
    "build_wholesale_graph",
    "builder",
    "graph",
    "prompt_values",
    "proposal_validator",
    "rule_json_schema",
    "run_context",
    "run_inputs",
    "run_preflight",
    "run_summary",
    "run_wholesale",
    "transcript_text",
]
