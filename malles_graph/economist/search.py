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
) -> tuple[TaxSchedule, TaxSchedule, float, str]:
    """One action of the (1+1) evolution-strategy planner, the numeric stand-in for the LLM planner.

    Compares the welfare observed under ``current`` with the incumbent's: keeps ``current`` as the new
    incumbent if it did better, else returns to the incumbent; then perturbs one random bracket by
    +-hill_climb_step points for the next period. Returns (trial, incumbent, incumbent welfare, note).
    """
    if incumbent is None or incumbent_welfare is None or observed_welfare > incumbent_welfare:
        incumbent, incumbent_welfare, note = current, observed_welfare, "kept"
    else:
        note = "reverted"
    k = int(rng.integers(len(incumbent.rates)))
    step = min(options.hill_climb_step, options.max_rate_change)
    rates = list(incumbent.rates)
    rates[k] = float(np.clip(rates[k] + rng.choice([-step, step]), 0.0, 100.0))
    trial = incumbent.model_copy(update={"rates": tuple(rates), "label": "hill-climb"})
    return trial, incumbent, incumbent_welfare, f"{note}; trying bracket {k + 1} at {rates[k]:.1f}%"


__all__ = ["OBJECTIVES", "equilibrium_table", "hill_climb_step", "local_search", "schedule_welfare"]
