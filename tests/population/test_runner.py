"""Retail runs through the generic runner on Ta Feng with the real decision graph and a scripted model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from malles_graph.graphs.run import preflight, resume_run, run_scenario, run_seeds

from malles_graph.errors import MallesError, ScenarioError
from malles_graph.paths import scenarios_dir
from malles_graph.prompt_sets import load_persona_set
from malles_graph.scenario import Scenario, load_scenario
from malles_graph.store import StoreError, make_engine
from malles_graph.store.repository import load_archetypes, load_decisions
from tests.population.responders import scripted_decision_client


def small(tmp_path: Path, **extra) -> Scenario:
    data = {
        "name": "small",
        "backend": {"name": "local", "cache": False, "max_concurrency": 3},
        "population": {"n_customers": 400, "archetypes": 3},
        "environment": {"n_candidates": 4},
        "decision": {"debate_rounds": 1, "retrieval": False},
        "mean_field": {"max_rounds": 2, "epsilon": 1e-9},
        "store": {"url": f"sqlite:///{tmp_path / 'malles.sqlite'}"},
    }
    for key, value in extra.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    return Scenario.model_validate(data)


def test_run_stores_rounds_decisions_turns_and_reports_progress(tmp_path: Path) -> None:
    events = []
    client = scripted_decision_client()
    summary = run_scenario(small(tmp_path), on_event=events.append, client=client)
    assert summary.status == "finished" and len(summary.rounds) == 2
    assert summary.decisions == 6 and summary.failed == 0 and summary.n_customers == 400
    assert summary.llm_calls == client.calls > 6 * 3 and summary.cached == 0  # every call made is counted once
    engine = make_engine(f"sqlite:///{tmp_path / 'malles.sqlite'}")
    assert len(load_archetypes(engine, summary.run_id)) == 3
    rows = load_decisions(engine, summary.run_id)
    assert len(rows) == 6 and all(r.ok and r.choice for r in rows)
    assert sum(r.weight for r in rows if r.round == 1) == pytest.approx(1.0)
    kinds = [e.type for e in events]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished" and events[-1].status == "finished"
    assert kinds.count("round_started") == 2 and kinds.count("decision_finished") == 6
    assert kinds.count("round_finished") == 2 and kinds.count("population_prepared") == 1
    assert all(e.run_id == summary.run_id for e in events)
    assert [e.total for e in events if e.type == "round_started"] == [3, 3]
    assert [e.metrics["decisions"] for e in events if e.type == "round_finished"] == [3.0, 3.0]
    roles = {e.turn.role for e in events if e.type == "turn_streamed"}
    assert {"product_specialist", "price_analyst", "persona"} <= roles
    # every live turn of an agent arrives before that agent's decision
    for d in (e for e in events if e.type == "decision_finished"):
        turns = [i for i, e in enumerate(events) if e.type == "turn_streamed" and e.turn.agent_id == d.agent_id
                 and e.round == d.round]
        assert turns and max(turns) < events.index(d)
    first = summary.rounds[0].report()
    assert first is not None and first.demand and first.prices and first.failed_share == 0.0


def test_failed_validation_is_recorded_and_counted(tmp_path: Path) -> None:
    from langchain_core.messages import BaseMessage

    from malles_graph.backends import build_client
    from malles_graph.scenario import BackendConfig
    from tests.fakes import ScriptedChatModel

    def garbage(messages: list[BaseMessage]) -> str:
        return "I would rather not say."

    client = build_client(BackendConfig(cache=False), chat_model=ScriptedChatModel(responder=garbage))
    summary = run_scenario(small(tmp_path, decision={"debate_rounds": 0}), client=client)
    assert summary.decisions == 6 and summary.failed == 6
    assert all(r.failed_share == 1.0 and not r.converged for r in summary.rounds)
    # a run that decided nothing is not a success (issue 16)
    assert summary.status == "failed" and not summary.converged
    assert summary.reason.startswith("all 6 decisions failed: ") and "JSON" in summary.reason
    rows = load_decisions(make_engine(f"sqlite:///{tmp_path / 'malles.sqlite'}"), summary.run_id)
    assert all(not r.ok and "JSON" in r.error for r in rows)


def test_resuming_a_finished_run_does_no_work(tmp_path: Path) -> None:
    scenario = small(tmp_path, mean_field={"max_rounds": 1})
    first = run_scenario(scenario, client=scripted_decision_client())
    client = scripted_decision_client()
    again = run_scenario(scenario, run_id=first.run_id, resume=True, client=client)
    assert again.resumed and again.decisions == first.decisions and client.calls == 0
    assert again.status == "finished" and first.llm_calls > 0


def test_seeds_give_close_aggregates(tmp_path: Path) -> None:
    scenario = small(tmp_path, backend={"name": "choice-model"}, population={"n_customers": 2000, "archetypes": 6})
    summaries, spread = run_seeds(scenario, [0, 1, 2])
    assert [s.seed for s in summaries] == [0, 1, 2]
    assert 0 <= spread.max_tv_between_seeds < 0.5
    assert sum(spread.mean.values()) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"population": {"n_customers": 5, "archetypes": 3}}, None),
        ({"mean_field": {"damping": 1.5}}, "mean_field.damping must be in (0, 1]"),
        ({"mean_field": {"damping": 0.0}}, "mean_field.damping must be in (0, 1]"),
        ({"backend": {"name": "gpt-banana"}}, "backend.name 'gpt-banana' is unknown"),
        ({"backend": {"name": "best-response"}}, "cannot decide retail purchases"),
    ],
)
def test_preflight_refuses_bad_scenarios_before_any_work(tmp_path: Path, change: dict, message: str | None) -> None:
    scenario = small(tmp_path)
    # bypass model validation, as code that edits a loaded scenario would
    for section, values in change.items():
        for key, value in values.items():
            setattr(getattr(scenario, section), key, value)
    if message is None:
        scenario.population.archetypes = 8
        message = "population.archetypes (8) exceeds the number of customers (5)"
    with pytest.raises(ScenarioError) as info:
        run_scenario(scenario, client=scripted_decision_client())
    assert message in str(info.value)
    assert not (tmp_path / "malles.sqlite").exists()  # nothing started


def test_unreachable_database_is_a_clear_error(tmp_path: Path) -> None:
    scenario = small(tmp_path)
    with pytest.raises(StoreError, match="cannot reach the run store postgresql\\+psycopg://u:\\*\\*\\*@127.0.0.1:1/x"):
        preflight(scenario, store_url="postgresql://u:secret@127.0.0.1:1/x")
    with pytest.raises(StoreError, match="not a database URL"):
        preflight(scenario, store_url="not a url")
    with pytest.raises(StoreError, match="only sqlite"):
        preflight(scenario, store_url="mysql://u@localhost/x")


def test_resume_needs_a_known_run(tmp_path: Path) -> None:
    with pytest.raises(MallesError, match="no run 'nope' in the store"):
        run_scenario(small(tmp_path), run_id="nope", resume=True, client=scripted_decision_client())
    with pytest.raises(MallesError, match="no run 'nope' in the store"):
        resume_run("nope", store_url=small(tmp_path).store.url)


@pytest.mark.parametrize("name", ["demo.yaml", "tafeng-retail.yaml"])
def test_shipped_scenarios_smoke_run(tmp_path: Path, name: str) -> None:
    scenario = load_scenario(
        scenarios_dir() / name,
        {"mean_field.max_rounds": 1, "store.url": f"sqlite:///{tmp_path / 'malles.sqlite'}",
         "population.archetypes": 3, "decision.debate_rounds": 0, "decision.retrieval": False},
    )
    summary = run_scenario(scenario, client=scripted_decision_client())
    assert summary.status == "finished" and summary.decisions == 3 * scenario.environment.n_subclasses


def test_persona_population(tmp_path: Path) -> None:
    scenario = small(tmp_path, population={"source": "personas", "personas_file": "retail_households.yaml",
                                           "n_customers": None, "archetypes": 3})
    summary = run_scenario(scenario, client=scripted_decision_client())
    assert summary.status == "finished" and summary.n_customers == 5 and summary.decisions == 6
    personas = (summary.prompt_set or {}).get("personas") or {}
    assert personas.get("digest") == load_persona_set("retail_households.yaml").digest  # the run records its personas
    rows = load_decisions(make_engine(f"sqlite:///{tmp_path / 'malles.sqlite'}"), summary.run_id)
    assert all(r.ok for r in rows)
    assert {json.loads(r.details_json).get("persona_set") for r in rows} == {personas["digest"]}  # and each decision


def test_same_seed_same_numbers(tmp_path: Path) -> None:
    scenario = small(tmp_path, backend={"name": "choice-model"}, population={"n_customers": 1500, "archetypes": 4},
                     seed=7)
    a, b = run_scenario(scenario), run_scenario(scenario)
    assert a.run_id != b.run_id and a.status == b.status == "finished"
    assert [r.model_dump() for r in a.rounds] == [r.model_dump() for r in b.rounds]
    assert a.rounds[-1].summary["m"]  # the population report is stored with each round
