"""Typed run events: the one progress stream of every scenario kind.

Every graph emits these through LangGraph's custom stream (``stream_mode="custom"``), nested
graphs included; one recorder writes them through the one repository; the CLI, the TUI and an
embedding app consume the same stream and never switch on the scenario kind. Each event is a
pydantic model with a literal ``type`` so a stream of dicts (for example from ``langgraph dev``)
parses back with :func:`parse_event`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from malles_graph.agents import TranscriptTurn


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_id: str = Field(default="", description="the run this event belongs to ('' outside a recorded run)")


class RunStarted(_Event):
    type: Literal["run_started"] = "run_started"
    kind: str = Field(description="scenario kind: retail, economist, wholesale, ...")
    name: str = ""
    seed: int = 0
    backend: str = ""
    resumed: bool = False
    total_rounds: int = Field(default=0, ge=0, description="planned rounds or steps (0 when open-ended)")


class RoundStarted(_Event):
    type: Literal["round_started"] = "round_started"
    round: int = Field(ge=0)
    total: int = Field(default=0, ge=0, description="decisions planned in this round")
    done: int = Field(default=0, ge=0, description="decisions already done (on resume)")


class TurnStreamed(_Event):
    type: Literal["turn_streamed"] = "turn_streamed"
    turn: TranscriptTurn


class DecisionFinished(_Event):
    type: Literal["decision_finished"] = "decision_finished"
    round: int = Field(ge=0)
    agent_id: str
    ok: bool
    choice: str | None = None
    quantity: float = 0.0
    weight: float = 1.0
    error: str | None = None


class RoundFinished(_Event):
    type: Literal["round_finished"] = "round_finished"
    round: int = Field(ge=0)
    metrics: dict[str, float] = Field(default_factory=dict)
    summary: dict[str, Any] = Field(default_factory=dict, description="kind-specific figures, shown as a table")


class Message(_Event):
    type: Literal["message"] = "message"
    text: str
    level: Literal["info", "warning", "error"] = "info"


class RunFinished(_Event):
    type: Literal["run_finished"] = "run_finished"
    status: Literal["finished", "failed", "cancelled", "interrupted"]
    reason: str = ""
    summary: dict[str, Any] = Field(default_factory=dict)


RunEvent = Annotated[
    RunStarted | RoundStarted | TurnStreamed | DecisionFinished | RoundFinished | Message | RunFinished,
    Field(discriminator="type"),
]
_ADAPTER: TypeAdapter[RunEvent] = TypeAdapter(RunEvent)


def parse_event(data: dict[str, Any] | RunEvent) -> RunEvent:
    """A run event from its dict form (as a remote stream delivers it); events pass through unchanged."""
    if isinstance(data, BaseModel):
        return data  # type: ignore[return-value]
    return _ADAPTER.validate_python(data)
