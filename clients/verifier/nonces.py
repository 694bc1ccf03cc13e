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
store, reconnected after a failure; DML rights on an existing table are enough; a retry after
an outage that lost an INSERT's answer finds its own row, not a replay: see the class).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections import OrderedDict
from pathlib import Path

import psycopg
import psycopg.conninfo
import psycopg.errors

from licentia.nonces import NonceStoreUnavailableError

__all__ = [
    "SWEEP_EVERY",
    "PostgresNonceStore",
    "SqliteNonceStore",
    "describe_nonce_store",
    "open_nonce_store",
]

#: Records between two sweeps of the expired rows.
SWEEP_EVERY = 1000
#: The largest key recorded (a presentation's nonce key is far smaller); longer is refused.
MAX_KEY_BYTES = 256
#: Nonces a PostgreSQL store remembers as "recorded, answer lost" (see its retry rule).
MAX_UNCERTAIN = 10_000

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
    every instance that uses it. Thread-safe.

    Rights: on connecting, the table is looked up first (``to_regclass``) and created only
    when missing, so a role with SELECT, INSERT, UPDATE, DELETE on an existing
    ``licentia_seen_nonces`` is enough (the operator creates the table once, or the first
    instance does with CREATE on the schema). A store that cannot be opened (the server
    away, a login refused, the table missing and not creatable) raises
    :class:`~licentia.nonces.NonceStoreUnavailableError` saying which database and why
    (never the password), with no connection left open.

    A retry after an outage: with autocommit, an INSERT can commit and its answer be lost
    (the connection dies after the commit). The store remembers, in memory, the nonces whose
    record ended that way (at most :data:`MAX_UNCERTAIN`); when this store records one of them
    again and finds the row, it counts as this store's own record (new, once), not as a
    replay. The one case it cannot tell apart: another instance recording the same nonce
    during this store's outage (a replay sent to two instances at that very moment) is
    then accepted by both.
    """

    def __init__(self, dsn: str, *, timeout: float = 5.0) -> None:
        self.dsn = dsn
        self.timeout = timeout
        self._lock = threading.Lock()
        try:
            self._conn: psycopg.Connection[tuple[object, ...]] | None = self._connect()
        except psycopg.Error as e:
            reason = _redact(dsn, (str(e).strip().splitlines() or [type(e).__name__])[0][:300])
            raise NonceStoreUnavailableError(
                f"cannot open the PostgreSQL nonce store ({_describe(dsn)}): {reason}"
            ) from None
        self._records = 0
        #: Nonces whose record ended in an outage (the INSERT may have committed), and when
        #: they expire.
        self._uncertain: OrderedDict[bytes, int] = OrderedDict()

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        conn = psycopg.connect(
            self.dsn,
            autocommit=True,
            connect_timeout=max(1, int(self.timeout)),
            options=f"-c statement_timeout={int(self.timeout * 1000)}",
        )
        try:
            row = conn.execute("SELECT to_regclass('licentia_seen_nonces')").fetchone()
            if row is None or row[0] is None:  # missing: needs CREATE on the schema, once
                # Another instance creating it at the same moment: it exists now.
                with contextlib.suppress(
                    psycopg.errors.UniqueViolation, psycopg.errors.DuplicateTable
                ):
                    conn.execute(_PG_SCHEMA)
        except BaseException:
            conn.close()
            raise
        return conn

    def add_if_new(self, key: bytes, expires_at: int, now: int) -> bool:
        """Record ``key`` until ``expires_at``; False for a live repeat (or an oversized
        key). Raises :class:`~licentia.nonces.NonceStoreUnavailableError` when the database
        cannot be reached (fail closed: the caller denies; the next call connects again). A
        retry of a record that ended in an outage finds its own row: new, not a replay."""
        if len(key) > MAX_KEY_BYTES:
            return False
        with self._lock:
            sent = False
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = self._connect()
                sent = True
                changed = self._conn.execute(_RECORD_PG, (key, expires_at, now)).rowcount
            except psycopg.Error as e:
                _LOG.warning("nonces.unavailable", extra={"error": type(e).__name__})
                self._drop()
                if sent:  # the INSERT may have committed before the answer was lost
                    self._remember_uncertain(key, expires_at, now)
                raise NonceStoreUnavailableError() from None
            uncertain = self._uncertain.pop(key, None)
            if changed != 1 and uncertain is not None and uncertain > now:
                changed = 1  # the row the lost answer was about: ours
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

    def _remember_uncertain(self, key: bytes, expires_at: int, now: int) -> None:
        """Remember that ``key``'s record may have committed; expired and, past
        :data:`MAX_UNCERTAIN`, the oldest entries are forgotten (a retry of a forgotten one
        is then REPLAYED: never a replay taken for new)."""
        self._uncertain.pop(key, None)
        self._uncertain[key] = expires_at
        for old, expiry in list(self._uncertain.items()):
            if expiry > now and len(self._uncertain) <= MAX_UNCERTAIN:
                break
            del self._uncertain[old]

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


def _redact(dsn: str, text: str) -> str:
    """``text`` (a driver's message) with ``dsn``'s password, if it quotes it, masked."""
    try:
        password = psycopg.conninfo.conninfo_to_dict(dsn).get("password")
    except psycopg.Error:
        return text.replace(dsn, "the DSN")
    return text.replace(str(password), "***") if password else text


def _describe(dsn: str) -> str:
    """Which database ``dsn`` names, for a message: never its password."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.Error:
        return "an unreadable DSN"
    parts = [f"{k} {info[k]}" for k in ("dbname", "host", "port", "user") if info.get(k)]
    return ", ".join(parts) or "the default database"


def _is_dsn(text: str) -> bool:
    return text.startswith(("postgresql://", "postgres://"))


def describe_nonce_store(where: str | Path) -> str:
    """The store ``where`` names, for a message: the SQLite file's path, or which PostgreSQL
    database (never its password)."""
    text = str(where)
    return f"PostgreSQL ({_describe(text)})" if _is_dsn(text) else text


def open_nonce_store(where: str | Path) -> SqliteNonceStore | PostgresNonceStore:
    """A shared store: PostgreSQL for a ``postgresql://`` or ``postgres://`` DSN, else the
    SQLite file at that path."""
    text = str(where)
    if _is_dsn(text):
        return PostgresNonceStore(text)
    return SqliteNonceStore(Path(text))
