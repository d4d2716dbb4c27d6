"""A sampled population's memory holds only its own customers' episodes, and a wider run is not fooled by it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from malles_graph.graphs.population.run import decision_day, memory_customers, run_preflight
from malles_graph.retrieval import ChromaRetriever
from malles_graph.retrieval.scope import subclass_episodes

from malles_graph.retail.population import build_population
from tests.population.test_runner import small

SUBCLASS = "100107"  # a small real subclass (220 lines before the start): the build takes seconds


def scoped(tmp_path: Path, n_customers: int | None, build: bool = True):
    return small(
        tmp_path,
        decision={"retrieval": True},
        environment={"subclasses": [SUBCLASS]},
        population={"n_customers": n_customers},
        memory={"path": str(tmp_path / "memory"), "build": build},
    )


def test_the_memory_customers_are_the_population_the_run_draws(tmp_path: Path) -> None:
    scenario = scoped(tmp_path, 2000)
    customers = memory_customers(scenario)
    assert customers is not None and len(customers) == 2000
    population = build_population(scenario, np.random.default_rng(scenario.seed))
    representatives = [c for a in population.clustering.archetypes for c in a.representatives]
    assert representatives and set(representatives) <= set(customers)  # another draw would miss them
    assert memory_customers(scoped(tmp_path, None)) is None  # every customer: no limit


def test_a_narrow_memory_is_built_then_refused_for_a_wider_run_before_any_work(tmp_path: Path) -> None:
    narrow = scoped(tmp_path, 3000)
    assert run_preflight(narrow) == []
    held = ChromaRetriever.open(path=str(tmp_path / "memory")).count()
    wanted = subclass_episodes([SUBCLASS], decision_day(narrow))
    assert 0 < held < wanted.height  # only the population's episodes were embedded
    assert run_preflight(scoped(tmp_path, 3000, build=False)) == []
    problems = run_preflight(scoped(tmp_path, None, build=False))
    assert len(problems) == 1 and "does not cover the run's customers" in problems[0], problems
    assert f"subclass {SUBCLASS} lacks" in problems[0]
