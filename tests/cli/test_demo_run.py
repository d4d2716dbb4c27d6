"""The demo's run when every LLM call fails (never a success), and the line saying where its time went."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.messages import BaseMessage
from malles_graph.graphs.run import start_run

from malles_graph.backends import build_client
from malles_graph.cli import STARTED
from malles_graph.cli.running import time_line
from malles_graph.paths import scenarios_dir
from malles_graph.scenario import BackendConfig, load_scenario
from tests.fakes import ScriptedChatModel


def demo(tmp_path: Path):
    """scenarios/demo.yaml as shipped, on a smaller sample without the memory (the calls are what matters here)."""
    overrides = {
        "population.n_customers": 400,
        "decision.retrieval": False,
        "store.url": f"sqlite:///{tmp_path / 'malles.sqlite'}",
    }
    return load_scenario(scenarios_dir() / "demo.yaml", overrides)


def refusing(_messages: list[BaseMessage]) -> str:
    raise ConnectionError("connection refused")


@pytest.mark.parametrize("failure_limit", [5, 1000])  # the circuit breaker stops the run / every decision fails
def test_a_demo_whose_calls_all_fail_is_a_failed_run(tmp_path: Path, failure_limit: int) -> None:
    config = BackendConfig(cache=False, call_retries=0, failure_limit=failure_limit, max_concurrency=4)
    client = build_client(config, chat_model=ScriptedChatModel(responder=refusing))
    handle = start_run(demo(tmp_path), client=client)
    summary = handle.run()
    assert summary.status == "failed" and "connection refused" in summary.reason, summary.reason
    assert handle.first_call_at is not None  # the calls were tried (start-up ended at the first)


def test_the_time_line_splits_start_up_from_the_run() -> None:
    assert time_line(STARTED + 9.5, STARTED + 60.0) == (
        "time: 60.0 s = start-up 9.5 s (to the first LLM call) + run 50.5 s"
    )
    assert time_line(None, STARTED + 3.0) == "time: 3.0 s (no LLM call in this process)"
