"""Piecewise-linear marginal tax schedules on the U.S. federal brackets, and the lump-sum rebate."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

# Re-exported: the brackets live in a numpy-free module so scenario validation stays light at start-up.
from malles_graph.economist.brackets import N_BRACKETS as N_BRACKETS
from malles_graph.economist.brackets import US_RATES as US_RATES
from malles_graph.economist.brackets import US_THRESHOLDS as US_THRESHOLDS


class TaxSchedule(BaseModel):
    """Marginal rates (percent) applying from each threshold up to the next; the last one has no top."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rates: tuple[float, ...] = Field(description="marginal rate per bracket, percent in [0, 100]")
    thresholds: tuple[float, ...] = Field(default=US_THRESHOLDS, description="lower bracket thresholds, dollars")
    label: str = ""

    @field_validator("rates")
    @classmethod
    def _rates_in_range(cls, rates: tuple[float, ...]) -> tuple[float, ...]:
        bad = [r for r in rates if not 0.0 <= r <= 100.0 or r != r]
        if bad:
            raise ValueError(f"marginal rates must be in [0, 100] percent, got {bad}")
        return tuple(float(r) for r in rates)

    def model_post_init(self, __context: object) -> None:
        if len(self.rates) != len(self.thresholds):
            raise ValueError(f"{len(self.rates)} rates for {len(self.thresholds)} brackets")
        if self.thresholds[0] != 0 or any(b <= a for a, b in zip(self.thresholds, self.thresholds[1:], strict=False)):
            raise ValueError(f"thresholds must start at 0 and increase, got {self.thresholds}")

    # -- arithmetic -----------------------------------------------------------------------------------
    def _arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lo = np.asarray(self.thresholds, dtype=float)
        tau = np.asarray(self.rates, dtype=float) / 100.0
        widths = np.diff(lo)
        # tax owed at each threshold: sum of full lower brackets
        cum = np.concatenate([[0.0], np.cumsum(widths * tau[:-1])])
        return lo, tau, cum

    def tax(self, income: np.ndarray | float) -> np.ndarray:
        """Tax owed on pre-tax income z >= 0 (vectorised).

        Piecewise linear through the knots (threshold, tax owed there): ``np.interp`` inside the brackets
        (one pass in C, the hot loop of a million-worker best response), the top rate beyond the last knot.
        """
        lo, tau, cum = self._arrays()
        z = np.maximum(np.asarray(income, dtype=float), 0.0)
        inside = np.interp(z, lo, cum)
        return np.where(z > lo[-1], cum[-1] + tau[-1] * (z - lo[-1]), inside)

    def marginal_rate(self, income: np.ndarray | float) -> np.ndarray:
        """Marginal rate (fraction) at income z."""
        lo, tau, _ = self._arrays()
        z = np.maximum(np.asarray(income, dtype=float), 0.0)
        return tau[np.searchsorted(lo, z, side="right") - 1]

    def clipped_toward(self, proposal: list[float] | tuple[float, ...], max_change: float, label: str = "") -> tuple[
        TaxSchedule, bool
    ]:
        """A schedule moving from this one toward ``proposal`` by at most ``max_change`` points per bracket.

        Returns the new schedule and whether any bracket had to be clipped.
        """
        old = np.asarray(self.rates)
        want = np.clip(np.asarray(proposal, dtype=float), 0.0, 100.0)
        new = np.clip(want, old - max_change, old + max_change)
        clipped = bool(np.any(np.abs(new - np.asarray(proposal, dtype=float)) > 1e-9))
        return self.model_copy(update={"rates": tuple(round(float(r), 4) for r in new), "label": label}), clipped

    def describe(self) -> str:
        """One line per bracket, for prompts and reports."""
        lines = []
        for i, (lo, r) in enumerate(zip(self.thresholds, self.rates, strict=True)):
            band = f"${lo:,.0f} to ${self.thresholds[i + 1]:,.0f}" if i + 1 < len(self.thresholds) else f"${lo:,.0f} and above"
            lines.append(f"  {band}: {r:.1f}%")
        return "\n".join(lines)

    def short(self) -> str:
        return "[" + ", ".join(f"{r:.1f}" for r in self.rates) + "]"


def us_schedule(thresholds: tuple[float, ...] | list[float] = US_THRESHOLDS) -> TaxSchedule:
    """The 2024 U.S. rates (on the given brackets; the U.S. ones by default)."""
    return TaxSchedule(rates=US_RATES, thresholds=tuple(thresholds), label="us")


def flat_schedule(rate: float, thresholds: tuple[float, ...] | list[float] = US_THRESHOLDS) -> TaxSchedule:
    return TaxSchedule(rates=(rate,) * N_BRACKETS, thresholds=tuple(thresholds), label="flat")


def zero_schedule(thresholds: tuple[float, ...] | list[float] = US_THRESHOLDS) -> TaxSchedule:
    return TaxSchedule(rates=(0.0,) * N_BRACKETS, thresholds=tuple(thresholds), label="zero")


def weighted_mean(values: np.ndarray, weights: np.ndarray | None) -> float:
    if weights is None:
        return float(np.mean(values)) if len(values) else 0.0
    total = float(np.sum(weights))
    return float(np.dot(values, weights) / total) if total > 0 else 0.0


def rebate_per_worker(schedule: TaxSchedule, income: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Equal lump-sum rebate: total tax revenue shared equally (weights = population mass)."""
    return weighted_mean(schedule.tax(income), weights)
