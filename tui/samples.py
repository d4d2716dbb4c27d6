"""The sample customer the editor renders prompts for and "try it" decides for.

A real Ta Feng shopper when the data is present (the busiest customer of the first
simulated day, built by the same SituationBuilder the runs use), else a small
built-in situation so the editor works on a machine without the data.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from malles_graph.models import Basket, BasketItem, CandidateHistory, ChoiceSituation, Customer, Product

SAMPLE_DAY = dt.date(2001, 2, 1)
_lock = threading.Lock()
_cached: ChoiceSituation | None = None


def builtin_situation() -> ChoiceSituation:
    day = SAMPLE_DAY
    ids = ["4710088620156", "4710114128038", "4712425010712"]
    return ChoiceSituation(
        situation_id=f"sample_{day:%Y%m%d}_100205",
        date=day,
        customer=Customer(
            customer_id="sample-01234567", age_group="35-39", pin_code="114", n_baskets=12,
            mean_basket_value=640.0, mean_unit_price=38.5, mean_quantity=1.8,
        ),
        subclass="100205",
        candidates=[
            Product(product_id=ids[0], subclass="100205", price=24.0, regular_price=27.0, popularity=0.21,
                    label="A", median_quantity=2),
            Product(product_id=ids[1], subclass="100205", price=31.0, regular_price=31.0, popularity=0.12,
                    label="B", median_quantity=1),
            Product(product_id=ids[2], subclass="100205", price=19.5, regular_price=22.0, popularity=0.08,
                    label="C", median_quantity=1),
        ],
        recent_baskets=[
            Basket(date=day - dt.timedelta(days=4), items=[
                BasketItem(product_id=ids[0], subclass="100205", quantity=2, unit_price=25.0),
                BasketItem(product_id="4710018000018", subclass="500210", quantity=1, unit_price=89.0),
            ]),
        ],
        own_history={ids[0]: CandidateHistory(times_bought=5, total_quantity=9, last_date=day - dt.timedelta(days=4),
                                               mean_price_paid=25.4)},
        persona_text="family-of-four, age 35-39, area 114, two adults, two children. Weekly big shop.",
    )


def tafeng_situation() -> ChoiceSituation:
    """The busiest Ta Feng customer on SAMPLE_DAY, in the subclass they spent most on (takes seconds)."""
    import polars as pl

    from malles_graph.retail.situations import SituationBuilder

    builder = SituationBuilder()
    today = builder.lines.filter(pl.col("date") == SAMPLE_DAY)
    busiest = today.group_by("customer_id").agg(pl.len().alias("n")).sort(["n", "customer_id"], descending=[True, False])
    return builder.build(busiest["customer_id"][0], SAMPLE_DAY).situation


def sample_situation(real: bool = True) -> ChoiceSituation:
    """The Ta Feng sample (cached) when ``real`` and the data loads, else the built-in one."""
    global _cached
    if not real:
        return builtin_situation()
    with _lock:
        if _cached is None:
            try:
                _cached = tafeng_situation()
            except Exception:  # noqa: BLE001 - no data on this machine: the built-in sample will do
                return builtin_situation()
        return _cached


def prompt_values(situation: ChoiceSituation) -> dict[str, Any]:
    """Every decision-prompt variable for ``situation``, made by the decision graph's own views."""
    from malles_graph.graphs.decision import role_vars

    return role_vars(situation, [], None, [], round_no=1)
