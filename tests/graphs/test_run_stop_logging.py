"""A stopped run ends without a traceback: LangGraph's late commit of a stopped task is not logged.

LangGraph commits a task's writes in the future's done-callback, and its executor's exit waits for
the futures, not for their callbacks. This is that race, made certain: the executor shuts down
while the task is still running, so the task's callback submits to a shut-down executor and
``concurrent.futures`` logs the failure (with tracebacks) after the run's summary was printed.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from malles_graph.graphs.run.cancel import RunStopped


def late_commit(raises: BaseException) -> None:
    release = threading.Event()
    pool = ThreadPoolExecutor(max_workers=1)

    def task() -> None:
        release.wait(5)
        raise raises

    future = pool.submit(task)
    future.add_done_callback(lambda _f: pool.submit(print))  # the commit: a write submitted to the pool
    pool.shutdown(wait=False)
    release.set()
    pool.shutdown(wait=True)  # the worker has run the callback when this returns


def test_the_late_commit_of_a_stopped_task_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="concurrent.futures"):
        late_commit(RunStopped("failed", "circuit breaker"))
    assert caplog.records == []


def test_any_other_callback_failure_is_still_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="concurrent.futures"):
        late_commit(ValueError("a real bug"))
    assert len(caplog.records) == 1
    record = caplog.records[0]
    assert record.getMessage().startswith("exception calling callback for")
    assert "cannot schedule new futures after shutdown" in str(record.exc_info[1])
