"""Build evaluation cases (JSON lines) from Ta Feng with a time split.

Definitions (also in docs/evaluation.md):

- **fit period** ``[fit_start, fit_end]``: the reference window. Regular prices, popularity,
  product median quantities and subclass sizes come only from it. The **test period**
  ``[test_start, test_end]`` starts after it; cases are purchases made in the test period.
- **history**: a case's customer features (X_obs), recent baskets and own history with the
  candidates use every line from ``fit_start`` up to the day *before* the decision date.
- **current price** of a candidate on the decision date: for the bought product, the unit price
  the customer paid; for the others, the product's quantity-weighted mean unit price that day if
  anybody bought it, else its latest daily price before the date. This is the only feature
  that looks at the decision date itself.
- **regular price**: the product's median unit price over fit-period lines.
- **popularity**: the product's share of its subclass's units in the fit period.
- **sparse** case: its subclass had fewer than ``sparse_threshold`` fit-period lines.

Purchase lines are first aggregated per (customer, date, product). A purchase becomes an
eligible case when the customer had at least ``min_baskets`` baskets before the date, the
product was sold in the fit period and its subclass offered at least two fit-period products.
Candidates are the bought product plus up to ``k - 1`` other fit-period products of the same
subclass drawn uniformly without replacement (excluding products the customer also bought in
that subclass that day, so the truth is unambiguous), shuffled with the seed and labelled A, B, C...
"""

from __future__ import annotations

import datetime as dt
import string
from collections.abc import Callable

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from malles_graph.data import tafeng
from malles_graph.errors import DataError
from malles_graph.evaluation.cases import ChoiceCase, EvaluationError

Progress = Callable[[str], None]


class SplitConfig(BaseModel):
    """How cases are cut from the transactions (all dates inclusive)."""

    model_config = ConfigDict(extra="forbid")

    fit_start: dt.date = Field(default=dt.date(2000, 11, 1), description="first day of the fit (reference) period")
    fit_end: dt.date = Field(default=dt.date(2001, 1, 31), description="last day of the fit period")
    test_start: dt.date = Field(default=dt.date(2001, 2, 1), description="first day purchases become cases")
    test_end: dt.date = Field(default=dt.date(2001, 2, 28), description="last day purchases become cases")
    n_cases: int = Field(default=2000, ge=1, description="cases sampled from the eligible purchases")
    k: int = Field(default=5, ge=2, le=26, description="candidates per case (fewer when the subclass is small)")
    seed: int = Field(default=0, ge=0, description="sampling and shuffling seed (numpy takes no negative seed)")
    min_baskets: int = Field(default=3, ge=0, description="baskets the customer must have before the date")
    sparse_threshold: int = Field(default=100, ge=0, description="fit-period lines below which a subclass is sparse")
    recent_baskets: int = Field(default=3, ge=0, description="recent baskets included per case")
    max_basket_items: int = Field(default=12, ge=1, description="items kept per recent basket (largest spend first)")
    subclasses: list[str] | None = Field(default=None, description="restrict cases to these subclasses")

    @model_validator(mode="after")
    def _ordered(self) -> SplitConfig:
        if not self.fit_start <= self.fit_end < self.test_start <= self.test_end:
            raise ValueError(
                "dates must satisfy fit_start <= fit_end < test_start <= test_end, got "
                f"{self.fit_start} {self.fit_end} {self.test_start} {self.test_end}"
            )
        return self


TEST_SPLIT = SplitConfig()
# Training cases for fitted baselines: the same builder on an earlier window (never the test cases).
TRAIN_SPLIT = SplitConfig(
    fit_start=dt.date(2000, 11, 1),
    fit_end=dt.date(2000, 12, 31),
    test_start=dt.date(2001, 1, 1),
    test_end=dt.date(2001, 1, 31),
    n_cases=5000,
    seed=1,
)

LINE_COLUMNS = tafeng.LINE_COLUMNS


def aggregate_lines(df: pl.DataFrame) -> pl.DataFrame:
    """One line per (customer, date, product, subclass): units and money summed."""
    try:
        return tafeng.purchase_lines(df)
    except DataError as exc:
        raise EvaluationError(str(exc)) from None


