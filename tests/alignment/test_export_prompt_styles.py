"""Export prompt styles: the `graph` style is exactly what the decision graph sends; `compact` still works."""

from __future__ import annotations

import json

import pytest
from malles_graph.graphs.decision import DecisionContext, decide_situation

from malles_graph.alignment.errors import AlignmentError
from malles_graph.alignment.export import ExportConfig, export, export_prompt_format, read_examples, read_pairs
from malles_graph.alignment.prompting import choice_prompt, parse_answer
from malles_graph.cli.align import graph_prompt_style
from malles_graph.evaluation.builder import TRAIN_SPLIT, build_cases
from tests.fakes import ScriptedChatModel
from tests.graphs.decision_fixtures import client


@pytest.fixture(scope="module")
def jan_cases(tafeng_path):
    return build_cases(TRAIN_SPLIT.model_copy(update={"n_cases": 40, "seed": 5}))


def graph_messages(situation, answer: str) -> list[dict[str, str]]:
    """The messages the decision graph sends in single-agent mode (retrieval off, Z on), captured."""
    model = ScriptedChatModel(script=[answer])
    ctx = DecisionContext(client=client(model), single_agent=True, retrieval=False, hidden_factors=True)
    result = decide_situation(situation, ctx)
    assert result.ok, result.outcome
    assert len(model.calls) == 1
    roles = {"human": "user", "system": "system", "ai": "assistant"}
    return [{"role": roles[m.type], "content": m.content} for m in model.calls[0]]


def test_graph_style_examples_are_exactly_the_graph_prompt(jan_cases, tmp_path) -> None:
    cfg = ExportConfig(n_examples=6, max_per_customer=1, pairs_per_example=1, prompt_format="graph", seed=2)
    manifest = export(cfg, tmp_path, cases=jan_cases, style=graph_prompt_style())
    assert manifest["prompt_format"] == "graph" == export_prompt_format(tmp_path)
    examples = read_examples(tmp_path)
    by_id = {c.case_id: c for c in jan_cases}
    for ex in examples[:4]:
        case = by_id[ex.id]
        target = ex.messages[-1]
        assert target["role"] == "assistant"
        # the graph accepts the exported answer as a valid decision of the true product and quantity
        sent = graph_messages(case.situation(), target["content"])
        assert ex.messages[:-1] == sent
        result = decide_situation(case.situation(), DecisionContext(
            client=client(ScriptedChatModel(script=[target["content"]])), single_agent=True, retrieval=False))
        assert (result.decision.product_id, result.decision.quantity) == (case.truth_product_id, case.truth_quantity)
        answer = json.loads(target["content"])
        assert list(answer) == ["product", "quantity", "rationale", "confidence"]
        prompt = choice_prompt(case.situation(), "graph", style=graph_prompt_style())
        assert parse_answer(target["content"], prompt) == (case.truth_product_id, case.truth_quantity)
        assert prompt.product_prefix() == '{"product": "'
        assert prompt.quantity_prefix(case.truth_product_id) == f'{{"product": "{answer["product"]}", "quantity": '
    pairs = read_pairs(tmp_path)
    assert pairs and pairs[0].prompt == next(e.messages[:-1] for e in examples if pairs[0].id.startswith(e.id + "#"))
    assert json.loads(pairs[0].rejected)["product"] != json.loads(pairs[0].chosen)["product"]


def test_compact_style_still_works(jan_cases, tmp_path) -> None:
    cfg = ExportConfig(n_examples=5, max_per_customer=1, prompt_format="compact", seed=2)
    manifest = export(cfg, tmp_path, cases=jan_cases)
    assert manifest["prompt_format"] == "compact" == export_prompt_format(tmp_path)
    by_id = {c.case_id: c for c in jan_cases}
    for ex in read_examples(tmp_path):
        case = by_id[ex.id]
        prompt = choice_prompt(case.situation(), "compact")
        assert ex.messages[:-1] == prompt.chat()
        assert [m["role"] for m in ex.messages] == ["system", "user", "assistant"]
        assert parse_answer(ex.messages[-1]["content"], prompt) == (case.truth_product_id, case.truth_quantity)
        assert prompt.product_prefix() == '{"product_id": "'


def test_graph_style_needs_the_renderer(jan_cases, tmp_path, monkeypatch) -> None:
    from malles_graph.alignment import prompting

    monkeypatch.setattr(prompting, "_STYLES", {})  # as in a process that never went through the CLI
    with pytest.raises(AlignmentError, match="rendered by the decision graph"):
        export(ExportConfig(n_examples=2, prompt_format="graph"), tmp_path, cases=jan_cases)
    with pytest.raises(AlignmentError, match="unknown prompt format"):
        choice_prompt(jan_cases[0].situation(), "debate")


@pytest.mark.llm
def test_likelihood_scoring_reads_the_graph_format(jan_cases, local_backend) -> None:
    import numpy as np

    from malles_graph.alignment.scoring import LlamaCppScorer

    scorer = LlamaCppScorer.local(prompt_format="graph", style=graph_prompt_style())
    case = jan_cases[0]
    scored = scorer.score(case.situation(), quantity=False)
    assert scored.probs.shape == (len(case.candidates),)
    assert scored.probs.sum() == pytest.approx(1.0) and np.all(scored.probs > 0)
    assert 0 < scored.mass <= 1.0 + 1e-6
