"""Fixtures shared by the integration tests (helpers live in ``exchange_harness``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from licentia.services.deps import Settings

from .exchange_harness import Exchange, start_exchange


@pytest.fixture
def ex(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Exchange]:
    """A real exchange on a free loopback port, on a SQLite store under ``tmp_path``; or, for a
    test parametrized ``@pytest.mark.parametrize("ex", ["postgres"], indirect=True)``, on a
    new database of the tests' PostgreSQL server."""
    db = ""
    if getattr(request, "param", "sqlite") == "postgres":
        pg = request.getfixturevalue("pg_server")
        db = pg.create_database(pg.template)
    exchange = start_exchange(tmp_path / "data", db=db)
    try:
        yield exchange
    finally:
        exchange.stop()


@pytest.fixture
def instant_ex(tmp_path: Path) -> Iterator[Exchange]:
    """As ``ex`` (SQLite), with no payout delay: a payout destination is usable as soon as
    it is added, for the tests that withdraw and are not about the delay."""
    exchange = start_exchange(
        tmp_path / "data", settings=Settings(heartbeat_seconds=0.5, payout_delay_seconds=0)
    )
    try:
        yield exchange
    finally:
        exchange.stop()
