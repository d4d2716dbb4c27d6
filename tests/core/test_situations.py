"""Choice situations from the real Ta Feng data: what the decision sees, and nothing from the future."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from malles_graph.errors import DataError
from malles_graph.situations import SituationBuilder, SituationOptions


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


def test_episodes_are_memory_records_before_the_date(builder, built):
    s = built[0].situation
    records = builder.episodes(s.subclass, s.date, limit=50)
    assert 0 < len(records) <= 50
    assert all(r.date < s.date and r.subclass == s.subclass and r.quantity > 0 for r in records)
    assert len({r.id for r in records}) == len(records)
