"""Typed run events: the one progress stream of every scenario kind.

Every graph emits these through LangGraph's custom stream (``stream_mode="custom"``), nested
graphs included; the generic runner (``malles_graph.graphs.run``) stamps the run id, hands each
event to one recorder (:class:`malles_graph.store.recorder.RunRecorder`) that writes it through
the one repository, then to the CLI, the TUI or an embedding app, which never switch on the
scenario kind. Each event is a pydantic model with a literal ``type`` so a stream of dicts (for
example from ``langgraph dev``) parses back with :func:`parse_event`.

What the recorder stores, by event:

* ``RunStarted`` / ``RunFinished``: the run row (status, reason, the kind's final summary);
* ``PopulationPrepared``: the population size and its archetypes (clustering);
* ``DecisionFinished``: one decision row per (round, agent) and its transcript, replaced by key,
  so a decision redone after a crash is never stored twice;
* ``TurnStreamed`` with a ``seq``: one transcript row at (round, agent, seq) (dialogues such as
  wholesale, whose turns are not part of a decision). Without ``seq`` a turn is a live preview of
  a decision whose transcript arrives with its ``DecisionFinished``;
* ``RoundFinished``: the round row, its metrics and its kind-specific summary;
* ``Message``: nothing (shown only).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from malles_graph.agents import AgentOutcome, TranscriptTurn


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
    store_url: str = Field(default="", description="where the run is recorded (password masked)")
    prompt_set: dict[str, Any] = Field(
        default_factory=dict, description="the prompt set behind the run: digest, folder, per-file digests"
    )


class ArchetypeInfo(BaseModel):
    """One cluster of the population as stored (index, size, mass, centroid, representatives)."""

    model_config = ConfigDict(extra="forbid")

    index: int = Field(ge=0)
    size: int = Field(ge=0)
    mass: float = Field(ge=0, le=1)
    centroid: dict[str, float] = Field(default_factory=dict)
    representatives: list[str] = Field(default_factory=list)


class PopulationPrepared(_Event):
    """The population a run simulates: how many members, grouped into which archetypes."""

    type: Literal["population_prepared"] = "population_prepared"
    n_customers: int = Field(ge=0, description="population size (customers, workers, items)")
    archetypes: list[ArchetypeInfo] = Field(default_factory=list)


class RoundStarted(_Event):
    type: Literal["round_started"] = "round_started"
    round: int = Field(ge=0)
    total: int = Field(default=0, ge=0, description="decisions planned in this round")
    done: int = Field(default=0, ge=0, description="decisions already done (on resume)")


class TurnStreamed(_Event):
    type: Literal["turn_streamed"] = "turn_streamed"
    turn: TranscriptTurn
    round: int | None = Field(default=None, description="the run's round (mean-field round, step); None: current")
    seq: int | None = Field(
        default=None, description="position of a stored turn within (round, agent); None: a live preview only"
    )


class DecisionFinished(_Event):
    type: Literal["decision_finished"] = "decision_finished"
    round: int = Field(ge=0)
    agent_id: str
    ok: bool
    choice: str | None = None
    quantity: float = 0.0
    weight: float = 1.0
    error: str | None = None
    archetype: int = Field(default=0, ge=0)
    agreement: float | None = None
    llm_calls: int = Field(default=0, ge=0, description="calls that reached the backend")
    cached_calls: int = Field(default=0, ge=0, description="answers served by the response cache")
    prompt_tokens: int = 0
    completion_tokens: int = 0
    transcript: list[TranscriptTurn] = Field(default_factory=list)
    details: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def of(cls, round: int, outcome: AgentOutcome, *, archetype: int = 0, weight: float = 1.0) -> DecisionFinished:
        """The event of one agent's outcome (cached answers counted from its transcript)."""
        return cls(
            round=round, agent_id=outcome.agent_id, ok=outcome.ok, choice=outcome.choice, quantity=outcome.quantity,
            weight=weight, error=outcome.error, archetype=archetype, agreement=outcome.agreement,
            llm_calls=outcome.llm_calls, cached_calls=sum(1 for t in outcome.transcript if t.cached),
            prompt_tokens=outcome.prompt_tokens, completion_tokens=outcome.completion_tokens,
            transcript=list(outcome.transcript), details=dict(outcome.details),
        )

    def outcome(self) -> AgentOutcome:
        return AgentOutcome(
            agent_id=self.agent_id, ok=self.ok, choice=self.choice, quantity=self.quantity, error=self.error,
            agreement=self.agreement, transcript=list(self.transcript), llm_calls=self.llm_calls,
            prompt_tokens=self.prompt_tokens, completion_tokens=self.completion_tokens, details=dict(self.details),
        )


class RoundFinished(_Event):
    type: Literal["round_finished"] = "round_finished"
    round: int = Field(ge=0)
    metrics: dict[str, float] = Field(default_factory=dict)
    summary: dict[str, Any] = Field(default_factory=dict, description="kind-specific figures, shown as a table")


class Message(_Event):
    type: Literal["message"] = "message"
    text: str
    level: Literal["info", "warning", "error"] = "info"


RunStatus = Literal["finished", "failed", "cancelled", "interrupted"]


class RunFinished(_Event):
    type: Literal["run_finished"] = "run_finished"
    status: RunStatus
    reason: str = ""
    summary: dict[str, Any] = Field(default_factory=dict)


RunEvent = Annotated[
    RunStarted
    | PopulationPrepared
    | RoundStarted
    | TurnStreamed
    | DecisionFinished
    | RoundFinished
    | Message
    | RunFinished,
    Field(discriminator="type"),
]
EVENT_TYPES: tuple[type[BaseModel], ...] = (
    RunStarted, PopulationPrepared, RoundStarted, TurnStreamed, DecisionFinished, RoundFinished, Message, RunFinished,
)
_ADAPTER: TypeAdapter[RunEvent] = TypeAdapter(RunEvent)


def parse_event(data: dict[str, Any] | RunEvent) -> RunEvent:
    """A run event from its dict form (as a remote stream delivers it); events pass through unchanged."""
    if isinstance(data, BaseModel):
        return data  # type: ignore[return-value]
    return _ADAPTER.validate_python(data)


def as_event(chunk: Any) -> RunEvent | None:
    """A custom-stream chunk as a run event, or None when it is not one.

    Graphs emit event models; a remote stream (the LangGraph Server API) delivers them as dicts with
    their ``type``, which are parsed back.
    """
    if isinstance(chunk, EVENT_TYPES):
        return chunk  # type: ignore[return-value]
    if isinstance(chunk, dict) and isinstance(chunk.get("type"), str):
        try:
            return parse_event(chunk)
        except ValueError:
            return None
    return None


def emit(event: BaseModel) -> None:
    """Write ``event`` to the custom stream of the running graph (a no-op outside a graph run)."""
    from langgraph.config import get_stream_writer

    try:
        writer = get_stream_writer()
    except RuntimeError:  # a node called on its own, outside a graph run
        return
    writer(event)
