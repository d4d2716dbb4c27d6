"""What the roles see: compact text views of a choice situation, named by short labels.

Every role prompt opens with the same context block (the shopper, product cards, price table, market
signal; docs/performance.md), so the views it is made of list the candidates in label order
(:func:`canonical`) whatever rotation a decide sample shows them in: the block renders byte-identically
for every role, round and sample, and the server's prompt cache serves it. Only :func:`offers` (the
decide menu) and :func:`candidate_choices` follow the rotation. Candidates are named by short labels
(A, B, C...) rather than 13-digit ids; :func:`label_map` maps labels (and ids) back when the decision
is validated.
"""

from __future__ import annotations

import statistics
import string
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from malles_graph.agents import TranscriptTurn
from malles_graph.models import (
    NONE_PRODUCT,
    ChoiceSituation,
    HiddenFactors,
    MarketSignal,
    Product,
    StyleParams,
)
from malles_graph.retail.retrieval_api import RetrievedRecord
from malles_graph.retail.stabilise import perceived_prices, style_framing

NO_Z = "not estimated"


def labels(situation: ChoiceSituation) -> list[str]:
    """The label of each candidate: its own, else A, B, C... by position (ids beyond 26)."""
    out = []
    for i, c in enumerate(situation.candidates):
        out.append(c.label or (string.ascii_uppercase[i] if i < 26 else c.product_id))
    return out


def canonical(situation: ChoiceSituation) -> list[tuple[str, Product]]:
    """(label, candidate) pairs sorted by label: the same order whatever rotation a sample lists them in.

    The shared context block (candidates, product cards, price table, own history, market) is rendered in
    this order, so every role and every sample of a decision sends the same first tokens and the server's
    prompt cache serves them.
    """
    return sorted(zip(labels(situation), situation.candidates, strict=True), key=lambda pair: pair[0])


def label_map(situation: ChoiceSituation) -> dict[str, str]:
    """Label (any case) or product id -> product id, plus 'none'."""
    out = {NONE_PRODUCT: NONE_PRODUCT}
    for lab, c in zip(labels(situation), situation.candidates, strict=True):
        out[lab] = out[lab.lower()] = out[c.product_id] = c.product_id
    return out


def label_of(situation: ChoiceSituation) -> dict[str, str]:
    """Product id -> label."""
    return {c.product_id: lab for lab, c in zip(labels(situation), situation.candidates, strict=True)}


def rotated(situation: ChoiceSituation, shift: int) -> ChoiceSituation:
    """The same situation with its candidates listed from position ``shift`` on, each keeping its label.

    The decide node lists the candidates rotated by the sample index, so the samples of one vote
    each see another candidate first: a model that picks whatever is listed first then splits its
    votes instead of agreeing on position A (labels, and so the debate's references, stay fixed).
    """
    k = len(situation.candidates)
    if k < 2 or shift % k == 0:
        return situation
    named = [
        c.model_copy(update={"label": lab}) for lab, c in zip(labels(situation), situation.candidates, strict=True)
    ]
    return situation.model_copy(update={"candidates": named[shift % k :] + named[: shift % k]})


def style_of(situation: ChoiceSituation) -> StyleParams:
    return situation.style or StyleParams()


# ---------------------------------------------------------------- the slices
def peer_counts(neighbours: Sequence[RetrievedRecord]) -> dict[str, int]:
    """Product id -> in how many retrieved episodes it was bought."""
    chosen: dict[str, int] = {}
    for r in neighbours:
        for pid in r.product_ids:
            chosen[pid] = chosen.get(pid, 0) + 1
    return chosen


def attributes_text(product: Product, limit: int = 8) -> str:
    """The data's own product attributes (display, feature, brand, size, ...), sorted by name."""
    items = sorted(product.attributes.items())[:limit]
    return ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in items)


def product_cards(situation: ChoiceSituation, neighbours: Sequence[RetrievedRecord]) -> str:
    """Each product's popularity, quantity norm, what similar shoppers chose, attributes (label order)."""
    chosen = peer_counts(neighbours)
    lines = []
    for lab, c in canonical(situation):
        norm = f"usually {c.median_quantity:g} unit(s) per purchase" if c.median_quantity else "no quantity norm"
        peer = f", in {chosen.get(c.product_id, 0)} of {len(neighbours)} similar baskets" if neighbours else ""
        attrs = attributes_text(c)
        lines.append(f"{lab}: {c.popularity:.1%} of subclass units, {norm}{peer}" + (f"; {attrs}" if attrs else ""))
    return "\n".join(lines)


def price_table(situation: ChoiceSituation, price_level: float, apply_style: bool) -> str:
    """Current vs regular unit price, discount, rho-perceived gain or loss (label order)."""
    perceived = perceived_prices(situation.candidates, style_of(situation), price_level) if apply_style else {}
    lines = []
    for lab, c in canonical(situation):
        line = f"{lab}: {c.price:.0f} now, regular {c.regular_price:.0f} ({price_change(c)})"
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
    parts = []
    for lab, c in canonical(situation):
        h = situation.own_history.get(c.product_id)
        if h and h.times_bought:
            last = f", last {(situation.date - h.last_date).days}d ago" if h.last_date else ""
            paid = f", paid {h.mean_price_paid:.0f}" if h.mean_price_paid else ""
            parts.append(f"{lab} bought {h.times_bought}x ({h.total_quantity} units{last}{paid})")
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


def market_shares(market: MarketSignal | None, situation: ChoiceSituation) -> dict[str, float]:
    """Popularity renormalised over the products still offered (a sold-out product leaves the shelf)."""
    if market is None:
        return {}
    offered = {c.product_id for c in situation.candidates}
    raw = {pid: share for pid, share in market.popularity.items() if pid in offered and share > 0}
    total = sum(raw.values())
    return {pid: share / total for pid, share in raw.items()} if total > 0 else {}


def market_text(market: MarketSignal | None, situation: ChoiceSituation) -> str:
    """The mean-field signal as the roles read it: each offered product's share of demand and its scarcity."""
    if market is None or not (market.popularity or market.scarcity):
        return ""
    shares = market_shares(market, situation)
    parts = []
    for lab, c in canonical(situation):  # the shared preamble: one order for every role and sample
        share, scarce = shares.get(c.product_id, 0.0), market.scarcity.get(c.product_id, 0.0)
        if share or scarce:
            parts.append(f"{lab} {share:.0%} of demand" + (f", {scarce:.0%} scarce" if scarce else ""))
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


def price_change(c: Product) -> str:
    """'20% off', '6% above' or 'regular': the current price against the regular one."""
    if c.discount >= 0.005:
        return f"{c.discount:.0%} off"
    if c.regular_price and c.price > c.regular_price * 1.005:
        return f"{c.price / c.regular_price - 1:.0%} above"
    return "regular"


def offers(situation: ChoiceSituation) -> str:
    """The decide menu: each candidate's price now, in the order this sample lists them (its rotation).

    The details (cards, price table, evidence) are in the shared block above it; this short list comes last,
    next to the answer, so each sample of a vote sees another candidate first.
    """
    return "\n".join(
        f"{lab}: {c.price:.0f} now ({price_change(c)})"
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
        "candidates": lambda: ", ".join(lab for lab, _ in canonical(situation)),
        "offers": lambda: offers(situation),
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
