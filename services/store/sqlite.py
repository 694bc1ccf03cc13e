"""The embedded store: SQLite through sqlite-utils, WAL, ``synchronous=FULL``.

Every state change runs on the one writer connection, inside a ``BEGIN IMMEDIATE``
transaction, so a rule checked inside it (exclusivity, max uses, pending state) holds when the
change commits. Changes are **group-committed**: the changes that arrive while a commit is
being written wait, and then run one after another in the next transaction, each in its own
savepoint, with one ``fsync`` for all of them. A change that fails rolls back to its
savepoint alone; no caller hears of its change before the transaction holding it has
committed. Schema changes are numbered migrations (sqlite-utils ``Migrations``) that run
once, at open. Tables are STRICT. The store's logic (every method of the interface) is shared
with the PostgreSQL backend in :mod:`.common`; this module is the SQLite plumbing.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from sqlite_utils import Database, Migrations

from licentia.errors import LicentiaError, Reason

from .base import SpentNonce, unrecorded_nonces
from .common import INDEX_BLOCK, NONCE_SWEEP_SECONDS, Conn, SqlStore

__all__ = ["INDEX_BLOCK", "MAX_BATCH", "NONCE_SWEEP_SECONDS", "SqliteStore", "migrations"]

migrations = Migrations("licentia")

T = TypeVar("T")

#: Most changes one transaction carries (one fsync for all of them).
MAX_BATCH = 64


class _Change:
    """One caller's change, waiting for (or done by) a group commit."""

    __slots__ = ("done", "error", "fn", "nonces", "value")

    def __init__(
        self, fn: Callable[[sqlite3.Connection], Any], nonces: tuple[SpentNonce, ...]
    ) -> None:
        self.fn = fn
        self.nonces = nonces
        self.value: Any = None
        self.error: BaseException | None = None
        self.done = False


