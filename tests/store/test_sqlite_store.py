"""The SQLite run store: tables, idempotent writers, listing, export, and the runs/show/export commands."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from malles_graph.agents import AgentOutcome, TranscriptTurn
from malles_graph.population.reporters import RoundReport
from malles_graph.store import StoreError, default_url, make_engine, normalise_url
from malles_graph.store.export import export_run
from malles_graph.store.repository import (
    create_run,
    decision_counts,
    get_run,
    list_runs,
    load_decisions,
    load_rounds,
    record_decision,
    record_round,
)
from malles_graph.store.tables import TABLES, RunRow


@pytest.fixture
def engine(tmp_path: Path):
    return make_engine(f"sqlite:///{tmp_path / 'runs' / 'malles.sqlite'}")


def outcome(agent: str, ok: bool = True, turns: int = 2) -> AgentOutcome:
    return AgentOutcome(
        agent_id=agent, ok=ok, choice="p1" if ok else None, quantity=2 if ok else 0, error=None if ok else "bad JSON",
        transcript=[TranscriptTurn(agent_id=agent, role="persona", text=f"turn {i}") for i in range(turns)],
        llm_calls=turns,
    )


def test_default_url_is_one_file_in_the_runs_folder(tmp_path: Path) -> None:
    assert default_url() == f"sqlite:///{tmp_path / 'runs' / 'malles.sqlite'}"  # conftest points runs at tmp
    assert normalise_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    with pytest.raises(StoreError, match="only sqlite"):
        normalise_url("mysql://u@h/db")


def test_decision_writes_are_idempotent(engine) -> None:
    create_run(engine, RunRow(id="r1", name="demo"))
    record_decision(engine, "r1", 1, 0, 0.5, outcome("a", turns=3))
    record_decision(engine, "r1", 1, 0, 0.5, outcome("a", turns=1))  # a replay after a resume
    record_decision(engine, "r1", 1, 1, 0.5, outcome("b", ok=False))
    rows = load_decisions(engine, "r1")
    assert [(r.agent_id, r.ok, r.error) for r in rows] == [("a", True, None), ("b", False, "bad JSON")]
    assert decision_counts(engine, "r1") == {1: (2, 1)}
    from sqlmodel import Session, select

    from malles_graph.store.tables import TranscriptTurnRow

    with Session(engine) as session:
        turns = session.exec(select(TranscriptTurnRow).where(TranscriptTurnRow.agent_id == "a")).all()
    assert len(turns) == 1


def test_round_rows_and_metrics_replace_by_key(engine) -> None:
    create_run(engine, RunRow(id="r1", name="demo", max_rounds=3))
    report = RoundReport(round=1, n_decisions=2, n_failed=0, failed_share=0, distance=0.2, demand={"p": 3.0}, m={"p": 1})
    record_round(engine, "r1", report, {"distance": 0.2})
    record_round(engine, "r1", report.model_copy(update={"distance": 0.1}), {"distance": 0.1})
    rounds = load_rounds(engine, "r1")
    assert len(rounds) == 1 and rounds[0].distance == 0.1 and rounds[0].summary["demand"] == {"p": 3.0}
    assert rounds[0].metrics == {"distance": 0.1} and rounds[0].report().demand == {"p": 3.0}
    assert get_run(engine, "r1").rounds_done == 1


def test_unknown_run_and_duplicate_run_ids_are_clear_errors(engine) -> None:
    create_run(engine, RunRow(id="r1", name="demo"))
    with pytest.raises(StoreError, match="already exists"):
        create_run(engine, RunRow(id="r1", name="demo"))
    with pytest.raises(StoreError, match="no run 'r2' in the store; recent runs: r1"):
        get_run(engine, "r2")


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_writes_one_file_per_table(engine, tmp_path: Path, fmt: str) -> None:
    create_run(engine, RunRow(id="r1", name="demo"))
    record_decision(engine, "r1", 1, 0, 1.0, outcome("a"))
    files = export_run(engine, "r1", tmp_path / "out", fmt)
    assert sorted(f.name for f in files) == sorted(f"{t}.{fmt}" for t in TABLES)
    read = pl.read_csv if fmt == "csv" else pl.read_parquet
    assert read(tmp_path / "out" / f"decisions.{fmt}").height == 1
    assert read(tmp_path / "out" / f"transcript_turns.{fmt}").height == 2
    assert read(tmp_path / "out" / f"rounds.{fmt}").height == 0


def test_cli_lists_shows_and_exports(engine, tmp_path: Path) -> None:
    from malles_graph.cli import app

    url = str(engine.url)
    create_run(engine, RunRow(id="demo-1", name="demo", max_rounds=1, n_customers=2000, archetypes=4))
    record_decision(engine, "demo-1", 1, 0, 1.0, outcome("a"))
    report = RoundReport(round=1, n_decisions=1, n_failed=0, failed_share=0, distance=0.3, demand={"p1": 5.0},
                         prices={"p1": 9.5}, m={"p1": 0.7, "none": 0.3})
    record_round(engine, "demo-1", report, {"distance": 0.3})
    runner = CliRunner()
    listed = runner.invoke(app, ["runs", "--store", url])
    assert listed.exit_code == 0 and "demo-1" in listed.output
    shown = runner.invoke(app, ["show", "demo-1", "--store", url])
    assert shown.exit_code == 0, shown.output
    assert "m[p1]" in shown.output and "0.3000" in shown.output and "m[none]" in shown.output
    out = tmp_path / "exported"
    exported = runner.invoke(app, ["export", "demo-1", "--format", "parquet", "-o", str(out), "--store", url])
    assert exported.exit_code == 0 and (out / "rounds.parquet").exists()
    assert json.loads(pl.read_parquet(out / "rounds.parquet")["demand_json"][0]) == {"p1": 5.0}
    bad = runner.invoke(app, ["export", "demo-1", "--format", "xml", "--store", url])
    assert bad.exit_code != 0


def test_list_runs_newest_first(engine) -> None:
    for i in range(3):
        create_run(engine, RunRow(id=f"r{i}", name="demo"))
    assert [r.id for r in list_runs(engine)][0] == "r2"
    assert len(list_runs(engine, 2)) == 2


def test_one_recorder_writes_every_event_replacing_by_key(engine) -> None:
    from malles_graph.events import (
        ArchetypeInfo,
        DecisionFinished,
        PopulationPrepared,
        RoundFinished,
        RoundStarted,
        RunFinished,
        TurnStreamed,
    )
    from malles_graph.store.recorder import RunRecorder
    from malles_graph.store.repository import load_archetypes, load_turns
    from malles_graph.store.summary import summarise

    create_run(engine, RunRow(id="r1", name="demo", kind="wholesale"))
    recorder = RunRecorder(engine, "r1")
    recorder.write(PopulationPrepared(n_customers=50, archetypes=[ArchetypeInfo(index=0, size=50, mass=1.0)]))
    recorder.write(RoundStarted(round=1, total=1))
    said = TranscriptTurn(agent_id="dialogue", role="marketing", text="steady demand")
    for _ in range(2):  # a turn redone after a resume is stored once
        recorder.write(TurnStreamed(turn=said, seq=0))
    recorder.write(TurnStreamed(turn=said.model_copy(update={"cached": True, "text": "again"}), seq=1))
    recorder.write(TurnStreamed(turn=said.model_copy(update={"agent_id": "x"})))  # a live preview: not stored
    decision = DecisionFinished.of(1, outcome("buyer", turns=2), archetype=0, weight=1.0)
    recorder.write(decision)
    recorder.write(decision)
    recorder.write(RoundFinished(round=1, metrics={"profit": 12.5}, summary={"table": [{"policy": "a"}]}))
    recorder.write(RunFinished(status="finished", summary={"rule": "x + 1"}))

    assert [a.size for a in load_archetypes(engine, "r1")] == [50]
    assert [(t.agent_id, t.seq) for t in load_turns(engine, "r1")] == [("buyer", 0), ("buyer", 1),
                                                                      ("dialogue", 0), ("dialogue", 1)]
    summary = summarise(engine, "r1", str(engine.url))
    assert (summary.kind, summary.status, summary.n_customers, summary.decisions) == ("wholesale", "finished", 50, 1)
    assert (summary.llm_calls, summary.cached) == (0, 0)  # counted by a run's client, not by the recorder
    assert summary.rounds[0].metrics == {"profit": 12.5} and summary.rounds[0].summary["table"] == [{"policy": "a"}]
    assert summary.summary == {"rule": "x + 1"} and get_run(engine, "r1").owner is None


def test_dead_owner_reads_as_interrupted_and_a_live_one_refuses_a_second_claim(engine) -> None:
    import datetime as dt
    import socket

    from malles_graph.store.repository import claim_run, owner_alive, this_owner, utcnow

    host = socket.gethostname()
    create_run(engine, RunRow(id="dead", name="demo", owner=f"{host}:999999999", heartbeat_at=utcnow()))
    create_run(engine, RunRow(id="live", name="demo", owner=this_owner(), heartbeat_at=utcnow()))
    create_run(engine, RunRow(id="far", name="demo", owner="elsewhere:1", heartbeat_at=utcnow() - dt.timedelta(hours=1)))
    statuses = {r.id: r.status for r in list_runs(engine)}
    assert statuses == {"dead": "interrupted", "live": "running", "far": "interrupted"}
    assert "stopped without finishing" in get_run(engine, "dead").error
    assert owner_alive("elsewhere:1", utcnow()) and not owner_alive(None, utcnow())
    with pytest.raises(StoreError, match="'live' is already running"):
        claim_run(engine, "live")
    claimed = claim_run(engine, "dead")  # a dead owner's run may be resumed, by exactly one process
    assert claimed.status == "running" and claimed.owner == this_owner()


def test_an_older_store_gets_the_new_columns(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE runs (id VARCHAR PRIMARY KEY, name VARCHAR NOT NULL, kind VARCHAR, status VARCHAR,"
                     " seed INTEGER, backend VARCHAR, n_customers INTEGER, archetypes INTEGER, representatives INTEGER,"
                     " max_rounds INTEGER, rounds_done INTEGER, converged BOOLEAN, error TEXT, scenario_json TEXT,"
                     " created_at DATETIME, updated_at DATETIME)")
        conn.execute("INSERT INTO runs VALUES ('old', 'demo', 'retail', 'finished', 0, 'local', 10, 2, 1, 2, 2, 0,"
                     " NULL, '{}', '2026-01-01 00:00:00', '2026-01-01 00:00:00')")
    engine = make_engine(f"sqlite:///{path}")
    run = get_run(engine, "old")
    assert run.status == "finished" and run.owner is None and run.summary_json in (None, "{}")
