"""After a run: the welfare table (baselines in best-response equilibrium) and the near-Stackelberg check.

Every schedule is evaluated with all workers best-responding (the planner is the Stackelberg leader), on
a seeded subsample of at most ``sample`` workers so that the check costs seconds at any population size.
The check searches from several starts (the run's final schedule, U.S., Saez, flat) with CMA-ES and reports
the gap between the run's final schedule and the best schedule any start found.
"""

from __future__ import annotations

import numpy as np

from malles_graph.economist.economy import LabourModel
from malles_graph.economist.options import EconomistOptions
from malles_graph.economist.population import Population
from malles_graph.economist.saez import saez_schedule
from malles_graph.economist.search import equilibrium_table, multi_start_search
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
) -> dict:
    """The welfare table and the near-Stackelberg check as plain JSON-able data."""
    n = len(pop)
    idx = np.arange(n) if n <= sample else np.sort(np.random.default_rng(seed + 1).choice(n, sample, replace=False))
    sub = pop.take(idx)
    args = (sub.skill, sub.potential_income, sub.weight, model, options)
    brackets = options.brackets
    schedules: dict[str, TaxSchedule] = {
        "final (run)": final,
        f"saez ({options.objective})": saez,
        "us 2024": us_schedule(brackets),
        f"flat {options.flat_rate:g}%": flat_schedule(options.flat_rate, brackets),
        "zero": zero_schedule(brackets),
    }
    for objective in OBJECTIVES:
        if objective != options.objective:
            schedules[f"saez ({objective})"] = saez_schedule(*args, objective=objective).schedule
    check: dict = {"enabled": options.stackelberg_check, "objective": options.objective, "sample": len(idx)}
    if options.stackelberg_check:
        starts = {"final": final, "us": schedules["us 2024"], "saez": saez, "flat": schedules[f"flat {options.flat_rate:g}%"]}
        ms = multi_start_search(starts, *args, options.objective, budget=options.check_budget, seed=seed)
        schedules["best of multi-start search"] = ms.best
        rows = {r["schedule"]: r for r in equilibrium_table({"final (run)": final}, *args)}
        final_w = rows["final (run)"][f"welfare_{options.objective}"]
        check.update(
            final_welfare=final_w,
            best_welfare=ms.welfare,
            best_start=ms.start,
            by_start=ms.by_start,
            best_rates=list(ms.best.rates),
            evaluations=ms.evaluations,
            relative_gap=(ms.welfare - final_w) / abs(ms.welfare) if ms.welfare else 0.0,
        )
        if options.objective != "inverse_income":
            # the failure mode of the paper's objective: its optimum idles most workers
            inv = multi_start_search({"us": schedules["us 2024"]}, *args, "inverse_income",
                                     budget=options.check_budget, seed=seed)
            schedules["optimum of inverse_income (search)"] = inv.best
    table = equilibrium_table(schedules, *args)
    by_name = {r["schedule"]: r for r in table}
    key = f"welfare_{options.objective}"
    if options.stackelberg_check:
        check["saez_welfare"] = by_name[f"saez ({options.objective})"][key]
        check["us_welfare"] = by_name["us 2024"][key]
        check["final_beats_saez"] = check["final_welfare"] >= check["saez_welfare"]
    return {"table": table, "stackelberg": check}
