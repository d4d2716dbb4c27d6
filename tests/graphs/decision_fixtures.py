"""Shared builders for the decision-graph tests: a small situation, scripted clients, a memory."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

from langchain_core.messages import BaseMessage

from malles_graph.backends import LLMClient, build_client
from malles_graph.models import (
    Basket,
    BasketItem,
    CandidateHistory,
    ChoiceSituation,
    Customer,
    Product,
    StyleParams,
)
from malles_graph.retail.retrieval_api import InMemoryRetriever, make_record
from malles_graph.scenario import BackendConfig
from tests.fakes import ScriptedChatModel

DAY = dt.date(2001, 2, 10)
IDS = ["4710011401128", "4710011401135", "4710011401142"]


def situation(style: StyleParams | None = None, **changes) -> ChoiceSituation:
    data = dict(
        situation_id="c1_20010210_100101",
        date=DAY,
        customer=Customer(customer_id="c1", age_group="30-34", pin_code="115", n_baskets=6,
                          mean_basket_value=400, mean_unit_price=50, mean_quantity=2),
        subclass="100101",
        candidates=[
            Product(product_id=IDS[0], subclass="100101", price=45, regular_price=50, popularity=0.4,
                    label="A", median_quantity=2),
            Product(product_id=IDS[1], subclass="100101", price=30, regular_price=30, popularity=0.2,
                    label="B", median_quantity=1),
            Product(product_id=IDS[2], subclass="100101", price=80, regular_price=70, popularity=0.1,
                    label="C", median_quantity=1),
        ],
        recent_baskets=[Basket(date=DAY - dt.timedelta(days=5), items=[
            BasketItem(product_id=IDS[0], subclass="100101", quantity=2, unit_price=45),
            BasketItem(product_id="999", subclass="200", quantity=1, unit_price=99),
        ])],
        own_history={IDS[0]: CandidateHistory(times_bought=3, total_quantity=6, last_date=DAY - dt.timedelta(days=5),
                                              mean_price_paid=46)},
        style=style,
    )
    data.update(changes)
    return ChoiceSituation(**data)


def answer(product: str, quantity: int, rationale: str = "fits", confidence: float = 0.8) -> str:
    return json.dumps({"product": product, "quantity": quantity, "rationale": rationale, "confidence": confidence})


def is_decide(messages: list[BaseMessage]) -> bool:
    return "Answer with only a JSON object" in str(messages[0].content)


def responder(decisions: list[str] | Callable[[list[BaseMessage]], str], turn: str = "I prefer A.") -> ScriptedChatModel:
    """Debate turns answer ``turn``; decide calls take ``decisions`` in order (or call it)."""
    queue = list(decisions) if isinstance(decisions, list) else None

    def respond(messages: list[BaseMessage]) -> str:
        if not is_decide(messages):
            return turn
        if queue is None:
            return decisions(messages)  # type: ignore[operator]
        if not queue:
            raise AssertionError("decision script exhausted")
        return queue.pop(0)

    return ScriptedChatModel(responder=respond)


def client(model: ScriptedChatModel) -> LLMClient:
    return build_client(BackendConfig(name="local", max_concurrency=1), chat_model=model, use_cache=False)


def memory() -> InMemoryRetriever:
    """Episodes of the subclass: c1's own, two neighbours, and one on the decision day (must never come back)."""
    rows = [("c1", DAY - dt.timedelta(days=20), 2, 0.9), ("c2", DAY - dt.timedelta(days=3), 4, 1.0),
            ("c3", DAY - dt.timedelta(days=9), 1, 1.0), ("c4", DAY, 50, 1.0)]
    return InMemoryRetriever([
        make_record(c, d, "100101", [IDS[0] if c != "c3" else IDS[1]], q, 45, r, "30-34", "115")
        for c, d, q, r in rows
    ])
