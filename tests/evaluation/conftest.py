"""Fixtures of the evaluation tests: a synthetic transaction table and small real Ta Feng case sets."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from malles_graph.evaluation.builder import TEST_SPLIT, TRAIN_SPLIT, SplitConfig, build_cases

D = dt.date


def tx_frame(rows: list[tuple]) -> pl.DataFrame:
    """A table with the tafeng.load() columns from (date, customer, subclass, product, quantity, unit_price)."""
    data = [
        {
            "row": i,
            "date": date,
            "customer_id": cust,
            "age_group": "35-39",
            "pin_code": "115",
            "subclass": sub,
            "product_id": prod,
            "quantity": qty,
            "cost": qty * price * 0.8,
            "sales": qty * price,
            "unit_price": price,
        }
        for i, (date, cust, sub, prod, qty, price) in enumerate(rows)
    ]
    return pl.DataFrame(data).with_columns(pl.col("row", "quantity").cast(pl.Int32))


SYN_SPLIT = SplitConfig(
    fit_start=D(2001, 1, 1),
    fit_end=D(2001, 1, 31),
    test_start=D(2001, 2, 1),
    test_end=D(2001, 2, 28),
    n_cases=50,
    k=6,
    seed=3,
    min_baskets=2,
    sparse_threshold=10,
)


@pytest.fixture
def synthetic() -> pl.DataFrame:
    """Customer C1 shops subclass S (products P1..P6) in January; buys P1 on Feb 10."""
    rows = []
    for day in range(1, 29, 3):  # other customers make the fit-period market
        for j, prod in enumerate(["P1", "P2", "P3", "P4", "P5", "P6"]):
            if (day + j) % 2 == 0:
                rows.append((D(2001, 1, day), f"X{j}", "S", prod, 1 + j % 2, 10.0 + j + (day % 3)))
    rows += [
        (D(2001, 1, 5), "C1", "S", "P1", 2, 11.0),
        (D(2001, 1, 5), "C1", "T", "Q1", 1, 50.0),
        (D(2001, 1, 20), "C1", "S", "P2", 1, 12.0),
        (D(2001, 2, 5), "C1", "S", "P4", 3, 13.0),  # test period, but before the decision date: history
        (D(2001, 2, 8), "X9", "S", "P5", 1, 9.0),  # P5's latest price before Feb 10
        (D(2001, 2, 10), "C1", "S", "P1", 4, 8.5),  # the decision: C1 buys 4 x P1 at 8.5
        (D(2001, 2, 10), "C1", "T", "Q1", 1, 55.0),
    ]
    return tx_frame(rows)


@pytest.fixture(scope="session")
def real_frame() -> pl.DataFrame:
    """A small slice of real Ta Feng: the 40 busiest subclasses (keeps tests fast)."""
    from malles_graph.data import tafeng

    df = tafeng.load()  # fails with "run `malles data fetch tafeng` first" when missing
    top = df.group_by("subclass").len().sort("len", descending=True).head(40)["subclass"]
    return df.filter(pl.col("subclass").is_in(top.to_list()))


@pytest.fixture(scope="session")
def real_cases(real_frame: pl.DataFrame):
    """(train, test) case lists from the real slice, train from the earlier window."""
    train = build_cases(TRAIN_SPLIT.model_copy(update={"n_cases": 1500}), df=real_frame)
    test = build_cases(TEST_SPLIT.model_copy(update={"n_cases": 600}), df=real_frame)
    return train, test
