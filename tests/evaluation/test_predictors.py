"""Every baseline runs on real Ta Feng cases; fitted ones beat random; the runner resumes."""

from __future__ import annotations

import pytest

from malles_graph.evaluation.cases import EvaluationError, Prediction, read_predictions
from malles_graph.evaluation.metrics import score
from malles_graph.evaluation.predictors import (
    QUANTITY_STRATEGIES,
    PredictorOptions,
    backend_names,
    make_predictor,
)
from malles_graph.evaluation.runner import run_predictions

BASELINES = [name for name in backend_names()]


@pytest.fixture(scope="module")
def scores(real_cases):
    train, test = real_cases
    out = {}
    for name in BASELINES:
        predictor = make_predictor(name, PredictorOptions(train_cases=train, seed=0))
        preds = predictor.predict([c.situation() for c in test])
        assert [p.case_id for p in preds] == [c.case_id for c in test]
        out[name] = score(test, preds, name)
    return out


def test_registry_lists_all_baselines():
    expected = {"random", "popular", "cheapest", "discount", "history", "logit", "lgbm"}
    assert {f"baseline:{b}" for b in expected} == set(BASELINES)


def test_each_baseline_answers_every_case_validly(scores):
    for name, s in scores.items():
        assert s.overall.coverage == 1.0, name
        assert s.overall.hit3 is not None and s.overall.logloss is not None, name


def test_fitted_models_beat_random_on_real_data(scores):
    random_hit = scores["baseline:random"].overall.hit1
    assert 0.1 < random_hit < 0.35  # about 1/5 with five candidates
    for name in ("baseline:logit", "baseline:lgbm"):
        assert scores[name].overall.hit1 > random_hit + 0.15, name
        assert scores[name].overall.logloss < scores["baseline:random"].overall.logloss, name
    assert scores["baseline:popular"].overall.hit1 > random_hit


def test_quantity_strategies(real_cases):
    train, test = real_cases
    situations = [c.situation() for c in test[:200]]
    maes = {}
    for strategy in QUANTITY_STRATEGIES:
        predictor = make_predictor("baseline:popular", PredictorOptions(train_cases=train, quantity=strategy))
        preds = predictor.predict(situations)
        assert all(p.quantity >= 1 for p in preds)
        if strategy == "one":
            assert {p.quantity for p in preds} == {1}
        maes[strategy] = score(test[:200], preds).overall.mae
    assert all(m is not None and m < 3 for m in maes.values())


def test_fitted_backends_need_training_cases():
    with pytest.raises(EvaluationError, match="--train"):
        make_predictor("baseline:logit", PredictorOptions())
    with pytest.raises(EvaluationError, match="unknown backend"):
        make_predictor("baseline:nope")
    with pytest.raises(EvaluationError, match="quantity strategy"):
        make_predictor("baseline:random", PredictorOptions(quantity="lots"))


def test_random_is_seeded_per_case(real_cases):
    _, test = real_cases
    situations = [c.situation() for c in test[:100]]
    a = make_predictor("baseline:random", PredictorOptions(seed=1)).predict(situations)
    b = make_predictor("baseline:random", PredictorOptions(seed=1)).predict(situations[::-1])[::-1]
    c = make_predictor("baseline:random", PredictorOptions(seed=2)).predict(situations)
    assert [p.product_id for p in a] == [p.product_id for p in b]
    assert [p.product_id for p in a] != [p.product_id for p in c]


class FailOne:
    """A predictor that fails on one case: the runner records the failure and keeps going."""

    name = "fail-one"

    def __init__(self, bad_case_id: str) -> None:
        self.bad = bad_case_id

    def predict(self, situations):
        if any(s.situation_id == self.bad for s in situations):
            raise RuntimeError("boom")
        return [Prediction(case_id=s.situation_id, product_id=s.candidate_ids[0], quantity=1) for s in situations]


def test_runner_records_failures_and_resumes(real_cases, tmp_path):
    _, test = real_cases
    cases = test[:30]
    out = tmp_path / "p.jsonl"
    written, skipped = run_predictions(cases[:10], make_predictor("baseline:popular"), out)
    assert (written, skipped) == (10, 0)
    with out.open("a") as stream:  # a run killed mid-line
        stream.write('{"case_id": "' + cases[10].case_id + '", "prod')
    written, skipped = run_predictions(cases, make_predictor("baseline:popular"), out, resume=True, batch_size=7)
    assert (written, skipped) == (20, 10)
    preds = read_predictions(out, {c.case_id: c for c in cases})
    assert [p.case_id for p in preds] == [c.case_id for c in cases]

    run_predictions(cases, FailOne(cases[3].case_id), tmp_path / "f.jsonl", batch_size=8)
    preds = read_predictions(tmp_path / "f.jsonl")
    assert len(preds) == 30
    failed = [p for p in preds if p.error]
    assert [p.case_id for p in failed] == [cases[3].case_id] and "boom" in failed[0].error
    assert score(cases, preds).overall.coverage == pytest.approx(29 / 30)


def test_runner_stops_after_consecutive_failures(real_cases, tmp_path):
    _, test = real_cases
    cases = test[:20]

    class Broken:
        name = "broken"

        def predict(self, situations):
            raise EvaluationError("backend 'x' failed: Request timed out.")

    out = tmp_path / "b.jsonl"
    with pytest.raises(EvaluationError, match="4 cases in a row failed.*timed out.*--resume"):
        run_predictions(cases, Broken(), out, batch_size=1, max_consecutive_failures=4)
    preds = read_predictions(out)
    assert len(preds) == 4 and all(p.error and "timed out" in p.error for p in preds)


def test_the_lgbm_baseline_reads_the_product_attributes_as_the_agent_does():
    """On a case file that carries attributes the best classical baseline must see them too, or the agent's lead
    over it measures the inputs, not the models. The generated brand panel's choices depend on display and
    feature ads: the ranker fitted with them beats the same ranker on the attribute-stripped file."""
    from tests.evaluation.test_agent import panel

    hits = {}
    for attributes in (True, False):
        train = panel(120, range(0, 12), seed=1, attributes=attributes)
        test = panel(120, range(12, 18), seed=2, attributes=attributes)
        predictor = make_predictor("baseline:lgbm", PredictorOptions(train_cases=train, seed=0))
        hits[attributes] = score(test, predictor.predict([c.situation() for c in test]), "lgbm").overall.hit1
    assert predictor.attributes.kinds == {}  # the bare file: no attribute columns
    assert hits[True] > hits[False] + 0.03, hits  # 0.565 vs 0.502
