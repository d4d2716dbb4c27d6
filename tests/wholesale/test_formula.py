"""Purchasing formulas: parsing on a restricted namespace, and validation of bad formulas."""

from __future__ import annotations

import pytest

from malles_graph.wholesale.formula import VARIABLES, FormulaError, check_formula, parse_formula, validate_formula

STATE = {name: 1.0 for name in VARIABLES} | {"forecast": 100.0, "inventory": 30.0, "on_order": 20.0, "lead_time": 1.0}


def test_parses_a_rule_and_evaluates_it() -> None:
    formula = parse_formula("order = Max(0, forecast*(lead_time + 1) - inventory - on_order)")
    assert formula.variables == ["forecast", "inventory", "lead_time", "on_order"]
    assert formula.evaluate(STATE) == pytest.approx(150.0)
    assert formula.evaluate(STATE | {"inventory": 500.0}) == 0.0


def test_caret_is_power_and_lowercase_aliases_work() -> None:
    assert parse_formula("forecast^2 / 100").evaluate(STATE) == pytest.approx(100.0)
    assert parse_formula("max(0, min(forecast, 50)) + ceil(0.2)").evaluate(STATE) == pytest.approx(51.0)


def test_exact_cancellation_inside_max_is_fine() -> None:
    # sympy's evalf loses this to 0.e-122 "not comparable"; the compiled evaluation does not
    formula = parse_formula("Max(0, 2*forecast - inventory - on_order)")
    assert formula.evaluate(STATE | {"forecast": 1500.3, "inventory": 1500.3, "on_order": 1500.3}) == 0.0


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("forecast + x", "unknown variable(s) ['x']"),
        ("foo(forecast)", "unknown function(s) ['foo']"),
        ("__import__('os').system('true')", "not allowed"),
        ("forecast.func(1)", "attribute access"),
        ("forecast if inventory else 0", "Python keywords"),
        ("forecast > inventory", "not allowed"),
        ("(forecast - inventory", "not valid arithmetic"),
        ("forecast * * 2 +", "not valid arithmetic"),
        ("forecast" + " + 1" * 200, "longer than"),
    ],
)
def test_bad_formulas_are_rejected_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(FormulaError, match=None) as info:
        parse_formula(text)
    assert reason in str(info.value)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("forecast - inventory", "negative quantity"),
        ("forecast / inventory", "divides by zero"),
        ("sqrt(inventory - 10)", "no real value"),
        ("(inventory - 10)^0.5", "complex"),
        ("exp(forecast)", "overflows"),
    ],
)
def test_values_that_are_no_order_are_rejected(text: str, reason: str) -> None:
    states = [STATE | {"inventory": 0.0}, STATE | {"inventory": 200.0}, STATE | {"forecast": 1000.0}]
    formula, problem = validate_formula(text, states)
    assert formula is None
    assert reason in problem


def test_a_valid_rule_has_no_problems() -> None:
    formula = parse_formula("Max(0, 2*forecast - inventory)")
    assert check_formula(formula, [STATE, STATE | {"inventory": 0.0}]) == []
    assert formula.simplified == "Max(0, 2*forecast - inventory)"
