"""Run an economist scenario end to end from Python, the CLI or the TUI: the graph, its events, a run folder.

:func:`run_economist` drives the compiled graph with :func:`run_inputs` / :func:`run_context` (the same two
functions the generic runner calls), consumes the typed events of the custom stream, writes the run folder
(:mod:`malles_graph.economist.runstore`) and mirrors the run into the SQLModel store, then adds the
post-run analysis (welfare table, near-Stackelberg check).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel

from malles_graph.economist.tax import TaxSchedule
from malles_graph.events import DecisionFinished, RoundFinished
from malles_graph.scenario import Scenario

from .context import run_context
from .graph import graph, recursion_limit, run_inputs
from .nodes import schedule_of

Progress = Callable[[int, int, dict], None]


@dataclass
class EconomistRun:
    """What a finished run produced (the same as its run folder holds)."""

    run_dir: Path | None
    history: list[dict]
    observations: list[dict]
    planner_log: list[dict]
    votes: list[dict]
    final_schedule: TaxSchedule  # the incumbent: the best schedule observed in the run
    analysis: dict
    meta: dict

    @property
    def llm_calls_per_step(self) -> float:
        return float(self.meta.get("llm_calls_per_step", 0.0))


def run_economist(
    scenario: Scenario,
    progress: Progress | None = None,
    *,
    chat_model: BaseChatModel | None = None,
    run_dir: str | Path | None = None,
    write: bool = True,
) -> EconomistRun:
    """Run an economist scenario; persist it under ``run_dir`` (default runs_dir()/economist/...).

    ``progress(step, steps, row)`` is called after every step. ``chat_model`` replaces the backend's
    model (tests). Returns the history, observations, planner actions, votes and the post-run analysis.
    """
    from malles_graph.economist.analysis import post_run_analysis
    from malles_graph.economist.runstore import RunWriter, StoreSink, new_run_dir

    client = None
    if chat_model is not None:
        from malles_graph.backends import build_client

        client = build_client(scenario.backend, chat_model=chat_model)
    ctx = run_context(scenario, client=client)
    options = scenario.economist
    key = uuid.uuid4().hex[:8]
    start = time.perf_counter()
    world = ctx.world
    writer = sink = None
    if write:
        path = Path(run_dir) if run_dir is not None else new_run_dir(scenario.name, key)
        writer = RunWriter(path)
        sink = StoreSink(scenario.store.url, path.name, scenario, len(world.pop), world.n_simulated)
    status, error, final, decisions = "failed", None, {}, []
    try:
        for mode, chunk in graph.stream(run_inputs(scenario), context=ctx, stream_mode=["custom", "values"],
                                        config={"recursion_limit": recursion_limit(scenario)}):
            if mode == "values":
                final = chunk
            elif isinstance(chunk, DecisionFinished):
                decisions.append(chunk)
            elif isinstance(chunk, RoundFinished):
                row = next(r for r in reversed(final["history"]) if r["step"] == chunk.round)
                if writer:
                    writer.step(row, [d.model_dump() for d in decisions])
                    for entry in (chunk.summary.get("planner"), chunk.summary.get("vote")):
                        if entry:
                            writer.record("planner.jsonl" if "policy" in entry else "votes.jsonl", entry)
                if sink:
                    sink.step(row, decisions)
                decisions = []
                if progress:
                    progress(chunk.round, options.steps, row)
        final_schedule = schedule_of(ctx, final["final_rates"], "incumbent")
        history = final.get("history", [])
        analysis = post_run_analysis(world.pop, world.model, options, final_schedule, world.saez.schedule,
                                     scenario.seed)
        meta = _meta(scenario, ctx, final, key, time.perf_counter() - start)
        if writer:
            writer.finish(meta, analysis, _saez(ctx), final.get("observations", []))
        status = "finished"
        return EconomistRun(run_dir=writer.path if writer else None, history=history,
                            observations=final.get("observations", []), planner_log=final.get("planner_log", []),
                            votes=final.get("votes", []), final_schedule=final_schedule, analysis=analysis, meta=meta)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        if sink:
            sink.finish(status, error)


def _meta(scenario: Scenario, ctx: Any, final: dict, key: str, elapsed: float) -> dict:
    history, planner_log, votes = final.get("history", []), final.get("planner_log", []), final.get("votes", [])
    world, options = ctx.world, ctx.options
    calls = sum(r.get("llm_calls", 0) for r in history)
    calls += sum(e.get("calls", 0) for e in planner_log) + sum(v.get("calls", 0) for v in votes)
    llm_planner = [e for e in planner_log if e["policy"] == "llm"]
    incumbent = final.get("incumbent") or {}
    return {
        "scenario": scenario.model_dump(mode="json"), "run_key": key, "backend": scenario.backend.name,
        "model": getattr(ctx.client, "model_id", None), "worker_policy": ctx.worker_policy,
        "planner_policy": ctx.planner_policy, "n_workers": len(world.pop),
        "n_simulated": world.n_simulated if ctx.worker_policy == "llm" else len(world.pop),
        "labour_cost": world.model.cost, "labour_exponent": world.model.exponent,
        "elasticity": options.delta_elasticity(), "objective": options.objective, "steps": options.steps,
        "llm_calls": calls, "llm_calls_per_step": calls / max(1, options.steps),
        "worker_failures": sum(r.get("worker_failures", 0) for r in history),
        "planner_actions": len(planner_log),
        "planner_failures": sum(1 for e in llm_planner if not e.get("ok", True)),
        "planner_parsed_share": (sum(1 for e in llm_planner if e["ok"]) / len(llm_planner)) if llm_planner else None,
        "final_schedule": list(final.get("final_rates", [])), "final_source": incumbent.get("source"),
        "final_observed_welfare": incumbent.get("welfare"), "saez_schedule": list(world.saez.schedule.rates),
        "elapsed_s": elapsed,
    }


def _saez(ctx: Any) -> dict:
    saez, options = ctx.world.saez, ctx.options
    return {"rates": list(saez.schedule.rates), "points": saez.points, "iterations": saez.iterations,
            "converged": saez.converged, "elasticity": options.delta_elasticity(), "objective": options.objective,
            "density": "Gaussian KDE on log positive incomes (Scott bandwidth); top bracket a = m / (m - z)"}


__all__ = ["EconomistRun", "Progress", "run_economist"]
