"""Shared pieces of the wholesale tests: synthetic demand items and scripted role answers."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest

from malles_graph.wholesale.demand import ItemDemand

GOOD_RULE = "Max(0, forecast*(lead_time + 1) - inventory - on_order)"


def make_item(units: list[float], history_len: int, item_id: str = "A", price: float = 10.0) -> ItemDemand:
    start = dt.date(2001, 1, 1)
    periods = [start + dt.timedelta(days=7 * i) for i in range(len(units))]
    return ItemDemand(
        item_id=item_id,
        periods=periods,
        units=np.asarray(units, dtype=float),
        history_len=history_len,
        mean_price=price,
        mean_cost=price * 0.8,
        prices=np.full(len(units), price),
    )


@pytest.fixture
def items() -> list[ItemDemand]:
    return [
        make_item([100, 120, 90, 110, 105, 95, 130, 80, 100, 115], 6, "A", 10.0),
        make_item([40, 35, 50, 45, 38, 42, 60, 30, 44, 41], 6, "B", 25.0),
    ]


def rule_answer(formula: str, item_ids: list[str], quantity: float = 100) -> str:
    orders = {i: quantity for i in item_ids}
    return json.dumps({"formula": formula, "orders": orders, "rationale": "cover the lead time"})


def role_of(prompt: str) -> str:
    if "Write the purchasing rule" in prompt:
        return "purchasing_rule"
    if "marketing manager" in prompt:
        return "marketing"
    if "sales manager of the manufacturer" in prompt:
        return "manufacturer"
    return "wholesaler"
