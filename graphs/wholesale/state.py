"""State schemas of the wholesale graph and the buyer's structured answer."""

from __future__ import annotations

import operator
from typing import Annotated, Any

from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from malles_graph.agents import TranscriptTurn


class RuleProposal(BaseModel):
    """The buyer's final answer: the purchasing formula and this period's orders."""

    formula: str = Field(min_length=1, max_length=400, description="order quantity formula over the variables")
    orders: dict[str, float] = Field(description="units to order now, keyed by item id (every item once)")
    rationale: str = Field(default="", max_length=240, description="one sentence (bounded: the answer has a token limit)")


class RuleAttempt(BaseModel):
    attempt: int
    text: str
    ok: bool
    error: str | None = None
    truncated: bool = False  # cut off at its token budget (the next repair gets more room)


class WholesaleInput(TypedDict, total=False):
    items: list[dict[str, Any]]  # ItemDemand.to_dict() rows; loaded from Ta Feng when absent


class WholesaleState(TypedDict, total=False):
    items: list[dict[str, Any]]
    round: int
    transcript: Annotated[list[TranscriptTurn], operator.add]
    attempts: Annotated[list[RuleAttempt], operator.add]
    rule: dict[str, Any] | None
    orders: dict[str, float]
    ok: bool
    error: str | None
    table: Annotated[list[dict[str, Any]], operator.add]
    records: Annotated[list[dict[str, Any]], operator.add]
    llm_calls: Annotated[int, operator.add]


class WholesaleOutput(TypedDict, total=False):
    items: list[dict[str, Any]]
    transcript: list[TranscriptTurn]
    attempts: list[RuleAttempt]
    rule: dict[str, Any] | None
    orders: dict[str, float]
    ok: bool
    error: str | None
    table: list[dict[str, Any]]
    records: list[dict[str, Any]]
    llm_calls: int
