"""Run a scenario of any kind for the app's worker thread, turning its event stream into app messages.

The run goes through the generic runner (``malles_graph.graphs.run``), the same path as
``malles run``: one event stream, recorded in the store by the runner before the app sees it.
Nothing here switches on the scenario kind; each run event maps to one app message (the event
itself rides along as ``message.event``).

Stopping: the operator's cancel (``cancel`` set) asks the run to stop within one LLM call and
waits for it to say so (``RunCancelled(stopped=True)``, status *cancelled*, resumable). Quitting
the app (``app.quitting``) marks the run *interrupted* and returns at once; the calls in flight
end in the background and the run is resumable.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from malles_graph.tui import messages as msg

from malles_graph import events as ev
from malles_graph.errors import MallesError
from malles_graph.scenario import Scenario

QUIT_WAIT_S = 1.0  # how long a quitting app lets the run thread record its stop before returning


def execute_run(
    app: Any,
    scenario: Scenario,
    *,
    resume: str | None,
    store_url: str | None,
    chat_model: Any,
    cancel: threading.Event,
) -> None:
    """Run (or resume) ``scenario`` to its end, posting messages; never raises (failures become RunFailed)."""
    from malles_graph.graphs.run import resume_run, start_run

    client = None
    if chat_model is not None:
        from malles_graph.backends import build_client

        client = build_client(scenario.backend, chat_model=chat_model, use_cache=False)
    try:
        if resume:
            handle = resume_run(resume, store_url=store_url, client=client, scenario=scenario)
        else:
            handle = start_run(scenario, store_url=store_url, client=client)
    except MallesError as exc:
        app.post_message(msg.RunFailed(str(exc), resume))
        return
    except Exception as exc:  # noqa: BLE001 - anything else is shown; the app keeps running
        app.post_message(msg.RunFailed(f"{type(exc).__name__}: {exc}", resume))
        return
    relay = Relay(app, handle)
    asked = False
    while True:
        if getattr(app, "quitting", False):
            handle.cancel("interrupted", "the app was closed during the run")
            handle.wait(QUIT_WAIT_S)
            return
        if cancel.is_set() and not asked:
            handle.cancel("cancelled", "cancelled from the TUI")
            asked = True
        event = next_event(handle)
        if event is None:
            continue
        if event is StopIteration:
            return
        relay.post(event)


def per_option(value: Any) -> Any:
    """A list of numbers (e.g. a rate per tax bracket) as the per-option mapping the charts draw: {"1": v1, ...}."""
    if isinstance(value, list) and value and all(isinstance(v, int | float) for v in value):
        return {str(i + 1): float(v) for i, v in enumerate(value)}
    return value


def next_event(handle: Any) -> Any:
    """The next event, None when none came within the poll, StopIteration at the end of the stream."""
    try:
        return handle.poll(0.05)
    except StopIteration:
        return StopIteration


class Relay:
    """Maps each run event to the app message the screens listen to (the event rides along)."""

    def __init__(self, app: Any, handle: Any) -> None:
        self.app = app
        self.handle = handle
        self.round = 0
        self.done = 0
        self.total = 0
        self.started = time.monotonic()

    def post(self, event: Any) -> None:
        message = self.translate(event)
        if message is not None:
            message.event = event
            self.app.post_message(message)

    def translate(self, event: Any) -> Any:
        if isinstance(event, ev.RunStarted):
            return msg.RunStarted(event.run_id, event.name, event.kind)
        if isinstance(event, ev.Message | ev.PopulationPrepared):
            text = event.text if isinstance(event, ev.Message) else (
                f"population: {event.n_customers:,} in {len(event.archetypes)} archetype(s)")
            return msg.RunLogged(text)
        if isinstance(event, ev.RoundStarted):
            self.round, self.done, self.total = event.round, event.done, event.total
            return msg.RoundStarted(event.round, event.total, event.done)
        if isinstance(event, ev.TurnStreamed):
            return msg.TurnStreamed(event.turn, event.round if event.round is not None else self.round)
        if isinstance(event, ev.DecisionFinished):
            self.done += 1
            return msg.DecisionFinished(event.round, self.done, max(self.total, self.done), event.outcome(),
                                        mass=event.weight)
        if isinstance(event, ev.RoundFinished):
            figures = {key: per_option(value) for key, value in {**event.summary, **event.metrics}.items()}
            if "failed_share" in figures:
                figures["failure_share"] = figures["failed_share"]
            return msg.RoundFinished(event.round, figures)
        if isinstance(event, ev.RunFinished):
            if event.status == "finished":
                return msg.RunFinished(event.run_id, self.handle.wait(5.0))
            if event.status == "failed":
                return msg.RunFailed(event.reason or "the run failed", event.run_id)
            return msg.RunCancelled(event.run_id, stopped=True)
        return None
