"""Mean-field maths: weighted aggregation, damped update, distance, failure accounting."""

from __future__ import annotations

import pytest

from malles_graph.errors import MallesError
from malles_graph.population.meanfield import (
    WeightedOutcome,
    aggregate,
    converged,
    damped_update,
    normalise,
    total_variation,
)


def outcome(agent: str, weight: float, choice: str | None, qty: float = 1.0, ok: bool = True) -> WeightedOutcome:
    return WeightedOutcome(agent_id=agent, archetype=0, weight=weight, ok=ok, choice=choice, quantity=qty)


def test_aggregate_weights_by_mass_and_counts_failures() -> None:
    agg = aggregate([outcome("a", 0.5, "p1", 2), outcome("b", 0.3, "p2", 1), outcome("c", 0.2, None, ok=False)])
    assert agg.n_decisions == 3 and agg.n_failed == 1
    assert agg.failed_share == pytest.approx(1 / 3)
    assert agg.failed_mass == pytest.approx(0.2)
    # mu is renormalised over the successful mass 0.8
    assert agg.mu == pytest.approx({"p1": 0.625, "p2": 0.375})
    assert agg.units_per_customer == pytest.approx({"p1": 0.5 * 2 / 0.8, "p2": 0.3 / 0.8})


def test_all_failed_gives_empty_mu_and_no_update() -> None:
    agg = aggregate([outcome("a", 1.0, None, ok=False)])
    assert agg.mu == {} and agg.failed_share == 1.0
    m = {"p1": 0.4, "none": 0.6}
    assert damped_update(m, agg.mu, 0.5) == m
    assert not converged(0.0, 0.01, agg.failed_share)


def test_damped_update_and_total_variation() -> None:
    m = {"p1": 1.0, "p2": 0.0}
    mu = {"p2": 1.0}
    new = damped_update(m, mu, 0.25)
    assert new == pytest.approx({"p1": 0.75, "p2": 0.25})
    assert total_variation(new, m) == pytest.approx(0.25)
    assert total_variation(m, m) == 0.0
    assert damped_update(m, mu, 1.0) == pytest.approx({"p1": 0.0, "p2": 1.0})


@pytest.mark.parametrize("damping", [0.0, -0.1, 1.5])
def test_damping_outside_unit_interval_is_refused(damping: float) -> None:
    with pytest.raises(MallesError, match="damping"):
        damped_update({"a": 1.0}, {"a": 1.0}, damping)


def test_normalise() -> None:
    assert normalise({"a": 1, "b": 3}) == pytest.approx({"a": 0.25, "b": 0.75})
    assert normalise({"a": 0, "b": 0}) == {"a": 0.5, "b": 0.5}
    assert converged(0.001, 0.01, 0.2) and not converged(0.02, 0.01, 0.0)
