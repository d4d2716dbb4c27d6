"""decision.retrieval on: the runner opens the scenario's Chroma memory, or refuses before any work."""

from __future__ import annotations

from pathlib import Path

import pytest
from malles_graph.graphs.run import run_scenario

from malles_graph.errors import ScenarioError
from malles_graph.scenario import Scenario
from malles_graph.store import make_engine
from tests.population.responders import scripted_decision_client
from tests.population.test_runner import small


def test_missing_memory_is_refused_before_work(tmp_path: Path) -> None:
    memory = {"path": str(tmp_path / "no-memory"), "build": False}
    scenario = small(tmp_path, decision={"retrieval": True}, memory=memory)
    with pytest.raises(ScenarioError, match="decision.retrieval is on but the memory cannot be used: no Chroma memory"):
        run_scenario(scenario, client=scripted_decision_client())
    assert not (tmp_path / "malles.sqlite").exists()


@pytest.mark.slow
def test_run_builds_the_memory_of_its_subclass(tmp_path: Path) -> None:
    # a small real subclass (220 lines before the start) keeps the memory build to seconds
    scenario: Scenario = small(tmp_path, decision={"retrieval": True, "debate_rounds": 0},
                               environment={"subclasses": ["100107"]},
                               memory={"path": str(tmp_path / "memory")}, mean_field={"max_rounds": 1})

    summary = run_scenario(scenario, client=scripted_decision_client())
    assert summary.status == "finished" and summary.decisions == 3 and summary.failed == 0
    from sqlmodel import Session, select

    from malles_graph.store.tables import TranscriptTurnRow

    with Session(make_engine(f"sqlite:///{tmp_path / 'malles.sqlite'}")) as session:
        notes = session.exec(select(TranscriptTurnRow.text).where(TranscriptTurnRow.role == "system")).all()
    assert any("neighbour episodes" in n for n in notes), notes
