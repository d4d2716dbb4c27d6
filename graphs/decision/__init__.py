"""The customer decision graph (MALLES): what to buy and how many.

A package in the react-agent layout: ``context`` (runtime configuration and collaborators),
``state`` (input, state and output schemas), ``views`` (what each role sees), the nodes
(``nodes``: retrieve, Z and the debate; ``draw``: decide / single_agent; ``stabilise``),
``graph`` (the builder and the compiled ``graph``) and ``api`` (running one decision from code).
Every public name is re-exported here, so ``from malles_graph.graphs.decision import ...`` is the
one import path.
"""

from malles_graph.graphs.decision.answer import (
    DecisionAnswer,
    answer_problems,
    answer_schema,
    answer_text,
    label_keys,
    to_decision,
)
from malles_graph.graphs.decision.api import (
    DecisionResult,
    decide_situation,
    make_context,
    stream_decision,
)
from malles_graph.graphs.decision.common import DecideTarget, prompt
from malles_graph.graphs.decision.context import (
    ROLES,
    DecisionContext,
    RoleName,
    field_descriptions,
    load_calibrator,
    resolve_context,
)
from malles_graph.graphs.decision.draw import decide, decide_messages, single_agent, single_agent_messages
from malles_graph.graphs.decision.graph import build_decision_graph, builder, graph
from malles_graph.graphs.decision.nodes import (
    hidden_for,
    make_role_node,
    reconstruct_hidden,
    retrieve,
    route_after_hidden,
    route_after_persona,
)
from malles_graph.graphs.decision.setup import context_for_scenario, run_context, scenario_memory
from malles_graph.graphs.decision.stabilise import bottlenecks, stabilise, tokens_by_role, with_prompt_set
from malles_graph.graphs.decision.state import (
    DecisionInput,
    DecisionOutput,
    DecisionState,
    NodeStat,
    Sample,
    SampleTask,
)
from malles_graph.graphs.decision.views import label_map, label_of, labels, market_shares, offers, role_vars, rotated

__all__ = [
    "ROLES",
    "DecideTarget",
    "DecisionAnswer",
    "DecisionContext",
    "DecisionInput",
    "DecisionOutput",
    "DecisionResult",
    "DecisionState",
    "NodeStat",
    "RoleName",
    "Sample",
    "SampleTask",
    "answer_problems",
    "answer_schema",
    "answer_text",
    "bottlenecks",
    "build_decision_graph",
    "builder",
    "context_for_scenario",
    "decide",
    "decide_messages",
    "decide_situation",
    "field_descriptions",
    "graph",
    "hidden_for",
    "label_keys",
    "load_calibrator",
    "label_map",
    "label_of",
    "labels",
    "make_context",
    "make_role_node",
    "market_shares",
    "offers",
    "rotated",
    "prompt",
    "reconstruct_hidden",
    "resolve_context",
    "retrieve",
    "role_vars",
    "route_after_hidden",
    "route_after_persona",
    "run_context",
    "scenario_memory",
    "single_agent",
    "single_agent_messages",
    "stabilise",
    "with_prompt_set",
    "stream_decision",
    "to_decision",
    "tokens_by_role",
]
