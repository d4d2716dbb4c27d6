"""Export one run's tables to CSV or parquet (one file per table) with polars."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import polars as pl
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from malles_graph.paths import output_folder
from malles_graph.store.repository import get_run
from malles_graph.store.tables import TABLES

ExportFormat = Literal["csv", "parquet"]


def table_frame(engine: Engine, run_id: str, table: str) -> pl.DataFrame:
    """The rows of ``table`` belonging to ``run_id`` as a DataFrame (columns in table order)."""
    model = TABLES[table]
    columns = list(model.model_fields)
    with Session(engine) as session:
        key = model.id if table == "runs" else model.run_id
        rows = session.exec(select(model).where(key == run_id)).all()
        data = [{c: getattr(r, c) for c in columns} for r in rows]
    if not data:
        return pl.DataFrame({c: [] for c in columns})
    return pl.DataFrame(data, infer_schema_length=None)


def export_run(engine: Engine, run_id: str, out_dir: str | Path, fmt: ExportFormat = "csv") -> list[Path]:
    """Write ``<out_dir>/<table>.<fmt>`` for every table; returns the files written."""
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"unknown export format {fmt!r}; use csv or parquet")
    get_run(engine, run_id)  # clear error for an unknown run
    out = output_folder(out_dir)
    written = []
    for table in TABLES:
        frame = table_frame(engine, run_id, table)
        path = out / f"{table}.{fmt}"
        if fmt == "csv":
            frame.write_csv(path)
        else:
            frame.write_parquet(path)
        written.append(path)
    return written
