"""docs/decision-graph.md: the embedding example runs exactly as written; the context table is complete."""

from __future__ import annotations

import dataclasses
import re
import sys
import types
from pathlib import Path

import numpy as np
from malles_graph.graphs.decision import DecisionContext

from malles_graph.evaluation.choice_model import ChoiceModel
from malles_graph.evaluation.features import FEATURES, QUANTITY_FEATURES
from tests.graphs.decision_fixtures import IDS, situation

DOC = Path(__file__).resolve().parents[2] / "docs" / "decision-graph.md"


def example() -> str:
    text = DOC.read_text(encoding="utf-8")
    match = re.search(r"<!-- embed-example -->\n```python\n(.*?)```", text, re.DOTALL)
    assert match, "the embedding example block is missing from docs/decision-graph.md"
    return match.group(1)


def test_embedding_example_runs(tmp_path, monkeypatch, capsys):
    code = example()
    assert len(code.strip().splitlines()) <= 20
    monkeypatch.chdir(tmp_path)
    ChoiceModel(np.linspace(-1, 1, len(FEATURES)), np.zeros(len(QUANTITY_FEATURES)), 0.7).save("choice_model.json")
    # run it as a module of its own, like a user's script (TypedDict hints resolve in its globals)
    module = types.ModuleType("decision_doc_example")
    module.situation = situation().model_dump(mode="json")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(code, str(DOC), "exec"), module.__dict__)  # noqa: S102 - the documented example, verbatim
    out = module.out["outcome"]
    assert out.ok and out.choice in IDS and out.quantity >= 1
    assert capsys.readouterr().out.strip().endswith("True")


def test_every_context_field_is_documented():
    text = DOC.read_text(encoding="utf-8")
    for field in dataclasses.fields(DecisionContext):
        assert f"| `{field.name}` |" in text, field.name
