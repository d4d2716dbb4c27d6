"""A throwaway PostgreSQL 15 server for the store tests (pytest-postgresql's process fixture).

pg_ctl is not on PATH here (/usr/lib/postgresql/15/bin) and the tests run as root, which
PostgreSQL refuses; ``pg_ctl_as_postgres.sh`` runs pg_ctl as the ``postgres`` system user.
Set MALLES_PG_BIN to use another PostgreSQL installation.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from pytest_postgresql import factories

PG_BIN = Path(os.environ.get("MALLES_PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_CTL_WRAPPER = Path(__file__).with_name("pg_ctl_as_postgres.sh")
HAVE_POSTGRES = (PG_BIN / "pg_ctl").exists() and (os.geteuid() != 0 or shutil.which("runuser") is not None)

postgresql_proc = factories.postgresql_proc(executable=str(PG_CTL_WRAPPER), user="postgres", port=None)


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> str:
    """A fresh, empty database on the session's PostgreSQL server, as a SQLAlchemy URL."""
    assert HAVE_POSTGRES, f"PostgreSQL not found in {PG_BIN}: install postgresql (apt) or set MALLES_PG_BIN"
    import psycopg

    proc = request.getfixturevalue("postgresql_proc")
    name = f"malles_{request.node.name.lower()}"[:60].replace("[", "_").replace("]", "_").replace("-", "_")
    admin = f"host={proc.host} port={proc.port} user={proc.user} dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql://{proc.user}@{proc.host}:{proc.port}/{name}"
