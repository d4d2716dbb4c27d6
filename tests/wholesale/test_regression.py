"""Symbolic regression: recovering known formulas from synthetic decision logs, the Pareto front."""

from __future__ import annotations

import warnings

import numpy as np
import sympy as sp

from malles_graph.wholesale.formula import SYMBOLS
from malles_graph.wholesale.regression import discover, pareto_front, to_sympy

F, INV = SYMBOLS["forecast"], SYMBOLS["inventory"]


def _fit(y_of, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.uniform(50, 150, 150), rng.uniform(0, 300, 150), rng.uniform(1, 20, 150)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return discover(x, y_of(x), ["forecast", "inventory", "demand_sd"], population=400, generations=15,
                        random_state=0)


def _agrees(expression: str, truth, seed: int = 9) -> bool:
    """The expression gives the true orders on fresh states from the same domain."""
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.uniform(50, 150, 200), rng.uniform(0, 300, 200), rng.uniform(1, 20, 200)])
    expr = sp.sympify(expression, locals={"forecast": F, "inventory": INV, "demand_sd": SYMBOLS["demand_sd"]})
    f = sp.lambdify([F, INV, SYMBOLS["demand_sd"]], expr, modules="numpy")
    return bool(np.allclose(np.broadcast_to(f(x[:, 0], x[:, 1], x[:, 2]), (200,)), truth(x)))


def test_recovers_a_linear_order_rule() -> None:
    truth = lambda x: 2 * x[:, 0] - x[:, 1]  # noqa: E731
    found = _fit(truth)
    assert found.chosen.error < 1e-6 and _agrees(found.chosen.expression, truth)


def test_recovers_a_clipped_order_up_to_rule() -> None:
    truth = lambda x: np.maximum(0, 2 * x[:, 0] - x[:, 1])  # noqa: E731
    found = _fit(truth)
    assert found.chosen.error < 1e-6 and _agrees(found.chosen.expression, truth)


def test_front_is_monotone_and_chosen_is_on_it() -> None:
    found = _fit(lambda x: 2 * x[:, 0] - x[:, 1] + np.sin(x[:, 2]) * 5)
    lengths = [p.length for p in found.front]
    errors = [p.error for p in found.front]
    assert lengths == sorted(lengths) and len(set(lengths)) == len(lengths)
    assert errors == sorted(errors, reverse=True)
    assert found.chosen in found.front
    assert found.baseline_error > found.chosen.error


def test_pareto_front_drops_dominated_points() -> None:
    points = [(1, 10.0, "a"), (3, 12.0, "b"), (3, 5.0, "c"), (5, 5.0, "d"), (7, 1.0, "e"), (7, 2.0, "f")]
    assert [p[2] for p in pareto_front(points)] == ["a", "c", "e"]


def test_gplearn_program_to_sympy() -> None:
    expr = to_sympy("pos(sub(mul(X0, 2.0), X1))", ["forecast", "inventory"])
    assert sp.simplify(expr - sp.Max(0, 2 * F - INV)) == 0


def test_a_constant_decision_is_reported_as_that_constant() -> None:
    x = np.random.default_rng(1).uniform(0, 100, (30, 2))
    found = discover(x, np.full(30, 100205.0), ["forecast", "inventory"], population=50, generations=2)
    assert found.chosen.expression == "100205" and found.chosen.error == 0 and len(found.front) == 1
