"""The PostgreSQL store when its connections die: a connection lost before anything could be
committed is replaced and the change or read runs again; one lost while committing is
UNAVAILABLE — the change may have been made, and a retry finds it — never INTERNAL."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest

from licentia.errors import LicentiaError, Reason
from licentia.keys import PrivateKey
from licentia.services.model import Party, Role
from licentia.services.store import postgres
from licentia.services.store.postgres import PostgresStore

from ..pg_server import PgServer

NOW = 1_800_000_000


@pytest.fixture
def url(pg_server: PgServer) -> str:
    return pg_server.create_database(template=pg_server.template)


@pytest.fixture
def store(url: str) -> Iterator[PostgresStore]:
    s = PostgresStore(url)
    yield s
    s.close()


def _holder(i: int, handle: str) -> Party:
    key = PrivateKey.from_seed(i.to_bytes(32, "big")).public.raw
    return Party(key, Role.HOLDER, handle, handle.title(), "FR", NOW)


def _terminate_every_other_backend(url: str) -> int:
    """What a restarted server or a network cut does to the store's pooled connections."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return len(rows)


def _grow_the_pool(store: PostgresStore, connections: int) -> None:
    """Hold ``connections`` pooled connections at once, so the pool keeps that many."""
    gate = threading.Barrier(connections)

    def hold(_: int) -> None:
        with store._pool.connection():
            gate.wait(timeout=10)

    with ThreadPoolExecutor(connections) as pool:
        list(pool.map(hold, range(connections)))


def test_pooled_connections_lost_while_idle_are_replaced(store: PostgresStore, url: str) -> None:
    store.add_party(_holder(1, "alice"))
    _grow_the_pool(store, 8)  # more dead connections than a change tries connections
    assert _terminate_every_other_backend(url) >= 8
    store.add_party(_holder(2, "bob"))  # a change on a dead connection runs again
    assert _terminate_every_other_backend(url) >= 1
    found = store.party(_holder(2, "bob").key)  # so does a read
    assert found is not None
    assert found.handle == "bob"


def test_a_snapshot_read_on_a_lost_connection_is_unavailable_and_the_next_one_works(
    store: PostgresStore, url: str
) -> None:
    _grow_the_pool(store, 8)
    assert _terminate_every_other_backend(url) >= 8
    with pytest.raises(LicentiaError) as e:
        store.ledger_check()  # one read snapshot: it cannot be run again for its caller
    assert e.value.reason is Reason.UNAVAILABLE
    assert store.ledger_check() == []  # the pool's dead connections were replaced


def test_a_change_whose_connections_keep_dying_is_unavailable(store: PostgresStore) -> None:
    with pytest.raises(LicentiaError) as e:
        store._transact(lambda c: c.execute("SELECT pg_terminate_backend(pg_backend_pid())"))
    assert e.value.reason is Reason.UNAVAILABLE


def test_a_connection_lost_while_committing_is_unavailable_and_a_retry_finds_the_change(
    store: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_exit = psycopg.Transaction.__exit__
    lost: list[bool] = []

    def commit_then_lose(self: Any, *exc: Any) -> bool:
        out: bool = real_exit(self, *exc)
        if exc[0] is None and not lost:  # the commit went through; its answer never came
            lost.append(True)
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return out

    monkeypatch.setattr(psycopg.Transaction, "__exit__", commit_then_lose)
    carol = _holder(3, "carol")
    with pytest.raises(LicentiaError) as e:
        store.add_party(carol)
    assert e.value.reason is Reason.UNAVAILABLE
    assert "may have been made" in str(e.value)
    assert store.party(carol.key) is not None  # it was made
    with pytest.raises(LicentiaError) as again:
        store.add_party(carol)
    assert again.value.reason is Reason.ALREADY_EXISTS  # a retry finds it, once


def test_a_statement_past_the_timeout_is_cancelled_and_unavailable_at_once(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server bounds every statement of the store's connections: a read or a change that
    runs too long is cancelled by PostgreSQL and answered UNAVAILABLE once, not retried."""
    monkeypatch.setattr(postgres, "STATEMENT_TIMEOUT_MS", 300)
    s = PostgresStore(url)
    try:
        for run in (
            lambda: s._rows("SELECT pg_sleep(3)"),
            lambda: s._transact(lambda c: c.execute("SELECT pg_sleep(3)")),
        ):
            t0 = time.monotonic()
            with pytest.raises(LicentiaError) as e:
                run()
            assert e.value.reason is Reason.UNAVAILABLE
            assert "did not answer within 0.3 s" in str(e.value)  # not taken for a lost link
            assert time.monotonic() - t0 < 1.5
        assert s.party(_holder(1, "alice").key) is None  # the store still answers
    finally:
        s.close()


def test_the_urls_own_connection_parameters_are_kept() -> None:
    base = "postgresql://u@db.internal/licentia"
    params = postgres.connection_params(base)
    assert params["connect_timeout"] == str(postgres.CONNECT_TIMEOUT_SECONDS)
    assert params["keepalives"] == "1"
    assert params["options"] == f"-c statement_timeout={postgres.STATEMENT_TIMEOUT_MS}"
    own = postgres.connection_params(
        base + "?connect_timeout=9&keepalives=0&options=-c%20work_mem%3D64MB"
    )
    assert "connect_timeout" not in own
    assert "keepalives" not in own
    timeout = postgres.STATEMENT_TIMEOUT_MS
    assert own["options"] == f"-c work_mem=64MB -c statement_timeout={timeout}"
    assert "options" not in postgres.connection_params(base + "?options=-c%20statement_timeout%3D0")
    assert "options" not in postgres.connection_params(base, statement_timeout=False)
