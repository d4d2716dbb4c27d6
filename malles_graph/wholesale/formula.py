"""Purchasing rules: a formula over named variables, parsed with sympy and validated.

Parsing goes through ``sympy.parsing.sympy_parser.parse_expr`` with a restricted local dict
(the allowed variables and functions) and a global dict holding only the number and symbol
constructors the parser emits, with no builtins. The text is screened first (allowed
characters, no double underscores, bounded length), so nothing in a formula can reach Python
beyond sympy arithmetic. Unknown names are parsed as free symbols or undefined functions and
then rejected by name, so the reason can be fed back to the model.
"""

from __future__ import annotations

import keyword
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from tokenize import TokenError

import sympy as sp
from sympy.core.function import AppliedUndef
from sympy.parsing.sympy_parser import convert_xor, parse_expr, standard_transformations

# The variables a purchasing rule may use, with what they mean (shown to the model and in the docs).
VARIABLES: dict[str, str] = {
    "forecast": "moving-average demand of the last forecast_window periods (units per period)",
    "demand_sd": "standard deviation of demand over the same window (units)",
    "last_demand": "units demanded in the previous period",
    "inventory": "units on hand when ordering (after this period's delivery, before its demand)",
    "on_order": "units ordered earlier that have not arrived yet (0 when lead_time is 1)",
    "lead_time": "periods between placing an order and its arrival",
    "price": "retail (shelf) price per unit",
    "cost": "manufacturer's list price per unit",
    "discount": "fraction off the list price at the first volume tier",
    "discount_qty": "order size from which that first discount applies",
    "min_order": "smallest non-zero order the manufacturer accepts",
    "holding_cost": "cost of holding one unit for one period",
    "critical_ratio": "newsvendor critical ratio: lost margin / (lost margin + holding_cost)",
    "period": "index of the period in the simulated window (1, 2, ...)",
}

FUNCTIONS: dict[str, object] = {
    "Max": sp.Max,
    "Min": sp.Min,
    "max": sp.Max,
    "min": sp.Min,
    "sqrt": sp.sqrt,
    "log": sp.log,
    "exp": sp.exp,
    "Abs": sp.Abs,
    "abs": sp.Abs,
    "floor": sp.floor,
    "ceiling": sp.ceiling,
    "ceil": sp.ceiling,
}

SYMBOLS: dict[str, sp.Symbol] = {name: sp.Symbol(name, real=True) for name in VARIABLES}
_PARSER_GLOBALS: dict[str, object] = {
    "__builtins__": {},
    "Integer": sp.Integer,
    "Float": sp.Float,
    "Rational": sp.Rational,
    "Symbol": sp.Symbol,
    "Function": sp.Function,
}
_ALLOWED_TEXT = re.compile(r"^[A-Za-z0-9_+\-*/^().,\s]*$")
_ASSIGNMENT = re.compile(r"^\s*[A-Za-z_][A-Za-z0-9_]*\s*=(?!=)")
_ATTRIBUTE = re.compile(r"\.\s*[A-Za-z_]")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_LENGTH = 400


class FormulaError(ValueError):
    """A formula that cannot be parsed or uses something it may not; the message is fed back to the model."""


@dataclass(frozen=True)
class PurchasingFormula:
    text: str
    expr: sp.Expr

    @property
    def variables(self) -> list[str]:
        return sorted(str(s) for s in self.expr.free_symbols)

    @property
    def simplified(self) -> str:
        return str(safe_simplify(self.expr))

    @cached_property
    def _function(self):
        # lambdify prints the expression we built (validated names only) to Python math code: exact floats,
        # no sympy precision loss in near-cancellations such as Max(0, 2*a - a - a)
        names = self.variables
        return names, sp.lambdify([SYMBOLS[n] for n in names], self.expr, modules=["math"])

    def evaluate(self, values: Mapping[str, float]) -> float:
        """The order quantity for one context; raises FormulaError if it is not a finite real number."""
        names, function = self._function
        try:
            result = function(*(float(values[n]) for n in names))
        except ZeroDivisionError:
            raise FormulaError("the formula divides by zero") from None
        except OverflowError:
            raise FormulaError("the formula overflows (exp or a power of a large value?)") from None
        except ValueError as exc:
            raise FormulaError(f"the formula has no real value here ({exc}: log or sqrt of a negative value?)") from None
        if isinstance(result, complex):
            raise FormulaError("the formula gives a complex number (power of a negative value?)")
        value = float(result)
        if not math.isfinite(value):
            raise FormulaError("the formula gives a non-finite value (division by zero or overflow?)")
        return value


