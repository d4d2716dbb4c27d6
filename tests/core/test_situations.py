"""Choice situations from the real Ta Feng data: what the decision sees, and nothing from the future."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from malles_graph.errors import DataError
from malles_graph.retail.situations import SituationBuilder, SituationOptions


@pytest.fixture(scope="module")
def builder(tafeng_path) -> SituationBuilder:
    return SituationBuilder(options=SituationOptions(n_candidates=5, seed=3))


@pytest.fixture(scope="module")
def built(builder):
    return builder.sample(3, seed=5)


def test_sampled_situations_offer_what_was_bought(built):
    assert len(built) == 3
    for b in built:
        s = b.situation
        assert b.actual and 2 <= len(s.candidates) <= 5
        assert [c.label for c in s.candidates] == list("ABCDE"[: len(s.candidates)])
        assert set(b.actual) & set(s.candidate_ids), "the real purchase is among the candidates"
        assert all(c.subclass == s.subclass and c.regular_price > 0 for c in s.candidates)


def test_history_is_strictly_before_the_date(builder, built):
    for b in built:
        s = b.situation
        assert all(bk.date < s.date for bk in s.recent_baskets)
        assert all(h.last_date < s.date for h in s.own_history.values())
        lines = builder.lines.filter((pl.col("customer_id") == s.customer.customer_id) & (pl.col("date") < s.date))
        assert s.customer.n_baskets == lines["date"].n_unique()


def test_same_inputs_same_situation(builder, built):
    s = built[0].situation
    again = builder.build(s.customer.customer_id, s.date, s.subclass).situation
    assert again == s


def test_subclass_defaults_to_the_largest_purchase(builder, built):
    s = built[0].situation
    day_lines = builder.lines.filter((pl.col("customer_id") == s.customer.customer_id) & (pl.col("date") == s.date))
    top = day_lines.sort(["sales", "product_id"], descending=[True, False])["subclass"][0]
    assert builder.build(s.customer.customer_id, s.date).situation.subclass == top


def test_errors_name_the_problem(builder, built):
    with pytest.raises(DataError, match="not in the transactions"):
        builder.build("no-such-customer", dt.date(2001, 1, 5))
    s = built[0].situation
    with pytest.raises(DataError, match="bought nothing on 1999-01-01"):
        builder.build(s.customer.customer_id, dt.date(1999, 1, 1))


def synthetic_lines() -> pl.DataFrame:
    """Four products of subclass s on a known calendar around the decision day (2001-02-10)."""
    d = dt.date
    rows = [  # (date, customer, product, quantity, sales)
        (d(2001, 1, 5), "x", "p_today", 1, 10.0), (d(2001, 1, 6), "x", "p_week", 1, 20.0),
        (d(2001, 1, 7), "x", "p_stale", 1, 30.0), (d(2001, 1, 8), "x", "p_future", 1, 40.0),
        (d(2001, 1, 9), "y", "p_stale", 1, 30.0),
        (d(2001, 1, 12), "y", "p_stale", 1, 45.0),     # weeks old: a promotion long over
        (d(2001, 2, 5), "y", "p_week", 2, 36.0),       # 5 days before: within the window, 18 a unit
        (d(2001, 2, 10), "y", "p_today", 2, 16.0),     # on the day: 8 a unit
        (d(2001, 2, 10), "c", "p_today", 1, 8.0),
        (d(2001, 2, 11), "y", "p_future", 1, 99.0),    # after the day: must never be seen
        (d(2001, 2, 11), "y", "p_week", 1, 5.0),
    ]
    return pl.DataFrame(
        {
            "date": [r[0] for r in rows], "customer_id": [r[1] for r in rows], "age_group": ["30-34"] * len(rows),
            "pin_code": ["115"] * len(rows), "subclass": ["s"] * len(rows), "product_id": [r[2] for r in rows],
            "quantity": [r[3] for r in rows], "sales": [r[4] for r in rows],
        }
    )


def test_current_prices_are_of_the_day_else_the_last_week_else_regular_never_later():
    builder = SituationBuilder(synthetic_lines(), SituationOptions(n_candidates=4, seed=0))
    s = builder.build("c", dt.date(2001, 2, 10), "s").situation
    price = {c.product_id: c.price for c in s.candidates}
    regular = {c.product_id: c.regular_price for c in s.candidates}
    assert price["p_today"] == 8.0  # sold on the day: that day's mean paid price
    assert price["p_week"] == 18.0  # not today, 5 days before: within the 7-day window
    assert price["p_stale"] == regular["p_stale"] == 30.0  # last sale 29 days before: regular, not 45
    assert price["p_future"] == regular["p_future"] == 40.0  # next sale after the day never leaks
    wider = SituationBuilder(synthetic_lines(), SituationOptions(n_candidates=4, price_window_days=60))
    assert {c.product_id: c.price for c in wider.build("c", dt.date(2001, 2, 10), "s").situation.candidates}[
        "p_stale"
    ] == 45.0
