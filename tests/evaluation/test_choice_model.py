"""The choice-model agent: API, save/load round trip, vectorised decisions, explanations."""

from __future__ import annotations

import json

import numpy as np
import pytest

from malles_graph.errors import MallesError
from malles_graph.evaluation.choice_model import COMPUTED, ChoiceModel
from malles_graph.evaluation.features import FEATURES
from malles_graph.models import Decision


@pytest.fixture(scope="module")
def fitted(real_cases):
    train, _ = real_cases
    return ChoiceModel.fit(train)


def test_fitted_signs_make_sense(fitted):
    coef = fitted.coefficients()
    assert set(coef) == set(FEATURES)
    assert coef["log_popularity"] > 0 and coef["own_count"] > 0
    assert fitted.meta["n_cases"] > 1000


def test_predictions_and_decisions(fitted, real_cases):
    _, test = real_cases
    situations = [c.situation() for c in test[:300]]
    probs = fitted.predict_proba(situations[0])
    assert set(probs) == set(situations[0].candidate_ids) and sum(probs.values()) == pytest.approx(1.0)
    many = fitted.decide_many(situations)
    one_by_one = [fitted.decide(s) for s in situations]
    assert [(d.product_id, d.quantity) for d in many] == [(d.product_id, d.quantity) for d in one_by_one]
    for s, d in zip(situations, many, strict=True):
        assert isinstance(d, Decision) and not d.check_against(s.candidate_ids)
        assert d.quantity == fitted.predict_quantity(s, d.product_id)
        assert d.product_id == max(fitted.predict_proba(s), key=fitted.predict_proba(s).get)
    drawn = [fitted.decide(s, rng=np.random.default_rng(0)).product_id for s in situations]
    assert drawn != [d.product_id for d in many]  # sampling differs from argmax somewhere


def test_explain_gives_each_role_a_computed_analysis(fitted, real_cases):
    _, test = real_cases
    text = fitted.explain(test[0].situation())
    assert set(text) == {"product_specialist", "price_analyst", "persona"}
    for role, analysis in text.items():
        assert analysis.startswith(COMPUTED), role
        assert "not an LLM" in analysis
    assert "popularity" in text["product_specialist"]
    assert "regular" in text["price_analyst"]
    assert "bought" in text["persona"]
    assert test[0].candidates[0].label in text["price_analyst"]


def test_save_load_round_trip(fitted, real_cases, tmp_path):
    _, test = real_cases
    path = fitted.save(tmp_path / "cm.json")
    data = json.loads(path.read_text())
    assert data["format"] == "malles-choice-model/1" and data["features"] == list(FEATURES)
    again = ChoiceModel.load(path)
    situations = [c.situation() for c in test[:100]]
    assert again.predict_proba_many(situations) == fitted.predict_proba_many(situations)
    assert [d.model_dump() for d in again.decide_many(situations)] == [
        d.model_dump() for d in fitted.decide_many(situations)
    ]


def test_load_rejects_bad_files(tmp_path):
    with pytest.raises(MallesError, match="not found"):
        ChoiceModel.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(MallesError, match="not a JSON choice model"):
        ChoiceModel.load(tmp_path / "bad.json")
    (tmp_path / "folder.json").mkdir()
    with pytest.raises(MallesError, match="folder.json: not a JSON choice model"):
        ChoiceModel.load(tmp_path / "folder.json")
    (tmp_path / "other.json").write_text('{"format": "something else"}')
    with pytest.raises(MallesError, match="not a choice model file"):
        ChoiceModel.load(tmp_path / "other.json")


@pytest.mark.parametrize("l2", [-1.0, float("nan"), float("inf")])
def test_fit_refuses_a_penalty_that_is_not_finite_and_non_negative(real_cases, l2):
    train, _ = real_cases
    with pytest.raises(MallesError, match=f"l2 penalty {l2!r}: must be a finite number >= 0"):
        ChoiceModel.fit(train[:20], l2=l2)
