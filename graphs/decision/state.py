"""State schemas of the decision graph: input, full state and output.

Input is the agent contract of :mod:`malles_graph.agents`: ``{"agent_id", "situation"}``
(the situation may be a ChoiceSituation or a plain dict; the first node validates it).
Output is ``{"outcome": AgentOutcome, "decision": Decision | None, "hidden": HiddenFactors | None}``.
Every list field declares its reducer.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypedDict  # pydantic needs it for JSON schemas on Python < 3.12

from malles_graph.agents import AgentOutcome, TranscriptTurn
from malles_graph.models import ChoiceSituation, Decision, HiddenFactors
from malles_graph.retail.retrieval_api import RetrievedRecord


def replace(_old: Any, new: Any) -> Any:
    """Reducer: the latest write wins (used for lists set once, e.g. the neighbours)."""
    return new


class NodeStat(BaseModel):
    """What one node invocation cost and what went wrong in it (bottleneck detection)."""

    model_config = ConfigDict(extra="forbid")

    node: str
    latency_s: float = 0.0
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    retries: int = 0
    conflicts: int = 0
    failures: int = 0


class Sample(BaseModel):
    """One drawn decision (or the failure to get a valid one)."""

    model_config = ConfigDict(extra="forbid")

    index: int
    loop: int = Field(description="conflict loop the sample belongs to (0 = first draw)")
    decision: Decision | None = None
    error: str | None = None
    attempts: int = 0
    probs: dict[str, float] | None = Field(default=None, description="choice probabilities (computed agent)")


class DecisionInput(TypedDict):
    agent_id: str
    situation: ChoiceSituation | dict[str, Any]


class DecisionState(TypedDict, total=False):
    agent_id: str
    situation: ChoiceSituation
    neighbours: Annotated[list[RetrievedRecord], replace]
    hidden: HiddenFactors | None
    round: int
    transcript: Annotated[list[TranscriptTurn], operator.add]
    samples: Annotated[list[Sample], operator.add]
    stats: Annotated[list[NodeStat], operator.add]
    loop: int
    feedback: str
    conflicts: Annotated[list[str], operator.add]
    decision: Decision | None
    outcome: AgentOutcome


class DecisionOutput(TypedDict):
    outcome: AgentOutcome
    decision: Decision | None
    hidden: HiddenFactors | None


class SampleTask(TypedDict):
    """What one Send to the decide (or single_agent) node carries."""

    agent_id: str
    situation: ChoiceSituation
    neighbours: list[RetrievedRecord]
    hidden: HiddenFactors | None
    transcript: list[TranscriptTurn]
    feedback: str
    loop: int
    index: int
