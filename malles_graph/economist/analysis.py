"""After a run: the welfare table (baselines in best-response equilibrium) and the near-Stackelberg check.

Every schedule is evaluated with all workers best-responding (the planner is the Stackelberg leader), on
a seeded subsample of at most ``sample`` workers so that the check costs seconds at any population size.
"""

from __future__ import annotations

import numpy as np

from malles_graph.economist.economy import LabourModel
from malles_graph.economist.options import EconomistOptions
from malles_graph.economist.population import Population
from malles_graph.economist.saez import saez_schedule
from malles_graph.economist.search import equilibrium_table, local_search
from malles_graph.economist.tax import TaxSchedule, flat_schedule, us_schedule, zero_schedule
from malles_graph.economist.welfare import OBJECTIVES

CHECK_SAMPLE = 20_000


def post_run_analysis(
    pop: Population,
    model: LabourModel,
    options: EconomistOptions,
    final: TaxSchedule,
    saez: TaxSchedule,
    seed: int,
    sample: int = CHECK_SAMPLE,
    best_observed: TaxSchedule | None = None,
) -> dict:
    """The welfare table and the Stackelberg check as plain JSON-able data."""
    n = len(pop)
    idx = np.arange(n) if n <= sample else np.sort(np.random.default_rng(seed + 1).choice(n, sample, replace=False))
    sub = pop.take(idx)
    args = (sub.skill, sub.potential_income, sub.weight, model, options)
    schedules: dict[str, TaxSchedule] = {
        "final (run)": final,
        **({"best observed (run)": best_observed} if best_observed is not None else {}),
        f"saez ({options.objective})": saez,
        "us 2024": us_schedule(),
        f"flat {options.flat_rate:g}%": flat_schedule(options.flat_rate),
        "zero": zero_schedule(),
    }
    for objective in OBJECTIVES:
        if objective != options.objective:
            schedules[f"saez ({objective})"] = saez_schedule(*args, objective=objective).schedule
    check: dict = {"enabled": options.stackelberg_check, "objective": options.objective, "sample": len(idx)}
    if options.stackelberg_check:
        ls = local_search(final, *args, options.objective)
        schedules["local search around final"] = ls.schedule
        check.update(
            final_welfare=ls.start_welfare,
            local_welfare=ls.welfare,
            evaluations=ls.evaluations,
            local_rates=list(ls.schedule.rates),
            relative_gap=(ls.welfare - ls.start_welfare) / abs(ls.welfare) if ls.welfare else 0.0,
        )
        if options.objective != "inverse_income":
            # the failure mode of the paper's objective: its optimum idles most workers
            inv = local_search(us_schedule(), *args, "inverse_income")
            schedules["optimum of inverse_income (local search)"] = inv.schedule
    rows = equilibrium_table(schedules, *args)
    by_name = {r["schedule"]: r for r in rows}
    key = f"welfare_{options.objective}"
    if options.stackelberg_check:
        check["saez_welfare"] = by_name[f"saez ({options.objective})"][key]
        check["us_welfare"] = by_name["us 2024"][key]
        check["final_beats_saez"] = check["final_welfare"] >= check["saez_welfare"]
    return {"table": rows, "stackelberg": check}
