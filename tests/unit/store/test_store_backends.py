"""The store contract, each backend's own start: reopening, migrating, crashing."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import psycopg
import pytest
from sqlite_utils import Database

from licentia.services.model import (
    Cause,
)
from licentia.services.store import SqliteStore, Store, postgres, sqlite
from licentia.services.store.postgres import PostgresStore, migrate

from ...pg_server import PgServer
from .harness import (
    DAY,
    NOW,
    Opener,
    _concurrently,
    _holder,
    _issued,
)


# -- the backends' own start ---------------------------------------------------------------
def test_reopening_keeps_everything(opener: Opener) -> None:
    store = opener()
    lic = _issued(store, _holder(), 1)
    store.close()
    again = opener()  # migrations already applied: nothing re-run, nothing lost
    assert again.licence(lic.licence_id) == lic
    assert again.log_size() == 1


def test_replicas_starting_together_migrate_once(pg_server: PgServer) -> None:
    url = pg_server.create_database()  # empty: no migration applied yet
    applied: list[list[str]] = [[] for _ in range(6)]

    def start(i: int) -> None:
        applied[i] = migrate(url)

    assert _concurrently(6, start) == [None] * 6
    names = [n for a in applied for n in a]
    assert sorted(names) == [
        "m001_initial",
        "m002_live_exclusive_index",
        "m003_ledger",
        "m004_log",
        "m005_spent_nonces",
        "m006_exchange_keys",
        "m007_idempotency_digests",
        "m008_payout_destinations",
        "m009_accounts",
        "m010_account_logs",
        "m011_pseudonyms",
        "m012_offer_refs",
        "m013_erasure",
        "m014_status_lists",
        "m015_pg_issue",
        "m016_growth",
        "m017_reserves",
        "m018_pg_issue2",
        "m020_asset_digests",
    ]
    store = PostgresStore(url)
    assert store.pending_migrations() == []
    _issued(store, _holder(), 1)
    assert store.ledger_check() == []
    store.close()
    # A read-only store migrates nothing, and says what it lacks.
    behind = pg_server.create_database()
    reader = PostgresStore(behind, read_only=True)
    assert reader.pending_migrations() == sorted(names)
    reader.close()


def test_acknowledged_changes_survive_a_server_crash(pg_server: PgServer) -> None:
    """What a PostgreSQL store acknowledged is on disk: the server is stopped as by a power
    cut right after, and everything is there when it comes back."""
    url = pg_server.create_database(pg_server.template)
    store = PostgresStore(url)
    lic = _issued(store, _holder(), 1)
    store.revoke(lic.licence_id, NOW + 1, Cause.REVOKED)
    store.close()
    pg_server.crash_and_restart()
    again = PostgresStore(url)
    stored = again.licence(lic.licence_id)
    assert stored is not None
    assert stored.revoked_at == NOW + 1
    assert again.status(0)[2] == 1
    assert again.log_size() == 2
    assert again.ledger_check() == []
    again.close()


def _legacy(execute: Callable[[str, tuple[Any, ...]], object]) -> None:
    """Two licences and a revocation as a database before status lists held them."""
    for lid, index, days in ((b"\x01" * 16, 3, 5), (b"\x02" * 16, 4, 2)):
        execute(
            "INSERT INTO licences (licence_id, request_id, token, holder_key, licensee_key,"
            " issued_at, not_before, not_after, status_index, max_uses, exclusive)"
            " VALUES (?, ?, 'lic2.x', ?, ?, ?, ?, ?, ?, 0, 0)",
            (lid, lid, b"h" * 32, b"a" * 32, NOW, NOW, NOW + days * DAY, index),
        )
    execute(
        "INSERT INTO revocations (sequence, status_index, licence_id, licensee_key, revoked_at,"
        " cause) VALUES (1, 3, ?, ?, ?, 1)",
        (b"\x01" * 16, b"a" * 32, NOW + 1),
    )
    execute("UPDATE counters SET value = 64 WHERE name = 'status_index'", ())


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_m014_closes_the_legacy_list_and_keeps_its_licences(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exchange's licences before status lists are list 0, closed (its 64 indexes handed
    out), ending with its last licence; new licences go to list 1, and a slot is unique per
    (list, index), no longer per index."""
    before = [m for m in postgres.MIGRATIONS if m[0] < "m014"]
    if backend == "sqlite":
        path = tmp_path / "db"
        conn = sqlite3.connect(path, isolation_level=None)
        sqlite.migrations.apply(Database(conn), stop_before="m014_status_lists")
        _legacy(conn.execute)
        conn.close()
        store: Store = SqliteStore(path)
    else:
        pg: PgServer = request.getfixturevalue("pg_server")
        url = pg.create_database()
        monkeypatch.setattr(postgres, "MIGRATIONS", tuple(before))
        assert migrate(url)[-1] == "m013_erasure"
        monkeypatch.undo()
        with psycopg.connect(url, autocommit=True) as pconn:
            _legacy(lambda sql, params: pconn.execute(sql.replace("?", "%s").encode(), params))
        store = PostgresStore(url)
    try:
        ends = NOW + 5 * DAY
        assert store.status_lists(0) == [(0, ends)]
        assert store.status(0) == ([(0, ends)], [(0, 3)], 1)
        assert store.status(ends + 1) == ([], [], 1)  # list 0 ended: its revocations unread
        first = store.licence(b"\x01" * 16)
        assert first is not None
        assert (first.status_list, first.status_index) == (0, 3)
        assert store.reserve_status_slot(NOW + 30 * DAY) == (1, 0)
        move = "UPDATE licences SET status_list = ?, status_index = 3 WHERE licence_id = ?"
        with pytest.raises(Exception):  # noqa: B017,PT011 - each engine's IntegrityError
            cast(Any, store)._execute(move, (0, b"\x02" * 16))
        cast(Any, store)._execute(move, (1, b"\x02" * 16))  # (1, 3): another slot
    finally:
        store.close()
