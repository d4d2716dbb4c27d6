"""Subprocess entry for the kill-and-resume test: run (or resume) a small retail run with a scripted model.

    python -m tests.population.run_helper STORE_URL RUN_ID [--resume]

Test-only knobs, read here and nowhere in the product:
  MALLES_TEST_DECISION_DELAY  seconds each scripted LLM answer takes (so the test can kill mid-round)
  MALLES_TEST_DECISION_GATE   file each scripted LLM answer waits for (so the run is still running while the
                              test tries a second resume; the test creates it when done)
  MALLES_TEST_CALL_LOG        file that gets one line per LLM call (to count redone work)
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from langchain_core.messages import BaseMessage
from malles_graph.graphs.run import run_scenario

from malles_graph.backends import build_client
from malles_graph.errors import MallesError
from malles_graph.scenario import BackendConfig, Scenario
from tests.fakes import ScriptedChatModel
from tests.population.responders import decision_responder

K, ROUNDS = 6, 3


def scenario(store_url: str) -> Scenario:
    return Scenario.model_validate(
        {
            "name": "kill-resume",
            "seed": 3,
            "backend": {"name": "local", "max_concurrency": 2, "cache": False},
            "population": {"n_customers": 600, "archetypes": K},
            "environment": {"n_candidates": 4, "initial_stock": 100000},
            "decision": {"debate_rounds": 0, "samples": 1, "retrieval": False},
            "mean_field": {"max_rounds": ROUNDS, "epsilon": 1e-9},
            "store": {"url": store_url},
        }
    )


def main() -> None:
    store_url, run_id = sys.argv[1], sys.argv[2]
    resume = "--resume" in sys.argv
    delay = float(os.environ.get("MALLES_TEST_DECISION_DELAY", "0"))
    log = os.environ.get("MALLES_TEST_CALL_LOG")
    gate = os.environ.get("MALLES_TEST_DECISION_GATE")

    def respond(messages: list[BaseMessage]) -> str:
        while gate and not Path(gate).exists():
            time.sleep(0.05)
        answer = decision_responder(messages, delay)
        if log:
            with open(log, "a", encoding="utf-8") as f:
                f.write("call\n")
        return answer

    client = build_client(
        BackendConfig(name="local", cache=False, max_concurrency=2), chat_model=ScriptedChatModel(responder=respond)
    )
    try:
        summary = run_scenario(scenario(store_url), run_id=run_id, resume=resume, client=client)
    except MallesError as exc:  # e.g. the run is already running in another process
        print(f"REFUSED {exc}")
        sys.exit(2)
    print(f"DONE {summary.run_id} {summary.status} {summary.decisions} {summary.failed}")


if __name__ == "__main__":
    main()
