"""The one recorder: writes run events of every scenario kind through the repository.

The generic runner hands it every event (before the CLI or the TUI sees it), so what a front
end shows is already stored. Writes replace by natural key (see :mod:`malles_graph.events`),
so a decision redone after a crash or a resume is stored once.
"""

from __future__ import annotations

import json

from sqlalchemy.engine import Engine

from malles_graph.events import (
    DecisionFinished,
    PopulationPrepared,
    RoundFinished,
    RunEvent,
    RunFinished,
    RunStarted,
    TurnStreamed,
)
from malles_graph.store import repository as repo


class RunRecorder:
    """Writes the events of one run (``run_id``) to the store on ``engine``."""

    def __init__(self, engine: Engine, run_id: str) -> None:
        self.engine = engine
        self.run_id = run_id
        self.round = 0  # the current round: turns without one belong to it

    def write(self, event: RunEvent) -> None:
        """Store what ``event`` says (events that only inform, such as Message, store nothing)."""
        if isinstance(event, RunStarted):
            if event.prompt_set:
                repo.update_run(self.engine, self.run_id, prompt_set_json=json.dumps(event.prompt_set))
        elif isinstance(event, DecisionFinished):
            repo.record_decision(
                self.engine, self.run_id, event.round, event.archetype, event.weight, event.outcome(),
                cached_calls=event.cached_calls,
            )
        elif isinstance(event, TurnStreamed):
            if event.seq is not None:
                round_ = self.round if event.round is None else event.round
                repo.record_turn(self.engine, self.run_id, round_, event.seq, event.turn)
        elif isinstance(event, RoundFinished):
            repo.record_round(self.engine, self.run_id, event.round, event.metrics, event.summary)
        elif isinstance(event, PopulationPrepared):
            repo.save_archetypes(self.engine, self.run_id, event.archetypes)
            repo.update_run(self.engine, self.run_id, n_customers=event.n_customers)
        elif isinstance(event, RunFinished):
            repo.release_run(
                self.engine, self.run_id, event.status, event.reason,
                summary_json=json.dumps(event.summary, default=str),
            )
        if getattr(event, "type", "") == "round_started":
            self.round = event.round  # type: ignore[union-attr]
