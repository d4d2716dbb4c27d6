"""What is checked before a retail run starts (no work is done and no run row is written when one fails)."""

from __future__ import annotations

from malles_graph.errors import MallesError
from malles_graph.scenario import BACKEND_NAMES, Scenario

RETAIL_BACKENDS = ("local", "openai", "ollama", "choice-model")


def retail_problems(scenario: Scenario) -> list[str]:
    """Every problem that stops ``scenario`` from running as a retail population (empty: it can run)."""
    problems: list[str] = []
    pop, mf, backend = scenario.population, scenario.mean_field, scenario.backend
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
    available = available_customers(scenario, problems)
    n = pop.n_customers if pop.n_customers is not None else available
    if n is not None and pop.archetypes > n:
        problems.append(f"population.archetypes ({pop.archetypes}) exceeds the number of customers ({n})")
    if scenario.decision.calibration:
        problems.extend(calibration_problems(scenario))
    return problems  # the transaction memory (retrieval) is checked by the graph package, which can open it


def calibration_problems(scenario: Scenario) -> list[str]:
    """decision.calibration must load for this backend before the run row exists (it was loaded in the run's
    first round: a missing file was a failed run, exit code 1)."""
    from malles_graph.alignment.calibration import Calibration

    try:
        Calibration.load_for(scenario.decision.calibration or "", scenario.backend.name, scenario.backend.model)
    except MallesError as exc:
        return [f"decision.calibration: {exc}"]
    return []


def available_customers(scenario: Scenario, problems: list[str]) -> int | None:
    """How many customers the population source holds (None when it cannot be read; the reason is appended)."""
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
    from malles_graph.retail.personas import load_personas
    from malles_graph.retail.population import personas_path

    try:
        return len(load_personas(personas_path(scenario)))
    except MallesError as exc:
        problems.append(str(exc))
        return None
