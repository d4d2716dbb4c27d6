"""Reading past runs for the History screen (blocking calls: the screen runs them in thread workers)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

from malles_graph.agents import TranscriptTurn, TurnKind
from malles_graph.store.engine import StoreError, default_url, is_sqlite, normalise_url, safe_url, sqlite_path


@dataclass
class RunDetail:
    run: Any  # RunRow
    rounds: list[Any]  # RoundReport
    decisions: list[Any]  # DecisionRow
    archetypes: list[Any]  # ArchetypeRow


def open_store(url: str | None) -> Any:
    """An engine on the run store; raises StoreError with the URL when it cannot be opened.

    A SQLite file that does not exist yet is reported, not created, so a mistyped path
    does not leave an empty database behind.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from malles_graph.store.engine import check_reachable, make_engine

    url = normalise_url(url or default_url())
    if is_sqlite(url):
        path = sqlite_path(url)
        if path is not None and not Path(path).exists():
            raise StoreError(f"no run database at {path} (no run has been stored there yet)")
    url = check_reachable(url)
    try:
        return make_engine(url)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot open the run store {safe_url(url)}: {exc}") from None


def list_runs(engine: Any) -> list[Any]:
    from sqlalchemy.exc import SQLAlchemyError

    from malles_graph.store import repository as repo

    try:
        return repo.list_runs(engine)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read runs from {safe_url(str(engine.url))}: {exc}") from None


def prompt_digest(run: Any) -> str:
    """The short digest of a stored run's prompt set ('' for runs stored before prompt sets were recorded)."""
    return _short_digest(_prompt_record(run))


def persona_digest(run: Any) -> str:
    """The short digest of the persona set a stored run read ('' when its population was not a persona file)."""
    personas = _prompt_record(run).get("personas")
    return _short_digest(personas if isinstance(personas, dict) else {})


def _prompt_record(run: Any) -> dict[str, Any]:
    import json

    try:
        record = json.loads(run.prompt_set_json or "{}")
    except (ValueError, AttributeError):  # a hand-edited row: shown as no digest, never a crash
        return {}
    return record if isinstance(record, dict) else {}


def _short_digest(record: dict[str, Any]) -> str:
    from malles_graph.prompt_sets import SHORT

    return str(record.get("digest") or "")[:SHORT]


def run_detail(engine: Any, run_id: str) -> RunDetail:
    from malles_graph.store import repository as repo

    return RunDetail(
        run=repo.get_run(engine, run_id),
        rounds=repo.load_rounds(engine, run_id),
        decisions=repo.load_decisions(engine, run_id),
        archetypes=repo.load_archetypes(engine, run_id),
    )


def transcript(engine: Any, run_id: str, round_index: int, agent_id: str) -> list[TranscriptTurn]:
    from sqlmodel import Session, select

    from malles_graph.store.tables import TranscriptTurnRow

    with Session(engine) as session:
        rows = session.exec(
            select(TranscriptTurnRow)
            .where(
                TranscriptTurnRow.run_id == run_id,
                TranscriptTurnRow.round == round_index,
                TranscriptTurnRow.agent_id == agent_id,
            )
            .order_by(TranscriptTurnRow.seq)
        ).all()
    return [
        TranscriptTurn(
            agent_id=r.agent_id,
            role=r.role,
            round=0,  # the store keeps the order of turns, not their debate round
            text=r.text,
            kind=r.kind if r.kind in get_args(TurnKind) else "turn",
            prompt_tokens=r.prompt_tokens,
            completion_tokens=r.completion_tokens,
            latency_s=r.latency_s,
            cached=r.cached,
        )
        for r in rows
    ]


def export(engine: Any, run_id: str, folder: Path, fmt: str) -> list[Path]:
    from malles_graph.store.export import export_run

    return export_run(engine, run_id, folder, fmt)  # type: ignore[arg-type]
