"""The LLM Economist graph (Karten et al. 2025): workers choose hours, a planner sets the tax schedule.

Shape (see tests/economist/test_graph.py for the pinned mermaid drawing)::

    setup -> dispatch -> worker (one Send per simulated worker; a subgraph) -> aggregate
                      -> best_response (all workers at once, vectorised numpy)
    aggregate | best_response -> planner (every planner_every steps) -> vote (every vote_every steps) -> advance
    advance -> dispatch (next step) | END

Two time scales: workers act every step; the planner (the environment node) every T steps, with
in-context RL: its prompt holds the history of schedules and the welfare, income and labour that
followed. Large populations are clustered into archetypes; one representative per archetype is
simulated and its choice applies to the archetype's members (the mean-field idea of DESIGN.md), so
10,000 workers cost the LLM calls of 100.

Configuration comes through the typed runtime context (:class:`EconomistContext`). The population,
the LLM client and the random generator of a run live in a per-run registry keyed by ``run_key`` in the
state (numpy arrays of a million workers do not belong in the checkpointed state).
"""

from __future__ import annotations

import operator
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from langchain_core.language_models import BaseChatModel
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Send
from typing_extensions import TypedDict

from malles_graph.economist import llm_roles
from malles_graph.economist.economy import LabourModel, best_response, evaluate, labour_model
from malles_graph.economist.options import EconomistOptions
from malles_graph.economist.population import Population, cluster_archetypes, sample_population
from malles_graph.economist.saez import SaezResult, saez_schedule
from malles_graph.economist.search import hill_climb_step
from malles_graph.economist.tax import TaxSchedule, flat_schedule, us_schedule, zero_schedule
from malles_graph.economist.voting import self_interested_votes, tally
from malles_graph.economist.welfare import summarise
from malles_graph.errors import BackendError, ScenarioError
from malles_graph.scenario import BackendConfig, Scenario

SAEZ_SAMPLE = 50_000  # workers used for the Saez fixed point in very large populations (seeded subsample)


# -- configuration ---------------------------------------------------------------------------------
@dataclass
class EconomistContext:
    """Run configuration, read by every node via ``runtime.context``."""

    options: EconomistOptions = field(
        default_factory=EconomistOptions, metadata={"description": "the scenario's economist: section"}
    )
    backend: BackendConfig = field(
        default_factory=lambda: BackendConfig(name="best-response"),
        metadata={"description": "who answers: best-response (no LLM), local, openai or ollama"},
    )
    seed: int = field(default=0, metadata={"description": "seed of the run's one random generator"})
    # typed Any so the context has a JSON schema (LangGraph server); holds a BaseChatModel or None
    chat_model: Any = field(
        default=None, metadata={"description": "a BaseChatModel replacing the backend's model (scripted tests)"}
    )

    def __post_init__(self) -> None:
        # a LangGraph server hands the context over as JSON: validate it into the typed sections
        if not isinstance(self.options, EconomistOptions):
            self.options = EconomistOptions.model_validate(self.options or {})
        if not isinstance(self.backend, BackendConfig):
            self.backend = BackendConfig.model_validate(self.backend or {"name": "best-response"})


# -- state -----------------------------------------------------------------------------------------
def merge_decisions(old: list[dict] | None, new: list[dict] | None) -> list[dict]:
    """Append worker decisions; ``None`` clears them (aggregate does this after each step)."""
    if new is None:
        return []
    return (old or []) + new


class EconomistInput(TypedDict, total=False):
    run_key: str


class EconomistState(TypedDict, total=False):
    run_key: str
    step: int
    schedule: TaxSchedule
    rebate: float
    decisions: Annotated[list[dict], merge_decisions]
    rep_hours: list[float | None]
    rep_memory: list[list[str]]
    outcome: dict[str, Any]
    climb: dict[str, Any]
    history: Annotated[list[dict], operator.add]
    planner_log: Annotated[list[dict], operator.add]
    votes: Annotated[list[dict], operator.add]


