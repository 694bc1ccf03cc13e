"""The platform SDK against a real exchange: register, the inline verifier with a nonce store
shared by two instances (SQLite file, PostgreSQL), per-use reports; and the shared stores'
own rules (expiry, sweep, failing closed)."""

from __future__ import annotations

import dataclasses
import secrets
import sqlite3
import time
from pathlib import Path

import psycopg
import pytest

from licentia.clients.channel import ExchangeError
from licentia.clients.platform import (
    Platform,
    PostgresNonceStore,
    SqliteNonceStore,
    open_nonce_store,
    sdk,
)
from licentia.clients.verifier import cli, nonces
from licentia.clients.verifier.cli import main as verify_main
from licentia.errors import Reason
from licentia.keys import PrivateKey
from licentia.nonces import NonceStoreUnavailableError
from licentia.presentation import present
from licentia.vocabulary import Medium

from ..pg_server import PgServer
from .exchange_harness import (
    PHOTO_SHA,
    Exchange,
    issue_licence,
    photo_use,
    register_advertiser,
    register_holder,
)

AUDIENCE = "photoshare"


def _two_instances_share(ex: Exchange, where: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Two instances of one platform (each its own client and verifier) on one nonce store:
    a presentation checked by the first is REPLAYED at the second (and at licentia-verify
    on the same store); a fresh one is allowed; a per-use licence's use is reported and
    counted."""
    holder, adv = ex.party(), ex.party()
    register_holder(holder)
    register_advertiser(adv)
    key = PrivateKey.generate()
    with Platform.connect(ex.address, key) as one, Platform.connect(ex.address, key) as two:
        profile = one.register(AUDIENCE, "PhotoShare")
        assert (profile.platform_id, profile.name) == (AUDIENCE, "PhotoShare")
        with pytest.raises(ExchangeError):
            two.register(AUDIENCE, "PhotoShare")  # registered once
        licence = issue_licence(holder, adv, max_uses=3, price_per_use=100)
        use = photo_use()
        pres = present(adv.key, licence.licence_id, AUDIENCE, use, int(time.time()))
        with one.verifier(AUDIENCE, nonces=where) as v1, two.verifier(AUDIENCE, nonces=where) as v2:
            assert v1.check(licence.token, pres, use).allowed
            replay = v2.check(licence.token, pres, use)
            assert (replay.allowed, replay.reasons) == (False, (Reason.REPLAYED,))
            again = present(adv.key, licence.licence_id, AUDIENCE, use, int(time.time()))
            assert v2.check(licence.token, again, use).allowed
        # licentia-verify on the platform's store sees the same presentation as replayed.
        argv = [
            *("--server", ex.address, licence.token, "--category", "image"),
            *("--purpose", "personalised-advertising", "--medium", "online", "--territory", "FR"),
            *("--asset-sha256", PHOTO_SHA.hex(), "--presentation", again),
            *("--platform-id", AUDIENCE, "--nonce-store", where),
        ]
        assert verify_main(argv) == 1
        assert capsys.readouterr().out == "DENY REPLAYED\n"
        report = two.report_use(licence.token, again, use)
        assert (report.licence_id, report.uses, report.max_uses) == (licence.licence_id, 1, 3)
        retried = two.report_use(licence.token, again, use, report_id=report.report_id)
        assert retried.uses == 1  # the same report counts once
        tv = dataclasses.replace(use, medium=Medium.TV)
        on_tv = present(adv.key, licence.licence_id, AUDIENCE, tv, int(time.time()))
        with pytest.raises(ExchangeError) as e:  # the refusal says what the licence allows
            two.report_use(licence.token, on_tv, tv)
        assert e.value.reason == Reason.OUT_OF_SCOPE_MEDIUM
        assert e.value.message == (
            "the use is not allowed: OUT_OF_SCOPE_MEDIUM; "
            "use medium: the licence allows online; the use is tv"
        )
        assert two.report_use(licence.token, again, use, report_id=report.report_id).uses == 1


def test_two_instances_share_a_sqlite_nonce_file(
    ex: Exchange, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _two_instances_share(ex, str(tmp_path / "platform" / "nonces.sqlite"), capsys)
    assert (tmp_path / "platform" / "nonces.sqlite").stat().st_mode & 0o077 == 0


def test_two_instances_share_a_postgres_nonce_table(
    ex: Exchange, pg_server: PgServer, capsys: pytest.CaptureFixture[str]
) -> None:
    _two_instances_share(ex, pg_server.create_database(), capsys)


def test_the_sqlite_store_expires_sweeps_and_fails_closed(tmp_path: Path) -> None:
    a, b = SqliteNonceStore(tmp_path / "n.sqlite"), open_nonce_store(tmp_path / "n.sqlite")
    assert isinstance(b, SqliteNonceStore)
    assert a.add_if_new(b"k", expires_at=110, now=100)
    assert not b.add_if_new(b"k", expires_at=120, now=105)  # live in the other instance
    assert b.add_if_new(b"k", expires_at=130, now=110)  # expired: taken over
    assert not a.add_if_new(b"k", expires_at=140, now=120)
    assert not a.add_if_new(b"x" * 257, expires_at=140, now=120)  # oversized key: refused
    assert a.add_if_new(b"old", expires_at=101, now=100)
    assert a.sweep(200) == 2
    assert len(a) == 0
    # A writer holding the file's lock: the store cannot answer, and says so (not "seen").
    blocker = sqlite3.connect(tmp_path / "n.sqlite", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    slow = SqliteNonceStore(tmp_path / "n.sqlite", timeout=0.1)
    fresh = secrets.token_bytes(16)
    with pytest.raises(NonceStoreUnavailableError) as e:
        slow.add_if_new(fresh, expires_at=300, now=200)
    assert e.value.reason == Reason.UNAVAILABLE
    blocker.execute("ROLLBACK")
    assert slow.add_if_new(fresh, expires_at=300, now=200)  # nothing was recorded
    for s in (a, b, slow):
        s.close()
    blocker.close()


def test_the_postgres_store_fails_closed_then_reconnects(pg_server: PgServer) -> None:
    dsn = pg_server.create_database()
    store = PostgresNonceStore(dsn, timeout=2)
    assert store.add_if_new(b"k", expires_at=110, now=100)
    assert not store.add_if_new(b"k", expires_at=110, now=105)
    assert store._conn is not None
    with psycopg.connect(dsn, autocommit=True) as admin:  # the connection dies under it:
        admin.execute("SELECT pg_terminate_backend(%s)", (store._conn.info.backend_pid,))
    # … unavailable, not "seen" …
    with pytest.raises(NonceStoreUnavailableError):
        store.add_if_new(b"n", expires_at=110, now=100)
    assert store.add_if_new(b"n", expires_at=110, now=100)  # … then a new connection
    assert store.sweep(200) == 2
    store.close()


def _failing_sweeps(
    monkeypatch: pytest.MonkeyPatch, store: SqliteNonceStore | PostgresNonceStore, error: Exception
) -> tuple[list[int], list[int]]:
    """Sweep every 2 records; the first two sweeps of ``store`` fail with ``error``. The
    times of the sweeps tried, and how many rows each that succeeded deleted."""
    monkeypatch.setattr(nonces, "SWEEP_EVERY", 2)
    sweep, calls, swept = store.sweep, [], []

    def failing(now: int) -> int:
        calls.append(now)
        if len(calls) <= 2:
            raise error
        swept.append(sweep(now))
        return swept[-1]

    monkeypatch.setattr(store, "sweep", failing)
    return calls, swept


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_failed_sweep_never_makes_a_fresh_nonce_seen(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    if kind == "sqlite":
        store: SqliteNonceStore | PostgresNonceStore = SqliteNonceStore(tmp_path / "n.sqlite")
        error: Exception = sqlite3.OperationalError("database is locked")
    else:
        pg: PgServer = request.getfixturevalue("pg_server")
        store = PostgresNonceStore(pg.create_database(), timeout=2)
        error = psycopg.OperationalError("the server closed the connection")
    calls, swept = _failing_sweeps(monkeypatch, store, error)
    assert store.add_if_new(b"old", expires_at=101, now=100)
    assert store.add_if_new(b"a", expires_at=500, now=200)  # the sweep is due, and fails
    assert calls == [200]
    # Recorded all the same (a replay); the sweep is tried again, and fails again.
    assert not store.add_if_new(b"a", expires_at=500, now=201)
    assert store.add_if_new(b"b", expires_at=500, now=202)  # tried again: done
    assert (calls, swept) == ([200, 201, 202], [1])  # the expired row went
    assert store.add_if_new(b"c", expires_at=500, now=203)  # not due again yet
    assert calls == [200, 201, 202]
    assert not store.add_if_new(b"b", expires_at=500, now=204)
    store.close()


def test_a_nonce_store_outage_denies_unavailable_and_nothing_leaks(
    ex: Exchange,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bad platform_id closes the store opened for it; a store that cannot answer makes
    the check DENY UNAVAILABLE (licentia-verify: exit 3), never REPLAYED, and the same
    presentation is allowed once the store answers again."""
    holder, adv = ex.party(), ex.party()
    register_holder(holder)
    register_advertiser(adv)
    where = tmp_path / "nonces.sqlite"
    opened: list[SqliteNonceStore | PostgresNonceStore] = []

    def recording(at: str | Path) -> SqliteNonceStore | PostgresNonceStore:
        opened.append(open_nonce_store(at))
        return opened[-1]

    monkeypatch.setattr(sdk, "open_nonce_store", recording)
    with Platform.connect(ex.address, PrivateKey.generate()) as platform:
        platform.register(AUDIENCE, "PhotoShare")
        with pytest.raises(ValueError, match="platform_id"):
            platform.verifier("", nonces=where)
        assert len(opened) == 1
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            len(opened[0])  # type: ignore[arg-type]
        licence = issue_licence(holder, adv)
        use = photo_use()
        pres = present(adv.key, licence.licence_id, AUDIENCE, use, int(time.time()))
        blocker = sqlite3.connect(where, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # a writer holding the file's lock
        store = SqliteNonceStore(where, timeout=0.1)
        with platform.verifier(AUDIENCE, nonces=store) as v:
            denied = v.check(licence.token, pres, use)
            assert (denied.allowed, denied.reasons) == (False, (Reason.UNAVAILABLE,))
            monkeypatch.setattr(
                cli, "open_nonce_store", lambda at: SqliteNonceStore(at, timeout=0.1)
            )
            argv = [
                *("--server", ex.address, licence.token, "--category", "image"),
                *("--purpose", "personalised-advertising", "--medium", "online"),
                *("--territory", "FR", "--asset-sha256", PHOTO_SHA.hex()),
                *("--presentation", pres, "--platform-id", AUDIENCE, "--nonce-store", str(where)),
            ]
            assert verify_main(argv) == 3
            out, err = capsys.readouterr()
            assert out == "DENY UNAVAILABLE\n", err
            assert f"the nonce store {where} could not answer" in err
            blocker.execute("ROLLBACK")
            assert v.check(licence.token, pres, use).allowed  # never recorded as seen
            assert v.check(licence.token, pres, use).reasons == (Reason.REPLAYED,)
        store.close()
        blocker.close()


def test_a_role_with_dml_rights_only_opens_an_existing_table_and_a_failure_says_why(
    ex: Exchange, pg_server: PgServer
) -> None:
    """The platform's role needs no CREATE once the table exists (PostgreSQL checks CREATE
    on the schema before ``IF NOT EXISTS``); where the table is missing and cannot be
    created, opening says which database and why, names no password, and leaves no
    connection open."""
    role = f"plat_{secrets.token_hex(4)}"
    ready, empty = pg_server.create_database(), pg_server.create_database()
    with psycopg.connect(ready, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'pw-secret-123'")
        admin.execute(
            "CREATE TABLE licentia_seen_nonces"
            " (nonce BYTEA PRIMARY KEY, expires_at BIGINT NOT NULL)"
        )
        admin.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON licentia_seen_nonces TO {role}")
    for db in (ready, empty):
        with psycopg.connect(db, autocommit=True) as admin:
            admin.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    as_role = {db: db.replace("postgres@", f"{role}:pw-secret-123@", 1) for db in (ready, empty)}
    store = PostgresNonceStore(as_role[ready], timeout=2)
    assert store.add_if_new(b"k", expires_at=110, now=100)
    assert not store.add_if_new(b"k", expires_at=110, now=105)  # a replay
    store.close()
    platform = Platform.connect(ex.address, PrivateKey.generate())
    with platform, pytest.raises(NonceStoreUnavailableError) as e:
        platform.verifier(AUDIENCE, nonces=as_role[empty])
    message = str(e.value)
    assert "cannot open the PostgreSQL nonce store" in message, message
    assert "permission denied for schema public" in message, message
    assert f"user {role}" in message, message
    assert "dbname t" in message, message
    assert "pw-secret-123" not in message
    with psycopg.connect(empty, autocommit=True) as admin:  # nothing left open, nothing made
        left = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = %s", (role,)
        ).fetchone()
        made = admin.execute("SELECT to_regclass('licentia_seen_nonces')").fetchone()
    assert (left, made) == ((0,), (None,))
    with pytest.raises(NonceStoreUnavailableError, match="cannot open"):  # no server there
        PostgresNonceStore(f"postgresql://{role}@/nowhere?host=/nonexistent", timeout=1)


class _DiesAfterCommit:
    """A connection that executes the statement (autocommit: it commits), then dies before
    the answer arrives, as a server or network failure at that moment would."""

    def __init__(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        self.conn = conn
        self.closed = False

    def execute(self, *args: object) -> object:
        self.conn.execute(*args)  # type: ignore[call-overload]
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    def close(self) -> None:
        self.conn.close()


def test_a_retry_after_an_outage_that_lost_the_answer_is_not_a_replay(
    pg_server: PgServer,
) -> None:
    """The INSERT committed, its answer was lost: the retry finds its own row and is new
    (once); a nonce another store recorded stays a replay."""
    dsn = pg_server.create_database()
    store, other = PostgresNonceStore(dsn, timeout=2), PostgresNonceStore(dsn, timeout=2)
    assert store._conn is not None
    store._conn = _DiesAfterCommit(store._conn)  # type: ignore[assignment]
    with pytest.raises(NonceStoreUnavailableError):
        store.add_if_new(b"n", expires_at=500, now=100)
    assert not other.add_if_new(b"n", expires_at=500, now=101)  # it did commit
    assert store.add_if_new(b"n", expires_at=500, now=102)  # the retry: its own record
    assert not store.add_if_new(b"n", expires_at=500, now=103)  # then a replay, as ever
    assert other.add_if_new(b"o", expires_at=500, now=104)
    assert not store.add_if_new(b"o", expires_at=500, now=105)  # another's: a replay
    # An outage before the statement was sent (no connection) leaves nothing uncertain.
    store.close()
    store.dsn = "postgresql://postgres@/nowhere?host=/nonexistent"
    with pytest.raises(NonceStoreUnavailableError):
        store.add_if_new(b"o", expires_at=500, now=106)
    store.dsn = dsn
    assert not store.add_if_new(b"o", expires_at=500, now=107)
    for s in (store, other):
        s.close()
