"""An economist run read back from the run store: its steps, planner actions, votes and final analysis.

The generic runner stores every step as a round (metrics: the step's figures; summary: the schedule
in force, who set it, the planner's action and the vote) and the run's summary (the welfare table,
the near-Stackelberg check, the Saez schedule, the counts); this module turns them back into the
records `malles economist report` tables and plots.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

from malles_graph.errors import DataError
from malles_graph.store import make_engine, normalise_url
from malles_graph.store import repository as repo
from malles_graph.store.summary import RunSummary, summarise


@dataclass
class EconomistRunData:
    """A stored economist run: ``history`` has one row of figures per step, as the graph computed them."""

    run: RunSummary
    history: list[dict[str, Any]]
    planner_log: list[dict[str, Any]]
    votes: list[dict[str, Any]]
    decisions: list[Any] = field(default_factory=list)  # DecisionRow of every LLM worker answer

    @property
    def run_id(self) -> str:
        return self.run.run_id

    @property
    def meta(self) -> dict[str, Any]:
        return self.run.summary.get("meta") or {}

    @property
    def analysis(self) -> dict[str, Any]:
        """The welfare table and the near-Stackelberg check (empty if the run did not finish)."""
        summary = self.run.summary
        return {"table": summary.get("welfare_table") or [], "stackelberg": summary.get("stackelberg") or {}}

    @property
    def saez(self) -> dict[str, Any]:
        return self.run.summary.get("saez") or {}

    @property
    def observations(self) -> list[dict[str, Any]]:
        return self.run.summary.get("observations") or []

    @property
    def steps(self) -> pl.DataFrame:
        return pl.DataFrame(self.history)


def load_economist_run(run_id: str, store_url: str | None = None) -> EconomistRunData:
    """Read run ``run_id`` from the store (default: the configured one); DataError if it is not an economist run."""
    url = normalise_url(store_url)
    engine = make_engine(url)
    summary = summarise(engine, run_id, url)
    if summary.kind != "economist":
        raise DataError(f"run {run_id!r} is a {summary.kind} run, not an economist run")
    if not summary.rounds:
        raise DataError(f"economist run {run_id!r} has no finished step yet (status {summary.status})")
    history, planner_log, votes = [], [], []
    for r in summary.rounds:
        extra = {k: r.summary[k] for k in ("schedule", "source") if k in r.summary}
        history.append({"step": r.round, **r.metrics, **extra})
        if r.summary.get("planner"):
            planner_log.append(r.summary["planner"])
        if r.summary.get("vote"):
            votes.append(r.summary["vote"])
    return EconomistRunData(run=summary, history=history, planner_log=planner_log, votes=votes,
                            decisions=repo.load_decisions(engine, run_id))


__all__ = ["EconomistRunData", "load_economist_run"]
