"""Reweighting recovers known design weights and fixes aggregate demand."""

from __future__ import annotations

import numpy as np
import pytest

from malles_graph.alignment.errors import AlignmentError
from malles_graph.alignment.reweighting import (
    aggregate_error,
    effective_sample_size,
    entropy_balance,
    load_weights,
    rake,
    save_weights,
    weighted_shares,
)

ARCH = {"A": 0.5, "B": 0.3, "C": 0.2}
AGE = {"young": 0.6, "old": 0.4}
R_ARCH = {"A": 0.1, "B": 0.5, "C": 1.0}  # sampling rates: archetype A is under-simulated
R_AGE = {"young": 0.5, "old": 1.0}


def _biased_sample():
    """A sample whose cell counts are population counts x multiplicative sampling rates."""
    arch, age, true_w = [], [], []
    for a, pa in ARCH.items():
        for g, pg in AGE.items():
            n = round(1000 * pa * pg * R_ARCH[a] * R_AGE[g])
            arch += [a] * n
            age += [g] * n
            true_w += [1.0 / (R_ARCH[a] * R_AGE[g])] * n
    return {"archetype": arch, "age": age}, np.array(true_w)


def test_raking_recovers_inverse_sampling_rates() -> None:
    margins, true_w = _biased_sample()
    fit = rake(margins, {"archetype": ARCH, "age": AGE})
    assert fit.converged
    w = fit.weights(margins)
    np.testing.assert_allclose(w / w.sum(), true_w / true_w.sum(), rtol=1e-6)
    # w(x) as a function: the ratio of two kinds of unit equals the ratio of their inverse rates
    ratio = fit.weight({"archetype": "A", "age": "young"}) / fit.weight({"archetype": "C", "age": "old"})
    assert ratio == pytest.approx((1 / (0.1 * 0.5)) / (1 / (1.0 * 1.0)), rel=1e-6)
    assert 0 < effective_sample_size(w) < len(w)


def test_raking_fixes_aggregate_demand() -> None:
    margins, _ = _biased_sample()
    # archetype A buys category x, the others category y: the raw sample under-states x
    cats = ["x" if a == "A" else "y" for a in margins["archetype"]]
    units = np.ones(len(cats))
    real = {"x": ARCH["A"], "y": 1 - ARCH["A"]}
    w = rake(margins, {"archetype": ARCH, "age": AGE}).weights(margins)
    before = aggregate_error(weighted_shares(cats, units), real)
    after = aggregate_error(weighted_shares(cats, units, w), real)
    assert before > 0.3
    assert after < 1e-6


def test_raking_errors() -> None:
    margins, _ = _biased_sample()
    with pytest.raises(AlignmentError, match="no simulated units"):
        rake(margins, {"archetype": {**ARCH, "D": 0.1}, "age": AGE})
    with pytest.raises(AlignmentError, match="targets cover"):
        rake(margins, {"archetype": ARCH})
    with pytest.raises(AlignmentError, match="one label per unit"):
        rake({"a": ["x"], "b": ["y", "z"]}, {"a": {"x": 1}, "b": {"y": 1}})


def test_entropy_balancing_recovers_exponential_tilt(tmp_path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, size=(20000, 1))
    # a N(0,1) sample tilted by exp(0.5 x) is N(0.5, 1): the weights should be exp(0.5 x)
    fit = entropy_balance(x, [0.5], names=["x"])
    assert fit.converged
    assert fit.lam[0] == pytest.approx(0.5, abs=0.05)
    w = fit.weights(x)
    assert (w / w.sum()) @ x[:, 0] == pytest.approx(0.5, abs=1e-6)
    loaded = load_weights(save_weights(fit, tmp_path / "w.json"))
    np.testing.assert_allclose(loaded.weights(x), w)
    with pytest.raises(AlignmentError, match="outside the simulated range"):
        entropy_balance(x, [100.0])


def test_aggregate_error_bounds() -> None:
    assert aggregate_error({"a": 1.0}, {"a": 2.0}) == 0.0
    assert aggregate_error({"a": 1.0}, {"b": 1.0}) == pytest.approx(1.0)
