"""The retail kind's side of the run contract: initial state, runtime context, preflight, final summary."""

from __future__ import annotations

from typing import Any

import numpy as np
from malles_graph.graphs.population.context import PopulationContext
from malles_graph.graphs.population.executor import connect, executor_for

from malles_graph.backends import LLMClient
from malles_graph.errors import MallesError
from malles_graph.events import ArchetypeInfo
from malles_graph.population.reporters import DataCollector
from malles_graph.population.retail import RetailEnvironment
from malles_graph.retail.population import build_population
from malles_graph.retail.preflight import retail_problems
from malles_graph.scenario import Scenario


def run_inputs(scenario: Scenario) -> dict[str, Any]:
    """The population (clustered with the run's one seeded generator) and each representative's situation."""
    population = build_population(scenario, np.random.default_rng(scenario.seed))
    archetypes = [ArchetypeInfo.model_validate(a.model_dump()) for a in population.clustering.archetypes]
    return {"agents": population.agents, "n_customers": population.n_customers, "archetypes": archetypes}


def decision_context(scenario: Scenario, client: LLMClient | None = None) -> Any:
    """The decision graph's context for this scenario (the one builder, with the memory of the run's subclasses)."""
    from malles_graph.graphs.decision import context_for_scenario

    return context_for_scenario(
        scenario,
        client,
        subclasses=memory_subclasses(scenario),
        before=decision_day(scenario),
        customers=memory_customers(scenario),
    )[0]


def decision_day(scenario: Scenario) -> Any:
    """The day every decision of a retail run is made (the memory needs only the episodes before it)."""
    from malles_graph.retail.population import DEFAULT_START

    return scenario.environment.start_date or DEFAULT_START


def memory_subclasses(scenario: Scenario) -> list[str] | None:
    """The subclasses the memory must cover (None with retrieval off)."""
    from malles_graph.retail.population import run_subclasses

    return run_subclasses(scenario) if scenario.decision.retrieval else None


def memory_customers(scenario: Scenario) -> list[str] | None:
    """The Ta Feng customers whose episodes the memory must hold: a sampled population's own (its neighbours
    come from that population; a synthesised one's sources), None for every customer (the whole data, or personas)."""
    pop = scenario.population
    if not scenario.decision.retrieval or pop.source != "tafeng" or pop.n_customers is None:
        return None
    key = (scenario.seed, pop.n_customers)
    if key not in _CUSTOMERS:  # preflight, the run context and each executor worker ask
        _CUSTOMERS[key] = sampled_customers(scenario)
    customers = _CUSTOMERS[key]
    return list(customers) if customers is not None else None


_CUSTOMERS: dict[tuple[int, int], tuple[str, ...] | None] = {}


def sampled_customers(scenario: Scenario) -> tuple[str, ...] | None:
    """The real customers behind the scenario's population, None when that is all of them.

    The same draw as :func:`run_inputs`: the features are the first use of the run's seeded generator
    (tests/population/test_memory_scope.py holds the two together).
    """
    from malles_graph.retail.population import population_features, tafeng_table

    transactions = tafeng_table()
    features = population_features(scenario, transactions, np.random.default_rng(scenario.seed))
    sources = sorted(set(features["source_id"].to_list()))
    return None if len(sources) >= transactions["customer_id"].n_unique() else tuple(sources)


def run_context(scenario: Scenario, client: LLMClient | None = None) -> PopulationContext:
    mf = scenario.mean_field
    return PopulationContext(
        damping=mf.damping,
        epsilon=mf.epsilon,
        max_rounds=mf.max_rounds,
        agent_context=decision_context(scenario, client),
        environment=RetailEnvironment(scenario.environment),
        collector=DataCollector(),
        executor=executor_for(scenario),
    )


def run_preflight(scenario: Scenario) -> list[str]:
    """The retail checks; with retrieval on, that the transaction memory opens; with executor ray, the cluster."""
    problems = retail_problems(scenario)
    if scenario.decision.retrieval and not problems:
        from malles_graph.graphs.decision import scenario_memory

        try:  # builds the episodes of the run's subclasses (and customers) when missing, then checks they are all there
            scenario_memory(
                scenario.memory,
                memory_subclasses(scenario),
                decision_day(scenario),
                customers=memory_customers(scenario),
            )
        except MallesError as exc:
            problems.append(
                f"decision.retrieval is on but the memory cannot be used: {exc} (or set decision.retrieval: false)"
            )
    if scenario.executor.kind == "ray" and not problems:
        connect(scenario.executor)  # a cluster that cannot be used is one line, before the run row exists
    return problems


def run_summary(values: dict[str, Any], _context: Any = None) -> dict[str, Any]:
    """Rounds run, convergence and the final m (the rounds themselves are stored round by round)."""
    reports = values.get("reports") or []
    final = reports[-1] if reports else None
    return {
        "rounds": len(reports),
        "converged": bool(values.get("converged")),
        "m": dict(final.m) if final is not None else {},
    }
