"""Run orchestration for the CLI and the TUI: start or resume a retail scenario run.

``run_scenario(scenario, run_id=..., resume=..., store_url=..., progress=..., client=...)``:

1. :func:`preflight` checks everything that can be checked before any work (archetypes vs
   customers, damping, backend name, data present, store reachable) and raises one
   :class:`~malles_graph.errors.MallesError` listing the problems;
2. a run row is created (or, on resume, read back: the stored scenario is the one that runs);
3. the population is clustered into archetypes and each representative gets its base
   ``ChoiceSituation`` (Ta Feng history up to the start date);
4. the population supervisor (``graphs/population.py``) runs with the LangGraph checkpointer on
   the same database, thread id = run id, so a killed run resumes where its checkpoints end;
5. decisions, transcript turns, rounds and metrics are written as they happen; the returned
   :class:`RunSummary` is read back from the store.

This module is the front door's helper: it imports ``graphs`` lazily, inside functions, so
``import malles_graph`` never imports the graphs.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from malles_graph.agents import TranscriptTurn
from malles_graph.errors import BackendError, DataError, MallesError, ScenarioError
from malles_graph.population.archetypes import Clustering, cluster_customers, customer_features, synthesise_customers
from malles_graph.population.environment import AgentSpec
from malles_graph.population.meanfield import WeightedOutcome
from malles_graph.population.reporters import DataCollector, RoundReport
from malles_graph.scenario import BACKEND_NAMES, Scenario

DEFAULT_START = dt.date(2001, 2, 1)
RETAIL_BACKENDS = ("local", "openai", "ollama", "choice-model")
_CACHE: dict[str, Any] = {}  # per-process: the Ta Feng table, situation lines, the opened memory


# -- progress -----------------------------------------------------------------------------------
class RunProgress(Protocol):
    """Callbacks a front end (CLI progress bar, TUI panel) receives while a run goes on."""

    def message(self, text: str) -> None: ...

    def round_started(self, round: int, total: int, done: int) -> None: ...

    def decision_done(self, round: int, done: int, total: int, outcome: WeightedOutcome | None) -> None: ...

    def round_finished(self, report: RoundReport, metrics: dict[str, float]) -> None: ...

    def transcript_turn(self, turn: TranscriptTurn) -> None: ...


class NullProgress:
    """A RunProgress that ignores everything; subclass it and override what you need."""

    def message(self, text: str) -> None:
        pass

    def round_started(self, round: int, total: int, done: int) -> None:
        pass

    def decision_done(self, round: int, done: int, total: int, outcome: WeightedOutcome | None) -> None:
        pass

    def round_finished(self, report: RoundReport, metrics: dict[str, float]) -> None:
        pass

    def transcript_turn(self, turn: TranscriptTurn) -> None:
        pass


# -- summary ------------------------------------------------------------------------------------
class RunSummary(BaseModel):
    """What a run produced (read back from the store)."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    name: str
    status: str
    store_url: str
    seed: int
    backend: str
    n_customers: int
    archetypes: int
    representatives: int
    rounds: list[RoundReport] = Field(default_factory=list)
    converged: bool = False
    decisions: int = 0
    failed: int = 0
    llm_calls: int = 0
    wall_s: float = 0.0
    resumed: bool = False

    @property
    def final(self) -> RoundReport | None:
        return self.rounds[-1] if self.rounds else None


# -- preflight ----------------------------------------------------------------------------------
def preflight(
    scenario: Scenario, *, store_url: str | None = None, resume: bool = False, run_id: str | None = None
) -> str:
    """Check the scenario and the store before any work; returns the store URL. Raises MallesError."""
    from malles_graph.store.engine import StoreError, check_reachable

    problems: list[str] = []
    pop, mf, backend = scenario.population, scenario.mean_field, scenario.backend
    if scenario.kind != "retail":
        problems.append(f"kind {scenario.kind!r}: this runner runs retail scenarios (use `malles {scenario.kind} ...`)")
    if backend.name not in BACKEND_NAMES:
        problems.append(f"backend.name {backend.name!r} is unknown; known backends: {', '.join(BACKEND_NAMES)}")
    elif backend.name not in RETAIL_BACKENDS:
        problems.append(f"backend.name {backend.name!r} cannot decide retail purchases; use {', '.join(RETAIL_BACKENDS)}")
    if not (isinstance(mf.damping, int | float) and 0 < mf.damping <= 1):
        problems.append(f"mean_field.damping must be in (0, 1], got {mf.damping!r}")
    if not mf.epsilon > 0:
        problems.append(f"mean_field.epsilon must be positive, got {mf.epsilon!r}")
    if mf.max_rounds < 1:
        problems.append(f"mean_field.max_rounds must be at least 1, got {mf.max_rounds!r}")
    if pop.archetypes < 1 or pop.representatives < 1:
        problems.append("population.archetypes and population.representatives must be at least 1")
    available = _available_customers(scenario, problems)
    n = pop.n_customers if pop.n_customers is not None else available
    if n is not None and pop.archetypes > n:
        problems.append(f"population.archetypes ({pop.archetypes}) exceeds the number of customers ({n})")
    if resume and not run_id:
        problems.append("--resume needs a run id (see `malles runs`)")
    if scenario.decision.retrieval and not problems:
        problems.extend(_memory_problems(scenario))
    if problems:
        raise ScenarioError(f"scenario {scenario.name!r} cannot run:\n" + "\n".join(f"  - {p}" for p in problems))
    try:
        return check_reachable(store_url or scenario.store.url)
    except StoreError:
        raise
    except Exception as exc:  # driver import errors and the like
        raise StoreError(f"cannot use the run store {store_url or scenario.store.url}: {exc}") from None


