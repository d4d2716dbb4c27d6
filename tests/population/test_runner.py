"""run_scenario end to end on Ta Feng with the real decision graph and a scripted model; preflight errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from malles_graph.graphs.runner import NullProgress, preflight, run_scenario, run_seeds

from malles_graph.errors import MallesError, ScenarioError
from malles_graph.paths import scenarios_dir
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


class Recording(NullProgress):
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def round_started(self, round: int, total: int, done: int) -> None:
        self.events.append(("start", round, total, done))

    def decision_done(self, round, done, total, outcome) -> None:
        self.events.append(("decision", round, done, total))

    def round_finished(self, report, metrics) -> None:
        self.events.append(("finished", report.round, metrics["decisions"]))

    def transcript_turn(self, turn) -> None:
        self.events.append(("turn", turn.role))


def test_run_stores_rounds_decisions_turns_and_reports_progress(tmp_path: Path) -> None:
    progress = Recording()
    summary = run_scenario(small(tmp_path), progress=progress, client=scripted_decision_client())
    assert summary.status == "finished" and len(summary.rounds) == 2
    assert summary.decisions == 6 and summary.failed == 0 and summary.n_customers == 400
    assert summary.llm_calls == 6 * 4  # 3 debate turns + 1 decision per representative and round
    engine = make_engine(f"sqlite:///{tmp_path / 'malles.sqlite'}")
    assert len(load_archetypes(engine, summary.run_id)) == 3
    rows = load_decisions(engine, summary.run_id)
    assert len(rows) == 6 and all(r.ok and r.choice for r in rows)
    assert sum(r.weight for r in rows if r.round == 1) == pytest.approx(1.0)
    kinds = [e[0] for e in progress.events]
    assert kinds.count("start") == 2 and kinds.count("decision") == 6 and kinds.count("finished") == 2
    assert ("decision", 1, 3, 3) in progress.events and ("finished", 2, 3.0) in progress.events
    assert "turn" in kinds
    first = summary.rounds[0]
    assert first.demand and first.prices and first.failed_share == 0.0


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
    rows = load_decisions(make_engine(f"sqlite:///{tmp_path / 'malles.sqlite'}"), summary.run_id)
    assert all(not r.ok and "JSON" in r.error for r in rows)


def test_resuming_a_finished_run_does_no_work(tmp_path: Path) -> None:
    scenario = small(tmp_path, mean_field={"max_rounds": 1})
    first = run_scenario(scenario, client=scripted_decision_client())
    client = scripted_decision_client()
    again = run_scenario(scenario, run_id=first.run_id, resume=True, client=client)
    assert again.resumed and again.decisions == first.decisions and client.calls == 0


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


@pytest.mark.parametrize("name", ["demo.yaml", "tafeng-retail.yaml"])
def test_shipped_scenarios_smoke_run(tmp_path: Path, name: str) -> None:
    scenario = load_scenario(
        scenarios_dir() / name,
        {"mean_field.max_rounds": 1, "store.url": f"sqlite:///{tmp_path / 'malles.sqlite'}",
         "population.archetypes": 3, "decision.debate_rounds": 0},
    )
    summary = run_scenario(scenario, client=scripted_decision_client())
    assert summary.status == "finished" and summary.decisions == 3 * scenario.environment.n_subclasses


def test_persona_population(tmp_path: Path) -> None:
    scenario = small(tmp_path, population={"source": "personas", "personas_file": "retail_households.yaml",
                                           "n_customers": None, "archetypes": 3})
    summary = run_scenario(scenario, client=scripted_decision_client())
    assert summary.status == "finished" and summary.n_customers == 5 and summary.decisions == 6
    rows = load_decisions(make_engine(f"sqlite:///{tmp_path / 'malles.sqlite'}"), summary.run_id)
    assert all(r.ok for r in rows)


def test_same_seed_same_numbers(tmp_path: Path) -> None:
    scenario = small(tmp_path, backend={"name": "choice-model"}, population={"n_customers": 1500, "archetypes": 4},
                     seed=7)
    a, b = run_scenario(scenario), run_scenario(scenario)
    assert a.run_id != b.run_id
    assert [r.model_dump() for r in a.rounds] == [r.model_dump() for r in b.rounds]
