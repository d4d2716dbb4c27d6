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


def best_response(skill: np.ndarray, schedule: TaxSchedule, model: LabourModel) -> tuple[np.ndarray, np.ndarray]:
    """Utility-maximising hours on the grid for each worker, and that private utility (exact).

    Worker utility at grid hours l_j is u_j(s) = s l_j - T(s l_j) - c l_j^delta: piecewise linear in the
    skill s, with kinks where s l_j crosses a bracket threshold. Between kinks every u_j is a line, so the
    best grid choice is a step function of s whose steps lie at kinks or line crossings (a few hundred
    points). :func:`response_steps` finds them once per schedule; each worker is then one binary search,
    so a million workers cost one ``searchsorted`` and one tax evaluation instead of 11 million.
    Ties go to the fewer hours.
    """
    skill = np.asarray(skill, dtype=float)
    starts, choice = response_steps(schedule, model)
    hours = model.grid[choice[np.searchsorted(starts, skill, side="right") - 1]]
    z = skill * hours
    return hours, z - schedule.tax(z) - model.labour_cost(hours)


def response_steps(schedule: TaxSchedule, model: LabourModel) -> tuple[np.ndarray, np.ndarray]:
    """The best response as a step function of skill: (step start skills ascending, grid index of each step)."""
    lo, tau, cum = schedule._arrays()
    grid = model.grid
    cost = model.labour_cost(grid)
    positive = grid[grid > 0]
    kinks = np.unique((lo[1:, None] / positive[None, :]).ravel())
    edges = np.concatenate([[0.0], kinks])
    starts: list[float] = []
    choice: list[int] = []
    for i, a in enumerate(edges):
        b = edges[i + 1] if i + 1 < len(edges) else np.inf
        mid = 0.5 * (a + b) if np.isfinite(b) else 2.0 * a + 1.0
        # inside (a, b) no s * l_j crosses a threshold: u_j(s) = slope_j * s + icept_j
        k = np.searchsorted(lo, mid * grid, side="right") - 1
        slope = grid * (1.0 - tau[k])
        icept = -(cum[k] - tau[k] * lo[k]) - cost
        ds = slope[:, None] - slope[None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            cross = (icept[None, :] - icept[:, None]) / ds
        cross = cross[np.isfinite(cross) & (cross > a) & (cross < b)]
        points = np.unique(np.concatenate([[a], cross]))
        after = 0.5 * (points[-1] + b) if np.isfinite(b) else 2.0 * points[-1] + 1.0
        probe = np.append(0.5 * (points[:-1] + points[1:]), after)
        best = np.argmax(slope[None, :] * probe[:, None] + icept[None, :], axis=1)
        for start, j in zip(points, best, strict=True):
            if not choice or choice[-1] != j:
                starts.append(float(start))
                choice.append(int(j))
    return np.asarray(starts), np.asarray(choice)


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
