"""Retail population setup: customer features, archetypes, and each representative's base situation.

``build_population(scenario, rng)`` is deterministic in the scenario and the generator, so a run's
inputs can be rebuilt from its stored scenario; the Ta Feng table and its customer features are read
once per process (they are immutable data, keyed by the file), and the situation builder condenses only
the lines a run's situations read (its representatives' and its subclasses'), not the whole table.
These caches are locked: a run's start builds its population while its preflight samples the same
customers in another thread (graphs/run/start.py), and each is computed once.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict

from malles_graph.errors import DataError
from malles_graph.population.archetypes import (
    AGE_GROUPS,
    Clustering,
    cluster_customers,
    customer_features,
    synthesise_customers,
)
from malles_graph.population.environment import AgentSpec
from malles_graph.scenario import Scenario

DEFAULT_START = dt.date(2001, 2, 1)


class Population(BaseModel):
    """The clustered population and its simulated agents."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    n_customers: int
    clustering: Clustering
    agents: list[AgentSpec]


def personas_path(scenario: Scenario) -> Path:
    """The scenario's personas file: as given when it exists, else under the bundled personas folder."""
    from malles_graph.paths import personas_dir

    path = Path(scenario.population.personas_file or "")
    return path if path.is_absolute() or path.exists() else personas_dir() / path


@functools.lru_cache(maxsize=1)
def _tafeng_at(path: Path, mtime: float) -> pl.DataFrame:
    from malles_graph.data import tafeng

    return tafeng.load()


_TABLE_LOCK = threading.Lock()
_FEATURES_LOCK = threading.Lock()
_BUILDER_LOCK = threading.Lock()


def tafeng_table() -> pl.DataFrame:
    """The Ta Feng table (read once per file version: runs of several seeds share it)."""
    from malles_graph.data import tafeng

    path = tafeng.parquet_path()
    if not path.exists():
        raise DataError(f"{path} not found: run `malles data fetch tafeng` first")
    with _TABLE_LOCK:
        return _tafeng_at(path, path.stat().st_mtime)


class _Same:
    """A table compared by identity (polars frames are not hashable), as a cache key."""

    def __init__(self, frame: pl.DataFrame) -> None:
        self.frame = frame

    def __hash__(self) -> int:
        return id(self.frame)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Same) and other.frame is self.frame


@functools.lru_cache(maxsize=2)
def _situation_builder(key: _Same, customers: tuple[str, ...] | None, subclasses: tuple[str, ...] | None) -> Any:
    from malles_graph.retail.situations import SituationBuilder, SituationOptions

    frame = key.frame
    if customers is not None and subclasses is not None:
        # A situation reads its customer's lines and its subclass's (builder.build). Purchase lines group by
        # customer and subclass, so these rows give the same lines; condensing the whole table took seconds.
        frame = frame.filter(pl.col("customer_id").is_in(customers) | pl.col("subclass").is_in(subclasses))
    return SituationBuilder(frame, SituationOptions())


def situation_builder(
    transactions: pl.DataFrame,
    n_candidates: int,
    seed: int,
    *,
    customers: list[str] | None = None,
    subclasses: list[str] | None = None,
) -> Any:
    """A SituationBuilder with these options, shared for one table (and scope) and its per-subclass lines.

    With ``customers`` and ``subclasses`` it holds only those customers' and subclasses' lines: enough for
    their situations in those subclasses (``build(customer, day, subclass)``), nothing else.
    """
    import copy

    from malles_graph.retail.situations import SituationOptions

    scope = (
        (tuple(sorted(set(customers))), tuple(sorted(set(subclasses)))) if customers and subclasses else (None, None)
    )
    with _BUILDER_LOCK:
        shared = _situation_builder(_Same(transactions), *scope)
    builder = copy.copy(shared)  # a shallow copy keeps the shared, read-only per-subclass cache
    builder.options = SituationOptions(n_candidates=n_candidates, seed=seed)
    return builder


@functools.lru_cache(maxsize=2)
def _customer_features(key: _Same) -> pl.DataFrame:
    return customer_features(key.frame).with_columns(source_id=pl.col("customer_id"))


def persona_features(scenario: Scenario) -> pl.DataFrame:
    from malles_graph.retail.personas import load_personas

    personas = load_personas(personas_path(scenario))
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


