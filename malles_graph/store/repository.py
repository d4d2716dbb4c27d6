"""Reading and writing run rows, for every scenario kind. Writers replace by natural key, so replays never duplicate.

Run ownership: the process running a run claims it (``owner`` = host:pid, ``heartbeat_at``);
a second process cannot claim a run whose owner is alive (a second ``--resume`` is refused),
and a ``running`` run whose owner died (SIGKILL, SIGTERM, power cut) reads back as
``interrupted``: same host, the pid is gone; another host, no heartbeat for ``STALE_AFTER``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
import socket
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import case, delete, func, or_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from malles_graph.agents import AgentOutcome, TranscriptTurn
from malles_graph.population.reporters import RoundReport
from malles_graph.redact import redact, redact_optional
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
from malles_graph.usage import TokenUsage

STALE_AFTER = dt.timedelta(seconds=90)  # a live owner beats every few seconds (malles_graph.graphs.run.handle.HEARTBEAT_S)


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
    return _settle(engine, run)


def list_runs(engine: Engine, limit: int | None = None) -> list[RunRow]:
    with Session(engine) as session:
        query = select(RunRow).order_by(RunRow.created_at.desc())
        if limit:
            query = query.limit(limit)
        rows = list(session.exec(query).all())
    return [_settle(engine, r) for r in rows]


# -- ownership ----------------------------------------------------------------------------------
def this_owner() -> str:
    """host:pid of this process, as written in a run it owns."""
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_alive(owner: str | None, heartbeat_at: dt.datetime | None, now: dt.datetime | None = None) -> bool:
    """Whether the process named ``owner`` still runs: the pid on this host, the heartbeat elsewhere."""
    if not owner:
        return False
    now = now or utcnow()
    beat = heartbeat_at.replace(tzinfo=dt.UTC) if heartbeat_at and heartbeat_at.tzinfo is None else heartbeat_at
    fresh = beat is not None and now - beat < STALE_AFTER
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return fresh
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a process of another user holds the pid: alive only if it keeps beating
        return fresh
    return fresh or int(pid) == os.getpid()


def _settle(engine: Engine, run: RunRow) -> RunRow:
    """A ``running`` run whose owner died is marked ``interrupted`` (stored, so every reader agrees)."""
    if run.status != "running" or owner_alive(run.owner, run.heartbeat_at):
        return run
    reason = f"the process running it ({run.owner or 'unknown'}) stopped without finishing"
    with Session(engine) as session:
        result = session.exec(  # type: ignore[call-overload]
            update(RunRow)
            .where(RunRow.id == run.id, RunRow.status == "running", _same_owner(run.owner))
            .values(status="interrupted", error=reason, owner=None, updated_at=utcnow())
        )
        session.commit()
    if result.rowcount:
        run.status, run.error, run.owner = "interrupted", reason, None
    return run


def _same_owner(owner: str | None) -> Any:
    return RunRow.owner.is_(None) if owner is None else RunRow.owner == owner  # type: ignore[union-attr]


def claim_run(engine: Engine, run_id: str) -> RunRow:
    """Make this process the run's owner (status ``running``); refused while another live process owns it.

    A compare-and-set on the previous owner, so of two processes resuming the same run at
    the same moment exactly one wins.
    """
    run = get_run(engine, run_id)
    if run.status == "running" and owner_alive(run.owner, run.heartbeat_at):
        raise StoreError(
            f"run {run_id!r} is already running (process {run.owner}); wait for it to end or stop it first"
        )
    me, now = this_owner(), utcnow()
    with Session(engine) as session:
        result = session.exec(  # type: ignore[call-overload]
            update(RunRow)
            .where(RunRow.id == run_id, _same_owner(run.owner))
            .values(status="running", error=None, owner=me, heartbeat_at=now, updated_at=now)
        )
        session.commit()
    if not result.rowcount:
        raise StoreError(f"run {run_id!r} was just claimed by another process; it is already running")
    return get_run(engine, run_id)


def heartbeat(engine: Engine, run_id: str) -> None:
    """The owner's sign of life."""
    with Session(engine) as session:
        session.exec(  # type: ignore[call-overload]
            update(RunRow).where(RunRow.id == run_id, RunRow.owner == this_owner()).values(heartbeat_at=utcnow())
        )
        session.commit()


