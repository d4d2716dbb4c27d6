"""Hidden factor reconstruction Z: attention weights, aggregation, provenance, no future leaks."""

from __future__ import annotations

import datetime as dt

import pytest

from malles_graph.models import CandidateHistory, ChoiceSituation, Customer, Product
from malles_graph.retail.hidden_factors import attention_weights, neighbour_episodes, reconstruct, usual_quantity
from malles_graph.retail.retrieval_api import make_record

DAY = dt.date(2001, 2, 10)


def situation(**kw) -> ChoiceSituation:
    data = dict(
        situation_id="s", date=DAY, customer=Customer(customer_id="me", mean_quantity=3.0), subclass="9",
        candidates=[Product(product_id="p1", subclass="9", price=8, regular_price=10, median_quantity=2),
                    Product(product_id="p2", subclass="9", price=10, regular_price=10, median_quantity=2)],
    )
    data.update(kw)
    return ChoiceSituation(**data)


def rec(customer: str, days_ago: int, quantity: int, ratio: float, sim: float = 0.5):
    return make_record(customer, DAY - dt.timedelta(days=days_ago), "9", ["p1"], quantity, 8.0, ratio).model_copy(
        update={"similarity": sim})


def test_attention_prefers_similar_and_recent():
    s = situation()
    eps = neighbour_episodes(s, [rec("a", 1, 1, 1.0, sim=0.9), rec("b", 1, 1, 1.0, sim=0.1), rec("c", 60, 1, 1.0, sim=0.9)])
    w = attention_weights(eps, DAY)
    assert sum(w) == pytest.approx(1.0)
    assert w[0] > w[1] and w[0] > w[2]
    # 60 days at a 30-day half life: a quarter of the weight of the same similarity yesterday
    assert w[2] / w[0] == pytest.approx(0.5 ** (59 / 30), rel=1e-6)


def test_own_episodes_dominate_usual_quantity_and_price_level():
    s = situation()
    z = reconstruct(s, [rec("me", 10, 6, 0.8), rec("x", 10, 1, 1.0, sim=0.2)]).hidden
    assert z.usual_quantity == pytest.approx(6.0, abs=0.01)  # own similarity 1.0 vs 0.2 at temperature 0.1
    assert z.price_level == pytest.approx(0.8, abs=0.01)
    assert z.budget_pressure.value == pytest.approx(1.0, abs=0.01)  # pays 20% below regular
    assert z.days_since_last == 10
    assert "1 own + 1 neighbour" in z.stock_up_intent.provenance


def test_future_records_are_ignored():
    s = situation()
    z_with = reconstruct(s, [rec("x", 5, 2, 1.0), rec("x", 0, 500, 0.1)]).hidden
    z_without = reconstruct(s, [rec("x", 5, 2, 1.0)]).hidden
    assert z_with == z_without


def test_no_history_falls_back_with_honest_provenance():
    z = reconstruct(situation(customer=Customer(customer_id="me"))).hidden
    assert z.usual_quantity == 1.0 and z.price_level == 1.0 and z.days_since_last is None
    assert "no history" in z.stock_up_intent.provenance
    assert z.brand_attachment.value == 0.0 and "never bought" in z.brand_attachment.provenance
    assert "never bought here before" in z.as_text()


def test_brand_attachment_and_rhythm_from_own_history():
    hist = {"p1": CandidateHistory(times_bought=4, total_quantity=8, last_date=DAY - dt.timedelta(days=30),
                                   mean_price_paid=9)}
    z = reconstruct(situation(own_history=hist), [rec("me", 60, 2, 0.9)]).hidden
    assert z.brand_attachment.value == pytest.approx(4 / 5)  # share 1.0 shrunk by 4/(4+1)
    assert "rhythm 30d" in z.stock_up_intent.provenance and z.days_since_last == 30


def test_usual_quantity_without_z():
    hist = {"p1": CandidateHistory(times_bought=2, total_quantity=10)}
    assert usual_quantity(situation(own_history=hist), None) == 5.0
    assert usual_quantity(situation(), None) == 3.0
