"""`malles run` (the lead's command) on the runner: a real process, a resume by run id, a bad store URL."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def malles(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = os.environ | {"COLUMNS": "160"}
    return subprocess.run([sys.executable, "-m", "malles_graph.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_run_and_resume_through_the_cli(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'm.sqlite'}"
    first = malles("run", str(REPO / "scenarios" / "demo.yaml"), "--backend", "choice-model", "--rounds", "2",
                   "--store", store, "--set", "decision.retrieval=false", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    run_id = re.search(r"run (demo-\S+)\)", first.stdout).group(1)
    assert "decisions (failed)" in first.stdout and "8 (0)" in first.stdout
    again = malles("run", str(REPO / "scenarios" / "demo.yaml"), "--resume", run_id, "--store", store, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "(resumed)" in again.stdout and "8 (0)" in again.stdout
    bad = malles("run", str(REPO / "scenarios" / "demo.yaml"), "--store", "postgresql://nobody@127.0.0.1:1/x",
                 cwd=tmp_path)
    assert bad.returncode == 2 and "cannot reach the run store" in bad.stderr
