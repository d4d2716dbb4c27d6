"""langgraph.json for real: `langgraph dev` (LangGraph Server API, in-memory) loads and runs our graphs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
GRAPHS = {"decision", "population", "economist", "wholesale"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    cli = Path(sys.executable).with_name("langgraph")
    env = {**os.environ, "LANGSMITH_TRACING": "false", "LANGCHAIN_TRACING_V2": "false", "BG_JOB_ISOLATED_LOOPS": "true"}
    log = open(tmp_path_factory.mktemp("langgraph") / "server.log", "w+")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [str(cli), "dev", "--no-browser", "--no-reload", "--port", str(port), "--config", "langgraph.json",
         "--allow-blocking"],
        cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                log.seek(0)
                raise AssertionError(f"langgraph dev exited {proc.returncode}:\n{log.read()[-3000:]}")
            try:
                if httpx.get(f"{url}/ok", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(1)
        else:
            log.seek(0)
            raise AssertionError(f"langgraph dev did not answer in 300 s:\n{log.read()[-3000:]}")
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()


def test_every_graph_of_langgraph_json_is_served(server: str) -> None:
    assistants = httpx.post(f"{server}/assistants/search", json={"limit": 50}, timeout=30).json()
    served = {a["graph_id"] for a in assistants}
    assert GRAPHS <= served
    for assistant in assistants:
        if assistant["graph_id"] in GRAPHS:
            shape = httpx.get(f"{server}/assistants/{assistant['assistant_id']}/graph", timeout=60).json()
            assert len(shape["nodes"]) >= 3, assistant["graph_id"]


def test_decision_graph_runs_through_the_server_api(server: str) -> None:
    """A client app calls the served decision graph with plain dicts (the LLM-free choice-model backend)."""
    from malles_graph.data import tafeng
    from malles_graph.situations import SituationBuilder

    situation = SituationBuilder(tafeng.load()).sample(1, seed=3)[0].situation
    run = httpx.post(
        f"{server}/runs/wait",
        json={
            "assistant_id": "decision",
            "input": {"agent_id": "api-1", "situation": situation.model_dump(mode="json")},
            "context": {"backend": {"name": "choice-model"}, "debate_rounds": 1, "retrieval": False},
        },
        timeout=600,
    )
    assert run.status_code == 200, run.text
    outcome = run.json()["outcome"]
    assert outcome["agent_id"] == "api-1" and outcome["ok"] is True
    assert outcome["choice"] in {*situation.candidate_ids, "none"}
