"""The retail environment rule: demand, stock, stock-outs, prices and promotions, market signals."""

from __future__ import annotations

import datetime as dt

import pytest

from malles_graph.models import ChoiceSituation, Customer, Product
from malles_graph.population.environment import AgentSpec, Environment
from malles_graph.population.meanfield import Aggregate
from malles_graph.population.retail import RetailEnvironment, RetailMarket, price_pressure
from malles_graph.scenario import RetailEnvironmentConfig


def shelf() -> list[Product]:
    return [
        Product(product_id="p1", subclass="s", price=10, regular_price=10, popularity=0.6),
        Product(product_id="p2", subclass="s", price=20, regular_price=20, popularity=0.4),
    ]


def agents(n: int = 2) -> list[AgentSpec]:
    return [
        AgentSpec(
            agent_id=f"a{i}", archetype=i, weight=1 / n,
            base=ChoiceSituation(situation_id=f"c{i}", date=dt.date(2001, 2, 1), customer=Customer(customer_id=f"c{i}"),
                                 subclass="s", candidates=shelf()),
        )
        for i in range(n)
    ]


def agg(units: dict[str, float]) -> Aggregate:
    return Aggregate(mu={}, units_per_customer=units, n_decisions=2, n_failed=0, failed_share=0.0, failed_mass=0.0)


def test_is_an_environment_and_starts_from_reference_popularity() -> None:
    env = RetailEnvironment(RetailEnvironmentConfig(initial_stock=100))
    assert isinstance(env, Environment)
    market, m0 = env.initial(agents(), 1000)
    state = RetailMarket.model_validate(market)
    assert {p: s.stock for p, s in state.products.items()} == {"p1": 100, "p2": 100}
    assert m0["p1"] == pytest.approx(0.6) and m0["p2"] == pytest.approx(0.4) and m0["none"] == 0


def test_demand_sells_stock_and_scarce_products_get_dearer_overstocked_cheaper() -> None:
    cfg = RetailEnvironmentConfig(initial_stock=100, visit_rate=0.1, target_cover=3, price_step=0.1)
    env = RetailEnvironment(cfg)
    market, _ = env.initial(agents(), 1000)
    # 100 shoppers; p1: 0.8 units each = 80 units (cover 20/80 < 3: scarce), p2: nothing (overstocked)
    step = env.update(market, agg({"p1": 0.8}), 1)
    state = RetailMarket.model_validate(step.market)
    assert step.demand == {"p1": 80.0, "p2": 0.0}
    assert state.products["p1"].stock == 20
    assert step.prices["p1"] > 10 and step.prices["p2"] < 20  # dearer / on promotion
    assert step.prices["p2"] == pytest.approx(20 * (1 - 0.1))
    assert step.figures["units_sold"] == 80 and step.figures["on_promotion"] == 1


def test_stock_out_removes_the_candidate_and_lost_sales_are_counted() -> None:
    env = RetailEnvironment(RetailEnvironmentConfig(initial_stock=10, visit_rate=1.0))
    market, m0 = env.initial(agents(), 100)
    step = env.update(market, agg({"p1": 1.0}), 1)  # 100 units wanted, 10 in stock
    assert step.figures["units_lost"] == 90 and step.figures["sold_out"] == 1
    tasks = env.situations(step.market, m0, agents(), 2)
    assert all(t.situation.candidate_ids == ["p2"] for t in tasks)
    assert all(t.situation.market.scarcity == {"p2": 0.0} for t in tasks)
    assert tasks[0].situation.situation_id == "c0@r2"


def test_everything_sold_out_gives_a_fixed_none_outcome() -> None:
    env = RetailEnvironment(RetailEnvironmentConfig(initial_stock=1, visit_rate=1.0))
    market, m0 = env.initial(agents(), 100)
    step = env.update(market, agg({"p1": 1.0, "p2": 1.0}), 1)
    tasks = env.situations(step.market, m0, agents(), 2)
    assert all(t.situation is None and t.outcome.choice == "none" and t.outcome.ok for t in tasks)
    assert "sold out" in tasks[0].outcome.details["computed"]


def test_prices_stay_within_bounds() -> None:
    cfg = RetailEnvironmentConfig(initial_stock=1000, price_step=0.5, max_discount=0.2, restock=1000)
    env = RetailEnvironment(cfg)
    market, _ = env.initial(agents(), 100)
    for number in range(1, 20):
        market = env.update(market, agg({}), number).market
    prices = {p: s.product.price for p, s in RetailMarket.model_validate(market).products.items()}
    assert prices == pytest.approx({"p1": 8.0, "p2": 16.0})


def test_price_pressure_is_bounded_and_symmetric() -> None:
    assert price_pressure(0.0, 3) == 1.0
    assert price_pressure(float("inf"), 3) == -1.0
    assert price_pressure(3.0, 3) == 0.0
    assert price_pressure(1.5, 3) == pytest.approx(-price_pressure(6.0, 3))
