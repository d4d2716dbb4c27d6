"""Round reports and reporters (Mesa's DataCollector idea): named figures collected every round.

The supervisor graph emits one :class:`RoundReport` per round. A :class:`DataCollector` holds
named reporter functions (report -> number) and collects a row per round, so the CLI, the TUI,
the store and benchmarks read the same figures instead of ad-hoc prints.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl
from pydantic import BaseModel, ConfigDict, Field


class RoundReport(BaseModel):
    """Everything one round produced, as stored and shown."""

    model_config = ConfigDict(extra="forbid")

    round: int = Field(ge=0)
    n_decisions: int = Field(ge=0)
    n_failed: int = Field(ge=0)
    failed_share: float = Field(ge=0, le=1, description="share of decisions that failed validation")
    distance: float = Field(ge=0, description="total variation between m(t+1) and m(t)")
    converged: bool = False
    demand: dict[str, float] = Field(default_factory=dict, description="units demanded per option")
    prices: dict[str, float] = Field(default_factory=dict, description="prices set for the next round")
    mu: dict[str, float] = Field(default_factory=dict, description="this round's choice distribution")
    m: dict[str, float] = Field(default_factory=dict, description="mean-field after the damped update")
    figures: dict[str, float] = Field(default_factory=dict, description="environment figures")


Reporter = Callable[[RoundReport], float]

DEFAULT_REPORTERS: dict[str, Reporter] = {
    "distance": lambda r: r.distance,
    "failed_share": lambda r: r.failed_share,
    "decisions": lambda r: float(r.n_decisions),
    "failed": lambda r: float(r.n_failed),
    "units_demanded": lambda r: float(sum(r.demand.values())),
    "none_share": lambda r: r.m.get("none", 0.0),
}


class DataCollector:
    """Collects named figures per round; ``figures`` keys of reports are collected as well."""

    def __init__(self, reporters: dict[str, Reporter] | None = None, include_figures: bool = True) -> None:
        self.reporters = dict(DEFAULT_REPORTERS if reporters is None else reporters)
        self.include_figures = include_figures
        self.rows: list[dict[str, float]] = []

    def metrics(self, report: RoundReport) -> dict[str, float]:
        values = {name: float(fn(report)) for name, fn in self.reporters.items()}
        if self.include_figures:
            values.update({k: float(v) for k, v in report.figures.items() if k not in values})
        return values

    def collect(self, report: RoundReport) -> dict[str, float]:
        values = self.metrics(report)
        self.rows.append({"round": float(report.round), **values})
        return values

    def frame(self) -> pl.DataFrame:
        return pl.DataFrame(self.rows) if self.rows else pl.DataFrame({"round": []})
