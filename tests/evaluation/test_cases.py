"""Case and prediction files: schema, round trip, and bad input named by file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from malles_graph.evaluation.cases import (
    ChoiceCase,
    EvaluationError,
    Prediction,
    done_case_ids,
    read_cases,
    read_predictions,
    schema,
    write_jsonl,
)
from malles_graph.models import ChoiceSituation


def case_dict(case_id: str = "c1", truth: str = "p2") -> dict:
    return {
        "case_id": case_id,
        "date": "2001-02-10",
        "customer": {"customer_id": "u1", "mean_quantity": 1.5},
        "subclass": "s",
        "candidates": [
            {"product_id": "p1", "subclass": "s", "price": 10, "regular_price": 12, "popularity": 0.5, "label": "A"},
            {"product_id": "p2", "subclass": "s", "price": 8, "regular_price": 8, "popularity": 0.2, "label": "B"},
        ],
        "truth_product_id": truth,
        "truth_quantity": 2,
    }


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_case_is_a_choice_situation_and_round_trips(tmp_path):
    case = ChoiceCase.model_validate(case_dict())
    assert isinstance(case, ChoiceSituation) and case.situation_id == "c1"
    situation = case.situation()
    assert type(situation) is ChoiceSituation and not hasattr(situation, "truth_product_id")
    path = tmp_path / "cases.jsonl"
    write_jsonl([case, ChoiceCase.model_validate(case_dict("c2", "p1"))], path)
    again = read_cases(path)
    assert [c.model_dump() for c in again][0] == case.model_dump()


def test_schema_generated_from_models():
    s = schema("case")
    assert {"case_id", "truth_product_id", "truth_quantity", "candidates", "sparse"} <= set(s["properties"])
    assert s["additionalProperties"] is False
    assert "probs" in schema("prediction")["properties"]
    with pytest.raises(EvaluationError, match="unknown schema"):
        schema("nope")


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("{not json", r"cases.jsonl:2: not valid JSON at column 2 \(Expecting property name enclosed in double quotes\)$"),
        ('{"case_id": "c\x01"}', r"cases.jsonl:2: not valid JSON at column 15 \(Invalid control character\)$"),
        (json.dumps({**case_dict("c2"), "colour": "red"}), r"cases.jsonl:2: invalid case: colour: Extra inputs"),
        (json.dumps(case_dict("c1")), r"cases.jsonl:2: duplicate case_id 'c1' \(first at line 1\)"),
        (json.dumps(case_dict("c2", truth="p9")), r"cases.jsonl:2: invalid case: .*'p9' is not among the candidates"),
        (json.dumps({**case_dict("c2"), "truth_quantity": 0}), r"cases.jsonl:2: invalid case: truth_quantity"),
        ("[1, 2]", r"cases.jsonl:2: expected a JSON object"),
        (
            json.dumps(case_dict("c2")).replace('"price": 10', '"price": Infinity'),
            r"cases.jsonl:2: invalid case: candidates.0.price: Input should be a finite number",
        ),
        (
            json.dumps(case_dict("c2")).replace('"popularity": 0.5', '"popularity": NaN'),
            r"cases.jsonl:2: invalid case: candidates.0.popularity: Input should be a finite number",
        ),
    ],
)
def test_bad_case_lines_named_with_line_numbers(tmp_path, bad_line, message):
    path = write_lines(tmp_path / "cases.jsonl", [json.dumps(case_dict("c1")), bad_line])
    with pytest.raises(EvaluationError, match=message):
        read_cases(path)


def test_a_null_attribute_is_a_missing_value(tmp_path):
    row = case_dict()
    row["candidates"][0]["attributes"] = {"display": None, "brand": "acme"}
    row["candidates"][1]["attributes"] = {"display": 1, "brand": None}
    case = read_cases(write_lines(tmp_path / "cases.jsonl", [json.dumps(row)]))[0]
    assert [p.attributes for p in case.candidates] == [{"brand": "acme"}, {"display": 1.0}]
    values = schema("case")["$defs"]["Product"]["properties"]["attributes"]["additionalProperties"]["anyOf"]
    assert {"type": "null"} in values


def test_a_panel_without_list_prices_or_candidate_subclasses(tmp_path):
    """A household panel has the price paid and the category of the choice, often no regular price and no
    subclass per candidate: the regular price is then the price (no discount) and the subclass the case's."""
    row = case_dict()
    row["candidates"] = [
        {"product_id": "p1", "price": 10},
        {"product_id": "p2", "price": 8, "regular_price": None, "subclass": "t"},
        {"product_id": "p3", "price": 6, "regular_price": 9},
    ]
    case = read_cases(write_lines(tmp_path / "cases.jsonl", [json.dumps(row)]))[0]
    assert [p.regular_price for p in case.candidates] == [10, 8, 9]
    assert [p.discount for p in case.candidates] == pytest.approx([0.0, 0.0, 1 / 3])
    assert [p.subclass for p in case.candidates] == ["s", "t", "s"]  # a candidate's own subclass is kept
    assert "regular_price" not in schema("case")["$defs"]["Product"]["required"]
    row["candidates"][0].pop("price")  # without a price there is nothing to fall back on
    with pytest.raises(EvaluationError, match=r"cases.jsonl:1: invalid case: candidates.0.price: Field required$"):
        read_cases(write_lines(tmp_path / "cases.jsonl", [json.dumps(row)]))