def reference_stats(lines: pl.DataFrame, cfg: SplitConfig) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per (subclass, product) and per subclass figures from the fit period only."""
    fit = lines.filter(pl.col("date").is_between(cfg.fit_start, cfg.fit_end))
    regular = fit.group_by("product_id").agg(
        regular_price=pl.col("unit_price").median(), median_quantity=pl.col("quantity").median().cast(pl.Float64)
    )
    subclass = fit.group_by("subclass").agg(fit_lines=pl.len(), fit_units=pl.col("quantity").sum())
    products = (
        fit.group_by("subclass", "product_id")
        .agg(units=pl.col("quantity").sum())
        .join(subclass, on="subclass")
        .join(regular, on="product_id")
        .with_columns(popularity=pl.col("units") / pl.col("fit_units"))
        .sort("subclass", "product_id")
    )
    subclass = subclass.join(products.group_by("subclass").agg(n_products=pl.len()), on="subclass")
    return products, subclass


def select_events(lines: pl.DataFrame, cfg: SplitConfig) -> pl.DataFrame:
    """Eligible test-period purchases, sampled with the seed (columns of ``lines``)."""
    products, subclass = reference_stats(lines, cfg)
    baskets = (
        lines.select("customer_id", "date")
        .unique()
        .sort("customer_id", "date")
        .with_columns(n_before=pl.col("date").cum_count().over("customer_id") - 1)
    )
    events = (
        lines.filter(pl.col("date").is_between(cfg.test_start, cfg.test_end))
        .join(baskets, on=["customer_id", "date"])
        .filter(pl.col("n_before") >= cfg.min_baskets)
        .join(products.select("subclass", "product_id"), on=["subclass", "product_id"], how="semi")
        .join(subclass.filter(pl.col("n_products") >= 2).select("subclass"), on="subclass", how="semi")
    )
    # at least one other fit-period product must remain after excluding the same-day purchases
    same_day = (
        lines.join(products.select("subclass", "product_id"), on=["subclass", "product_id"], how="semi")
        .group_by("customer_id", "date", "subclass")
        .agg(n_same_day=pl.len())
    )
    events = (
        events.join(same_day, on=["customer_id", "date", "subclass"])
        .join(subclass.select("subclass", "n_products"), on="subclass")
        .filter(pl.col("n_products") > pl.col("n_same_day"))
        .drop("n_same_day", "n_products")
    )
    if cfg.subclasses:
        events = events.filter(pl.col("subclass").is_in(cfg.subclasses))
    if events.height == 0:
        raise EvaluationError("no eligible purchases for this split; widen the test period or lower min_baskets")
    events = events.sort("customer_id", "date", "product_id", "subclass")  # joins do not keep order; seeds need it
    rng = np.random.default_rng(cfg.seed)
    take = rng.choice(events.height, size=min(cfg.n_cases, events.height), replace=False)
    return events[np.sort(take)].drop("n_before")


def build_cases(
    cfg: SplitConfig = TEST_SPLIT, df: pl.DataFrame | None = None, progress: Progress | None = None
) -> list[ChoiceCase]:
    """Select events and turn them into cases. ``df`` defaults to ``tafeng.load()``."""
    say = progress or (lambda _msg: None)
    if df is None:
        df = tafeng.load(columns=LINE_COLUMNS)
    say("aggregating lines")
    lines = aggregate_lines(df.filter(pl.col("date").is_between(cfg.fit_start, cfg.test_end)))
    say("selecting purchases")
    events = select_events(lines, cfg)
    say(f"building {events.height} cases")
    return cases_for_events(lines, events, cfg)


def cases_for_events(lines: pl.DataFrame, events: pl.DataFrame, cfg: SplitConfig) -> list[ChoiceCase]:
    """Cases for given purchases (rows with customer_id, date, subclass, product_id, quantity, unit_price).

    Separate from :func:`select_events` so a test can rebuild the same purchases from altered
    data and check that nothing on or after the decision date leaks into the features.
    """
    products, subclass = reference_stats(lines, cfg)
    rng = np.random.default_rng(cfg.seed + 7919)
    pool = {
        key[0]: (grp["product_id"].to_list())
        for key, grp in products.select("subclass", "product_id").group_by("subclass", maintain_order=True)
    }
    events = events.with_row_index("case").with_columns(pl.col("case").cast(pl.Int64))
    same_day = (
        events.select("case", "customer_id", "date", "subclass")
        .join(lines.select("customer_id", "date", "subclass", "product_id"), on=["customer_id", "date", "subclass"])
        .group_by("case")
        .agg(pl.col("product_id"))
    )
    bought_today = dict(zip(same_day["case"].to_list(), same_day["product_id"].to_list(), strict=True))

    # candidate sampling: truth plus uniform draws from the subclass's fit-period products, shuffled
    rows = []
    for case, sub, truth in events.select("case", "subclass", "product_id").iter_rows():
        exclude = set(bought_today.get(case, [])) | {truth}
        others = [p for p in pool.get(sub, []) if p not in exclude]
        n_other = min(cfg.k - 1, len(others))
        if n_other == 0:  # nothing else to offer: not a choice, skip (counted by the caller)
            continue
        others_pick = [others[i] for i in rng.choice(len(others), size=n_other, replace=False)]
        chosen = [truth, *others_pick]
        order = rng.permutation(len(chosen))
        for pos, idx in enumerate(order):
            rows.append((case, pos, chosen[idx], bool(idx == 0)))
    cands = pl.DataFrame(
        rows, schema={"case": pl.Int64, "pos": pl.Int64, "product_id": pl.String, "is_truth": pl.Boolean}, orient="row"
    )
    cands = cands.join(
        events.select("case", "customer_id", "date", "subclass", pl.col("unit_price").alias("paid")), on="case"
    )
    cands = _with_prices(cands, lines).join(
        products.select("subclass", "product_id", "popularity", "regular_price", "median_quantity"),
        on=["subclass", "product_id"],
        how="left",
    )
    history = _own_history(cands, lines)
    customers = _customer_features(events, lines)
    baskets = _recent_baskets(events, lines, cfg)

    sub_lines = dict(subclass.select("subclass", "fit_lines").iter_rows())
    cands_by_case = cands.sort("case", "pos").partition_by("case", as_dict=True, include_key=True)
    hist_by_case: dict[int, list[dict]] = {}
    for row in history.sort("case", "product_id").iter_rows(named=True):
        hist_by_case.setdefault(row["case"], []).append(row)
    cases = []
    for ev in events.iter_rows(named=True):
        case = ev["case"]
        if (case,) not in cands_by_case:
            continue
        cs = cands_by_case[(case,)]
        candidates = [
            {
                "product_id": r["product_id"],
                "subclass": ev["subclass"],
                "price": round(r["price"], 4),
                "regular_price": round(r["regular_price"], 4),
                "popularity": round(r["popularity"], 6),
                "median_quantity": r["median_quantity"],
                "label": string.ascii_uppercase[r["pos"]],
            }
            for r in cs.iter_rows(named=True)
        ]
        own = {
            h["product_id"]: {
                "times_bought": h["times_bought"],
                "total_quantity": h["total_quantity"],
                "last_date": h["last_date"],
                "mean_price_paid": round(h["mean_price_paid"], 4),
            }
            for h in hist_by_case.get(case, [])
        }
        fit_lines = int(sub_lines.get(ev["subclass"], 0))
        case_id = f"{ev['customer_id']}_{ev['date']:%Y%m%d}_{ev['product_id']}"
        cases.append(
            ChoiceCase.model_validate(
                {
                    "case_id": case_id,
                    "date": ev["date"],
                    "customer": customers[case],
                    "subclass": ev["subclass"],
                    "candidates": candidates,
                    "recent_baskets": baskets.get(case, []),
                    "own_history": own,
                    "truth_product_id": ev["product_id"],
                    "truth_quantity": int(ev["quantity"]),
                    "sparse": fit_lines < cfg.sparse_threshold,
                    "subclass_fit_transactions": fit_lines,
                }
            )
        )
    return cases


def _with_prices(cands: pl.DataFrame, lines: pl.DataFrame) -> pl.DataFrame:
    """Add ``price``: paid price for the truth, else that day's mean price, else the latest before."""
    daily = (
        lines.group_by("product_id", "date")
        .agg(day_price=pl.col("sales").sum() / pl.col("quantity").sum())
        .sort("product_id", "date")
    )
    cands = cands.join(daily, on=["product_id", "date"], how="left")
    before = daily.rename({"date": "price_date", "day_price": "last_price"}).sort("price_date")
    cands = (
        cands.with_columns(day_before=pl.col("date") - pl.duration(days=1))
        .sort("day_before")
        .join_asof(
            before,
            left_on="day_before",
            right_on="price_date",
            by="product_id",
            strategy="backward",
            check_sortedness=False,
        )
    )
    return cands.with_columns(
        price=pl.when(pl.col("is_truth")).then(pl.col("paid")).otherwise(pl.coalesce("day_price", "last_price"))
    ).drop("day_price", "last_price", "price_date", "day_before", "paid")


