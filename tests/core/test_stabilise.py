"""Stabiliser maths: vote, median, agreement, consistency, rho, calibrator protocol."""

from __future__ import annotations

import pytest

from malles_graph.models import Decision, Product, StyleParams
from malles_graph.retail.stabilise import (
    Calibrator,
    IdentityCalibrator,
    consistency_conflicts,
    majority_vote,
    median_int,
    perceived_prices,
    style_framing,
    style_quantity,
)


def d(p: str, q: int, c: float = 0.5) -> Decision:
    return Decision(product_id=p, quantity=q, confidence=c)


def test_vote_majority_median_agreement():
    v = majority_vote([d("a", 1), d("b", 7), d("a", 4), d("a", 2)])
    assert (v.product_id, v.quantity, v.agreement, v.votes) == ("a", 2, 0.75, {"a": 3, "b": 1})


def test_vote_ties_go_to_confidence_then_first():
    assert majority_vote([d("a", 1, 0.2), d("b", 1, 0.9)]).product_id == "b"
    assert majority_vote([d("a", 1), d("b", 1)]).product_id == "a"
    assert majority_vote([d("none", 0), d("none", 0), d("a", 3)]).quantity == 0


def test_median_rounds_half_up():
    assert median_int([1, 2]) == 2 and median_int([2, 3, 10]) == 3


def test_vote_needs_samples():
    with pytest.raises(ValueError):
        majority_vote([])


def test_consistency_conflicts():
    assert consistency_conflicts(d("a", 20), usual_quantity=2) != []
    assert "10x" in consistency_conflicts(d("a", 20), usual_quantity=2)[0]
    assert consistency_conflicts(d("a", 19), usual_quantity=2) == []
    assert consistency_conflicts(d("none", 0), usual_quantity=0.1) == []
    assert consistency_conflicts(d("a", 9), usual_quantity=0.2) == []  # usual floored at 1 unit


def test_style_quantity():
    assert style_quantity(4, StyleParams()) == 4
    assert style_quantity(4, StyleParams(quantity_propensity=1.0)) == 6
    assert style_quantity(1, StyleParams(quantity_propensity=0.0)) == 1
    assert style_quantity(0, StyleParams(quantity_propensity=1.0)) == 0


def test_perceived_prices_loss_aversion_and_anchoring():
    cheap = Product(product_id="c", subclass="s", price=8, regular_price=10)
    dear = Product(product_id="d", subclass="s", price=12, regular_price=10)
    p = perceived_prices([cheap, dear], StyleParams(discount_sensitivity=0.5, loss_aversion=3, reference_anchoring=1))
    assert p["c"].perceived == pytest.approx(2.0) and p["d"].perceived == pytest.approx(-6.0)
    # weak anchoring: the reference moves towards what the customer usually pays (0.8x regular)
    q = perceived_prices([cheap], StyleParams(reference_anchoring=0.0), price_level=0.8)
    assert q["c"].reference == pytest.approx(8.0) and q["c"].gain == pytest.approx(0.0)


def test_style_framing_mentions_traits():
    text = style_framing(StyleParams(discount_sensitivity=0.9, loss_aversion=4, quantity_propensity=0.1))
    assert "weighs discounts heavily" in text and "4.0x" in text and "as few units" in text
    assert style_framing(StyleParams()) == "The customer has an average price style."


def test_identity_calibrator_is_a_calibrator():
    cal = IdentityCalibrator()
    assert isinstance(cal, Calibrator)
    x = d("a", 2)
    assert cal(x, None, None) is x  # type: ignore[arg-type]
