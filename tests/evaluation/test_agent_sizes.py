"""Settings chosen per fit on held-out training cases (the decide's leaves, the count model's trees):
the default unless another is clearly better (``metrics.clearly_better``)."""

from __future__ import annotations

import numpy as np

from malles_graph.evaluation.metrics import clearly_better
from malles_graph.roles.fitting import RANKER_LEAVES, fit_ranker_decide


def test_the_default_stays_unless_another_setting_is_better_by_two_standard_errors():
    rng = np.random.default_rng(0)
    base = rng.random(2000)
    noise = base + rng.normal(0, 0.3, 2000) - 0.005  # lower on average, but within its noise
    clear = base - 0.05 + rng.normal(0, 0.05, 2000)
    clearer = base - 0.08 + rng.normal(0, 0.05, 2000)
    assert clearly_better({"default": base, "noise": noise}, "default") == "default"
    assert clearly_better({"default": base, "noise": noise, "clear": clear}, "default") == "clear"
    assert clearly_better({"default": base, "clear": clear, "clearer": clearer}, "default") == "clearer"
    assert clearly_better({"default": base}, "default") == "default"


def ranking_data(additive: bool, n: int = 1500, k: int = 4, seed: int = 0):
    """Cases of ``k`` candidates with six features; the choice maximises utility + Gumbel noise, the utility
    additive in three features, or a sign interaction of three plus a conjunction of two."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n * k, 6))
    if additive:
        u = 1.2 * X[:, 0] - 0.8 * X[:, 1] + 0.5 * X[:, 2]
    else:
        u = 2.0 * np.sign(X[:, 0] * X[:, 1]) * (np.abs(X[:, 2]) > 0.7) + 1.5 * ((X[:, 3] > 0) & (X[:, 4] > 0))
    u = u.reshape(n, k) + rng.gumbel(size=(n, k))
    y = np.zeros((n, k), dtype=int)
    y[np.arange(n), u.argmax(axis=1)] = 1
    seg = np.repeat(np.arange(n), k)
    splits = [(np.flatnonzero(seg % 3 != f), np.flatnonzero(seg % 3 == f)) for f in range(3)]
    return X, y.ravel(), np.arange(0, n * k + 1, k), splits


def test_the_decide_is_shallow_where_the_utility_is_additive_and_keeps_its_leaves_where_it_is_not():
    X, y, offsets, splits = ranking_data(additive=True)
    fit = fit_ranker_decide(X, y, offsets, splits, seed=0, replicas=2, seeds=2)
    assert fit.leaves == min(RANKER_LEAVES) and fit.cv_logloss[4] < fit.cv_logloss[RANKER_LEAVES[0]] - 0.02
    assert all(m.get_params()["num_leaves"] == 4 for group in fit.models for m in group)  # the replicas too
    assert fit.oof_probs.shape == y.shape and np.allclose(np.add.reduceat(fit.oof_probs, offsets[:-1]), 1.0)
    X, y, offsets, splits = ranking_data(additive=False)
    fit = fit_ranker_decide(X, y, offsets, splits, seed=0, replicas=2, seeds=2)
    assert fit.leaves == RANKER_LEAVES[0] and fit.cv_logloss[4] > fit.cv_logloss[RANKER_LEAVES[0]] + 0.1
