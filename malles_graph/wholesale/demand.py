"""Real store demand: Ta Feng units per item (subclass or product) per complete week or day.

The Ta Feng data runs from Wednesday 2000-11-01 to Wednesday 2001-02-28, so only the weeks
fully inside that range are kept (16 Monday-to-Sunday weeks): a partial week would look like
a demand collapse. Periods where an item sold nothing count as zero demand.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from malles_graph.errors import DataError
from malles_graph.wholesale.options import WholesaleOptions


@dataclass(frozen=True)
class ItemDemand:
    """One stocked item: its demand per period, split into history and held-out window."""

    item_id: str
    periods: list[dt.date]  # start date of each period, history first
    units: np.ndarray  # units demanded per period (float)
    history_len: int
    mean_price: float  # Ta Feng mean unit price over the history (sales / units)
    mean_cost: float  # Ta Feng mean unit cost to the store over the history (cost / units)
    prices: np.ndarray | None = None  # mean unit price paid per period (NaN when nothing sold)

    @property
    def history(self) -> np.ndarray:
        return self.units[: self.history_len]

    @property
    def holdout(self) -> np.ndarray:
        return self.units[self.history_len :]

    @property
    def holdout_periods(self) -> list[dt.date]:
        return self.periods[self.history_len :]

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly form (graph state, run files)."""
        prices = self.prices if self.prices is not None else np.full(len(self.units), np.nan)
        return {
            "item_id": self.item_id,
            "periods": [p.isoformat() for p in self.periods],
            "units": [float(u) for u in self.units],
            "history_len": self.history_len,
            "mean_price": self.mean_price,
            "mean_cost": self.mean_cost,
            "prices": [None if np.isnan(p) else float(p) for p in prices],
        }

    @classmethod
    def from_dict(cls, data: dict) -> ItemDemand:
        prices = data.get("prices")
        return cls(
            item_id=str(data["item_id"]),
            periods=[p if isinstance(p, dt.date) else dt.date.fromisoformat(p) for p in data["periods"]],
            units=np.asarray(data["units"], dtype=float),
            history_len=int(data["history_len"]),
            mean_price=float(data["mean_price"]),
            mean_cost=float(data["mean_cost"]),
            prices=None if prices is None else np.array([np.nan if p is None else p for p in prices], dtype=float),
        )


def period_table(df: pl.DataFrame, options: WholesaleOptions) -> pl.DataFrame:
    """Units, sales and cost per (item, period start) over the complete periods of ``df``."""
    key = "subclass" if options.level == "subclass" else "product_id"
    every = "1w" if options.period == "week" else "1d"
    first, last = df["date"].min(), df["date"].max()
    table = (
        df.with_columns(pl.col("date").dt.truncate(every).alias("period"), pl.col(key).alias("item"))
        .group_by("item", "period")
        .agg(pl.col("quantity").sum().cast(pl.Float64).alias("units"), pl.col("sales").sum(), pl.col("cost").sum())
    )
    length = dt.timedelta(days=7 if options.period == "week" else 1)
    # keep only periods that lie entirely inside the data range
    return table.filter((pl.col("period") >= first) & (pl.col("period") + length - dt.timedelta(days=1) <= last))


def choose_items(table: pl.DataFrame, options: WholesaleOptions) -> list[str]:
    if options.items:
        known = set(table["item"].unique().to_list())
        unknown = [item for item in options.items if item not in known]
        if unknown:
            raise DataError(f"wholesale.items: unknown {options.level} id(s) {unknown} in the Ta Feng data")
        return list(options.items)
    totals = table.group_by("item").agg(pl.col("units").sum()).sort(["units", "item"], descending=[True, False])
    return totals["item"].head(options.n_items).to_list()


def load_demand(options: WholesaleOptions, df: pl.DataFrame | None = None) -> list[ItemDemand]:
    """Demand series of the stocked items; ``df`` defaults to the full Ta Feng table."""
    if df is None:
        from malles_graph.data import tafeng

        df = tafeng.load()
    table = period_table(df, options)
    all_periods = sorted(table["period"].unique().to_list())
    needed = options.periods + (options.history_periods or 2)
    if len(all_periods) < needed:
        raise DataError(
            f"wholesale: the data has {len(all_periods)} complete {options.period}s, fewer than "
            f"periods ({options.periods}) + history ({options.history_periods or 2})"
        )
    history_len = options.history_periods or len(all_periods) - options.periods
    periods = all_periods[len(all_periods) - options.periods - history_len :]
    items = choose_items(table, options)
    result = []
    for item in items:
        rows = table.filter(pl.col("item") == item)
        by_period = {r["period"]: r for r in rows.iter_rows(named=True)}
        units = np.array([by_period[p]["units"] if p in by_period else 0.0 for p in periods], dtype=float)
        prices = np.array(
            [by_period[p]["sales"] / by_period[p]["units"] if p in by_period else np.nan for p in periods], dtype=float
        )
        hist = [by_period[p] for p in periods[:history_len] if p in by_period]
        sold = sum(r["units"] for r in hist)
        if sold <= 0:
            raise DataError(f"wholesale: item {item} sold nothing in the history periods; choose another item")
        result.append(
            ItemDemand(
                item_id=str(item),
                periods=periods,
                units=units,
                history_len=history_len,
                mean_price=sum(r["sales"] for r in hist) / sold,
                mean_cost=sum(r["cost"] for r in hist) / sold,
                prices=prices,
            )
        )
    return result
