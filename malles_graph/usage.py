"""Token accounting: prompt, cached and completion tokens per role, agent, round and run.

Every LLM turn in a transcript carries its own token counts; this module only adds them up,
so the same figures appear in the store, ``malles show``, the run summary, the TUI and the
prompt experiments.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict

from malles_graph.agents import TranscriptTurn


class TokenUsage(BaseModel):
    """Tokens spent by some group of LLM calls."""

    model_config = ConfigDict(extra="forbid")

    calls: int = 0
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0  # prompt tokens the server read from its prompt cache
    completion_tokens: int = 0

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            calls=self.calls + other.calls,
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            cached_prompt_tokens=self.cached_prompt_tokens + other.cached_prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
        )

    @property
    def cache_hit_rate(self) -> float:
        """Share of prompt tokens served from the server's prompt cache."""
        return self.cached_prompt_tokens / self.prompt_tokens if self.prompt_tokens else 0.0


def turn_usage(turn: TranscriptTurn) -> TokenUsage:
    """The tokens of one turn (computed turns and system notes cost nothing)."""
    if not (turn.prompt_tokens or turn.completion_tokens):
        return TokenUsage()
    return TokenUsage(
        calls=1,
        prompt_tokens=turn.prompt_tokens,
        cached_prompt_tokens=getattr(turn, "cached_prompt_tokens", 0),
        completion_tokens=turn.completion_tokens,
    )


def usage_by_role(turns: Iterable[TranscriptTurn]) -> dict[str, TokenUsage]:
    """Tokens per role (product_specialist, price_analyst, persona, decide, ...), in first-seen order."""
    out: dict[str, TokenUsage] = {}
    for turn in turns:
        used = turn_usage(turn)
        if used.calls:
            out[turn.role] = out.get(turn.role, TokenUsage()) + used
    return out


def total_usage(turns: Iterable[TranscriptTurn]) -> TokenUsage:
    return sum((turn_usage(t) for t in turns), TokenUsage())
