"""The simulator's arithmetic on hand-computed cases, the baselines' quantities against closed forms."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from malles_graph.wholesale.economics import resolve_economics
from malles_graph.wholesale.formula import parse_formula
from malles_graph.wholesale.options import DiscountTier, WholesaleOptions
from malles_graph.wholesale.policies import (
    BaseStockPolicy,
    FormulaPolicy,
    LastDemandPolicy,
    NewsvendorPolicy,
    newsvendor_quantity,
    protection_demand,
)
from malles_graph.wholesale.simulator import simulate, validation_states

from .conftest import make_item

# price 10, list price 6 (margin 0.4), holding 0.1 per unit per week, 10% off from 20 units, order cost 2
OPTIONS = dict(
    retail_price=10.0,
    wholesale_price=6.0,
    holding_cost_rate=0.1 / 6.0,
    discount_tiers=[DiscountTier(min_quantity=20, discount=0.1)],
    min_order=5,
    order_cost=2.0,
    salvage_fraction=0.5,
    forecast_window=2,
    periods=3,
)
ITEM = make_item([10, 10, 8, 15, 5], history_len=2)


def constant(quantity: str) -> FormulaPolicy:
    return FormulaPolicy(f"order {quantity}", parse_formula(quantity))


def test_zero_lead_time_hand_computed() -> None:
    options = WholesaleOptions(**OPTIONS, lead_time=0, initial_inventory=0)
    result = simulate(constant("12"), [ITEM], options)
    # t1: 0+12 on hand, sell 8, keep 4: 80 - (12*6+2) - 0.4 = 5.6
    # t2: 4+12, sell 15, keep 1: 150 - 74 - 0.1 = 75.9
    # t3: 1+12, sell 5, keep 8: 50 - 74 - 0.8 = -24.8; salvage 8 * 3 = 24
    assert [r.profit for r in result.records] == pytest.approx([5.6, 75.9, -24.8])
    assert [r.leftover for r in result.records] == [4, 1, 8]
    summary = result.summary
    assert summary["profit"] == pytest.approx(80.7)
    assert summary["fill_rate"] == 1.0
    assert summary["stockouts"] == 0
    assert summary["leftover_units"] == 8
    assert summary["units_ordered"] == 36


def test_lead_time_discount_and_pipeline_hand_computed() -> None:
    options = WholesaleOptions(**OPTIONS, lead_time=1, initial_inventory=5)
    result = simulate(constant("25"), [ITEM], options)
    # one forecast (10) in transit at the start; 25 units earn the 10% discount: 25*5.4 + 2 = 137
    # t1: 5+10=15, sell 8, keep 7: 80 - 137 - 0.7 = -57.7
    # t2: 7+25=32, sell 15, keep 17: 150 - 137 - 1.7 = 11.3
    # t3: 17+25=42, sell 5, keep 37: 50 - 137 - 3.7 = -90.7; salvage (37 + 25 in transit) * 3 = 186
    assert [r.arrivals for r in result.records] == [10, 25, 25]
    assert [r.unit_price for r in result.records] == pytest.approx([5.4] * 3)
    assert [r.profit for r in result.records] == pytest.approx([-57.7, 11.3, -90.7])
    assert result.summary["profit"] == pytest.approx(48.9)
    assert result.summary["in_transit_units"] == 25
    assert result.records[1].state["on_order"] == 0  # with L=1 the earlier order has just arrived


def test_lost_sales_fill_rate_and_minimum_order() -> None:
    options = WholesaleOptions(**OPTIONS, lead_time=0, initial_inventory=10)
    result = simulate(constant("0"), [ITEM], options)
    assert [r.lost for r in result.records] == [0, 13, 5]
    assert result.summary["fill_rate"] == pytest.approx(10 / 28)
    assert result.summary["stockouts"] == 2
    small = simulate(constant("3"), [ITEM], options)
    assert [r.order for r in small.records] == [5, 5, 5]  # raised to the minimum order


def test_a_rule_without_a_value_is_recorded_not_replaced() -> None:
    options = WholesaleOptions(**OPTIONS, lead_time=0, initial_inventory=0)
    result = simulate(constant("forecast / inventory"), [ITEM], options)
    first = result.records[0]
    assert first.order == 0 and "divides by zero" in first.error
    assert result.summary["invalid_orders"] >= 1


def test_validation_states_cover_empty_full_and_no_demand() -> None:
    states = validation_states([ITEM], WholesaleOptions(**OPTIONS))
    inventories = {s["inventory"] for s in states}
    assert 0.0 in inventories and max(inventories) > 30
    assert any(s["forecast"] == 0 for s in states)


def test_newsvendor_against_closed_forms() -> None:
    rng = np.random.default_rng(3)
    samples = rng.normal(200, 30, size=500)
    ratio = 0.8
    expected = samples.mean() + samples.std(ddof=1) * norm.ppf(ratio)
    assert newsvendor_quantity(samples, ratio, "normal") == pytest.approx(expected)
    # empirical: the smallest q with F(q) >= ratio; on 1..100, F(q) = q/100
    assert newsvendor_quantity(np.arange(1, 101), 0.9, "empirical") == 90
    assert newsvendor_quantity(np.arange(1, 101), 0.905, "empirical") == 91


def test_critical_ratio_and_newsvendor_policy_level() -> None:
    options = WholesaleOptions(**OPTIONS, lead_time=1)
    economics = resolve_economics(options, ITEM)
    assert economics.critical_ratio == pytest.approx(4.0 / 4.1)  # cu = 10 - 6, co = 0.1
    assert list(protection_demand(np.array([1, 2, 3, 4]), 1)) == [3, 5, 7]
    item = make_item([10, 20, 30, 40, 50, 60, 5, 5], history_len=6)
    policy = NewsvendorPolicy("empirical")
    sums = protection_demand(item.history, 1)  # 30, 50, 70, 90, 110
    assert policy.level(item, economics) == np.quantile(sums, economics.critical_ratio, method="inverted_cdf")
    state = {"inventory": 20.0, "on_order": 10.0}
    assert policy.order(state, item, economics) == pytest.approx(110 - 30)


def test_order_up_to_and_last_demand() -> None:
    options = WholesaleOptions(**OPTIONS, lead_time=1)
    economics = resolve_economics(options, ITEM)
    state = {"forecast": 100.0, "demand_sd": 10.0, "lead_time": 1.0, "inventory": 50.0, "on_order": 0.0,
             "last_demand": 77.0}
    policy = BaseStockPolicy(0.95)
    assert policy.order(state, ITEM, economics) == pytest.approx(200 + norm.ppf(0.95) * 10 * np.sqrt(2) - 50)
    assert LastDemandPolicy().order(state, ITEM, economics) == 77.0
