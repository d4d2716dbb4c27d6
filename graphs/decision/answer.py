"""The decision answer: what the LLM answers, its JSON schema (llama.cpp grammar), validation and repair text."""

from __future__ import annotations

import json
from typing import Any

from malles_graph.graphs.decision.views import candidate_choices, label_map, labels
from pydantic import BaseModel, ConfigDict

from malles_graph.models import NONE_PRODUCT, ChoiceSituation, Decision


# ---------------------------------------------------------------- the decision answer
class DecisionAnswer(BaseModel):
    """What the LLM answers: a candidate label (or 'none'), units, a short reason, a confidence."""

    model_config = ConfigDict(extra="ignore")

    product: str
    quantity: int
    rationale: str = ""
    confidence: float = 0.5


def answer_text(label: str, quantity: int, rationale: str = "", confidence: float = 1.0) -> str:
    """A decide answer as JSON text, fields in the order the prompt asks (the aligned models' SFT target)."""
    return json.dumps(
        DecisionAnswer(product=label, quantity=quantity, rationale=rationale, confidence=confidence).model_dump()
    )


def label_keys(situation: ChoiceSituation) -> dict[str, str]:
    """Label -> product id (the answer keys of the decide prompts)."""
    return {lab: c.product_id for lab, c in zip(labels(situation), situation.candidates, strict=True)}


def answer_schema(situation: ChoiceSituation, max_quantity: int, rationale_chars: int) -> dict[str, Any]:
    """JSON schema for the llama.cpp grammar: the label is an enum, the rationale short."""
    return {
        "type": "object",
        "properties": {
            "product": {"type": "string", "enum": [*labels(situation), NONE_PRODUCT]},
            "quantity": {"type": "integer", "minimum": 0, "maximum": max_quantity},
            "rationale": {"type": "string", "maxLength": rationale_chars},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        },
        "required": ["product", "quantity", "rationale", "confidence"],
        "additionalProperties": False,
    }


def to_decision(answer: DecisionAnswer, situation: ChoiceSituation, rationale_chars: int) -> Decision:
    """The Decision an answer stands for (raises ValueError/ValidationError when it is invalid)."""
    mapping = label_map(situation)
    key = answer.product.strip()
    product_id = mapping.get(key, mapping.get(key.lower(), key))
    return Decision(
        product_id=product_id,
        quantity=answer.quantity,
        rationale=answer.rationale.strip()[:rationale_chars],
        confidence=min(1.0, max(0.0, answer.confidence)),
    )


def answer_problems(answer: DecisionAnswer, situation: ChoiceSituation, max_quantity: int) -> list[str]:
    """Why an answer is not a valid decision here (empty when valid); fed back for repair."""
    mapping = label_map(situation)
    key = answer.product.strip()
    problems = []
    if key not in mapping and key.lower() not in mapping:
        problems.append(f"product {answer.product!r} is not one of {candidate_choices(situation)}")
    if answer.quantity < 0:
        problems.append(f"quantity {answer.quantity} is negative")
    elif answer.quantity > max_quantity:
        problems.append(f"quantity {answer.quantity} is above the limit {max_quantity}")
    if not problems:
        is_none = mapping.get(key, mapping.get(key.lower())) == NONE_PRODUCT
        if is_none and answer.quantity != 0:
            problems.append('quantity must be 0 when product is "none"')
        if not is_none and answer.quantity == 0:
            problems.append("quantity must be at least 1 when a product is chosen")
    return problems