def _memory_problems(scenario: Scenario) -> list[str]:
    """decision.retrieval needs a built transaction memory (Chroma folder or server)."""
    try:
        open_memory(scenario)
    except MallesError as exc:
        return [f"decision.retrieval is on but the memory cannot be used: {exc} (or set decision.retrieval: false)"]
    return []


def open_memory(scenario: Scenario) -> Any:
    """The Chroma retriever of the scenario's ``memory:`` section (lazy: the retrieval package is optional here)."""
    if "memory" not in _CACHE or _CACHE["memory"][0] != scenario.memory:
        from malles_graph.retrieval.store import ChromaRetriever

        _CACHE["memory"] = (scenario.memory, ChromaRetriever.from_config(scenario.memory))
    return _CACHE["memory"][1]


def _available_customers(scenario: Scenario, problems: list[str]) -> int | None:
    pop = scenario.population
    if pop.source == "tafeng":
        from malles_graph.data import tafeng

        path = tafeng.parquet_path()
        if not path.exists():
            problems.append(f"{path} not found: run `malles data fetch tafeng` first")
            return None
        if pop.n_customers is not None:
            return pop.n_customers  # more than the data holds is synthesised (resampled with noise)
        return tafeng.load(columns=["customer_id"])["customer_id"].n_unique()
    try:
        from malles_graph.personas import load_personas

        personas = load_personas(_personas_path(scenario))
    except MallesError as exc:
        problems.append(str(exc))
        return None
    return len(personas)


def _personas_path(scenario: Scenario):
    from pathlib import Path

    from malles_graph.paths import personas_dir

    path = Path(scenario.population.personas_file or "")
    return path if path.is_absolute() or path.exists() else personas_dir() / path


