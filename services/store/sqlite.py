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

Why one module of this size: over 500 lines because it holds every migration of the schema
(each kept as it first ran, so that an old database upgrades the same way) next to the group
commit that writes it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from sqlite_utils import Database, Migrations

from licentia.errors import LicentiaError, Reason

from ._group import Change as _Change
from ._group import GroupCommit
from ._walwatch import WalVersion
from .base import SpentNonce
from .common import INDEX_BLOCK, NONCE_SWEEP_SECONDS, Conn, SqlStore

__all__ = [
    "FILES_PER_CONNECTION",
    "INDEX_BLOCK",
    "MAX_BATCH",
    "MAX_READERS",
    "NONCE_SWEEP_SECONDS",
    "SqliteStore",
    "migrations",
]

migrations = Migrations("licentia")

T = TypeVar("T")

#: Most changes one transaction carries (one fsync for all of them).
MAX_BATCH = 64
#: Most read connections open at once; a read waits for a free one beyond that.
MAX_READERS = 32
#: Read connections kept open while unused (the others are closed when given back).
IDLE_READERS = 8
#: Licences whose use count :meth:`SqliteStore.licence_uses` remembers (then it starts again).
USES_REMEMBERED = 10_000
#: How long a read waits for a free read connection before it is refused (BUSY).
READER_WAIT_SECONDS = 10.0
#: Open files one connection may hold: the database, its WAL and its shared memory.
FILES_PER_CONNECTION = 3
#: Mode of every file the store creates (the database, its WAL and shared memory) and of a
#: directory it creates: they hold people's data, for the exchange's account alone.
FILE_MODE = 0o600
DIR_MODE = 0o700


class _Read:
    """A statement's rows, read at once (:class:`_Eager`)."""

    __slots__ = ("rowcount", "rows")

    def __init__(self, cur: sqlite3.Cursor) -> None:
        self.rows = cur.fetchall()
        self.rowcount = cur.rowcount

    def fetchone(self) -> Any:
        """The next row, or None."""
        return self.rows.pop(0) if self.rows else None

    def fetchall(self) -> list[Any]:
        """The remaining rows."""
        rows, self.rows = self.rows, []
        return rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())