def population_features(scenario: Scenario, transactions: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """Customer features: Ta Feng (sampled, or synthesised beyond the data) or personas."""
    pop = scenario.population
    if pop.source == "personas":
        return persona_features(scenario)
    with _FEATURES_LOCK:  # the preflight's draw of the memory customers and the population's share them
        features = _customer_features(_Same(transactions))
    n = pop.n_customers
    if n is None or n == features.height:
        return features
    if n < features.height:
        picks = np.sort(rng.choice(features.height, size=n, replace=False))
        return features[picks]
    return synthesise_customers(features, n, rng)


def busiest_subclasses(transactions: pl.DataFrame, before: dt.date, n: int) -> list[str]:
    lines = transactions.filter(pl.col("date") < before).group_by("subclass").agg(pl.len().alias("lines"))
    return lines.sort(["lines", "subclass"], descending=[True, False])["subclass"].head(n).to_list()


def run_subclasses(scenario: Scenario, transactions: pl.DataFrame | None = None) -> list[str]:
    """The product subclasses a retail run's decisions face (the scenario's, else the busiest before the start)."""
    env = scenario.environment
    if env.subclasses:
        return list(env.subclasses)
    if transactions is None:
        transactions = tafeng_table()
    return busiest_subclasses(transactions, env.start_date or DEFAULT_START, env.n_subclasses)


def build_population(
    scenario: Scenario, rng: np.random.Generator, transactions: pl.DataFrame | None = None
) -> Population:
    """Cluster the customers and build each representative's base situation."""
    env = scenario.environment
    if transactions is None:  # personas need the data too: it prices the shelf
        transactions = tafeng_table()
    features = population_features(scenario, transactions, rng)
    k, reps = scenario.population.archetypes, scenario.population.representatives
    clustering = cluster_customers(features, k, reps, seed=int(rng.integers(2**31)))
    day = env.start_date or DEFAULT_START
    subclasses = run_subclasses(scenario, transactions)
    source = dict(zip(features["customer_id"].to_list(), features["source_id"].to_list(), strict=True))
    represented = [source.get(c, c) for a in clustering.archetypes for c in a.representatives]
    builder = situation_builder(
        transactions, env.n_candidates, scenario.seed, customers=represented, subclasses=subclasses
    )
    agents: list[AgentSpec] = []
    for archetype in clustering.archetypes:
        for r, customer_id in enumerate(archetype.representatives):
            for subclass in subclasses:
                situation = base_situation(scenario, builder, source.get(customer_id, customer_id), day, subclass)
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


def base_situation(scenario: Scenario, builder: Any, customer_id: str, day: dt.date, subclass: str) -> Any:
    """The representative's base situation: real history for Ta Feng customers, a persona otherwise."""
    if scenario.population.source == "tafeng":
        return builder.build(customer_id, day, subclass).situation
    return persona_situation(scenario, builder, customer_id, day, subclass)


def persona_situation(scenario: Scenario, builder: Any, name: str, day: dt.date, subclass: str) -> Any:
    """A persona facing the subclass's reference shelf on ``day`` (prices as sold then)."""
    from malles_graph.models import ChoiceSituation, Customer
    from malles_graph.retail.personas import load_personas, persona_text

    persona = next(p for p in load_personas(personas_path(scenario)) if p.name == name)
    ref = builder.reference(subclass, day).head(scenario.environment.n_candidates)
    if ref.height == 0:
        raise DataError(f"subclass {subclass!r} has no sales before {day}; nothing to offer")
    prices = builder.prices_on(subclass, day, ref["product_id"].to_list())
    candidates = [
        {
            "product_id": r["product_id"],
            "subclass": subclass,
            "price": round(prices.get(r["product_id"], r["regular_price"]), 4),
            "regular_price": round(r["regular_price"], 4),
            "popularity": round(r["popularity"], 6),
            "median_quantity": r["median_quantity"],
            "label": chr(65 + i),
        }
        for i, r in enumerate(ref.iter_rows(named=True))
    ]
    return ChoiceSituation.model_validate(
        {
            "situation_id": f"{persona.name}_{day:%Y%m%d}_{subclass}",
            "date": day,
            "customer": Customer(customer_id=persona.name, age_group=persona.age_group, pin_code=persona.pin_code),
            "subclass": subclass,
            "candidates": candidates,
            "style": persona.style,
            "persona_text": persona_text(persona),
        }
    )
