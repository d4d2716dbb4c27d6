"""Node functions of the economist graph: setup, the workers (LLM or best response), aggregation, the step end.

The planner and the vote are in :mod:`planning`. Every node reads its configuration and the run's world
from ``runtime.context`` (:class:`EconomistContext`) and emits :mod:`malles_graph.events` models on the
custom stream as it goes: RoundStarted when a step starts, TurnStreamed and DecisionFinished for every LLM
worker answer, RoundFinished when a step (with its planner action and vote) is over.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from langgraph.runtime import Runtime
from langgraph.types import Send

from malles_graph.agents import TranscriptTurn
from malles_graph.economist import llm_roles
from malles_graph.economist.economy import StepOutcome, best_response, evaluate
from malles_graph.economist.observe import best_observation, credit
from malles_graph.economist.tax import TaxSchedule
from malles_graph.economist.welfare import summarise
from malles_graph.errors import BackendError
from malles_graph.events import DecisionFinished, RoundFinished, RoundStarted, TurnStreamed

from .context import EconomistContext
from .state import EconomistState, WorkerState

MEMORY = 3  # past weeks an LLM worker sees in its prompt


def schedule_of(ctx: EconomistContext, rates: list[float], label: str = "") -> TaxSchedule:
    return TaxSchedule(rates=tuple(rates), thresholds=tuple(ctx.options.brackets), label=label)


def call_seed(ctx: EconomistContext, step: int, role: int, slot: int) -> int:
    """The LLM seed of one call: a function of (run seed, step, role, slot), so a resumed run asks the same."""
    return (ctx.seed * 1_000_003 + step * 10_007 + role * 1_009 + slot) % (2**31)


def turn_event(agent_id: str, role: str, step: int, out: llm_roles.RoleResult) -> TurnStreamed:
    text = out.texts[-1][:800] if out.texts else (out.error or "")
    kind = "decision" if out.ok else "failure"
    return TurnStreamed(turn=TranscriptTurn(agent_id=agent_id, role=role, round=step, text=text, kind=kind,
                                            prompt_tokens=out.prompt_tokens, completion_tokens=out.completion_tokens,
                                            cached_prompt_tokens=out.cached_prompt_tokens))


# -- step start --------------------------------------------------------------------------------------
def setup(state: EconomistState, runtime: Runtime[EconomistContext]) -> dict:
    """Build the world (population, baselines) and the first state; a resumed run never comes back here."""
    ctx = runtime.context
    world = ctx.world
    start = ctx.options.initial_schedule
    if isinstance(start, list):
        rates, source = [float(r) for r in start], "initial"
    else:
        rates, source = list(world.baselines[start].rates), f"initial:{start}"
    k = world.n_simulated
    runtime.stream_writer(RoundStarted(round=1, total=k))
    return {"step": 1, "rates": rates, "source": source, "rebate": 0.0, "rep_hours": [None] * k,
            "rep_income": [0.0] * k, "rep_memory": [[] for _ in range(k)], "credited_to": 0, "incumbent": None,
            "pending": None, "told": []}


def dispatch(state: EconomistState, runtime: Runtime[EconomistContext]) -> list[Send] | Literal["best_response", "finish"]:
    """Fan out one worker per simulated representative (LLM), or compute everyone at once; finish after the last step."""
    ctx = runtime.context
    if state["step"] > ctx.options.steps:
        return "finish"
    if ctx.worker_policy == "best_response":
        return "best_response"
    return [
        Send("worker", {"slot": slot, "step": state["step"], "rates": state["rates"], "rebate": state.get("rebate", 0.0),
                        "memory": state["rep_memory"][slot]})
        for slot in range(ctx.world.n_simulated)
    ]


# -- workers -----------------------------------------------------------------------------------------
def decide_hours(state: WorkerState, runtime: Runtime[EconomistContext]) -> dict:
    """One LLM worker: persona + schedule + own history in, hours from the grid out (or a recorded failure)."""
    ctx = runtime.context
    world = ctx.world
    slot, step = state["slot"], state["step"]
    worker = int(world.reps[slot])
    prompt = llm_roles.worker_prompt(
        persona=world.pop.persona(worker), step=step, schedule=schedule_of(ctx, state["rates"]),
        grid=world.model.grid, cost=world.model.cost, exponent=world.model.exponent,
        rebate=state.get("rebate", 0.0), own_history="\n".join(state.get("memory") or []), prompts=ctx.prompts_dir,
    )
    try:
        out = llm_roles.ask_worker(ctx.llm(), prompt, world.model.grid, ctx.backend.max_retries,
                                   seed=call_seed(ctx, step, 0, slot))
    except BackendError as exc:  # the backend itself failed: record, do not invent an answer
        out = llm_roles.RoleResult(value=None, error=str(exc), calls=1)  # the failed request counts
    agent = f"worker-{worker}"
    hours = float(out.value.hours) if out.ok else None
    runtime.stream_writer(turn_event(agent, "worker", step, out))
    runtime.stream_writer(DecisionFinished(round=step, agent_id=agent, ok=out.ok,
                                           choice=None if hours is None else f"{hours:g}", quantity=hours or 0.0,
                                           weight=float(world.rep_mass[slot]), error=out.error))
    return {"decisions": [{"slot": slot, "ok": out.ok, "hours": hours, "error": out.error,
                           "answer": out.texts[-1][:500] if out.texts else "", "calls": out.calls,
                           "prompt_tokens": out.prompt_tokens, "completion_tokens": out.completion_tokens}]}


def _row(ctx: EconomistContext, state: EconomistState, out: StepOutcome, extra: dict) -> dict:
    figures = summarise(out, ctx.world.pop.potential_income, ctx.options)
    return {"step": state["step"], "schedule": list(state["rates"]), "source": state.get("source", ""), **figures,
            **extra}


def best_response_step(state: EconomistState, runtime: Runtime[EconomistContext]) -> dict:
    """All workers best-respond at once (exact; the rationality reference)."""
    ctx = runtime.context
    world = ctx.world
    sched = schedule_of(ctx, state["rates"])
    hours, best = best_response(world.pop.skill, sched, world.model)
    out = evaluate(world.pop.skill, hours, sched, world.model, world.pop.weight, best_private=best)
    extra = {"llm_calls": 0, "worker_failures": 0, "prompt_tokens": 0, "completion_tokens": 0}
    return {"history": [_row(ctx, state, out, extra)], "rebate": out.rebate}


def aggregate(state: EconomistState, runtime: Runtime[EconomistContext]) -> dict:
    """Collect the representatives' choices, apply them to their archetypes, evaluate the step."""
    ctx = runtime.context
    world = ctx.world
    rep_hours = list(state["rep_hours"])
    failures = calls = ptok = ctok = 0
    for d in sorted(state.get("decisions") or [], key=lambda d: d["slot"]):
        calls, ptok, ctok = calls + d["calls"], ptok + d["prompt_tokens"], ctok + d["completion_tokens"]
        if d["ok"]:
            rep_hours[d["slot"]] = d["hours"]
        else:
            failures += 1  # keeps its last valid hours; without one it sits this step out (mass 0)
    known = np.array([h is not None for h in rep_hours], dtype=bool)
    hours_rep = np.array([np.nan if h is None else h for h in rep_hours], dtype=float)
    sched = schedule_of(ctx, state["rates"])
    out = evaluate(world.pop.skill, hours_rep[world.labels], sched, world.model, world.pop.weight,
                   valid=known[world.labels])
    memory, income = [], []
    for slot, worker in enumerate(int(w) for w in world.reps):
        past = list(state["rep_memory"][slot])
        if known[slot]:
            past.append(f"step {state['step']}: {hours_rep[slot]:.0f} h/week, income ${out.income[worker]:,.0f}, "
                        f"tax ${out.tax[worker]:,.0f}, rebate ${out.rebate:,.0f}, your score {out.utility[worker]:,.0f}")
        memory.append(past[-MEMORY:])
        income.append(float(out.income[worker]))
    extra = {"llm_calls": calls, "worker_failures": failures, "failure_share": failures / max(1, world.n_simulated),
             "prompt_tokens": ptok, "completion_tokens": ctok}
    return {"history": [_row(ctx, state, out, extra)], "rebate": out.rebate, "rep_hours": rep_hours,
            "rep_income": income, "rep_memory": memory, "decisions": None}


