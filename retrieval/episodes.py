"""Ta Feng rows -> episodes: one document per (customer, day, product subclass).

An episode is what one customer bought in one subclass in one basket: the products,
the total units, the paid unit price and the price relative to the regular price. It is
the unit the decision graph reasons about (a customer facing one subclass on one day),
so a query filtered to a subclass and a date returns directly comparable past decisions.
817,741 rows give 699,799 episodes.

The regular price of a product is its modal unit price over the data set (ties: the
higher price), the usual shelf price; promotions show as a ratio below 1.
"""

from __future__ import annotations

import json

import polars as pl

from malles_graph.retail.retrieval_api import date_key, episode_text

EPISODE_KEYS = ["customer_id", "date", "subclass"]


def regular_prices(rows: pl.DataFrame) -> pl.DataFrame:
    """product_id -> regular_price (the most frequent unit price; ties: the higher one)."""
    counts = rows.group_by("product_id", "unit_price").agg(pl.len().alias("n"))
    return (
        counts.sort(["product_id", "n", "unit_price"], descending=[False, True, True])
        .group_by("product_id", maintain_order=True)
        .first()
        .select("product_id", pl.col("unit_price").alias("regular_price"))
    )


def build_episodes(rows: pl.DataFrame, limit: int | None = None) -> pl.DataFrame:
    """Group rows into episodes, in a stable order (date, customer, subclass); the first ``limit`` of them.

    Columns: id, text, customer_id, subclass, date (int yyyymmdd), age_group, pin_code,
    product_ids ("a,b"), n_products, quantity, unit_price, price_ratio. The order and the
    ids are deterministic, which is what makes an interrupted ingest resumable. Regular prices
    come from all ``rows`` whatever the limit; the limit cuts before the texts, which are made
    one by one (over a second for all 699,799 episodes).
    """
    regular = regular_prices(rows)
    lines = rows.join(regular, on="product_id", how="left").with_columns(
        regular_sales=pl.col("regular_price") * pl.col("quantity")
    )
    episodes = (
        lines.group_by(EPISODE_KEYS)
        .agg(
            pl.col("age_group").first(),
            pl.col("pin_code").first(),
            pl.col("product_id").unique(maintain_order=True).alias("products"),
            pl.col("quantity").sum().cast(pl.Int64),
            pl.col("sales").sum(),
            pl.col("regular_sales").sum(),
        )
        .with_columns(
            unit_price=pl.col("sales") / pl.col("quantity").clip(lower_bound=1),
            price_ratio=pl.when(pl.col("regular_sales") > 0)
            .then(pl.col("sales") / pl.col("regular_sales"))
            .otherwise(1.0),
            n_products=pl.col("products").list.len().cast(pl.Int64),
            product_ids=pl.col("products").list.join(","),
            # cast first: month() and day() are Int8 and would overflow when multiplied
            date=pl.col("date").dt.year().cast(pl.Int64) * 10000
            + pl.col("date").dt.month().cast(pl.Int64) * 100
            + pl.col("date").dt.day().cast(pl.Int64),
        )
        .sort(["date", "customer_id", "subclass"])
    )
    if limit is not None:
        episodes = episodes.head(limit)
    # Rounded once here so the text rebuilt from stored metadata equals the embedded text.
    episodes = episodes.with_columns(pl.col("unit_price").round(4), pl.col("price_ratio").round(4))
    episodes = episodes.with_columns(
        id=pl.concat_str([pl.col("customer_id"), pl.col("date").cast(pl.Utf8), pl.col("subclass")], separator="-"),
        text=pl.struct("age_group", "pin_code", "quantity", "n_products", "price_ratio").map_elements(
            lambda r: episode_text(r["age_group"], r["pin_code"], r["quantity"], r["n_products"], r["price_ratio"]),
            return_dtype=pl.Utf8,
        ),
    )
    return episodes.select(
        "id", "text", "customer_id", "subclass", "date", "age_group", "pin_code",
        "product_ids", "n_products", "quantity", "unit_price", "price_ratio",
    )


# Chroma filters on these; the rest of an episode rides in one JSON string, ``record``.
FILTER_KEYS = ("customer_id", "subclass", "date")
RECORD_KEYS = ("age_group", "pin_code", "product_ids", "quantity", "unit_price", "price_ratio")


def metadata(row: dict) -> dict:
    """The Chroma metadata of one episode row (everything but id and text).

    Only the keys queries filter on (:data:`FILTER_KEYS`) are metadata keys of their own; the
    other fields are packed into ``record``, a JSON list in :data:`RECORD_KEYS` order. Chroma
    writes one indexed row per metadata key, so six keys fewer cut the time of an ``add`` by a
    quarter. The text is not stored as a Chroma document either (its full-text index doubled the
    ingest time): it is rebuilt exactly from these values.
    """
    record = [
        row["age_group"],
        row["pin_code"],
        row["product_ids"],
        int(row["quantity"]),
        float(row["unit_price"]),
        float(row["price_ratio"]),
    ]
    return {
        "customer_id": row["customer_id"],
        "subclass": row["subclass"],
        "date": int(row["date"]),
        "record": json.dumps(record, separators=(",", ":")),
    }


def unpack(meta: dict) -> dict:
    """Every field of an episode from its Chroma metadata: :func:`metadata`'s layout, or the one key
    per field that memories built before 0.5.4 hold."""
    if "record" not in meta:
        return meta
    return {**{k: meta[k] for k in FILTER_KEYS}, **dict(zip(RECORD_KEYS, json.loads(meta["record"]), strict=True))}


__all__ = ["FILTER_KEYS", "RECORD_KEYS", "build_episodes", "regular_prices", "metadata", "unpack", "date_key"]
