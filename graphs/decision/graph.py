"""The customer decision graph (MALLES): what to buy and how many.

Shape (pinned by tests/graphs/snapshots/decision.mmd)::

    retrieve -> reconstruct_hidden -> product_specialist -> price_analyst -> persona
                                   |        ^-------- next round ------------|
                                   |                                          v
                                   +--(single agent)--> single_agent   decide (one Send per sample)
                                                              \\           /
                                                               stabilise --(conflict: Send again)--> decide
                                                                   |
                                                                  END

Input ``{"agent_id", "situation"}``; output ``{"outcome": AgentOutcome, "decision", "hidden"}``.
Configuration and collaborators (LLM client, retriever, calibrator, choice model) come through
the runtime context (:class:`DecisionContext`). Debate turns stream as ``TurnStreamed``
run events with ``stream_mode="custom"``.
"""

from __future__ import annotations

from langgraph.graph import START, StateGraph
from malles_graph.graphs.decision.context import DecisionContext
from malles_graph.graphs.decision.draw import decide, single_agent
from malles_graph.graphs.decision.nodes import (
    make_role_node,
    reconstruct_hidden,
    retrieve,
    route_after_hidden,
    route_after_persona,
)
from malles_graph.graphs.decision.stabilise import stabilise
from malles_graph.graphs.decision.state import DecisionInput, DecisionOutput, DecisionState


def build_decision_graph() -> StateGraph:
    """The (uncompiled) builder, for apps that want to add a checkpointer or wrap it."""
    builder = StateGraph(
        DecisionState, context_schema=DecisionContext, input_schema=DecisionInput, output_schema=DecisionOutput
    )
    builder.add_node("retrieve", retrieve)
    builder.add_node("reconstruct_hidden", reconstruct_hidden)
    for role in ("product_specialist", "price_analyst", "persona"):
        builder.add_node(role, make_role_node(role))
    builder.add_node("decide", decide)
    builder.add_node("single_agent", single_agent)
    builder.add_node("stabilise", stabilise, destinations=("decide", "single_agent", "__end__"))

    builder.add_edge(START, "retrieve")
    builder.add_edge("retrieve", "reconstruct_hidden")
    builder.add_conditional_edges(
        "reconstruct_hidden", route_after_hidden, ["product_specialist", "decide", "single_agent"]
    )
    builder.add_edge("product_specialist", "price_analyst")
    builder.add_edge("price_analyst", "persona")
    builder.add_conditional_edges("persona", route_after_persona, ["product_specialist", "decide"])
    builder.add_edge("decide", "stabilise")
    builder.add_edge("single_agent", "stabilise")
    return builder


builder = build_decision_graph()
graph = builder.compile(name="decision")
