"""Persona-level plurality voting among tax platforms, with a seeded tie-break."""

from __future__ import annotations

import string

import numpy as np

from malles_graph.economist.economy import LabourModel, best_response
from malles_graph.economist.tax import TaxSchedule, rebate_per_worker

BALLOT_LETTERS = string.ascii_uppercase


def tally(choices: list[str], mass: np.ndarray | list[float], candidates: list[str], rng: np.random.Generator) -> tuple[
    str, dict[str, float]
]:
    """Plurality winner (mass-weighted votes); ties broken by a draw from ``rng``.

    ``choices[i]`` is voter i's candidate or "" for an abstention (a failed answer). Returns the winner and
    the votes of every candidate (in ballot order).
    """
    votes = {c: 0.0 for c in candidates}
    for choice, m in zip(choices, mass, strict=True):
        if choice in votes:
            votes[choice] += float(m)
    top = max(votes.values())
    tied = [c for c in candidates if votes[c] == top]
    winner = tied[int(rng.integers(len(tied)))] if len(tied) > 1 else tied[0]
    return winner, votes


def self_interested_votes(
    platforms: dict[str, TaxSchedule], skill: np.ndarray, mass: np.ndarray, model: LabourModel
) -> list[str]:
    """Each best-responding voter picks the platform that maximises their own utility, rebate included.

    The rebate each platform would pay is the revenue under everyone's best response to it.
    """
    names = list(platforms)
    utilities = np.empty((len(skill), len(names)))
    for j, name in enumerate(names):
        sched = platforms[name]
        hours, private = best_response(skill, sched, model)
        utilities[:, j] = private + rebate_per_worker(sched, skill * hours, mass)
    return [names[j] for j in np.argmax(utilities, axis=1)]
