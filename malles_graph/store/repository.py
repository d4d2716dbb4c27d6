"""Reading and writing run rows. Writers replace by natural key, so replays never duplicate."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Sequence

from sqlalchemy import delete, func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from malles_graph.agents import AgentOutcome
from malles_graph.population.archetypes import Archetype
from malles_graph.population.reporters import RoundReport
from malles_graph.store.engine import StoreError
from malles_graph.store.tables import (
    ArchetypeRow,
    DecisionRow,
    MetricRow,
    RoundRow,
    RunRow,
    TranscriptTurnRow,
    utcnow,
)


def new_run_id(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:32] or "run"
    return f"{slug}-{utcnow():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


# -- runs ---------------------------------------------------------------------------------------
def create_run(engine: Engine, run: RunRow) -> RunRow:
    with Session(engine) as session:
        if session.get(RunRow, run.id) is not None:
            raise StoreError(f"run {run.id!r} already exists; resume it with --resume {run.id}")
        session.add(run)
        session.commit()
        session.refresh(run)
        return run


def get_run(engine: Engine, run_id: str) -> RunRow:
    with Session(engine) as session:
        run = session.get(RunRow, run_id)
        if run is None:
            known = session.exec(select(RunRow.id).order_by(RunRow.created_at.desc()).limit(5)).all()
            hint = f"; recent runs: {', '.join(known)}" if known else "; the store holds no runs"
            raise StoreError(f"no run {run_id!r} in the store{hint}")
        return run


def list_runs(engine: Engine, limit: int | None = None) -> list[RunRow]:
    with Session(engine) as session:
        query = select(RunRow).order_by(RunRow.created_at.desc())
        if limit:
            query = query.limit(limit)
        return list(session.exec(query).all())


def update_run(engine: Engine, run_id: str, **fields: object) -> None:
    with Session(engine) as session:
        run = session.get(RunRow, run_id)
        if run is None:
            raise StoreError(f"no run {run_id!r} in the store")
        for key, value in fields.items():
            setattr(run, key, value)
        run.updated_at = utcnow()
        session.add(run)
        session.commit()


# -- archetypes ---------------------------------------------------------------------------------
def save_archetypes(engine: Engine, run_id: str, archetypes: Sequence[Archetype]) -> None:
    with Session(engine) as session:
        session.exec(delete(ArchetypeRow).where(ArchetypeRow.run_id == run_id))
        for a in archetypes:
            session.add(
                ArchetypeRow(
                    run_id=run_id,
                    archetype=a.index,
                    size=a.size,
                    mass=a.mass,
                    centroid_json=json.dumps(a.centroid),
                    representatives_json=json.dumps(a.representatives),
                )
            )
        session.commit()


def load_archetypes(engine: Engine, run_id: str) -> list[ArchetypeRow]:
    with Session(engine) as session:
        return list(
            session.exec(select(ArchetypeRow).where(ArchetypeRow.run_id == run_id).order_by(ArchetypeRow.archetype))
        )


# -- decisions and rounds -----------------------------------------------------------------------
def record_decision(
    engine: Engine, run_id: str, round: int, archetype: int, weight: float, outcome: AgentOutcome
) -> None:
    """Write (or replace) the decision of (run, round, agent) and its transcript turns, in one transaction."""
    key = (run_id, round, outcome.agent_id)
    with Session(engine) as session:
        session.exec(
            delete(TranscriptTurnRow).where(
                TranscriptTurnRow.run_id == key[0], TranscriptTurnRow.round == key[1], TranscriptTurnRow.agent_id == key[2]
            )
        )
        session.exec(
            delete(DecisionRow).where(
                DecisionRow.run_id == key[0], DecisionRow.round == key[1], DecisionRow.agent_id == key[2]
            )
        )
        session.add(
            DecisionRow(
                run_id=run_id,
                round=round,
                agent_id=outcome.agent_id,
                archetype=archetype,
                weight=weight,
                ok=outcome.ok,
                choice=outcome.choice,
                quantity=outcome.quantity,
                error=outcome.error,
                agreement=outcome.agreement,
                llm_calls=outcome.llm_calls,
                prompt_tokens=outcome.prompt_tokens,
                completion_tokens=outcome.completion_tokens,
                details_json=json.dumps(outcome.details, default=str),
            )
        )
        for seq, turn in enumerate(outcome.transcript):
            session.add(
                TranscriptTurnRow(
                    run_id=run_id,
                    round=round,
                    agent_id=outcome.agent_id,
                    seq=seq,
                    role=turn.role,
                    kind=turn.kind,
                    text=turn.text,
                    prompt_tokens=turn.prompt_tokens,
                    completion_tokens=turn.completion_tokens,
                    latency_s=turn.latency_s,
                    cached=turn.cached,
                )
            )
        session.commit()


def record_round(engine: Engine, run_id: str, report: RoundReport, metrics: dict[str, float]) -> None:
    """Write (or replace) the round row and its metrics, and advance the run's counters."""
    with Session(engine) as session:
        session.exec(delete(MetricRow).where(MetricRow.run_id == run_id, MetricRow.round == report.round))
        session.exec(delete(RoundRow).where(RoundRow.run_id == run_id, RoundRow.round == report.round))
        session.add(
            RoundRow(
                run_id=run_id,
                round=report.round,
                n_decisions=report.n_decisions,
                n_failed=report.n_failed,
                failed_share=report.failed_share,
                distance=report.distance,
                converged=report.converged,
                demand_json=json.dumps(report.demand),
                prices_json=json.dumps(report.prices),
                mu_json=json.dumps(report.mu),
                m_json=json.dumps(report.m),
                figures_json=json.dumps(report.figures),
            )
        )
        for name, value in sorted(metrics.items()):
            session.add(MetricRow(run_id=run_id, round=report.round, name=name, value=float(value)))
        run = session.get(RunRow, run_id)
        if run is not None:
            run.rounds_done = max(run.rounds_done, report.round)
            run.converged = report.converged
            run.updated_at = utcnow()
            session.add(run)
        session.commit()


