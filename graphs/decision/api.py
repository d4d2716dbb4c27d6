"""Running one decision from code: the typed result, the context from options, invoke and stream."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from malles_graph.graphs.decision.context import DecisionContext, resolve_context
from malles_graph.graphs.decision.graph import graph
from pydantic import BaseModel, ConfigDict

from malles_graph.agents import AgentOutcome, TranscriptTurn
from malles_graph.backends import LLMClient
from malles_graph.events import TurnStreamed
from malles_graph.models import ChoiceSituation, Decision, HiddenFactors
from malles_graph.retail.retrieval_api import Retriever
from malles_graph.retail.stabilise import Calibrator
from malles_graph.scenario import BackendConfig, DecisionOptions


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
        if mode == "custom" and isinstance(chunk, TurnStreamed):
            yield chunk.turn
        elif mode == "values":
            final = chunk
    yield DecisionResult(outcome=final["outcome"], decision=final.get("decision"), hidden=final.get("hidden"))