def add_calls(engine: Engine, run_id: str, made: int, cached: int) -> None:
    """Add LLM answers counted by the run's client: from the backend (``made``) and from the response cache."""
    with Session(engine) as session:
        session.exec(  # type: ignore[call-overload]
            update(RunRow).where(RunRow.id == run_id).values(
                llm_calls=func.coalesce(RunRow.llm_calls, 0) + made,
                cached_calls=func.coalesce(RunRow.cached_calls, 0) + cached,
            )
        )
        session.commit()


def release_run(engine: Engine, run_id: str, status: str, reason: str | None = None, **fields: object) -> None:
    """End this process's ownership with the run's final status (finished, failed, cancelled, interrupted)."""
    update_run(engine, run_id, status=status, error=redact_optional(reason or None), owner=None, **fields)


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
def save_archetypes(engine: Engine, run_id: str, archetypes: Sequence[Any]) -> None:
    """Replace the run's archetypes (objects with index, size, mass, centroid, representatives)."""
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
    engine: Engine, run_id: str, round: int, archetype: int, weight: float, outcome: AgentOutcome,
    cached_calls: int | None = None,
) -> None:
    """Write (or replace) the decision of (run, round, agent) and its transcript turns, in one transaction."""
    if cached_calls is None:
        cached_calls = sum(1 for t in outcome.transcript if t.cached)
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
                error=redact_optional(outcome.error),  # secrets never stored
                agreement=outcome.agreement,
                llm_calls=outcome.llm_calls,
                cached_calls=cached_calls,
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
                    text=redact(turn.text),
                    prompt_tokens=turn.prompt_tokens,
                    cached_prompt_tokens=turn.cached_prompt_tokens,
                    completion_tokens=turn.completion_tokens,
                    latency_s=turn.latency_s,
                    cached=turn.cached,
                )
            )
        session.commit()


def record_turn(engine: Engine, run_id: str, round: int, seq: int, turn: TranscriptTurn) -> None:
    """Write (or replace) one transcript turn at (run, round, agent, seq): dialogue turns outside decisions."""
    with Session(engine) as session:
        session.exec(
            delete(TranscriptTurnRow).where(
                TranscriptTurnRow.run_id == run_id, TranscriptTurnRow.round == round,
                TranscriptTurnRow.agent_id == turn.agent_id, TranscriptTurnRow.seq == seq,
            )
        )
        session.add(
            TranscriptTurnRow(
                run_id=run_id, round=round, agent_id=turn.agent_id, seq=seq, role=turn.role, kind=turn.kind,
                text=redact(turn.text), prompt_tokens=turn.prompt_tokens, cached_prompt_tokens=turn.cached_prompt_tokens,
                completion_tokens=turn.completion_tokens,
                latency_s=turn.latency_s, cached=turn.cached,
            )
        )
        session.commit()


def record_round(
    engine: Engine, run_id: str, round: int | RoundReport, metrics: dict[str, float],
    summary: dict[str, Any] | None = None,
) -> None:
    """Write (or replace) the round row and its metrics, and advance the run's counters.

    ``summary`` is the kind's round summary (JSON-able); a population round passes its
    :class:`RoundReport` (as ``round``), whose fields also fill the round columns.
    """
    if isinstance(round, RoundReport):
        summary, round = round.model_dump(mode="json"), round.round
    summary = dict(summary or {})
    number = int(round)

    def pick(key: str, default: float) -> float:
        value = summary.get(key, metrics.get(key, default))
        return float(value) if isinstance(value, int | float) else default

    n_decisions = int(pick("n_decisions", metrics.get("decisions", 0)))
    n_failed = int(pick("n_failed", metrics.get("failed", 0)))
    converged = bool(summary.get("converged", False))
    with Session(engine) as session:
        session.exec(delete(MetricRow).where(MetricRow.run_id == run_id, MetricRow.round == number))
        session.exec(delete(RoundRow).where(RoundRow.run_id == run_id, RoundRow.round == number))
        session.add(
            RoundRow(
                run_id=run_id,
                round=number,
                n_decisions=n_decisions,
                n_failed=n_failed,
                failed_share=pick("failed_share", n_failed / n_decisions if n_decisions else 0.0),
                distance=pick("distance", 0.0),
                converged=converged,
                demand_json=json.dumps(summary.get("demand", {})),
                prices_json=json.dumps(summary.get("prices", {})),
                mu_json=json.dumps(summary.get("mu", {})),
                m_json=json.dumps(summary.get("m", {})),
                figures_json=json.dumps(summary.get("figures", {})),
                summary_json=json.dumps(summary, default=str),
            )
        )
        for name, value in sorted(metrics.items()):
            session.add(MetricRow(run_id=run_id, round=number, name=name, value=float(value)))
        run = session.get(RunRow, run_id)
        if run is not None:
            run.rounds_done = max(run.rounds_done, number)
            run.converged = converged
            run.updated_at = utcnow()
            session.add(run)
        session.commit()


