"""Symbolic regression of decision patterns with gplearn, simplified with sympy.

gplearn evolves expression trees; every program it kept (the last generation and the
ancestors of later ones) is scored by its length (number of nodes) and its mean absolute
error on the data. The Pareto front keeps the programs that no other program beats on both.
The chosen expression is the shortest on the front that keeps all but ``tolerance`` of the best
program's error reduction over predicting the mean: a compact formula a buyer can read, not
the most accurate tangle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import sympy as sp
from sympy.parsing.sympy_parser import parse_expr

from malles_graph.wholesale.formula import SYMBOLS, safe_simplify

BASE_FUNCTIONS = ("add", "sub", "mul", "div", "max", "min")


def _positive(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def function_set() -> tuple:
    """gplearn's arithmetic plus ``pos(x) = Max(0, x)``: order rules clip at zero, and evolving the
    constant 0 for ``max`` is a needle in a haystack."""
    from gplearn.functions import make_function

    return (*BASE_FUNCTIONS, make_function(function=_positive, name="pos", arity=1))

# gplearn's operators as sympy (div and the protected functions lose their guards at tiny denominators)
_GPLEARN_TO_SYMPY: dict[str, object] = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "max": sp.Max,
    "min": sp.Min,
    "sqrt": lambda a: sp.sqrt(sp.Abs(a)),
    "log": lambda a: sp.log(sp.Abs(a)),
    "abs": sp.Abs,
    "neg": lambda a: -a,
    "inv": lambda a: 1 / a,
    "pos": lambda a: sp.Max(0, a),
}


@dataclass(frozen=True)
class FrontPoint:
    length: int  # gplearn program length (nodes)
    error: float  # mean absolute error on the data
    program: str  # gplearn's text
    expression: str  # sympy-simplified
    complexity: int  # sympy operation count of the simplified expression


@dataclass
class Discovery:
    target: str
    variables: list[str]
    n_samples: int
    front: list[FrontPoint]
    chosen: FrontPoint
    baseline_error: float  # error of predicting the mean, for scale
    settings: dict[str, object] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {
            "target": self.target,
            "variables": self.variables,
            "n_samples": self.n_samples,
            "front": [p.__dict__ for p in self.front],
            "chosen": self.chosen.__dict__,
            "baseline_error": self.baseline_error,
            "settings": self.settings,
        }


def to_sympy(program: str, variables: Sequence[str]) -> sp.Expr:
    """gplearn program text (features named X0, X1, ...) to a sympy expression over the named variables."""
    local: dict[str, object] = dict(_GPLEARN_TO_SYMPY)
    for i, name in enumerate(variables):
        local[f"X{i}"] = SYMBOLS.get(name, sp.Symbol(name, real=True))
    expr = parse_expr(program, local_dict=local, global_dict={"__builtins__": {}, **_number_constructors()})
    return tidy(expr)


def tidy(expr: sp.Expr, digits: int = 4) -> sp.Expr:
    """Whole-number constants as integers (2.0 -> 2), the others rounded to ``digits`` significant digits."""
    replace = {}
    for number in expr.atoms(sp.Float):
        value = float(number)
        if value == int(value):
            replace[number] = sp.Integer(int(value))
        else:
            replace[number] = sp.Float(float(f"{value:.{digits}g}"), digits)
    return expr.xreplace(replace)


def _number_constructors() -> dict[str, object]:
    return {"Integer": sp.Integer, "Float": sp.Float, "Rational": sp.Rational, "Symbol": sp.Symbol}


def pareto_front(points: Sequence[tuple[int, float, str]]) -> list[tuple[int, float, str]]:
    """Points (length, error, key) not dominated by another: sorted by length, errors strictly falling."""
    front: list[tuple[int, float, str]] = []
    for length, error, key in sorted(points, key=lambda p: (p[0], p[1])):
        if not front or error < front[-1][1] - 1e-12:
            if front and front[-1][0] == length:
                continue
            front.append((length, error, key))
    return front


def discover(
    x: np.ndarray,
    y: np.ndarray,
    variables: Sequence[str],
    *,
    target: str = "order",
    population: int = 400,
    generations: int = 15,
    parsimony: float = 0.0005,
    tolerance: float = 0.05,
    random_state: int = 0,
) -> Discovery:
    """Fit compact expressions y ~ f(x) and return the complexity/error Pareto front and the chosen one.

    ``parsimony`` is the length penalty per node as a fraction of the target's mean absolute deviation.
    """
    from gplearn.genetic import SymbolicRegressor

    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.ndim != 2 or x.shape[0] != y.shape[0] or x.shape[1] != len(variables):
        raise ValueError(f"discover: x {x.shape}, y {y.shape} and {len(variables)} variables do not match")
    if x.shape[0] < 5:
        raise ValueError(f"discover: {x.shape[0]} samples are too few for symbolic regression (need 5)")
    baseline = float(np.mean(np.abs(y - y.mean())))
    settings = {
        "population": population,
        "generations": generations,
        "parsimony": parsimony,
        "tolerance": tolerance,
        "random_state": random_state,
        "function_set": [*BASE_FUNCTIONS, "pos"],
    }
    if np.ptp(y) == 0:
        # a constant decision (e.g. a rule that is one number): nothing to evolve, and gplearn's constants
        # (-2..2) could not reach it anyway
        value = tidy(sp.Float(float(y[0])))
        point = FrontPoint(1, 0.0, str(float(y[0])), str(value), 0)
        return Discovery(target, list(variables), int(x.shape[0]), [point], point, 0.0, settings)
    estimator = SymbolicRegressor(
        population_size=population,
        generations=generations,
        function_set=function_set(),
        metric="mean absolute error",
        # gplearn's penalty is per node in the metric's units: scale it by the target's spread so one
        # setting works for orders of 10 and of 10,000 units (without it, noisy targets bloat to 200 nodes)
        parsimony_coefficient=parsimony * max(baseline, 1e-9),
        const_range=(-2.0, 2.0),
        init_depth=(2, 4),
        random_state=random_state,
        n_jobs=1,
    )
    estimator.fit(x, y)
    programs = {}
    for generation in estimator._programs:
        for program in generation:
            if program is not None:
                programs.setdefault(str(program), program)
    scored = []
    for text, program in programs.items():
        error = float(np.mean(np.abs(program.execute(x) - y)))
        if np.isfinite(error):
            scored.append((program.length_, error, text))
    front = []
    for length, error, text in pareto_front(scored):
        expr = tidy(safe_simplify(to_sympy(text, variables)))
        front.append(FrontPoint(length, error, text, str(expr), int(sp.count_ops(expr))))
    best = min(p.error for p in front)
    threshold = best + tolerance * max(baseline - best, 0.0) + 1e-9
    chosen = next(p for p in front if p.error <= threshold)
    return Discovery(
        target=target,
        variables=list(variables),
        n_samples=int(x.shape[0]),
        front=front,
        chosen=chosen,
        baseline_error=baseline,
        settings=settings,
    )
