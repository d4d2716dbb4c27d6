"""Subprocess entry for the economist kill-and-resume test: run (or resume) a run checkpointed in SQLite.

    python -m tests.economist.resume_helper DB THREAD_ID EVENTS_LOG [--resume]

The planner is an LLM (a scripted model whose answers depend only on the prompt, so a resumed run asks and
gets the same); workers best-respond. Test-only knobs, read here and nowhere in the product:
  MALLES_TEST_DECISION_DELAY  seconds each scripted answer takes (so the test can kill mid-run)
  MALLES_TEST_CALL_LOG        file that gets one line per LLM call (to count redone work)
"""

from __future__ import annotations

import json
import os
import re
import sys
import time

from langgraph.checkpoint.sqlite import SqliteSaver
from malles_graph.graphs.economist import builder, recursion_limit, run_context, run_inputs

from malles_graph.backends import build_client
from malles_graph.events import RoundFinished
from malles_graph.scenario import Scenario, parse_scenario
from tests.fakes import ScriptedChatModel

STEPS = 10


def scenario() -> Scenario:
    return parse_scenario({
        "name": "kill-resume", "kind": "economist", "seed": 5,
        "backend": {"name": "local", "cache": False, "max_retries": 1},
        "economist": {"n_workers": 200, "steps": STEPS, "planner_every": 1, "worker": "best_response",
                      "planner": "llm", "stackelberg_check": False},
    })


def planner_answer(prompt: str) -> str:
    """Rates from the allowed ranges, varied by step: a pure function of the prompt."""
    step = int(re.search(r"Schedule in force now \(step (\d+)\)", prompt).group(1))
    ranges = re.findall(r"bracket_(\d+) \(.*?\): (\d+) to (\d+)", prompt)
    return json.dumps({f"bracket_{k}": int(lo) + (step * int(k)) % (int(hi) - int(lo) + 1) for k, lo, hi in ranges})


def responder(messages) -> str:
    delay = float(os.environ.get("MALLES_TEST_DECISION_DELAY", "0"))
    log = os.environ.get("MALLES_TEST_CALL_LOG")
    prompt = messages[0].content
    if log:
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(re.search(r"\(step (\d+)\)", prompt).group(1) + "\n")
    time.sleep(delay)
    return planner_answer(prompt)


def run(db: str, thread_id: str, events_log: str, resume: bool) -> dict:
    sc = scenario()
    ctx = run_context(sc, client=build_client(sc.backend, chat_model=ScriptedChatModel(responder=responder)))
    config = {"configurable": {"thread_id": thread_id}, "recursion_limit": recursion_limit(sc)}
    with SqliteSaver.from_conn_string(db) as saver:
        graph = builder.compile(checkpointer=saver)
        stream = graph.stream(None if resume else run_inputs(sc), config=config, context=ctx,
                              stream_mode="custom", durability="sync")
        for event in stream:
            if isinstance(event, RoundFinished):
                with open(events_log, "a", encoding="utf-8") as fh:
                    fh.write(f"{event.round}\n")
        return graph.get_state(config).values


if __name__ == "__main__":
    db, thread, log = sys.argv[1:4]
    values = run(db, thread, log, "--resume" in sys.argv)
    print("DONE", json.dumps({"steps": [r["step"] for r in values["history"]], "final": values["final_rates"]}))
