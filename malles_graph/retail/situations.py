"""Choice situations from the Ta Feng data: one customer, one day, one product subclass.

Used by ``malles decide`` and the population graph. Nothing on or after the decision date
leaks into what the decision sees, except the offered prices of that day:

* **history**: the customer's lines strictly before the date (X_obs, recent baskets, own
  history with the candidates);
* **reference figures** of a product (regular price = median paid unit price, popularity =
  share of the subclass's units, median units per purchase line): all subclass lines
  strictly before the date, optionally limited to ``lookback_days``;
* **current price**: the product's mean paid unit price on the date if anybody bought it,
  else its latest daily price in the ``price_window_days`` (7) days before the date, else its
  regular price (never a price from after the date);
* **subclass**: the one given, else the subclass of the customer's largest purchase line
  (by money) on the date;
* **candidates**: the product the customer really bought in that subclass on the date
  (the one with most units, when they bought on the date), plus the subclass's most popular
  other products up to ``n_candidates``, shuffled with a seed derived from (seed, customer,
  date) and labelled A, B, C...

The transaction memory the graph retrieves from is built from the same data by
``malles_graph.retrieval`` (one episode per customer, day and subclass).
"""

from __future__ import annotations

import datetime as dt
import string
import zlib
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from malles_graph.data import tafeng
from malles_graph.errors import DataError
from malles_graph.models import ChoiceSituation, StyleParams

COLUMNS = tafeng.LINE_COLUMNS


@dataclass(frozen=True)
class SituationOptions:
    n_candidates: int = 5
    recent_baskets: int = 3
    max_basket_items: int = 8
    lookback_days: int | None = None
    seed: int = 0
    # days before the decision a sale still gives the current price (see prices_on); a week covers
    # Ta Feng's weekly promotions without reaching back to prices weeks old
    price_window_days: int = 7


@dataclass(frozen=True)
class BuiltSituation:
    """A situation plus what the customer really bought in the subclass that day (may be empty)."""

    situation: ChoiceSituation
    actual: dict[str, int] = field(default_factory=dict)


def _stable_seed(*parts: object) -> int:
    return zlib.crc32("|".join(map(str, parts)).encode())


