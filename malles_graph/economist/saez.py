"""Saez (2001) optimal marginal rates on the U.S. brackets, from the simulated income distribution.

tau(z) = (1 - G(z)) / (1 - G(z) + a(z) * e)

- G(z): mean social welfare weight of workers with income above z, divided by the population's mean
  weight (with a lump-sum rebate, a dollar handed to everyone is worth the mean weight).
- a(z) = z f(z) / (1 - F(z)): the local Pareto parameter. F is the (mass-weighted) empirical CDF; the
  density f is a Gaussian kernel estimate on log income (Scott's bandwidth) over positive incomes,
  converted back, f(z) = P(z > 0) * f_log(log z) / z. Log-KDE follows the heavy right tail that a KDE
  on levels smooths away.
- e: labour-supply elasticity (a scenario parameter; by default the workers' own 1/(delta - 1)).

Each finite bracket uses z at its midpoint; the top bracket uses the Pareto-tail form a = m / (m - z_top)
with m the mean income above its threshold. A bracket with nobody above its z inherits the rate of the
bracket below (the rate there raises nothing and distorts nobody).

Incomes come from the workers' own model: the schedule is iterated to a fixed point in which incomes are
the best responses to the schedule itself (damped, at most ``max_iter`` rounds, tolerance ``tol`` points).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from malles_graph.economist.economy import LabourModel, best_response
from malles_graph.economist.options import EconomistOptions, Objective
from malles_graph.economist.tax import TaxSchedule, us_schedule, weighted_mean
from malles_graph.economist.welfare import welfare_weights

KDE_SAMPLE = 20_000  # incomes kept for the density estimate (a seeded subsample beyond this)


def saez_rate(g: float, a: float, e: float) -> float:
    """The Saez rate (fraction, clipped to [0, 1]) for G, a and e."""
    num = 1.0 - g
    den = 1.0 - g + a * e
    if den <= 0:
        return 0.0 if num <= 0 else 1.0
    return float(min(1.0, max(0.0, num / den)))


def g_above(z: float, income: np.ndarray, weights: np.ndarray, mass: np.ndarray) -> float | None:
    """G(z): mean weight of those with income > z over the population mean weight; None if nobody is above."""
    above = income > z
    if not np.any(mass[above] > 0):
        return None
    return weighted_mean(weights[above], mass[above]) / weighted_mean(weights, mass)


def log_kde_density(income: np.ndarray, mass: np.ndarray, seed: int = 0) -> Callable[[float], float]:
    """f(z) from a Gaussian KDE on log of the positive incomes (mass-weighted), see the module docstring."""
    pos = (income > 0) & (mass > 0)
    share_pos = mass[pos].sum() / mass.sum() if mass.sum() > 0 else 0.0
    x, w = np.log(income[pos]), mass[pos]
    if len(x) > KDE_SAMPLE:
        pick = np.random.default_rng(seed).choice(len(x), KDE_SAMPLE, replace=False)
        x, w = x[pick], w[pick]
    if len(x) < 2 or np.ptp(x) == 0:
        return lambda z: 0.0
    w = w / w.sum()
    mean = float(np.dot(w, x))
    sd = float(np.sqrt(np.dot(w, (x - mean) ** 2)))
    n_eff = 1.0 / float(np.sum(w**2))
    h = sd * n_eff ** (-1.0 / 5.0)  # Scott's rule (what scipy.stats.gaussian_kde uses in 1-D)

    def density(z: float) -> float:
        if z <= 0:
            return 0.0
        f_log = float(np.dot(w, stats.norm.pdf((np.log(z) - x) / h)) / h)
        return share_pos * f_log / z

    return density


@dataclass
class SaezResult:
    schedule: TaxSchedule
    points: list[dict[str, float]] = field(default_factory=list)  # z, F, f, a, G, rate per bracket
    iterations: int = 0
    converged: bool = False


def saez_rates(
    income: np.ndarray,
    weights: np.ndarray,
    mass: np.ndarray,
    thresholds: tuple[float, ...],
    elasticity: float,
    density: Callable[[float], float] | None = None,
) -> tuple[list[float], list[dict[str, float]]]:
    """Saez rates (percent) per bracket for one income distribution and welfare weights."""
    density = density or log_kde_density(income, mass)
    total = mass.sum()
    rates: list[float] = []
    points: list[dict[str, float]] = []
    for k, lo in enumerate(thresholds):
        top = k == len(thresholds) - 1
        z = lo if top else 0.5 * (lo + thresholds[k + 1])
        g = g_above(z, income, weights, mass)
        F = float(mass[income <= z].sum() / total)
        if g is None:
            rate = rates[-1] if rates else 0.0
            points.append({"z": z, "F": F, "f": 0.0, "a": float("nan"), "G": float("nan"), "rate": rate})
            rates.append(rate)
            continue
        if top:
            above = income > z
            m = weighted_mean(income[above], mass[above])
            a = m / (m - z) if m > z else float("inf")
            f = float("nan")
        else:
            f = density(z)
            a = z * f / (1.0 - F) if F < 1.0 else float("inf")
        rate = 100.0 * saez_rate(g, a, elasticity)
        points.append({"z": z, "F": F, "f": f, "a": a, "G": g, "rate": rate})
        rates.append(rate)
    return rates, points


def saez_schedule(
    skill: np.ndarray,
    potential_income: np.ndarray,
    mass: np.ndarray,
    model: LabourModel,
    options: EconomistOptions,
    objective: Objective | None = None,
    start: TaxSchedule | None = None,
    max_iter: int = 60,
    damping: float = 0.5,
    tol: float = 1e-3,
) -> SaezResult:
    """The Saez schedule at its fixed point: incomes are best responses to the schedule being computed.

    Stops when no rate moves by ``tol`` points (1e-3: the utilitarian zero schedule then raises cents, not
    dollars). ``points`` (z, F, f, a, G per bracket) are those of the returned schedule's own incomes.
    """
    objective = objective or options.objective
    schedule = start or us_schedule(options.brackets)

    def targets(sched: TaxSchedule) -> tuple[list[float], list[dict[str, float]]]:
        hours, _ = best_response(skill, sched, model)
        income = skill * hours
        weights = welfare_weights(objective, income, potential_income, options, mass)
        return saez_rates(income, weights, mass, sched.thresholds, options.delta_elasticity())

    converged, iterations = False, 0
    while iterations < max_iter and not converged:
        iterations += 1
        target, _ = targets(schedule)
        new = (1.0 - damping) * np.asarray(schedule.rates) + damping * np.asarray(target)
        change = float(np.max(np.abs(new - np.asarray(schedule.rates))))
        schedule = schedule.model_copy(update={"rates": tuple(float(r) for r in new), "label": "saez"})
        converged = change < tol
    _, points = targets(schedule)
    return SaezResult(schedule=schedule, points=points, iterations=iterations, converged=converged)