# -- population setup ---------------------------------------------------------------------------
class Population(BaseModel):
    """The clustered population and its simulated agents."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    n_customers: int
    clustering: Any
    agents: list[AgentSpec]


def population_features(scenario: Scenario, transactions: pl.DataFrame | None, rng: np.random.Generator) -> pl.DataFrame:
    """Customer features: Ta Feng (sampled, or synthesised beyond the data) or personas."""
    pop = scenario.population
    if pop.source == "personas":
        return persona_features(scenario)
    features = customer_features(transactions).with_columns(source_id=pl.col("customer_id"))
    n = pop.n_customers
    if n is None or n == features.height:
        return features
    if n < features.height:
        picks = np.sort(rng.choice(features.height, size=n, replace=False))
        return features[picks]
    return synthesise_customers(features, n, rng)


def persona_features(scenario: Scenario) -> pl.DataFrame:
    from malles_graph.personas import load_personas
    from malles_graph.population.archetypes import AGE_GROUPS

    personas = load_personas(_personas_path(scenario))
    ages = {g: float(i) for i, g in enumerate(AGE_GROUPS)}
    return pl.DataFrame(
        {
            "customer_id": [p.name for p in personas],
            "source_id": [p.name for p in personas],
            "age_group": [p.age_group for p in personas],
            "pin_code": [p.pin_code for p in personas],
            "n_baskets": [1.0] * len(personas),
            "mean_basket_value": [1.0 + p.style.quantity_propensity for p in personas],
            "mean_unit_price": [1.0 + (1 - p.style.discount_sensitivity) for p in personas],
            "mean_quantity": [1.0 + p.style.quantity_propensity for p in personas],
            "age_index": [ages.get(p.age_group, 4.5) for p in personas],
        }
    )


def busiest_subclasses(transactions: pl.DataFrame, before: dt.date, n: int) -> list[str]:
    lines = transactions.filter(pl.col("date") < before).group_by("subclass").agg(pl.len().alias("lines"))
    return lines.sort(["lines", "subclass"], descending=[True, False])["subclass"].head(n).to_list()


def build_population(
    scenario: Scenario, rng: np.random.Generator, transactions: pl.DataFrame | None = None,
    progress: RunProgress | None = None,
) -> Population:
    """Cluster the customers and build each representative's base situation."""
    from malles_graph.situations import SituationOptions

    progress = progress or NullProgress()
    env = scenario.environment
    if transactions is None:  # personas need the data too: it prices the shelf
        transactions = _tafeng()
    features = population_features(scenario, transactions, rng)
    k, reps = scenario.population.archetypes, scenario.population.representatives
    progress.message(f"clustering {features.height:,} customers into {k} archetypes")
    clustering: Clustering = cluster_customers(features, k, reps, seed=int(rng.integers(2**31)))
    day = env.start_date or DEFAULT_START
    subclasses = env.subclasses or busiest_subclasses(transactions, day, env.n_subclasses)
    builder = _builder(transactions, SituationOptions(n_candidates=env.n_candidates, seed=scenario.seed))
    source = dict(zip(features["customer_id"].to_list(), features["source_id"].to_list(), strict=True))
    progress.message(f"building situations for {sum(len(a.representatives) for a in clustering.archetypes)} "
                     f"representatives in {len(subclasses)} subclass(es) on {day}")
    agents: list[AgentSpec] = []
    for archetype in clustering.archetypes:
        for r, customer_id in enumerate(archetype.representatives):
            for subclass in subclasses:
                situation = _situation(scenario, builder, source.get(customer_id, customer_id), day, subclass)
                agent_id = f"k{archetype.index:03d}-r{r}" + (f"-{subclass}" if len(subclasses) > 1 else "")
                agents.append(
                    AgentSpec(
                        agent_id=agent_id,
                        archetype=archetype.index,
                        weight=archetype.mass / (len(archetype.representatives) * len(subclasses)),
                        base=situation,
                    )
                )
    return Population(n_customers=clustering.n_customers, clustering=clustering, agents=agents)


def _tafeng() -> pl.DataFrame:
    """The Ta Feng table, loaded once per process (runs of several seeds share it)."""
    if "tafeng" not in _CACHE:
        from malles_graph.data import tafeng

        _CACHE["tafeng"] = tafeng.load()
    return _CACHE["tafeng"]


def _builder(transactions: pl.DataFrame, options: Any) -> Any:
    """A SituationBuilder; its aggregated lines are computed once per transactions table and reused."""
    import copy

    from malles_graph.situations import SituationBuilder

    cached = _CACHE.get("builder")
    if cached is None or cached[0] is not transactions:
        cached = (transactions, SituationBuilder(transactions, options))
        _CACHE["builder"] = cached
    builder = copy.copy(cached[1])
    builder.options = options
    builder._by_subclass = cached[1]._by_subclass  # shared read-only cache of per-subclass lines
    return builder


def _situation(scenario: Scenario, builder: Any, customer_id: str, day: dt.date, subclass: str):
    """The representative's base situation: real history for Ta Feng customers, a persona otherwise."""
    if scenario.population.source == "tafeng":
        return builder.build(customer_id, day, subclass).situation
    from malles_graph.models import ChoiceSituation, Customer
    from malles_graph.personas import load_personas, persona_text

    persona = next(p for p in load_personas(_personas_path(scenario)) if p.name == customer_id)
    ref = builder.reference(subclass, day).head(scenario.environment.n_candidates)
    if ref.height == 0:
        raise DataError(f"subclass {subclass!r} has no sales before {day}; nothing to offer")
    prices = builder.prices_on(subclass, day, ref["product_id"].to_list())
    candidates = [
        {"product_id": r["product_id"], "subclass": subclass, "price": round(prices.get(r["product_id"], r["regular_price"]), 4),
         "regular_price": round(r["regular_price"], 4), "popularity": round(r["popularity"], 6),
         "median_quantity": r["median_quantity"], "label": chr(65 + i)}
        for i, r in enumerate(ref.iter_rows(named=True))
    ]
    return ChoiceSituation.model_validate(
        {"situation_id": f"{persona.name}_{day:%Y%m%d}_{subclass}", "date": day,
         "customer": Customer(customer_id=persona.name, age_group=persona.age_group, pin_code=persona.pin_code),
         "subclass": subclass, "candidates": candidates, "style": persona.style, "persona_text": persona_text(persona)}
    )


