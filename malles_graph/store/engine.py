"""Database engines for run storage: SQLite by default (one file in the runs folder), PostgreSQL by URL.

* ``default_url()``: ``sqlite:///<runs_dir()>/malles.sqlite``.
* SQLite runs in WAL mode with a 30 s busy timeout, because the SQLModel writers (one per
  decision thread) and the LangGraph checkpointer share the file.
* PostgreSQL URLs may name a driver (``postgresql+psycopg://``) or not (``postgresql://``, which
  is mapped to psycopg 3); connections time out after 5 s so an unreachable server fails fast.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlmodel import SQLModel, create_engine

from malles_graph.errors import MallesError
from malles_graph.paths import output_file, runs_dir

DEFAULT_FILE = "malles.sqlite"
SQLITE_BUSY_MS = 30_000


class StoreError(MallesError):
    """The run store cannot be opened, reached or does not hold what was asked for."""


def default_url() -> str:
    return f"sqlite:///{runs_dir() / DEFAULT_FILE}"


def normalise_url(url: str | None) -> str:
    """The SQLAlchemy URL to use: the default SQLite file when empty; psycopg 3 for bare postgresql://."""
    url = url or default_url()
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"store URL {url!r} is not a database URL ({exc}); e.g. sqlite:///runs/malles.sqlite") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise StoreError(f"store URL {url!r}: only sqlite:/// and postgresql:// are supported")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for in-memory databases)."""
    database = make_url(url).database
    return Path(database) if database and database != ":memory:" else None


def make_engine(url: str | None = None, *, create: bool = True) -> Engine:
    """An engine for ``url`` (the default SQLite file when empty), tables created when ``create``."""
    url = normalise_url(url)
    if is_sqlite(url):
        path = sqlite_path(url)
        if path is not None:
            output_file(path)  # its folder made; a file in the way is one error naming it, not FileExistsError
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_MS / 1000})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 5})
    if create:
        try:
            from malles_graph.store import tables  # noqa: F401 - registers the tables on SQLModel.metadata

            SQLModel.metadata.create_all(engine)
            _add_missing_columns(engine)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open the run store {safe_url(url)}: {_first_line(exc)}") from None
    return engine


def _add_missing_columns(engine: Engine) -> None:
    """Add columns that later versions put on existing tables (nullable or defaulted), so an older store opens.

    ``create_all`` creates missing tables but never alters existing ones; this is the one
    migration step: ``ALTER TABLE ... ADD COLUMN`` for each model column the table lacks.
    """
    from sqlalchemy import inspect

    inspector = inspect(engine)
    for table in SQLModel.metadata.sorted_tables:
        if not inspector.has_table(table.name):
            continue
        present = {c["name"] for c in inspector.get_columns(table.name)}
        missing = [c for c in table.columns if c.name not in present]
        if not missing:
            continue
        with engine.begin() as conn:
            for column in missing:
                kind = column.type.compile(dialect=engine.dialect)
                default = column.default.arg if column.default is not None and column.default.is_scalar else None
                clause = "" if default is None else f" DEFAULT {_sql_literal(default)}"
                conn.exec_driver_sql(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}{clause}')


def _sql_literal(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def check_reachable(url: str | None) -> str:
    """Connect once (no tables created); raises StoreError naming the URL. Returns the normalised URL."""
    url = normalise_url(url)
    engine = make_engine(url, create=False)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot reach the run store {safe_url(url)}: {_first_line(exc)}") from None
    finally:
        engine.dispose()
    return url


def safe_url(url: str) -> str:
    """The URL with its password masked (for messages)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # noqa: ANN001 - DB-API connection
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
    # WAL + NORMAL: a killed process loses nothing committed; only a power cut may drop the last commits.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _first_line(exc: Exception) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