def load_rounds(engine: Engine, run_id: str) -> list[RoundReport]:
    with Session(engine) as session:
        rows = session.exec(select(RoundRow).where(RoundRow.run_id == run_id).order_by(RoundRow.round)).all()
        return [
            RoundReport(
                round=r.round,
                n_decisions=r.n_decisions,
                n_failed=r.n_failed,
                failed_share=r.failed_share,
                distance=r.distance,
                converged=r.converged,
                demand=json.loads(r.demand_json),
                prices=json.loads(r.prices_json),
                mu=json.loads(r.mu_json),
                m=json.loads(r.m_json),
                figures=json.loads(r.figures_json),
            )
            for r in rows
        ]


def decision_counts(engine: Engine, run_id: str) -> dict[int, tuple[int, int]]:
    """Round -> (decisions, failed) as stored."""
    counts: dict[int, tuple[int, int]] = {}
    with Session(engine) as session:
        rows = session.exec(
            select(DecisionRow.round, DecisionRow.ok, func.count())
            .where(DecisionRow.run_id == run_id)
            .group_by(DecisionRow.round, DecisionRow.ok)
        ).all()
    for rnd, ok, n in rows:
        total, failed = counts.get(int(rnd), (0, 0))
        counts[int(rnd)] = (total + int(n), failed + (0 if ok else int(n)))
    return counts


def load_decisions(engine: Engine, run_id: str, round: int | None = None) -> list[DecisionRow]:
    with Session(engine) as session:
        query = select(DecisionRow).where(DecisionRow.run_id == run_id)
        if round is not None:
            query = query.where(DecisionRow.round == round)
        return list(session.exec(query.order_by(DecisionRow.round, DecisionRow.agent_id)))


class StoreRecorder:
    """The :class:`~malles_graph.population.recorder.Recorder` on a SQLModel engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def decision(self, run_id: str, round: int, archetype: int, weight: float, outcome: AgentOutcome) -> None:
        record_decision(self.engine, run_id, round, archetype, weight, outcome)

    def round(self, run_id: str, report: RoundReport, metrics: dict[str, float]) -> None:
        record_round(self.engine, run_id, report, metrics)