def _own_history(cands: pl.DataFrame, lines: pl.DataFrame) -> pl.DataFrame:
    """The customer's purchases of each candidate strictly before the decision date."""
    past = lines.select("customer_id", "product_id", pl.col("date").alias("past_date"), "quantity", "sales")
    return (
        cands.select("case", "customer_id", "product_id", "date")
        .join(past, on=["customer_id", "product_id"])
        .filter(pl.col("past_date") < pl.col("date"))
        .group_by("case", "product_id")
        .agg(
            times_bought=pl.len(),
            total_quantity=pl.col("quantity").sum(),
            last_date=pl.col("past_date").max(),
            mean_price_paid=pl.col("sales").sum() / pl.col("quantity").sum(),
        )
    )


def _customer_lines_before(events: pl.DataFrame, lines: pl.DataFrame) -> pl.DataFrame:
    past = lines.rename({"date": "past_date", "product_id": "past_product", "subclass": "past_subclass"})
    return (
        events.select("case", "customer_id", "date")
        .join(past, on="customer_id")
        .filter(pl.col("past_date") < pl.col("date"))
    )


def _customer_features(events: pl.DataFrame, lines: pl.DataFrame) -> dict[int, dict]:
    """X_obs from the customer's lines strictly before the date."""
    past = _customer_lines_before(events, lines)
    feats = (
        past.sort("past_date")
        .group_by("case")
        .agg(
            n_baskets=pl.col("past_date").n_unique(),
            basket_value=pl.col("sales").sum(),
            units=pl.col("quantity").sum(),
            n_lines=pl.len(),
            age_group=pl.col("age_group").last(),
            pin_code=pl.col("pin_code").last(),
        )
    )
    out: dict[int, dict] = {}
    customer = dict(events.select("case", "customer_id").iter_rows())
    for row in feats.iter_rows(named=True):
        out[row["case"]] = {
            "customer_id": customer[row["case"]],
            "age_group": row["age_group"],
            "pin_code": row["pin_code"],
            "n_baskets": row["n_baskets"],
            "mean_basket_value": round(row["basket_value"] / row["n_baskets"], 4),
            "mean_unit_price": round(row["basket_value"] / row["units"], 4),
            "mean_quantity": round(row["units"] / row["n_lines"], 4),
        }
    for case, cid in customer.items():  # min_baskets = 0: a customer without history
        out.setdefault(case, {"customer_id": cid})
    return out


def _recent_baskets(events: pl.DataFrame, lines: pl.DataFrame, cfg: SplitConfig) -> dict[int, list[dict]]:
    """The last ``cfg.recent_baskets`` baskets strictly before the date, most recent first."""
    if cfg.recent_baskets == 0:
        return {}
    past = _customer_lines_before(events, lines)
    past = (
        past.with_columns(rank=pl.col("past_date").rank("dense", descending=True).over("case"))
        .filter(pl.col("rank") <= cfg.recent_baskets)
        .sort(["case", "past_date", "sales", "past_product"], descending=[False, True, True, False])
        .with_columns(item=pl.int_range(pl.len()).over("case", "past_date"))
        .filter(pl.col("item") < cfg.max_basket_items)
    )
    out: dict[int, list[dict]] = {}
    for (case, date), grp in past.group_by("case", "past_date", maintain_order=True):
        items = [
            {"product_id": p, "subclass": s, "quantity": q, "unit_price": round(u, 4)}
            for p, s, q, u in grp.select("past_product", "past_subclass", "quantity", "unit_price").iter_rows()
        ]
        out.setdefault(case, []).append({"date": date, "items": items})
    return out
