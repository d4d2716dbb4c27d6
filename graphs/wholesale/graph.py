"""The wholesale dialogue (MALLES): marketing, manufacturer and the store's buyer agree a purchasing rule.

Shape (pinned by tests/wholesale/wholesale_graph.mmd)::

    prepare -> (marketing -> manufacturer -> wholesaler) x dialogue_rounds -> propose_rule
    propose_rule -> evaluate            (a valid rule)
                 -> propose_rule        (invalid: the reason is fed back; at most max_repairs times)
                 -> failed              (still invalid after the repairs: recorded, no rule is made up)
    evaluate -> END, failed -> END

``prepare`` loads real Ta Feng demand (or takes ``items`` from the input); ``evaluate`` runs the
rule, the optional reference rule and the baselines (newsvendor, order-up-to, last-period demand)
over the held-out periods.
"""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph
from malles_graph.graphs.wholesale import nodes
from malles_graph.graphs.wholesale.context import WholesaleContext
from malles_graph.graphs.wholesale.state import WholesaleInput, WholesaleOutput, WholesaleState


def build_wholesale_graph() -> StateGraph:
    """The wholesale dialogue's builder; compile it with your checkpointer."""
    builder = StateGraph(
        WholesaleState, context_schema=WholesaleContext, input_schema=WholesaleInput, output_schema=WholesaleOutput
    )
    builder.add_node("prepare", nodes.prepare)
    builder.add_node("marketing", nodes.marketing)
    builder.add_node("manufacturer", nodes.manufacturer)
    builder.add_node("wholesaler", nodes.wholesaler)
    builder.add_node("propose_rule", nodes.propose_rule)
    builder.add_node("evaluate", nodes.evaluate)
    builder.add_node("failed", nodes.failed)
    builder.add_edge(START, "prepare")
    builder.add_conditional_edges("prepare", nodes.route_round)
    builder.add_edge("marketing", "manufacturer")
    builder.add_edge("manufacturer", "wholesaler")
    builder.add_conditional_edges("wholesaler", nodes.route_round)
    builder.add_conditional_edges("propose_rule", nodes.route_rule)
    builder.add_edge("evaluate", END)
    builder.add_edge("failed", END)
    return builder


builder = build_wholesale_graph()
graph = builder.compile(name="wholesale")