class EconomistOutput(TypedDict, total=False):
    run_key: str
    schedule: TaxSchedule
    history: list[dict]
    planner_log: list[dict]
    votes: list[dict]


class WorkerState(TypedDict, total=False):
    run_key: str
    slot: int
    step: int
    schedule: TaxSchedule
    rebate: float
    memory: list[str]
    decisions: Annotated[list[dict], merge_decisions]


class WorkerOutput(TypedDict):
    decisions: Annotated[list[dict], merge_decisions]


# -- per-run resources -----------------------------------------------------------------------------
@dataclass
class Resources:
    options: EconomistOptions
    backend: BackendConfig
    pop: Population
    model: LabourModel
    rng: np.random.Generator
    worker_policy: Literal["llm", "best_response"]
    planner_policy: Literal["llm", "hill_climb", "fixed"]
    reps: np.ndarray  # worker index of each simulated representative (LLM workers)
    labels: np.ndarray  # representative slot of every worker
    rep_mass: np.ndarray  # workers per representative
    saez: SaezResult
    baselines: dict[str, TaxSchedule]
    client: Any = None  # LLMClient when an LLM is used
    seed: int = 0

    @property
    def n_simulated(self) -> int:
        return len(self.reps)


_RUNS: dict[str, Resources] = {}


def resources(run_key: str) -> Resources:
    try:
        return _RUNS[run_key]
    except KeyError:
        raise RuntimeError(f"no economist run {run_key!r} is active (setup did not run in this process)") from None


def release(run_key: str) -> Resources | None:
    """Forget a finished run's resources (the runner calls this)."""
    return _RUNS.pop(run_key, None)


def resolve_policies(options: EconomistOptions, backend: BackendConfig) -> tuple[str, str]:
    llm = backend.name in ("local", "openai", "ollama")
    worker = options.worker if options.worker != "auto" else ("llm" if llm else "best_response")
    planner = options.planner if options.planner != "auto" else ("llm" if llm else "hill_climb")
    if not llm and (worker == "llm" or planner == "llm"):
        raise ScenarioError(
            f"backend {backend.name!r} is not an LLM but economist.worker={options.worker!r}, "
            f"economist.planner={options.planner!r} ask for one; use backend local, openai or ollama"
        )
    if backend.name == "choice-model":
        raise ScenarioError("backend 'choice-model' is for retail scenarios; the economist uses best-response or an LLM")
    return worker, planner


def build_resources(ctx: EconomistContext) -> Resources:
    options = ctx.options
    worker, planner = resolve_policies(options, ctx.backend)
    rng = np.random.default_rng(ctx.seed)
    pop = sample_population(options.n_workers, options, rng)
    model = labour_model(options)
    n = len(pop)
    if worker == "llm" and options.archetypes is not None and options.archetypes < n:
        arch = cluster_archetypes(pop, options.archetypes, seed=ctx.seed)
        reps, labels, mass = arch.representatives, arch.labels, arch.mass
    elif worker == "llm":
        reps, labels, mass = np.arange(n), np.arange(n), np.ones(n)
    else:  # best response: every worker is computed, no representatives
        reps, labels, mass = np.arange(0), np.zeros(n, dtype=int), np.zeros(0)
    idx = np.arange(n) if n <= SAEZ_SAMPLE else np.sort(rng.choice(n, SAEZ_SAMPLE, replace=False))
    sub = pop.take(idx)
    saez = saez_schedule(sub.skill, sub.potential_income, sub.weight, model, options)
    baselines = {"us": us_schedule(), "flat": flat_schedule(options.flat_rate), "saez": saez.schedule}
    client = None
    if worker == "llm" or planner == "llm":
        from malles_graph.backends import build_client

        client = build_client(ctx.backend, chat_model=ctx.chat_model)
    return Resources(
        options=options,
        backend=ctx.backend,
        pop=pop,
        model=model,
        rng=rng,
        worker_policy=worker,  # type: ignore[arg-type]
        planner_policy=planner,  # type: ignore[arg-type]
        reps=np.asarray(reps),
        labels=np.asarray(labels),
        rep_mass=np.asarray(mass, dtype=float),
        saez=saez,
        baselines=baselines,
        client=client,
        seed=ctx.seed,
    )


