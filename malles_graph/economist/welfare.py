"""Social welfare objectives and step summaries.

Three objectives, all per capita (population-mass weighted means), all reported every step:

- ``utilitarian``: mean u_i (dollars). With quasi-linear utility, transfers cancel, so its optimum is
  (near) zero tax: it measures efficiency only.
- ``inverse_income``: mean u_i / max(z_i, income_floor), the paper's sum of u_i / z_i (unitless). The
  weights depend on realised income, so with a floor of 1 $ an idle worker weighs ~1e5 times a median
  earner and the objective rewards schedules that drive workers to zero hours.
- ``skill_weighted`` (default for the planner): mean w_i u_i with w_i = 1 / max(s_i * 40, floor),
  normalised to mean 1 (dollars). Weights follow ability (potential income), which the schedule cannot
  move, so the planner cannot raise welfare by making people idle; the floor (15,080 $, full-time federal
  minimum wage) keeps the very lowest draws from dominating.
"""

from __future__ import annotations

import numpy as np

from malles_graph.economist.economy import StepOutcome
from malles_graph.economist.options import EconomistOptions, Objective
from malles_graph.economist.tax import weighted_mean

OBJECTIVES: tuple[Objective, ...] = ("skill_weighted", "utilitarian", "inverse_income")


def skill_weights(potential_income: np.ndarray, floor: float, mass: np.ndarray | None = None) -> np.ndarray:
    """1 / max(potential income, floor), normalised to a (mass-weighted) mean of 1."""
    w = 1.0 / np.maximum(potential_income, floor)
    mean = weighted_mean(w, mass)
    return w / (mean if mean > 0 else float(np.mean(w)))  # an empty population (all mass 0) keeps raw scale


def welfare_weights(
    objective: Objective,
    income: np.ndarray,
    potential_income: np.ndarray,
    options: EconomistOptions,
    mass: np.ndarray | None = None,
) -> np.ndarray:
    """Each worker's social welfare weight under ``objective`` (marginal weights g_i, quasi-linear utility)."""
    if objective == "utilitarian":
        return np.ones(len(income))
    if objective == "inverse_income":
        return 1.0 / np.maximum(income, options.income_floor)
    return skill_weights(potential_income, options.skill_weight_floor, mass)


def welfare(objective: Objective, out: StepOutcome, potential_income: np.ndarray, options: EconomistOptions) -> float:
    g = welfare_weights(objective, out.income, potential_income, options, out.weight)
    return weighted_mean(g * out.utility, out.weight)


def gini(values: np.ndarray, weights: np.ndarray | None = None, order: np.ndarray | None = None) -> float:
    """Weighted Gini coefficient (0 = equal); negative values are clipped to 0.

    ``order`` (indices sorting ``values`` ascending) saves the sort when the caller has it already.
    """
    x = np.maximum(np.asarray(values, dtype=float), 0.0)
    w = np.ones(len(x)) if weights is None else np.asarray(weights, dtype=float)
    if order is None:
        order = np.argsort(x, kind="stable")
    x, w = x[order], w[order]
    keep = w > 0
    x, w = x[keep], w[keep]
    if len(x) == 0 or x.sum() == 0:
        return 0.0
    cw = np.cumsum(w)
    cxw = np.cumsum(x * w)
    total_w, total_xw = cw[-1], cxw[-1]
    # area under the Lorenz curve by trapezoids
    lorenz = cxw / total_xw
    prev = np.concatenate([[0.0], lorenz[:-1]])
    area = np.sum((w / total_w) * (lorenz + prev) / 2.0)
    return float(1.0 - 2.0 * area)


def summarise(out: StepOutcome, potential_income: np.ndarray, options: EconomistOptions) -> dict[str, float]:
    """The per-step figures: the three welfares, Gini, revenue, labour, regret."""
    w = out.weight
    disposable = out.income - out.tax + out.rebate
    # marginal rates are at most 100%, so disposable income is non-decreasing in pre-tax income:
    # one sort serves both Gini coefficients and the median
    order = np.argsort(out.income, kind="stable")
    figures = {f"welfare_{name}": welfare(name, out, potential_income, options) for name in OBJECTIVES}
    figures.update(
        {
            "revenue_per_worker": out.rebate,
            "total_revenue": float(np.dot(out.tax, w)),
            "mean_hours": weighted_mean(out.hours, w),
            "idle_share": weighted_mean((out.hours <= 0).astype(float), w),
            "mean_income": weighted_mean(out.income, w),
            "median_income": _weighted_median(out.income, w, order),
            "gini_pretax": gini(out.income, w, order),
            "gini_disposable": gini(disposable, w, order),
            "mean_regret": weighted_mean(out.regret, w),
            "mean_utility": weighted_mean(out.utility, w),
            "population": float(w.sum()),
        }
    )
    return figures


def _weighted_median(x: np.ndarray, w: np.ndarray, order: np.ndarray) -> float:
    x, w = x[order], w[order]
    keep = w > 0
    if not keep.any():
        return 0.0
    x, w = x[keep], w[keep]
    cw = np.cumsum(w)
    return float(x[np.searchsorted(cw, cw[-1] / 2.0)])
