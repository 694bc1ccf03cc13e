"""Fixtures shared by the unit and integration tests."""

from __future__ import annotations

import os

# gRPC's fork handlers are on by default. This process runs gRPC servers and channels and also
# forks children that exec at once (initdb and pg_ctl as another user, the server as a real
# process); with the handlers on, such a child has died of SIGSEGV or SIGBUS before its exec
# while gRPC threads were busy (every PostgreSQL test lost to one initdb, in several full
# runs). Nothing here forks to use gRPC in the child, so the handlers are off, before gRPC is
# imported.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")
# The servers the tests start as processes run as one process (today's server) unless a test
# asks for more (tests/integration/test_processes.py): a worker per core in every one of them
# would cost the suite a process start each, for nothing they check.
os.environ.setdefault("LICENTIA_PROCESSES", "1")

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