# -- the run ------------------------------------------------------------------------------------
def agent_context(scenario: Scenario, client: Any = None) -> Any:
    """The decision graph's context for this scenario (LLM client built here, before any work)."""
    from malles_graph.graphs.decision import make_context

    if client is None and scenario.backend.name != "choice-model":
        from malles_graph.backends import build_client

        client = build_client(scenario.backend)
    retriever = open_memory(scenario) if scenario.decision.retrieval else None
    ctx = make_context(scenario.decision, backend=scenario.backend, client=client, retriever=retriever)
    ctx.seed = scenario.seed
    return ctx


def run_scenario(
    scenario: Scenario,
    *,
    run_id: str | None = None,
    resume: bool = False,
    store_url: str | None = None,
    progress: RunProgress | None = None,
    client: Any = None,
    agent_graph: Any = None,
) -> RunSummary:
    """Start (or resume) a retail run; returns the summary read back from the store.

    ``client`` replaces the LLM client built from the scenario's backend (tests pass a scripted
    one); ``agent_graph`` replaces the decision graph (any graph honouring the agent contract).
    """
    from malles_graph.store import repository as repo
    from malles_graph.store.engine import make_engine
    from malles_graph.store.tables import RunRow

    progress = progress or NullProgress()
    url = preflight(scenario, store_url=store_url, resume=resume, run_id=run_id)
    engine = make_engine(url)
    start = time.perf_counter()
    if resume:
        row = repo.get_run(engine, run_id)  # type: ignore[arg-type]
        stored = Scenario.model_validate_json(row.scenario_json)
        if stored.name != scenario.name:
            raise ScenarioError(f"run {run_id!r} belongs to scenario {stored.name!r}, not {scenario.name!r}")
        scenario = stored
        if row.status == "finished":
            progress.message(f"run {run_id} is already finished")
            return summarise(engine, run_id, url, resumed=True)  # type: ignore[arg-type]
        repo.update_run(engine, row.id, status="running", error=None)
    else:
        run_id = run_id or repo.new_run_id(scenario.name)
        repo.create_run(
            engine,
            RunRow(
                id=run_id, name=scenario.name, kind=scenario.kind, seed=scenario.seed, backend=scenario.backend.name,
                archetypes=scenario.population.archetypes, representatives=scenario.population.representatives,
                max_rounds=scenario.mean_field.max_rounds, scenario_json=scenario.model_dump_json(),
            ),
        )
    assert run_id is not None
    try:
        _execute(scenario, run_id, url, engine, progress, client, agent_graph, resume)
    except KeyboardInterrupt:
        repo.update_run(engine, run_id, status="interrupted", error="interrupted by the user")
        raise
    except Exception as exc:
        repo.update_run(engine, run_id, status="failed", error=f"{type(exc).__name__}: {exc}")
        raise
    repo.update_run(engine, run_id, status="finished")
    summary = summarise(engine, run_id, url, resumed=resume)
    summary.wall_s = time.perf_counter() - start
    return summary


def _execute(
    scenario: Scenario, run_id: str, url: str, engine: Any, progress: RunProgress, client: Any, agent_graph: Any,
    resume: bool,
) -> None:
    from malles_graph.graphs.population import PopulationContext, build_population_graph

    from malles_graph.population.retail import RetailEnvironment
    from malles_graph.store import repository as repo
    from malles_graph.store.checkpoint import open_checkpointer

    if agent_graph is None:
        from malles_graph.graphs.decision import graph as agent_graph
    try:
        agent_ctx = agent_context(scenario, client)
    except ImportError as exc:  # pragma: no cover - the decision graph ships with the package
        raise BackendError(f"the decision graph cannot be loaded: {exc}") from exc
    collector = DataCollector()
    ctx = PopulationContext(
        run_id=run_id, damping=scenario.mean_field.damping, epsilon=scenario.mean_field.epsilon,
        max_rounds=scenario.mean_field.max_rounds, agent_context=agent_ctx,
        recorder=repo.StoreRecorder(engine), collector=collector,
    )
    config = {"configurable": {"thread_id": run_id}, "max_concurrency": scenario.backend.max_concurrency,
              "recursion_limit": 10 * scenario.mean_field.max_rounds + 20}
    with open_checkpointer(url, max_connections=scenario.backend.max_concurrency + 2) as saver:
        graph = build_population_graph(agent_graph, RetailEnvironment(scenario.environment), checkpointer=saver)
        snapshot = graph.get_state(config)
        inputs: dict[str, Any] | None
        if resume and snapshot.values:
            inputs = None
            progress.message(f"resuming {run_id} from its last checkpoint (round {snapshot.values.get('round', 0)})")
        else:
            rng = np.random.default_rng(scenario.seed)  # the run's one generator (setup draws)
            population = build_population(scenario, rng, progress=progress)
            repo.save_archetypes(engine, run_id, population.clustering.archetypes)
            repo.update_run(engine, run_id, n_customers=population.n_customers)
            inputs = {"agents": population.agents, "n_customers": population.n_customers}
        _stream(graph, inputs, config, ctx, engine, run_id, progress)


