"""The Recorder protocol: where the supervisor writes decisions and rounds as they happen.

Writes must be idempotent per key, because a resumed run may redo a decision whose result
was recorded but whose checkpoint write was lost to a kill: ``decision`` replaces the row of
(run, round, agent) and its transcript; ``round`` replaces the row of (run, round).
:class:`malles_graph.store.repository.StoreRecorder` is the SQLModel implementation.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from malles_graph.agents import AgentOutcome
from malles_graph.population.reporters import RoundReport


@runtime_checkable
class Recorder(Protocol):
    def decision(self, run_id: str, round: int, archetype: int, weight: float, outcome: AgentOutcome) -> None: ...

    def round(self, run_id: str, report: RoundReport, metrics: dict[str, float]) -> None: ...
