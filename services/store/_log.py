"""The public log: entries and the Merkle tree's stored subtree hashes (part of
:class:`.common.SqlStore`).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from licentia import merkle, sealed
from licentia.errors import LicentiaError, Reason
from licentia.v1 import transparency_pb2

from ._sql import Conn, Cursor, SqlBase


class SqlNodes:
    """The log's stored subtree hashes, read on one connection (one snapshot)."""

    def __init__(self, c: Conn, known: dict[tuple[int, int], bytes] | None = None) -> None:
        self.c = c
        self.known = {} if known is None else known

    def get(self, level: int, index: int) -> bytes:
        """One stored node; INTERNAL if it is missing."""
        r = self.c.execute(
            "SELECT hash FROM log_nodes WHERE level = ? AND idx = ?", (level, index)
        ).fetchone()
        if r is None:
            raise LicentiaError(Reason.INTERNAL, f"log node ({level}, {index}) is missing")
        return bytes(r[0])

    def get_many(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """Several nodes."""
        # Those not known already (read with the index, or kept by the writer), one
        # primary-key lookup each: a row-value IN (VALUES ...) is not planned as lookups.
        # All sent before any is read (one round trip on a pipelined connection).
        sent = [
            (key, self.c.execute("SELECT hash FROM log_nodes WHERE level = ? AND idx = ?", key))
            for key in keys
            if key not in self.known
        ]
        for key, cur in sent:
            r = cur.fetchone()
            if r is None:
                raise LicentiaError(Reason.INTERNAL, f"log node {key} is missing")
            self.known[key] = bytes(r[0])
        return {key: self.known[key] for key in keys}


class LogPart(SqlBase):
    """The append-only public log and its proofs."""

    # -- the public log --------------------------------------------------------------------
    def _log(
        self,
        c: Conn,
        entry: transparency_pb2.LogEntry,
        now: int,
        kind: str,
        licence_id: bytes,
        index: int | None = None,
        known: dict[tuple[int, int], bytes] | None = None,
    ) -> int:
        """Append one entry (inside the caller's transaction) and the subtree hashes it
        completes; its index (``index``, when the caller reserved it with
        :meth:`_next_log_index` to sign it into a licence first; ``known``: the stored
        hashes it needs, if the caller read them already)."""
        data = entry.SerializeToString(deterministic=True)
        if index is None:
            index = self._next_log_index(c)
        c.execute(
            "INSERT INTO log_entries VALUES (?, ?, ?, ?, ?)", (index, data, now, kind, licence_id)
        )
        tail = self._known_log_tail()
        if known is None and tail is not None and tail[0] == index:
            known = dict(tail[1])
        nodes = SqlNodes(c, known)
        completed = merkle.completed_nodes(index, merkle.leaf_hash(data), nodes)
        c.execute(  # the leaf and the nodes it completes, in one statement
            f"INSERT INTO log_nodes VALUES {', '.join(['(?, ?, ?)'] * len(completed))}",
            [v for node in completed for v in node],
        )
        nodes.known.update(((level, i), h) for level, i, h in completed)
        self._logged(index, nodes.known)
        return index

    def _log_sealed(
        self,
        c: Conn,
        account: bytes,
        entry: transparency_pb2.LogEntry,
        now: int,
        kind: str,
        licence_id: bytes,
        index: int | None = None,
    ) -> int:
        """Append ``entry``, an entry about ``account``, sealed to it (:mod:`licentia.sealed`):
        the log shows its tag, commitment and box, nothing of the account."""
        if index is None:
            # The log's order first: every writer that appends takes it before an account's
            # entry number, so entry numbers follow log order and no two writers deadlock.
            index = self._next_log_index(c)
        log_key, number = self._next_entry_number(c, account)
        return self._log(c, sealed.seal(log_key, number, entry), now, kind, licence_id, index)

    def _next_entry_number(
        self, c: Conn, account: bytes, sent: Cursor | None = None
    ) -> tuple[bytes, int]:
        """Inside a change that appends to the log (after :meth:`_next_log_index`): the
        account's log key and the number of its next entry (a key drawn at its first).
        ``sent``: :data:`_NEXT_ENTRY` for the account, already sent."""
        r = (sent or c.execute(self._NEXT_ENTRY, (account,))).fetchone()
        if r is None:  # the account's first entry: draw its key (one statement otherwise)
            self._draw_log_key(c, account)
            r = c.execute(self._NEXT_ENTRY, (account,)).fetchone()
        return bytes(r[0]), int(r[1])

    _NEXT_ENTRY = (
        "UPDATE account_logs SET entries = entries + 1 WHERE account = ? RETURNING log_key, entries"
    )
    _ACCOUNT_LOG = "SELECT log_key, entries FROM account_logs WHERE account = ?"

    @staticmethod
    def _draw_log_key(c: Conn, account: bytes) -> None:
        """Inside a change: draw the account's log key unless it has one (GetLogKey may
        have drawn it on another connection meanwhile)."""
        c.execute(
            "INSERT INTO account_logs (account, log_key, entries) VALUES (?, ?, 0)"
            " ON CONFLICT (account) DO NOTHING",
            (account, secrets.token_bytes(sealed.LOG_KEY_BYTES)),
        )

    def account_log(self, account: bytes) -> tuple[bytes, int]:
        """The account's log key and how many log entries are about it (a key is made for
        an account with none yet)."""
        found = self._row(self._ACCOUNT_LOG, (account,))
        if found is not None:  # a plain read: what a read-only replica can answer
            return bytes(found[0]), int(found[1])

        def make(c: Conn) -> tuple[bytes, int]:
            self._draw_log_key(c, account)
            r = c.execute(self._ACCOUNT_LOG, (account,)).fetchone()
            return bytes(r[0]), int(r[1])

        return self._transact(make)

    @staticmethod
    def _log_size(c: Conn) -> int:
        return int(c.execute("SELECT coalesce(max(idx) + 1, 0) FROM log_entries").fetchone()[0])

    def log_size(self) -> int:
        """The number of entries in the log now."""
        with self._snapshot() as c:
            return self._log_size(c)

    def log_head(self) -> tuple[int, bytes]:
        """``(tree size, root hash)`` of the log now."""
        with self._snapshot() as c:
            size = self._log_size(c)
            return size, merkle.root(size, SqlNodes(c))

    def log_entries(self, start: int, end: int) -> list[tuple[int, bytes, int]]:
        """Entries ``[start, end)``: ``(index, entry bytes, appended at)``."""
        rows = self._rows(
            "SELECT idx, entry, at FROM log_entries WHERE idx >= ? AND idx < ? ORDER BY idx",
            (start, end),
        )
        return [(int(r[0]), bytes(r[1]), int(r[2])) for r in rows]

    def log_index_of_licence(self, licence_id: bytes) -> int | None:
        """The index of a licence's issuance entry."""
        r = self._row(
            "SELECT idx FROM log_entries WHERE licence_id = ? AND kind = 'licence'", (licence_id,)
        )
        return int(r[0]) if r else None

    def log_inclusion(self, index: int, size: int) -> tuple[int, list[bytes], bytes]:
        """``(size, proof, entry)`` for entry ``index`` in the tree of ``size`` (0: now)."""
        with self._snapshot() as c:
            current = self._log_size(c)
            size = size or current
            if not 0 <= index < size <= current:
                raise LicentiaError(
                    Reason.INVALID_REQUEST, f"no entry {index} in a tree of {size} (of {current})"
                )
            entry = c.execute("SELECT entry FROM log_entries WHERE idx = ?", (index,)).fetchone()
            return size, merkle.inclusion_proof(index, size, SqlNodes(c)), bytes(entry[0])

    def log_consistency(self, old_size: int, new_size: int) -> list[bytes]:
        """The consistency proof between two sizes of the tree."""
        with self._snapshot() as c:
            current = self._log_size(c)
            if not 0 < old_size <= new_size <= current:
                raise LicentiaError(
                    Reason.INVALID_REQUEST,
                    f"sizes must satisfy 0 < old <= new <= {current} (the tree now)",
                )
            return merkle.consistency_proof(old_size, new_size, SqlNodes(c))
