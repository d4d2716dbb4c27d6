"""Per-role insight from stored decisions: tokens, stated preferences against the final decision, bottlenecks.

The debate prompts ask each role to name a product: the product specialist "which product best
fits", the price analyst "which product is the best value", the persona "which product you
prefer", all "by label only". :func:`stated_preference` reads that label back from the role's
last turn; a turn that names no single product counts as "no preference stated", never as a guess.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from pydantic import BaseModel

from malles_graph.agents import TranscriptTurn
from malles_graph.evaluation.cases import Prediction
from malles_graph.usage import TokenUsage, usage_by_role

DEBATE_ROLES = ("product_specialist", "price_analyst", "persona")
NONE = "none"

# "I prefer B", "recommend product C", "the best value is A", "go with option D"
_CHOSEN = re.compile(
    r"(?i:\b(?:prefer|recommend|choose|chose|pick|go with|opt for|buy|take|favou?r|best (?:fit|value|choice|option|"
    r"buy|pick)(?: is| would be)?|(?:is|would be) (?:the )?best)[:\s]+(?:for |the |product |option |label )*)"
    r"([A-Z])\b(?![\w'])"
)
# "B is the best value", "C offers the best fit"
_CHOSEN_AFTER = re.compile(
    r"\b([A-Z])\b(?:\s*\([^)]*\))?\s+(?i:is (?:the )?(?:best|better|clear)|offers the best|wins)"
)
_NAMED = re.compile(r"(?<![\w'])([A-Z])(?![\w'])")
_ARTICLE = re.compile(r"(?<![\w'])A\s+[a-z]")  # "A good option": the article, not label A
_NOTHING = re.compile(r"(?i)\b(?:buy nothing|none of (?:them|these|the products)|skip (?:it|this|buying))\b")


def stated_preference(text: str, labels: dict[str, str]) -> str | None:
    """The product id a role's turn prefers (``'none'`` for buying nothing), None when it names no single one."""
    for pattern in (_CHOSEN, _CHOSEN_AFTER):
        for match in pattern.finditer(text):
            if match.group(1) in labels:
                return labels[match.group(1)]
    if _NOTHING.search(text):
        return NONE
    articles = {m.start() for m in _ARTICLE.finditer(text)}
    named = {m.group(1) for m in _NAMED.finditer(text) if m.group(1) in labels and m.start() not in articles}
    return labels[named.pop()] if len(named) == 1 else None


def turns_of(pred: Prediction) -> list[TranscriptTurn]:
    return [TranscriptTurn.model_validate(t) for t in (pred.meta or {}).get("transcript", [])]


def preferences(pred: Prediction) -> dict[str, str | None]:
    """Each debate role's stated preference in its last turn (roles that did not speak are absent)."""
    labels = (pred.meta or {}).get("labels") or {}
    last: dict[str, TranscriptTurn] = {}
    for turn in turns_of(pred):
        if turn.role in DEBATE_ROLES and turn.kind == "turn":
            last[turn.role] = turn
    return {role: stated_preference(turn.text, labels) for role, turn in last.items()}


def repaired(pred: Prediction) -> bool:
    """The decision needed at least one repair (an invalid answer fed back) and ended valid."""
    return pred.product_id is not None and any(t.kind == "retry" for t in turns_of(pred))


class RoleInsight(BaseModel):
    """One role (or graph node) over many decisions."""

    role: str
    decisions: int = 0  # decisions in which the role ran
    tokens: TokenUsage = TokenUsage()
    latency_s: float = 0.0
    llm_calls: int = 0
    retries: int = 0
    failures: int = 0
    turns: int = 0  # debate turns read for a preference
    stated: int = 0  # turns that named one product
    agreed: int = 0  # stated preferences equal to the final decision

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.stated if self.stated else None

    @property
    def mean_latency_s(self) -> float | None:
        return self.latency_s / self.decisions if self.decisions else None


def role_insight(preds: Iterable[Prediction]) -> dict[str, RoleInsight]:
    """Tokens, latency, calls, repairs, failures and preference agreement per role/node, over ``preds``."""
    out: dict[str, RoleInsight] = {}

    def row(name: str) -> RoleInsight:
        return out.setdefault(name, RoleInsight(role=name))

    for pred in preds:
        meta = pred.meta or {}
        for role, used in usage_by_role(turns_of(pred)).items():
            row(role).tokens = row(role).tokens + used
        for node, stat in (meta.get("nodes") or {}).items():
            r = row(node)
            r.decisions += int(stat.get("runs", 0) > 0)
            r.latency_s += float(stat.get("latency_s", 0.0))
            r.llm_calls += int(stat.get("llm_calls", 0))
            r.retries += int(stat.get("retries", 0))
            r.failures += int(stat.get("failures", 0))
        for role, preferred in preferences(pred).items():
            r = row(role)
            r.turns += 1
            if preferred is not None:
                r.stated += 1
                r.agreed += int(pred.product_id is not None and preferred == pred.product_id)
    return out


def bottleneck(insight: dict[str, RoleInsight]) -> str | None:
    """The role/node with the most total latency (None without node statistics)."""
    timed = [r for r in insight.values() if r.latency_s > 0]
    return max(timed, key=lambda r: r.latency_s).role if timed else None


def flatten(repeats: Sequence[Sequence[Prediction]]) -> list[Prediction]:
    return [p for preds in repeats for p in preds]
