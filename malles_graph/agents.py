"""The contract between the population supervisor and any agent subgraph.

The supervisor sends ``{"agent_id": ..., "situation": ...}`` into an agent
graph (the customer decision graph, the economist's worker, ...) and reads back
``{"outcome": AgentOutcome}``. Transcript turns are also the typed events that
the CLI and the TUI stream live.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

TurnKind = Literal["turn", "decision", "retry", "conflict", "failure", "computed", "vote"]


class TranscriptTurn(BaseModel):
    """One utterance of one role (or one event such as a retry), as streamed and stored."""

    model_config = ConfigDict(extra="forbid")

    agent_id: str = ""
    role: str
    round: int = 0
    text: str
    kind: TurnKind = "turn"
    prompt_tokens: int = 0
    cached_prompt_tokens: int = Field(default=0, description="prompt tokens the server read from its prompt cache")
    completion_tokens: int = 0
    latency_s: float = 0.0
    cached: bool = False


class AgentOutcome(BaseModel):
    """What one agent decided (or why it failed), with its transcript and cost."""

    model_config = ConfigDict(extra="forbid")

    agent_id: str
    ok: bool
    choice: str | None = Field(default=None, description="chosen option id (product id, 'none', hours, ...)")
    quantity: float = Field(default=0.0, ge=0)
    error: str | None = None
    agreement: float | None = Field(default=None, ge=0, le=1, description="multi-sample agreement rate")
    transcript: list[TranscriptTurn] = Field(default_factory=list)
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    details: dict[str, Any] = Field(default_factory=dict)
