"""Archetypes: clustering, masses, representatives, synthetic populations; LLM calls depend on K, not N."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from malles_graph.graphs.population import PopulationContext, build_population_graph

from malles_graph.data import tafeng
from malles_graph.population.archetypes import (
    FEATURES,
    PopulationError,
    cluster_customers,
    customer_features,
    standardise,
    synthesise_customers,
)
from malles_graph.population.environment import AgentSpec
from malles_graph.population.retail import RetailEnvironment
from tests.population.test_graph import shelf
from tests.population.tiny_agent import build_tiny_agent, scripted_client


@pytest.fixture(scope="module")
def features() -> pl.DataFrame:
    return customer_features(tafeng.load())


def test_customer_features_one_row_per_customer(features: pl.DataFrame) -> None:
    assert features.height == 32266
    assert features["customer_id"].n_unique() == features.height
    assert set(FEATURES) <= set(features.columns)
    assert features.select(pl.col(list(FEATURES)).is_null().any()).row(0) == (False,) * len(FEATURES)
    Z, _, _ = standardise(features)
    assert np.allclose(Z.mean(axis=0), 0, atol=1e-9) and np.allclose(Z.std(axis=0), 1, atol=1e-9)


def test_clusters_masses_and_representatives(features: pl.DataFrame) -> None:
    small = features.head(3000)
    result = cluster_customers(small, k=6, representatives=2, seed=1)
    assert len(result.archetypes) == 6
    assert sum(a.mass for a in result.archetypes) == pytest.approx(1.0)
    assert sum(a.size for a in result.archetypes) == 3000
    ids = set(small["customer_id"].to_list())
    for a in result.archetypes:
        assert len(a.representatives) == 2 and set(a.representatives) <= ids
        assert a.weight_per_representative == pytest.approx(a.mass / 2)
    again = cluster_customers(small, k=6, representatives=2, seed=1)
    assert [a.model_dump() for a in again.archetypes] == [a.model_dump() for a in result.archetypes]


def test_more_archetypes_than_customers_is_refused(features: pl.DataFrame) -> None:
    with pytest.raises(PopulationError, match=r"archetypes \(11\) exceeds the number of customers \(10\)"):
        cluster_customers(features.head(10), k=11)


def test_synthetic_customers_resample_with_noise(features: pl.DataFrame) -> None:
    syn = synthesise_customers(features, 5000, np.random.default_rng(0))
    assert syn.height == 5000 and syn["customer_id"].n_unique() == 5000
    assert set(syn["source_id"].to_list()) <= set(features["customer_id"].to_list())
    ratio = syn["mean_basket_value"].mean() / features["mean_basket_value"].mean()
    assert 0.8 < ratio < 1.2


def test_llm_calls_depend_on_k_not_on_n(features: pl.DataFrame) -> None:
    rng = np.random.default_rng(0)
    calls = {}
    for n in (1_000, 100_000):
        population = synthesise_customers(features, n, rng)
        clustering = cluster_customers(population, k=8, seed=0)
        assert clustering.n_customers == n
        from datetime import date

        from malles_graph.models import ChoiceSituation, Customer

        agents = [
            AgentSpec(agent_id=f"k{a.index}", archetype=a.index, weight=a.mass,
                      base=ChoiceSituation(situation_id=rep, date=date(2001, 2, 1), customer=Customer(customer_id=rep),
                                           subclass="s", candidates=shelf()))
            for a in clustering.archetypes for rep in a.representatives
        ]
        client = scripted_client()
        graph = build_population_graph(build_tiny_agent(client), RetailEnvironment()).compile()
        graph.invoke({"agents": agents, "n_customers": n}, context=PopulationContext(max_rounds=2, epsilon=1e-9))
        calls[n] = client.calls
    assert calls[1_000] == calls[100_000] == 8 * 2
