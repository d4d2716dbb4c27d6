"""The state of the run the app is showing: what the Run, Live debate and Population screens draw.

Plain data, updated by the app from worker messages; a screen that was in the
background redraws from it when it comes back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from malles_graph.agents import AgentOutcome, TranscriptTurn

RunStatus = Literal["idle", "running", "cancelling", "finished", "failed", "cancelled"]


@dataclass
class ArchetypeRow:
    agent_id: str
    mass: float | None = None
    outcome: AgentOutcome | None = None


@dataclass
class RoundState:
    index: int
    total: int = 0
    done: int = 0
    figures: dict[str, Any] = field(default_factory=dict)
    archetypes: dict[str, ArchetypeRow] = field(default_factory=dict)
    transcripts: dict[str, list[TranscriptTurn]] = field(default_factory=dict)
    finished: bool = False


@dataclass
class RunSession:
    scenario_name: str = ""
    kind: str = ""
    run_id: str | None = None
    status: RunStatus = "idle"
    error: str | None = None
    rounds: list[RoundState] = field(default_factory=list)
    summary: Any = None

    def reset(self, scenario_name: str, kind: str) -> None:
        """Forget the previous run: a new one is starting."""
        self.scenario_name, self.kind, self.status = scenario_name, kind, "running"
        self.run_id, self.error, self.summary = None, None, None
        self.rounds = []

    @property
    def current(self) -> RoundState:
        if not self.rounds:
            self.rounds.append(RoundState(index=0))
        return self.rounds[-1]

    def round(self, index: int | None) -> RoundState:
        if index is None:
            return self.current
        for state in self.rounds:
            if state.index == index:
                return state
        state = RoundState(index=index)
        self.rounds.append(state)
        return state

    def start_round(self, index: int, total: int, done: int = 0) -> RoundState:
        state = self.round(index)
        state.total, state.done = total, done
        return state

    def add_turn(self, turn: TranscriptTurn, round_index: int | None = None) -> RoundState:
        state = self.round(round_index)
        state.transcripts.setdefault(turn.agent_id, []).append(turn)
        state.archetypes.setdefault(turn.agent_id, ArchetypeRow(turn.agent_id))
        return state

    def finish_decision(
        self, round_index: int, done: int, total: int, outcome: AgentOutcome, mass: float | None
    ) -> RoundState:
        state = self.round(round_index)
        state.done, state.total = done, total
        row = state.archetypes.setdefault(outcome.agent_id, ArchetypeRow(outcome.agent_id))
        row.outcome = outcome
        if mass is not None:
            row.mass = mass
        if outcome.transcript and not state.transcripts.get(outcome.agent_id):
            # The runner may not stream turns (e.g. a computed backend): keep the outcome's transcript.
            state.transcripts[outcome.agent_id] = list(outcome.transcript)
        return state

    def finish_round(self, round_index: int, figures: dict[str, Any]) -> RoundState:
        state = self.round(round_index)
        state.figures = figures
        state.finished = True
        masses = figures.get("masses") or {}
        for agent_id, mass in masses.items():
            state.archetypes.setdefault(agent_id, ArchetypeRow(agent_id)).mass = mass
        return state

    @property
    def finished_rounds(self) -> list[RoundState]:
        return [r for r in self.rounds if r.finished]
