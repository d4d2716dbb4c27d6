"""The provenance next to a prediction file (issue 19): the prompt set of an LLM run, checked on resume."""

from __future__ import annotations

import pytest

from malles_graph.evaluation.cases import EvaluationError, Prediction
from malles_graph.evaluation.runner import meta_path, prompt_digest_of, read_meta, run_predictions
from malles_graph.prompt_sets import load_prompt_set


class First:
    name = "first"

    def predict(self, situations):
        return [Prediction(case_id=s.situation_id, product_id=s.candidate_ids[0], quantity=1) for s in situations]


def test_prompt_set_is_stored_next_to_the_predictions_and_resume_keeps_it(real_cases, tmp_path):
    _, test = real_cases
    out = tmp_path / "p.jsonl"
    record = load_prompt_set().record()
    run_predictions(test[:3], First(), out, meta={"prompt_set": record})
    assert meta_path(out) == tmp_path / "p.jsonl.meta.json"
    assert read_meta(out) == {"prompt_set": record} and prompt_digest_of(out) == record["digest"]
    assert run_predictions(test[:5], First(), out, resume=True, meta={"prompt_set": record}) == (2, 3)

    other = {**record, "digest": "0" * 64}
    with pytest.raises(EvaluationError, match=r"p\.jsonl was written with prompt set .{12}, this run uses 000000000000"):
        run_predictions(test[:6], First(), out, resume=True, meta={"prompt_set": other})

    run_predictions(test[:3], First(), out)  # a baseline rewriting the file: no stale provenance left
    assert not meta_path(out).exists() and read_meta(out) == {} and prompt_digest_of(out) is None


def test_a_broken_meta_file_is_named(tmp_path):
    out = tmp_path / "p.jsonl"
    meta_path(out).write_text("[1, 2")
    with pytest.raises(EvaluationError, match=r"p\.jsonl\.meta\.json: not a readable JSON"):
        read_meta(out)
