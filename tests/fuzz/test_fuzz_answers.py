"""Fuzz: an LLM's decision answer is parsed into a valid decision or a repair reason, never an exception
(the parse and repair path of the decision graph: parse_structured with the decision schema and checks)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from malles_graph.graphs.decision.answer import DecisionAnswer, answer_problems, to_decision

from malles_graph.backends.client import parse_structured
from malles_graph.evaluation.cases import ChoiceCase
from malles_graph.models import NONE_PRODUCT
from tests.evaluation.test_cases import case_dict
from tests.fuzz.strategies import values

pytestmark = pytest.mark.fuzz
SITUATION = ChoiceCase.model_validate(case_dict("c1")).situation()
MAX_QUANTITY = 20

answer_dicts = st.fixed_dictionaries(
    {},
    optional={
        "product": st.sampled_from(["A", "B", "a", " b ", "C", "none", "p1", "", "Z"]) | values,
        "quantity": st.integers(-5, 50) | values,
        "rationale": st.text(max_size=40) | values,
        "confidence": st.floats(allow_nan=True, allow_infinity=True) | values,
    },
)


def wrap(payload: str, how: int) -> str:
    return [payload, f"```json\n{payload}\n```", f"Sure! Here it is: {payload} Hope that helps.", payload[:-3]][how]


answers = st.one_of(
    st.tuples(answer_dicts, st.integers(0, 3)).map(lambda t: wrap(json.dumps(t[0], default=str), t[1])),
    st.text(max_size=80),
    st.just("[" * 3_000 + "]" * 3_000),
    st.just('{"product": ' + "[" * 3_000 + "]" * 3_000 + "}"),
)


@given(text=answers)
def test_decision_answers(text: str) -> None:
    value, reason = parse_structured(text, DecisionAnswer, lambda a: answer_problems(a, SITUATION, MAX_QUANTITY))
    assert (value is None) != (reason is None)
    if value is None:
        assert isinstance(reason, str) and reason
        return
    decision = to_decision(value, SITUATION, 200)
    assert decision.product_id in [*SITUATION.candidate_ids, NONE_PRODUCT]
    assert 0 <= decision.quantity <= MAX_QUANTITY
    assert (decision.quantity == 0) == (decision.product_id == NONE_PRODUCT)
