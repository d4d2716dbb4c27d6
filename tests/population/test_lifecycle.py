"""Run lifecycle through the generic runner (issues 15 and 16): live events, cancel, ownership, failures, cache."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import pytest
from langchain_core.messages import BaseMessage
from malles_graph.graphs.run import resume_run, run_scenario, start_run
from rich.console import Console

from malles_graph.backends import build_client
from malles_graph.scenario import BackendConfig
from malles_graph.store import StoreError, make_engine
from malles_graph.store.repository import get_run, load_decisions
from tests.fakes import ScriptedChatModel
from tests.population.responders import decision_responder, scripted_decision_client
from tests.population.test_runner import small


class TimedWriter(io.StringIO):
    """A console file that remembers when each line was written."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[tuple[float, str]] = []

    def write(self, text: str) -> int:
        now = time.monotonic()
        self.lines.extend((now, line) for line in text.splitlines() if line.strip())
        return super().write(text)


def test_malles_run_prints_a_role_turn_before_the_agent_has_decided(tmp_path: Path, monkeypatch) -> None:
    """A scripted model that takes 1 s per call: `malles run` shows the first debate turn while the decision
    (three roles and the decision: at least four calls) is still going (printed at the end, the gap would be ~0)."""
    from malles_graph import backends
    from malles_graph.cli.running import run_any

    scenario = small(tmp_path, population={"n_customers": 100, "archetypes": 1}, mean_field={"max_rounds": 1},
                     decision={"debate_rounds": 1, "samples": 1})
    delay = 1.0
    client = scripted_decision_client(delay_s=delay)
    monkeypatch.setattr(backends, "build_client", lambda *a, **k: client)  # what `malles run` builds
    out = TimedWriter()
    run_any(scenario, resume=None, store=None, console=Console(file=out, width=200), seeds=1)
    text = [line for _, line in out.lines]
    started = next(t for t, line in out.lines if "started run" in line)
    first_turn = next(t for t, line in out.lines if "product_specialist:" in line)
    round_done = next(t for t, line in out.lines if line.startswith("round 1:"))
    assert first_turn - started < 2 * delay + 15  # one call after setup, not after the four calls of the decision
    assert round_done - first_turn >= 3 * delay - 0.5  # the decision needed three more calls after that turn
    assert any("price_analyst:" in line for line in text) and any("run finished" in line for line in text)


def test_max_concurrency_one_does_not_deadlock(tmp_path: Path) -> None:
    scenario = small(tmp_path, backend={"max_concurrency": 1}, mean_field={"max_rounds": 1},
                     decision={"debate_rounds": 0})
    result: list = []
    worker = threading.Thread(target=lambda: result.append(
        run_scenario(scenario, client=scripted_decision_client(max_concurrency=1))), daemon=True)
    worker.start()
    worker.join(120)
    assert not worker.is_alive(), "the run hung with max_concurrency: 1"
    assert result[0].status == "finished" and result[0].decisions == 3


def test_cancel_stops_within_one_call_and_resume_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    scenario = small(tmp_path, mean_field={"max_rounds": 2}, decision={"debate_rounds": 0, "samples": 1})
    handle = start_run(scenario, client=scripted_decision_client(delay_s=1.0, max_concurrency=2))
    for event in handle.events():
        if event.type == "decision_finished":
            break
    asked = time.monotonic()
    handle.cancel()
    handle.wait(30)
    assert not handle.alive and time.monotonic() - asked < 1.0 + 1.0  # the call in flight, no more
    assert handle.summary.status == "cancelled" and handle.summary.decisions < 6
    engine = make_engine(scenario.store.url)
    assert get_run(engine, handle.run_id).owner is None

    resumed = resume_run(handle.run_id, store_url=scenario.store.url, client=scripted_decision_client()).run()
    assert resumed.status == "finished" and resumed.resumed and resumed.decisions == 6
    rows = load_decisions(engine, handle.run_id)
    assert len({(r.round, r.agent_id) for r in rows}) == len(rows) == 6
    straight = run_scenario(scenario, client=scripted_decision_client())
    assert [r.summary["m"] for r in resumed.rounds] == [r.summary["m"] for r in straight.rounds]


def test_a_second_resume_of_a_running_run_is_refused(tmp_path: Path) -> None:
    scenario = small(tmp_path, mean_field={"max_rounds": 1}, decision={"debate_rounds": 0, "samples": 1})
    handle = start_run(scenario, client=scripted_decision_client(delay_s=0.5))
    try:
        with pytest.raises(StoreError, match=f"run '{handle.run_id}' is already running"):
            resume_run(handle.run_id, store_url=scenario.store.url, client=scripted_decision_client())
    finally:
        handle.cancel()
        handle.wait(30)
    assert get_run(make_engine(scenario.store.url), handle.run_id).status == "cancelled"


def test_a_fatal_backend_stops_the_run_at_once_and_keeps_what_was_decided(tmp_path: Path) -> None:
    """After two good answers the backend refuses every call: the run fails with the reason, the two decisions
    stay, and a resume (the backend back) finishes the rest without redoing them."""
    calls = {"n": 0}
    lock = threading.Lock()

    class Refused(Exception):
        status_code = 401  # what the OpenAI client raises for a bad key

    def flaky(messages: list[BaseMessage]) -> str:
        with lock:
            calls["n"] += 1
            n = calls["n"]
        if n > 2:
            raise Refused("Incorrect API key provided")
        return decision_responder(messages)

    scenario = small(tmp_path, mean_field={"max_rounds": 1}, decision={"debate_rounds": 0, "samples": 1},
                     population={"n_customers": 400, "archetypes": 4})
    client = build_client(BackendConfig(name="local", cache=False, max_concurrency=1),
                          chat_model=ScriptedChatModel(responder=flaky))
    summary = run_scenario(scenario, client=client)
    assert summary.status == "failed" and "authentication refused" in summary.reason
    assert summary.decisions == 2 and summary.failed == 0  # no failure recorded for the refused calls
    resumed = run_scenario(scenario, run_id=summary.run_id, resume=True, client=scripted_decision_client())
    assert resumed.status == "finished" and resumed.decisions == 4 and resumed.failed == 0


def test_a_fully_cached_rerun_reports_cached_answers(tmp_path: Path) -> None:
    from malles_graph.backends.cache import ResponseCache

    cache = ResponseCache(tmp_path / "llm-cache.sqlite")  # a fresh response cache
    scenario = small(tmp_path, backend={"cache": True}, mean_field={"max_rounds": 1}, decision={"samples": 1})

    def client() -> object:
        model = ScriptedChatModel(responder=decision_responder)
        return build_client(scenario.backend, chat_model=model, cache=cache)

    first = run_scenario(scenario, client=client())
    again = run_scenario(scenario, client=client())
    assert first.llm_calls > 0 and first.cached == 0
    assert again.llm_calls == 0 and again.cached == first.llm_calls
