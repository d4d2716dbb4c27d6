"""Stabilisers of LLM decisions (MALLES section on decision stability).

Pure maths, no LLM and no graph, so each piece is testable alone:

* :func:`majority_vote`: n sampled decisions -> the majority product, the median quantity of
  the samples that chose it, and the agreement rate (the stability figure);
* :func:`consistency_conflicts`: a decision checked against the customer's own history
  (a quantity far above their usual is a conflict to send back);
* style parameters rho: :func:`perceived_prices` (discount sensitivity, reference anchoring
  and loss aversion shape how the price analyst sees each price) and
  :func:`style_quantity` (quantity propensity scales the voted quantity);
* :class:`Calibrator`: the hook f(decision, X, Z) that fitted calibrators plug into
  (:class:`IdentityCalibrator` by default).
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from malles_graph.models import NONE_PRODUCT, ChoiceSituation, Decision, HiddenFactors, Product, StyleParams


@dataclass(frozen=True)
class Vote:
    """The outcome of a majority vote over sampled decisions."""

    product_id: str
    quantity: int
    agreement: float
    votes: dict[str, int]
    n: int
    confidence: float


def median_int(values: Sequence[int]) -> int:
    """The median rounded half up to an integer (median of [1, 2] is 2, not the even-rounded 2)."""
    return int(math.floor(statistics.median(values) + 0.5))


def majority_vote(decisions: Sequence[Decision]) -> Vote:
    """Majority product (ties: higher summed confidence, then first seen), median quantity, agreement.

    ``agreement`` is the share of samples that chose the winning product: 1.0 when all agree.
    """
    if not decisions:
        raise ValueError("majority_vote needs at least one decision")
    votes = Counter(d.product_id for d in decisions)
    weight: dict[str, float] = {}
    first: dict[str, int] = {}
    for i, d in enumerate(decisions):
        weight[d.product_id] = weight.get(d.product_id, 0.0) + d.confidence
        first.setdefault(d.product_id, i)
    winner = max(votes, key=lambda p: (votes[p], weight[p], -first[p]))
    chosen = [d for d in decisions if d.product_id == winner]
    quantity = 0 if winner == NONE_PRODUCT else max(1, median_int([d.quantity for d in chosen]))
    return Vote(
        product_id=winner,
        quantity=quantity,
        agreement=votes[winner] / len(decisions),
        votes=dict(votes),
        n=len(decisions),
        confidence=sum(d.confidence for d in chosen) / len(chosen),
    )


def consistency_conflicts(decision: Decision, usual_quantity: float, ratio: float = 10.0) -> list[str]:
    """Conflicts between a decision and the customer's own history (empty when consistent).

    A quantity of at least ``ratio`` times the customer's usual units per purchase is a conflict.
    """
    if decision.product_id == NONE_PRODUCT:
        return []
    usual = max(1.0, usual_quantity)
    if decision.quantity >= ratio * usual:
        return [
            f"quantity {decision.quantity} is {decision.quantity / usual:.0f}x this customer's usual "
            f"{usual:.1f} units per purchase (limit {ratio:g}x)"
        ]
    return []


def style_quantity(quantity: int, style: StyleParams) -> int:
    """Scale a chosen quantity by quantity propensity: x(0.5 + propensity), at least 1.

    Propensity 0.5 (the default) leaves the quantity unchanged; 1.0 gives 1.5x, 0.0 gives 0.5x.
    A 'none' decision (quantity 0) stays 0.
    """
    if quantity <= 0:
        return 0
    return max(1, int(math.floor(quantity * (0.5 + style.quantity_propensity) + 0.5)))


@dataclass(frozen=True)
class PerceivedPrice:
    """How a customer with style rho perceives one candidate's price."""

    reference: float
    gain: float
    perceived: float
    unit_discount: float


def perceived_prices(
    candidates: Sequence[Product], style: StyleParams, price_level: float = 1.0
) -> dict[str, PerceivedPrice]:
    """Reference-dependent price perception (prospect-theory style), per candidate id.

    reference = anchoring x regular + (1 - anchoring) x price_level x regular: a customer who
    anchors weakly compares with what they usually pay. gain = reference - price. A loss
    (negative gain) is multiplied by loss aversion lambda. The result is scaled by discount
    sensitivity x 2, so the default sensitivity 0.5 leaves it unscaled.
    """
    out = {}
    for c in candidates:
        reference = c.regular_price * (style.reference_anchoring + (1 - style.reference_anchoring) * price_level)
        gain = reference - c.price
        value = gain if gain >= 0 else style.loss_aversion * gain
        out[c.product_id] = PerceivedPrice(
            reference=reference, gain=gain, perceived=2 * style.discount_sensitivity * value, unit_discount=c.discount
        )
    return out


def style_framing(style: StyleParams) -> str:
    """A one-line instruction for the price analyst derived from rho."""
    parts = []
    if style.discount_sensitivity >= 0.65:
        parts.append("weighs discounts heavily")
    elif style.discount_sensitivity <= 0.35:
        parts.append("barely reacts to discounts")
    if style.reference_anchoring >= 0.65:
        parts.append("judges prices against the regular price")
    elif style.reference_anchoring <= 0.35:
        parts.append("judges prices against what they usually pay")
    if style.loss_aversion >= 2.5:
        parts.append(f"feels a price above reference {style.loss_aversion:.1f}x as much as a saving")
    if style.quantity_propensity >= 0.65:
        parts.append("likes to buy several units")
    elif style.quantity_propensity <= 0.35:
        parts.append("buys as few units as possible")
    return "The customer " + ", ".join(parts) + "." if parts else "The customer has an average price style."


@runtime_checkable
class Calibrator(Protocol):
    """f(decision, X, Z) -> decision: a fitted correction applied after the vote."""

    def __call__(
        self, decision: Decision, situation: ChoiceSituation, hidden: HiddenFactors | None
    ) -> Decision: ...


class IdentityCalibrator:
    """The default calibrator: returns the decision unchanged."""

    def __call__(self, decision: Decision, situation: ChoiceSituation, hidden: HiddenFactors | None) -> Decision:
        return decision
