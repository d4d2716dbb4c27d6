"""Worker utility, the analytic best response on the hours grid, and the step outcome.

u_i = z_i - T(z_i) + R - c * l_i^delta, with z_i = s_i * l_i and R the equal lump-sum rebate of all tax
revenue. Utility is quasi-linear, so the rebate does not change anyone's choice: the best response is a
pure function of skill and schedule, computed exactly by enumerating the grid (vectorised numpy).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from malles_graph.economist.options import EconomistOptions
from malles_graph.economist.population import GB2Params, gb2_median
from malles_graph.economist.tax import TaxSchedule, rebate_per_worker, us_schedule


@dataclass(frozen=True)
class LabourModel:
    """The parameters every worker shares: the hours grid and the labour cost c * l^delta."""

    grid: np.ndarray  # allowed weekly hours
    cost: float  # c
    exponent: float  # delta

    def labour_cost(self, hours: np.ndarray | float) -> np.ndarray:
        return self.cost * np.asarray(hours, dtype=float) ** self.exponent

    def private_utility(self, skill: np.ndarray, hours: np.ndarray, schedule: TaxSchedule) -> np.ndarray:
        """Utility without the rebate (the rebate is the same for everyone and fixed for the worker)."""
        z = skill * hours
        return z - schedule.tax(z) - self.labour_cost(hours)


def labour_model(options: EconomistOptions) -> LabourModel:
    grid = np.arange(0, options.hours_max + 1, options.hours_step, dtype=float)
    cost = options.labour_cost if options.labour_cost is not None else calibrate_cost(options)
    return LabourModel(grid=grid, cost=cost, exponent=options.labour_exponent)


def calibrate_cost(options: EconomistOptions, params: GB2Params | None = None) -> float:
    """c such that the median-skill worker's continuous best response under U.S. rates is reference_hours.

    First-order condition s (1 - tau) = c delta l^(delta - 1) at l = reference_hours, where s is the GB2
    median income over reference_hours and tau the U.S. marginal rate at the median income.
    """
    median_income = gb2_median(params or options.income)
    s = median_income / options.reference_hours
    tau = float(us_schedule().marginal_rate(median_income))
    delta = options.labour_exponent
    return s * (1.0 - tau) / (delta * options.reference_hours ** (delta - 1.0))


def best_response(
    skill: np.ndarray, schedule: TaxSchedule, model: LabourModel, chunk: int = 250_000
) -> tuple[np.ndarray, np.ndarray]:
    """Utility-maximising hours on the grid for each worker, and that private utility (exact, vectorised).

    Ties go to the fewer hours (argmax takes the first). Works in chunks to bound memory at 1e6+ workers.
    """
    skill = np.asarray(skill, dtype=float)
    hours = np.empty_like(skill)
    best = np.empty_like(skill)
    cost = model.labour_cost(model.grid)  # (g,)
    for start in range(0, len(skill), chunk):
        s = skill[start : start + chunk, None]
        z = s * model.grid[None, :]
        u = z - schedule.tax(z) - cost[None, :]
        j = np.argmax(u, axis=1)
        hours[start : start + chunk] = model.grid[j]
        best[start : start + chunk] = u[np.arange(len(j)), j]
    return hours, best


@dataclass
class StepOutcome:
    """What one step produced for every (weighted) worker."""

    hours: np.ndarray
    income: np.ndarray
    tax: np.ndarray
    rebate: float
    utility: np.ndarray  # including the rebate
    regret: np.ndarray  # best-response private utility minus realised private utility (>= 0)
    weight: np.ndarray  # population mass; 0 for workers without a valid choice this step


def evaluate(
    skill: np.ndarray,
    hours: np.ndarray,
    schedule: TaxSchedule,
    model: LabourModel,
    weight: np.ndarray | None = None,
    valid: np.ndarray | None = None,
    best_private: np.ndarray | None = None,
) -> StepOutcome:
    """Incomes, taxes, the rebate and utilities of a chosen hours vector; regret against the best response.

    Workers with ``valid`` False (no valid answer yet) get mass 0: they neither pay nor receive.
    """
    weight = np.ones(len(skill)) if weight is None else np.asarray(weight, dtype=float)
    if valid is not None:
        weight = np.where(valid, weight, 0.0)
    hours = np.where(np.isfinite(hours), hours, 0.0)
    income = skill * hours
    tax = schedule.tax(income)
    rebate = rebate_per_worker(schedule, income, weight)
    private = income - tax - model.labour_cost(hours)
    best = best_response(skill, schedule, model)[1] if best_private is None else best_private
    return StepOutcome(
        hours=hours,
        income=income,
        tax=tax,
        rebate=rebate,
        utility=private + rebate,
        regret=np.maximum(best - private, 0.0),
        weight=weight,
    )


def equilibrium(skill: np.ndarray, schedule: TaxSchedule, model: LabourModel, weight: np.ndarray | None = None) -> StepOutcome:
    """Everyone best-responds (one pass suffices: the rebate does not move quasi-linear choices)."""
    hours, best = best_response(skill, schedule, model)
    return evaluate(skill, hours, schedule, model, weight, best_private=best)
