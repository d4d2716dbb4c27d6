"""The planner and vote nodes of the economist graph.

Planner (every ``planner_every`` steps): first the rows since its last action are credited to the schedules
that produced them (:func:`malles_graph.economist.observe.credit`) and the incumbent is updated; then

- ``cma``: CMA-ES (the ``cma`` package). With best-response workers the exact equilibrium (on at most
  ``oracle_sample`` workers) is its oracle: each action scores one generation and puts the best schedule
  found so far in force. With LLM workers there is no oracle: each action puts the next candidate in force
  and the welfare observed under it is what the optimiser is told (the observation protocol above).
- ``llm``: in-context RL. The prompt shows the planner's own (schedule, welfare) record and the incumbent;
  the answer schema allows each rate to move at most ``max_rate_change`` points from the incumbent, so a
  revert to the incumbent is always possible and a proposal is never clipped after the fact.

Vote (every ``vote_every`` steps): ``platforms`` mode elects among fixed platforms; ``leader`` mode
(democratic) lets candidate workers write platforms, and the elected leader's platform sets the rates.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from langgraph.runtime import Runtime

from malles_graph.economist import llm_roles
from malles_graph.economist.economy import best_response
from malles_graph.economist.observe import best_observation, credit, same_rates
from malles_graph.economist.search import CmaState, cma_maximise, replay_cma, schedule_welfare
from malles_graph.economist.tax import TaxSchedule, rebate_per_worker
from malles_graph.economist.voting import self_interested_votes, tally
from malles_graph.errors import BackendError

from .context import EconomistContext
from .nodes import call_seed, schedule_of, turn_event, vote_due
from .state import EconomistState

CANDIDATE_BUDGET = 60  # own-utility evaluations of a best-response candidate writing its platform


# -- planner -------------------------------------------------------------------------------------------
def _cma(ctx: EconomistContext, start: list[float], told: list[float]) -> CmaState:
    """The planner's CMA-ES after ``told`` values, replayed once per process and then kept in the context."""
    cache = ctx.cache()
    hit = cache.get("cma")
    if hit is not None and hit[0] == len(told):
        return hit[1]
    state = replay_cma(start, ctx.options.cma_sigma, ctx.seed, told)
    cache["cma"] = (len(told), state)
    return state


def _cma_action(ctx: EconomistContext, state: EconomistState, new_obs: list[dict], entry: dict) -> dict:
    start = state["history"][0]["schedule"]
    told = list(state.get("told") or [])
    if ctx.worker_policy == "best_response":  # oracle: score one whole generation on the exact equilibrium
        world, opt = ctx.world, ctx.options
        cs = _cma(ctx, start, told)
        values = [schedule_welfare(schedule_of(ctx, x), world.oracle.skill, world.oracle.potential_income,
                                   world.oracle.weight, world.model, opt, opt.objective) for x in cs.pending]
        cs.es.tell([np.asarray(x) for x in cs.pending], [-v for v in values])
        told += values
        best = [float(r) for r in cs.es.result.xbest]
        ctx.cache()["cma"] = (len(told), CmaState(es=cs.es, told=len(told),
                                                  pending=[list(map(float, x)) for x in cs.es.ask()]))
        entry.update(evaluations=len(values), oracle_best=float(-cs.es.result.fbest))
        return {"rates": best, "source": "planner", "told": told, "pending": None}
    pending = state.get("pending")
    seen = next((o for o in new_obs if same_rates(o["rates"], pending)), None)
    if seen is not None:
        told.append(seen["welfare"])
    cs = _cma(ctx, start, told)
    nxt = cs.pending[0]
    entry["evaluations"] = 1 if seen is not None else 0
    return {"rates": nxt, "source": "planner", "told": told, "pending": nxt}


def _record_text(observations: list[dict], window: int) -> str:
    return "\n".join(
        f"steps {o['first']}-{o['last']} ({o['source'] or 'initial'}): rates "
        f"[{', '.join(f'{r:.0f}' for r in o['rates'])}] -> welfare {o['welfare']:,.1f}"
        for o in observations[-window:]
    )


