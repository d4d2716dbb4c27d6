"""The economist's ``run_summary`` hook: the final figures, the welfare table and the near-Stackelberg check.

The generic runner calls it once, after the graph's last step, with the final state and the run's
context (whose world, the population and the Saez baseline, is rebuilt from the scenario in whichever
process ran the end of the run). What it returns is stored as the run's summary; `malles show` renders
its ``figures`` and ``tables`` generically and `malles economist report` reads the rest.
"""

from __future__ import annotations

from typing import Any

from malles_graph.economist.analysis import post_run_analysis

from .context import EconomistContext
from .nodes import schedule_of

# the welfare table's columns shown by `malles show` (every column is stored)
TABLE_COLUMNS = ["schedule", "rates", "welfare_skill_weighted", "welfare_utilitarian", "welfare_inverse_income",
                 "gini_pretax", "gini_disposable", "revenue_per_worker", "mean_hours", "idle_share"]


def run_summary(values: dict[str, Any], context: EconomistContext) -> dict[str, Any]:
    """The run's summary: what it did (meta), and, once it finished, the welfare table and the check."""
    meta = run_meta(values, context)
    summary: dict[str, Any] = {"meta": meta, "observations": values.get("observations") or []}
    if not values.get("final_rates"):
        return summary  # the run did not reach its end: no final schedule to analyse
    world, options = context.world, context.options
    final = schedule_of(context, values["final_rates"], "incumbent")
    analysis = post_run_analysis(world.pop, world.model, options, final, world.saez.schedule, context.seed)
    saez = world.saez
    summary |= {
        "welfare_table": analysis["table"],
        "stackelberg": analysis["stackelberg"],
        "saez": {"rates": list(saez.schedule.rates), "points": saez.points, "iterations": saez.iterations,
                 "converged": saez.converged, "elasticity": options.delta_elasticity(),
                 "objective": options.objective},
        "tables": {"welfare_table": TABLE_COLUMNS},  # rendered by the front ends (malles show, malles run)
        "figures": _figures(meta, analysis["stackelberg"]),
    }
    return summary


def run_meta(values: dict[str, Any], ctx: EconomistContext) -> dict[str, Any]:
    """Counts and settings of the run (calls, failures, policies, the final schedule)."""
    history, planner_log, votes = (values.get(k) or [] for k in ("history", "planner_log", "votes"))
    world, options = ctx.world, ctx.options
    calls = sum(r.get("llm_calls", 0) for r in history)
    calls += sum(e.get("calls", 0) for e in planner_log) + sum(v.get("calls", 0) for v in votes)
    llm_planner = [e for e in planner_log if e["policy"] == "llm"]
    incumbent = values.get("incumbent") or {}
    return {
        "steps": len(history), "worker_policy": ctx.worker_policy, "planner_policy": ctx.planner_policy,
        "model": getattr(ctx.client, "model_id", None), "n_workers": len(world.pop),
        "n_simulated": world.n_simulated if ctx.worker_policy == "llm" else len(world.pop),
        "labour_cost": world.model.cost, "labour_exponent": world.model.exponent,
        "elasticity": options.delta_elasticity(), "objective": options.objective,
        "llm_calls": calls, "llm_calls_per_step": calls / max(1, len(history)),
        "worker_failures": sum(r.get("worker_failures", 0) for r in history),
        "planner_actions": len(planner_log), "votes": len(votes),
        "planner_failures": sum(1 for e in llm_planner if not e.get("ok", True)),
        "planner_parsed_share": (sum(1 for e in llm_planner if e["ok"]) / len(llm_planner)) if llm_planner else None,
        "final_schedule": list(values.get("final_rates") or values.get("rates") or []),
        "final_source": incumbent.get("source"), "final_observed_welfare": incumbent.get("welfare"),
        "saez_schedule": list(world.saez.schedule.rates),
    }


def _figures(meta: dict[str, Any], check: dict[str, Any]) -> dict[str, str]:
    """One line each, for the summary table of any front end."""
    figures = {
        "final schedule": f"{' '.join(f'{r:.1f}' for r in meta['final_schedule'])} (from {meta['final_source']})",
        "LLM calls per step": f"{meta['llm_calls_per_step']:.1f}",
        "failures (workers, planner)": f"{meta['worker_failures']}, {meta['planner_failures']}",
    }
    if check.get("enabled"):
        figures["near-Stackelberg gap"] = (
            f"{check['relative_gap']:.2%} ({check['objective']}, {check['sample']:,} workers): final "
            f"{check['final_welfare']:,.1f}, best of a multi-start search {check['best_welfare']:,.1f} "
            f"(from {check['best_start']}, {check['evaluations']} evaluations), Saez {check['saez_welfare']:,.1f}, "
            f"U.S. {check['us_welfare']:,.1f}"
        )
    return figures


__all__ = ["run_meta", "run_summary"]
