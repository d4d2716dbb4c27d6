"""Run a scenario for the app's worker thread and turn its progress into app messages.

* retail scenarios go through ``malles_graph.graphs.runner.run_scenario`` (the same path as
  ``malles run``): SQL store, checkpointer, resumable runs;
* economist scenarios through ``malles_graph.graphs.economist.run_economist`` (a step is a "round");
* wholesale scenarios through ``malles_graph.graphs.wholesale.run_wholesale`` (its three-way dialogue
  streams into Live debate like a retail debate).

Cancelling sets an event; the progress callbacks check it at every event and raise
:class:`RunCancelledByUser`. It derives from ``KeyboardInterrupt`` on purpose: the runner
records a ``KeyboardInterrupt`` as status *interrupted* (resumable), not *failed*, and
keeps every round and decision already written.
"""

from __future__ import annotations

import threading
from typing import Any

from malles_graph.tui import messages as msg

from malles_graph.agents import AgentOutcome, TranscriptTurn
from malles_graph.errors import MallesError
from malles_graph.scenario import Scenario


class RunCancelledByUser(KeyboardInterrupt):
    """Raised inside the run when the operator cancels it."""


class Poster:
    """Posts messages to the app and stops the run when cancellation was requested."""

    def __init__(self, app: Any, cancel: threading.Event) -> None:
        self.app = app
        self.cancel = cancel

    def post(self, message: Any) -> None:
        self.app.post_message(message)
        self.check()

    def check(self) -> None:
        if self.cancel.is_set():
            raise RunCancelledByUser("cancelled from the TUI")


class RetailProgress:
    """The runner's RunProgress protocol, posting app messages."""

    def __init__(self, poster: Poster, engine: Any, run_id: str) -> None:
        self.poster = poster
        self.engine = engine
        self.run_id = run_id
        self.round = 0

    def message(self, text: str) -> None:
        self.poster.post(msg.RunLogged(text))

    def round_started(self, round: int, total: int, done: int) -> None:
        self.round = round
        self.poster.post(msg.RoundStarted(round, total, done))

    def decision_done(self, round: int, done: int, total: int, outcome: Any) -> None:
        if outcome is None:
            self.poster.check()
            return
        full = self._stored_outcome(round, outcome)
        self.poster.post(msg.DecisionFinished(round, done, total, full, mass=getattr(outcome, "weight", None)))

    def round_finished(self, report: Any, metrics: dict[str, float]) -> None:
        figures = {
            "demand": dict(report.demand),
            "prices": dict(report.prices),
            "m": dict(report.m),
            "distance": report.distance,
            "failure_share": report.failed_share,
            "converged": report.converged,
            **{k: v for k, v in metrics.items() if k not in ("distance",)},
        }
        self.poster.post(msg.RoundFinished(report.round, figures))

    def transcript_turn(self, turn: TranscriptTurn) -> None:
        self.poster.post(msg.TurnStreamed(turn, self.round))

    def _stored_outcome(self, round: int, weighted: Any) -> AgentOutcome:
        """The decision as recorded (agreement, calls, tokens, error); the weighted view lacks them."""
        from sqlmodel import Session, select

        from malles_graph.store.tables import DecisionRow

        base = AgentOutcome(
            agent_id=weighted.agent_id, ok=weighted.ok, choice=weighted.choice, quantity=weighted.quantity
        )
        try:
            with Session(self.engine) as session:
                row = session.exec(
                    select(DecisionRow).where(
                        DecisionRow.run_id == self.run_id,
                        DecisionRow.round == round,
                        DecisionRow.agent_id == weighted.agent_id,
                    )
                ).first()
        except Exception:  # noqa: BLE001 - the live view falls back to what the runner sent
            return base
        if row is None:
            return base
        return base.model_copy(
            update={
                "error": row.error,
                "agreement": row.agreement,
                "llm_calls": row.llm_calls,
                "prompt_tokens": row.prompt_tokens,
                "completion_tokens": row.completion_tokens,
            }
        )