def _llm_action(ctx: EconomistContext, state: EconomistState, observations: list[dict], incumbent: dict,
                entry: dict, runtime: Runtime[EconomistContext]) -> dict:
    opt = ctx.options
    bounds = llm_roles.rate_bounds(incumbent["rates"], opt.max_rate_change)
    prompt = llm_roles.planner_prompt(
        step=state["step"], objective=opt.objective, schedule=schedule_of(ctx, state["rates"]),
        history=_record_text(observations, opt.history_window), best=schedule_of(ctx, incumbent["rates"]),
        best_welfare=incumbent["welfare"], bounds=bounds, max_change=opt.max_rate_change, n_workers=opt.n_workers,
        prompts=ctx.prompts_dir,
    )
    try:
        out = llm_roles.ask_rates(ctx.llm(), prompt, bounds, ctx.backend.max_retries,
                                  seed=call_seed(ctx, state["step"], 1, 0),
                                  max_tokens=max(ctx.backend.max_tokens, opt.planner_max_tokens))
    except BackendError as exc:
        out = llm_roles.RoleResult(value=None, error=str(exc), calls=1)  # the failed request counts
    runtime.stream_writer(turn_event("planner", "planner", state["step"], out))
    entry.update(ok=out.ok, error=out.error, calls=out.calls, prompt_tokens=out.prompt_tokens,
                 completion_tokens=out.completion_tokens, answer=out.texts[-1][:800] if out.texts else "",
                 bounds=[list(b) for b in bounds])
    if not out.ok:  # a failed answer changes nothing: the schedule stays, the failure is recorded
        return {}
    entry["proposal"] = out.value
    return {"rates": out.value, "source": "planner"}


def planner(state: EconomistState, runtime: Runtime[EconomistContext]) -> dict:
    """Credit the period's observations, update the incumbent, and put the planner's next schedule in force."""
    ctx = runtime.context
    new_obs = credit(state["history"], state.get("credited_to", 0), ctx.options.objective)
    incumbent = best_observation(new_obs, state.get("incumbent"))
    entry: dict[str, Any] = {"step": state["step"], "policy": ctx.planner_policy, "before": list(state["rates"]),
                             "credited": new_obs, "ok": True, "error": None, "calls": 0, "prompt_tokens": 0,
                             "completion_tokens": 0}
    if ctx.planner_policy == "cma":
        update = _cma_action(ctx, state, new_obs, entry)
    else:
        observations = list(state.get("observations") or []) + new_obs
        update = _llm_action(ctx, state, observations, incumbent, entry, runtime)
    entry["after"] = list(update.get("rates", state["rates"]))
    entry["incumbent_welfare"] = incumbent["welfare"] if incumbent else None
    return {**update, "observations": new_obs, "credited_to": state["step"], "incumbent": incumbent,
            "planner_log": [entry]}


def after_planner(state: EconomistState, runtime: Runtime[EconomistContext]) -> Literal["vote", "advance"]:
    return "vote" if vote_due(runtime.context, state["step"]) else "advance"


