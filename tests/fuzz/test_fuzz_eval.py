"""Fuzz: case and prediction files end in scores or one clean EvaluationError naming the file (issue 16)."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from malles_graph.evaluation.cases import EvaluationError, read_cases, read_predictions
from malles_graph.evaluation.metrics import score
from tests.evaluation.test_cases import case_dict
from tests.fuzz.oracle import assert_clean_error
from tests.fuzz.strategies import scratch_folder, values

pytestmark = pytest.mark.fuzz
FOLDER = scratch_folder()
CASE_FIELDS = ["case_id", "date", "customer", "subclass", "candidates", "truth_product_id", "truth_quantity", "sparse"]
PRED_FIELDS = ["case_id", "product_id", "quantity", "probs", "error", "elapsed_s", "meta"]


def _json(value: object) -> str:
    return json.dumps(value, default=str, allow_nan=True)


@st.composite
def case_lines(draw: st.DrawFn) -> bytes:
    lines = []
    for i in range(draw(st.integers(0, 3))):
        data = case_dict(f"c{i}")
        for _ in range(draw(st.integers(0, 2))):
            data[draw(st.sampled_from(CASE_FIELDS))] = draw(values)
        lines.append(_json(data))
    if draw(st.booleans()):
        lines.insert(draw(st.integers(0, len(lines))), draw(st.text(max_size=40)))
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")


@st.composite
def prediction_lines(draw: st.DrawFn) -> bytes:
    probs = st.dictionaries(
        st.sampled_from(["p1", "p2", "zz"]), st.floats(allow_nan=True, allow_infinity=True) | st.integers(), max_size=3
    )
    lines = []
    for _ in range(draw(st.integers(0, 3))):
        data: dict[str, object] = {
            "case_id": draw(st.sampled_from(["c0", "c1", "c9"])),
            "product_id": draw(st.sampled_from(["p1", "p2", "zz", None])),
            "quantity": draw(st.integers(-2, 5) | st.none()),
        }
        if draw(st.booleans()):
            data["probs"] = draw(probs)
        if draw(st.integers(0, 4)) == 0:
            data[draw(st.sampled_from(PRED_FIELDS))] = draw(values)
        lines.append(_json(data))
    if draw(st.integers(0, 4)) == 0:
        lines.append(draw(st.text(max_size=30)))
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")


CASES = FOLDER / "good-cases.jsonl"
CASES.write_text("\n".join(_json(case_dict(f"c{i}")) for i in range(2)) + "\n")


GOOD_CASES = read_cases(CASES)
BY_ID = {c.case_id: c for c in GOOD_CASES}


@given(
    kind=st.sampled_from(["cases", "predictions"]),
    content=st.one_of(case_lines(), prediction_lines(), st.binary(max_size=200)),
)
def test_case_and_prediction_files(kind: str, content: bytes) -> None:
    path = FOLDER / f"{kind}.jsonl"
    path.write_bytes(content)
    try:
        if kind == "cases":
            cases = read_cases(path)
        else:
            preds = read_predictions(path, BY_ID)
    except EvaluationError as exc:
        assert_clean_error(exc, str(path))
        return
    if kind == "cases":
        assert cases and len({c.case_id for c in cases}) == len(cases)
        assert all(c.truth_product_id in c.candidate_ids for c in cases)
        return
    result = score(GOOD_CASES, preds, "fuzz").overall
    assert result.n == len(GOOD_CASES) and preds
    for figure in (result.hit1, result.hit3, result.logloss, result.coverage):
        assert figure is None or math.isfinite(figure)
