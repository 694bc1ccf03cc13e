"""Fixtures shared by the unit and integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from .pg_server import PgServer

if TYPE_CHECKING:  # mypy checks services/ as its own package (README, Layout)
    from services.store.postgres import migrate
else:
    from licentia.services.store.postgres import migrate


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One real PostgreSQL server for the session (started on first use, stopped at the end),
    with a migrated template database that :meth:`PgServer.create_database` copies from."""
    server = PgServer().start()
    try:
        migrate(server.create_database(name="licentia_template"))
        server.template = "licentia_template"
        yield server
    finally:
        server.stop()
