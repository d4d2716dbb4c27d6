"""What each role sees: compact text slices of a choice situation, and the decision answer schema.

Each debate role gets only its slice (product cards, price table, or the customer), with
candidates named by short labels (A, B, C...) rather than 13-digit ids; :func:`label_map`
maps labels (and ids) back when the decision is validated.
"""

from __future__ import annotations

import json
import statistics
import string
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from malles_graph.agents import TranscriptTurn
from malles_graph.models import NONE_PRODUCT, ChoiceSituation, Decision, HiddenFactors, MarketSignal, StyleParams
from malles_graph.retrieval_api import RetrievedRecord
from malles_graph.stabilise import perceived_prices, style_framing

NO_Z = "not estimated"


def labels(situation: ChoiceSituation) -> list[str]:
    """The label of each candidate: its own, else A, B, C... by position (ids beyond 26)."""
    out = []
    for i, c in enumerate(situation.candidates):
        out.append(c.label or (string.ascii_uppercase[i] if i < 26 else c.product_id))
    return out


def label_map(situation: ChoiceSituation) -> dict[str, str]:
    """Label (any case) or product id -> product id, plus 'none'."""
    out = {NONE_PRODUCT: NONE_PRODUCT}
    for lab, c in zip(labels(situation), situation.candidates, strict=True):
        out[lab] = out[lab.lower()] = out[c.product_id] = c.product_id
    return out


def label_of(situation: ChoiceSituation) -> dict[str, str]:
    """Product id -> label."""
    return {c.product_id: lab for lab, c in zip(labels(situation), situation.candidates, strict=True)}


def style_of(situation: ChoiceSituation) -> StyleParams:
    return situation.style or StyleParams()


# ---------------------------------------------------------------- the slices
def product_cards(situation: ChoiceSituation, neighbours: Sequence[RetrievedRecord]) -> str:
    """Product specialist's slice: popularity, quantity norms, what similar shoppers chose."""
    chosen: dict[str, int] = {}
    for r in neighbours:
        for pid in r.product_ids:
            chosen[pid] = chosen.get(pid, 0) + 1
    lines = []
    for lab, c in zip(labels(situation), situation.candidates, strict=True):
        norm = f"usually {c.median_quantity:g} unit(s) per purchase" if c.median_quantity else "no quantity norm"
        peer = f", in {chosen.get(c.product_id, 0)} of {len(neighbours)} similar baskets" if neighbours else ""
        lines.append(f"{lab}: {c.popularity:.1%} of subclass units, {norm}{peer}")
    return "\n".join(lines)


def price_table(situation: ChoiceSituation, price_level: float, apply_style: bool) -> str:
    """Price analyst's slice: current vs regular unit price, discount, rho-perceived gain or loss."""
    perceived = perceived_prices(situation.candidates, style_of(situation), price_level) if apply_style else {}
    lines = []
    for lab, c in zip(labels(situation), situation.candidates, strict=True):
        change = (
            f"{c.discount:.0%} off"
            if c.discount >= 0.005
            else (
                f"{c.price / c.regular_price - 1:.0%} above"
                if c.regular_price and c.price > c.regular_price * 1.005
                else "regular"
            )
        )
        line = f"{lab}: {c.price:.0f} now, regular {c.regular_price:.0f} ({change})"
        if c.product_id in perceived:
            line += f", perceived {perceived[c.product_id].perceived:+.0f}"
        lines.append(line)
    return "\n".join(lines)


def customer_brief(situation: ChoiceSituation) -> str:
    cu = situation.customer
    text = f"age {cu.age_group}, area {cu.pin_code}"
    if cu.n_baskets:
        text += (
            f", {cu.n_baskets} past trips, spends {cu.mean_basket_value:.0f} per trip, "
            f"{cu.mean_quantity:.1f} units per item"
        )
    return text


