"""The population supervisor graph with a tiny scripted agent: shape, context, rounds, failures, concurrency."""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import fields
from pathlib import Path

import pytest
from malles_graph.graphs.population import PopulationContext, build_population_graph

from malles_graph.backends import LLMClient
from malles_graph.models import ChoiceSituation, Customer, Product
from malles_graph.population.environment import AgentSpec
from malles_graph.population.retail import RetailEnvironment
from malles_graph.scenario import RetailEnvironmentConfig
from tests.fakes import ScriptedChatModel
from tests.population.tiny_agent import build_tiny_agent, cheapest_responder, scripted_client

SNAPSHOT = Path(__file__).parent / "snapshots" / "population.mmd"


def shelf() -> list[Product]:
    return [Product(product_id=f"p{i}", subclass="s", price=10 + i, regular_price=10 + i, popularity=0.2) for i in range(4)]


def make_agents(n: int) -> list[AgentSpec]:
    return [
        AgentSpec(
            agent_id=f"a{i:02d}", archetype=i, weight=1 / n,
            base=ChoiceSituation(situation_id=f"c{i}", date=dt.date(2001, 2, 1), customer=Customer(customer_id=f"c{i}"),
                                 subclass="s", candidates=shelf()),
        )
        for i in range(n)
    ]


def test_graph_shape_is_pinned() -> None:
    graph = build_population_graph(build_tiny_agent(scripted_client()), RetailEnvironment()).compile()
    assert graph.get_graph().draw_mermaid() == SNAPSHOT.read_text()


def test_context_defaults_are_described() -> None:
    ctx = PopulationContext()
    assert (ctx.damping, ctx.epsilon, ctx.max_rounds) == (0.5, 0.01, 5)
    assert ctx.agent_context is None and ctx.environment is None and ctx.collector is None
    assert all(f.metadata.get("description") for f in fields(PopulationContext))


def test_rounds_report_demand_prices_distance_and_failures() -> None:
    bad = frozenset({"c0"})
    client = scripted_client(lambda m: cheapest_responder(m, bad_customers=bad))
    graph = build_population_graph(build_tiny_agent(client), RetailEnvironment(RetailEnvironmentConfig(restock=50))).compile()
    out = graph.invoke(
        {"agents": make_agents(4), "n_customers": 1000}, {"max_concurrency": 2},
        context=PopulationContext(max_rounds=3, epsilon=1e-9),
    )
    reports = out["reports"]
    assert [r.round for r in reports] == [1, 2, 3]
    for r in reports:
        assert r.n_decisions == 4 and r.n_failed == 1 and r.failed_share == 0.25
        assert set(r.demand) == {"p0", "p1", "p2", "p3"} and set(r.prices) == set(r.demand)
        assert sum(r.m.values()) == pytest.approx(1.0)
        assert r.distance >= 0
    # the failing agent was retried (bounded) each round: 1 + 1 repair calls, the others 1 call
    assert len(client.chat_model.calls) == 3 * (3 * 1 + 2)


def test_stops_at_convergence() -> None:
    graph = build_population_graph(build_tiny_agent(scripted_client()), RetailEnvironment()).compile()
    out = graph.invoke(
        {"agents": make_agents(2), "n_customers": 100}, context=PopulationContext(max_rounds=50, damping=1.0, epsilon=0.05)
    )
    # damping 1 jumps to mu at once; the next identical round moves m by 0 < epsilon
    assert out["converged"] and len(out["reports"]) < 50
    assert out["reports"][-1].distance < 0.05


def test_events_are_emitted_as_the_rounds_go() -> None:
    from malles_graph.events import DecisionFinished, PopulationPrepared, RoundFinished, RoundStarted

    graph = build_population_graph(build_tiny_agent(scripted_client()), RetailEnvironment()).compile()
    events = [e for e in graph.stream({"agents": make_agents(3), "n_customers": 300}, stream_mode="custom",
                                      context=PopulationContext(max_rounds=2, epsilon=1e-9))]
    kinds = [type(e) for e in events]
    assert kinds[0] is PopulationPrepared and events[0].n_customers == 300
    assert kinds.count(RoundStarted) == 2 and kinds.count(RoundFinished) == 2 and kinds.count(DecisionFinished) == 6
    first_round = events[1 : kinds.index(RoundFinished) + 1]
    assert isinstance(first_round[0], RoundStarted) and first_round[0].total == 3
    assert {e.agent_id for e in first_round if isinstance(e, DecisionFinished)} == {"a00", "a01", "a02"}
    finished = events[kinds.index(RoundFinished)]
    assert finished.metrics["decisions"] == 3 and set(finished.summary["m"]) >= {"p0"}


def test_llm_concurrency_is_bounded_by_the_client() -> None:
    """The fan-out is bounded by the client's slots (the backend's max_concurrency), not by LangGraph's pool."""
    active, peak, lock = [0], [0], threading.Lock()

    def slow(messages):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.05)
        with lock:
            active[0] -= 1
        return cheapest_responder(messages)

    client = LLMClient(ScriptedChatModel(responder=slow), backend="scripted", model_id="scripted", max_concurrency=3,
                       max_retries=1, structured=False, call_kwargs=lambda *_: {})
    graph = build_population_graph(build_tiny_agent(client), RetailEnvironment()).compile()
    graph.invoke({"agents": make_agents(8), "n_customers": 100}, {"max_concurrency": 16},
                 context=PopulationContext(max_rounds=1))
    assert 1 < peak[0] <= 3


def test_same_input_gives_same_numbers() -> None:
    def run():
        graph = build_population_graph(build_tiny_agent(scripted_client()), RetailEnvironment()).compile()
        return graph.invoke({"agents": make_agents(3), "n_customers": 500}, context=PopulationContext(max_rounds=3))

    a, b = run(), run()
    assert [r.model_dump() for r in a["reports"]] == [r.model_dump() for r in b["reports"]]


def test_server_schemas_and_a_json_context() -> None:
    from malles_graph.graphs.population import graph as served

    for schema in (served.get_input_jsonschema(), served.get_output_jsonschema(), served.get_context_jsonschema()):
        assert schema["properties"]
    context = served.get_context_jsonschema()["properties"]
    assert {"damping", "epsilon", "max_rounds"} <= set(context) and "recorder" not in context
    graph = build_population_graph(build_tiny_agent(scripted_client()), RetailEnvironment()).compile()
    out = graph.invoke({"agents": make_agents(2), "n_customers": 100}, context={"max_rounds": 2, "epsilon": 1e-9})
    assert len(out["reports"]) == 2
