"""'Try it': one decision with an unsaved prompt, before saving (filled in when the decision graph lands)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from malles_graph.agents import AgentOutcome, TranscriptTurn
from malles_graph.errors import MallesError


def try_prompt(
    name: str,
    text: str,
    *,
    on_turn: Callable[[TranscriptTurn], None],
    client_factory: Callable[[Any], Any] | None = None,
    scenario: Any = None,
) -> AgentOutcome:
    raise MallesError("the decision graph (graphs/decision.py) is not available yet")