# -- step end ----------------------------------------------------------------------------------------
def planner_due(ctx: EconomistContext, step: int) -> bool:
    return ctx.planner_policy != "fixed" and step % ctx.options.planner_every == 0 and step < ctx.options.steps


def vote_due(ctx: EconomistContext, step: int) -> bool:
    every = ctx.options.vote_every
    return every is not None and step % every == 0 and step < ctx.options.steps


def after_step(state: EconomistState, runtime: Runtime[EconomistContext]) -> Literal["planner", "vote", "advance"]:
    if planner_due(runtime.context, state["step"]):
        return "planner"
    return "vote" if vote_due(runtime.context, state["step"]) else "advance"


METRICS = ("welfare_skill_weighted", "welfare_utilitarian", "welfare_inverse_income", "mean_income", "median_income",
           "mean_hours", "idle_share", "revenue_per_worker", "gini_pretax", "gini_disposable", "mean_regret",
           "llm_calls", "worker_failures", "population")


def advance(state: EconomistState, runtime: Runtime[EconomistContext]) -> dict:
    """Close the step (RoundFinished with its figures, planner action and vote) and start the next one."""
    ctx = runtime.context
    step = state["step"]
    row = state["history"][-1]
    planner = next((e for e in reversed(state.get("planner_log") or []) if e["step"] == step), None)
    vote = next((v for v in reversed(state.get("votes") or []) if v["step"] == step), None)
    summary = {"schedule": row["schedule"], "source": row["source"], "next_schedule": list(state["rates"]),
               "planner": planner, "vote": vote}
    metrics = {k: float(row[k]) for k in METRICS if k in row} | {"welfare": float(row[f"welfare_{ctx.options.objective}"])}
    runtime.stream_writer(RoundFinished(round=step, metrics=metrics, summary=summary))
    if step + 1 <= ctx.options.steps:
        runtime.stream_writer(RoundStarted(round=step + 1, total=ctx.world.n_simulated))
    return {"step": step + 1}


def finish(state: EconomistState, runtime: Runtime[EconomistContext]) -> dict:
    """Credit the last period and report the incumbent (the best schedule observed) as the final schedule."""
    ctx = runtime.context
    new = credit(state["history"], state.get("credited_to", 0), ctx.options.objective)
    incumbent = best_observation(new, state.get("incumbent"))
    final = list(incumbent["rates"]) if incumbent else list(state["rates"])
    return {"observations": new, "credited_to": state["history"][-1]["step"] if state["history"] else 0,
            "incumbent": incumbent, "final_rates": final}


__all__ = ["advance", "after_step", "aggregate", "best_response_step", "decide_hours", "dispatch", "finish", "setup"]