class _Eager:
    """The writer connection for a change written to be pipelined (``_transact``'s
    ``pipelined``), which may leave a statement's rows unread: each statement's rows are
    read as it runs, so that none stays in progress (SQLite refuses to release a savepoint
    then)."""

    __slots__ = ("conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Any = (), /) -> _Read:
        """Run one statement and read its rows."""
        return _Read(self.conn.execute(sql, params))


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
def m006_exchange_keys(db: Database) -> None:
    """The exchange's own public keys (operator, log), recorded by its first start: every
    later start, of any replica, checks its key files against them (``services/app.py``)."""
    db.executescript(
        """
        CREATE TABLE exchange_keys (
            name TEXT PRIMARY KEY, public_key BLOB NOT NULL, recorded_at INTEGER NOT NULL
        ) STRICT;
        """
    )


@migrations()
def m007_idempotency_digests(db: Database) -> None:
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


@migrations()
def m008_payout_destinations(db: Database) -> None:
    """Each holder's payout destinations: a withdrawal pays only to one added at least the
    exchange's payout delay ago (``usable_at``) and not cancelled. At most one row not
    cancelled per holder and reference."""
    db.executescript(
        """
        CREATE TABLE payout_destinations (
            id INTEGER PRIMARY KEY, holder_key BLOB NOT NULL, reference TEXT NOT NULL,
            added_at INTEGER NOT NULL, usable_at INTEGER NOT NULL,
            cancelled_at INTEGER NOT NULL DEFAULT 0
        ) STRICT;
        CREATE UNIQUE INDEX payout_destinations_live
            ON payout_destinations (holder_key, reference) WHERE cancelled_at = 0;
        CREATE INDEX payout_destinations_holder ON payout_destinations (holder_key, id);
        """
    )


@migrations()
def m009_accounts(db: Database) -> None:
    """Accounts with key sets: every key of every account (the account's own key, a device
    key, for every party registered before), the chain of signed key-set changes, pending
    pairings, and on each licence the keys its claims name (the consenting device and the
    licensee's presenting key)."""
    db.executescript(
        """
        CREATE TABLE account_keys (
            public_key BLOB PRIMARY KEY, account BLOB NOT NULL, role INTEGER NOT NULL,
            name TEXT NOT NULL, added_seq INTEGER NOT NULL, added_at INTEGER NOT NULL,
            removed_seq INTEGER NOT NULL DEFAULT 0, removed_at INTEGER NOT NULL DEFAULT 0,
            cause INTEGER NOT NULL DEFAULT 0
        ) STRICT, WITHOUT ROWID;
        CREATE INDEX account_keys_account ON account_keys (account);
        INSERT INTO account_keys (public_key, account, role, name, added_seq, added_at)
            SELECT key, key, 1, '', 0, registered_at FROM parties;
        CREATE TABLE key_set_changes (
            account BLOB NOT NULL, sequence INTEGER NOT NULL, change BLOB NOT NULL,
            at INTEGER NOT NULL, PRIMARY KEY (account, sequence)
        ) STRICT, WITHOUT ROWID;
        CREATE TABLE pairings (
            code TEXT PRIMARY KEY, account BLOB NOT NULL, expires_at INTEGER NOT NULL,
            joined BLOB
        ) STRICT, WITHOUT ROWID;
        ALTER TABLE licences ADD COLUMN consent_key BLOB NOT NULL DEFAULT x'';
        ALTER TABLE licences ADD COLUMN licensee_device BLOB NOT NULL DEFAULT x'';
        UPDATE licences SET consent_key = holder_key, licensee_device = licensee_key;
        CREATE INDEX licences_licensee_device ON licences (licensee_device)
            WHERE revoked_at = 0;
        """
    )


@migrations()
def m010_account_logs(db: Database) -> None:
    """Each account's log key and entry count: the log seals every entry about an account
    to it (docs/token-format.md §10c). A row is made at the account's first entry."""
    db.executescript(
        """
        CREATE TABLE account_logs (
            account BLOB PRIMARY KEY, log_key BLOB NOT NULL, entries INTEGER NOT NULL
        ) STRICT, WITHOUT ROWID;
        ALTER TABLE licences ADD COLUMN asset_digests BLOB NOT NULL DEFAULT x'';
        """
    )


@migrations()
def m011_pseudonyms(db: Database) -> None:
    """Pairwise holder keys: each pseudonym's account and licensee account, the device that
    approved each licence (its ``consent_key`` is now the pseudonym), and the holder secret a
    pairing hands sealed to the joined device."""
    db.executescript(
        """
        CREATE TABLE pseudonyms (
            key BLOB PRIMARY KEY, account BLOB NOT NULL, licensee_account BLOB NOT NULL,
            created_at INTEGER NOT NULL
        ) STRICT, WITHOUT ROWID;
        CREATE INDEX pseudonyms_account ON pseudonyms (account, licensee_account);
        ALTER TABLE licences ADD COLUMN consent_device BLOB NOT NULL DEFAULT x'';
        ALTER TABLE pairings ADD COLUMN sealed BLOB;
        """
    )


@migrations()
def m012_offer_refs(db: Database) -> None:
    """The exchange's secrets kept in the store (the secret of the advertisers' offer and
    asset references, the same on every replica), and each holder's choice to show her
    display name in offers (off: an offer names nobody unless she chose it)."""
    db.executescript(
        """
        CREATE TABLE exchange_secrets (name TEXT PRIMARY KEY, secret BLOB NOT NULL) STRICT;
        ALTER TABLE parties ADD COLUMN show_name INTEGER NOT NULL DEFAULT 0;
        """
    )


@migrations()
def m013_erasure(db: Database) -> None:
    """Retention and account erasure: the digest of every key of an erased account (a call
    it signs is refused as ACCOUNT_ERASED, and it never registers again), and each licence's
    postings by time (retention counts from a licence's last money movement)."""
    db.executescript(
        """
        CREATE TABLE erased_keys (
            digest BLOB PRIMARY KEY, erased_at INTEGER NOT NULL
        ) STRICT, WITHOUT ROWID;
        CREATE INDEX postings_licence ON postings (licence_id, at);
        """
    )


@migrations()
def m014_status_lists(db: Database) -> None:
    """Status lists sharded by expiry epoch (docs/token-format.md §7): the lists, each
    licence's and revocation's list, and a slot unique per (list, index). List 0 is the
    legacy list, closed: its size is the old index counter, and it ends with its last
    licence. SQLite cannot drop a column's UNIQUE: both tables are rebuilt without it."""
    db.executescript(
        """
        CREATE TABLE status_lists (
            list_id INTEGER PRIMARY KEY, epoch INTEGER NOT NULL, expires_at INTEGER NOT NULL,
            size INTEGER NOT NULL, used INTEGER NOT NULL
        ) STRICT;
        CREATE INDEX status_lists_open ON status_lists (epoch, list_id) WHERE used < size;
        INSERT INTO status_lists
            SELECT 0, -1, coalesce((SELECT max(not_after) FROM licences), 0), value, value
            FROM counters WHERE name = 'status_index';
        INSERT INTO counters VALUES ('status_list', 0);
        """
    )
    for table in ("licences", "revocations"):
        create, indexes = db.execute(
            "SELECT (SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?),"
            " json_group_array(sql) FROM sqlite_master"
            " WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
            (table, table),
        ).fetchone()
        old = "status_index INTEGER NOT NULL UNIQUE"
        if old not in create:
            raise RuntimeError(f"m014: unexpected schema of {table}")
        create = create.replace(old, "status_index INTEGER NOT NULL", 1)
        create = create.replace(f"CREATE TABLE {table} (", f"CREATE TABLE {table}_m014 (", 1)
        cols = ", ".join(c.name for c in db[table].columns)
        db.execute(create)
        db.execute(f"INSERT INTO {table}_m014 (rowid, {cols}) SELECT rowid, {cols} FROM {table}")
        db.execute(f"DROP TABLE {table}")
        db.execute(f"ALTER TABLE {table}_m014 RENAME TO {table}")
        for sql in json.loads(indexes):
            db.execute(sql)
        db.execute(f"ALTER TABLE {table} ADD COLUMN status_list INTEGER NOT NULL DEFAULT 0")
        db.execute(f"CREATE UNIQUE INDEX {table}_slot ON {table} (status_list, status_index)")


@migrations()
def m015_pg_issue(db: Database) -> None:
    """Nothing on SQLite: the PostgreSQL store's migration of this name creates the function
    that debits a balance in the server (one statement, no answer awaited); SQLite's one
    writer runs the same steps as separate statements in process. Kept so that both
    stores list the same migrations."""


@migrations()
def m016_growth(db: Database) -> None:
    """Costs that do not grow with the store (docs/performance.md, "Growth"): each open
    licence's next settlement time (``due_at``: a statement settles only the licences due,
    0 for every row before this migration, which the next settlement of their party fixes),
    a holder's debits (her withdrawals) indexed apart from her many credits, and what each
    holder's open licences will still pay her (``holder_pending``, kept with every change of
    their money, summed here once from the rows as ``ledger.holder_pending`` does)."""
    db.executescript(
        """
        ALTER TABLE licence_money ADD COLUMN due_at INTEGER NOT NULL DEFAULT 0;
        DROP INDEX licence_money_holder;
        DROP INDEX licence_money_advertiser;
        CREATE INDEX licence_money_holder ON licence_money (holder_key, due_at)
            WHERE closed = 0;
        CREATE INDEX licence_money_advertiser ON licence_money (advertiser_key, due_at)
            WHERE closed = 0;
        CREATE INDEX entries_debits ON entries (account_kind, account_key, amount)
            WHERE amount < 0;
        CREATE TABLE holder_pending (
            holder_key BLOB PRIMARY KEY, pending INTEGER NOT NULL
        ) STRICT, WITHOUT ROWID;
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
        """
    )


@migrations()
def m017_reserves(db: Database) -> None:
    """Funds reserved at request time (docs/architecture.md, "Money"): each pending
    request's reservation (what its approval will escrow), and each advertiser's total
    reserved and number of reserving requests, kept in the transaction that adds or ends a
    request. A request pending before this migration reserves nothing (its approval is
    checked against the available balance, as any issuance is)."""
    db.executescript(
        """
        CREATE TABLE reserves (
            advertiser_key BLOB PRIMARY KEY,
            reserved INTEGER NOT NULL CHECK (reserved >= 0),
            requests INTEGER NOT NULL CHECK (requests >= 0)
        ) STRICT, WITHOUT ROWID;
        CREATE TABLE request_reserves (
            request_id BLOB PRIMARY KEY, advertiser_key BLOB NOT NULL,
            amount INTEGER NOT NULL CHECK (amount > 0)
        ) STRICT, WITHOUT ROWID;
        CREATE INDEX request_reserves_advertiser ON request_reserves (advertiser_key);
        """
    )


@migrations()
def m018_pg_issue2(db: Database) -> None:
    """Nothing on SQLite: the PostgreSQL store's migration of this name creates the two
    functions that make an automatic issuance in two calls (``services/store/_pg_issue.py``);
    SQLite's one writer runs its statements in process. Kept so that both stores list the
    same migrations."""


@migrations()
def m020_asset_digests(db: Database) -> None:
    """Assets by digest alone (``CheckAssetDigests``: is this file some holder's declared
    asset?), a lookup each instead of a scan of every holder's assets."""
    db.execute("CREATE INDEX assets_sha256 ON assets (sha256)")


class SqliteStore(SqlStore, GroupCommit):
    """The :class:`~.base.Store` on one SQLite file (``:memory:`` is refused: nothing fakes
    durability)."""

    def __init__(self, path: str | os.PathLike[str], *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        if not read_only:
            _private_file(self.path)
        conn = sqlite3.connect(
            str(self.path), check_same_thread=False, isolation_level=None, timeout=30
        )
        self._db = Database(conn)
        self._lock = threading.RLock()
        self._local = threading.local()
        #: Read connections: those not in use (the last given back first), and how many
        #: are open; a thread borrows one at a time (:meth:`_reader`).
        self._idle: list[sqlite3.Connection] = []
        self._open_readers = 0
        self._readers_free = threading.Condition(self._lock)
        self._closed = False
        self._init_group()
        #: The log's next index and the stored nodes appending there may need, as the
        #: writer left them in the transaction under way (:meth:`_logged`); None: unknown.
        self._tail: tuple[int, dict[tuple[int, int], bytes]] | None = None
        self._init_common()
        self._db.execute("PRAGMA foreign_keys = ON")
        self._db.execute("PRAGMA busy_timeout = 30000")
        self._db.execute("PRAGMA temp_store = MEMORY")  # no temporary files on disk
        if not read_only:
            self._db.enable_wal()
            self._db.execute("PRAGMA synchronous = FULL")
            migrations.apply(self._db)
            for suffix in ("-wal", "-shm"):  # SQLite gives them the database's mode
                _private_file(self.path.with_name(self.path.name + suffix), create=False)
        # The wal-index's header, once this connection has it open (a read), tells whether
        # anything was committed since (licence_uses: a counted Verify reads no row twice).
        self._db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        self._wal = WalVersion(self.path)
        self._uses: dict[bytes, tuple[bytes, int]] = {}

    _INTEGRITY: ClassVar[tuple[type[Exception], ...]] = (sqlite3.IntegrityError,)

    # -- plumbing ------------------------------------------------------------------------
    def _transact(
        self,
        fn: Callable[[sqlite3.Connection], T],
        nonces: Sequence[SpentNonce] = (),
        *,
        pipelined: bool = False,
    ) -> T:
        """Run ``fn`` on the writer connection inside a write transaction, and return what it
        returned once that transaction has committed (or raise what it raised, with its
        changes rolled back).

        Group commit, leader and followers: the caller that finds no commit under way leads
        one — it takes up to :data:`MAX_BATCH` queued changes, runs each in a savepoint,
        commits them all with one fsync, and wakes their callers; the others wait, off the
        GIL, for their change to be done or for their turn to lead.

        The change also records those of ``nonces`` not yet recorded (the call's spent
        nonces, :class:`.base.SpentNonce`), in its savepoint.
        """
        if self.read_only:
            raise LicentiaError(Reason.NOT_SERVED, "this replica does not write")
        if pipelined:
            written = fn
            fn = lambda conn: written(_Eager(conn))  # type: ignore[arg-type]  # noqa: E731
        if getattr(self._local, "writing", False):  # a change made from inside a change
            return fn(self._db.conn)
        change = _Change(fn, tuple(n for n in nonces if not n.recorded))
        self._in_group(change, self._commit_batch, MAX_BATCH, "the transaction was abandoned")
        if change.error is not None:
            if _cannot_open(change.error):  # no file descriptor left, say: not a bug
                raise LicentiaError(
                    Reason.UNAVAILABLE, "the database cannot be written now: try again later"
                ) from change.error
            raise change.error
        return change.value  # type: ignore[no-any-return]

    def _commit_batch(self, batch: list[_Change]) -> list[_Change]:
        """:meth:`_commit`, then every change of ``batch`` done (none run again)."""
        self._commit(batch)
        for done in batch:
            done.done = True
        return []

    def _commit(self, batch: Sequence[_Change]) -> None:
        """Run ``batch`` in one transaction, each change in its own savepoint, and commit."""
        conn = self._db.conn
        self._local.writing = True
        try:
            conn.execute("BEGIN IMMEDIATE")
            self._tail = None  # read once in each transaction, then kept by the writer
            self._sweep_nonces(conn, [n for change in batch for n in change.nonces])
            for change in batch:
                conn.execute("SAVEPOINT change")
                tail = self._tail
                try:
                    self._spend(conn, change.nonces)
                    change.value = change.fn(conn)
                except Exception as e:  # noqa: BLE001 (handed to the caller)
                    change.error = e
                    conn.execute("ROLLBACK TO change")
                    self._tail = tail  # as the rollback left the log
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
            self._tail = None
            self._local.writing = False

    def _known_log_tail(self) -> tuple[int, dict[tuple[int, int], bytes]] | None:
        """The log's tail as this transaction's appends left it (None before its first)."""
        return self._tail

    def _logged(self, index: int, nodes: dict[tuple[int, int], bytes]) -> None:
        """Keep the next index and, of ``nodes``, the roots of the tree's complete subtrees
        (the only stored nodes a later append reads): the next append of this transaction
        reads neither. The one writer appends, so nothing else moves the log meanwhile."""
        size = index + 1
        wanted = ((level, (size >> level) - 1) for level in range(size.bit_length()))
        self._tail = (size, {k: nodes[k] for k in wanted if (size >> k[0]) & 1 and k in nodes})

    def _forget_log_tail(self) -> None:
        self._tail = None

    @contextlib.contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        """A read-only connection for this thread, from the pool: reads never wait for the
        writer (WAL), and each statement sees everything committed before it started.

        A thread holds one connection at a time (a read inside a read uses the same one). At
        most :data:`MAX_READERS` are open; a read waits for a free one up to
        :data:`READER_WAIT_SECONDS`, then is refused BUSY. One that cannot be opened (no
        file descriptor left, say) is UNAVAILABLE, never an internal error."""
        held: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if held is not None:
            yield held
            return
        conn = self._borrow()
        self._local.conn = conn
        sound = True
        try:
            yield conn
        except sqlite3.Error as e:
            sound = False  # the connection may be broken: it is closed, not kept
            if _cannot_open(e):
                raise LicentiaError(
                    Reason.UNAVAILABLE, "the database cannot be opened now: try again later"
                ) from e
            raise
        finally:
            self._local.conn = None
            self._give_back(conn, sound and not conn.in_transaction)

    def _borrow(self) -> sqlite3.Connection:
        deadline = time.monotonic() + READER_WAIT_SECONDS
        with self._lock:
            while not self._idle and self._open_readers >= MAX_READERS:
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    raise LicentiaError(Reason.BUSY, "the database is busy: try again later")
                self._readers_free.wait(left)
            if self._idle:
                return self._idle.pop()
            self._open_readers += 1
        try:
            conn = sqlite3.connect(
                self.path.resolve().as_uri() + "?mode=ro",
                uri=True,
                check_same_thread=False,
                isolation_level=None,
                timeout=30,
            )
            conn.execute("PRAGMA busy_timeout = 30000")
            conn.execute("PRAGMA temp_store = MEMORY")
        except sqlite3.OperationalError as e:
            with self._lock:
                self._open_readers -= 1
                self._readers_free.notify()
            raise LicentiaError(
                Reason.UNAVAILABLE, "the database cannot be opened now: try again later"
            ) from e
        return conn

    def _give_back(self, conn: sqlite3.Connection, keep: bool) -> None:
        with self._lock:
            if keep and not self._closed and len(self._idle) < IDLE_READERS:
                self._idle.append(conn)
                self._readers_free.notify()
                return
            self._open_readers -= 1
            self._readers_free.notify()
        conn.close()

    @property
    def open_readers(self) -> int:
        """The read connections open now (in use or idle)."""
        return self._open_readers

    @staticmethod
    def open_files(workers: int) -> int:
        """The most files a store serving ``workers`` threads holds open: the writer and
        one read connection per thread, at most :data:`MAX_READERS` of them, and the map of
        the wal-index header (:mod:`._walwatch`, one descriptor)."""
        return (1 + min(workers, MAX_READERS)) * FILES_PER_CONNECTION + 1

    def licence_uses(self, licence_id: bytes) -> int:
        """The uses counted so far of one licence (0 for an unknown one): read again only
        once something has been committed since it was last read (the WAL-index header,
        :mod:`._walwatch`; by any process), and otherwise from memory, without a statement."""
        seen = self._wal.current()
        if seen is not None:
            known = self._uses.get(licence_id)
            if known is not None and known[0] == seen:
                return known[1]
        uses = super().licence_uses(licence_id)
        if seen is not None:  # (read after ``seen``: still the count while nothing commits)
            if len(self._uses) >= USES_REMEMBERED:
                self._uses.clear()
            self._uses[licence_id] = (seen, uses)
        return uses

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._reader() as c:
            return list(c.execute(sql, params).fetchall())

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[Conn]:
        """A reader inside one read transaction (one snapshot)."""
        with self._reader() as c:
            c.execute("BEGIN")
            try:
                yield c
            finally:
                c.execute("COMMIT")

    def _has_table(self, name: str) -> bool:
        return bool(
            self._rows("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
        )

    #: The one writer appends after the last entry.
    _NEXT_LOG_INDEX = "SELECT coalesce(max(idx) + 1, 0) FROM log_entries"

    def _next_sequence(self, c: Conn) -> int:
        """The one writer numbers after the last event."""
        return int(
            c.execute("SELECT coalesce(max(sequence), 0) + 1 FROM revocations").fetchone()[0]
        )

    def pending_migrations(self) -> list[str]:
        """This version's migrations the file has not applied (sqlite-utils' record)."""
        with self._lock:
            return [m.name for m in migrations.pending(self._db)]

    def close(self) -> None:
        """Close the connections."""
        with self._lock:
            self._closed = True
            for conn in self._idle:
                conn.close()
            self._open_readers -= len(self._idle)
            self._idle.clear()
            self._readers_free.notify_all()
            self._wal.close()
            self._db.close()


def _cannot_open(e: BaseException) -> bool:
    """Whether SQLite failed for want of a file it could not open (out of descriptors)."""
    return isinstance(e, sqlite3.OperationalError) and "unable to open" in str(e)


def _private_file(path: Path, *, create: bool = True) -> None:
    """Make ``path`` (and, when ``create``, its directory) exist with the owner's access
    alone (:data:`FILE_MODE`, :data:`DIR_MODE`), whatever the umask: a file created here is
    created 0600, and a looser one left by an earlier version is tightened."""
    if create:
        if not path.parent.exists():
            path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            os.chmod(path.parent, DIR_MODE)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), FILE_MODE)
    else:
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            return
    try:
        if os.fstat(fd).st_mode & 0o777 != FILE_MODE:
            os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
