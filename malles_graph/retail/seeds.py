"""Stability across seeds: the spread of a scenario's final mean-field m over several runs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel

from malles_graph.population.meanfield import total_variation
from malles_graph.store.summary import RunSummary


class SeedSpread(BaseModel):
    """Aggregate outcomes of one scenario under several seeds, and their spread."""

    seeds: list[int]
    final_m: list[dict[str, float]]
    mean: dict[str, float]
    std: dict[str, float]
    max_tv_between_seeds: float


def final_m(summary: RunSummary) -> dict[str, float]:
    final = summary.final
    return {k: float(v) for k, v in (final.summary.get("m") or {}).items()} if final else {}


def seed_spread(summaries: Sequence[RunSummary]) -> SeedSpread:
    """Mean and standard deviation of the final m per option, and the largest pairwise TV distance."""
    finals = [final_m(s) for s in summaries]
    keys = sorted({k for m in finals for k in m})
    arr = np.array([[m.get(k, 0.0) for k in keys] for m in finals]) if finals else np.zeros((0, 0))
    tv = max((total_variation(a, b) for i, a in enumerate(finals) for b in finals[i + 1 :]), default=0.0)
    return SeedSpread(
        seeds=[s.seed for s in summaries],
        final_m=finals,
        mean=dict(zip(keys, arr.mean(axis=0).tolist(), strict=True)) if len(arr) else {},
        std=dict(zip(keys, arr.std(axis=0).tolist(), strict=True)) if len(arr) else {},
        max_tv_between_seeds=tv,
    )