def _stream(graph: Any, inputs: Any, config: dict, ctx: Any, engine: Any, run_id: str, progress: RunProgress) -> None:
    from malles_graph.store import repository as repo

    snapshot = graph.get_state(config)
    state = snapshot.values or {}
    number, total, done = state.get("round", 0), 0, 0
    if "run_agent" in (snapshot.next or ()):  # resumed inside a fan-out: count what is already stored
        total = len(state.get("tasks") or [])
        done = repo.decision_counts(engine, run_id).get(number, (0, 0))[0]
        progress.round_started(number, total, done)
    for namespace, mode, chunk in graph.stream(
        inputs, config, context=ctx, stream_mode=["updates", "custom"], subgraphs=True, durability="sync"
    ):
        if mode == "custom":
            if isinstance(chunk, TranscriptTurn):
                progress.transcript_turn(chunk)
            continue
        if namespace:
            continue
        for node, update in chunk.items():
            if node == "start_round" and update:
                number = update["round"]
                tasks = update.get("tasks") or []
                total, done = len(tasks), len(update.get("fixed") or [])
                progress.round_started(number, total, done)
            elif node == "run_agent" and update:
                done += 1
                outcomes = update.get("outcomes") or [None]
                progress.decision_done(number, done, total, outcomes[-1])
            elif node == "mean_field" and update:
                report = update["reports"][-1]
                progress.round_finished(report, ctx.collector.metrics(report))


def summarise(engine: Any, run_id: str, url: str, resumed: bool = False) -> RunSummary:
    """The RunSummary of a stored run."""
    from sqlalchemy import func
    from sqlmodel import Session, select

    from malles_graph.store import repository as repo
    from malles_graph.store.engine import safe_url
    from malles_graph.store.tables import DecisionRow

    row = repo.get_run(engine, run_id)
    rounds = repo.load_rounds(engine, run_id)
    counts = repo.decision_counts(engine, run_id)
    with Session(engine) as session:
        calls = session.exec(select(func.sum(DecisionRow.llm_calls)).where(DecisionRow.run_id == run_id)).one()
    return RunSummary(
        run_id=row.id, name=row.name, status=row.status, store_url=safe_url(url), seed=row.seed, backend=row.backend,
        n_customers=row.n_customers, archetypes=row.archetypes, representatives=row.representatives, rounds=rounds,
        converged=row.converged, decisions=sum(n for n, _ in counts.values()),
        failed=sum(f for _, f in counts.values()), llm_calls=int(calls or 0), resumed=resumed,
    )


# -- several seeds ------------------------------------------------------------------------------
class SeedSpread(BaseModel):
    """Aggregate outcomes of one scenario under several seeds, and their spread."""

    seeds: list[int]
    final_m: list[dict[str, float]]
    mean: dict[str, float]
    std: dict[str, float]
    max_tv_between_seeds: float


def seed_spread(summaries: Sequence[RunSummary]) -> SeedSpread:
    """Mean and standard deviation of the final m per option, and the largest pairwise TV distance."""
    from malles_graph.population.meanfield import total_variation

    finals = [s.final.m if s.final else {} for s in summaries]
    keys = sorted({k for m in finals for k in m})
    arr = np.array([[m.get(k, 0.0) for k in keys] for m in finals]) if finals else np.zeros((0, 0))
    tv = max((total_variation(a, b) for i, a in enumerate(finals) for b in finals[i + 1 :]), default=0.0)
    return SeedSpread(
        seeds=[s.seed for s in summaries],
        final_m=finals,
        mean=dict(zip(keys, arr.mean(axis=0).tolist(), strict=True)) if len(arr) else {},
        std=dict(zip(keys, arr.std(axis=0).tolist(), strict=True)) if len(arr) else {},
        max_tv_between_seeds=tv,
    )


def run_seeds(scenario: Scenario, seeds: Sequence[int], **kwargs: Any) -> tuple[list[RunSummary], SeedSpread]:
    """Run the scenario once per seed (separate runs) and report the spread of final outcomes."""
    summaries = [run_scenario(scenario.model_copy(update={"seed": s}), **kwargs) for s in seeds]
    return summaries, seed_spread(summaries)