@migrations()
def m001_initial(db: Database) -> None:
    """The first schema: parties, assets, terms, rules, requests, licences, the status list."""
    db.executescript(
        """
        CREATE TABLE parties (
            key BLOB PRIMARY KEY, role INTEGER NOT NULL, handle TEXT UNIQUE,
            display_name TEXT NOT NULL, country TEXT NOT NULL, registered_at INTEGER NOT NULL,
            objecting INTEGER NOT NULL DEFAULT 0
        ) STRICT;
        CREATE TABLE assets (
            holder_key BLOB NOT NULL, sha256 BLOB NOT NULL, category INTEGER NOT NULL,
            label TEXT NOT NULL, content BLOB, content_size INTEGER NOT NULL,
            declared_at INTEGER NOT NULL, seq INTEGER NOT NULL,
            PRIMARY KEY (holder_key, sha256)
        ) STRICT;
        CREATE TABLE terms (
            holder_key BLOB PRIMARY KEY, categories TEXT NOT NULL, purposes TEXT NOT NULL,
            refused TEXT NOT NULL, media TEXT NOT NULL, territories TEXT NOT NULL,
            currency TEXT NOT NULL, price_per_day_minor INTEGER NOT NULL,
            max_term_seconds INTEGER NOT NULL, exclusivity_offered INTEGER NOT NULL,
            exclusivity_multiplier_bps INTEGER NOT NULL, updated_at INTEGER NOT NULL
        ) STRICT;
        CREATE TABLE standing_rules (
            rule_id BLOB PRIMARY KEY, holder_key BLOB NOT NULL, rule BLOB NOT NULL,
            signature BLOB NOT NULL, created_at INTEGER NOT NULL,
            withdrawn_at INTEGER NOT NULL DEFAULT 0
        ) STRICT;
        CREATE INDEX standing_rules_holder ON standing_rules (holder_key);
        CREATE TABLE requests (
            request_id BLOB PRIMARY KEY, state INTEGER NOT NULL, advertiser_key BLOB NOT NULL,
            holder_key BLOB NOT NULL, claims BLOB NOT NULL, created_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, reason TEXT NOT NULL,
            failure TEXT NOT NULL, auto_approved INTEGER NOT NULL, message TEXT NOT NULL,
            licence_id BLOB NOT NULL
        ) STRICT;
        CREATE INDEX requests_holder ON requests (holder_key, created_at);
        CREATE TABLE licences (
            licence_id BLOB PRIMARY KEY, request_id BLOB NOT NULL UNIQUE, token TEXT NOT NULL,
            holder_key BLOB NOT NULL, licensee_key BLOB NOT NULL, issued_at INTEGER NOT NULL,
            not_before INTEGER NOT NULL, not_after INTEGER NOT NULL,
            status_index INTEGER NOT NULL UNIQUE, max_uses INTEGER NOT NULL,
            uses INTEGER NOT NULL DEFAULT 0, exclusive INTEGER NOT NULL,
            revoked_at INTEGER NOT NULL DEFAULT 0
        ) STRICT;
        CREATE INDEX licences_holder ON licences (holder_key, issued_at);
        CREATE INDEX licences_licensee ON licences (licensee_key, issued_at);
        CREATE TABLE licence_assets (
            licence_id BLOB NOT NULL, holder_key BLOB NOT NULL, sha256 BLOB NOT NULL,
            PRIMARY KEY (licence_id, sha256)
        ) STRICT;
        CREATE INDEX licence_assets_asset ON licence_assets (holder_key, sha256);
        CREATE TABLE revocations (
            sequence INTEGER PRIMARY KEY, status_index INTEGER NOT NULL UNIQUE,
            licence_id BLOB NOT NULL UNIQUE, licensee_key BLOB NOT NULL,
            revoked_at INTEGER NOT NULL, cause INTEGER NOT NULL
        ) STRICT;
        CREATE TABLE use_reports (
            report_id BLOB PRIMARY KEY, licence_id BLOB NOT NULL, platform_key BLOB NOT NULL,
            recorded_at INTEGER NOT NULL, uses_after INTEGER NOT NULL
        ) STRICT;
        CREATE TABLE accesses (
            id INTEGER PRIMARY KEY, holder_key BLOB NOT NULL, sha256 BLOB NOT NULL,
            licence_id BLOB NOT NULL, licensee_key BLOB NOT NULL, accessed_at INTEGER NOT NULL
        ) STRICT;
        CREATE INDEX accesses_holder ON accesses (holder_key, id);
        CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) STRICT;
        INSERT INTO counters VALUES ('status_index', 0), ('asset_seq', 0);
        CREATE TABLE issuer_keys (
            key_id BLOB PRIMARY KEY, public_key BLOB NOT NULL, not_before INTEGER NOT NULL,
            not_after INTEGER NOT NULL DEFAULT 0
        ) STRICT;
        """
    )


@migrations()
def m002_live_exclusive_index(db: Database) -> None:
    """Find a holder's live exclusive licences without reading the others."""
    db.execute(
        "CREATE INDEX licences_live_exclusive ON licences (holder_key, not_after)"
        " WHERE exclusive = 1 AND revoked_at = 0"
    )


