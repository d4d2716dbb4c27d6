"""Numeric planners: the hill-climbing planner (no LLM) and the local search of the near-Stackelberg check.

Both treat workers as best-responding followers: a schedule's value is the welfare of the equilibrium it
induces (``schedule_welfare``), which makes the planner the Stackelberg leader.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from malles_graph.economist.economy import LabourModel, equilibrium
from malles_graph.economist.options import EconomistOptions, Objective
from malles_graph.economist.tax import TaxSchedule
from malles_graph.economist.welfare import OBJECTIVES, summarise, welfare


def schedule_welfare(
    schedule: TaxSchedule,
    skill: np.ndarray,
    potential_income: np.ndarray,
    mass: np.ndarray,
    model: LabourModel,
    options: EconomistOptions,
    objective: Objective,
) -> float:
    out = equilibrium(skill, schedule, model, mass)
    return welfare(objective, out, potential_income, options)


def equilibrium_table(
    schedules: dict[str, TaxSchedule],
    skill: np.ndarray,
    potential_income: np.ndarray,
    mass: np.ndarray,
    model: LabourModel,
    options: EconomistOptions,
) -> list[dict[str, object]]:
    """One row per schedule: its rates and the best-response equilibrium's figures (all three welfares)."""
    rows = []
    for name, sched in schedules.items():
        out = equilibrium(skill, sched, model, mass)
        rows.append({"schedule": name, "rates": list(sched.rates), **summarise(out, potential_income, options)})
    return rows


@dataclass
class LocalSearchResult:
    schedule: TaxSchedule
    welfare: float
    start_welfare: float
    evaluations: int


def local_search(
    start: TaxSchedule,
    skill: np.ndarray,
    potential_income: np.ndarray,
    mass: np.ndarray,
    model: LabourModel,
    options: EconomistOptions,
    objective: Objective,
    steps: tuple[float, ...] = (8.0, 4.0, 2.0, 1.0),
    max_evaluations: int = 400,
) -> LocalSearchResult:
    """Coordinate ascent around ``start``: try +-step on each bracket, keep improvements, then shrink the step."""
    best = start
    best_w = start_w = schedule_welfare(start, skill, potential_income, mass, model, options, objective)
    evals = 1
    for step in steps:
        improved = True
        while improved and evals < max_evaluations:
            improved = False
            for k in range(len(best.rates)):
                for sign in (1.0, -1.0):
                    rates = list(best.rates)
                    rates[k] = float(np.clip(rates[k] + sign * step, 0.0, 100.0))
                    if rates[k] == best.rates[k] or evals >= max_evaluations:
                        continue
                    cand = best.model_copy(update={"rates": tuple(rates), "label": "local-search"})
                    w = schedule_welfare(cand, skill, potential_income, mass, model, options, objective)
                    evals += 1
                    if w > best_w + 1e-9:
                        best, best_w, improved = cand, w, True
    return LocalSearchResult(schedule=best, welfare=best_w, start_welfare=start_w, evaluations=evals)


def hill_climb_step(
    current: TaxSchedule,
    observed_welfare: float,
    incumbent: TaxSchedule | None,
    incumbent_welfare: float | None,
    options: EconomistOptions,
    rng: np.random.Generator,
    sigma: float | None = None,
) -> tuple[TaxSchedule, TaxSchedule, float, float, str]:
    """One action of the (1+1) evolution-strategy planner, the numeric stand-in for the LLM planner.

    Compares the welfare observed under ``current`` with the incumbent's: keeps ``current`` as the new
    incumbent if it did better, else returns to the incumbent. Then proposes the incumbent plus a Gaussian
    step on every bracket (each clipped to max_rate_change). The step size follows the 1/5th success
    rule: x1.5 after a success, x0.82 after a failure, within [0.5, max_rate_change] points.
    Returns (trial, incumbent, incumbent welfare, next sigma, note).
    """
    sigma = options.hill_climb_step if sigma is None else sigma
    if incumbent is None or incumbent_welfare is None or observed_welfare > incumbent_welfare:
        success = incumbent is not None
        incumbent, incumbent_welfare, note = current, observed_welfare, "kept"
        sigma = sigma * 1.5 if success else sigma
    else:
        note = "reverted"
        sigma *= 0.82
    sigma = float(np.clip(sigma, 0.5, options.max_rate_change))
    step = np.clip(rng.normal(0.0, sigma, len(incumbent.rates)), -options.max_rate_change, options.max_rate_change)
    rates = np.clip(np.asarray(incumbent.rates) + step, 0.0, 100.0)
    trial = incumbent.model_copy(update={"rates": tuple(round(float(r), 3) for r in rates), "label": "hill-climb"})
    return trial, incumbent, incumbent_welfare, sigma, f"{note}; step size {sigma:.2f} points"


__all__ = ["OBJECTIVES", "equilibrium_table", "hill_climb_step", "local_search", "schedule_welfare"]