class SituationBuilder:
    """Builds :class:`ChoiceSituation` objects from transactions (``tafeng.load()`` by default)."""

    def __init__(self, df: pl.DataFrame | None = None, options: SituationOptions | None = None) -> None:
        if df is None:
            df = tafeng.load(columns=COLUMNS)
        self.lines = tafeng.purchase_lines(df)
        self.options = options or SituationOptions()
        self._by_subclass: dict[str, pl.DataFrame] = {}

    # ------------------------------------------------------------------ pieces
    def subclass_lines(self, subclass: str) -> pl.DataFrame:
        if subclass not in self._by_subclass:
            self._by_subclass[subclass] = self.lines.filter(pl.col("subclass") == subclass)
        return self._by_subclass[subclass]

    def reference(self, subclass: str, before: dt.date) -> pl.DataFrame:
        """Per product of the subclass: units, popularity, regular price, median quantity (before the date)."""
        lines = self.subclass_lines(subclass).filter(pl.col("date") < before)
        if self.options.lookback_days:
            lines = lines.filter(pl.col("date") >= before - dt.timedelta(days=self.options.lookback_days))
        total = lines["quantity"].sum() or 1
        return (
            lines.group_by("product_id")
            .agg(
                units=pl.col("quantity").sum(),
                regular_price=pl.col("unit_price").median(),
                median_quantity=pl.col("quantity").median().cast(pl.Float64),
            )
            .with_columns(popularity=pl.col("units") / total)
            .sort(["units", "product_id"], descending=[True, False])
        )

    def prices_on(self, subclass: str, day: dt.date, products: list[str]) -> dict[str, float]:
        """The current unit price of each product that has one (callers fall back to the regular price).

        The mean paid unit price on ``day`` where the product sold that day, else its latest daily
        price within ``price_window_days`` before it; never a price from after ``day``. A product
        with no sale in that window has no current price here: a price weeks old (a promotion long
        over, or a price since cut) would misstate the shelf, so the regular price stands in.
        """
        earliest = day - dt.timedelta(days=self.options.price_window_days)
        lines = self.subclass_lines(subclass).filter(
            pl.col("product_id").is_in(products) & pl.col("date").is_between(earliest, day, closed="both")
        )
        daily = lines.group_by("product_id", "date").agg(price=pl.col("sales").sum() / pl.col("quantity").sum())
        latest = daily.sort("date").group_by("product_id").agg(pl.col("price").last())
        return dict(latest.iter_rows())

    # ------------------------------------------------------------------ one situation
    def build(
        self,
        customer_id: str,
        day: dt.date,
        subclass: str | None = None,
        style: StyleParams | None = None,
        persona_text: str | None = None,
    ) -> BuiltSituation:
        """The situation of ``customer_id`` on ``day`` (in ``subclass``, or the one they bought most in)."""
        opts = self.options
        cust = self.lines.filter(pl.col("customer_id") == customer_id)
        if cust.height == 0:
            raise DataError(f"customer {customer_id!r} is not in the transactions")
        today = cust.filter(pl.col("date") == day)
        if subclass is None:
            if today.height == 0:
                raise DataError(
                    f"customer {customer_id!r} bought nothing on {day}; give a subclass (--subclass) to decide in"
                )
            subclass = str(today.sort(["sales", "product_id"], descending=[True, False])["subclass"][0])
        ref = self.reference(subclass, day)
        if ref.height == 0:
            raise DataError(f"subclass {subclass!r} has no sales before {day}; nothing to offer")
        bought = today.filter(pl.col("subclass") == subclass).sort(["quantity", "product_id"], descending=[True, False])
        actual = dict(zip(bought["product_id"].to_list(), bought["quantity"].to_list(), strict=True))
        known = set(ref["product_id"].to_list())
        offered = [p for p in actual if p in known][:1]
        for pid in ref["product_id"].to_list():
            if len(offered) >= opts.n_candidates:
                break
            if pid not in actual:
                offered.append(pid)
        rng = np.random.default_rng(_stable_seed(opts.seed, customer_id, day, subclass))
        offered = [offered[i] for i in rng.permutation(len(offered))]
        prices = self.prices_on(subclass, day, offered)
        stats = {r["product_id"]: r for r in ref.filter(pl.col("product_id").is_in(offered)).iter_rows(named=True)}
        candidates = [
            {
                "product_id": pid,
                "subclass": subclass,
                "price": round(prices.get(pid, stats[pid]["regular_price"]), 4),
                "regular_price": round(stats[pid]["regular_price"], 4),
                "popularity": round(stats[pid]["popularity"], 6),
                "median_quantity": stats[pid]["median_quantity"],
                "label": string.ascii_uppercase[i],
            }
            for i, pid in enumerate(offered)
        ]
        past = cust.filter(pl.col("date") < day)
        situation = ChoiceSituation.model_validate(
            {
                "situation_id": f"{customer_id}_{day:%Y%m%d}_{subclass}",
                "date": day,
                "customer": self._customer(customer_id, past, today),
                "subclass": subclass,
                "candidates": candidates,
                "recent_baskets": self._recent_baskets(past),
                "own_history": self._own_history(past, offered),
                "style": style,
                "persona_text": persona_text,
            }
        )
        return BuiltSituation(situation, {p: int(q) for p, q in actual.items()})

    def _customer(self, customer_id: str, past: pl.DataFrame, today: pl.DataFrame) -> dict:
        last = (past if past.height else today).tail(1)
        out = {
            "customer_id": customer_id,
            "age_group": str(last["age_group"][0]) if last.height else "Unknown",
            "pin_code": str(last["pin_code"][0]) if last.height else "Unknown",
        }
        if past.height:
            n_baskets = past["date"].n_unique()
            sales, units = float(past["sales"].sum()), int(past["quantity"].sum())
            out |= {
                "n_baskets": n_baskets,
                "mean_basket_value": round(sales / n_baskets, 4),
                "mean_unit_price": round(sales / max(units, 1), 4),
                "mean_quantity": round(units / past.height, 4),
            }
        return out

    def _recent_baskets(self, past: pl.DataFrame) -> list[dict]:
        if not self.options.recent_baskets or past.height == 0:
            return []
        dates = sorted(past["date"].unique().to_list(), reverse=True)[: self.options.recent_baskets]
        out = []
        for d in dates:
            items = past.filter(pl.col("date") == d).sort(["sales", "product_id"], descending=[True, False])
            out.append(
                {
                    "date": d,
                    "items": [
                        {"product_id": p, "subclass": s, "quantity": q, "unit_price": round(u, 4)}
                        for p, s, q, u in items.head(self.options.max_basket_items)
                        .select("product_id", "subclass", "quantity", "unit_price")
                        .iter_rows()
                    ],
                }
            )
        return out

    def _own_history(self, past: pl.DataFrame, products: list[str]) -> dict[str, dict]:
        hist = (
            past.filter(pl.col("product_id").is_in(products))
            .group_by("product_id")
            .agg(
                times_bought=pl.len(),
                total_quantity=pl.col("quantity").sum(),
                last_date=pl.col("date").max(),
                mean_price_paid=pl.col("sales").sum() / pl.col("quantity").sum(),
            )
        )
        return {
            r["product_id"]: {
                "times_bought": r["times_bought"],
                "total_quantity": r["total_quantity"],
                "last_date": r["last_date"],
                "mean_price_paid": round(r["mean_price_paid"], 4),
            }
            for r in hist.iter_rows(named=True)
        }

    # ------------------------------------------------------------------ many situations
    def sample(
        self,
        n: int,
        start: dt.date = dt.date(2001, 2, 1),
        end: dt.date = dt.date(2001, 2, 28),
        min_baskets: int = 3,
        seed: int = 0,
    ) -> list[BuiltSituation]:
        """``n`` situations from random purchase lines in ``[start, end]`` of customers with history."""
        baskets = (
            self.lines.select("customer_id", "date")
            .unique()
            .sort("customer_id", "date")
            .with_columns(n_before=pl.col("date").cum_count().over("customer_id") - 1)
        )
        events = (
            self.lines.filter(pl.col("date").is_between(start, end))
            .join(baskets, on=["customer_id", "date"])
            .filter(pl.col("n_before") >= min_baskets)
            .select("customer_id", "date", "subclass")
            .unique()
            .sort("customer_id", "date", "subclass")
        )
        if events.height == 0:
            raise DataError(f"no purchases between {start} and {end} by customers with {min_baskets}+ baskets")
        rng = np.random.default_rng(seed)
        out: list[BuiltSituation] = []
        for i in rng.permutation(events.height):
            cid, day, sub = events.row(int(i))
            try:
                built = self.build(cid, day, sub)
            except DataError:
                continue
            if len(built.situation.candidates) >= 2:
                out.append(built)
            if len(out) >= n:
                break
        return out
