"""The case builder: definitions, no leakage from on/after the decision date, seeded candidates."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import polars as pl
import pytest

from malles_graph.evaluation.builder import (
    SplitConfig,
    aggregate_lines,
    build_cases,
    cases_for_events,
    select_events,
)
from tests.evaluation.conftest import SYN_SPLIT, tx_frame

D = dt.date


def one_case(df: pl.DataFrame, events: pl.DataFrame | None = None, cfg: SplitConfig = SYN_SPLIT):
    lines = aggregate_lines(df)
    if events is None:  # the Feb 10 purchase (Feb 5 is eligible too; it serves as history here)
        events = select_events(lines, cfg).filter(pl.col("date") == D(2001, 2, 10))
    cases = cases_for_events(lines, events, cfg)
    assert len(cases) == 1
    return cases[0], events


def test_synthetic_case_definitions(synthetic):
    case, _ = one_case(synthetic)
    assert case.case_id == "C1_20010210_P1" == case.situation_id
    assert (case.truth_product_id, case.truth_quantity) == ("P1", 4)
    prices = {c.product_id: c for c in case.candidates}
    assert set(prices) == {"P1", "P2", "P3", "P4", "P5", "P6"}
    # current price: the truth's own paid price; P5 not sold on Feb 10 -> its latest price before (Feb 8)
    assert prices["P1"].price == 8.5
    assert prices["P5"].price == 9.0
    # regular price: median unit price over fit-period lines only (Feb lines ignored)
    fit = synthetic.filter((pl.col("product_id") == "P4") & (pl.col("date") <= D(2001, 1, 31)))
    assert prices["P4"].regular_price == pytest.approx(fit["unit_price"].median())
    # popularity: share of the subclass units in the fit period
    assert sum(c.popularity for c in case.candidates) == pytest.approx(1.0, abs=1e-5)
    # own history strictly before the date, test-period days included
    assert case.own_history["P4"].times_bought == 1 and case.own_history["P4"].total_quantity == 3
    assert case.own_history["P1"].last_date == D(2001, 1, 5)
    assert "P3" not in case.own_history
    assert case.customer.n_baskets == 3
    assert [b.date for b in case.recent_baskets] == [D(2001, 2, 5), D(2001, 1, 20), D(2001, 1, 5)]
    assert [c.label for c in case.candidates] == list("ABCDEF")
    assert case.subclass_fit_transactions > SYN_SPLIT.sparse_threshold and not case.sparse


def future_rows() -> list[tuple]:
    """Rows after the decision date that would change every feature if they leaked."""
    rows = []
    for day in range(11, 28):
        rows += [
            (D(2001, 2, day), "C1", "S", "P3", 9, 99.0),  # own history, baskets, X_obs
            (D(2001, 2, day), "C1", "T", "Q9", 7, 500.0),
            (D(2001, 2, day), "Y1", "S", "P2", 50, 1.0),  # prices, popularity, regular prices
            (D(2001, 2, day), "Y1", "S", "P6", 50, 300.0),
        ]
    return rows


def test_no_leakage_from_future_rows(synthetic):
    base, events = one_case(synthetic)
    rows = [
        (r["date"], r["customer_id"], r["subclass"], r["product_id"], r["quantity"], r["unit_price"])
        for r in synthetic.iter_rows(named=True)
    ]
    altered = tx_frame(rows + future_rows())
    again, _ = one_case(altered, events)
    assert again.model_dump() == base.model_dump()


def test_same_day_rows_change_only_the_current_price(synthetic):
    base, events = one_case(synthetic)
    rows = [
        (r["date"], r["customer_id"], r["subclass"], r["product_id"], r["quantity"], r["unit_price"])
        for r in synthetic.iter_rows(named=True)
    ]
    # on the decision date another customer buys P5 (at 20) and P6 (at 30): their current prices change
    altered = tx_frame(rows + [(D(2001, 2, 10), "Y2", "S", "P5", 1, 20.0), (D(2001, 2, 10), "Y2", "S", "P6", 3, 30.0)])
    again, _ = one_case(altered, events)
    changed = {c.product_id: c.price for c in again.candidates if c.price != base.candidates[0].price}
    assert {c.product_id: c.price for c in again.candidates}["P5"] == 20.0
    assert {c.product_id: c.price for c in again.candidates}["P6"] == 30.0
    strip = lambda case: case.model_dump(exclude={"candidates": {i: {"price"} for i in range(6)}})  # noqa: E731
    assert strip(again) == strip(base)
    assert changed


def test_candidates_seeded_truth_included_and_shuffled(real_frame):
    cfg = SplitConfig(n_cases=300, seed=5)
    a = build_cases(cfg, df=real_frame)
    b = build_cases(cfg, df=real_frame)
    assert [c.model_dump() for c in a] == [c.model_dump() for c in b]
    c = build_cases(cfg.model_copy(update={"seed": 6}), df=real_frame)
    assert [x.candidate_ids for x in a] != [x.candidate_ids for x in c]
    positions = Counter(x.candidate_ids.index(x.truth_product_id) for x in a)
    assert all(x.truth_product_id in x.candidate_ids for x in a)
    assert all(len(x.candidates) >= 2 for x in a)
    assert all(x.subclass == p.subclass for x in a for p in x.candidates)
    # the truth is spread over the positions (first place would hold all 300 without shuffling)
    assert len(positions) == 5 and max(positions.values()) < 0.35 * len(a)
    # features strictly before the date
    assert all(b.date < x.date for x in a for b in x.recent_baskets)
    assert all(h.last_date < x.date for x in a for h in x.own_history.values() if h.last_date)


def test_split_dates_validated():
    with pytest.raises(ValueError, match="fit_end < test_start"):
        SplitConfig(fit_end=D(2001, 2, 5))