SIMPLIFY_MAX_OPS = 40


def safe_simplify(expr: sp.Expr) -> sp.Expr:
    """sympy.simplify where it is cheap; a bounded expansion elsewhere.

    ``simplify`` rewrites nested Max/Min through Piecewise and can run for minutes on a 30-node
    expression (a model's or gplearn's), so those only get ``expand`` and keep the shorter form.
    """
    if not expr.has(sp.Max, sp.Min) and sp.count_ops(expr) <= SIMPLIFY_MAX_OPS:
        return sp.simplify(expr)
    expanded = sp.expand(expr)
    return expanded if sp.count_ops(expanded) < sp.count_ops(expr) else expr


def parse_formula(text: str) -> PurchasingFormula:
    """Parse ``text`` (optionally ``order = ...``) into a formula over :data:`VARIABLES`."""
    if not isinstance(text, str) or not text.strip():
        raise FormulaError("the formula is empty")
    body = text.strip()
    if _ASSIGNMENT.match(body):
        body = body.split("=", 1)[1].strip()
    if len(body) > MAX_LENGTH:
        raise FormulaError(f"the formula is longer than {MAX_LENGTH} characters")
    if not _ALLOWED_TEXT.match(body) or "__" in body:
        bad = sorted({c for c in body if not _ALLOWED_TEXT.match(c)} | ({"__"} if "__" in body else set()))
        raise FormulaError(f"the formula contains characters that are not allowed: {bad}; use + - * / ^ ( ) ,")
    if _ATTRIBUTE.search(body):
        raise FormulaError("the formula may not use attribute access ('.' is only a decimal point)")
    keywords = sorted({w for w in _WORD.findall(body) if keyword.iskeyword(w)})
    if keywords:
        raise FormulaError(f"the formula may not use Python keywords {keywords}; use Max/Min for conditions")
    try:
        expr = parse_expr(
            body,
            local_dict={**SYMBOLS, **FUNCTIONS},
            global_dict=dict(_PARSER_GLOBALS),
            transformations=(*standard_transformations, convert_xor),
            evaluate=True,
        )
    except (SyntaxError, TypeError, ValueError, AttributeError, NameError, TokenError) as exc:
        raise FormulaError(f"the formula is not valid arithmetic: {body!r} ({type(exc).__name__})") from None
    if not isinstance(expr, sp.Expr) or isinstance(expr, sp.logic.boolalg.Boolean):
        raise FormulaError("the formula must be an arithmetic expression giving a quantity, not a comparison")
    unknown_functions = sorted({type(f).__name__ for f in expr.atoms(AppliedUndef)})
    if unknown_functions:
        raise FormulaError(f"unknown function(s) {unknown_functions}; allowed functions: {sorted(set(FUNCTIONS))}")
    unknown = sorted(str(s) for s in expr.free_symbols if str(s) not in VARIABLES)
    if unknown:
        raise FormulaError(f"unknown variable(s) {unknown}; allowed variables: {sorted(VARIABLES)}")
    # parse_expr builds plain symbols; swap in the real-valued ones so simplification knows they are real.
    expr = expr.xreplace({s: SYMBOLS[str(s)] for s in expr.free_symbols})
    return PurchasingFormula(text=body, expr=expr)


def check_formula(formula: PurchasingFormula, contexts: Iterable[Mapping[str, float]]) -> list[str]:
    """Problems of ``formula`` over representative contexts: non-finite or negative orders."""
    for values in contexts:
        shown = ", ".join(f"{k}={values[k]:g}" for k in formula.variables)
        try:
            quantity = formula.evaluate(values)
        except FormulaError as exc:
            return [f"{exc} at {shown or 'any values'}"]
        if quantity < 0:
            return [
                f"the formula orders a negative quantity ({quantity:.1f}) at {shown}; "
                "orders must be >= 0 (wrap the expression in Max(0, ...))"
            ]
    return []


def validate_formula(text: str, contexts: Iterable[Mapping[str, float]]) -> tuple[PurchasingFormula | None, str | None]:
    """Parse and check; returns (formula, None) or (None, reason)."""
    try:
        formula = parse_formula(text)
    except FormulaError as exc:
        return None, str(exc)
    problems = check_formula(formula, contexts)
    if problems:
        return None, "; ".join(problems)
    return formula, None
