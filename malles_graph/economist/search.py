"""The numeric planner (CMA-ES from the ``cma`` package) and the multi-start search of the near-Stackelberg check.

A schedule's value is the welfare of the equilibrium it induces with best-responding workers
(``schedule_welfare``), which makes the planner the Stackelberg leader. The planner's CMA-ES is rebuilt by
replay (:func:`replay_cma`): its random draws come from a generator seeded by the run, so asking again and
telling the stored welfare values gives back the same optimiser after a resume in another process.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cma
import numpy as np

from malles_graph.economist.economy import LabourModel, equilibrium
from malles_graph.economist.options import EconomistOptions, Objective
from malles_graph.economist.tax import TaxSchedule
from malles_graph.economist.welfare import summarise, welfare


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


def new_cma(start: Sequence[float], sigma: float, seed: int, popsize: int | None = None) -> cma.CMAEvolutionStrategy:
    """A quiet CMA-ES on rates in [0, 100] whose random draws come from ``seed`` (no global numpy state)."""
    rng = np.random.default_rng(seed)
    opts: dict = {
        "bounds": [0.0, 100.0],
        "randn": lambda *shape: rng.standard_normal(shape),
        "verbose": -9,
        "verb_log": 0,
        "verb_disp": 0,
        # the planner decides when to stop (the run's steps); never let cma end the search on its own
        "tolfun": 0.0, "tolx": 0.0, "tolfunhist": 0.0, "tolflatfitness": 10**9, "tolstagnation": 10**9,
    }
    if popsize is not None:
        opts["popsize"] = popsize
    return cma.CMAEvolutionStrategy(list(start), sigma, opts)


@dataclass
class CmaState:
    """An optimiser rebuilt from the values told so far; ``pending`` are the asked points still to be valued."""

    es: cma.CMAEvolutionStrategy
    told: int
    pending: list[list[float]]


def replay_cma(start: Sequence[float], sigma: float, seed: int, values: Sequence[float]) -> CmaState:
    """Rebuild the planner's CMA-ES: ask generation after generation and tell ``values`` (welfare, maximised).

    Returns the optimiser after the last complete generation and the points of the current generation not
    yet valued (all of the next generation when ``values`` ended on a generation boundary).
    """
    es = new_cma(start, sigma, seed)
    used = 0
    while True:
        asked = [list(map(float, x)) for x in es.ask()]
        if used + len(asked) > len(values):
            have = len(values) - used
            return CmaState(es=es, told=used, pending=asked[have:])
        es.tell([np.asarray(x) for x in asked], [-float(v) for v in values[used : used + len(asked)]])
        used += len(asked)


def cma_maximise(
    value: Callable[[tuple[float, ...]], float], start: Sequence[float], sigma: float, seed: int, budget: int
) -> tuple[tuple[float, ...], float, int]:
    """Maximise ``value(rates)`` with CMA-ES from ``start`` for ``budget`` evaluations: (best rates, value, evaluations)."""
    es = new_cma(start, sigma, seed)
    best_x, best_v = tuple(float(r) for r in start), value(tuple(float(r) for r in start))
    evals = 1
    while evals < budget:
        asked = es.ask()
        vals = [value(tuple(float(r) for r in x)) for x in asked]
        evals += len(asked)
        es.tell(asked, [-v for v in vals])
        j = int(np.argmax(vals))
        if vals[j] > best_v:
            best_x, best_v = tuple(float(r) for r in asked[j]), vals[j]
    return best_x, best_v, evals


@dataclass
class MultiStartResult:
    best: TaxSchedule
    welfare: float
    start: str  # the start that found the best
    by_start: dict[str, float]
    evaluations: int


def multi_start_search(
    starts: dict[str, TaxSchedule],
    skill: np.ndarray,
    potential_income: np.ndarray,
    mass: np.ndarray,
    model: LabourModel,
    options: EconomistOptions,
    objective: Objective,
    budget: int,
    seed: int,
    sigma: float = 15.0,
) -> MultiStartResult:
    """CMA-ES from each start (``budget`` equilibrium evaluations each); the best schedule found by any."""
    thresholds = next(iter(starts.values())).thresholds

    def value(rates: tuple[float, ...]) -> float:
        sched = TaxSchedule(rates=rates, thresholds=thresholds)
        return schedule_welfare(sched, skill, potential_income, mass, model, options, objective)

    by_start: dict[str, float] = {}
    best: tuple[str, tuple[float, ...], float] | None = None
    evals = 0
    for i, (name, sched) in enumerate(starts.items()):
        x, v, n = cma_maximise(value, sched.rates, sigma, seed * 101 + i, budget)
        by_start[name], evals = v, evals + n
        if best is None or v > best[2]:
            best = (name, x, v)
    assert best is not None, "multi_start_search needs at least one start"
    name, x, v = best
    schedule = TaxSchedule(rates=x, thresholds=thresholds, label="multi-start search")
    return MultiStartResult(best=schedule, welfare=v, start=name, by_start=by_start, evaluations=evals)


__all__ = ["equilibrium_table", "multi_start_search", "new_cma", "replay_cma", "schedule_welfare"]