# -- vote ----------------------------------------------------------------------------------------------
def _candidate_platforms(ctx: EconomistContext, state: EconomistState, runtime: Runtime[EconomistContext],
                         cost: dict[str, int]) -> dict[str, TaxSchedule]:
    """Democratic mode: candidate workers each write a platform (LLM, or own-utility CMA-ES for best responders)."""
    world, opt, step = ctx.world, ctx.options, state["step"]
    rng = np.random.default_rng([ctx.seed, step, 7])
    current = schedule_of(ctx, state["rates"])
    platforms: dict[str, TaxSchedule] = {}
    if ctx.worker_policy == "llm":
        for slot in rng.choice(world.n_simulated, min(opt.candidates, world.n_simulated), replace=False):
            worker = int(world.reps[slot])
            bounds = llm_roles.rate_bounds(state["rates"], opt.max_rate_change)
            prompt = llm_roles.candidate_prompt(world.pop.persona(worker), state["rep_income"][slot], current, bounds,
                                                prompts=ctx.prompts_dir)
            try:
                out = llm_roles.ask_rates(ctx.llm(), prompt, bounds, ctx.backend.max_retries,
                                          seed=call_seed(ctx, step, 2, int(slot)),
                                          max_tokens=max(ctx.backend.max_tokens, opt.planner_max_tokens))
            except BackendError as exc:
                out = llm_roles.RoleResult(value=None, error=str(exc), calls=1)  # the failed request counts
            runtime.stream_writer(turn_event(f"worker-{worker}", "candidate", step, out))
            cost["calls"] += out.calls
            if out.ok:  # a candidate whose platform never parsed does not stand
                platforms[f"leader:worker-{worker}"] = schedule_of(ctx, out.value, "leader")
            else:
                cost["failures"] += 1
        return platforms
    oracle = world.oracle
    for worker in np.sort(rng.choice(len(world.pop), min(opt.candidates, len(world.pop)), replace=False)):
        skill = world.pop.skill[int(worker) : int(worker) + 1]

        def own_utility(rates: tuple[float, ...], skill: np.ndarray = skill) -> float:
            sched = schedule_of(ctx, list(rates))
            hours, _ = best_response(oracle.skill, sched, world.model)
            rebate = rebate_per_worker(sched, oracle.skill * hours, oracle.weight)
            return float(best_response(skill, sched, world.model)[1][0]) + rebate

        x, _, _ = cma_maximise(own_utility, state["rates"], opt.cma_sigma, int(rng.integers(2**31)), CANDIDATE_BUDGET)
        platforms[f"leader:worker-{int(worker)}"] = schedule_of(ctx, list(x), "leader")
    return platforms


def vote(state: EconomistState, runtime: Runtime[EconomistContext]) -> dict:
    """Workers vote (plurality, mass-weighted, seeded tie-break); the winner's schedule takes over."""
    ctx = runtime.context
    world, opt, step = ctx.world, ctx.options, state["step"]
    cost = {"calls": 0, "failures": 0}
    if opt.vote_mode == "leader":
        platforms = _candidate_platforms(ctx, state, runtime, cost)
    else:
        platforms = {name: schedule_of(ctx, state["rates"]) if name == "planner" else world.baselines[name]
                     for name in opt.vote_platforms}
    names = list(platforms)
    record: dict[str, Any] = {"step": step, "mode": opt.vote_mode, "platforms": {n: list(s.rates) for n, s in platforms.items()}}
    if not names:
        record.update(winner=None, votes={}, schedule=list(state["rates"]), voters=0, **cost)
        return {"votes": [record]}
    if ctx.worker_policy == "best_response":
        choices = self_interested_votes(platforms, world.pop.skill, world.pop.weight, world.model)
        mass = world.pop.weight
    else:
        choices = []
        for slot in range(world.n_simulated):
            worker = int(world.reps[slot])
            prompt, letters = llm_roles.voter_prompt(world.pop.persona(worker), state["rep_income"][slot], platforms,
                                                     np.random.default_rng([ctx.seed, step, 11, slot]),
                                                     prompts=ctx.prompts_dir)
            try:
                out = llm_roles.ask_voter(ctx.llm(), prompt, list(letters), ctx.backend.max_retries,
                                          seed=call_seed(ctx, step, 3, slot))
            except BackendError as exc:
                out = llm_roles.RoleResult(value=None, error=str(exc), calls=1)  # the failed request counts
            runtime.stream_writer(turn_event(f"worker-{worker}", "voter", step, out))
            cost["calls"] += out.calls
            if out.ok:
                choices.append(letters[out.value.vote.strip().upper()])
            else:
                cost["failures"] += 1
                choices.append("")  # an abstention, recorded as a failure
        mass = world.rep_mass
    winner, votes = tally(choices, mass, names, np.random.default_rng([ctx.seed, step, 13]))
    new = platforms[winner]
    record.update(votes=votes, winner=winner, schedule=list(new.rates), voters=len(choices), **cost)
    update: dict[str, Any] = {"votes": [record]}
    if winner != "planner":
        update.update(rates=list(new.rates), source=f"vote:{winner}")
    return update


__all__ = ["after_planner", "planner", "vote"]
