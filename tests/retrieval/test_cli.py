"""`malles memory build | query | info`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from malles_graph.cli import app

runner = CliRunner()
MALLES = Path(sys.executable).with_name("malles")


def test_build_twice_continues_then_query_and_info(tmp_path, monkeypatch):
    from malles_graph.cli import memory

    monkeypatch.setattr(memory.console, "width", 200)  # CliRunner has no terminal: keep table columns whole
    path = str(tmp_path / "mem")
    first = runner.invoke(app, ["memory", "build", "--limit", "60", "--path", path, "--batch-size", "25"])
    assert first.exit_code == 0, first.output
    assert "added" in first.output and "60" in first.output
    again = runner.invoke(app, ["memory", "build", "--limit", "90", "--path", path, "--batch-size", "25"])
    assert again.exit_code == 0, again.output
    assert "already present (skipped)" in again.output
    lines = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in again.output.splitlines()
             if line.count("│") == 3}
    assert lines["added"] == "30" and lines["already present (skipped)"] == "60"
    assert lines["documents in collection"] == "90"

    query = runner.invoke(app, ["memory", "query", "age 30-34, area 115: bought 1 unit", "--path", path,
                                "--before", "2000-11-02", "-k", "3"])
    assert query.exit_code == 0, query.output
    assert "3 records before 2000-11-02" in query.output and "20001101" not in query.output
    assert "2000-11-01" in query.output  # dates shown as dates

    info = runner.invoke(app, ["memory", "info", "--path", path])
    assert info.exit_code == 0 and "malles-minilm-int8" in info.output and "90" in info.output


def test_errors_are_short_and_name_the_path(tmp_path):
    missing = tmp_path / "none"
    done = subprocess.run([str(MALLES), "memory", "query", "x", "--path", str(missing)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "no Chroma memory at" in done.stderr and "Traceback" not in done.stderr
    bad_date = runner.invoke(app, ["memory", "query", "x", "--before", "yesterday", "--path", str(missing)])
    assert bad_date.exit_code != 0 and "YYYY-MM-DD" in bad_date.output


def test_help_has_examples():
    result = runner.invoke(app, ["memory", "build", "--help"])
    assert result.exit_code == 0 and "malles memory build --limit" in result.output


def stored_count(folder: Path) -> int:
    """Documents written so far, read from Chroma's SQLite file without opening a client."""
    import sqlite3

    db = folder / "chroma.sqlite3"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            return con.execute("select count(*) from embeddings").fetchone()[0]
    except sqlite3.OperationalError:  # tables not created yet
        return 0


def test_ctrl_c_during_build_then_rerun_completes_without_duplicates(tmp_path):
    import os
    import signal
    import time

    import chromadb

    folder = tmp_path / "mem"
    cmd = [str(MALLES), "memory", "build", "--limit", "400", "--batch-size", "20", "--path", str(folder)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=os.environ | {"COLUMNS": "200"})
    deadline = time.monotonic() + 240
    while stored_count(folder) < 40 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, "the build finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)
    assert proc.returncode == 130  # the CLI's exit code for Ctrl-C
    partial = stored_count(folder)
    assert 40 <= partial < 400 and partial % 20 == 0  # whole batches only

    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=os.environ | {"COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    skipped = [line for line in done.stdout.splitlines() if "already present (skipped)" in line]
    assert skipped and skipped[0].split("│")[2].strip() == f"{partial:,}"
    ids = chromadb.PersistentClient(str(folder)).get_collection("tafeng_transactions").get(include=[])["ids"]
    assert len(ids) == len(set(ids)) == 400