@migrations()
def m003_ledger(db: Database) -> None:
    """Money: double-entry postings, running balances, and each licence's escrow state."""
    db.executescript(
        """
        CREATE TABLE postings (
            id INTEGER PRIMARY KEY, kind TEXT NOT NULL, licence_id BLOB NOT NULL,
            at INTEGER NOT NULL, idempotency BLOB UNIQUE, reference TEXT NOT NULL
        ) STRICT;
        CREATE TABLE entries (
            posting_id INTEGER NOT NULL REFERENCES postings (id), account_kind TEXT NOT NULL,
            account_key BLOB NOT NULL, amount INTEGER NOT NULL CHECK (amount != 0)
        ) STRICT;
        CREATE INDEX entries_account ON entries (account_kind, account_key, posting_id);
        CREATE TABLE balances (
            account_kind TEXT NOT NULL, account_key BLOB NOT NULL, balance INTEGER NOT NULL,
            PRIMARY KEY (account_kind, account_key),
            CHECK (balance >= 0 OR account_kind = 'external')
        ) STRICT, WITHOUT ROWID;
        CREATE TABLE licence_money (
            licence_id BLOB PRIMARY KEY, advertiser_key BLOB NOT NULL, holder_key BLOB NOT NULL,
            price INTEGER NOT NULL, price_per_use INTEGER NOT NULL, max_uses INTEGER NOT NULL,
            fee_bps INTEGER NOT NULL, not_before INTEGER NOT NULL, not_after INTEGER NOT NULL,
            time_earned INTEGER NOT NULL, uses_charged INTEGER NOT NULL, closed INTEGER NOT NULL
        ) STRICT;
        CREATE INDEX licence_money_holder ON licence_money (holder_key) WHERE closed = 0;
        CREATE INDEX licence_money_advertiser ON licence_money (advertiser_key) WHERE closed = 0;
        CREATE TABLE request_keys (
            advertiser_key BLOB NOT NULL, idempotency_key BLOB NOT NULL, request_id BLOB NOT NULL,
            PRIMARY KEY (advertiser_key, idempotency_key)
        ) STRICT, WITHOUT ROWID;
        """
    )


@migrations()
def m004_log(db: Database) -> None:
    """The public log: entries, and the hashes of its complete aligned subtrees."""
    db.executescript(
        """
        CREATE TABLE log_entries (
            idx INTEGER PRIMARY KEY, entry BLOB NOT NULL, at INTEGER NOT NULL,
            kind TEXT NOT NULL, licence_id BLOB NOT NULL
        ) STRICT;
        CREATE INDEX log_entries_licence ON log_entries (licence_id, kind);
        CREATE TABLE log_nodes (
            level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL,
            PRIMARY KEY (level, idx)
        ) STRICT, WITHOUT ROWID;
        """
    )


@migrations()
def m005_spent_nonces(db: Database) -> None:
    """Nonces spent by calls that changed something, kept until they expire (replays are
    refused across restarts and replicas, not only by the process that saw the call)."""
    db.executescript(
        """
        CREATE TABLE spent_nonces (
            key BLOB PRIMARY KEY, expires_at INTEGER NOT NULL
        ) STRICT, WITHOUT ROWID;
        CREATE INDEX spent_nonces_expiry ON spent_nonces (expires_at);
        """
    )


@migrations()
def m006_idempotency_digests(db: Database) -> None:
    """The digest of the request each idempotency key was first used for (deposit
    references, withdrawal and RequestLicence keys, use report ids): a key reused for a
    different request is refused, not answered with the first one's result."""
    db.executescript(
        """
        CREATE TABLE idempotency_digests (
            key BLOB PRIMARY KEY, digest BLOB NOT NULL
        ) STRICT, WITHOUT ROWID;
        """
    )


