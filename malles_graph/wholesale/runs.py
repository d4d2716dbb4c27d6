"""Wholesale run folders: ``<runs_dir>/<run_id>/``.

=====================  =============================================================
file                   content
=====================  =============================================================
run.json               id, scenario, backend, ok/error, rule, orders, summary table
scenario.yaml          the scenario as run (after overrides)
transcript.json        the dialogue: TranscriptTurn objects in order
attempts.json          every structured rule answer with its validation error
items.json             the demand series used (history and held-out periods)
simulation.parquet     one row per policy: profit, fill rate, stock-outs, leftover
orders.parquet         one row per policy, item and period: state variables (x_*), order, sales
discovery.json         written by ``malles wholesale discover``: the Pareto front and the choice
=====================  =============================================================
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import yaml
from pydantic import BaseModel

from malles_graph.errors import MallesError
from malles_graph.paths import runs_dir
from malles_graph.scenario import Scenario
from malles_graph.wholesale.demand import ItemDemand


@dataclass
class WholesaleRun:
    run_id: str
    folder: Path
    meta: dict[str, Any]
    transcript: list[dict[str, Any]]
    attempts: list[dict[str, Any]]
    table: pl.DataFrame
    orders: pl.DataFrame
    items: list[ItemDemand]

    @property
    def ok(self) -> bool:
        return bool(self.meta.get("ok"))

    @property
    def rule(self) -> dict[str, Any] | None:
        return self.meta.get("rule")

    @property
    def scenario(self) -> Scenario:
        return Scenario.model_validate(yaml.safe_load((self.folder / "scenario.yaml").read_text(encoding="utf-8")))


def new_run_id() -> str:
    return f"wholesale-{dt.datetime.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def save_run(scenario: Scenario, state: dict[str, Any], run_id: str | None = None) -> WholesaleRun:
    run_id = run_id or new_run_id()
    folder = runs_dir() / run_id
    folder.mkdir(parents=True, exist_ok=True)
    transcript = _plain(state.get("transcript", []))
    attempts = _plain(state.get("attempts", []))
    table = state.get("table", [])
    meta = {
        "run_id": run_id,
        "kind": "wholesale",
        "scenario": scenario.name,
        "created": dt.datetime.now().isoformat(timespec="seconds"),
        "backend": scenario.backend.name,
        "model": scenario.backend.model,
        "seed": scenario.seed,
        "ok": bool(state.get("ok")),
        "error": state.get("error"),
        "rule": state.get("rule"),
        "orders": state.get("orders", {}),
        "llm_calls": state.get("llm_calls", 0),
        "table": table,
    }
    (folder / "run.json").write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
    (folder / "scenario.yaml").write_text(
        yaml.safe_dump(scenario.model_dump(mode="json"), sort_keys=False), encoding="utf-8"
    )
    (folder / "transcript.json").write_text(json.dumps(transcript, indent=2), encoding="utf-8")
    (folder / "attempts.json").write_text(json.dumps(attempts, indent=2), encoding="utf-8")
    (folder / "items.json").write_text(json.dumps(state.get("items", []), indent=2), encoding="utf-8")
    pl.DataFrame(table).write_parquet(folder / "simulation.parquet")
    pl.DataFrame(state.get("records", []), infer_schema_length=None).write_parquet(folder / "orders.parquet")
    return load_run(folder)


def resolve_run(ref: str | Path) -> Path:
    """A run id (under runs_dir()) or a run folder path."""
    path = Path(ref)
    for candidate in (path, runs_dir() / str(ref)):
        if (candidate / "run.json").exists():
            return candidate
    raise MallesError(f"no wholesale run {str(ref)!r}: neither a folder with run.json nor a run id under {runs_dir()}")


def load_run(ref: str | Path) -> WholesaleRun:
    folder = resolve_run(ref)
    meta = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    if meta.get("kind") != "wholesale":
        raise MallesError(f"{folder}: run kind is {meta.get('kind')!r}, not 'wholesale'")
    return WholesaleRun(
        run_id=meta["run_id"],
        folder=folder,
        meta=meta,
        transcript=json.loads((folder / "transcript.json").read_text(encoding="utf-8")),
        attempts=json.loads((folder / "attempts.json").read_text(encoding="utf-8")),
        table=pl.read_parquet(folder / "simulation.parquet"),
        orders=pl.read_parquet(folder / "orders.parquet"),
        items=[ItemDemand.from_dict(d) for d in json.loads((folder / "items.json").read_text(encoding="utf-8"))],
    )
