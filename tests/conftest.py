"""Fixtures shared by the unit and integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from licentia.services.store.postgres import migrate

from .pg_server import PgServer


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