def recent_baskets_text(situation: ChoiceSituation) -> str:
    if not situation.recent_baskets:
        return "none"
    parts = []
    for b in situation.recent_baskets[:3]:
        units = sum(i.quantity for i in b.items)
        spent = sum(i.quantity * i.unit_price for i in b.items)
        here = sum(i.quantity for i in b.items if i.subclass == situation.subclass)
        tail = f", {here} here" if here else ""
        parts.append(
            f"{(situation.date - b.date).days}d ago {len(b.items)} items {units} units {spent:.0f} spent{tail}"
        )
    return "; ".join(parts)


def own_history_text(situation: ChoiceSituation) -> str:
    lab = label_of(situation)
    parts = []
    for c in situation.candidates:
        h = situation.own_history.get(c.product_id)
        if h and h.times_bought:
            last = f", last {(situation.date - h.last_date).days}d ago" if h.last_date else ""
            paid = f", paid {h.mean_price_paid:.0f}" if h.mean_price_paid else ""
            parts.append(f"{lab[c.product_id]} bought {h.times_bought}x ({h.total_quantity} units{last}{paid})")
    return "; ".join(parts) + "; others never" if parts else "never bought any of them"


def neighbours_text(situation: ChoiceSituation, neighbours: Sequence[RetrievedRecord]) -> str:
    if not neighbours:
        return "none retrieved"
    own = [r for r in neighbours if r.customer_id == situation.customer.customer_id]
    qty = statistics.median(r.quantity for r in neighbours)
    ratio = statistics.median(r.price_ratio for r in neighbours)
    return f"{len(neighbours)} episodes ({len(own)} yours): median {qty:g} units at {ratio:.2f}x regular price"


def hidden_text(hidden: HiddenFactors | None) -> str:
    return NO_Z if hidden is None else hidden.as_text()


def market_text(market: MarketSignal | None, situation: ChoiceSituation) -> str:
    if market is None or not (market.popularity or market.scarcity):
        return ""
    lab = label_of(situation)
    parts = []
    for pid, share in market.popularity.items():
        if pid in lab:
            scarce = market.scarcity.get(pid, 0.0)
            parts.append(f"{lab[pid]} {share:.0%} of demand" + (f", {scarce:.0%} scarce" if scarce else ""))
    return "Market now: " + "; ".join(parts) if parts else ""


def transcript_text(turns: Sequence[TranscriptTurn], chars: int) -> str:
    spoken = [t for t in turns if t.kind in ("turn", "computed") and t.role != "system"]
    if not spoken:
        return "(nothing yet)"
    out = []
    for t in spoken:
        text = " ".join(t.text.split())
        out.append(f"{t.role} (round {t.round}): {text[:chars]}{'...' if len(text) > chars else ''}")
    return "\n".join(out)


def decide_candidates(situation: ChoiceSituation) -> str:
    return "; ".join(
        f"{lab} {c.price:.0f} (regular {c.regular_price:.0f})"
        for lab, c in zip(labels(situation), situation.candidates, strict=True)
    )


def candidate_choices(situation: ChoiceSituation) -> str:
    return ", ".join(f'"{lab}"' for lab in labels(situation)) + ' or "none"'


