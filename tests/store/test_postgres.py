"""The run store and the LangGraph checkpointer on a real PostgreSQL server started by the tests."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from malles_graph.graphs.run import run_scenario

from malles_graph.agents import AgentOutcome
from malles_graph.scenario import Scenario
from malles_graph.store import make_engine
from malles_graph.store.export import export_run
from malles_graph.store.repository import create_run, load_decisions, record_decision
from malles_graph.store.tables import RunRow
from tests.population.responders import scripted_decision_client

pytestmark = pytest.mark.postgres


def test_decisions_are_replaced_not_duplicated_on_postgres(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    create_run(engine, RunRow(id="r1", name="x"))
    for quantity in (1, 2):
        record_decision(engine, "r1", 1, 0, 0.5, AgentOutcome(agent_id="a", ok=True, choice="p", quantity=quantity))
    rows = load_decisions(engine, "r1")
    assert len(rows) == 1 and rows[0].quantity == 2


def test_run_and_resume_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    scenario = Scenario.model_validate(
        {
            "name": "pg",
            "backend": {"name": "local", "cache": False, "max_concurrency": 3},
            "population": {"n_customers": 300, "archetypes": 3},
            "decision": {"debate_rounds": 0, "retrieval": False},
            "mean_field": {"max_rounds": 2, "epsilon": 1e-9},
            "store": {"url": postgres_url},
        }
    )
    summary = run_scenario(scenario, client=scripted_decision_client())
    assert summary.status == "finished" and summary.decisions == 6 and len(summary.rounds) == 2
    assert summary.store_url.startswith("postgresql+psycopg://")
    client = scripted_decision_client()
    again = run_scenario(scenario, run_id=summary.run_id, resume=True, client=client)
    assert again.decisions == 6 and client.calls == 0
    files = export_run(make_engine(postgres_url), summary.run_id, tmp_path, "parquet")
    decisions = pl.read_parquet(next(f for f in files if f.name == "decisions.parquet"))
    assert decisions.height == 6
    # the PostgresSaver wrote its checkpoints into the same database
    import psycopg

    with psycopg.connect(postgres_url) as conn:
        n = conn.execute("SELECT COUNT(*) FROM checkpoints WHERE thread_id = %s", (summary.run_id,)).fetchone()[0]
    assert n > 0
