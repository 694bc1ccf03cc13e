"""What the auditor remembers between runs, in one SQLite file of its state directory.

The directory (created 0700) holds ``audit.db`` (0600) with:

- ``meta``: the pinned log key, the last trusted checkpoint (size, root, note text), the
  running totals and, for the wallet's audit, the highest number of the account's sealed
  entries found so far (where its :class:`licentia.sealed.TagWindow` goes on from);
- ``frontier``: the O(log n) subtree hashes needed to extend the recomputed tree;
- ``licences``: every licence seen (holder, issuer key, times, assets and their salt,
  whether and where revoked), so that a later revocation is checked against an earlier
  licence (the independent auditor: the clear ones; the wallet: the holder's own, clear or
  opened from her sealed entries);
- ``issuer_keys``: the issuer keys as the log described them;
- ``key_sets``: per account whose key-set changes the log carries, the set its logged chain
  ends with (sequence, head digest, keys: at most 16) and how many changes were logged, so
  that the next run checks the next change against it (one row per account, like
  ``licences`` one per licence); an account whose chain broke keeps the entry where it broke
  and its later changes are only counted;
- ``key_set_log``: for the wallet's audit only (one account, the holder's), every change of
  her chain as logged, in log order (at most 1025 of at most 4 KiB: the chain is capped at
  1024 and one more is kept to show it was exceeded), which the wallet compares with the
  chain the exchange states;
- ``checkpoints``: every checkpoint ever served, with the verdict on it (append-only);
- ``problems``: the problems found, kept so that later runs still report them.

One run holds the database's write lock from start to end (a second auditor on the same
directory is refused), and its progress is committed in one transaction only once the
recomputed root matched a signed checkpoint: a run that fails leaves the state as it was.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from licentia import keyset, merkle
from licentia.keyset import KeySet
from licentia.v1 import accounts_pb2

from ..logcheck import Frontier, KeyRecord, LicenceFacts, LoggedKeys

DB_NAME = "audit.db"
#: 2: the key-set tables, the keys' accounts and the licensees (a state of version 1 skipped
#: the key-set changes: start a new one). 3: the licences' asset salt (token v2); a state
#: of version 2 is brought to 3 in place.
SCHEMA_VERSION = 3
_DIGEST = merkle.HASH_BYTES

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value ANY) STRICT;
CREATE TABLE IF NOT EXISTS frontier (
    level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL, PRIMARY KEY (level, idx)
) STRICT;
CREATE TABLE IF NOT EXISTS licences (
    licence_id BLOB PRIMARY KEY, entry INTEGER NOT NULL, holder BLOB NOT NULL,
    issuer_key_id BLOB NOT NULL, issued_at INTEGER NOT NULL, not_before INTEGER NOT NULL,
    not_after INTEGER NOT NULL, assets BLOB NOT NULL, revoked_entry INTEGER,
    licensee BLOB NOT NULL, asset_salt BLOB NOT NULL DEFAULT x''
) STRICT;
CREATE INDEX IF NOT EXISTS licences_by_key ON licences (issuer_key_id, issued_at);
CREATE TABLE IF NOT EXISTS issuer_keys (
    key_id BLOB PRIMARY KEY, public_key BLOB NOT NULL, not_before INTEGER NOT NULL,
    not_after INTEGER NOT NULL, withdrawn INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS key_sets (
    account BLOB PRIMARY KEY, sequence INTEGER NOT NULL, head BLOB NOT NULL,
    keys BLOB NOT NULL, changes INTEGER NOT NULL, broken_entry INTEGER
) STRICT;
CREATE TABLE IF NOT EXISTS key_owners (
    public_key BLOB PRIMARY KEY, account BLOB NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS key_set_log (
    account BLOB NOT NULL, number INTEGER NOT NULL, entry INTEGER NOT NULL,
    change BLOB NOT NULL, PRIMARY KEY (account, number)
) STRICT;
CREATE TABLE IF NOT EXISTS checkpoints (
    seq INTEGER PRIMARY KEY, seen_at INTEGER NOT NULL, size INTEGER, root BLOB,
    note TEXT NOT NULL, verdict TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS problems (
    seq INTEGER PRIMARY KEY, found_at INTEGER NOT NULL, kind TEXT NOT NULL,
    entry INTEGER NOT NULL, licence_id BLOB NOT NULL, message TEXT NOT NULL,
    UNIQUE (kind, entry, licence_id, message)
) STRICT;
"""


_TOTALS = ("entries", "licences", "revocations", "key_events", "key_set_changes", "sealed")


@dataclass(frozen=True, slots=True)
class ChainState:
    """An account's chain as logged so far: the set it ends with, how many changes were
    logged, and the entry of the change that broke it (``None``: it verifies)."""

    current: KeySet
    changes: int = 0
    broken_entry: int | None = None