def initial_schedule(res: Resources) -> TaxSchedule:
    start = res.options.initial_schedule
    if isinstance(start, list):
        return TaxSchedule(rates=tuple(start), label="initial")
    if start == "zero":
        return zero_schedule()
    return res.baselines[start]


# -- nodes -----------------------------------------------------------------------------------------
def setup(state: EconomistInput, runtime: Runtime[EconomistContext]) -> dict:
    """Sample the population, cluster archetypes, compute the Saez baseline, pick the first schedule."""
    run_key = state.get("run_key") or uuid.uuid4().hex[:12]
    if run_key not in _RUNS:
        _RUNS[run_key] = build_resources(runtime.context or EconomistContext())
    res = _RUNS[run_key]
    k = res.n_simulated
    return {
        "run_key": run_key,
        "step": 1,
        "schedule": initial_schedule(res),
        "rebate": 0.0,
        "rep_hours": [None] * k,
        "rep_memory": [[] for _ in range(k)],
        "climb": {},
    }


def dispatch(state: EconomistState) -> list[Send] | Literal["best_response", "__end__"]:
    """Fan out one worker per simulated representative (LLM), or compute everyone at once."""
    res = resources(state["run_key"])
    if state["step"] > res.options.steps:
        release(state["run_key"])  # the run is over: free its population (a runner keeps its own reference)
        return END
    if res.worker_policy == "best_response":
        return "best_response"
    return [
        Send(
            "worker",
            {
                "run_key": state["run_key"],
                "slot": slot,
                "step": state["step"],
                "schedule": state["schedule"],
                "rebate": state.get("rebate", 0.0),
                "memory": state["rep_memory"][slot],
            },
        )
        for slot in range(res.n_simulated)
    ]


def decide_hours(state: WorkerState) -> dict:
    """One LLM worker: persona + schedule + own history in, validated hours out (or a recorded failure)."""
    res = resources(state["run_key"])
    slot = state["slot"]
    worker = int(res.reps[slot])
    prompt = llm_roles.worker_prompt(
        persona=res.pop.persona(worker),
        step=state["step"],
        schedule=state["schedule"],
        grid=res.model.grid,
        cost=res.model.cost,
        exponent=res.model.exponent,
        rebate=state.get("rebate", 0.0),
        own_history="\n".join(state.get("memory") or []),
    )
    seed = res.seed * 1_000_003 + state["step"] * 10_007 + slot
    try:
        out = llm_roles.ask_worker(res.client, prompt, res.model.grid, res.backend.max_retries, seed=seed)
    except BackendError as exc:  # the backend itself failed: record, do not invent an answer
        out = llm_roles.RoleResult(value=None, error=str(exc))
    return {
        "decisions": [
            {
                "slot": slot,
                "ok": out.ok,
                "hours": float(out.value.hours) if out.ok else None,
                "error": out.error,
                "answer": out.texts[-1][:500] if out.texts else "",
                "calls": out.calls,
                "prompt_tokens": out.prompt_tokens,
                "completion_tokens": out.completion_tokens,
            }
        ]
    }


def _record(res: Resources, state: EconomistState, out, extra: dict) -> dict:
    """The history row of a step, and the state updates every step makes."""
    figures = summarise(out, res.pop.potential_income, res.options)
    row = {"step": state["step"], "schedule": list(state["schedule"].rates), **figures, **extra}
    outcome = {
        "hours": out.hours,
        "income": out.income,
        "tax": out.tax,
        "utility": out.utility,
        "regret": out.regret,
        "weight": out.weight,
    }
    return {"history": [row], "outcome": outcome, "rebate": out.rebate}