class RoundRecord(BaseModel):
    """One stored round of any kind: the common columns, its metrics and the kind's summary."""

    model_config = ConfigDict(extra="forbid")

    round: int
    n_decisions: int = 0
    n_failed: int = 0
    failed_share: float = 0.0
    distance: float = 0.0
    converged: bool = False
    metrics: dict[str, float] = Field(default_factory=dict)
    summary: dict[str, Any] = Field(default_factory=dict)

    def report(self) -> RoundReport | None:
        """The population round report, when this round is one (retail)."""
        try:
            return RoundReport.model_validate(self.summary)
        except ValueError:
            return None


def load_rounds(engine: Engine, run_id: str) -> list[RoundRecord]:
    with Session(engine) as session:
        rows = session.exec(select(RoundRow).where(RoundRow.run_id == run_id).order_by(RoundRow.round)).all()
        metrics = session.exec(select(MetricRow).where(MetricRow.run_id == run_id)).all()
    by_round: dict[int, dict[str, float]] = {}
    for m in metrics:
        by_round.setdefault(m.round, {})[m.name] = m.value
    return [
        RoundRecord(
            round=r.round, n_decisions=r.n_decisions, n_failed=r.n_failed, failed_share=r.failed_share,
            distance=r.distance, converged=r.converged, metrics=by_round.get(r.round, {}),
            summary=json.loads(r.summary_json or "{}"),
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


def load_turns(engine: Engine, run_id: str, round: int | None = None, agent_id: str | None = None
               ) -> list[TranscriptTurnRow]:
    """Stored transcript turns, in (round, agent, seq) order."""
    with Session(engine) as session:
        query = select(TranscriptTurnRow).where(TranscriptTurnRow.run_id == run_id)
        if round is not None:
            query = query.where(TranscriptTurnRow.round == round)
        if agent_id is not None:
            query = query.where(TranscriptTurnRow.agent_id == agent_id)
        return list(session.exec(query.order_by(TranscriptTurnRow.round, TranscriptTurnRow.agent_id,
                                                TranscriptTurnRow.seq)))


def load_decisions(engine: Engine, run_id: str, round: int | None = None) -> list[DecisionRow]:
    with Session(engine) as session:
        query = select(DecisionRow).where(DecisionRow.run_id == run_id)
        if round is not None:
            query = query.where(DecisionRow.round == round)
        return list(session.exec(query.order_by(DecisionRow.round, DecisionRow.agent_id)))


USAGE_GROUPS = ("role", "round", "agent_id")


def token_usage(engine: Engine, run_id: str, by: str = "role") -> dict[Any, TokenUsage]:
    """Tokens of the run's stored LLM turns grouped by ``role``, ``round`` or ``agent_id`` (any kind of run).

    A turn is an LLM call when it has tokens (computed turns and notes have none), as in
    :func:`malles_graph.usage.turn_usage`; the sums are done by the database.
    """
    if by not in USAGE_GROUPS:
        raise ValueError(f"usage is grouped by one of {', '.join(USAGE_GROUPS)}, not {by!r}")
    t = TranscriptTurnRow
    column = getattr(t, by)
    is_call = or_(t.prompt_tokens > 0, t.completion_tokens > 0)
    with Session(engine) as session:
        rows = session.exec(  # type: ignore[call-overload]
            select(
                column, func.count(), func.sum(t.prompt_tokens), func.sum(t.cached_prompt_tokens),
                func.sum(t.completion_tokens), func.sum(case((t.cached, 1), else_=0)),
            )
            .where(t.run_id == run_id, is_call)
            .group_by(column)
            # roles in first-seen order (as the in-memory sums); rounds and agents sorted
            .order_by(func.min(t.id) if by == "role" else column)
        ).all()
    return {
        key: TokenUsage(calls=int(n), prompt_tokens=int(p or 0), cached_prompt_tokens=int(c or 0),
                        completion_tokens=int(o or 0), replayed=int(r or 0))
        for key, n, p, c, o, r in rows
    }