def execute_run(
    app: Any,
    scenario: Scenario,
    *,
    resume: str | None,
    store_url: str | None,
    chat_model: Any,
    cancel: threading.Event,
) -> None:
    """Run ``scenario`` to the end, posting messages; never raises (failures become RunFailed)."""
    poster = Poster(app, cancel)
    run_id = resume
    try:
        if scenario.kind == "retail":
            run_id, summary = _run_retail(poster, scenario, resume, store_url, chat_model)
        elif scenario.kind == "economist":
            summary = _run_economist(poster, scenario, chat_model)
        else:
            summary = _run_wholesale(poster, scenario, chat_model)
    except RunCancelledByUser:
        app.post_message(msg.RunCancelled(run_id, stopped=True))
    except MallesError as exc:
        app.post_message(msg.RunFailed(str(exc), run_id))
    except Exception as exc:  # noqa: BLE001 - anything else is shown; the app keeps running
        app.post_message(msg.RunFailed(f"{type(exc).__name__}: {exc}", run_id))
    else:
        app.post_message(msg.RunFinished(getattr(summary, "run_id", run_id), summary))


def _run_retail(
    poster: Poster, scenario: Scenario, resume: str | None, store_url: str | None, chat_model: Any
) -> tuple[str, Any]:
    from malles_graph.graphs.runner import run_scenario

    from malles_graph.store import repository as repo
    from malles_graph.store.engine import check_reachable, make_engine

    client = None
    if chat_model is not None:
        from malles_graph.backends import build_client

        client = build_client(scenario.backend, chat_model=chat_model, use_cache=False)
    # The store is checked (and the run id known) before any work, so the UI can show both at once;
    # the runner's own preflight then checks the scenario against the data.
    url = check_reachable(store_url or scenario.store.url)
    engine = make_engine(url)
    run_id = resume or repo.new_run_id(scenario.name)
    poster.post(msg.RunStarted(run_id, scenario.name, scenario.kind))
    progress = RetailProgress(poster, engine, run_id)
    summary = run_scenario(
        scenario, run_id=run_id, resume=bool(resume), store_url=url, progress=progress, client=client
    )
    return run_id, summary


def _run_economist(poster: Poster, scenario: Scenario, chat_model: Any) -> Any:
    from malles_graph.graphs.economist import run_economist

    options = scenario.economist
    assert options is not None
    objective = f"welfare_{options.objective}"
    poster.post(msg.RunStarted(None, scenario.name, scenario.kind))
    poster.post(msg.RoundStarted(1, options.steps, 0))

    def progress(step: int, steps: int, row: dict) -> None:
        figures = {
            "welfare": row.get(objective),
            "mean_hours": row.get("mean_hours"),
            "llm_calls": row.get("llm_calls"),
            "schedule": {f"bracket {i + 1}": rate for i, rate in enumerate(row.get("schedule", []))},
        }
        failures = row.get("worker_failures")
        if isinstance(failures, int | float) and options.n_workers:
            figures["failure_share"] = failures / options.n_workers
        poster.post(msg.RoundFinished(step, {k: v for k, v in figures.items() if v is not None}))
        if step < steps:
            poster.post(msg.RoundStarted(step + 1, steps, step))

    return run_economist(scenario, progress, chat_model=chat_model)


def _run_wholesale(poster: Poster, scenario: Scenario, chat_model: Any) -> Any:
    from malles_graph.graphs.wholesale import run_wholesale

    poster.post(msg.RunStarted(None, scenario.name, scenario.kind))
    poster.post(msg.RoundStarted(0, 0, 0))

    def progress(event: dict[str, Any]) -> None:
        if event.get("event") == "turn" and isinstance(event.get("turn"), TranscriptTurn):
            turn: TranscriptTurn = event["turn"]
            if not turn.agent_id:
                turn = turn.model_copy(update={"agent_id": "dialogue"})
            poster.post(msg.TurnStreamed(turn, 0))
        elif event.get("event") == "stage":
            poster.post(msg.RunLogged(f"stage: {event.get('stage')}"))
        else:
            poster.check()

    return run_wholesale(scenario, progress, chat_model=chat_model)
