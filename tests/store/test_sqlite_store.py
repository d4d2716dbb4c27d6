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
    assert len(rounds) == 1 and rounds[0].distance == 0.1 and rounds[0].demand == {"p": 3.0}
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
