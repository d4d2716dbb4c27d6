"""The computed agent's count model pieces: the MAE-optimal answer and the population's units before the date."""

from __future__ import annotations

import datetime as dt

import numpy as np

from malles_graph.roles.memory import Line, PopulationMemory
from malles_graph.roles.quantity import units, weighted_median

DAY = dt.date(2001, 2, 10)


def test_weighted_median_is_the_mae_optimal_answer():
    values = np.array([1, 2, 5])
    for weights in ([0.2, 0.2, 0.6], [0.6, 0.3, 0.1], [0.3, 0.4, 0.3]):
        w = np.array(weights)
        expected = min(range(1, 7), key=lambda q: float((w * np.abs(values - q)).sum()))
        assert weighted_median(values, w) == expected
    assert weighted_median(np.array([3, 1]), np.array([0.5, 0.5])) == 1  # a tie goes to the smaller answer


def test_units_are_whole_and_at_least_one():
    assert units(np.array([-0.3, 0.2, 1.49, 1.5, 2.7])).tolist() == [1, 1, 1, 2, 3]


def test_quantity_profile_sees_only_lines_before_the_date():
    def line(days_before: int, qty: int, who: str) -> Line:
        return Line(who, DAY.toordinal() - days_before, "s", "p", qty, 1.0)

    memory = PopulationMemory.from_lines([line(5, 1, "a"), line(3, 4, "b"), line(0, 9, "c"), line(-2, 9, "d")])
    n, several, log_units = memory.quantity_profile("p", DAY)
    assert n == 2  # the decision day and later are invisible
    assert several == (1 + 0.2) / 3
    assert np.isclose(log_units, np.log(4) / 3)
    assert memory.quantity_profile("unknown", DAY) == (0.0, 0.2, 0.0)