def role_vars(
    situation: ChoiceSituation,
    neighbours: Sequence[RetrievedRecord],
    hidden: HiddenFactors | None,
    transcript: Sequence[TranscriptTurn],
    *,
    round_no: int = 0,
    apply_style: bool = True,
    transcript_chars: int = 280,
    feedback: str = "",
    max_quantity: int = 100,
    needed: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Prompt variables; only the ``needed`` ones (a template's fields) are computed, all when None.

    Each template uses only its own slice (checked by PROMPT_SPECS), so computing just its
    fields keeps a debate turn cheap.
    """
    price_level = hidden.price_level if hidden is not None else 1.0
    makers: dict[str, Callable[[], Any]] = {
        "round": lambda: round_no,
        "subclass": lambda: situation.subclass,
        "candidates": lambda: ", ".join(labels(situation)),
        "product_cards": lambda: product_cards(situation, neighbours),
        "market": lambda: market_text(situation.market, situation),
        "transcript": lambda: transcript_text(transcript, transcript_chars),
        "price_table": lambda: price_table(situation, price_level, apply_style),
        "price_level": lambda: f"{price_level:.2f}x",
        "style": lambda: style_framing(style_of(situation)) if apply_style else "not applied",
        "customer": lambda: customer_brief(situation),
        "persona": lambda: situation.persona_text or "",
        "hidden_factors": lambda: hidden_text(hidden),
        "recent_baskets": lambda: recent_baskets_text(situation),
        "own_history": lambda: own_history_text(situation),
        "neighbours": lambda: neighbours_text(situation, neighbours),
        "candidate_ids": lambda: candidate_choices(situation),
        "feedback": lambda: feedback,
        "max_quantity": lambda: max_quantity,
    }
    names = makers if needed is None else needed
    return {name: makers[name]() for name in names}


# ---------------------------------------------------------------- the decision answer
class DecisionAnswer(BaseModel):
    """What the LLM answers: a candidate label (or 'none'), units, a short reason, a confidence."""

    model_config = ConfigDict(extra="ignore")

    product: str
    quantity: int
    rationale: str = ""
    confidence: float = 0.5


def answer_text(label: str, quantity: int, rationale: str = "", confidence: float = 1.0) -> str:
    """A decide answer as JSON text, fields in the order the prompt asks (the aligned models' SFT target)."""
    return json.dumps(
        DecisionAnswer(product=label, quantity=quantity, rationale=rationale, confidence=confidence).model_dump()
    )


def label_keys(situation: ChoiceSituation) -> dict[str, str]:
    """Label -> product id (the answer keys of the decide prompts)."""
    return {lab: c.product_id for lab, c in zip(labels(situation), situation.candidates, strict=True)}


def answer_schema(situation: ChoiceSituation, max_quantity: int, rationale_chars: int) -> dict[str, Any]:
    """JSON schema for the llama.cpp grammar: the label is an enum, the rationale short."""
    return {
        "type": "object",
        "properties": {
            "product": {"type": "string", "enum": [*labels(situation), NONE_PRODUCT]},
            "quantity": {"type": "integer", "minimum": 0, "maximum": max_quantity},
            "rationale": {"type": "string", "maxLength": rationale_chars},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        },
        "required": ["product", "quantity", "rationale", "confidence"],
        "additionalProperties": False,
    }


def to_decision(answer: DecisionAnswer, situation: ChoiceSituation, rationale_chars: int) -> Decision:
    """The Decision an answer stands for (raises ValueError/ValidationError when it is invalid)."""
    mapping = label_map(situation)
    key = answer.product.strip()
    product_id = mapping.get(key, mapping.get(key.lower(), key))
    return Decision(
        product_id=product_id,
        quantity=answer.quantity,
        rationale=answer.rationale.strip()[:rationale_chars],
        confidence=min(1.0, max(0.0, answer.confidence)),
    )


def answer_problems(answer: DecisionAnswer, situation: ChoiceSituation, max_quantity: int) -> list[str]:
    """Why an answer is not a valid decision here (empty when valid); fed back for repair."""
    mapping = label_map(situation)
    key = answer.product.strip()
    problems = []
    if key not in mapping and key.lower() not in mapping:
        problems.append(f"product {answer.product!r} is not one of {candidate_choices(situation)}")
    if answer.quantity < 0:
        problems.append(f"quantity {answer.quantity} is negative")
    elif answer.quantity > max_quantity:
        problems.append(f"quantity {answer.quantity} is above the limit {max_quantity}")
    if not problems:
        is_none = mapping.get(key, mapping.get(key.lower())) == NONE_PRODUCT
        if is_none and answer.quantity != 0:
            problems.append('quantity must be 0 when product is "none"')
        if not is_none and answer.quantity == 0:
            problems.append("quantity must be at least 1 when a product is chosen")
    return problems
