"""The store contract's backends: every test runs against SQLite on a file and PostgreSQL on a
real server the tests start themselves (``tests/pg_server.py``).

Each test gets a fresh database; ``opener`` opens another store on the same database, which
for PostgreSQL stands for another exchange replica (its own pool, no shared Python state),
so the concurrency tests check what the engine guarantees, not what one process's locks do.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from licentia.services.store import SqliteStore, Store
from licentia.services.store.postgres import PostgresStore

from ...pg_server import PgServer
from .harness import (
    Opener,
)


# -- the backends --------------------------------------------------------------------------
@pytest.fixture(params=["sqlite", "postgres"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens stores on one fresh database of the backend; closes them at the end."""
    opened: list[Store] = []
    if request.param == "sqlite":
        path = tmp_path / "licentia.db"

        def make() -> Store:
            s: Store = SqliteStore(path)
            opened.append(s)
            return s
    else:
        server: PgServer = request.getfixturevalue("pg_server")
        url = server.create_database(template=server.template)

        def make() -> Store:
            s: Store = PostgresStore(url)
            opened.append(s)
            return s

    yield make
    for s in opened:
        s.close()


@pytest.fixture
def store(opener: Opener) -> Iterator[Store]:
    """A store on a fresh database; its ledger must check out after every test."""
    s = opener()
    yield s
    assert s.ledger_check() == []
