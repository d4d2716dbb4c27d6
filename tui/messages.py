"""Messages that run workers post to the app: each says what has happened (past tense).

The run messages are made from the runner's typed events (``tui/running.py``); the event itself
rides along as ``message.event`` (a :mod:`malles_graph.events` model, None for app-made messages).
"""

from __future__ import annotations

from typing import Any

from textual.message import Message

from malles_graph.agents import AgentOutcome, TranscriptTurn


class RunMessage(Message):
    """A message about the run being shown, carrying the run event it was made from."""

    event: Any = None


class RunStarted(RunMessage):
    def __init__(self, run_id: str | None, scenario_name: str, kind: str) -> None:
        super().__init__()
        self.run_id = run_id
        self.scenario_name = scenario_name
        self.kind = kind


class RunLogged(RunMessage):
    """A line of news from the run (setup steps, resume point, wholesale stages)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class RoundStarted(RunMessage):
    def __init__(self, round_index: int, n_decisions: int, done: int = 0) -> None:
        super().__init__()
        self.round_index = round_index
        self.n_decisions = n_decisions
        self.done = done


class TurnStreamed(RunMessage):
    """One transcript turn (a role's utterance, a retry, a conflict, the decision)."""

    def __init__(self, turn: TranscriptTurn, round_index: int | None = None) -> None:
        super().__init__()
        self.turn = turn
        self.round_index = round_index


class DecisionFinished(RunMessage):
    def __init__(self, round_index: int, done: int, total: int, outcome: AgentOutcome, mass: float | None = None) -> None:
        super().__init__()
        self.round_index = round_index
        self.done = done
        self.total = total
        self.outcome = outcome
        self.mass = mass


class RoundFinished(RunMessage):
    """Figures of one mean-field round: demand per product, prices, distance, failure share."""

    def __init__(self, round_index: int, figures: dict[str, Any]) -> None:
        super().__init__()
        self.round_index = round_index
        self.figures = figures


class RunFinished(RunMessage):
    def __init__(self, run_id: str | None, summary: Any) -> None:
        super().__init__()
        self.run_id = run_id
        self.summary = summary


class RunFailed(RunMessage):
    """The run stopped on an error; what was already recorded stays in the store."""

    def __init__(self, error: str, run_id: str | None = None) -> None:
        super().__init__()
        self.error = error
        self.run_id = run_id


class RunCancelled(RunMessage):
    """Cancellation was requested (``stopped`` False) or the run has really stopped (True)."""

    def __init__(self, run_id: str | None, stopped: bool = False) -> None:
        super().__init__()
        self.run_id = run_id
        self.stopped = stopped


class TryTurnStreamed(Message, bubble=False):
    """A transcript turn of the editor's "try it" decision."""

    def __init__(self, turn: TranscriptTurn) -> None:
        super().__init__()
        self.turn = turn


class TryFinished(Message, bubble=False):
    def __init__(self, outcome: AgentOutcome | None, error: str | None = None) -> None:
        super().__init__()
        self.outcome = outcome
        self.error = error