def best_response_step(state: EconomistState) -> dict:
    """All workers best-respond at once (vectorised; the rationality reference)."""
    res = resources(state["run_key"])
    hours, best = best_response(res.pop.skill, state["schedule"], res.model)
    out = evaluate(res.pop.skill, hours, state["schedule"], res.model, res.pop.weight, best_private=best)
    extra = {"llm_calls": 0, "worker_failures": 0, "prompt_tokens": 0, "completion_tokens": 0}
    return _record(res, state, out, extra)


def aggregate(state: EconomistState) -> dict:
    """Collect the representatives' choices, apply them to their archetypes, and evaluate the step."""
    res = resources(state["run_key"])
    rep_hours = list(state["rep_hours"])
    failures = 0
    calls = ptok = ctok = 0
    for d in sorted(state.get("decisions") or [], key=lambda d: d["slot"]):
        calls += d["calls"]
        ptok += d["prompt_tokens"]
        ctok += d["completion_tokens"]
        if d["ok"]:
            rep_hours[d["slot"]] = d["hours"]
        else:
            failures += 1  # keeps its last valid hours; without one it sits this step out (mass 0)
    known = np.array([h is not None for h in rep_hours])
    hours_rep = np.array([h if h is not None else np.nan for h in rep_hours], dtype=float)
    hours = hours_rep[res.labels]
    valid = known[res.labels]
    out = evaluate(res.pop.skill, hours, state["schedule"], res.model, res.pop.weight, valid=valid)
    memory = []
    for slot, worker in enumerate(res.reps):
        past = list(state["rep_memory"][slot])
        if known[slot]:
            w = int(worker)
            past.append(
                f"step {state['step']}: {hours_rep[slot]:.0f} h/week, income ${out.income[w]:,.0f}, "
                f"tax ${out.tax[w]:,.0f}, rebate ${out.rebate:,.0f}, your score {out.utility[w]:,.0f}"
            )
        memory.append(past[-3:])
    extra = {
        "llm_calls": calls,
        "worker_failures": failures,
        "failure_share": failures / max(1, res.n_simulated),
        "prompt_tokens": ptok,
        "completion_tokens": ctok,
    }
    update = _record(res, state, out, extra)
    update["outcome"]["decisions"] = sorted(state.get("decisions") or [], key=lambda d: d["slot"])
    update.update({"decisions": None, "rep_hours": rep_hours, "rep_memory": memory})
    return update


def after_step(state: EconomistState) -> Literal["planner", "vote", "advance"]:
    res = resources(state["run_key"])
    step = state["step"]
    if step % res.options.planner_every == 0 and step < res.options.steps:
        return "planner"
    return "vote" if _vote_due(res, step) else "advance"


def _vote_due(res: Resources, step: int) -> bool:
    every = res.options.vote_every
    return every is not None and step % every == 0 and step < res.options.steps


def planner_history(res: Resources, history: list[dict]) -> str:
    """One line per planner period: the schedule and the mean figures observed under it."""
    objective = res.options.objective
    T = res.options.planner_every
    lines = []
    periods = [history[i : i + T] for i in range(0, len(history), T)]
    for rows in periods[-res.options.history_window :]:
        def mean(key: str, rows: list[dict] = rows) -> float:
            return float(np.mean([r[key] for r in rows]))

        lines.append(
            f"steps {rows[0]['step']}-{rows[-1]['step']}: rates {_fmt(rows[-1]['schedule'])} -> "
            f"welfare {mean('welfare_' + objective):,.1f}, mean hours {mean('mean_hours'):.1f}, "
            f"mean income ${mean('mean_income'):,.0f}, revenue/worker ${mean('revenue_per_worker'):,.0f}, "
            f"Gini {mean('gini_pretax'):.3f}"
        )
    return "\n".join(lines)


def _fmt(rates: list[float] | tuple[float, ...]) -> str:
    return "[" + ", ".join(f"{r:.1f}" for r in rates) + "]"


