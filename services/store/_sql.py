"""The plumbing every part of the SQL store shares (:mod:`.common` composes the parts).

A backend (:mod:`.sqlite`, :mod:`.postgres`) supplies how a change runs in one transaction
(:meth:`SqlBase._transact`): every part's changes run through it, so a change spanning
several parts (an issuance: request, licence, ledger, log) is one transaction on either
engine.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar, Protocol, TypeVar

from licentia.errors import LicentiaError, Reason
from licentia.status import DEFAULT_EPOCH_SECONDS, DEFAULT_LIST_SIZE, MAX_STATUS_BITS

from ..model import (
    RevocationEvent,
)
from .base import SpentNonce
from .base_erasure import erased_key_digest

T = TypeVar("T")

#: Status-list indexes reserved by one update of a list's row; a slot is never handed out
#: twice, and the ones left unused when the process stops are simply never used (zero bits).
INDEX_BLOCK = 64
#: Expired spent nonces are deleted at most once in this many seconds.
NONCE_SWEEP_SECONDS = 10


class Cursor(Protocol):
    """The part of a DB-API cursor the store uses."""

    @property
    def rowcount(self) -> int:
        """Rows the statement changed."""
        ...

    def fetchone(self) -> Any:
        """The next row, or None."""
        ...

    def fetchall(self) -> list[Any]:
        """The remaining rows."""
        ...

    def __iter__(self) -> Iterator[Any]: ...


class Conn(Protocol):
    """A connection inside a transaction: statements with ``?`` placeholders (the shared
    SQL has no other ``?`` and no ``%``, so a backend may rewrite them to its own style)."""

    def execute(self, sql: str, params: Any = ..., /) -> Cursor:
        """Run one statement."""
        ...


def _ints(values: Any) -> str:
    return ",".join(str(int(v)) for v in sorted(values))


def _parse_ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",")] if text else []


class SqlBase:
    """What every part of the SQL store shares: the plumbing a backend supplies, the one
    transaction every part's change runs in, the status-list index, spent nonces and
    idempotency digests."""

    #: What the engine raises when a constraint (unique key, check) refuses a row.
    _INTEGRITY: ClassVar[tuple[type[Exception], ...]] = ()
    #: True when several writers may run at once (then money rows are re-read under lock).
    _CONCURRENT_WRITERS: ClassVar[bool] = False
    #: A read-only store (a follower's) never writes, nor migrates.
    read_only: bool = False

    def _init_common(self) -> None:
        self._index_lock = threading.Lock()
        #: Per expiry epoch: the list, next index and end of the block reserved.
        self._slots: dict[tuple[int, int], list[int]] = {}
        self._swept_at = -float(NONCE_SWEEP_SECONDS)

    # -- what a backend supplies -------------------------------------------------------------
    def _transact(
        self, fn: Callable[[Conn], T], nonces: Sequence[SpentNonce] = (), *, pipelined: bool = False
    ) -> T:
        """Run ``fn`` inside one write transaction; what it returned, once committed. The
        transaction also records those of ``nonces`` not yet recorded (:class:`.base.SpentNonce`):
        it fails with their reason, changing nothing, if one is recorded and live.

        ``pipelined``: ``fn`` is written so that a backend may send its statements without
        waiting for each answer (it reads results only where it needs them, and expects a
        statement's error no sooner than the next result it reads); one that cannot ignores
        it."""
        raise NotImplementedError

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of one read statement (it sees everything committed before it started)."""
        raise NotImplementedError

    def _reads(
        self, statements: Sequence[tuple[str, Sequence[Any]]]
    ) -> list[list[tuple[Any, ...]]]:
        """The rows of each read statement, each as :meth:`_rows` (its own snapshot); a
        backend may send them together."""
        return [self._rows(sql, params) for sql, params in statements]

    def _snapshot(self) -> contextlib.AbstractContextManager[Conn]:
        """A connection whose reads all see one snapshot."""
        raise NotImplementedError

    def _has_table(self, name: str) -> bool:
        """Whether the database has this table (a read-only store is not migrated)."""
        raise NotImplementedError

    def _hold(self, c: Conn, *parts: bytes) -> None:
        """Inside a change: hold, until it commits, the lock named by ``parts`` (a holder,
        a licence, an account, an idempotency key), so that writers on other connections
        touching the same thing wait. A single-writer backend needs none."""

    #: The statement whose one row's one column is the index of the log entry a change
    #: appends (:meth:`_next_log_index`): a backend's own.
    _NEXT_LOG_INDEX: ClassVar[str] = ""
    #: :data:`_NEXT_LOG_INDEX` that also reads the stored nodes appending at that index
    #: needs: rows ``(index, level, hash)``, level NULL when none is needed; empty: the
    #: backend reads them as needed.
    _NEXT_LOG_INDEX_AND_SIBLINGS: ClassVar[str] = ""

    def _next_log_index(self, c: Conn) -> int:
        """Inside a change: the index of the log entry it appends."""
        tail = self._known_log_tail()
        return tail[0] if tail is not None else int(c.execute(self._NEXT_LOG_INDEX).fetchone()[0])

    def _known_log_tail(self) -> tuple[int, dict[tuple[int, int], bytes]] | None:
        """Inside a change: the index of the next log entry and stored nodes it may need,
        when the writer knows them without a read (:meth:`_logged`); else None."""
        return None

    def _logged(self, index: int, nodes: dict[tuple[int, int], bytes]) -> None:
        """Inside a change: entry ``index`` was appended, and these are stored nodes
        (those it completed among them). A backend whose one writer keeps the log's tail
        between appends of a transaction remembers it here; one with several forgets."""

    def _forget_log_tail(self) -> None:
        """Inside a change: part of it was rolled back (to a savepoint of its own), so
        what :meth:`_logged` remembered may be undone: read it again."""

    def _next_sequence(self, c: Conn) -> int:
        """Inside a change: the sequence number of the revocation event it appends."""
        raise NotImplementedError

    def _announce(self, c: Conn, event: RevocationEvent) -> None:
        """Inside a change: tell the other processes on this store, at commit, that
        ``event`` exists. A backend with one writing process has no one to tell."""

    def shared(self) -> bool:
        """True when several processes may write to this store at once."""
        return self._CONCURRENT_WRITERS

    def wait_for_events(self, after: int, timeout: float) -> bool:
        """Polling: sleep ``timeout`` seconds, then False (nothing is announced)."""
        time.sleep(timeout)
        return False

    # -- shared plumbing ---------------------------------------------------------------------
    def _row(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        rows = self._rows(sql, params)
        return rows[0] if rows else None

    #: Whether a key was a key of an account since deleted (by its digest).
    _ERASED_KEY = "SELECT 1 FROM erased_keys WHERE digest = ?"

    def _erased(self, c: Conn, key: bytes) -> bool:
        """Inside a change: whether ``key`` was a key of an account since deleted."""
        return c.execute(self._ERASED_KEY, (erased_key_digest(key),)).fetchone() is not None

    def _alive(self, c: Conn, account: bytes, reason: Reason = Reason.ACCOUNT_ERASED) -> None:
        """Inside a change that writes for ``account``: hold the lock its deletion holds
        (``holder``), then refuse (``reason``) if the account was deleted. The servicer
        authenticated the call in an earlier read: without this a write racing a deletion
        could commit after it and leave rows nothing would ever erase."""
        self._still_alive(self._alive_sent(c, account), reason)

    def _alive_sent(self, c: Conn, account: bytes) -> Cursor:
        """:meth:`_alive`'s statements, sent: check their answer with :meth:`_still_alive`
        (later, so that a pipelined change waits once for it and what it sent after)."""
        self._hold(c, b"holder", account)
        return c.execute(self._ERASED_KEY, (erased_key_digest(account),))

    @staticmethod
    def _still_alive(erased: Cursor, reason: Reason) -> None:
        """Refuse (``reason``) if :meth:`_alive_sent`'s read found the account deleted."""
        if erased.fetchone() is not None:
            raise LicentiaError(reason, "the account was deleted")

    def _execute(
        self, sql: str, params: Sequence[Any] = (), nonces: Sequence[SpentNonce] = ()
    ) -> int:
        """One statement as its own change (recording ``nonces``); the rows it changed."""
        return self._transact(lambda c: c.execute(sql, params).rowcount, nonces)

    def reserve_status_slot(
        self,
        not_after: int,
        *,
        list_size: int = DEFAULT_LIST_SIZE,
        epoch_seconds: int = DEFAULT_EPOCH_SECONDS,
    ) -> tuple[int, int]:
        """``(status_list, status_index)`` for a licence ending at ``not_after``: an unused
        slot of an open list of its expiry epoch (``not_after // epoch_seconds``), a new
        list of ``list_size`` indexes when none has room. Reserved in blocks of up to
        :data:`INDEX_BLOCK` per epoch, each in a transaction of its own (never the issuing
        one), so a slot is never handed out twice, by any replica."""
        if not 0 < list_size <= MAX_STATUS_BITS or epoch_seconds <= 0 or not_after < 0:
            raise ValueError("a list holds 1 to 2^26 indexes; an epoch lasts > 0 seconds")
        epoch = not_after // epoch_seconds
        with self._index_lock:
            block = self._slots.get((epoch, epoch_seconds))
            if block is None or block[1] >= block[2]:
                if len(self._slots) > 1024:  # epochs long past: forget their blocks
                    self._slots.clear()
                block = self._slots[epoch, epoch_seconds] = self._transact(
                    lambda c: self._reserve_block(c, epoch, list_size, epoch_seconds)
                )
            slot = (block[0], block[1])
            block[1] += 1
            return slot

    @staticmethod
    def _reserve_block(c: Conn, epoch: int, list_size: int, epoch_seconds: int) -> list[int]:
        """Inside a change: ``[list, first, end]`` of a block of ``epoch``. The update of the
        ``status_list`` counter comes first: it locks its row (PostgreSQL), so replicas
        reserve one after another and list ids are committed in increasing order. A list is
        taken only if it ends with the epoch (after a change of ``--status-epoch-days`` an
        old list of the same epoch number ends elsewhere: every licence in a list must have
        ended by its ``expires_at``)."""
        expires_at = (epoch + 1) * epoch_seconds
        c.execute("UPDATE counters SET value = value WHERE name = 'status_list'")
        r = c.execute(
            "SELECT list_id, used, size FROM status_lists WHERE epoch = ? AND expires_at = ?"
            " AND used < size ORDER BY list_id LIMIT 1",
            (epoch, expires_at),
        ).fetchone()
        if r is None:
            list_id = int(
                c.execute(
                    "UPDATE counters SET value = value + 1 WHERE name = 'status_list'"
                    " RETURNING value"
                ).fetchone()[0]
            )
            c.execute(
                "INSERT INTO status_lists (list_id, epoch, expires_at, size, used)"
                " VALUES (?, ?, ?, ?, 0)",
                (list_id, epoch, expires_at, list_size),
            )
            r = (list_id, 0, list_size)
        list_id, used, size = (int(v) for v in r)
        end = min(used + INDEX_BLOCK, size)
        c.execute("UPDATE status_lists SET used = ? WHERE list_id = ?", (end, list_id))
        return [list_id, used, end]

    @staticmethod
    def _spend(c: Conn, nonces: Sequence[SpentNonce]) -> None:
        """Record ``nonces``; raise their reason if one is already recorded and live."""
        SqlBase._check_spent(nonces, [SqlBase._spend_sent(c, n) for n in nonces])

    @staticmethod
    def _spend_sent(c: Conn, n: SpentNonce) -> Cursor:
        """Send the statement that records ``n`` (:meth:`_check_spent` reads its answer)."""
        return c.execute(
            "INSERT INTO spent_nonces VALUES (?, ?) ON CONFLICT (key) DO UPDATE"
            " SET expires_at = excluded.expires_at WHERE spent_nonces.expires_at <= ?",
            (n.key, n.expires_at, n.now),
        )

    @staticmethod
    def _check_spent(nonces: Sequence[SpentNonce], sent: Sequence[Cursor]) -> None:
        """Raise the reason of the first of ``nonces`` already recorded and live."""
        for n, cur in zip(nonces, sent, strict=True):
            if cur.rowcount != 1:
                raise LicentiaError(n.reason, "this call was made before: sign it again")

    def spend_nonces(self, nonces: Sequence[SpentNonce]) -> None:
        """Record those of ``nonces`` that no change has recorded, in a transaction of their
        own (group-committed with other changes); raise their reason if one is already
        recorded and live."""
        if any(not n.recorded for n in nonces):
            self._transact(only_nonces, nonces)

    def _sweep_nonces(self, c: Conn, nonces: Sequence[SpentNonce]) -> None:
        """Delete the spent nonces expired by the calls' time (at most every
        :data:`NONCE_SWEEP_SECONDS`), so the table holds about one window's nonces."""
        now = max((n.now for n in nonces), default=None)
        if now is not None and time.monotonic() - self._swept_at >= NONCE_SWEEP_SECONDS:
            self._swept_at = time.monotonic()
            c.execute("DELETE FROM spent_nonces WHERE expires_at <= ?", (now,))

    # -- idempotency ---------------------------------------------------------------------
    _DIGEST = "SELECT digest FROM idempotency_digests WHERE key = ?"

    def _same_request(self, c: Conn | None, key: bytes, digest: bytes) -> None:
        """Refuse (IDEMPOTENCY_KEY_REUSED) a key whose first request had another digest.

        ``c`` is a change's connection, or None for a read outside one. A key stored before
        digests were kept (no row) has nothing to compare with: there the callers compare
        what they stored of the first request (its licence, amount, reference).
        """
        r = (
            self._row(self._DIGEST, (key,))
            if c is None
            else c.execute(self._DIGEST, (key,)).fetchone()
        )
        if r is not None and bytes(r[0]) != digest:
            raise LicentiaError(
                Reason.IDEMPOTENCY_KEY_REUSED,
                "this idempotency key was used before for a different request",
            )

    @staticmethod
    def _keep_digest(c: Conn, key: bytes, digest: bytes) -> None:
        """Store the digest of the request a key was first used for (in its transaction)."""
        c.execute("INSERT INTO idempotency_digests VALUES (?, ?)", (key, digest))


def _check_digest(digest: bytes) -> None:
    """A request digest is a SHA-256 (32 bytes): refuse anything else, so that no caller
    stores an idempotency key without the request it belongs to."""
    if len(digest) != 32:
        raise ValueError("a request digest is 32 bytes")


def only_nonces(c: Conn) -> None:
    """The change of :meth:`SqlBase.spend_nonces`: nothing but the call's nonces, which
    every transaction records (a named function, so that tests can tell it apart)."""
