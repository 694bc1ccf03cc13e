"""Seen presentation nonces shared by every instance of a platform: SQLite or PostgreSQL.

A platform that runs many instances (processes, machines) must refuse a presentation
replayed from one instance to another; an in-memory store
(:class:`licentia.nonces.MemoryNonceStore`) only protects one process. Both stores here keep
one table::

    licentia_seen_nonces (nonce BYTES PRIMARY KEY, expires_at BIGINT)

and record a nonce with one atomic statement, ``INSERT … ON CONFLICT (nonce) DO UPDATE …
WHERE expires_at <= now``: of two instances recording the same live nonce, exactly one
changes a row (the other sees a replay); an expired row is taken over. Every
:data:`SWEEP_EVERY` records, the expired rows are deleted, so the table holds about one
presentation window's nonces. The sweep runs apart from the record it follows: the record is
committed first, and a sweep that fails is logged and tried again at the next record (it
never turns a fresh nonce into a "seen" one).

Fail closed: a store that cannot answer (the file is locked past the timeout, the database is
down) raises :class:`licentia.nonces.NonceStoreUnavailableError`, so the verification is DENY
``UNAVAILABLE`` (could not check; retrying may succeed) rather than an ALLOW that could be a
replay, and never ``REPLAYED``, which would brand a fresh presentation a replay.
:class:`SqliteNonceStore` suits instances on one machine (one file; WAL mode);
:class:`PostgresNonceStore` instances on several machines (``psycopg``, a connection per
store, reconnected after a failure).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

import psycopg

from licentia.nonces import NonceStoreUnavailableError

__all__ = ["SWEEP_EVERY", "PostgresNonceStore", "SqliteNonceStore", "open_nonce_store"]

#: Records between two sweeps of the expired rows.
SWEEP_EVERY = 1000
#: The largest key recorded (a presentation's nonce key is far smaller); longer is refused.
MAX_KEY_BYTES = 256

_LOG = logging.getLogger("licentia.verifier.nonces")

_SQLITE_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS licentia_seen_nonces ("
    " nonce BLOB PRIMARY KEY, expires_at INTEGER NOT NULL) WITHOUT ROWID"
)
_PG_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS licentia_seen_nonces ("
    " nonce BYTEA PRIMARY KEY, expires_at BIGINT NOT NULL)"
)
_RECORD_SQLITE = (
    "INSERT INTO licentia_seen_nonces (nonce, expires_at) VALUES (?, ?)"
    " ON CONFLICT (nonce) DO UPDATE SET expires_at = excluded.expires_at"
    " WHERE licentia_seen_nonces.expires_at <= ?"
)
_RECORD_PG = (
    "INSERT INTO licentia_seen_nonces (nonce, expires_at) VALUES (%s, %s)"
    " ON CONFLICT (nonce) DO UPDATE SET expires_at = excluded.expires_at"
    " WHERE licentia_seen_nonces.expires_at <= %s"
)


class SqliteNonceStore:
    """Seen nonces in the SQLite file ``path`` (created 0600 with its directory), shared by
    every process that opens the same file. Thread-safe; :meth:`close` when done."""

    def __init__(self, path: Path | str, *, timeout: float = 5.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path.touch(mode=0o600, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            self.path, timeout=timeout, isolation_level=None, check_same_thread=False
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(_SQLITE_SCHEMA)
        self._records = 0

    def add_if_new(self, key: bytes, expires_at: int, now: int) -> bool:
        """Record ``key`` until ``expires_at``; False for a live repeat (or an oversized
        key). Raises :class:`~licentia.nonces.NonceStoreUnavailableError` when the file cannot
        be written (fail closed: the caller denies)."""
        if len(key) > MAX_KEY_BYTES:
            return False
        with self._lock:
            try:
                changed = self._conn.execute(_RECORD_SQLITE, (key, expires_at, now)).rowcount
            except sqlite3.Error as e:
                _LOG.warning("nonces.unavailable", extra={"error": type(e).__name__})
                raise NonceStoreUnavailableError() from None
            self._records += 1
            if self._records >= SWEEP_EVERY:
                # After the record's commit; on failure the sweep stays due: tried at the
                # next record.
                try:
                    self.sweep(now)
                except sqlite3.Error as e:
                    _LOG.warning("nonces.sweep_failed", extra={"error": type(e).__name__})
                else:
                    self._records = 0
        return changed == 1

    def sweep(self, now: int) -> int:
        """Delete the rows expired at ``now``; how many."""
        cur = self._conn.execute("DELETE FROM licentia_seen_nonces WHERE expires_at <= ?", (now,))
        return cur.rowcount

    def __len__(self) -> int:
        with self._lock:
            row = self._conn.execute("SELECT count(*) FROM licentia_seen_nonces").fetchone()
        return int(row[0])

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._conn.close()


class PostgresNonceStore:
    """Seen nonces in the PostgreSQL database at ``dsn`` (``postgresql://…``), shared by
    every instance that uses it; the table is created if missing (the role needs CREATE on
    the schema once, then SELECT, INSERT, UPDATE, DELETE on the table). Thread-safe."""

    def __init__(self, dsn: str, *, timeout: float = 5.0) -> None:
        self.dsn = dsn
        self.timeout = timeout
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[tuple[object, ...]] | None = self._connect()
        self._records = 0

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        conn = psycopg.connect(
            self.dsn,
            autocommit=True,
            connect_timeout=max(1, int(self.timeout)),
            options=f"-c statement_timeout={int(self.timeout * 1000)}",
        )
        conn.execute(_PG_SCHEMA)
        return conn

    def add_if_new(self, key: bytes, expires_at: int, now: int) -> bool:
        """Record ``key`` until ``expires_at``; False for a live repeat (or an oversized
        key). Raises :class:`~licentia.nonces.NonceStoreUnavailableError` when the database
        cannot be reached (fail closed: the caller denies; the next call connects again)."""
        if len(key) > MAX_KEY_BYTES:
            return False
        with self._lock:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = self._connect()
                changed = self._conn.execute(_RECORD_PG, (key, expires_at, now)).rowcount
            except psycopg.Error as e:
                _LOG.warning("nonces.unavailable", extra={"error": type(e).__name__})
                self._drop()
                raise NonceStoreUnavailableError() from None
            self._records += 1
            if self._records >= SWEEP_EVERY:
                # After the record's commit (autocommit); on failure the count stays due:
                # tried at the next record, on a new connection.
                try:
                    self.sweep(now)
                except psycopg.Error as e:
                    _LOG.warning("nonces.sweep_failed", extra={"error": type(e).__name__})
                    self._drop()
                else:
                    self._records = 0
        return changed == 1

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    def sweep(self, now: int) -> int:
        """Delete the rows expired at ``now``; how many (0 when not connected)."""
        if self._conn is None:
            return 0
        cur = self._conn.execute("DELETE FROM licentia_seen_nonces WHERE expires_at <= %s", (now,))
        return cur.rowcount

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
            self._conn = None


def open_nonce_store(where: str | Path) -> SqliteNonceStore | PostgresNonceStore:
    """A shared store: PostgreSQL for a ``postgresql://`` or ``postgres://`` DSN, else the
    SQLite file at that path."""
    text = str(where)
    if text.startswith(("postgresql://", "postgres://")):
        return PostgresNonceStore(text)
    return SqliteNonceStore(Path(text))
