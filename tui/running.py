"""Runs a scenario for the app's worker (filled in when the runner lands)."""

from __future__ import annotations

import threading
from typing import Any

from malles_graph.scenario import Scenario
from tui import messages as msg


def execute_run(
    app: Any, scenario: Scenario, *, resume: str | None, store_url: str | None, client: Any, cancel: threading.Event
) -> None:
    app.post_message(msg.RunFailed("the runner (malles_graph/runner.py) is not available yet"))
