"""Run folders of the economist scenario: written step by step during a run, read back by the report.

Layout of ``<runs_dir>/economist/<timestamp>-<scenario>-<key>/``:

=====================  ==================================================================
meta.json              scenario, policies, population size, calls per step, final schedule
steps.parquet          one row per step: schedule, the three welfares, Gini, revenue, hours, regret, calls
decisions.jsonl        every LLM worker decision: step, worker, ok, hours, error
planner.jsonl          every planner action: credited observations, proposal, applied schedule, failure
votes.jsonl            every election: platforms, votes per platform, winner, failures
observations.json      every (schedule, welfare) credit: the schedule, its steps, its mean welfare
analysis.json          the welfare table (best-response equilibrium) and the near-Stackelberg check
saez.json              the Saez schedule and its per-bracket z, F, f, a(z), G(z)
=====================  ==================================================================
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from malles_graph.errors import DataError
from malles_graph.paths import runs_dir


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, float) and value != value:
        return None
    return value


def new_run_dir(scenario_name: str, key: str, base: Path | None = None) -> Path:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", scenario_name).strip("-") or "economist"
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = (base or runs_dir()) / "economist" / f"{stamp}-{slug}-{key}"
    path.mkdir(parents=True, exist_ok=True)
    return path


class RunWriter:
    """Appends a run's records as they happen; steps.parquet is rewritten at each step (small)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.steps: list[dict] = []
        path.mkdir(parents=True, exist_ok=True)
        for name in ("decisions.jsonl", "planner.jsonl", "votes.jsonl"):
            (path / name).write_text("", encoding="utf-8")

    def record(self, name: str, record: dict) -> None:
        with open(self.path / name, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(_jsonable(record)) + "\n")

    def step(self, row: dict, decisions: list[dict]) -> None:
        self.steps.append(row)
        pl.DataFrame([_jsonable(r) for r in self.steps]).write_parquet(self.path / "steps.parquet")
        for d in decisions:
            self.record("decisions.jsonl", {"step": row["step"], **d})

    def finish(self, meta: dict, analysis: dict, saez: dict, observations: list[dict]) -> None:
        for name, data in (("meta.json", meta), ("analysis.json", analysis), ("saez.json", saez),
                           ("observations.json", observations)):
            (self.path / name).write_text(json.dumps(_jsonable(data), indent=2), encoding="utf-8")


@dataclass
class RunData:
    path: Path
    meta: dict
    steps: pl.DataFrame
    planner: list[dict]
    votes: list[dict]
    analysis: dict
    saez: dict
    observations: list[dict]


def _read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def find_run(ref: str, base: Path | None = None) -> Path:
    """A run folder from a path or a run id (folder name, or its trailing key, under runs_dir()/economist)."""
    path = Path(ref)
    if path.is_dir():
        return path
    root = (base or runs_dir()) / "economist"
    matches = sorted(p for p in root.glob("*") if p.is_dir() and (p.name == ref or p.name.endswith(f"-{ref}")))
    if not matches:
        raise DataError(f"no economist run {ref!r}: not a folder, and nothing matches under {root}")
    return matches[-1]


def load_run(ref: str | Path, base: Path | None = None) -> RunData:
    path = find_run(str(ref), base)
    steps_path = path / "steps.parquet"
    if not steps_path.exists():
        raise DataError(f"{path}: no steps.parquet; is this an economist run folder?")
    meta_path = path / "meta.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
    analysis_path = path / "analysis.json"
    saez_path = path / "saez.json"
    return RunData(
        path=path,
        meta=meta,
        steps=pl.read_parquet(steps_path),
        planner=_read_jsonl(path / "planner.jsonl"),
        votes=_read_jsonl(path / "votes.jsonl"),
        analysis=json.loads(analysis_path.read_text(encoding="utf-8")) if analysis_path.exists() else {},
        saez=json.loads(saez_path.read_text(encoding="utf-8")) if saez_path.exists() else {},
        observations=json.loads((path / "observations.json").read_text(encoding="utf-8"))
        if (path / "observations.json").exists() else [],
    )


class StoreSink:
    """Mirrors an economist run into the SQLModel run store (malles_graph.store), next to the run folder.

    runs: one row (kind "economist", id = the run folder's name, status running -> finished | failed);
    rounds: one row per step (round = step; figures_json = the step's figures and schedule);
    metrics: one row per step and figure; decisions: one row per LLM worker answer
    (agent_id "worker-<index>", archetype = representative slot, choice = hours).
    """

    def __init__(self, url: str | None, run_id: str, scenario: Any, n_workers: int, archetypes: int) -> None:
        from malles_graph.store import make_engine
        from malles_graph.store.tables import RunRow

        self.engine = make_engine(url)
        self.run_id = run_id
        self._session(
            lambda s: s.add(
                RunRow(
                    id=run_id,
                    name=scenario.name,
                    kind="economist",
                    seed=scenario.seed,
                    backend=scenario.backend.name,
                    n_customers=n_workers,
                    archetypes=archetypes,
                    max_rounds=scenario.economist.steps,
                    scenario_json=scenario.model_dump_json(),
                )
            )
        )

    def _session(self, work) -> None:
        from sqlmodel import Session

        with Session(self.engine) as session:
            work(session)
            session.commit()

    def step(self, row: dict, decisions: list[Any]) -> None:
        """One step's figures and its DecisionFinished events (LLM workers only)."""
        from malles_graph.store.tables import DecisionRow, MetricRow, RoundRow, RunRow

        def work(session) -> None:
            failed = int(row.get("worker_failures", 0))
            n = len(decisions) or int(row.get("population", 0))
            session.add(
                RoundRow(
                    run_id=self.run_id,
                    round=row["step"],
                    n_decisions=n,
                    n_failed=failed,
                    failed_share=failed / max(1, n),
                    figures_json=json.dumps(_jsonable(row)),
                )
            )
            for name, value in row.items():
                if isinstance(value, int | float) and not isinstance(value, bool) and name != "step":
                    session.add(MetricRow(run_id=self.run_id, round=row["step"], name=name, value=float(value)))
            for d in decisions:
                session.add(
                    DecisionRow(
                        run_id=self.run_id,
                        round=row["step"],
                        agent_id=d.agent_id,
                        archetype=-1,  # the event names the worker; its archetype is in the run folder
                        weight=float(d.weight),
                        ok=bool(d.ok),
                        choice=d.choice,
                        error=d.error,
                    )
                )
            run = session.get(RunRow, self.run_id)
            if run is not None:
                run.rounds_done = row["step"]

        self._session(work)

    def finish(self, status: str, error: str | None = None) -> None:
        from malles_graph.store.tables import RunRow, utcnow

        def work(session) -> None:
            run = session.get(RunRow, self.run_id)
            if run is not None:
                run.status, run.error, run.updated_at = status, error, utcnow()

        self._session(work)
        self.engine.dispose()
