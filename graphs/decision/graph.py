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
the runtime context (:class:`DecisionContext`). Debate turns stream as ``TranscriptTurn``
events with ``stream_mode="custom"``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from langgraph.graph import START, StateGraph
from malles_graph.graphs.decision_context import DecisionContext, resolve_context
from malles_graph.graphs.decision_nodes import (
    decide,
    make_role_node,
    reconstruct_hidden,
    retrieve,
    route_after_hidden,
    route_after_persona,
    single_agent,
    stabilise,
)
from malles_graph.graphs.decision_state import DecisionInput, DecisionOutput, DecisionState
from pydantic import BaseModel, ConfigDict

from malles_graph.agents import AgentOutcome, TranscriptTurn
from malles_graph.backends import LLMClient
from malles_graph.models import ChoiceSituation, Decision, HiddenFactors
from malles_graph.retrieval_api import Retriever
from malles_graph.scenario import BackendConfig, DecisionOptions
from malles_graph.stabilise import Calibrator


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


class DecisionResult(BaseModel):
    """What :func:`decide_situation` returns."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    outcome: AgentOutcome
    decision: Decision | None
    hidden: HiddenFactors | None

    @property
    def ok(self) -> bool:
        return self.outcome.ok

    @property
    def transcript(self) -> list[TranscriptTurn]:
        return self.outcome.transcript


def make_context(
    config: DecisionContext | DecisionOptions | dict[str, Any] | None = None,
    *,
    backend: BackendConfig | None = None,
    client: LLMClient | None = None,
    retriever: Retriever | None = None,
    calibrator: Calibrator | None = None,
) -> DecisionContext:
    """A DecisionContext from options, a dict or an existing context, with collaborators set."""
    if isinstance(config, DecisionOptions):
        ctx = DecisionContext.from_options(config, backend)
    elif isinstance(config, DecisionContext):
        from dataclasses import replace

        ctx = replace(config, backend=backend or config.backend)
    else:
        ctx = resolve_context(dict(config or {}))
        if backend is not None:
            ctx.backend = backend
    if client is not None:
        ctx.client = client
    if retriever is not None:
        ctx.retriever = retriever
    if calibrator is not None:
        ctx.calibrator = calibrator
    return ctx


def decide_situation(
    situation: ChoiceSituation,
    config: DecisionContext | DecisionOptions | dict[str, Any] | None = None,
    client: LLMClient | None = None,
    retriever: Retriever | None = None,
    calibrator: Calibrator | None = None,
    *,
    agent_id: str | None = None,
    backend: BackendConfig | None = None,
) -> DecisionResult:
    """Run one decision: build the context, invoke the compiled graph, return the typed result."""
    ctx = make_context(config, backend=backend, client=client, retriever=retriever, calibrator=calibrator)
    out = graph.invoke({"agent_id": agent_id or situation.customer.customer_id, "situation": situation}, context=ctx)
    return DecisionResult(outcome=out["outcome"], decision=out.get("decision"), hidden=out.get("hidden"))


def stream_decision(
    situation: ChoiceSituation, ctx: DecisionContext, agent_id: str | None = None
) -> Iterator[TranscriptTurn | DecisionResult]:
    """Yield each TranscriptTurn as it happens, then the DecisionResult (for the CLI and the TUI)."""
    final: dict[str, Any] = {}
    inputs = {"agent_id": agent_id or situation.customer.customer_id, "situation": situation}
    for mode, chunk in graph.stream(inputs, context=ctx, stream_mode=["custom", "values"]):
        if mode == "custom" and isinstance(chunk, TranscriptTurn):
            yield chunk
        elif mode == "values":
            final = chunk
    yield DecisionResult(outcome=final["outcome"], decision=final.get("decision"), hidden=final.get("hidden"))


__all__ = [
    "DecisionContext",
    "DecisionResult",
    "build_decision_graph",
    "builder",
    "decide_situation",
    "graph",
    "make_context",
    "stream_decision",
]
