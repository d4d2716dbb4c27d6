"""Metrics on hand-computed examples."""

from __future__ import annotations

import math

import pytest

from malles_graph.evaluation.cases import ChoiceCase, EvaluationError, Prediction
from malles_graph.evaluation.metrics import score, stability, top_k_share
from tests.evaluation.test_cases import case_dict


def make_case(case_id: str, truth: str, qty: int, sparse: bool = False, n: int = 4) -> ChoiceCase:
    data = case_dict(case_id)
    data["candidates"] = [
        {"product_id": f"p{i}", "subclass": "s", "price": 10, "regular_price": 10} for i in range(1, n + 1)
    ]
    data.update(truth_product_id=truth, truth_quantity=qty, sparse=sparse)
    return ChoiceCase.model_validate(data)


CASES = [
    make_case("a", "p1", 2),
    make_case("b", "p2", 1),
    make_case("c", "p3", 4, sparse=True),
    make_case("d", "p4", 1, sparse=True),
]


def test_hand_computed_scores():
    preds = [
        # a: right product, qty 3 vs 2; probs put truth first
        Prediction(case_id="a", product_id="p1", quantity=3, probs={"p1": 0.5, "p2": 0.3, "p3": 0.1, "p4": 0.1}),
        # b: wrong product, qty 1 vs 1; truth ranked 2nd
        Prediction(case_id="b", product_id="p1", quantity=1, probs={"p1": 0.6, "p2": 0.2, "p3": 0.1, "p4": 0.1}),
        # c: not a candidate -> invalid, a miss
        Prediction(case_id="c", product_id="zzz", quantity=2),
        # d: missing
    ]
    s = score(CASES, preds, "hand")
    o = s.overall
    assert o.n == 4 and o.n_missing == 1 and o.n_invalid == 1
    assert o.coverage == pytest.approx(0.5)
    assert o.hit1 == pytest.approx(0.25)
    assert o.hit3 == pytest.approx(0.5)  # a and b in top 3; c invalid; d missing
    assert o.mae == pytest.approx((1 + 0) / 2) and o.n_quantity == 2
    assert o.mape == pytest.approx((1 / 2 + 0) / 2)
    assert o.mae_hit == pytest.approx(1.0)
    eps = 1e-6
    p_a = (0.5 + eps) / (1 + 4 * eps)
    p_b = (0.2 + eps) / (1 + 4 * eps)
    expected = (-math.log(p_a) - math.log(p_b) + 2 * math.log(4)) / 4  # c, d: no information
    assert o.logloss == pytest.approx(expected)
    assert s.dense.hit1 == pytest.approx(0.5) and s.dense.n == 2
    assert s.sparse.hit1 == 0.0 and s.sparse.coverage == 0.0 and s.sparse.mae is None


def test_without_probabilities_hit3_and_logloss_are_not_reported():
    preds = [Prediction(case_id=c.case_id, product_id=c.truth_product_id, quantity=1) for c in CASES]
    o = score(CASES, preds).overall
    assert o.hit1 == 1.0 and o.hit3 is None and o.logloss is None


def test_ties_share_the_top_places():
    uniform = {f"p{i}": 0.2 for i in range(1, 6)}
    assert top_k_share(uniform, "p1", list(uniform), 3) == pytest.approx(0.6)
    assert top_k_share({"a": 0.5, "b": 0.3, "c": 0.2}, "c", ["a", "b", "c"], 2) == 0.0


def test_unknown_case_is_an_error():
    with pytest.raises(EvaluationError, match="unknown case_id 'zz'"):
        score(CASES, [Prediction(case_id="zz", product_id="p1", quantity=1)])


def test_stability_of_repeated_runs():
    run1 = [Prediction(case_id=c.case_id, product_id="p1", quantity=1) for c in CASES]
    run2 = [Prediction(case_id=c.case_id, product_id="p1" if c.case_id in "ab" else "p2", quantity=1) for c in CASES]
    run3 = run1[:3]  # d missing: never agrees
    s = stability(CASES, {"r1": run1, "r2": run2, "r3": run3})
    # pairs: (1,2) agree on a,b = 2/4; (1,3) agree on a,b,c = 3/4; (2,3) agree on a,b = 2/4
    assert s.pairwise_product_agreement == pytest.approx(7 / 12)
    # modal share per case: a 3/3, b 3/3, c 2/3, d 1/3 (r1 and r2 differ, r3 missing)
    assert s.modal_share == pytest.approx((1 + 1 + 2 / 3 + 1 / 3) / 4)
    # every run scores each figure; the spread is their mean, population sd and range
    truth = [Prediction(case_id=c.case_id, product_id=c.truth_product_id, quantity=c.truth_quantity) for c in CASES]
    spread = stability(CASES, {"r1": run1, "truth": truth}).spread
    hit1 = spread["hit@1"]  # r1 hits a only: 0.25; the truth 1.0
    assert (hit1.mean, hit1.sd, hit1.low, hit1.high) == pytest.approx((0.625, 0.375, 0.25, 1.0))
    assert spread["hit@1 sparse"].mean == 0.5  # c and d: r1 0, the truth 1
    assert spread["quantity MAE"].mean == pytest.approx(0.5)  # r1: (1 + 0 + 3 + 0) / 4; the truth 0
    assert spread["log-loss"].mean is None  # no run gave probabilities
    with pytest.raises(EvaluationError, match="at least two"):
        stability(CASES, {"r1": run1})


def test_the_bucket_plots_interval_is_wilsons_and_empty_buckets_have_none():
    from malles_graph.evaluation.report import hit_interval

    low, high = hit_interval(0.5, 100)
    assert low == pytest.approx(0.4038, abs=1e-4) and high == pytest.approx(0.5962, abs=1e-4)
    low, high = hit_interval(1.0, 10)  # every case hit: the interval still says how few cases there were
    assert low == pytest.approx(0.7225, abs=1e-4) and high == pytest.approx(1.0)
    assert all(math.isnan(v) for v in hit_interval(float("nan"), 0))


def test_an_effect_that_rounds_to_zero_reads_plus_zero_not_minus_zero():
    """The effects tables printed `-0.000 [-0.000, +0.000]` for a quantity effect of exactly nothing."""
    from malles_graph.evaluation.report import interval_text

    assert interval_text(-0.0, -0.0001, 0.0) == "+0.000 [+0.000, +0.000]"
    assert interval_text(-0.0123, -0.03, 0.004) == "-0.012 [-0.030, +0.004]"
    assert interval_text(0.5, 0.25, 0.75, digits=2) == "+0.50 [+0.25, +0.75]"
    assert interval_text(None, None, None) == "-"
