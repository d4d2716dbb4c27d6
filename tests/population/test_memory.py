"""decision.retrieval on: the runner opens the scenario's Chroma memory, or refuses before any work."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from malles_graph.graphs.runner import run_scenario

from malles_graph.errors import ScenarioError
from malles_graph.scenario import Scenario
from malles_graph.store import make_engine
from tests.population.responders import scripted_decision_client
from tests.population.test_runner import small


def test_missing_memory_is_refused_before_work(tmp_path: Path) -> None:
    scenario = small(tmp_path, decision={"retrieval": True}, memory={"path": str(tmp_path / "no-memory")})
    with pytest.raises(ScenarioError, match="decision.retrieval is on but the memory cannot be used: no Chroma memory"):
        run_scenario(scenario, client=scripted_decision_client())
    assert not (tmp_path / "malles.sqlite").exists()


@pytest.mark.slow
def test_run_with_a_small_chroma_memory(tmp_path: Path) -> None:
    from malles_graph.retrieval import build_episodes, ingest, make_client, open_collection
    from malles_graph.retrieval.embedding import MiniLMEmbeddingFunction

    from malles_graph.data import tafeng

    scenario: Scenario = small(tmp_path, decision={"retrieval": True, "debate_rounds": 0},
                               memory={"path": str(tmp_path / "memory")}, mean_field={"max_rounds": 1})
    rows = tafeng.load()
    busiest = rows.filter(pl.col("date") < pl.date(2001, 2, 1)).group_by("subclass").len().sort("len").tail(1)
    episodes = build_episodes(rows.filter(pl.col("subclass") == busiest["subclass"][0]))
    episodes = episodes.filter(pl.col("date") < 20010201).tail(300)
    ef = MiniLMEmbeddingFunction()
    client, where = make_client(tmp_path / "memory")
    ingest(open_collection(client, "tafeng_transactions", where, create=True, embedding_function=ef), episodes, ef.embed)

    summary = run_scenario(scenario, client=scripted_decision_client())
    assert summary.status == "finished" and summary.decisions == 3 and summary.failed == 0
    from sqlmodel import Session, select

    from malles_graph.store.tables import TranscriptTurnRow

    with Session(make_engine(f"sqlite:///{tmp_path / 'malles.sqlite'}")) as session:
        notes = session.exec(select(TranscriptTurnRow.text).where(TranscriptTurnRow.role == "system")).all()
    assert any("neighbour episodes" in n for n in notes), notes
