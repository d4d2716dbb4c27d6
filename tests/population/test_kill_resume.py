"""SIGKILL a real run mid-round, resume it: every decision stored exactly once, little work redone; the dead run
reads as interrupted, a second resume while one runs is refused, and resume works under strict msgpack."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.population.run_helper import ROUNDS, K

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def count(db: Path, sql: str) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=30) as conn:
            return int(conn.execute(sql).fetchone()[0] or 0)
    except sqlite3.OperationalError:  # tables not created yet
        return 0


def test_sigkill_mid_round_then_resume_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    db = tmp_path / "malles.sqlite"
    url, run_id, calls = f"sqlite:///{db}", "kill-resume-test", tmp_path / "calls.log"
    strict = {"LANGGRAPH_STRICT_MSGPACK": "true"}  # checkpoint types must be registered, not merely warned about
    env = os.environ | strict | {"MALLES_TEST_DECISION_DELAY": "0.4", "MALLES_TEST_CALL_LOG": str(calls)}
    cmd = [sys.executable, "-m", "tests.population.run_helper", url, run_id]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    # wait until round 2 is under way: some but not all of its decisions stored
    while time.time() < deadline and proc.poll() is None:
        if count(db, "SELECT COUNT(*) FROM decisions WHERE round = 2") >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    before = count(db, "SELECT COUNT(*) FROM decisions")
    assert K + 2 <= before < ROUNDS * K, before
    assert count(db, "SELECT COUNT(*) FROM rounds") == 1
    assert count(db, f"SELECT COUNT(*) FROM runs WHERE id = '{run_id}' AND status = 'running'") == 1
    calls_before = len(calls.read_text().splitlines())
    from malles_graph.store import make_engine
    from malles_graph.store.repository import get_run

    assert get_run(make_engine(url), run_id).status == "interrupted"  # its owner is dead: not "running" forever

    # the resume's answers wait for the gate, so it is surely still running while a second resume is tried
    gate = tmp_path / "gate"
    env_resume = os.environ | strict | {"MALLES_TEST_CALL_LOG": str(calls), "MALLES_TEST_DECISION_GATE": str(gate)}
    resuming = subprocess.Popen(
        [*cmd, "--resume"], cwd=REPO, env=env_resume, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        while (
            time.time() < deadline + 60
            and count(db, f"SELECT COUNT(*) FROM runs WHERE id = '{run_id}' AND owner LIKE '%:{resuming.pid}'") == 0
        ):
            assert resuming.poll() is None, resuming.communicate()[1][-2000:]
            time.sleep(0.05)
        second = subprocess.run(
            [*cmd, "--resume"], cwd=REPO, env=env_resume, capture_output=True, text=True, timeout=120
        )
        assert second.returncode == 2 and "is already running" in second.stdout, (second.stdout, second.stderr[-2000:])
    finally:
        gate.touch()  # the first resume goes on (and ends) whatever happened above
    out, err = resuming.communicate(timeout=300)
    assert resuming.returncode == 0, err[-3000:]
    assert f"DONE {run_id} finished {ROUNDS * K} 0" in out
    assert "unregistered type" not in err and "Blocked deserialization" not in err, err[-3000:]

    # every (round, agent) exactly once, every round stored once
    assert count(db, "SELECT COUNT(*) FROM decisions") == ROUNDS * K
    assert count(db, "SELECT COUNT(DISTINCT round || '/' || agent_id) FROM decisions") == ROUNDS * K
    assert count(db, "SELECT COUNT(*) FROM rounds") == ROUNDS
    for rnd in range(1, ROUNDS + 1):
        assert count(db, f"SELECT COUNT(*) FROM decisions WHERE round = {rnd}") == K
        assert count(db, f"SELECT n_decisions FROM rounds WHERE round = {rnd}") == K
    # work redone after the kill is bounded by the decisions in flight (max_concurrency = 2)
    total_calls = len(calls.read_text().splitlines())
    assert calls_before >= before
    assert ROUNDS * K <= total_calls <= ROUNDS * K + 2, (calls_before, total_calls)