def planner(state: EconomistState) -> dict:
    """The environment node: every T steps the planner proposes the next schedule (bounded change)."""
    res = resources(state["run_key"])
    opt = res.options
    current = state["schedule"]
    rows = state["history"][-opt.planner_every :]
    observed = float(np.mean([r[f"welfare_{opt.objective}"] for r in rows]))
    entry: dict[str, Any] = {
        "step": state["step"],
        "policy": res.planner_policy,
        "before": list(current.rates),
        "observed_welfare": observed,
        "ok": True,
        "error": None,
        "proposal": None,
        "clipped": False,
        "calls": 0,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "answer": "",
    }
    update: dict[str, Any] = {}
    new = current
    if res.planner_policy == "hill_climb":
        climb = state.get("climb") or {}
        inc = climb.get("incumbent")
        trial, inc_s, inc_w, sigma, note = hill_climb_step(
            current,
            observed,
            TaxSchedule(rates=tuple(inc)) if inc else None,
            climb.get("incumbent_welfare"),
            opt,
            res.rng,
            climb.get("sigma"),
        )
        entry["proposal"] = list(trial.rates)
        entry["answer"] = note
        new, entry["clipped"] = current.clipped_toward(trial.rates, opt.max_rate_change, label="hill-climb")
        update["climb"] = {"incumbent": list(inc_s.rates), "incumbent_welfare": inc_w, "sigma": sigma}
    elif res.planner_policy == "llm":
        prompt = llm_roles.planner_prompt(
            step=state["step"],
            objective=opt.objective,
            schedule=current,
            history=planner_history(res, state["history"]),
            max_change=opt.max_rate_change,
            n_workers=len(res.pop),
        )
        try:
            out = llm_roles.ask_planner(res.client, prompt, len(current.rates), res.backend.max_retries,
                                        seed=res.seed * 7919 + state["step"],
                                        max_tokens=max(res.backend.max_tokens, opt.planner_max_tokens))
        except BackendError as exc:
            out = llm_roles.RoleResult(value=None, error=str(exc))
        entry.update(
            ok=out.ok,
            error=out.error,
            calls=out.calls,
            prompt_tokens=out.prompt_tokens,
            completion_tokens=out.completion_tokens,
            answer=out.texts[-1][:800] if out.texts else "",
        )
        if out.ok:
            entry["proposal"] = list(out.value.rates)
            new, entry["clipped"] = current.clipped_toward(out.value.rates, opt.max_rate_change, label="planner")
        # a failed answer changes nothing: the schedule stays, the failure is recorded
    entry["after"] = list(new.rates)
    update.update({"schedule": new, "planner_log": [entry]})
    return update


def after_planner(state: EconomistState) -> Literal["vote", "advance"]:
    return "vote" if _vote_due(resources(state["run_key"]), state["step"]) else "advance"


def vote(state: EconomistState) -> dict:
    """Workers vote (plurality, seeded tie-break) among platforms; the winner's schedule takes over."""
    res = resources(state["run_key"])
    opt = res.options
    platforms = {name: (state["schedule"] if name == "planner" else res.baselines[name]) for name in opt.vote_platforms}
    names = list(platforms)
    calls = ptok = ctok = failures = 0
    if res.worker_policy == "best_response":
        choices = self_interested_votes(platforms, res.pop.skill, res.pop.weight, res.model)
        mass = res.pop.weight
    else:
        income = state.get("outcome", {}).get("income")

        def one(slot: int) -> llm_roles.RoleResult | tuple[llm_roles.RoleResult, dict[str, str]]:
            w = int(res.reps[slot])
            prompt, letters = llm_roles.voter_prompt(
                res.pop.persona(w), float(income[w]) if income is not None else 0.0, platforms
            )
            try:
                out = llm_roles.ask_voter(res.client, prompt, list(letters), res.backend.max_retries,
                                          seed=res.seed * 31 + state["step"] * 101 + slot)
            except BackendError as exc:
                out = llm_roles.RoleResult(value=None, error=str(exc))
            return out, letters

        with ThreadPoolExecutor(max_workers=res.backend.max_concurrency) as pool:
            results = list(pool.map(one, range(res.n_simulated)))
        choices = []
        for out, letters in results:
            calls += out.calls
            ptok += out.prompt_tokens
            ctok += out.completion_tokens
            if out.ok:
                choices.append(letters[out.value.vote.strip().upper()])
            else:
                failures += 1
                choices.append("")  # an abstention, recorded as a failure
        mass = res.rep_mass
    winner, votes = tally(choices, mass, names, res.rng)
    new = state["schedule"] if winner == "planner" else platforms[winner].model_copy(update={"label": f"vote:{winner}"})
    record = {
        "step": state["step"],
        "votes": votes,
        "winner": winner,
        "schedule": list(new.rates),
        "voters": len(choices),
        "failures": failures,
        "calls": calls,
        "prompt_tokens": ptok,
        "completion_tokens": ctok,
    }
    update: dict[str, Any] = {"schedule": new, "votes": [record]}
    if winner != "planner":
        update["climb"] = {}  # the hill-climber restarts from the elected schedule
    return update


