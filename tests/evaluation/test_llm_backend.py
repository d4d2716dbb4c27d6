"""`eval run` through the real decision graph (graphs/decision.py).

The graph runs with its `choice-model` backend (no LLM: fast, deterministic) to test the wiring,
and once with the real bundled llama.cpp model (marked llm) on a single case.
"""

from __future__ import annotations

import pytest

from malles_graph.evaluation.metrics import score


def test_graph_runs_on_cases_with_the_choice_model_backend(real_cases, tmp_path):
    from malles_graph.cli.eval import LLMPredictor, eval_scenario
    from malles_graph.evaluation.choice_model import ChoiceModel
    from malles_graph.evaluation.runner import run_predictions

    train, test = real_cases
    model_path = ChoiceModel.fit(train).save(tmp_path / "cm.json")
    scenario = eval_scenario("choice-model", None, ["decision.samples=3"], ["no-retrieval"])
    predictor = LLMPredictor("graph", scenario, seed=1)
    predictor.config.choice_model_path = str(model_path)
    cases = test[:6]
    run_predictions(cases, predictor, tmp_path / "p.jsonl", batch_size=1)
    from malles_graph.evaluation.cases import read_predictions

    preds = read_predictions(tmp_path / "p.jsonl", {c.case_id: c for c in cases})
    assert [p.case_id for p in preds] == [c.case_id for c in cases]
    s = score(cases, preds)
    assert s.overall.coverage == 1.0
    assert all(p.probs is not None and abs(sum(p.probs.values()) - 1) < 1e-9 for p in preds)  # 3 votes
    assert all(p.meta is not None and p.meta["llm_calls"] == 0 for p in preds)


@pytest.mark.llm
def test_local_llm_answers_one_case(real_cases, tmp_path):
    from malles_graph.cli.eval import LLMPredictor, eval_scenario

    _, test = real_cases
    scenario = eval_scenario("local", None, ["backend.max_tokens=96", "backend.cache=false"], ["single-agent"])
    predictor = LLMPredictor("local", scenario, seed=0)
    predictor.config.decide_max_tokens = 96  # 56-64 tokens cut the bundled model's JSON off (its rationale runs on)
    pred = predictor.predict([test[0].situation()])[0]
    assert pred.case_id == test[0].case_id
    # the bundled model answers this case validly (with its repairs): a broken prompt or schema fails here
    assert pred.error is None and pred.product_id in test[0].candidate_ids and pred.quantity >= 1, pred.error
    assert pred.meta["llm_calls"] >= 1
