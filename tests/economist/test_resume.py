"""SIGKILL an economist run mid-way, resume it in a new process: no step lost or repeated, same numbers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.economist.resume_helper import STEPS, run

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def lines(path: Path) -> list[int]:
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def test_sigkill_then_resume_loses_and_repeats_no_step(tmp_path: Path) -> None:
    db, events, calls = tmp_path / "ckpt.sqlite", tmp_path / "events.log", tmp_path / "calls.log"
    cmd = [sys.executable, "-m", "tests.economist.resume_helper", str(db), "run-1", str(events)]
    env = os.environ | {"MALLES_TEST_DECISION_DELAY": "0.5", "MALLES_TEST_CALL_LOG": str(calls)}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and len(lines(events)) < 4:
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    done_before = lines(events)
    assert 4 <= len(done_before) < STEPS, done_before

    env_resume = os.environ | {"MALLES_TEST_CALL_LOG": str(calls)}
    done = subprocess.run([*cmd, "--resume"], cwd=REPO, env=env_resume, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.split("DONE", 1)[1])
    assert result["steps"] == list(range(1, STEPS + 1))  # the checkpointed history: every step exactly once

    # the stream: every step finished, at most the one in flight at the kill reported twice
    finished = lines(events)
    assert sorted(set(finished)) == list(range(1, STEPS + 1))
    assert len(finished) - STEPS <= 1, finished
    # the planner (an LLM) was asked once per planner step, plus at most the call in flight at the kill
    asked = lines(calls)
    assert sorted(set(asked)) == list(range(1, STEPS)) and len(asked) - (STEPS - 1) <= 1, asked

    # the same numbers as an uninterrupted run in this process
    clean = run(str(tmp_path / "clean.sqlite"), "clean", str(tmp_path / "clean.log"), resume=False)
    assert result["final"] == clean["final_rates"]
    assert result["steps"] == [r["step"] for r in clean["history"]]
