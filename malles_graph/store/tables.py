"""SQLModel tables of a run: runs, rounds, archetypes, decisions, transcript turns, metrics.

One set of tables for every scenario kind (retail, economist, wholesale): kind-specific figures
live in the ``summary_json`` columns and the metrics table. Natural keys carry unique constraints
((run, round), (run, round, agent), ...): the writers
replace rows by key, so a resumed run that redoes a decision never duplicates it.
JSON columns hold small per-option mappings (demand, prices, m) as text, readable by any SQL tool.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class RunRow(SQLModel, table=True):
    __tablename__ = "runs"

    id: str = Field(primary_key=True, description="run id, also the LangGraph thread id")
    name: str = Field(index=True, description="scenario name")
    kind: str = "retail"
    status: str = Field(default="running", description="running | finished | failed | cancelled | interrupted")
    seed: int = 0
    backend: str = ""
    n_customers: int = 0
    archetypes: int = 0
    representatives: int = 1
    max_rounds: int = 0
    rounds_done: int = 0
    converged: bool = False
    error: str | None = Field(default=None, sa_column=Column(Text))
    scenario_json: str = Field(default="{}", sa_column=Column(Text))
    summary_json: str = Field(default="{}", sa_column=Column(Text), description="the kind's final summary")
    prompt_set_json: str = Field(default="{}", sa_column=Column(Text), description="digest and files of the prompts")
    llm_calls: int = Field(default=0, description="calls that reached the backend (decisions and dialogue turns)")
    cached_calls: int = Field(default=0, description="answers served by the response cache")
    owner: str | None = Field(default=None, description="host:pid of the process running it (while running)")
    heartbeat_at: dt.datetime | None = Field(default=None, description="last sign of life of the owner")
    created_at: dt.datetime = Field(default_factory=utcnow)
    updated_at: dt.datetime = Field(default_factory=utcnow)


class RoundRow(SQLModel, table=True):
    __tablename__ = "rounds"
    __table_args__ = (UniqueConstraint("run_id", "round", name="uq_rounds_run_round"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="runs.id", index=True)
    round: int
    n_decisions: int = 0
    n_failed: int = 0
    failed_share: float = 0.0
    distance: float = 0.0
    converged: bool = False
    demand_json: str = Field(default="{}", sa_column=Column(Text))
    prices_json: str = Field(default="{}", sa_column=Column(Text))
    mu_json: str = Field(default="{}", sa_column=Column(Text))
    m_json: str = Field(default="{}", sa_column=Column(Text))
    figures_json: str = Field(default="{}", sa_column=Column(Text))
    summary_json: str = Field(default="{}", sa_column=Column(Text), description="the kind's round summary")
    finished_at: dt.datetime = Field(default_factory=utcnow)


class ArchetypeRow(SQLModel, table=True):
    __tablename__ = "archetypes"
    __table_args__ = (UniqueConstraint("run_id", "archetype", name="uq_archetypes_run_archetype"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="runs.id", index=True)
    archetype: int
    size: int
    mass: float
    centroid_json: str = Field(default="{}", sa_column=Column(Text))
    representatives_json: str = Field(default="[]", sa_column=Column(Text))


class DecisionRow(SQLModel, table=True):
    __tablename__ = "decisions"
    __table_args__ = (UniqueConstraint("run_id", "round", "agent_id", name="uq_decisions_run_round_agent"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="runs.id", index=True)
    round: int
    agent_id: str
    archetype: int
    weight: float
    ok: bool
    choice: str | None = None
    quantity: float = 0.0
    error: str | None = Field(default=None, sa_column=Column(Text))
    agreement: float | None = None
    llm_calls: int = 0
    cached_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    details_json: str = Field(default="{}", sa_column=Column(Text))
    created_at: dt.datetime = Field(default_factory=utcnow)


class TranscriptTurnRow(SQLModel, table=True):
    __tablename__ = "transcript_turns"
    __table_args__ = (UniqueConstraint("run_id", "round", "agent_id", "seq", name="uq_turns_run_round_agent_seq"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="runs.id", index=True)
    round: int
    agent_id: str
    seq: int
    role: str
    kind: str = "turn"
    text: str = Field(default="", sa_column=Column(Text))
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    cached: bool = False


class MetricRow(SQLModel, table=True):
    __tablename__ = "metrics"
    __table_args__ = (UniqueConstraint("run_id", "round", "name", name="uq_metrics_run_round_name"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="runs.id", index=True)
    round: int
    name: str
    value: float


TABLES = {
    "runs": RunRow,
    "rounds": RoundRow,
    "archetypes": ArchetypeRow,
    "decisions": DecisionRow,
    "transcript_turns": TranscriptTurnRow,
    "metrics": MetricRow,
}
