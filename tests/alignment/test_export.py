"""Export on real Ta Feng data: no test-period leakage, prompts identical to inference, hold-out and caps."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from malles_graph.alignment.errors import AlignmentError
from malles_graph.alignment.export import ExportConfig, check_no_leakage, export, read_examples, read_pairs
from malles_graph.alignment.prompting import choice_prompt, parse_answer
from malles_graph.evaluation.builder import TRAIN_SPLIT, build_cases


@pytest.fixture(scope="module")
def jan_cases(tafeng_path):
    return build_cases(TRAIN_SPLIT.model_copy(update={"n_cases": 120, "seed": 3}))


def test_export_writes_inference_prompts_without_leakage(jan_cases, tmp_path) -> None:
    cfg = ExportConfig(n_examples=60, max_per_customer=1, holdout_fraction=0.2, pairs_per_example=2, seed=4)
    manifest = export(cfg, tmp_path, cases=jan_cases)
    examples = read_examples(tmp_path)
    pairs = read_pairs(tmp_path)
    assert manifest["n_examples"] == len(examples) <= 60
    assert manifest["n_pairs"] == len(pairs) == 2 * len(examples)
    assert all(e.date < cfg.eval_test_start for e in examples)
    assert dt.date.fromisoformat(manifest["last_date"]) < cfg.eval_test_start
    holdout = set(manifest["holdout_subclasses"])
    assert holdout and not holdout & {e.subclass for e in examples}
    assert len({e.customer_id for e in examples}) == len(examples)  # max_per_customer=1
    by_id = {c.case_id: c for c in jan_cases}
    for ex in examples:
        case = by_id[ex.id]
        prompt = choice_prompt(case.situation())  # what scoring and serving render at inference
        assert ex.messages[:-1] == prompt.chat()
        assert "truth" not in json.dumps(ex.messages[:-1])
        assert case.truth_product_id not in ex.messages[1]["content"]  # labels, not product ids
        assert parse_answer(ex.messages[-1]["content"], prompt) == (case.truth_product_id, case.truth_quantity)
    for pair in pairs[:10]:
        assert pair.chosen != pair.rejected
        assert pair.prompt == next(e.messages[:-1] for e in examples if pair.id.startswith(e.id + "#"))


def test_leakage_guard_rejects_late_windows(jan_cases) -> None:
    late = ExportConfig(eval_test_start=dt.date(2001, 1, 15))
    with pytest.raises(AlignmentError, match="on or after the evaluation test start"):
        check_no_leakage(jan_cases, late)


def test_prompt_is_compact_and_answers_parse(jan_cases) -> None:
    prompt = choice_prompt(jan_cases[0])
    text = "\n".join(content for _, content in prompt.messages)
    assert len(text) < 1200
    assert sorted(prompt.keys) == [c.label for c in jan_cases[0].candidates]
    with pytest.raises(AlignmentError, match="not one of"):
        parse_answer('{"product_id": "Z", "quantity": 1}', prompt)
    with pytest.raises(AlignmentError, match="below 1"):
        parse_answer('{"product_id": "A", "quantity": 0}', prompt)


def test_population_reweighting_on_real_data(tafeng_path, tmp_path) -> None:
    import numpy as np

    from malles_graph.alignment.population import population_check
    from malles_graph.evaluation.builder import TEST_SPLIT

    pool = build_cases(TEST_SPLIT.model_copy(update={"n_cases": 600, "seed": 9}))
    rng = np.random.default_rng(0)
    # over-represent the residence area with the most agents, as an unbalanced archetype mix would
    top = max({c.customer.pin_code for c in pool}, key=lambda p: sum(c.customer.pin_code == p for c in pool))
    biased = [c for c in pool if c.customer.pin_code == top or rng.random() < 0.15]
    report = population_check(None, tmp_path / "w.json", ["pin_code"], cases=biased)
    assert report["raking_converged"]
    assert report["effective_sample_size"] < len(biased)
    # the weighted agents reproduce the real base's residence mix (demand error itself is noisy on
    # a few hundred agents; its reduction is tested where the truth is known, in test_reweighting)
    from malles_graph.alignment.population import real_shares
    from malles_graph.alignment.reweighting import load_weights, weighted_shares

    _, targets = real_shares(biased, ["pin_code"])
    labels = [c.customer.pin_code for c in biased]
    w = load_weights(tmp_path / "w.json").weights({"pin_code": labels})
    got = weighted_shares(labels, np.ones(len(labels)), w)
    total = sum(v for k, v in targets["pin_code"].items() if k in got)
    for k, v in got.items():
        assert v == pytest.approx(targets["pin_code"][k] / total, abs=1e-6)
    raw = weighted_shares(labels, np.ones(len(labels)))
    assert raw[top] > got[top] + 0.1  # the over-represented area is weighted down


@pytest.mark.parametrize(("reader", "what"), [(read_examples, "an SFT example file"), (read_pairs, "a preference pair")])
def test_a_binary_example_file_is_named(tmp_path, reader, what: str) -> None:
    path = tmp_path / "examples.jsonl"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    with pytest.raises(AlignmentError, match=f"examples.jsonl: not UTF-8 text .*; is it {what}"):
        reader(path)
