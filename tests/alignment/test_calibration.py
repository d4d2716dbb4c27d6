"""Calibration maths on synthetic data: a known miscalibration is undone on a held-out half."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pytest

from malles_graph.alignment.calibration import (
    Calibration,
    ProbabilityMap,
    QuantityMap,
    classwise_ece,
    expected_calibration_error,
    fit_calibration,
    hit_at_1,
    log_loss,
)
from malles_graph.alignment.errors import AlignmentError
from malles_graph.models import ChoiceSituation, Customer, Decision, Factor, HiddenFactors, Product
from malles_graph.retail.stabilise import Calibrator


def _synthetic(n: int, seed: int, sharpen: float = 3.0, first_bias: float = 0.0):
    """True choice probs from utilities; the 'LLM' reports them sharpened (overconfident) and position-biased."""
    rng = np.random.default_rng(seed)
    probs, truth, util = [], [], []
    for _ in range(n):
        k = int(rng.integers(3, 7))
        u = rng.normal(0, 1.0, size=k)
        p_true = np.exp(u) / np.exp(u).sum()
        truth.append(int(rng.choice(k, p=p_true)))
        raw = sharpen * u
        raw[0] += first_bias
        probs.append(np.exp(raw) / np.exp(raw).sum())
        util.append(u)
    return probs, truth, util


def _split(n=4000, **kw):
    p, t, u = _synthetic(n, seed=1, **kw)
    h = n // 2
    return (p[:h], t[:h], u[:h]), (p[h:], t[h:], u[h:])


def test_ece_is_zero_for_perfectly_calibrated_and_large_for_overconfident() -> None:
    probs, truth, _ = _synthetic(6000, seed=3, sharpen=1.0)
    assert expected_calibration_error(probs, truth) < 0.03
    over, truth2, _ = _synthetic(6000, seed=3, sharpen=4.0)
    assert expected_calibration_error(over, truth2) > 0.15


@pytest.mark.parametrize("method", ["temperature", "platt", "isotonic"])
def test_calibration_lowers_ece_on_held_out_half(method: str) -> None:
    (pf, tf, _), (pt, tt, _) = _split()
    pmap = ProbabilityMap.fit(pf, tf, method=method)
    before = expected_calibration_error(pt, tt)
    after = expected_calibration_error(pmap.transform(pt), tt)
    assert before > 0.15
    assert after < before / 3, (method, before, after)
    assert log_loss(pmap.transform(pt), tt) < log_loss(pt, tt)


def test_temperature_recovers_the_sharpening() -> None:
    (pf, tf, _), _ = _split(sharpen=3.0)
    pmap = ProbabilityMap.fit(pf, tf, method="temperature")
    assert pmap.temperature == pytest.approx(3.0, rel=0.15)


def test_stacked_undoes_position_bias_and_uses_utilities() -> None:
    (pf, tf, uf), (pt, tt, ut) = _split(sharpen=1.0, first_bias=2.5)
    assert hit_at_1(pt, tt) < 0.45  # the bias makes the first candidate win too often
    temp = ProbabilityMap.fit(pf, tf, method="temperature")
    stacked = ProbabilityMap.fit(pf, tf, method="stacked", utilities=uf)
    assert stacked.positions and stacked.use_utility
    s_probs = stacked.transform(pt, ut)
    assert hit_at_1(s_probs, tt) > hit_at_1(temp.transform(pt), tt) + 0.05
    assert log_loss(s_probs, tt) < log_loss(temp.transform(pt), tt)
    with pytest.raises(AlignmentError, match="utilities"):
        stacked.transform(pt)


def test_classwise_ece_and_errors() -> None:
    probs, truth, _ = _synthetic(500, seed=5, sharpen=3.0)
    assert 0 < classwise_ece(probs, truth) < 1
    with pytest.raises(AlignmentError, match="truth index"):
        expected_calibration_error([np.array([0.5, 0.5])], [2])
    with pytest.raises(AlignmentError, match="unknown calibration method"):
        ProbabilityMap.fit(probs, truth, method="magic")


def test_quantity_map_pulls_toward_usual_quantity() -> None:
    rng = np.random.default_rng(0)
    usual = rng.choice([1, 1, 1, 2, 3, 6], size=800).astype(float)
    truth = usual.copy()
    raw = rng.choice([5, 11, 47], size=800).astype(float)  # the LLM's wild guesses, unrelated to truth
    qmap = QuantityMap.fit(raw, usual, truth)
    pred = np.array([qmap(r, u) for r, u in zip(raw, usual, strict=True)])
    assert np.mean(np.abs(pred - truth)) < 0.5
    assert np.mean(np.abs(raw - truth)) > 10


def test_hook_save_load_round_trip(tmp_path) -> None:
    (pf, tf, _), _ = _split(n=1000)
    raw_q = [11.0] * len(tf)
    cal = fit_calibration(pf, tf, raw_quantity=raw_q, usual_quantity=[1.0] * len(tf), true_quantity=[1.0] * len(tf))
    assert cal.report["fit_ece_after"] < cal.report["fit_ece_before"]
    loaded = Calibration.load(cal.save(tmp_path / "cal.json"))
    assert loaded.probability.coef == pytest.approx(cal.probability.coef)
    decision = Decision(product_id="p1", quantity=11, confidence=0.99)
    z = HiddenFactors(
        budget_pressure=Factor(value=0.5, provenance="t"),
        stock_up_intent=Factor(value=0.1, provenance="t"),
        brand_attachment=Factor(value=0.5, provenance="t"),
        usual_quantity=1.0,
        price_level=1.0,
    )
    situation = ChoiceSituation(
        situation_id="s",
        date=dt.date(2001, 2, 1),
        customer=Customer(customer_id="c", mean_quantity=1.0),
        subclass="sub",
        candidates=[Product(product_id="p1", subclass="sub", price=1.0, regular_price=1.0)],
    )
    assert isinstance(loaded, Calibrator)
    out = loaded(decision, situation, z)
    assert out.product_id == "p1" and out.quantity == 1
    assert out.confidence < 0.99  # overconfident top-label confidence is lowered
    none = Decision(product_id="none", quantity=0)
    assert loaded(none, situation, None) == none
    assert loaded(decision, situation, None).quantity == 1  # usual quantity from X when Z is absent
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(AlignmentError, match="format"):
        Calibration.load(tmp_path / "bad.json")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "not a readable calibration file (IsADirectoryError)"),
        (b"\xff\xfe\x00binary", "not a readable calibration file (UnicodeDecodeError)"),
        (b"[1, 2]", "a JSON list, not a calibration file (format 'malles-calibration/1'"),
        (b'{"x": 1}', "no 'format' field, not a calibration file"),
        (b'{"format": "malles-computed-agent/6"}', "format 'malles-computed-agent/6', not a calibration file"),
    ],
)
def test_load_names_a_file_that_is_not_a_calibration(tmp_path, content: bytes | None, message: str) -> None:
    path = tmp_path / "calibration.json"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    with pytest.raises(AlignmentError, match=re.escape(f"{path}: {message}")):
        Calibration.load(path)
