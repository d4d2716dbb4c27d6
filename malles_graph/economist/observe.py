"""The planner's observation protocol: welfare is credited to the schedule that produced it.

A run's per-step rows say which schedule was in force; a planner period can hold several schedules (a vote
may replace the planner's schedule inside it). :func:`credit` cuts the rows since the last planner action
into runs of one schedule each and averages the objective's welfare over each run, so a schedule is never
credited with welfare observed under another one. The incumbent is the best schedule credited so far; the
run reports it as its final schedule.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

RATE_TOL = 1e-9  # two schedules are the same when no rate differs by more than this (points)


def same_rates(a: Sequence[float] | None, b: Sequence[float] | None) -> bool:
    if a is None or b is None or len(a) != len(b):
        return False
    return bool(np.max(np.abs(np.asarray(a, dtype=float) - np.asarray(b, dtype=float))) <= RATE_TOL)


def credit(rows: list[dict], after_step: int, objective: str) -> list[dict]:
    """Observations of the rows with step > ``after_step``: one per run of consecutive steps under one schedule.

    Each observation: ``rates``, ``source`` (who set the schedule), ``first``/``last`` step, ``steps`` and
    ``welfare`` (mean of ``welfare_<objective>`` over those steps only).
    """
    key = f"welfare_{objective}"
    observations: list[dict] = []
    for row in (r for r in rows if r["step"] > after_step):
        last = observations[-1] if observations else None
        if last is not None and same_rates(last["rates"], row["schedule"]) and last["last"] == row["step"] - 1:
            last["values"].append(row[key])
            last["last"] = row["step"]
        else:
            observations.append(
                {"rates": list(row["schedule"]), "source": row.get("source", ""), "first": row["step"],
                 "last": row["step"], "values": [row[key]]}
            )
    for obs in observations:
        values = obs.pop("values")
        obs["steps"] = len(values)
        obs["welfare"] = float(np.mean(values))
    return observations


def best_observation(observations: list[dict], incumbent: dict | None = None) -> dict | None:
    """The incumbent after ``observations``: the highest credited welfare (the earlier one on a tie)."""
    best = incumbent
    for obs in observations:
        if best is None or obs["welfare"] > best["welfare"]:
            best = obs
    return best


__all__ = ["best_observation", "credit", "same_rates"]
