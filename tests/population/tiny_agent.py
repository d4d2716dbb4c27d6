"""A tiny agent graph honouring the agent contract, for supervisor tests (not the product's decision graph).

One node asks an LLMClient (built on a scripted chat model) for a structured Decision about the
situation, validates it against the candidates and returns ``{"outcome": AgentOutcome}``.
"""

from __future__ import annotations

import json
import time
from typing import Any, TypedDict

from langchain_core.messages import BaseMessage, HumanMessage
from langgraph.graph import END, START, StateGraph

from malles_graph.agents import AgentOutcome, TranscriptTurn
from malles_graph.backends.client import LLMClient
from malles_graph.models import ChoiceSituation, Decision
from tests.fakes import ScriptedChatModel


class TinyInput(TypedDict):
    agent_id: str
    situation: Any


class TinyState(TinyInput, total=False):
    outcome: AgentOutcome


class TinyOutput(TypedDict):
    outcome: AgentOutcome


def prompt(situation: ChoiceSituation) -> str:
    offer = [
        {"id": c.product_id, "price": c.price, "regular": c.regular_price,
         "popularity": (situation.market.popularity.get(c.product_id, 0) if situation.market else 0),
         "scarcity": (situation.market.scarcity.get(c.product_id, 0) if situation.market else 0)}
        for c in situation.candidates
    ]
    return "Choose one product.\nOFFER " + json.dumps({"customer": situation.customer.customer_id, "offer": offer})


def cheapest_responder(messages: list[BaseMessage], bad_customers: frozenset[str] = frozenset(),
                       delay_s: float = 0.0) -> str:
    """Picks the candidate with the lowest price relative to regular; 'bad' customers answer garbage."""
    if delay_s:
        time.sleep(delay_s)
    text = str(messages[0].content)
    payload = json.loads(text.split("OFFER ", 1)[1])
    if payload["customer"] in bad_customers:
        return '{"product_id": "not-a-product", "quantity": 1}'
    best = min(payload["offer"], key=lambda c: (c["price"] / max(c["regular"], 1e-9) - 0.3 * c["popularity"], c["id"]))
    return json.dumps({"product_id": best["id"], "quantity": 2, "rationale": "cheapest", "confidence": 0.8})


def scripted_client(responder=cheapest_responder) -> LLMClient:
    return LLMClient(ScriptedChatModel(responder=responder), backend="scripted", model_id="scripted",
                     max_concurrency=8, max_retries=1, structured=False, call_kwargs=lambda *_: {})


def build_tiny_agent(client: LLMClient):
    def decide(state: TinyState) -> dict:
        situation = state["situation"]
        if isinstance(situation, dict):
            situation = ChoiceSituation.model_validate(situation)
        result = client.structured(
            [HumanMessage(content=prompt(situation))], Decision,
            validator=lambda d: d.check_against(situation.candidate_ids),
        )
        turns = [TranscriptTurn(agent_id=state["agent_id"], role="decide", text=a.text,
                                kind="decision" if a.error is None else "retry") for a in result.attempts]
        if result.ok:
            outcome = AgentOutcome(agent_id=state["agent_id"], ok=True, choice=result.value.product_id,
                                   quantity=result.value.quantity, transcript=turns, llm_calls=len(result.attempts))
        else:
            outcome = AgentOutcome(agent_id=state["agent_id"], ok=False, error=result.error, transcript=turns,
                                   llm_calls=len(result.attempts))
        return {"outcome": outcome}

    builder = StateGraph(TinyState, input_schema=TinyInput, output_schema=TinyOutput)
    builder.add_node("decide", decide)
    builder.add_edge(START, "decide")
    builder.add_edge("decide", END)
    return builder.compile(name="tiny_agent")
