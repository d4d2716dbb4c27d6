"""Messages that run workers post to the app: each says what has happened (past tense)."""

from __future__ import annotations

from typing import Any

from textual.message import Message

from malles_graph.agents import AgentOutcome, TranscriptTurn


class RunStarted(Message):
    def __init__(self, run_id: str | None, scenario_name: str, kind: str) -> None:
        super().__init__()
        self.run_id = run_id
        self.scenario_name = scenario_name
        self.kind = kind


class RunLogged(Message):
    """A line of news from the run (setup steps, resume point, wholesale stages)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class RoundStarted(Message):
    def __init__(self, round_index: int, n_decisions: int, done: int = 0) -> None:
        super().__init__()
        self.round_index = round_index
        self.n_decisions = n_decisions
        self.done = done


class TurnStreamed(Message):
    """One transcript turn (a role's utterance, a retry, a conflict, the decision)."""

    def __init__(self, turn: TranscriptTurn, round_index: int | None = None) -> None:
        super().__init__()
        self.turn = turn
        self.round_index = round_index


class DecisionFinished(Message):
    def __init__(self, round_index: int, done: int, total: int, outcome: AgentOutcome, mass: float | None = None) -> None:
        super().__init__()
        self.round_index = round_index
        self.done = done
        self.total = total
        self.outcome = outcome
        self.mass = mass


class RoundFinished(Message):
    """Figures of one mean-field round: demand per product, prices, distance, failure share."""

    def __init__(self, round_index: int, figures: dict[str, Any]) -> None:
        super().__init__()
        self.round_index = round_index
        self.figures = figures


class RunFinished(Message):
    def __init__(self, run_id: str | None, summary: Any) -> None:
        super().__init__()
        self.run_id = run_id
        self.summary = summary


class RunFailed(Message):
    """The run stopped on an error; what was already recorded stays in the store."""

    def __init__(self, error: str, run_id: str | None = None) -> None:
        super().__init__()
        self.error = error
        self.run_id = run_id


class RunCancelled(Message):
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
