"""The LangGraph checkpointer on the run store: SqliteSaver on the same file, PostgresSaver by URL.

The run id is the LangGraph thread id, so ``resume`` re-enters the graph from its last
checkpoint: supersteps that finished are not redone, and inside an interrupted fan-out only the
decisions whose writes were not yet saved run again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.serde.base import SerializerProtocol
from sqlalchemy.engine import make_url

from malles_graph.store.engine import SQLITE_BUSY_MS, StoreError, is_sqlite, normalise_url, safe_url, sqlite_path


def psycopg_conninfo(url: str) -> str:
    """A libpq connection string from a SQLAlchemy PostgreSQL URL (driver suffix dropped)."""
    parsed = make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


@contextmanager
def open_checkpointer(
    url: str | None, *, max_connections: int = 8, serde: SerializerProtocol | None = None
) -> Iterator[BaseCheckpointSaver]:
    """A checkpointer on the same database as the run store (tables created on first use).

    ``serde``: the serializer (the runner passes one whose allowlist holds the graph's types).
    """
    url = normalise_url(url)
    if is_sqlite(url):
        from langgraph.checkpoint.sqlite import SqliteSaver

        path = sqlite_path(url)
        conn = sqlite3.connect(str(path) if path else ":memory:", check_same_thread=False, timeout=SQLITE_BUSY_MS / 1000)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
        conn.execute("PRAGMA synchronous=NORMAL")
        try:
            saver = SqliteSaver(conn, serde=serde)
            saver.setup()
            yield saver
        finally:
            conn.close()
        return
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg.rows import dict_row
    from psycopg_pool import ConnectionPool

    try:
        pool = ConnectionPool(
            psycopg_conninfo(url),
            min_size=1,
            max_size=max_connections,
            kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row, "connect_timeout": 5},
            open=False,
        )
        pool.open(wait=True, timeout=10)
    except Exception as exc:  # psycopg and the pool raise several types
        raise StoreError(f"cannot open the checkpointer on {safe_url(url)}: {exc}") from None
    try:
        saver = PostgresSaver(pool, serde=serde)
        saver.setup()
        yield saver
    finally:
        pool.close()