class StateError(Exception):
    """The state directory cannot be used (unreadable, corrupt, another log's, in use)."""


@dataclass(frozen=True, slots=True)
class TrustedCheckpoint:
    """The last checkpoint the auditor verified entry by entry."""

    size: int
    root: bytes
    note: str


@dataclass(frozen=True, slots=True)
class StoredProblem:
    """A problem on record: ``entry`` and ``licence_id`` are ``None`` when not about one."""

    kind: str
    message: str
    entry: int | None
    licence_id: bytes | None


@dataclass(frozen=True, slots=True)
class Totals:
    """Running totals over every entry checked so far."""

    entries: int = 0
    licences: int = 0
    revocations: int = 0
    key_events: int = 0
    key_set_changes: int = 0
    sealed: int = 0


class AuditState:
    """The auditor's state directory, opened and locked for one run (see the module)."""

    def __init__(self, directory: Path, conn: sqlite3.Connection) -> None:
        self.directory = directory
        self.db = conn

    @classmethod
    def open(cls, directory: Path) -> AuditState:
        """Open (creating it 0700 if needed) and lock the state in ``directory``; raises
        :class:`StateError` if it is unusable or another audit holds it."""
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            path = directory / DB_NAME
            os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
            conn = sqlite3.connect(str(path), isolation_level=None, timeout=1.0)
        except OSError as e:
            raise StateError(f"cannot use the state directory {str(directory)!r}: {e}") from None
        try:
            conn.executescript(_SCHEMA)
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            conn.close()
            if "locked" in str(e):
                raise StateError(
                    f"another audit is using the state directory {str(directory)!r}"
                ) from None
            raise StateError(f"the state in {str(directory)!r} is unreadable: {e}") from None
        except sqlite3.DatabaseError as e:
            conn.close()
            raise StateError(f"the state in {str(directory)!r} is unreadable: {e}") from None
        state = cls(directory, conn)
        version = state._meta("version")
        if version in (None, 2):
            # Token v2: the licences' asset salt (a table made by version 2, whose first
            # run may not have committed its version yet, lacks it).
            columns = {r[1] for r in conn.execute("PRAGMA table_info(licences)")}
            if "asset_salt" not in columns:
                conn.execute("ALTER TABLE licences ADD COLUMN asset_salt BLOB NOT NULL DEFAULT x''")
            state._set_meta("version", SCHEMA_VERSION)
            if version == 2:
                state.commit()
        elif version != SCHEMA_VERSION:
            state.close()
            why = (
                ": it was made before key-set changes were audited (they were skipped);"
                " audit again with a new state directory"
                if version == 1
                else ""
            )
            raise StateError(f"the state in {str(directory)!r} is of another version{why}")
        return state

    # -- the transaction -------------------------------------------------------------------
    def commit(self) -> None:
        """Commit the run's changes, keeping the lock for what follows."""
        self.db.execute("COMMIT")
        self.db.execute("BEGIN IMMEDIATE")

    def rollback(self) -> None:
        """Forget the run's uncommitted changes, keeping the lock."""
        self.db.execute("ROLLBACK")
        self.db.execute("BEGIN IMMEDIATE")

    def close(self) -> None:
        """Forget anything not committed and release the lock."""
        if self.db.in_transaction:
            self.db.execute("ROLLBACK")
        self.db.close()

    # -- meta -------------------------------------------------------------------------------
    def _meta(self, name: str) -> object:
        r = self.db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if r is None else r[0]

    def _set_meta(self, name: str, value: object) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (name, value))

    def log_key(self) -> str | None:
        """The log key this state was built with (pinned at the first trusted checkpoint)."""
        value = self._meta("log_key")
        return value if isinstance(value, str) else None

    def trusted(self) -> TrustedCheckpoint | None:
        """The last trusted checkpoint, or ``None`` before the first."""
        size, root, note = self._meta("size"), self._meta("root"), self._meta("note")
        if size is None:
            return None
        if not (isinstance(size, int) and isinstance(root, bytes) and isinstance(note, str)):
            raise StateError("the stored checkpoint is corrupt")
        if len(root) != _DIGEST or not 0 <= size <= merkle.MAX_TREE_SIZE:
            raise StateError("the stored checkpoint is corrupt")
        return TrustedCheckpoint(size, root, note)

    def totals(self) -> Totals:
        """The totals over every entry checked before this run."""
        values = [self._meta(n) for n in _TOTALS]
        return Totals(*(v if isinstance(v, int) else 0 for v in values))

    def sealed_found(self) -> int:
        """The highest number of the account's sealed entries found up to the trusted
        checkpoint (the wallet's audit; 0 before any)."""
        value = self._meta("sealed_found")
        return value if isinstance(value, int) and value >= 0 else 0

    def save_sealed_found(self, found: int) -> None:
        """Record :meth:`sealed_found` (with the run's progress, in its transaction)."""
        self._set_meta("sealed_found", found)

    def account_log_key(self) -> bytes | None:
        """SHA-256 of the account's log key the wallet's audits found its entries with
        (pinned at its first audit), or ``None`` before."""
        value = self._meta("account_log_key")
        return value if isinstance(value, bytes) and len(value) == _DIGEST else None

    def pin_account_log_key(self, digest: bytes) -> None:
        """Pin :meth:`account_log_key` (with the run's progress, in its transaction)."""
        self._set_meta("account_log_key", digest)

    def frontier(self) -> Frontier:
        """The recomputed tree's frontier at the trusted size, checked against its root."""
        trusted = self.trusted()
        size = trusted.size if trusted is not None else 0
        rows = self.db.execute("SELECT level, idx, hash FROM frontier").fetchall()
        try:
            frontier = Frontier.restore(size, {(int(r[0]), int(r[1])): bytes(r[2]) for r in rows})
        except ValueError as e:
            raise StateError(f"the stored tree is corrupt: {e}") from None
        if trusted is not None and frontier.root() != trusted.root:
            raise StateError("the stored tree does not match the stored checkpoint")
        return frontier

    def save_progress(
        self, log_key: str, size: int, root: bytes, note: str, frontier: Frontier, totals: Totals
    ) -> None:
        """Record a new trusted checkpoint, the tree's frontier and the totals."""
        self._set_meta("log_key", log_key)
        self._set_meta("size", size)
        self._set_meta("root", root)
        self._set_meta("note", note)
        for name in _TOTALS:
            self._set_meta(name, getattr(totals, name))
        self.db.execute("DELETE FROM frontier")
        self.db.executemany(
            "INSERT INTO frontier VALUES (?, ?, ?)",
            [(level, idx, h) for (level, idx), h in frontier.nodes().items()],
        )

    # -- issuer keys ----------------------------------------------------------------------
    def issuer_keys(self) -> LoggedKeys:
        """The issuer keys as the log described them up to the trusted checkpoint."""
        rows = self.db.execute(
            "SELECT key_id, public_key, not_before, not_after, withdrawn FROM issuer_keys"
        ).fetchall()
        return LoggedKeys(
            [KeyRecord(bytes(r[0]), bytes(r[1]), r[2], r[3], bool(r[4])) for r in rows]
        )

    def save_issuer_keys(self, records: Iterable[KeyRecord]) -> None:
        """Store the key records (replacing those of the same id)."""
        self.db.executemany(
            "INSERT OR REPLACE INTO issuer_keys VALUES (?, ?, ?, ?, ?)",
            [
                (r.key_id, r.public_key, r.not_before, r.not_after, int(r.withdrawn))
                for r in records
            ],
        )

    # -- licences -------------------------------------------------------------------------
    def licence(self, licence_id: bytes) -> tuple[LicenceFacts, int, int | None] | None:
        """A licence seen before: its facts, its entry, and its revocation's entry."""
        r = self.db.execute(
            "SELECT licence_id, holder, issuer_key_id, issued_at, not_before, not_after, assets,"
            " entry, revoked_entry, licensee, asset_salt FROM licences WHERE licence_id = ?",
            (licence_id,),
        ).fetchone()
        if r is None:
            return None
        blob = bytes(r[6])
        assets = frozenset(blob[i : i + _DIGEST] for i in range(0, len(blob), _DIGEST))
        facts = LicenceFacts(
            bytes(r[0]),
            bytes(r[1]),
            bytes(r[2]),
            r[3],
            r[4],
            r[5],
            assets,
            bytes(r[9]),
            bytes(r[10]),
        )
        return facts, int(r[7]), r[8]

    def add_licence(self, facts: LicenceFacts, entry: int) -> None:
        """Remember a licence first logged at ``entry``."""
        self.db.execute(
            "INSERT INTO licences VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)",
            (
                facts.licence_id,
                entry,
                facts.holder,
                facts.issuer_key_id,
                facts.issued_at,
                facts.not_before,
                facts.not_after,
                b"".join(sorted(facts.assets)),
                facts.licensee,
                facts.asset_salt,
            ),
        )

    def mark_revoked(self, licence_id: bytes, entry: int) -> None:
        """Record that the licence's (first) revocation is at ``entry``."""
        self.db.execute(
            "UPDATE licences SET revoked_entry = ? WHERE licence_id = ? AND revoked_entry IS NULL",
            (entry, licence_id),
        )

    def licences_issued_from(self, key_id: bytes, since: int) -> Iterator[tuple[bytes, int, int]]:
        """``(licence id, entry, issued_at)`` of the licences signed by ``key_id`` and
        stamped at or after ``since``."""
        for r in self.db.execute(
            "SELECT licence_id, entry, issued_at FROM licences"
            " WHERE issuer_key_id = ? AND issued_at >= ? ORDER BY entry",
            (key_id, since),
        ):
            yield bytes(r[0]), int(r[1]), int(r[2])

    # -- key sets ---------------------------------------------------------------------------
    def key_set(self, account: bytes) -> ChainState:
        """``account``'s chain as logged so far (its genesis before any change)."""
        r = self.db.execute(
            "SELECT sequence, head, keys, changes, broken_entry FROM key_sets WHERE account = ?",
            (account,),
        ).fetchone()
        if r is None:
            return ChainState(keyset.genesis(account))
        stored = accounts_pb2.KeySetChange.FromString(bytes(r[2]))
        current = KeySet(
            account,
            int(r[0]),
            bytes(r[1]),
            tuple(keyset.AccountKey(k.public_key, k.role, k.name) for k in stored.keys),
        )
        return ChainState(current, int(r[3]), r[4])

    def save_key_set(self, chain: ChainState) -> None:
        """Store an account's chain state (replacing the one before)."""
        keys_ = accounts_pb2.KeySetChange(keys=[k.to_proto() for k in chain.current.keys])
        self.db.execute(
            "INSERT OR REPLACE INTO key_sets VALUES (?, ?, ?, ?, ?, ?)",
            (
                chain.current.account,
                chain.current.sequence,
                chain.current.head,
                keys_.SerializeToString(deterministic=True),
                chain.changes,
                chain.broken_entry,
            ),
        )

    def add_key_owners(self, account: bytes, keys: Iterable[bytes]) -> None:
        """Remember that each of ``keys`` is (or was) a key of ``account``."""
        self.db.executemany(
            "INSERT OR IGNORE INTO key_owners VALUES (?, ?)", [(k, account) for k in keys]
        )

    def same_account(self, a: bytes, b: bytes) -> bool:
        """Whether the keys ``a`` and ``b`` are of one account, as the logged chains show (a
        key no chain names is its own account's key)."""
        if a == b:
            return True

        def owner(k: bytes) -> bytes:
            r = self.db.execute(
                "SELECT account FROM key_owners WHERE public_key = ?", (k,)
            ).fetchone()
            return bytes(r[0]) if r is not None else k

        return owner(a) == owner(b)

    def add_logged_change(self, account: bytes, number: int, entry: int, change: bytes) -> None:
        """Keep change ``number`` of ``account``'s logged chain (the wallet's audit)."""
        self.db.execute(
            "INSERT OR REPLACE INTO key_set_log VALUES (?, ?, ?, ?)",
            (account, number, entry, change),
        )

    def logged_changes(self, account: bytes) -> list[tuple[int, bytes]]:
        """``(entry, serialized SignedKeySetChange)`` of each change kept for ``account``,
        in log order."""
        return [
            (int(r[0]), bytes(r[1]))
            for r in self.db.execute(
                "SELECT entry, change FROM key_set_log WHERE account = ? ORDER BY number",
                (account,),
            )
        ]

    # -- the record -----------------------------------------------------------------------
    def record_checkpoint(
        self, size: int | None, root: bytes | None, note: str, verdict: str
    ) -> None:
        """Append a checkpoint as served, with the verdict on it."""
        self.db.execute(
            "INSERT INTO checkpoints (seen_at, size, root, note, verdict) VALUES (?, ?, ?, ?, ?)",
            (int(time.time()), size, root, note, verdict),
        )

    def checkpoints_seen(self) -> int:
        """How many checkpoints are on record."""
        return int(self.db.execute("SELECT count(*) FROM checkpoints").fetchone()[0])

    def problems(self) -> list[StoredProblem]:
        """Every problem on record, oldest first."""
        return [
            StoredProblem(r[0], r[1], None if r[2] < 0 else r[2], bytes(r[3]) or None)
            for r in self.db.execute(
                "SELECT kind, message, entry, licence_id FROM problems ORDER BY seq"
            )
        ]

    def add_problems(self, problems: Iterable[StoredProblem]) -> None:
        """Put problems on record (each once)."""
        now = int(time.time())
        self.db.executemany(
            "INSERT OR IGNORE INTO problems (found_at, kind, entry, licence_id, message)"
            " VALUES (?, ?, ?, ?, ?)",
            [
                (
                    now,
                    p.kind,
                    -1 if p.entry is None else p.entry,
                    p.licence_id or b"",
                    p.message,
                )
                for p in problems
            ],
        )
