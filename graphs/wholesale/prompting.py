"""What the wholesale roles are shown and how the buyer's answer is checked."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from malles_graph.graphs.wholesale.state import RuleProposal

from malles_graph.agents import TranscriptTurn
from malles_graph.wholesale import brief
from malles_graph.wholesale.demand import ItemDemand
from malles_graph.wholesale.formula import validate_formula
from malles_graph.wholesale.options import WholesaleOptions
from malles_graph.wholesale.simulator import validation_states

TURN_CHARS = 600  # each earlier turn is cut to this many characters in later prompts
TRANSCRIPT_TURNS = 6  # and only the latest turns are shown (the local model has a 4k context)


def rule_json_schema(item_ids: list[str]) -> dict[str, Any]:
    """RuleProposal's JSON schema narrowed for grammar-constrained decoding (llama.cpp, Ollama): ``orders``
    has exactly one non-negative number per item id, the formula only the characters the parser accepts.
    Validation still runs on the answer (other backends may ignore the schema)."""
    schema = RuleProposal.model_json_schema()
    schema["properties"]["formula"]["pattern"] = r"^[A-Za-z0-9_+*/^()., -]+$"
    schema["properties"]["orders"] = {
        "type": "object",
        "description": "units to order now, keyed by item id",
        "properties": {item: {"type": "number", "minimum": 0} for item in item_ids},
        "required": list(item_ids),
        "additionalProperties": False,
    }
    return schema


def transcript_text(turns: list[TranscriptTurn]) -> str:
    spoken = [t for t in turns if t.kind == "turn"][-TRANSCRIPT_TURNS:]
    if not spoken:
        return "(nothing said yet)"
    return "\n".join(f"{t.role} (round {t.round}): {t.text.strip()[:TURN_CHARS]}" for t in spoken)


def prompt_values(items: list[ItemDemand], options: WholesaleOptions, turns: list[TranscriptTurn]) -> dict[str, str]:
    return {
        "market": brief.market(items, options),
        "demand_outlook": brief.demand_outlook(items, options),
        "terms": brief.terms(items, options),
        "economics": brief.economics(items, options),
        "variables": brief.variables_text(),
        "functions": brief.functions_text(),
        "items": ", ".join(i.item_id for i in items),
        "transcript": transcript_text(turns),
    }


def proposal_validator(items: list[ItemDemand], options: WholesaleOptions) -> Callable[[RuleProposal], list[str]]:
    """Checks beyond the JSON schema: a parseable, finite, non-negative formula and one order per item."""
    states = validation_states(items, options)
    ids = [i.item_id for i in items]

    def check(proposal: RuleProposal) -> list[str]:
        problems = []
        _, reason = validate_formula(proposal.formula, states)
        if reason:
            problems.append(f"formula: {reason}")
        unknown = sorted(set(proposal.orders) - set(ids))
        missing = [i for i in ids if i not in proposal.orders]
        negative = sorted(item for item, quantity in proposal.orders.items() if not quantity >= 0)
        if unknown:
            problems.append(f"orders: unknown item(s) {unknown}; the items are {ids}")
        if missing:
            problems.append(f"orders: no quantity for item(s) {missing}")
        if negative:
            problems.append(f"orders: quantities must be >= 0 (items {negative})")
        return problems

    return check