def advance(state: EconomistState) -> dict:
    return {"step": state["step"] + 1}


# -- graph -----------------------------------------------------------------------------------------
def build_worker_graph():
    """The agent subgraph: one worker's decision (LLM, validated)."""
    builder = StateGraph(WorkerState, output_schema=WorkerOutput)
    builder.add_node("decide_hours", decide_hours)
    builder.add_edge(START, "decide_hours")
    builder.add_edge("decide_hours", END)
    return builder.compile(name="economist_worker")


def build_economist_graph() -> StateGraph:
    """The uncompiled builder (callers may compile it with a checkpointer)."""
    builder = StateGraph(
        EconomistState, context_schema=EconomistContext, input_schema=EconomistInput, output_schema=EconomistOutput
    )
    builder.add_node("setup", setup)
    builder.add_node("worker", build_worker_graph())
    builder.add_node("best_response", best_response_step)
    builder.add_node("aggregate", aggregate)
    builder.add_node("planner", planner)
    builder.add_node("vote", vote)
    builder.add_node("advance", advance)
    builder.add_edge(START, "setup")
    targets = ["worker", "best_response", END]
    builder.add_conditional_edges("setup", dispatch, targets)
    builder.add_edge("worker", "aggregate")
    builder.add_conditional_edges("best_response", after_step, ["planner", "vote", "advance"])
    builder.add_conditional_edges("aggregate", after_step, ["planner", "vote", "advance"])
    builder.add_conditional_edges("planner", after_planner, ["vote", "advance"])
    builder.add_edge("vote", "advance")
    builder.add_conditional_edges("advance", dispatch, targets)
    return builder


builder = build_economist_graph()
graph = builder.compile(name="economist")


# -- runner ---------------------------------------------------------------------------------------
Progress = Callable[[int, int, dict], None]


