"""The economist graph's runtime context: configuration plus the run's world, rebuilt from the scenario.

Nothing large lives in the checkpointed state. The population (up to millions of workers as numpy
arrays), the labour model, the archetypes, the Saez baseline and the planner's oracle sample are a pure
function of the options and the seed, so :class:`EconomistContext` builds them lazily, once, in whichever
process runs (or resumes) the graph, and caches them on itself (:attr:`EconomistContext.world`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import numpy as np
from pydantic import ConfigDict
from pydantic.json_schema import SkipJsonSchema

from malles_graph.backends import LLMClient, build_client, is_llm_backend
from malles_graph.economist.economy import LabourModel, labour_model
from malles_graph.economist.options import EconomistOptions
from malles_graph.economist.population import Population, cluster_archetypes, sample_population
from malles_graph.economist.saez import SaezResult, saez_schedule
from malles_graph.economist.tax import TaxSchedule, flat_schedule, us_schedule, zero_schedule
from malles_graph.errors import ScenarioError
from malles_graph.scenario import BackendConfig, Scenario

SAEZ_SAMPLE = 50_000  # workers used for the Saez fixed point in very large populations (seeded subsample)
WorkerPolicy = Literal["llm", "best_response"]
PlannerPolicy = Literal["llm", "cma", "fixed"]


def resolve_policies(options: EconomistOptions, backend: BackendConfig) -> tuple[WorkerPolicy, PlannerPolicy]:
    """Who decides: ``auto`` means an LLM on an LLM backend, else best response / CMA-ES."""
    if backend.name == "choice-model":
        raise ScenarioError("backend 'choice-model' is for retail scenarios; the economist uses best-response or an LLM")
    llm = is_llm_backend(backend.name)
    worker = options.worker if options.worker != "auto" else ("llm" if llm else "best_response")
    planner = options.planner if options.planner != "auto" else ("llm" if llm else "cma")
    if not llm and (worker == "llm" or planner == "llm"):
        raise ScenarioError(
            f"backend {backend.name!r} is not an LLM but economist.worker={options.worker!r}, "
            f"economist.planner={options.planner!r} ask for one; use backend local, openai or ollama"
        )
    return worker, planner  # type: ignore[return-value]


@dataclass
class World:
    """Everything a run derives from (options, seed): never checkpointed, rebuilt on resume."""

    pop: Population
    model: LabourModel
    reps: np.ndarray  # worker index of each simulated representative (LLM workers)
    labels: np.ndarray  # representative slot of every worker
    rep_mass: np.ndarray  # workers per representative
    saez: SaezResult
    baselines: dict[str, TaxSchedule]
    oracle: Population  # the (sub)population on which the cma planner scores candidates

    @property
    def n_simulated(self) -> int:
        return len(self.reps)


def build_world(options: EconomistOptions, seed: int, worker: WorkerPolicy) -> World:
    # one generator per purpose, each seeded from the run seed: the same world in any process
    pop = sample_population(options.n_workers, options, np.random.default_rng([seed, 0]))
    model = labour_model(options)
    n = len(pop)
    if worker == "llm" and options.archetypes is not None and options.archetypes < n:
        arch = cluster_archetypes(pop, options.archetypes, seed=seed)
        reps, labels, mass = arch.representatives, arch.labels, arch.mass
    elif worker == "llm":
        reps, labels, mass = np.arange(n), np.arange(n), np.ones(n)
    else:  # best response: every worker is computed, no representatives
        reps, labels, mass = np.arange(0), np.zeros(n, dtype=int), np.zeros(0)

    def subsample(size: int, stream: int) -> Population:
        if n <= size:
            return pop
        return pop.take(np.sort(np.random.default_rng([seed, stream]).choice(n, size, replace=False)))

    sub = subsample(SAEZ_SAMPLE, 1)
    saez = saez_schedule(sub.skill, sub.potential_income, sub.weight, model, options)
    brackets = options.brackets
    baselines = {"us": us_schedule(brackets), "flat": flat_schedule(options.flat_rate, brackets),
                 "zero": zero_schedule(brackets), "saez": saez.schedule}
    return World(pop=pop, model=model, reps=np.asarray(reps), labels=np.asarray(labels),
                 rep_mass=np.asarray(mass, dtype=float), saez=saez, baselines=baselines,
                 oracle=subsample(options.oracle_sample, 2))


@dataclass(kw_only=True)
class EconomistContext:
    """Run configuration, read by every node via ``runtime.context`` (LangGraph ``context_schema``)."""

    __pydantic_config__ = ConfigDict(arbitrary_types_allowed=True)

    options: EconomistOptions = field(
        default_factory=EconomistOptions, metadata={"description": "the scenario's economist: section"}
    )
    backend: BackendConfig = field(
        default_factory=lambda: BackendConfig(name="best-response"),
        metadata={"description": "who answers: best-response (no LLM), local, openai or ollama"},
    )
    seed: int = field(default=0, metadata={"description": "seed of the run: population, planner, LLM calls, votes"})
    client: SkipJsonSchema[LLMClient | None] = field(
        default=None, compare=False, repr=False,
        metadata={"description": "LLM client; built from `backend` when empty (tests pass one with a scripted model)"},
    )
    prompts_dir: str | None = field(
        default=None,
        metadata={"description": "folder of prompt files; $MALLES_PROMPTS, else the bundled prompts, when empty"},
    )

    def __post_init__(self) -> None:
        # a LangGraph server hands the context over as JSON: validate it into the typed sections
        if not isinstance(self.options, EconomistOptions):
            self.options = EconomistOptions.model_validate(self.options or {})
        if not isinstance(self.backend, BackendConfig):
            self.backend = BackendConfig.model_validate(self.backend or {"name": "best-response"})
        self.worker_policy, self.planner_policy = resolve_policies(self.options, self.backend)
        self._lock = threading.Lock()

    @cached_property
    def world(self) -> World:
        """The run's population and baselines, built on first use (thread-safe: workers fan out in threads)."""
        with self._lock:
            if "_world" not in self.__dict__:
                self.__dict__["_world"] = build_world(self.options, self.seed, self.worker_policy)
        return self.__dict__["_world"]

    def llm(self) -> LLMClient:
        """The LLM client (built from the backend on first use)."""
        with self._lock:
            if self.client is None:
                self.client = build_client(self.backend)
        return self.client

    def cache(self) -> dict[str, Any]:
        """Per-process memo of derived objects (the replayed CMA-ES); always rebuildable from the state."""
        return self.__dict__.setdefault("_cache", {})


def run_context(scenario: Scenario, client: LLMClient | None = None) -> EconomistContext:
    """The runtime context of an economist scenario (the generic runner calls this, on start and on resume)."""
    if scenario.kind != "economist" or scenario.economist is None:
        raise ScenarioError(f"scenario {scenario.name!r} is of kind {scenario.kind!r}; expected 'economist'")
    return EconomistContext(options=scenario.economist, backend=scenario.backend, seed=scenario.seed, client=client,
                            prompts_dir=scenario.prompts)


__all__ = ["EconomistContext", "World", "build_world", "resolve_policies", "run_context"]
