"""Wholesale runs read back from the run store (recorded like every run by the one recorder).

:class:`WholesaleRun` is what ``malles wholesale run`` / ``discover`` and the tests read: the
rule, the orders, the comparison table, the per-period records and the demand items come from
the run's stored summary, the dialogue from its stored transcript turns. ``folder``
(``<runs_dir>/<run_id>/``) holds the extra outputs written later, such as ``discovery.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from malles_graph.errors import MallesError
from malles_graph.paths import runs_dir
from malles_graph.scenario import Scenario
from malles_graph.store.engine import StoreError
from malles_graph.wholesale.demand import ItemDemand


@dataclass
class WholesaleRun:
    run_id: str
    meta: dict[str, Any]
    transcript: list[dict[str, Any]]
    attempts: list[dict[str, Any]]
    table: pl.DataFrame
    orders: pl.DataFrame
    items: list[ItemDemand]
    scenario: Scenario

    @property
    def ok(self) -> bool:
        return bool(self.meta.get("ok"))

    @property
    def rule(self) -> dict[str, Any] | None:
        return self.meta.get("rule")

    @property
    def folder(self) -> Path:
        """Where extra outputs of this run go (created on first use)."""
        folder = runs_dir() / self.run_id
        folder.mkdir(parents=True, exist_ok=True)
        return folder


def run_id_of(ref: str | Path) -> str:
    """A run id, or the folder of a run (its name is the id)."""
    path = Path(ref)
    return path.name if path.is_dir() else str(ref)


def load_run(ref: str | Path, store_url: str | None = None) -> WholesaleRun:
    """The wholesale run ``ref`` (a run id or its folder) from the store at ``store_url`` (the default store when empty)."""
    from malles_graph.store import make_engine
    from malles_graph.store.repository import get_run, load_turns
    from malles_graph.store.summary import summarise

    run_id = run_id_of(ref)
    engine = make_engine(store_url)
    try:
        row = get_run(engine, run_id)
    except StoreError as exc:
        raise MallesError(f"no wholesale run {str(ref)!r}: {exc}") from None
    if row.kind != "wholesale":
        raise MallesError(f"run {run_id!r} is a {row.kind} run, not a wholesale run")
    summary = summarise(engine, run_id, str(engine.url))
    figures = summary.summary
    comparison = figures.get("held_out_comparison", figures.get("table", []))  # "table" before 0.6
    meta = {
        "run_id": run_id, "kind": "wholesale", "scenario": row.name, "created": row.created_at.isoformat(),
        "backend": row.backend, "seed": row.seed, "status": row.status, "ok": bool(figures.get("ok")),
        "error": figures.get("error") or (row.error if row.status != "finished" else None),
        "rule": figures.get("rule"), "orders": figures.get("orders", {}), "llm_calls": summary.llm_calls,
        "cached": summary.cached, "table": comparison,
    }
    transcript = [
        {"agent_id": t.agent_id, "role": t.role, "round": t.round, "text": t.text, "kind": t.kind,
         "prompt_tokens": t.prompt_tokens, "completion_tokens": t.completion_tokens, "latency_s": t.latency_s,
         "cached": t.cached}
        for t in load_turns(engine, run_id)
    ]
    return WholesaleRun(
        run_id=run_id,
        meta=meta,
        transcript=transcript,
        attempts=list(figures.get("attempts", [])),
        table=pl.DataFrame(comparison, infer_schema_length=None),
        orders=pl.DataFrame(figures.get("records", []), infer_schema_length=None),
        items=[ItemDemand.from_dict(d) for d in figures.get("items", [])],
        scenario=Scenario.model_validate_json(row.scenario_json),
    )
