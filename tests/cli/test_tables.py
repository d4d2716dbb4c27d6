"""CLI tables: full width when piped (no 80-column squeeze), and the --json / --csv forms."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from rich.console import Console
from rich.table import Table
from typer.testing import CliRunner

from malles_graph.cli import app
from malles_graph.cli.tables import print_table, to_csv
from malles_graph.population.reporters import RoundReport
from malles_graph.store import make_engine
from malles_graph.store.repository import create_run, record_round
from malles_graph.store.tables import RunRow

LONG = "a-scenario-name-long-enough-to-be-folded-at-eighty-columns"


def wide_table() -> Table:
    table = Table(title="runs")
    for name in ("run id", "scenario", "status", "decisions", "revenue", "backend", "started"):
        table.add_column(name)
    table.add_row(
        "run-20260101-120000-ab12cd", LONG, "finished", "1,234", "98,765.4", "choice-model", "2026-01-01 12:00"
    )
    return table


def test_piped_table_keeps_whole_cells():
    out = io.StringIO()
    console = Console(file=out, width=80)  # not a terminal: what `| cat` sees
    assert not console.is_terminal
    print_table(console, wide_table())
    text = out.getvalue()
    assert LONG in text and "decisions" in text and "choice-model" in text
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) > 80


def test_terminal_table_fits_the_window():
    out = io.StringIO()
    console = Console(file=out, width=60, force_terminal=True, color_system=None)
    print_table(console, wide_table())
    assert max(len(line) for line in out.getvalue().splitlines()) <= 60


def test_csv_has_a_header_and_plain_cells():
    table = wide_table()
    table.add_row("r2", "[b]bold[/] name", "failed", "1", "2", "local", "x")
    rows = list(csv.reader(io.StringIO(to_csv(table))))
    assert rows[0] == ["run id", "scenario", "status", "decisions", "revenue", "backend", "started"]
    assert rows[1][1] == LONG and rows[1][3] == "1,234"
    assert rows[2][1] == "bold name"


@pytest.fixture
def store(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    engine = make_engine(url)
    create_run(
        engine, RunRow(id="demo-1", name=LONG, max_rounds=2, n_customers=2000, archetypes=4, backend="choice-model")
    )
    report = RoundReport(
        round=1,
        n_decisions=4,
        n_failed=1,
        failed_share=0.25,
        distance=0.3,
        demand={"p1": 5.0},
        prices={"p1": 9.5},
        m={"p1": 0.7, "none": 0.3},
    )
    record_round(engine, "demo-1", report, {"distance": 0.3, "revenue": 47.5})
    return url


def invoke(*args: str):
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, f"{args}: {result.output}\n{result.exception!r}"
    return result.output


def test_runs_piped_json_and_csv(store: str):
    piped = invoke("runs", "--store", store)
    assert LONG in piped and "converged" in piped and "…" not in piped
    rows = json.loads(invoke("runs", "--store", store, "--json"))
    assert rows[0]["id"] == "demo-1" and rows[0]["n_customers"] == 2000 and rows[0]["name"] == LONG
    table = list(csv.DictReader(io.StringIO(invoke("runs", "--store", store, "--csv"))))
    assert table[0]["run id"] == "demo-1" and table[0]["customers"] == "2,000" and table[0]["rounds"] == "1/2"


def test_show_piped_json_and_csv(store: str):
    piped = invoke("show", "demo-1", "--store", store)
    assert "decisions" in piped and "revenue" in piped and "price idx" in piped and "…" not in piped
    summary = json.loads(invoke("show", "demo-1", "--store", store, "--json"))
    assert summary["run_id"] == "demo-1" and summary["rounds"][0]["distance"] == 0.3
    rounds = list(csv.DictReader(io.StringIO(invoke("show", "demo-1", "--store", store, "--csv"))))
    assert rounds == [rounds[0]] and rounds[0]["distance"] == "0.3000"


def test_json_and_csv_together_is_refused(store: str):
    result = CliRunner().invoke(app, ["runs", "--store", store, "--json", "--csv"])
    assert result.exit_code == 2 and "--json" in result.output


def test_economist_report_json_and_csv():
    from malles_graph.cli.economist import app as economist_app
    from tests.economist.stored import stored_run
    from tests.economist.test_graph import scenario

    run = stored_run(scenario(steps=3))
    runner = CliRunner()
    data = json.loads(runner.invoke(economist_app, ["report", run.run_id, "--json"]).output)
    assert [s["step"] for s in data["steps"]] == [1, 2, 3] and data["welfare_table"]
    assert all(isinstance(s["welfare_skill_weighted"], float) for s in data["steps"])
    steps = list(
        csv.DictReader(io.StringIO(runner.invoke(economist_app, ["report", run.run_id, "--csv"]).output))
    )
    assert [s["step"] for s in steps] == ["1", "2", "3"] and "W skill-wtd" in steps[0]
