"""A planted API key never reaches the store, the response cache, the checkpoints, an export or the CLI output,
even when the backend echoes it in its answers and in its errors (issue 16).

A real `malles run` (subprocess) against a real OpenAI-compatible HTTP server on loopback: the first requests
answer 200 with the key in the text (transcripts, cache), then every request fails with HTTP 500 quoting the
Authorization header (decision errors, the circuit breaker's message). Then `malles export`, and a byte grep
of every file written.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.core.loopback_llm import loopback_llm

REPO = Path(__file__).resolve().parents[2]
KEY = "sk-plantedKEY-9f8e7d6c5b4a3210"


def malles(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "malles_graph.cli", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300
    )


@pytest.fixture
def sandbox(tmp_path: Path, tafeng_path: Path) -> tuple[Path, dict[str, str]]:
    """A MALLES_HOME of its own (so the response cache is this test's), sharing the fetched data."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "data").symlink_to(tafeng_path.parent)
    env = os.environ | {
        "MALLES_HOME": str(home),
        "MALLES_RUNS": str(tmp_path / "runs"),
        "MALLES_PLANTED_KEY": KEY,
        "PYTHONPATH": str(REPO),
    }
    return tmp_path, env


@pytest.mark.slow
def test_planted_key_is_found_nowhere(sandbox: tuple[Path, dict[str, str]]) -> None:
    root, env = sandbox
    with loopback_llm("echo") as server:
        server.fail_after = 6
        scenario = root / "secret.yaml"
        scenario.write_text(
            "name: secret-probe\n"
            f"backend: {{name: openai, base_url: '{server.base_url}', model: loopback, "
            "api_key_env: MALLES_PLANTED_KEY, timeout_s: 5, failure_limit: 3}\n"
            "population: {n_customers: 40, archetypes: 2, representatives: 1}\n"
            "environment: {n_candidates: 3, start_date: 2001-02-01}\n"
            "mean_field: {max_rounds: 1}\n"
            "decision: {debate_rounds: 1, retrieval: false, hidden_factors: false}\n"
        )
        done = malles("run", str(scenario), env=env, cwd=root)
        assert server.requests > server.fail_after, "the server never failed: the error path was not exercised"
    output = done.stdout + done.stderr
    assert "Traceback" not in output
    assert done.returncode != 0, output  # every decision failed: never a success
    store = root / "runs" / "malles.sqlite"
    assert store.exists(), output
    run_id = _run_id(store)
    export = malles("export", run_id, "-o", str(root / "export"), env=env, cwd=root)
    assert export.returncode == 0, export.stdout + export.stderr
    written = [p for p in root.rglob("*") if p.is_file() and not p.is_symlink() and "data" not in p.parts]
    assert any(p.suffix == ".csv" for p in written) and any("llm-cache" in p.name for p in written)
    # The answers that echoed the key were stored (redacted), so the grep below looks where the key would be.
    assert _count(store, b"your key is <redacted>") > 0
    assert _count(store, b"<redacted>") > 1
    found = {str(p): _count(p, KEY.encode()) for p in written}
    found["cli output"] = (output + export.stdout + export.stderr).count(KEY)
    assert sum(found.values()) == 0, {k: v for k, v in found.items() if v}
    assert _count(store, b"plantedKEY") == 0


def _count(path: Path, needle: bytes) -> int:
    return path.read_bytes().count(needle)


def _run_id(store: Path) -> str:
    import sqlite3

    with sqlite3.connect(store) as conn:
        return conn.execute("SELECT id FROM runs").fetchone()[0]