class SqliteStore(SqlStore):
    """The :class:`~.base.Store` on one SQLite file (``:memory:`` is refused: nothing fakes
    durability)."""

    def __init__(self, path: str | os.PathLike[str], *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            str(self.path), check_same_thread=False, isolation_level=None, timeout=30
        )
        self._db = Database(conn)
        self._lock = threading.RLock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._cond = threading.Condition(threading.Lock())
        self._queue: list[_Change] = []
        self._leading = False
        self._init_common()
        self._db.execute("PRAGMA foreign_keys = ON")
        self._db.execute("PRAGMA busy_timeout = 30000")
        if not read_only:
            self._db.enable_wal()
            self._db.execute("PRAGMA synchronous = FULL")
            migrations.apply(self._db)

    _INTEGRITY: ClassVar[tuple[type[Exception], ...]] = (sqlite3.IntegrityError,)

    # -- plumbing ------------------------------------------------------------------------
    def _transact(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` on the writer connection inside a write transaction, and return what it
        returned once that transaction has committed (or raise what it raised, with its
        changes rolled back).

        Group commit, leader and followers: the caller that finds no commit under way leads
        one — it takes up to :data:`MAX_BATCH` queued changes, runs each in a savepoint,
        commits them all with one fsync, and wakes their callers; the others wait, off the
        GIL, for their change to be done or for their turn to lead.

        The first change a call commits also records the nonces the call spends
        (:func:`.base.spending`), in its savepoint.
        """
        if self.read_only:
            raise LicentiaError(Reason.NOT_SERVED, "this replica does not write")
        if getattr(self._local, "writing", False):  # a change made from inside a change
            return fn(self._db.conn)
        change = _Change(fn, unrecorded_nonces())
        with self._cond:
            self._queue.append(change)
            while not change.done and self._leading:
                self._cond.wait()
            lead = not change.done
            if lead:
                self._leading = True
        if lead:
            batch: list[_Change] = []
            try:
                while not change.done:
                    with self._cond:
                        batch = self._queue[:MAX_BATCH]
                        del self._queue[:MAX_BATCH]
                    self._commit(batch)
                    with self._cond:
                        for done in batch:
                            done.done = True
                        self._cond.notify_all()
            finally:
                with self._cond:
                    for left in batch:  # only when _commit itself was interrupted
                        if not left.done:
                            left.error = left.error or RuntimeError("the transaction was abandoned")
                            left.done = True
                    self._leading = False
                    self._cond.notify_all()
        if change.error is not None:
            raise change.error
        return change.value  # type: ignore[no-any-return]

    def _commit(self, batch: Sequence[_Change]) -> None:
        """Run ``batch`` in one transaction, each change in its own savepoint, and commit."""
        conn = self._db.conn
        self._local.writing = True
        try:
            conn.execute("BEGIN IMMEDIATE")
            self._sweep_nonces(conn, [n for change in batch for n in change.nonces])
            for change in batch:
                conn.execute("SAVEPOINT change")
                try:
                    self._spend(conn, change.nonces)
                    change.value = change.fn(conn)
                except Exception as e:  # noqa: BLE001 (handed to the caller)
                    change.error = e
                    conn.execute("ROLLBACK TO change")
                conn.execute("RELEASE change")
            conn.execute("COMMIT")
            for change in batch:
                if change.error is None:
                    for n in change.nonces:
                        n.recorded = True
        except BaseException as e:
            # The transaction itself failed (disk, I/O, interruption): nothing of it stands.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            for change in batch:
                change.value, change.error = None, e
            if not isinstance(e, Exception):
                raise
        finally:
            self._local.writing = False

    def _reader(self) -> sqlite3.Connection:
        """This thread's read-only connection: reads never wait for the writer (WAL), and
        each statement sees everything committed before it started."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path.resolve().as_uri() + "?mode=ro",
                uri=True,
                check_same_thread=False,
                isolation_level=None,
                timeout=30,
            )
            conn.execute("PRAGMA busy_timeout = 30000")
            self._local.conn = conn
            with self._lock:
                self._readers.append(conn)
        return conn

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self._reader().execute(sql, params).fetchall())

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[Conn]:
        """This thread's reader inside one read transaction (one snapshot)."""
        c = self._reader()
        c.execute("BEGIN")
        try:
            yield c
        finally:
            c.execute("COMMIT")

    def _next_log_index(self, c: Conn) -> int:
        """The one writer appends after the last entry."""
        return int(c.execute("SELECT coalesce(max(idx) + 1, 0) FROM log_entries").fetchone()[0])

    def _next_sequence(self, c: Conn) -> int:
        """The one writer numbers after the last event."""
        return int(
            c.execute("SELECT coalesce(max(sequence), 0) + 1 FROM revocations").fetchone()[0]
        )

    def close(self) -> None:
        """Close the connections."""
        with self._lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
            self._db.close()
