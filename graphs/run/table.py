"""The runner table: each scenario kind -> its graph package, run by one generic runner.

A kind's package (``malles_graph.graphs.<package>``) provides, per the run contract:

``builder``
    the uncompiled ``StateGraph``; the runner compiles it with the store's checkpointer.
``run_inputs(scenario) -> dict``
    the initial state of a new run (deterministic from the scenario and its seed).
``run_context(scenario, client=None) -> Context``
    the runtime context: LLM client, data, retriever (never module-level registries).
``run_preflight(scenario) -> list[str]`` (optional)
    problems found before any work; the run is refused with all of them.
``prompts`` (a field of the row below, not of the package)
    which prompt folder the kind's roles read; the runner checks the whole set before any work and
    records its digest and per-file digests in the run's ``RunStarted``.
``run_summary(values, context) -> dict`` (optional)
    the kind's final figures from the graph's last state and the run's context (its rebuilt data,
    e.g. the economist's population for the welfare table), stored with the run. Front ends render
    its ``figures`` ({label: text}) and ``tables`` ({name of an entry that is a list of rows: columns shown}).

Front ends never switch on the kind: they call :func:`start_run` / :func:`resume_run` and
consume the handle's events; adding a kind is one row here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from types import ModuleType
from typing import Any

from langgraph.graph.state import CompiledStateGraph

from malles_graph.backends import LLMClient
from malles_graph.errors import MallesError, ScenarioError
from malles_graph.prompt_sets import PromptSet, checked_prompt_set, scenario_personas
from malles_graph.scenario import Scenario


@dataclass(frozen=True)
class KindRunner:
    """start / resume / cancel for one scenario kind (the generic runner over the kind's graph package)."""

    kind: str
    package: str
    total_rounds: Callable[[Scenario], int]
    row_fields: Callable[[Scenario], dict[str, Any]] = lambda _s: {}
    nested: tuple[str, ...] = ()  # packages of graphs run inside this one (their state is checkpointed too)
    # the prompt folder the kind's roles read (None: $MALLES_PROMPTS, else the bundled prompts)
    prompts: Callable[[Scenario], str | None] = lambda s: s.prompts

    def module(self) -> ModuleType:
        try:
            return import_module(f"malles_graph.graphs.{self.package}")
        except ImportError as exc:  # pragma: no cover - the graphs ship with the package
            raise MallesError(f"the {self.kind} graph cannot be loaded: {exc}") from exc

    def builders(self) -> list[Any]:
        """The kind's builder and those of the graphs nested in it (whose types the checkpointer must accept)."""
        names = (self.package, *self.nested)
        return [import_module(f"malles_graph.graphs.{name}").builder for name in names]

    def compile(self, checkpointer: Any) -> CompiledStateGraph:
        return self.module().builder.compile(name=self.package, checkpointer=checkpointer)

    def inputs(self, scenario: Scenario) -> dict[str, Any]:
        return self.module().run_inputs(scenario)

    def context(self, scenario: Scenario, client: LLMClient | None) -> Any:
        return self.module().run_context(scenario, client=client)

    def preflight(self, scenario: Scenario) -> list[str]:
        check = getattr(self.module(), "run_preflight", None)
        return list(check(scenario)) if check else []

    def prompt_set(self, scenario: Scenario) -> PromptSet:
        """The run's prompt set (with its persona set when the population comes from a persona file), every prompt
        checked (PromptError naming the folder and file otherwise)."""
        return checked_prompt_set(self.prompts(scenario), scenario_personas(scenario))

    def summary(self, values: dict[str, Any], context: Any) -> dict[str, Any]:
        summarise = getattr(self.module(), "run_summary", None)
        return dict(summarise(values, context)) if summarise and values else {}

    def start(self, scenario: Scenario, **options: Any) -> Any:
        """Start a new run of ``scenario``; see :func:`malles_graph.graphs.run.start.start`."""
        from malles_graph.graphs.run.start import start

        return start(self, scenario, **options)

    def resume(self, run_id: str, **options: Any) -> Any:
        """Resume a stored run from its last checkpoint; see :func:`malles_graph.graphs.run.start.resume`."""
        from malles_graph.graphs.run.start import resume

        return resume(self, run_id, **options)

    def cancel(self, handle: Any, status: str = "cancelled", reason: str = "cancelled by the user") -> None:
        """Stop a running handle within one LLM call (its run is stored as ``status``, resumable)."""
        handle.cancel(status, reason)


def _population_fields(s: Scenario) -> dict[str, Any]:
    return {"archetypes": s.population.archetypes, "representatives": s.population.representatives}


RUNNERS: dict[str, KindRunner] = {
    "retail": KindRunner("retail", "population", lambda s: s.mean_field.max_rounds, _population_fields, ("decision",)),
    "economist": KindRunner(
        "economist", "economist", lambda s: s.economist.steps if s.economist else 0,
        lambda s: {"archetypes": s.economist.archetypes or 0, "n_customers": s.economist.n_workers} if s.economist else {},
    ),
    "wholesale": KindRunner("wholesale", "wholesale", lambda _s: 1),
}


def runner_for(kind: str) -> KindRunner:
    try:
        return RUNNERS[kind]
    except KeyError:
        raise ScenarioError(f"kind {kind!r} has no runner; known kinds: {', '.join(RUNNERS)}") from None