@dataclass
class EconomistRun:
    """What a finished run produced (the same as its run folder holds)."""

    run_dir: Path | None
    history: list[dict]
    planner_log: list[dict]
    votes: list[dict]
    final_schedule: TaxSchedule
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
    """Run an economist scenario end to end; persist it under ``run_dir`` (default runs_dir()/economist/...).

    ``progress(step, steps, history_row)`` is called after every step. ``chat_model`` replaces the
    backend's model (tests). Returns the history, planner actions, votes and the post-run analysis.
    """
    if scenario.kind != "economist" or scenario.economist is None:
        raise ScenarioError(f"scenario {scenario.name!r} is of kind {scenario.kind!r}; expected 'economist'")
    from malles_graph.economist.analysis import post_run_analysis
    from malles_graph.economist.runstore import RunWriter, StoreSink, new_run_dir

    options = scenario.economist
    ctx = EconomistContext(options=options, backend=scenario.backend, seed=scenario.seed, chat_model=chat_model)
    run_key = uuid.uuid4().hex[:8]
    start = time.perf_counter()
    _RUNS[run_key] = build_resources(ctx)
    res = _RUNS[run_key]
    writer = sink = None
    if write:
        path = Path(run_dir) if run_dir is not None else new_run_dir(scenario.name, run_key)
        writer = RunWriter(path, keep_workers=len(res.pop) <= options.keep_worker_rows)
        sink = StoreSink(scenario.store.url, path.name, scenario, len(res.pop), res.n_simulated)
    final: dict = {}
    status, error = "failed", None
    try:
        config = {"recursion_limit": options.steps * 8 + 50}
        for mode, chunk in graph.stream(
            {"run_key": run_key}, context=ctx, config=config, stream_mode=["updates", "values"]
        ):
            if mode == "values":
                final = chunk
                continue
            for update in chunk.values():
                if not isinstance(update, dict):
                    continue
                for row in update.get("history", []):
                    if writer:
                        writer.step(row, update["outcome"], res.reps)
                    if sink:
                        sink.step(row, update["outcome"].get("decisions") or [], res.reps, res.rep_mass)
                    if progress:
                        progress(row["step"], options.steps, row)
                for entry in update.get("planner_log", []):
                    if writer:
                        writer.planner(entry)
                for record in update.get("votes", []):
                    if writer:
                        writer.vote(record)
        final_schedule = final["schedule"]
        history, planner_log, votes = final.get("history", []), final.get("planner_log", []), final.get("votes", [])
        key = f"welfare_{options.objective}"
        best_row = max(history, key=lambda r: r[key]) if history else None
        best_observed = TaxSchedule(rates=tuple(best_row["schedule"]), label="best observed") if best_row else None
        analysis = post_run_analysis(
            res.pop, res.model, options, final_schedule, res.saez.schedule, scenario.seed, best_observed=best_observed
        )
        calls = sum(r.get("llm_calls", 0) for r in history)
        calls += sum(e.get("calls", 0) for e in planner_log) + sum(v.get("calls", 0) for v in votes)
        meta = {
            "scenario": scenario.model_dump(mode="json"),
            "run_key": run_key,
            "backend": scenario.backend.name,
            "model": getattr(res.client, "model_id", None),
            "worker_policy": res.worker_policy,
            "planner_policy": res.planner_policy,
            "n_workers": len(res.pop),
            "n_simulated": res.n_simulated if res.worker_policy == "llm" else len(res.pop),
            "labour_cost": res.model.cost,
            "labour_exponent": res.model.exponent,
            "elasticity": options.delta_elasticity(),
            "objective": options.objective,
            "steps": options.steps,
            "llm_calls": calls,
            "llm_calls_per_step": calls / max(1, options.steps),
            "worker_failures": sum(r.get("worker_failures", 0) for r in history),
            "planner_failures": sum(1 for e in planner_log if not e.get("ok", True)),
            "final_schedule": list(final_schedule.rates),
            "saez_schedule": list(res.saez.schedule.rates),
            "elapsed_s": time.perf_counter() - start,
        }
        saez = {
            "rates": list(res.saez.schedule.rates),
            "points": res.saez.points,
            "iterations": res.saez.iterations,
            "converged": res.saez.converged,
            "elasticity": options.delta_elasticity(),
            "objective": options.objective,
            "density": "Gaussian KDE on log positive incomes (Scott bandwidth); top bracket a = m / (m - z)",
        }
        if writer:
            writer.finish(meta, analysis, saez)
        status = "finished"
        return EconomistRun(
            run_dir=writer.path if writer else None,
            history=history,
            planner_log=planner_log,
            votes=votes,
            final_schedule=final_schedule,
            analysis=analysis,
            meta=meta,
        )
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        release(run_key)
        if sink:
            sink.finish(status, error)


__all__ = [
    "EconomistContext",
    "EconomistRun",
    "build_economist_graph",
    "graph",
    "release",
    "resources",
    "run_economist",
]
