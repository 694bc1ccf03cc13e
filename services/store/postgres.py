"""The PostgreSQL store: psycopg 3 with a connection pool, for exchanges on several replicas.

The store's logic is the SQLite store's (:mod:`.common`, shared); this module supplies what
differs when several processes write at once, each with its own pool:

- Every change runs in one READ COMMITTED transaction on a pooled connection, and commits
  (``synchronous_commit`` as the server has it, ``on`` by default) before its caller hears
  of it. A transaction the engine aborts to break a deadlock, or a serialization failure, is
  run again from the start (the changes are written to be re-run).
- Issuances (changes made ``pipelined``) are group-committed per replica
  (:meth:`PostgresStore._group`): those waiting together share one transaction — each in a
  savepoint — and one WAL flush, on a connection in pipeline mode (:class:`_PgConn`), one
  round trip each. An issuance holds its holder's lock and the log counter row to its
  commit, so without this no two could share a flush. An automatic issuance is two calls
  of server-side functions (:mod:`._pg_issue`, migration ``m018_pg_issue2``), a *bare*
  change of its batch (no savepoint: it changes nothing or makes its change,
  :meth:`PostgresStore._bare`); the first calls of a batch are answered together.
- Rules that must hold across replicas are kept by the engine, never by a lock in one
  process: transaction-scoped advisory locks (:meth:`PostgresStore._hold`) serialize the
  writers that touch the same holder (the exclusivity check), request, licence (revocation,
  use counting, settlement), account (the balance read before escrow or payout) or
  idempotency key; READ COMMITTED gives each statement after the lock a snapshot holding
  what the previous holder of the lock committed. Unique keys and the balances' CHECK
  (``>= 0`` for internal accounts) are constraints as in SQLite.
- Log indexes and revocation sequence numbers come from counter rows updated inside the
  change's transaction: the row lock is held until commit, so the numbers are gapless and
  commit in order. A reader that has seen number *n* never later meets a smaller number
  committing (a subscriber resuming after *n* misses nothing).
- Status-list index blocks come from the same counters table as in SQLite.
- Each revocation's transaction also sends ``NOTIFY licentia_revocations`` (payload: its
  sequence number), which the engine delivers at commit and only if it commits. Each replica
  keeps one listening connection (:meth:`PostgresStore.wait_for_events`, called by the
  replica's follower thread): a notification wakes it to read ``events_after`` from its
  last sequence; a lost listening connection is reopened with backoff, and the reader told
  to catch up, since notifications sent meanwhile are lost.
- Every wait on the database is bounded (:data:`POOL_WAIT_SECONDS`,
  :data:`POOL_RECONNECT_SECONDS`, :data:`CONNECT_TIMEOUT_SECONDS`,
  :data:`STATEMENT_TIMEOUT_MS`, :data:`TCP_PARAMS`): while the database is away a call is
  UNAVAILABLE within seconds, and the pool connects again as soon as it is back.
- Handles compare byte-wise (``COLLATE "C"``), as in SQLite, whatever the database's locale:
  offers page in the same order on both.
- Migrations are the SQLite store's, by the same names (``m001_initial`` …
  ``m015_pg_issue``, which adds the ``licentia_debit`` function, and ``m018_pg_issue2``,
  the two functions of an automatic issuance (:mod:`._pg_issue`), are no-ops on SQLite),
  in PostgreSQL DDL, recorded in ``licentia_migrations`` and
  applied at start under a session advisory lock, so replicas starting together do not race.

Why one module of this size: over 500 lines because it holds the PostgreSQL schema and its
migrations next to the connection handling (pool, retries, LISTEN/NOTIFY) they need.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from licentia.errors import LicentiaError, Reason

from ..model import RevocationEvent
from . import common as _common
from ._group import Change as _Change
from ._group import GroupCommit
from ._pg_issue import MIGRATION as _M018
from ._pg_issue import NotMade, PgIssuePart, lock_key
from .base import SpentNonce
from .common import Conn, Cursor, SqlStore

T = TypeVar("T")

#: The session advisory lock held while migrations are checked and applied.
MIGRATION_LOCK = 0x4C49_4345_4E54_4941  # "LICENTIA"
#: How many times a change is run when the engine aborts it (deadlock, serialization).
ATTEMPTS = 20
#: How many connections a change or a read tries when the connection is lost before
#: anything could have been committed (a restarted server, a terminated backend).
LOST_ATTEMPTS = 3

#: The numbered migrations, named as the SQLite store's (the same schema, PostgreSQL DDL).
#: Tables that SQLite orders by ``rowid`` get an identity column of that name.
MIGRATIONS: tuple[tuple[str, str], ...] = (
    (
        "m001_initial",
        """
        CREATE TABLE parties (
            key BYTEA PRIMARY KEY, role INTEGER NOT NULL, handle TEXT COLLATE "C" UNIQUE,
            display_name TEXT NOT NULL, country TEXT NOT NULL, registered_at BIGINT NOT NULL,
            objecting INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE assets (
            holder_key BYTEA NOT NULL, sha256 BYTEA NOT NULL, category INTEGER NOT NULL,
            label TEXT NOT NULL, content BYTEA, content_size BIGINT NOT NULL,
            declared_at BIGINT NOT NULL, seq BIGINT NOT NULL,
            PRIMARY KEY (holder_key, sha256)
        );
        CREATE TABLE terms (
            holder_key BYTEA PRIMARY KEY, categories TEXT NOT NULL, purposes TEXT NOT NULL,
            refused TEXT NOT NULL, media TEXT NOT NULL, territories TEXT NOT NULL,
            currency TEXT NOT NULL, price_per_day_minor BIGINT NOT NULL,
            max_term_seconds BIGINT NOT NULL, exclusivity_offered INTEGER NOT NULL,
            exclusivity_multiplier_bps BIGINT NOT NULL, updated_at BIGINT NOT NULL
        );
        CREATE TABLE standing_rules (
            rule_id BYTEA PRIMARY KEY, holder_key BYTEA NOT NULL, rule BYTEA NOT NULL,
            signature BYTEA NOT NULL, created_at BIGINT NOT NULL,
            withdrawn_at BIGINT NOT NULL DEFAULT 0,
            rowid BIGINT GENERATED ALWAYS AS IDENTITY
        );
        CREATE INDEX standing_rules_holder ON standing_rules (holder_key);
        CREATE TABLE requests (
            request_id BYTEA PRIMARY KEY, state INTEGER NOT NULL, advertiser_key BYTEA NOT NULL,
            holder_key BYTEA NOT NULL, claims BYTEA NOT NULL, created_at BIGINT NOT NULL,
            expires_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, reason TEXT NOT NULL,
            failure TEXT NOT NULL, auto_approved INTEGER NOT NULL, message TEXT NOT NULL,
            licence_id BYTEA NOT NULL,
            rowid BIGINT GENERATED ALWAYS AS IDENTITY
        );
        CREATE INDEX requests_holder ON requests (holder_key, created_at);
        CREATE TABLE licences (
            licence_id BYTEA PRIMARY KEY, request_id BYTEA NOT NULL UNIQUE, token TEXT NOT NULL,
            holder_key BYTEA NOT NULL, licensee_key BYTEA NOT NULL, issued_at BIGINT NOT NULL,
            not_before BIGINT NOT NULL, not_after BIGINT NOT NULL,
            status_index BIGINT NOT NULL UNIQUE, max_uses BIGINT NOT NULL,
            uses BIGINT NOT NULL DEFAULT 0, exclusive INTEGER NOT NULL,
            revoked_at BIGINT NOT NULL DEFAULT 0,
            rowid BIGINT GENERATED ALWAYS AS IDENTITY
        );
        CREATE INDEX licences_holder ON licences (holder_key, issued_at);
        CREATE INDEX licences_licensee ON licences (licensee_key, issued_at);
        CREATE TABLE licence_assets (
            licence_id BYTEA NOT NULL, holder_key BYTEA NOT NULL, sha256 BYTEA NOT NULL,
            PRIMARY KEY (licence_id, sha256)
        );
        CREATE INDEX licence_assets_asset ON licence_assets (holder_key, sha256);
        CREATE TABLE revocations (
            sequence BIGINT PRIMARY KEY, status_index BIGINT NOT NULL UNIQUE,
            licence_id BYTEA NOT NULL UNIQUE, licensee_key BYTEA NOT NULL,
            revoked_at BIGINT NOT NULL, cause INTEGER NOT NULL
        );
        CREATE TABLE use_reports (
            report_id BYTEA PRIMARY KEY, licence_id BYTEA NOT NULL, platform_key BYTEA NOT NULL,
            recorded_at BIGINT NOT NULL, uses_after BIGINT NOT NULL
        );
        CREATE TABLE accesses (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, holder_key BYTEA NOT NULL,
            sha256 BYTEA NOT NULL, licence_id BYTEA NOT NULL, licensee_key BYTEA NOT NULL,
            accessed_at BIGINT NOT NULL
        );
        CREATE INDEX accesses_holder ON accesses (holder_key, id);
        CREATE TABLE counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
        INSERT INTO counters VALUES ('status_index', 0), ('asset_seq', 0),
            ('revocation_sequence', 0);
        CREATE TABLE issuer_keys (
            key_id BYTEA PRIMARY KEY, public_key BYTEA NOT NULL, not_before BIGINT NOT NULL,
            not_after BIGINT NOT NULL DEFAULT 0,
            rowid BIGINT GENERATED ALWAYS AS IDENTITY
        );
        """,
    ),
    (
        "m002_live_exclusive_index",
        "CREATE INDEX licences_live_exclusive ON licences (holder_key, not_after)"
        " WHERE exclusive = 1 AND revoked_at = 0",
    ),
    (
        "m003_ledger",
        """
        CREATE TABLE postings (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, kind TEXT NOT NULL,
            licence_id BYTEA NOT NULL, at BIGINT NOT NULL, idempotency BYTEA UNIQUE,
            reference TEXT NOT NULL
        );
        CREATE TABLE entries (
            posting_id BIGINT NOT NULL REFERENCES postings (id), account_kind TEXT NOT NULL,
            account_key BYTEA NOT NULL, amount BIGINT NOT NULL CHECK (amount != 0)
        );
        CREATE INDEX entries_account ON entries (account_kind, account_key, posting_id);
        CREATE TABLE balances (
            account_kind TEXT NOT NULL, account_key BYTEA NOT NULL, balance BIGINT NOT NULL,
            PRIMARY KEY (account_kind, account_key),
            CHECK (balance >= 0 OR account_kind = 'external')
        );
        CREATE TABLE licence_money (
            licence_id BYTEA PRIMARY KEY, advertiser_key BYTEA NOT NULL,
            holder_key BYTEA NOT NULL, price BIGINT NOT NULL, price_per_use BIGINT NOT NULL,
            max_uses BIGINT NOT NULL, fee_bps BIGINT NOT NULL, not_before BIGINT NOT NULL,
            not_after BIGINT NOT NULL, time_earned BIGINT NOT NULL,
            uses_charged BIGINT NOT NULL, closed INTEGER NOT NULL
        );
        CREATE INDEX licence_money_holder ON licence_money (holder_key) WHERE closed = 0;
        CREATE INDEX licence_money_advertiser ON licence_money (advertiser_key)
            WHERE closed = 0;
        CREATE TABLE request_keys (
            advertiser_key BYTEA NOT NULL, idempotency_key BYTEA NOT NULL,
            request_id BYTEA NOT NULL,
            PRIMARY KEY (advertiser_key, idempotency_key)
        );
        """,
    ),
    (
        "m004_log",
        """
        CREATE TABLE log_entries (
            idx BIGINT PRIMARY KEY, entry BYTEA NOT NULL, at BIGINT NOT NULL,
            kind TEXT NOT NULL, licence_id BYTEA NOT NULL
        );
        CREATE INDEX log_entries_licence ON log_entries (licence_id, kind);
        CREATE TABLE log_nodes (
            level INTEGER NOT NULL, idx BIGINT NOT NULL, hash BYTEA NOT NULL,
            PRIMARY KEY (level, idx)
        );
        INSERT INTO counters VALUES ('log_index', 0);
        """,
    ),
    (
        "m005_spent_nonces",
        """
        CREATE TABLE spent_nonces (key BYTEA PRIMARY KEY, expires_at BIGINT NOT NULL);
        CREATE INDEX spent_nonces_expiry ON spent_nonces (expires_at);
        """,
    ),
    (
        "m006_exchange_keys",
        """
        CREATE TABLE exchange_keys (
            name TEXT PRIMARY KEY, public_key BYTEA NOT NULL, recorded_at BIGINT NOT NULL
        );
        """,
    ),
    (
        "m007_idempotency_digests",
        """
        CREATE TABLE idempotency_digests (key BYTEA PRIMARY KEY, digest BYTEA NOT NULL);
        """,
    ),
    (
        "m008_payout_destinations",
        """
        CREATE TABLE payout_destinations (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, holder_key BYTEA NOT NULL,
            reference TEXT NOT NULL, added_at BIGINT NOT NULL, usable_at BIGINT NOT NULL,
            cancelled_at BIGINT NOT NULL DEFAULT 0
        );
        CREATE UNIQUE INDEX payout_destinations_live
            ON payout_destinations (holder_key, reference) WHERE cancelled_at = 0;
        CREATE INDEX payout_destinations_holder ON payout_destinations (holder_key, id);
        """,
    ),
    (
        "m009_accounts",
        """
        CREATE TABLE account_keys (
            public_key BYTEA PRIMARY KEY, account BYTEA NOT NULL, role INTEGER NOT NULL,
            name TEXT NOT NULL, added_seq BIGINT NOT NULL, added_at BIGINT NOT NULL,
            removed_seq BIGINT NOT NULL DEFAULT 0, removed_at BIGINT NOT NULL DEFAULT 0,
            cause INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX account_keys_account ON account_keys (account);
        INSERT INTO account_keys (public_key, account, role, name, added_seq, added_at)
            SELECT key, key, 1, '', 0, registered_at FROM parties;
        CREATE TABLE key_set_changes (
            account BYTEA NOT NULL, sequence BIGINT NOT NULL, change BYTEA NOT NULL,
            at BIGINT NOT NULL, PRIMARY KEY (account, sequence)
        );
        CREATE TABLE pairings (
            code TEXT PRIMARY KEY, account BYTEA NOT NULL, expires_at BIGINT NOT NULL,
            joined BYTEA
        );
        ALTER TABLE licences ADD COLUMN consent_key BYTEA NOT NULL DEFAULT '';
        ALTER TABLE licences ADD COLUMN licensee_device BYTEA NOT NULL DEFAULT '';
        UPDATE licences SET consent_key = holder_key, licensee_device = licensee_key;
        CREATE INDEX licences_licensee_device ON licences (licensee_device)
            WHERE revoked_at = 0;
        """,
    ),
    (
        "m010_account_logs",
        """
        CREATE TABLE account_logs (
            account BYTEA PRIMARY KEY, log_key BYTEA NOT NULL, entries BIGINT NOT NULL
        );
        ALTER TABLE licences ADD COLUMN asset_digests BYTEA NOT NULL DEFAULT '';
        """,
    ),
    (
        "m011_pseudonyms",
        """
        CREATE TABLE pseudonyms (
            key BYTEA PRIMARY KEY, account BYTEA NOT NULL, licensee_account BYTEA NOT NULL,
            created_at BIGINT NOT NULL
        );
        CREATE INDEX pseudonyms_account ON pseudonyms (account, licensee_account);
        ALTER TABLE licences ADD COLUMN consent_device BYTEA NOT NULL DEFAULT '';
        ALTER TABLE pairings ADD COLUMN sealed BYTEA;
        """,
    ),
    (
        "m012_offer_refs",
        """
        CREATE TABLE exchange_secrets (name TEXT PRIMARY KEY, secret BYTEA NOT NULL);
        ALTER TABLE parties ADD COLUMN show_name INTEGER NOT NULL DEFAULT 0;
        """,
    ),
    (
        "m013_erasure",
        """
        CREATE TABLE erased_keys (digest BYTEA PRIMARY KEY, erased_at BIGINT NOT NULL);
        CREATE INDEX postings_licence ON postings (licence_id, at);
        """,
    ),
    (
        "m014_status_lists",
        """
        CREATE TABLE status_lists (
            list_id BIGINT PRIMARY KEY, epoch BIGINT NOT NULL, expires_at BIGINT NOT NULL,
            size BIGINT NOT NULL, used BIGINT NOT NULL
        );
        CREATE INDEX status_lists_open ON status_lists (epoch, list_id) WHERE used < size;
        INSERT INTO status_lists
            SELECT 0, -1, coalesce((SELECT max(not_after) FROM licences), 0), value, value
            FROM counters WHERE name = 'status_index';
        INSERT INTO counters VALUES ('status_list', 0);
        ALTER TABLE licences ADD COLUMN status_list BIGINT NOT NULL DEFAULT 0;
        ALTER TABLE licences DROP CONSTRAINT licences_status_index_key;
        CREATE UNIQUE INDEX licences_slot ON licences (status_list, status_index);
        ALTER TABLE revocations ADD COLUMN status_list BIGINT NOT NULL DEFAULT 0;
        ALTER TABLE revocations DROP CONSTRAINT revocations_status_index_key;
        CREATE UNIQUE INDEX revocations_slot ON revocations (status_list, status_index);
        """,
    ),
    (
        "m015_pg_issue",
        # A debit, as LedgerPart._post makes it with separate statements (SQLite): move the
        # account's row; an account's first entry inserts its row (the CHECK refuses a
        # negative one for an internal account); when another writer inserted it meanwhile,
        # move that row. One statement whose answer nobody waits for (a pipelined issuance).
        """
        CREATE FUNCTION licentia_debit(d_amount BIGINT, d_kind TEXT, d_key BYTEA)
        RETURNS void LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE balances SET balance = balance + d_amount
                WHERE account_kind = d_kind AND account_key = d_key;
            IF FOUND THEN
                RETURN;
            END IF;
            INSERT INTO balances VALUES (d_kind, d_key, d_amount) ON CONFLICT DO NOTHING;
            IF FOUND THEN
                RETURN;
            END IF;
            UPDATE balances SET balance = balance + d_amount
                WHERE account_kind = d_kind AND account_key = d_key;
        END $$;
        """,
    ),
    (
        "m016_growth",
        """
        ALTER TABLE licence_money ADD COLUMN due_at BIGINT NOT NULL DEFAULT 0;
        DROP INDEX licence_money_holder;
        DROP INDEX licence_money_advertiser;
        CREATE INDEX licence_money_holder ON licence_money (holder_key, due_at)
            WHERE closed = 0;
        CREATE INDEX licence_money_advertiser ON licence_money (advertiser_key, due_at)
            WHERE closed = 0;
        CREATE INDEX entries_debits ON entries (account_kind, account_key, amount)
            WHERE amount < 0;
        CREATE TABLE holder_pending (
            holder_key BYTEA PRIMARY KEY, pending BIGINT NOT NULL
        );
        INSERT INTO holder_pending (holder_key, pending)
            SELECT holder_key, sum(
                (price - (price / 10000) * fee_bps
                    - ((price - (price / 10000) * 10000) * fee_bps) / 10000)
                - (time_earned - (time_earned / 10000) * fee_bps
                    - ((time_earned - (time_earned / 10000) * 10000) * fee_bps) / 10000)
                + CASE WHEN max_uses > uses_charged THEN (max_uses - uses_charged)
                    * (price_per_use - (price_per_use / 10000) * fee_bps
                    - ((price_per_use - (price_per_use / 10000) * 10000) * fee_bps) / 10000)
                    ELSE 0 END)
            FROM licence_money WHERE closed = 0 GROUP BY holder_key;
        """,
    ),
    (
        "m017_reserves",
        """
        CREATE TABLE reserves (
            advertiser_key BYTEA PRIMARY KEY,
            reserved BIGINT NOT NULL CHECK (reserved >= 0),
            requests BIGINT NOT NULL CHECK (requests >= 0)
        );
        CREATE TABLE request_reserves (
            request_id BYTEA PRIMARY KEY, advertiser_key BYTEA NOT NULL,
            amount BIGINT NOT NULL CHECK (amount > 0)
        );
        CREATE INDEX request_reserves_advertiser ON request_reserves (advertiser_key);
        """,
    ),
    # An automatic issuance's two server-side calls (:mod:`._pg_issue`).
    ("m018_pg_issue2", _M018),
    ("m020_asset_digests", "CREATE INDEX assets_sha256 ON assets (sha256);"),
)

#: Most changes one group-committed transaction carries (:meth:`PostgresStore._group`).
#: An issuance opens two savepoints (its change's and its issue's), each a subtransaction:
#: 24 stay under the 64 subtransactions a backend keeps in shared memory, past which every
#: other session's snapshots must look transactions up on disk (``suboverflowed``).
MAX_BATCH = 24
#: How long a change of a batch, but its first, waits for a lock another transaction holds
#: before the batch commits without it (it runs first in the next batch).
BATCH_LOCK_WAIT_MS = 100

#: The channel on which revocations are announced (payload: the event's sequence number).
CHANNEL = "licentia_revocations"
#: The listening connection is reopened after this long, doubling up to the maximum.
LISTEN_BACKOFF = (0.05, 2.0)

# Every wait on the database is bounded, so that a call fails with UNAVAILABLE while the
# database is away and the replica answers again within seconds of its return.
#: How long a call waits for a pooled connection before it is UNAVAILABLE.
POOL_WAIT_SECONDS = 3.0
#: How long the pool keeps trying to make one connection before giving up on it (psycopg_pool
#: waits 1 s, then 2, 4, 8 … between attempts, so a longer time here means a reconnection
#: up to that long after the database is back). The next call that needs a connection
#: starts a new attempt at once.
POOL_RECONNECT_SECONDS = 1.0
#: libpq's ``connect_timeout``: a connection attempt to an unreachable host gives up.
CONNECT_TIMEOUT_SECONDS = 3
#: The server cancels a statement (a lock wait included) that runs longer than this.
STATEMENT_TIMEOUT_MS = 15_000
#: TCP keepalives and ``tcp_user_timeout``, so that a connection over a cut network fails in
#: about ten seconds instead of the kernel's minutes (libpq ignores them on Unix sockets).
TCP_PARAMS = {
    "keepalives": "1",
    "keepalives_idle": "5",
    "keepalives_interval": "2",
    "keepalives_count": "3",
    "tcp_user_timeout": "10000",
}

_log = logging.getLogger("licentia.store")

#: The engine's aborts after which a change is simply run again.
_RETRY = (pg_errors.DeadlockDetected, pg_errors.SerializationFailure)
#: psycopg's OperationalErrors that are a statement's, not a lost connection's.
_STATEMENT_ERRORS = (*_RETRY, pg_errors.QueryCanceled, pg_errors.LockNotAvailable)


def _lost(e: BaseException) -> bool:
    """Whether ``e`` says the connection was lost (not that one statement failed)."""
    return isinstance(e, psycopg.OperationalError) and not isinstance(e, _STATEMENT_ERRORS)


def connection_params(url: str, *, statement_timeout: bool = True) -> dict[str, str]:
    """The libpq parameters the store adds to ``url``'s own: a connect timeout, TCP
    keepalives and, unless ``statement_timeout`` is False, a statement timeout (appended to
    the URL's ``options``). A parameter the URL sets itself is left as the URL has it."""
    given = conninfo_to_dict(url)
    params = {"connect_timeout": str(CONNECT_TIMEOUT_SECONDS), **TCP_PARAMS}
    params = {k: v for k, v in params.items() if k not in given}
    options = str(given.get("options") or "")
    if statement_timeout and "statement_timeout" not in options:
        params["options"] = f"{options} -c statement_timeout={STATEMENT_TIMEOUT_MS}".strip()
    return params


def migrate(url: str) -> list[str]:
    """Apply the migrations not yet applied to the database at ``url``; their names.

    Runs under a session advisory lock: replicas starting together apply each migration
    once, one after another, and each migration commits with its record. (No statement
    timeout here: a migration may build an index, and a replica waits for another's.)"""
    applied: list[str] = []
    params = connection_params(url, statement_timeout=False)
    with psycopg.connect(url, autocommit=True, **params) as conn:  # type: ignore[arg-type]
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        try:
            # Looked up first: a runtime role without CREATE (deploy/postgres-roles.sql)
            # may not even run CREATE TABLE IF NOT EXISTS on a migrated database.
            found = conn.execute("SELECT to_regclass('licentia_migrations')").fetchone()
            if found is None or found[0] is None:
                conn.execute(
                    "CREATE TABLE licentia_migrations (migration_set TEXT NOT NULL,"
                    " name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),"
                    " PRIMARY KEY (migration_set, name))"
                )
            done = {
                r[0]
                for r in conn.execute(
                    "SELECT name FROM licentia_migrations WHERE migration_set = 'licentia'"
                )
            }
            for name, ddl in MIGRATIONS:
                if name in done:
                    continue
                with conn.transaction():
                    conn.execute(ddl.encode())
                    conn.execute(
                        "INSERT INTO licentia_migrations (migration_set, name)"
                        " VALUES ('licentia', %s)",
                        (name,),
                    )
                applied.append(name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
    return applied


def _unreachable(e: Exception) -> LicentiaError:
    """UNAVAILABLE for a call that found no database connection within the pool's wait."""
    _log.warning("store.unreachable", extra={"error": str(e)})
    return LicentiaError(
        Reason.UNAVAILABLE,
        f"the database is unreachable (no connection within {POOL_WAIT_SECONDS:g} s); retry",
    )


def _maybe_made() -> LicentiaError:
    """UNAVAILABLE for a change whose commit was sent but not answered."""
    return LicentiaError(
        Reason.UNAVAILABLE,
        "the database connection was lost while committing: the change may"
        " have been made; retry it (changes are idempotent where it matters)",
    )


def _too_slow(e: Exception) -> LicentiaError:
    """UNAVAILABLE for a statement the server cancelled at :data:`STATEMENT_TIMEOUT_MS`."""
    _log.warning("store.statement_timeout", extra={"error": str(e)})
    return LicentiaError(
        Reason.UNAVAILABLE,
        f"the database did not answer within {STATEMENT_TIMEOUT_MS / 1000:g} s; retry",
    )


class _Careful(Exception):  # noqa: N818 (a signal, not an error)
    """Raised inside a batch run without a sync after each change when the engine refused a
    statement: the batch is rolled back and run again, syncing after each change."""


class _PgConn:
    """A psycopg connection seen through the store's :class:`~.common.Conn`: the shared
    statements' ``?`` placeholders become psycopg's ``%s``.

    With a ``pipeline`` (psycopg's pipeline mode), a statement is sent without waiting for
    its answer: the answers of every statement sent so far come back in one round trip when
    a result is first read (a row, or the count of rows changed). So a change that sends
    its statements before it reads their results waits once for all of them. An error of a
    statement is raised when a result sent after it is read, or at commit: still inside
    the change, which then changes nothing."""

    __slots__ = ("conn", "pipeline")
    _SQL: ClassVar[dict[str, str]] = {}

    def __init__(
        self, conn: psycopg.Connection[tuple[Any, ...]], pipeline: psycopg.Pipeline | None = None
    ) -> None:
        self.conn = conn
        self.pipeline = pipeline

    def execute(self, sql: str, params: Any = (), /) -> Cursor:
        """Run one statement (in pipeline mode: send it)."""
        query = self._SQL.get(sql)
        if query is None:
            query = self._SQL[sql] = sql.replace("?", "%s")
        cur = self.conn.execute(query, params)
        return cur if self.pipeline is None else _PipedCursor(cur, self.pipeline)


class _PipedCursor:
    """A cursor of a statement sent in pipeline mode: reading its rows waits for its answer
    (psycopg does), and so does its row count, which psycopg would give stale."""

    __slots__ = ("cur", "pipeline")

    def __init__(self, cur: psycopg.Cursor[tuple[Any, ...]], pipeline: psycopg.Pipeline) -> None:
        self.cur = cur
        self.pipeline = pipeline

    @property
    def rowcount(self) -> int:
        """Rows the statement changed (once every statement sent has been answered)."""
        if self.cur.pgresult is None:
            self.pipeline.sync()
        return self.cur.rowcount

    def fetchone(self) -> Any:
        """The next row, or None."""
        return self.cur.fetchone()

    def fetchall(self) -> list[Any]:
        """The remaining rows."""
        return self.cur.fetchall()

    def __iter__(self) -> Iterator[Any]:
        return iter(self.cur.fetchall())


class PostgresStore(PgIssuePart, SqlStore, GroupCommit):
    """The :class:`~.base.Store` on a PostgreSQL database (``postgresql://…``), safe to share
    between several exchange replicas: each has its own pool, and the engine keeps the rules."""

    _INTEGRITY: ClassVar[tuple[type[Exception], ...]] = (psycopg.IntegrityError,)
    _CONCURRENT_WRITERS: ClassVar[bool] = True

    def __init__(
        self, url: str, *, read_only: bool = False, min_size: int = 1, max_size: int = 32
    ) -> None:
        self.url = url
        self.read_only = read_only
        self._local = threading.local()
        self._init_common()
        #: libpq parameters of every connection but the migrations' (see :data:`TCP_PARAMS`).
        self._params = connection_params(url)
        if not read_only:
            migrate(url)
        self._pool: ConnectionPool[psycopg.Connection[tuple[Any, ...]]] = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            kwargs={"autocommit": True, **self._params},
            open=True,
            name="licentia-store",
            timeout=POOL_WAIT_SECONDS,
            reconnect_timeout=POOL_RECONNECT_SECONDS,
        )
        #: The group commit's one connection (:meth:`_group`), opened at its first batch: the
        #: same few statements every batch, each prepared at its first use and kept so.
        self._batch_pool: ConnectionPool[psycopg.Connection[tuple[Any, ...]]] = ConnectionPool(
            url,
            min_size=0,
            max_size=1,
            kwargs={"autocommit": True, "prepare_threshold": 0, **self._params},
            open=True,
            name="licentia-batches",
            timeout=POOL_WAIT_SECONDS,
            reconnect_timeout=POOL_RECONNECT_SECONDS,
        )
        #: The connection that LISTENs (opened by the first :meth:`wait_for_events`).
        self._listener: psycopg.Connection[tuple[Any, ...]] | None = None
        self._backoff = LISTEN_BACKOFF[0]
        #: Pipelined changes waiting for a group commit, and whether one is under way.
        self._init_group()

    # -- plumbing ------------------------------------------------------------------------
    def _transact(
        self,
        fn: Callable[[Conn], T],
        nonces: Sequence[SpentNonce] = (),
        *,
        pipelined: bool = False,
    ) -> T:
        """Run ``fn`` in one transaction on a pooled connection and return what it returned
        once committed (or raise what it raised, nothing of it kept). It also records those
        of ``nonces`` not yet recorded (the call's spent nonces), in the same transaction.
        Deadlocks and serialization failures run it again.

        ``pipelined`` (a change written for it: an issuance): the change is group-committed
        with the other pipelined changes of this replica (:meth:`_group`)."""
        if self.read_only:
            raise LicentiaError(Reason.NOT_SERVED, "this replica does not write")
        inner: _PgConn | None = getattr(self._local, "conn", None)
        if inner is not None:  # a change made from inside a change
            return fn(inner)
        nonces = tuple(n for n in nonces if not n.recorded)
        if pipelined:
            return self._group(fn, nonces)
        lost = 0
        for attempt in range(ATTEMPTS):
            committing = False
            try:
                with self._pool.connection() as conn, conn.transaction():
                    c = _PgConn(conn)
                    self._local.conn = c
                    try:
                        self._sweep_nonces(c, nonces)
                        self._spend(c, nonces)
                        value = fn(c)
                    finally:
                        self._local.conn = None
                    committing = True
            except _RETRY:
                if attempt == ATTEMPTS - 1:
                    raise
                if _common.retried is not None:
                    _common.retried("conflict")
                continue
            except PoolTimeout as e:  # no connection to be had: nothing was sent
                raise _unreachable(e) from e
            except pg_errors.QueryCanceled as e:
                if not committing:  # past the statement timeout: rolled back, not retried
                    raise _too_slow(e) from e
                raise _maybe_made() from e
            except psycopg.OperationalError as e:
                if committing:  # lost while committing: it may or may not have been made
                    raise _maybe_made() from e
                lost += 1  # nothing was committed: run it again on another connection
                if _common.retried is not None and lost < LOST_ATTEMPTS:
                    _common.retried("connection")
                if lost >= LOST_ATTEMPTS:
                    raise LicentiaError(Reason.UNAVAILABLE, "the database is unreachable") from e
                self._connection_lost(lost)
                continue
            for n in nonces:
                n.recorded = True
            return value
        raise AssertionError("unreachable")  # pragma: no cover

    # -- group commit --------------------------------------------------------------------
    def _group(self, fn: Callable[[Conn], T], nonces: tuple[SpentNonce, ...]) -> T:
        """Run a pipelined change in a transaction shared with the other pipelined changes
        waiting on this replica, and return once that transaction has committed.

        Leader and followers, as the SQLite store's writer: the caller that finds no batch
        under way leads one — it takes up to :data:`MAX_BATCH` waiting changes and runs
        them (:meth:`_run_batch`) in one transaction, each in its own savepoint, on one
        connection in pipeline mode, then commits them all: one commit (one WAL flush) for
        the batch. The others wait, off the GIL, for their change to be done or for their
        turn to lead. Why: an issuance holds its holder's lock and the log's counter row
        until it commits, so issuances cannot share a flush in the engine's own group
        commit; in one transaction the later changes of a batch take those locks again at
        no cost, and see what the earlier ones wrote (READ COMMITTED, the same transaction)."""
        change = _Change(fn, nonces)
        self._in_group(change, self._run_batch, MAX_BATCH, "the change was abandoned")
        if change.error is not None:
            raise change.error
        return change.value  # type: ignore[no-any-return]

    def _bare(self, fn: Callable[[Conn], Callable[[], T]], nonces: Sequence[SpentNonce]) -> T:
        """:meth:`_group` for a change that records ``nonces`` itself and needs no savepoint
        of its own (:attr:`._group.Change.bare`), in two steps: ``fn`` sends, and what it
        returns, called once what was sent may be answered, either changes nothing,
        raising :class:`._pg_issue.NotMade`, or makes its change. Any other error of it
        rolls the batch back and runs it again change by change, where it is not made
        (NotMade). Inside a change, or on a replica that does not write: NotMade."""
        if self.read_only or getattr(self._local, "conn", None) is not None:
            raise NotMade
        change = _Change(fn, tuple(nonces), bare=True)
        self._in_group(change, self._run_batch, MAX_BATCH, "the change was abandoned")
        if change.error is not None:
            raise change.error
        return change.value  # type: ignore[no-any-return]

    def _run_batch(self, batch: list[_Change]) -> list[_Change]:
        """Run ``batch`` in one transaction and commit it; each change done (its value or
        its error set) but those returned, to be run first in the next batch.

        Each change's statements are answered with the next change's reads (or the
        commit): one round trip a change, as its first read must wait anyway. An error
        of the engine cannot then be told to be one change's, so the batch is rolled back
        and run again with a sync after each change (:meth:`_run_one`'s ``careful``)."""
        try:
            return self._try_batch(batch, careful=False)
        except _Careful:
            for ch in batch:
                ch.value, ch.error = None, None
            return self._try_batch(batch, careful=True)

    def _try_batch(self, batch: list[_Change], *, careful: bool) -> list[_Change]:
        """:meth:`_run_batch` in one mode. A later change of a batch that waited
        :data:`BATCH_LOCK_WAIT_MS` for a lock another transaction holds is rolled back and
        returned with those after it: the batch commits what it has rather than hold its
        own locks longer, so that two replicas' batches never wait for each other long."""
        for lost in range(1, LOST_ATTEMPTS + 1):
            ran: list[_Change] = []
            again: list[_Change] = []
            committing = False
            try:
                with self._batch_pool.connection() as conn:
                    # psycopg's cache of prepared statements can disagree with the server's
                    # once the engine refused a statement in a pipeline: a careful run
                    # prepares none, and a connection that met such an error is closed.
                    if careful:
                        conn.prepare_threshold = None
                    try:
                        # BEGIN and COMMIT sent as statements (psycopg's transaction()
                        # would wait for an answer at each): the batch's statements and its
                        # commit are answered in one round trip, once the pipeline ends.
                        with conn.pipeline() as pipe:
                            c = _PgConn(conn, pipe)
                            c.execute("BEGIN")
                            self._local.conn = c
                            self._batch_nodes = {}
                            try:
                                self._sweep_nonces(c, [n for ch in batch for n in ch.nonces])
                                bare: list[tuple[_Change, Callable[[], Any]]] = []
                                for i, ch in enumerate(batch):
                                    if i == 1:  # the first change waits as any change does
                                        c.execute(f"SET LOCAL lock_timeout = {BATCH_LOCK_WAIT_MS}")
                                    if ch.bare and not careful:  # sent now, answered together
                                        bare.append((ch, self._send_bare(c, ch)))
                                        ran.append(ch)
                                        continue
                                    self._finish_bare(bare)  # before a change that reads
                                    if not self._run_one(c, pipe, ch, careful=careful):
                                        again = batch[i:]
                                        break
                                    ran.append(ch)
                                self._finish_bare(bare)
                            finally:
                                self._local.conn = None
                            committing = True
                            c.execute("COMMIT")
                    except BaseException:
                        conn.close()
                        raise
                    if careful or again:
                        conn.close()
            except PoolTimeout as e:  # no connection to be had: nothing was sent
                return self._fail(batch, _unreachable(e))
            except psycopg.OperationalError as e:
                if committing and _lost(e):  # lost while committing: made or not, unknown
                    return self._fail(ran, _maybe_made(), again)
                # (a statement's error answered only at the commit — a deadlock, a lock or
                # statement timeout — rolled the transaction back: it is told as such below)
                if not _lost(e):  # a statement's, outside every change (the sweep, say)
                    if not careful:
                        raise _Careful from e
                    error = _too_slow(e) if isinstance(e, pg_errors.QueryCanceled) else e
                    return self._fail(batch, error)
                if lost == LOST_ATTEMPTS:  # nothing was committed: another connection
                    return self._fail(
                        batch, LicentiaError(Reason.UNAVAILABLE, "the database is unreachable")
                    )
                self._connection_lost(lost)
                with contextlib.suppress(psycopg.Error):
                    self._batch_pool.check()
                for ch in batch:
                    ch.value, ch.error = None, None
                continue
            except psycopg.Error as e:  # not committed (a statement's error aborted it)
                if not careful:
                    raise _Careful from e
                return self._fail(batch, e)
            for ch in ran:
                if ch.error is None:
                    for n in ch.nonces:
                        n.recorded = True
                ch.done = True
            return again
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _fail(
        changes: list[_Change], error: Exception, again: list[_Change] | None = None
    ) -> list[_Change]:
        """Every change of ``changes`` done with ``error``; ``again`` returned."""
        for ch in changes:
            ch.value, ch.error, ch.done = None, error, True
        return again or []

    def _run_one(self, c: _PgConn, pipe: psycopg.Pipeline, ch: _Change, *, careful: bool) -> bool:
        """Run one change of a batch in its savepoint (again on a deadlock); False, having
        rolled it back, if it must wait for the next batch (a lock it waited too long for).
        ``careful``: its statements are answered before it ends (a sync), so that an error
        of the engine is its own; otherwise such an error raises :class:`_Careful`. A
        replay of its call is refused as such, whatever else the change met.

        A bare change (:meth:`_bare`) runs without a savepoint: made, or not made having
        changed nothing (:class:`._pg_issue.NotMade`); an error of it raises
        :class:`_Careful`, and a careful run leaves it not made."""
        if ch.bare:
            if careful:
                ch.value, ch.error = None, NotMade()
                return True
            self._finish_bare([(ch, self._send_bare(c, ch))])
            return True
        c.execute("SAVEPOINT change")
        for attempt in range(ATTEMPTS):
            spent = [self._spend_sent(c, n) for n in ch.nonces]
            error: Exception | None = None
            value: Any = None
            try:
                value = ch.fn(c)
            except Exception as e:  # noqa: BLE001 (handed to the caller below)
                error = e
            if careful:
                try:
                    pipe.sync()
                except psycopg.Error as e:
                    error = error or e
            if error is not None and _lost(error):
                raise error  # the connection: the batch's
            if isinstance(error, psycopg.Error) and not careful:
                raise _Careful from error
            try:
                self._check_spent(ch.nonces, spent)
            except LicentiaError as e:
                error = e
            except psycopg.Error as e:
                if not careful:
                    raise _Careful from e
                # the nonce's own statement failed: ``error`` says why
            if error is None:
                ch.value, ch.error = value, None
                c.execute("RELEASE change")
                return True
            if careful:  # out of the pipeline's aborted state first
                with contextlib.suppress(psycopg.Error):
                    pipe.sync()
            c.execute("ROLLBACK TO SAVEPOINT change")
            if isinstance(error, pg_errors.LockNotAvailable):
                c.execute("RELEASE change")
                return False
            if isinstance(error, _RETRY) and attempt < ATTEMPTS - 1:
                if _common.retried is not None:
                    _common.retried("conflict")
                continue
            ch.error = _too_slow(error) if isinstance(error, pg_errors.QueryCanceled) else error
            break
        c.execute("RELEASE change")
        return True

    @staticmethod
    def _send_bare(c: _PgConn, ch: _Change) -> Callable[[], Any]:
        """A bare change's first step (:meth:`_bare`): what it sent; what finishes it."""
        try:
            return ch.fn(c)  # type: ignore[no-any-return]
        except Exception as e:
            if _lost(e):
                raise  # the connection: the batch's
            raise _Careful from e

    @staticmethod
    def _finish_bare(sent: list[tuple[_Change, Callable[[], Any]]]) -> None:
        """The second step of the bare changes ``sent``, in the order they were sent; each
        made or not made (:class:`._pg_issue.NotMade`): any other error raises
        :class:`_Careful`, as their changes have no savepoints. ``sent`` is emptied."""
        for ch, finish in sent:
            try:
                ch.value, ch.error = finish(), None
            except NotMade as e:
                ch.value, ch.error = None, e
            except Exception as e:
                if _lost(e):
                    raise
                raise _Careful from e
        sent.clear()

    def _has_table(self, name: str) -> bool:
        return self._rows("SELECT to_regclass(?)", (name,))[0][0] is not None

    def _hold(self, c: Conn, *parts: bytes) -> None:
        """A transaction-scoped advisory lock on ``parts``: released at commit or rollback."""
        c.execute("SELECT pg_advisory_xact_lock(?)", (lock_key(parts),))

    #: The log counter, row-locked until this change commits: gapless, in commit order.
    _NEXT_LOG_INDEX = (
        "UPDATE counters SET value = value + 1 WHERE name = 'log_index' RETURNING value - 1"
    )
    #: :data:`_NEXT_LOG_INDEX` and, in the same statement, the left siblings the entry at
    #: that index completes (``merkle.completed_nodes``): level ``l`` when the low ``l + 1``
    #: bits of the index are all 1, i.e. when ``index + 1`` (the counter now) is a multiple
    #: of ``2 ** (l + 1)``. Rows ``(index, level, hash)``; one ``(index, NULL, NULL)`` if none.
    _NEXT_LOG_INDEX_AND_SIBLINGS = (
        "WITH c AS (UPDATE counters SET value = value + 1 WHERE name = 'log_index'"
        " RETURNING value) SELECT c.value - 1, s.l, s.hash FROM c LEFT JOIN LATERAL"
        " (SELECT l, n.hash FROM generate_series(0, 61) AS l JOIN log_nodes n"
        " ON n.level = l AND n.idx = ((c.value - 1) >> l) - 1"
        " WHERE mod(c.value, 1::bigint << (l + 1)) = 0) s ON true"
    )
    #: A debit in one statement (migration m015_pg_issue), nothing to read back.
    _DEBIT = "SELECT licentia_debit(?, ?, ?)"
    _DEBIT_CHECKED = False

    def _next_sequence(self, c: Conn) -> int:
        """The revocation counter, row-locked until this change commits: gapless, in order."""
        return int(
            c.execute(
                "UPDATE counters SET value = value + 1 WHERE name = 'revocation_sequence'"
                " RETURNING value"
            ).fetchone()[0]
        )

    def _announce(self, c: Conn, event: RevocationEvent) -> None:
        """``NOTIFY`` the other replicas; the engine delivers it when this change commits."""
        c.execute("SELECT pg_notify(?, ?)", (CHANNEL, str(event.sequence)))

    def wait_for_events(self, after: int, timeout: float) -> bool:
        """Wait on the listening connection for a revocation numbered after ``after``.

        Opens (or reopens, after a failure, waiting the backoff first) the connection and
        ``LISTEN``s, then answers True at once: whatever was announced while no one
        listened is unknown, so the caller reads to catch up. Otherwise True on the first
        notification of a sequence above ``after`` (others are drained), False after
        ``timeout`` seconds of silence."""
        conn = self._listener
        if conn is None or conn.closed:
            self._listener = None
            try:
                conn = psycopg.connect(
                    self.url,
                    autocommit=True,
                    **self._params,  # type: ignore[arg-type]
                )
                conn.execute(f"LISTEN {CHANNEL}")
            except psycopg.Error:
                _log.warning("store.listen_failed", exc_info=True)
                time.sleep(self._backoff)
                self._backoff = min(self._backoff * 2, LISTEN_BACKOFF[1])
                return True
            self._listener = conn
            self._backoff = LISTEN_BACKOFF[0]
            return True
        try:
            news = False
            wait = timeout
            while True:
                got = False
                for n in conn.notifies(timeout=wait, stop_after=1):
                    got = True
                    try:
                        news = news or int(n.payload) > after
                    except ValueError:
                        news = True
                if not got:
                    return news
                wait = 0  # drain what else is queued, without waiting
        except psycopg.Error:
            _log.warning("store.listen_lost", exc_info=True)
            with contextlib.suppress(psycopg.Error):
                conn.close()
            self._listener = None
            return True

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """One read statement on a pooled connection (its own snapshot); tried again on
        another connection when the one it got was lost (a read changes nothing)."""
        return self._read(lambda conn: _PgConn(conn).execute(sql, params).fetchall())

    def _reads(
        self, statements: Sequence[tuple[str, Sequence[Any]]]
    ) -> list[list[tuple[Any, ...]]]:
        """:meth:`_rows` of each statement, sent together on one pooled connection in
        pipeline mode: one round trip (each statement still its own snapshot, READ
        COMMITTED)."""

        def send(conn: psycopg.Connection[Any]) -> list[list[tuple[Any, ...]]]:
            with conn.pipeline() as pipe:
                c = _PgConn(conn, pipe)
                cursors = [c.execute(sql, params) for sql, params in statements]
                return [cur.fetchall() for cur in cursors]

        return self._read(send)

    def _read(self, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        """``work`` on a pooled connection, tried again on another when the one it got was
        lost (reads only: they change nothing); a pool that has no connection to give, or a
        statement past its timeout, is not waited for again."""
        for attempt in range(LOST_ATTEMPTS):
            try:
                with self._pool.connection() as conn:
                    return work(conn)
            except PoolTimeout as e:  # waiting again would only wait as long again
                raise _unreachable(e) from e
            except pg_errors.QueryCanceled as e:
                raise _too_slow(e) from e
            except psycopg.OperationalError as e:
                if attempt == LOST_ATTEMPTS - 1:
                    raise LicentiaError(Reason.UNAVAILABLE, "the database is unreachable") from e
                self._connection_lost(attempt + 1)
        raise AssertionError("unreachable")  # pragma: no cover

    def _connection_lost(self, attempt: int) -> None:
        """A pooled connection was found dead: the others likely are too (the server
        restarted, the network was cut), so test every idle one and replace the dead."""
        _log.warning("store.connection_lost", extra={"attempt": attempt})
        try:
            self._pool.check()
        except psycopg.Error:  # the server is still away: the next attempt will say so
            _log.warning("store.pool_check_failed", exc_info=True)

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[Conn]:
        """A pooled connection inside one REPEATABLE READ, READ ONLY transaction. A lost
        connection is UNAVAILABLE (the caller may retry the read), never INTERNAL, and the
        pool's dead connections are replaced for the retry. In pipeline mode: ``BEGIN``
        and its setting travel with the first read, the commit alone."""
        try:
            with self._pool.connection() as conn, conn.pipeline() as pipe, conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                yield _PgConn(conn, pipe)
        except PoolTimeout as e:
            raise _unreachable(e) from e
        except pg_errors.QueryCanceled as e:
            raise _too_slow(e) from e
        except psycopg.OperationalError as e:
            self._connection_lost(1)
            raise LicentiaError(Reason.UNAVAILABLE, "the database connection was lost") from e

    def pending_migrations(self) -> list[str]:
        """This version's migrations not recorded in ``licentia_migrations``."""
        found = self._row("SELECT to_regclass('licentia_migrations')", ())
        done: set[str] = set()
        if found is not None and found[0] is not None:
            done = {
                str(r[0])
                for r in self._rows(
                    "SELECT name FROM licentia_migrations WHERE migration_set = 'licentia'", ()
                )
            }
        return [name for name, _ in MIGRATIONS if name not in done]

    def close(self) -> None:
        """Close the pool's connections and the listening connection."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(psycopg.Error):
                listener.close()
        self._batch_pool.close()
        self._pool.close()