def test_a_past_purchase_of_a_candidate_is_in_its_subclass_when_the_panel_leaves_it_out(tmp_path):
    """A brand-choice panel's history is the customer's past purchases in the category: their items need no
    subclass when they are candidates; any other product's still does, and the error names it."""
    row = case_dict()
    row["candidates"][1].pop("subclass")
    row["recent_baskets"] = [
        {"date": "2001-02-01", "items": [{"product_id": "p1", "quantity": 2, "unit_price": 9}]},
        {"date": "2001-01-20", "items": [{"product_id": 12, "quantity": 1, "unit_price": 8, "subclass": "x"}]},
        {"date": "2001-01-10", "items": [{"product_id": "p2", "quantity": 1, "unit_price": 8}]},
    ]
    case = read_cases(write_lines(tmp_path / "cases.jsonl", [json.dumps(row)]))[0]
    assert [i.subclass for b in case.recent_baskets for i in b.items] == ["s", "x", "s"]
    row["recent_baskets"][0]["items"].append({"product_id": "p9", "quantity": 1, "unit_price": 3})
    with pytest.raises(EvaluationError, match=r"cases.jsonl:1: invalid case: recent_baskets.0.items.1.subclass: Field required$"):
        read_cases(write_lines(tmp_path / "cases.jsonl", [json.dumps(row)]))


def test_ids_and_codes_given_as_numbers_are_read_as_text(tmp_path):
    """A panel's export often writes product ids and area codes as JSON numbers."""
    row = case_dict()
    row["candidates"][0]["product_id"], row["candidates"][1]["product_id"], row["truth_product_id"] = 11, 12, 12
    row["customer"].update(customer_id=7, pin_code=115)
    row["candidates"][0]["attributes"] = {"pack_kg": 2, "brand": "acme"}
    row["recent_baskets"] = [{"date": "2001-02-01", "items": [{"product_id": 11, "subclass": "s", "quantity": 1, "unit_price": 9}]}]
    row["own_history"] = {"11": {"times_bought": 1, "total_quantity": 1, "last_date": "2001-02-01", "mean_price_paid": 9}}
    case = read_cases(write_lines(tmp_path / "cases.jsonl", [json.dumps(row)]))[0]
    assert [p.product_id for p in case.candidates] == ["11", "12"] and case.truth_product_id == "12"
    assert (case.customer.customer_id, case.customer.pin_code) == ("7", "115")
    assert case.recent_baskets[0].items[0].product_id == "11" and case.own_history["11"].times_bought == 1
    assert case.candidates[0].attributes == {"pack_kg": 2.0, "brand": "acme"}  # attribute numbers stay numbers


def test_missing_and_empty_case_files(tmp_path):
    with pytest.raises(EvaluationError, match="not found"):
        read_cases(tmp_path / "nope.jsonl")
    with pytest.raises(EvaluationError, match="no cases"):
        read_cases(write_lines(tmp_path / "empty.jsonl", [""]))


def test_bad_prediction_lines(tmp_path):
    cases = {"c1": ChoiceCase.model_validate(case_dict())}
    ok = Prediction(case_id="c1", product_id="p1", quantity=1).model_dump_json()
    path = write_lines(
        tmp_path / "p.jsonl", [ok, Prediction(case_id="zz", product_id="p1", quantity=1).model_dump_json()]
    )
    with pytest.raises(EvaluationError, match=r"p.jsonl:2: prediction for unknown case_id 'zz'"):
        read_predictions(path, cases)
    path = write_lines(tmp_path / "p.jsonl", [ok, ok])
    with pytest.raises(EvaluationError, match=r"p.jsonl:2: duplicate prediction"):
        read_predictions(path, cases)
    path = write_lines(tmp_path / "p.jsonl", [ok, '{"case_id": "c1", "quantity": -1}'])
    with pytest.raises(EvaluationError, match=r"p.jsonl:2: invalid prediction: quantity"):
        read_predictions(path, cases)
    path = write_lines(tmp_path / "p.jsonl", [ok, '{"case_id": "c1", "probs": {"p1": "x"}}'])
    with pytest.raises(EvaluationError, match=r"p.jsonl:2: invalid prediction: probs"):
        read_predictions(path, cases)


def test_done_ids_ignore_a_truncated_last_line(tmp_path):
    ok = Prediction(case_id="c1", product_id="p1", quantity=1).model_dump_json()
    path = tmp_path / "p.jsonl"
    path.write_text(ok + "\n" + '{"case_id": "c2", "prod', encoding="utf-8")
    assert done_case_ids(path) == {"c1"}
