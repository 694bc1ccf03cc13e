"""What the SQL stores share: every Store method, written once against a DB-API-like connection.

:class:`SqlStore` holds the store's logic — the statements, the rules checked inside each
transaction, the ledger postings, the public log's Merkle maintenance, the row ↔ model
conversions — written with ``?`` placeholders in SQL that SQLite and PostgreSQL both accept.
A backend (:mod:`.sqlite`, :mod:`.postgres`) supplies the plumbing: how a change runs in one
transaction (:meth:`SqlStore._transact`), how reads are made (:meth:`SqlStore._rows`,
:meth:`SqlStore._snapshot`), how the next log index and revocation sequence are taken, and
how concurrent writers are kept apart (:meth:`SqlStore._hold`: nothing in SQLite, whose one
writer runs changes one after another; engine locks in PostgreSQL, where several replicas
write at once).
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Protocol, TypeVar, cast

from licentia import merkle
from licentia.errors import LicentiaError, Reason
from licentia.scope import Scope
from licentia.v1 import transparency_pb2
from licentia.vocabulary import DataCategory, Medium, Purpose

from .. import ledger
from ..issuance import Issuance, Verdict
from ..model import (
    Access,
    AssetRow,
    Cause,
    IssuerKeyRow,
    LedgerLine,
    LicenceRow,
    Party,
    RequestRow,
    RequestState,
    RevocationEvent,
    Role,
    StandingRuleRow,
    Statement,
    Terms,
)
from .base import SpentNonce, StaleVerdict

T = TypeVar("T")

#: Status-list indexes reserved by one counter update; an index is never handed out twice,
#: and the ones left unused when the process stops are simply never used (zero bits).
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


class SqlNodes:
    """The log's stored subtree hashes, read on one connection (one snapshot)."""

    def __init__(self, c: Conn) -> None:
        self.c = c

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
        if not keys:
            return {}
        # One primary-key lookup each: a row-value IN (VALUES ...) is not planned as lookups.
        return {(level, index): self.get(level, index) for level, index in keys}


def _ints(values: Any) -> str:
    return ",".join(str(int(v)) for v in sorted(values))


def _parse_ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",")] if text else []


class SqlStore:
    """The :class:`~.base.Store` methods over SQL; a backend subclass supplies the plumbing."""

    #: What the engine raises when a constraint (unique key, check) refuses a row.
    _INTEGRITY: ClassVar[tuple[type[Exception], ...]] = ()
    #: True when several writers may run at once (then money rows are re-read under lock).
    _CONCURRENT_WRITERS: ClassVar[bool] = False
    #: A read-only store (a follower's) never writes, nor migrates.
    read_only: bool = False

    def _init_common(self) -> None:
        self._index_lock = threading.Lock()
        self._index_next = self._index_end = 0
        self._swept_at = -float(NONCE_SWEEP_SECONDS)

    # -- what a backend supplies -------------------------------------------------------------
    def _transact(self, fn: Callable[[Conn], T], nonces: Sequence[SpentNonce] = ()) -> T:
        """Run ``fn`` inside one write transaction; what it returned, once committed. The
        transaction also records those of ``nonces`` not yet recorded (:class:`.base.SpentNonce`):
        it fails with their reason, changing nothing, if one is recorded and live."""
        raise NotImplementedError

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of one read statement (it sees everything committed before it started)."""
        raise NotImplementedError

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

    def _next_log_index(self, c: Conn) -> int:
        """Inside a change: the index of the log entry it appends."""
        raise NotImplementedError

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

    def _execute(
        self, sql: str, params: Sequence[Any] = (), nonces: Sequence[SpentNonce] = ()
    ) -> int:
        """One statement as its own change (recording ``nonces``); the rows it changed."""
        return self._transact(lambda c: c.execute(sql, params).rowcount, nonces)

    def reserve_status_index(self) -> int:
        """The next unused status-list index (reserved in blocks of :data:`INDEX_BLOCK`)."""
        with self._index_lock:
            if self._index_next >= self._index_end:
                start = self._transact(
                    lambda c: int(
                        c.execute(
                            "UPDATE counters SET value = value + ? WHERE name = 'status_index'"
                            " RETURNING value - ?",
                            (INDEX_BLOCK, INDEX_BLOCK),
                        ).fetchone()[0]
                    )
                )
                self._index_next, self._index_end = start, start + INDEX_BLOCK
            index = self._index_next
            self._index_next += 1
            return index

    @staticmethod
    def _spend(c: Conn, nonces: Sequence[SpentNonce]) -> None:
        """Record ``nonces``; raise their reason if one is already recorded and live."""
        for n in nonces:
            took = c.execute(
                "INSERT INTO spent_nonces VALUES (?, ?) ON CONFLICT (key) DO UPDATE"
                " SET expires_at = excluded.expires_at WHERE spent_nonces.expires_at <= ?",
                (n.key, n.expires_at, n.now),
            ).rowcount
            if took != 1:
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

    # -- parties -------------------------------------------------------------------------
    _PARTY = "key, role, handle, display_name, country, registered_at, objecting"

    @staticmethod
    def _party(r: tuple[Any, ...]) -> Party:
        return Party(r[0], Role(r[1]), r[2] or "", r[3], r[4], r[5], bool(r[6]))

    def add_party(self, party: Party, *, nonces: Sequence[SpentNonce] = ()) -> None:
        """Register a party; ALREADY_EXISTS if its key or handle is taken."""
        try:
            self._execute(
                f"INSERT INTO parties ({self._PARTY}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    party.key,
                    int(party.role),
                    party.handle or None,
                    party.display_name,
                    party.country,
                    party.registered_at,
                    int(party.objecting),
                ),
                nonces=nonces,
            )
        except self._INTEGRITY:
            raise LicentiaError(Reason.ALREADY_EXISTS, "key or handle already registered") from None

    def party(self, key: bytes) -> Party | None:
        """The party with this key."""
        r = self._row(f"SELECT {self._PARTY} FROM parties WHERE key = ?", (key,))
        return self._party(r) if r else None

    def platforms(self, after_handle: str, limit: int) -> list[Party]:
        """Registered platforms by platform id, after ``after_handle`` (at most ``limit``)."""
        rows = self._rows(
            f"SELECT {self._PARTY} FROM parties WHERE role = ? AND handle > ?"
            " ORDER BY handle LIMIT ?",
            (int(Role.PLATFORM), after_handle, limit),
        )
        return [self._party(r) for r in rows]

    def update_party(
        self,
        key: bytes,
        *,
        display_name: str | None = None,
        objecting: bool | None = None,
        nonces: Sequence[SpentNonce] = (),
    ) -> Party:
        """Change a party's display name or objection; NOT_FOUND if unknown."""

        def change(c: Conn) -> Party:
            if display_name is not None:
                c.execute("UPDATE parties SET display_name = ? WHERE key = ?", (display_name, key))
            if objecting is not None:
                c.execute("UPDATE parties SET objecting = ? WHERE key = ?", (int(objecting), key))
            r = c.execute(f"SELECT {self._PARTY} FROM parties WHERE key = ?", (key,)).fetchone()
            if r is None:
                raise LicentiaError(Reason.NOT_FOUND, "no such party")
            return self._party(r)

        return self._transact(change, nonces)

    # -- assets and terms ----------------------------------------------------------------
    _ASSET = "holder_key, sha256, category, label, content_size, content IS NOT NULL, declared_at"

    @staticmethod
    def _asset(r: tuple[Any, ...]) -> AssetRow:
        return AssetRow(r[0], r[1], DataCategory(r[2]), r[3], r[4], bool(r[5]), r[6])

    def put_asset(
        self, row: AssetRow, content: bytes | None, *, nonces: Sequence[SpentNonce] = ()
    ) -> AssetRow:
        """Declare or rectify an asset: its label and category are replaced; its stored
        bytes are replaced when ``content`` is given and kept otherwise (erasure deletes)."""

        def change(c: Conn) -> AssetRow:
            seq = c.execute(
                "UPDATE counters SET value = value + 1 WHERE name = 'asset_seq' RETURNING value"
            ).fetchone()[0]
            c.execute(
                "INSERT INTO assets (holder_key, sha256, category, label, content, content_size,"
                " declared_at, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (holder_key, sha256) DO UPDATE SET category = excluded.category,"
                " label = excluded.label, content = coalesce(excluded.content, assets.content),"
                " content_size = coalesce(length(coalesce(excluded.content, assets.content)), 0),"
                " declared_at = excluded.declared_at",
                (
                    row.holder_key,
                    row.sha256,
                    int(row.category),
                    row.label,
                    content,
                    len(content) if content is not None else 0,
                    row.declared_at,
                    seq,
                ),
            )
            r = c.execute(
                f"SELECT {self._ASSET} FROM assets WHERE holder_key = ? AND sha256 = ?",
                (row.holder_key, row.sha256),
            ).fetchone()
            return self._asset(r)

        return self._transact(change, nonces)

    def assets(self, holder_key: bytes) -> list[AssetRow]:
        """The holder's assets, oldest first."""
        rows = self._rows(
            f"SELECT {self._ASSET} FROM assets WHERE holder_key = ? ORDER BY seq", (holder_key,)
        )
        return [self._asset(r) for r in rows]

    def asset_content(self, holder_key: bytes, sha256: bytes) -> bytes | None:
        """The stored bytes of an asset, if any."""
        r = self._row(
            "SELECT content FROM assets WHERE holder_key = ? AND sha256 = ?", (holder_key, sha256)
        )
        return r[0] if r else None

    def set_terms(
        self, holder_key: bytes, terms: Terms, *, nonces: Sequence[SpentNonce] = ()
    ) -> None:
        """Replace the holder's terms."""
        s = terms.scope
        self._execute(
            "INSERT INTO terms VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (holder_key) DO UPDATE SET categories = excluded.categories,"
            " purposes = excluded.purposes, refused = excluded.refused, media = excluded.media,"
            " territories = excluded.territories, currency = excluded.currency,"
            " price_per_day_minor = excluded.price_per_day_minor,"
            " max_term_seconds = excluded.max_term_seconds,"
            " exclusivity_offered = excluded.exclusivity_offered,"
            " exclusivity_multiplier_bps = excluded.exclusivity_multiplier_bps,"
            " updated_at = excluded.updated_at",
            (
                holder_key,
                _ints(s.categories),
                _ints(s.purposes),
                _ints(terms.refused_purposes),
                _ints(s.media),
                ",".join(sorted(s.territories)),
                terms.currency,
                terms.price_per_day_minor,
                terms.max_term_seconds,
                int(terms.exclusivity_offered),
                terms.exclusivity_multiplier_bps,
                terms.updated_at,
            ),
            nonces=nonces,
        )

    @staticmethod
    def _terms(r: Sequence[Any]) -> Terms:
        scope = Scope.of(
            [DataCategory(v) for v in _parse_ints(r[0])],
            [Purpose(v) for v in _parse_ints(r[1])],
            [Medium(v) for v in _parse_ints(r[3])],
            r[4].split(","),
        )
        return Terms(
            scope,
            frozenset(Purpose(v) for v in _parse_ints(r[2])),
            r[5],
            r[6],
            r[7],
            bool(r[8]),
            r[9],
            r[10],
        )

    _TERMS = (
        "categories, purposes, refused, media, territories, currency, price_per_day_minor,"
        " max_term_seconds, exclusivity_offered, exclusivity_multiplier_bps, updated_at"
    )

    def terms(self, holder_key: bytes) -> Terms | None:
        """The holder's terms."""
        r = self._row(f"SELECT {self._TERMS} FROM terms WHERE holder_key = ?", (holder_key,))
        return self._terms(r) if r else None

    def offers(self, after_handle: str, limit: int) -> list[tuple[Party, Terms]]:
        """Holders that have terms and do not object, by handle, after ``after_handle``."""
        cols = ", ".join(f"p.{c.strip()}" for c in self._PARTY.split(","))
        tcols = ", ".join(f"t.{c.strip()}" for c in self._TERMS.split(","))
        rows = self._rows(
            f"SELECT {cols}, {tcols} FROM parties p JOIN terms t ON t.holder_key = p.key"
            " WHERE p.objecting = 0 AND p.handle > ? ORDER BY p.handle LIMIT ?",
            (after_handle, limit),
        )
        return [(self._party(r[:7]), self._terms(r[7:])) for r in rows]

    # -- standing rules --------------------------------------------------------------------
    _RULE = "rule_id, holder_key, rule, signature, created_at, withdrawn_at"

    def add_rule(self, row: StandingRuleRow, *, nonces: Sequence[SpentNonce] = ()) -> None:
        """Register a standing rule; ALREADY_EXISTS for a known rule id."""
        try:
            self._execute(
                f"INSERT INTO standing_rules ({self._RULE}) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    row.rule_id,
                    row.holder_key,
                    row.rule,
                    row.signature,
                    row.created_at,
                    row.withdrawn_at,
                ),
                nonces=nonces,
            )
        except self._INTEGRITY:
            raise LicentiaError(Reason.ALREADY_EXISTS, "rule id already registered") from None

    def rules(self, holder_key: bytes) -> list[StandingRuleRow]:
        """The holder's standing rules, oldest first."""
        rows = self._rows(
            f"SELECT {self._RULE} FROM standing_rules WHERE holder_key = ? ORDER BY rowid",
            (holder_key,),
        )
        return [StandingRuleRow(*r) for r in rows]

    def withdraw_rule(
        self, holder_key: bytes, rule_id: bytes, now: int, *, nonces: Sequence[SpentNonce] = ()
    ) -> StandingRuleRow:
        """Withdraw a rule of this holder; NOT_FOUND otherwise."""

        def change(c: Conn) -> StandingRuleRow:
            c.execute(
                "UPDATE standing_rules SET withdrawn_at = ?"
                " WHERE rule_id = ? AND holder_key = ? AND withdrawn_at = 0",
                (now, rule_id, holder_key),
            )
            r = c.execute(
                f"SELECT {self._RULE} FROM standing_rules WHERE rule_id = ? AND holder_key = ?",
                (rule_id, holder_key),
            ).fetchone()
            if r is None:
                raise LicentiaError(Reason.NOT_FOUND, "no such standing rule")
            return StandingRuleRow(*r)

        return self._transact(change, nonces)

    # -- requests ------------------------------------------------------------------------
    _REQ = (
        "request_id, state, advertiser_key, holder_key, claims, created_at, expires_at,"
        " updated_at, reason, failure, auto_approved, message, licence_id"
    )

    _REQ_BY_KEY = (
        f"SELECT {', '.join('r.' + x.strip() for x in _REQ.split(','))}"
        " FROM request_keys k JOIN requests r ON r.request_id = k.request_id"
        " WHERE k.advertiser_key = ? AND k.idempotency_key = ?"
    )

    @staticmethod
    def _request(r: Sequence[Any]) -> RequestRow:
        return RequestRow(
            request_id=r[0],
            state=RequestState(r[1]),
            advertiser_key=r[2],
            holder_key=r[3],
            claims=r[4],
            created_at=r[5],
            expires_at=r[6],
            updated_at=r[7],
            reason=r[8],
            failure=r[9],
            auto_approved=bool(r[10]),
            message=r[11],
            licence_id=r[12],
        )

    def add_request(
        self,
        row: RequestRow,
        *,
        auto: tuple[Issuance, Verdict] | None = None,
        now: int = 0,
        idempotency_key: bytes = b"",
        digest: bytes = b"",
        nonces: Sequence[SpentNonce] = (),
    ) -> RequestRow:
        """Store a new request — and, with ``auto``, issue its licence too, in the same
        transaction.

        When the automatic issuance is refused (its verdict, or the advertiser's funds),
        the request is stored FAILED with the reason, and the refusal is raised after the
        commit; a stale verdict (:class:`.base.StaleVerdict`) stores nothing. With an
        ``idempotency_key``, a request the same advertiser made with that key before is
        returned instead, and nothing is stored (IDEMPOTENCY_KEY_REUSED if it had another
        ``digest``; the digest is stored with the key).
        """
        if idempotency_key:
            _check_digest(digest)

        def change(c: Conn) -> tuple[RequestRow, LicentiaError | None]:
            if idempotency_key:
                self._hold(c, b"request_key", row.advertiser_key, idempotency_key)
                first = c.execute(
                    self._REQ_BY_KEY, (row.advertiser_key, idempotency_key)
                ).fetchone()
                key = b"request\x00" + row.advertiser_key + idempotency_key
                if first is not None:
                    self._same_request(c, key, digest)
                    return self._request(first), None
                c.execute(
                    "INSERT INTO request_keys VALUES (?, ?, ?)",
                    (row.advertiser_key, idempotency_key, row.request_id),
                )
                self._keep_digest(c, key, digest)
            c.execute(
                f"INSERT INTO requests ({self._REQ}) VALUES ({', '.join('?' * 13)})",
                (
                    row.request_id,
                    int(row.state),
                    row.advertiser_key,
                    row.holder_key,
                    row.claims,
                    row.created_at,
                    row.expires_at,
                    row.updated_at,
                    row.reason,
                    row.failure,
                    int(row.auto_approved),
                    row.message,
                    row.licence_id,
                ),
            )
            if auto is None:
                return row, None
            issuance, verdict = auto
            c.execute("SAVEPOINT issue")
            try:
                issued = self._issue_in(c, issuance, verdict, now, just_stored=True)
            except LicentiaError as e:
                c.execute("ROLLBACK TO issue")
                c.execute("RELEASE issue")
                failed = self._finish(
                    c, row.request_id, RequestState.FAILED, now, str(e), e.reason.name
                )
                return failed, e
            c.execute("RELEASE issue")
            return issued, None

        stored, refused = self._transact(change, nonces)
        if refused is not None:
            raise refused
        return stored

    def request_by_key(
        self, advertiser_key: bytes, idempotency_key: bytes, digest: bytes
    ) -> RequestRow | None:
        """The request an advertiser made with this idempotency key, if any
        (IDEMPOTENCY_KEY_REUSED if it was made with another digest)."""
        _check_digest(digest)
        r = self._row(self._REQ_BY_KEY, (advertiser_key, idempotency_key))
        if r is None:
            return None
        self._same_request(None, b"request\x00" + advertiser_key + idempotency_key, digest)
        return self._request(r)

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

    def request(self, request_id: bytes) -> RequestRow | None:
        """One request."""
        r = self._row(f"SELECT {self._REQ} FROM requests WHERE request_id = ?", (request_id,))
        return self._request(r) if r else None

    def requests_for_holder(
        self, holder_key: bytes, *, include_answered: bool, limit: int
    ) -> list[RequestRow]:
        """The holder's requests, newest first."""
        where = "" if include_answered else f" AND state = {int(RequestState.PENDING)}"
        rows = self._rows(
            f"SELECT {self._REQ} FROM requests WHERE holder_key = ?{where}"
            " ORDER BY created_at DESC, rowid DESC LIMIT ?",
            (holder_key, limit),
        )
        return [self._request(r) for r in rows]

    def _finish(
        self,
        c: Conn,
        request_id: bytes,
        state: RequestState,
        now: int,
        reason: str,
        failure: str,
        licence_id: bytes = b"",
        auto: bool | None = None,
    ) -> RequestRow:
        r = c.execute(
            "UPDATE requests SET state = ?, updated_at = ?, reason = ?, failure = ?,"
            " licence_id = ?, auto_approved = coalesce(?, auto_approved)"
            f" WHERE request_id = ? AND state = ? RETURNING {self._REQ}",
            (
                int(state),
                now,
                reason,
                failure,
                licence_id,
                None if auto is None else int(auto),
                request_id,
                int(RequestState.PENDING),
            ),
        ).fetchone()
        if r is None:
            exists = c.execute(
                "SELECT 1 FROM requests WHERE request_id = ?", (request_id,)
            ).fetchone()
            if exists is None:
                raise LicentiaError(Reason.NOT_FOUND, "no such request")
            raise LicentiaError(Reason.REQUEST_NOT_PENDING, "the request is no longer pending")
        return self._request(r)

    def finish_request(
        self,
        request_id: bytes,
        state: RequestState,
        now: int,
        *,
        reason: str = "",
        failure: str = "",
        nonces: Sequence[SpentNonce] = (),
    ) -> RequestRow:
        """Move a PENDING request to ``state``; REQUEST_NOT_PENDING if it is not pending."""
        return self._transact(
            lambda c: self._finish(c, request_id, state, now, reason, failure), nonces
        )

    def issue(
        self, issuance: Issuance, verdict: Verdict, now: int, *, nonces: Sequence[SpentNonce] = ()
    ) -> RequestRow:
        """Apply a decided issuance to its pending request, in one transaction."""
        return self._transact(lambda c: self._issue_in(c, issuance, verdict, now), nonces)

    def _live_licences(
        self, c: Conn, holder_key: bytes, not_before: int, not_after: int, exclusive: bool
    ) -> list[LicenceRow]:
        # Only licences that overlap in time can conflict, and a licence that is not
        # exclusive conflicts only with exclusive ones.
        only_exclusive = "" if exclusive else " AND exclusive = 1"
        return [
            self._licence(r)
            for r in c.execute(
                f"SELECT {self._LIC} FROM licences WHERE holder_key = ? AND revoked_at = 0"
                f" AND not_after > ? AND not_before < ?{only_exclusive}",
                (holder_key, not_before, not_after),
            )
        ]

    def live_licences(
        self, holder_key: bytes, not_before: int, not_after: int, *, exclusive: bool
    ) -> list[LicenceRow]:
        """The holder's unrevoked licences a new one over the window could conflict with."""
        with self._snapshot() as c:
            return self._live_licences(c, holder_key, not_before, not_after, exclusive)

    def _issue_in(
        self,
        c: Conn,
        issuance: Issuance,
        verdict: Verdict,
        now: int,
        *,
        just_stored: bool = False,
    ) -> RequestRow:
        """Apply ``issuance`` inside the caller's change. ``just_stored``: its request was
        stored PENDING earlier in this same change, so it is not read back to be checked."""
        licence, money = issuance.licence, issuance.money
        # Concurrent writers wait here: one issuance (or answer) per request, and one
        # exclusivity check per holder at a time, each seeing what the one before committed.
        self._hold(c, b"request", licence.request_id)
        self._hold(c, b"holder", licence.holder_key)
        if not just_stored:
            state = c.execute(
                "SELECT state FROM requests WHERE request_id = ?", (licence.request_id,)
            ).fetchone()
            if state is None:
                raise LicentiaError(Reason.NOT_FOUND, "no such request")
            if state[0] != RequestState.PENDING:
                raise LicentiaError(Reason.REQUEST_NOT_PENDING, "the request is no longer pending")
        live = self._live_licences(
            c, licence.holder_key, licence.not_before, licence.not_after, licence.exclusive
        )
        if frozenset(r.licence_id for r in live) != verdict.seen:
            raise StaleVerdict
        if verdict.refusal is not None:
            raise LicentiaError(verdict.refusal, "the licence conflicts with a live licence")
        # Only issuances take money out of an advertiser's account: this lock keeps the
        # balance read here true until the escrow is posted.
        self._hold(c, b"account", ledger.ADVERTISER.encode(), money.advertiser_key)
        held = self._balance(c, ledger.Account.advertiser(money.advertiser_key))
        missing = ledger.shortfall(held, money)
        if missing:
            raise LicentiaError(
                Reason.INSUFFICIENT_FUNDS,
                f"the licence costs {money.escrow_total}, the balance is {held}:"
                f" deposit {missing} more",
            )
        c.execute(
            f"INSERT INTO licences ({self._LIC}) VALUES ({', '.join('?' * 13)})",
            self._licence_values(licence),
        )
        if issuance.escrow is not None:
            self._post(c, issuance.escrow)
        c.execute(
            "INSERT INTO licence_money VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, 0)",
            (
                money.licence_id,
                money.advertiser_key,
                money.holder_key,
                money.price,
                money.price_per_use,
                money.max_uses,
                money.fee_bps,
                money.not_before,
                money.not_after,
            ),
        )
        self._log(c, issuance.log_entry, now, "licence", licence.licence_id)
        for digest in issuance.asset_digests:
            c.execute(
                "INSERT INTO licence_assets VALUES (?, ?, ?)",
                (licence.licence_id, licence.holder_key, digest),
            )
        return self._finish(
            c, licence.request_id, RequestState.ISSUED, now, "", "", licence.licence_id
        )

    # -- licences ------------------------------------------------------------------------
    _LIC = (
        "licence_id, request_id, token, holder_key, licensee_key, issued_at, not_before,"
        " not_after, status_index, max_uses, uses, exclusive, revoked_at"
    )

    @staticmethod
    def _licence(r: Sequence[Any]) -> LicenceRow:
        return LicenceRow(
            licence_id=r[0],
            request_id=r[1],
            token=r[2],
            holder_key=r[3],
            licensee_key=r[4],
            issued_at=r[5],
            not_before=r[6],
            not_after=r[7],
            status_index=r[8],
            max_uses=r[9],
            uses=r[10],
            exclusive=bool(r[11]),
            revoked_at=r[12],
        )

    @staticmethod
    def _licence_values(x: LicenceRow) -> tuple[Any, ...]:
        return (
            x.licence_id,
            x.request_id,
            x.token,
            x.holder_key,
            x.licensee_key,
            x.issued_at,
            x.not_before,
            x.not_after,
            x.status_index,
            x.max_uses,
            x.uses,
            int(x.exclusive),
            x.revoked_at,
        )

    def licence(self, licence_id: bytes) -> LicenceRow | None:
        """One licence."""
        r = self._row(f"SELECT {self._LIC} FROM licences WHERE licence_id = ?", (licence_id,))
        return self._licence(r) if r else None

    def licence_uses(self, licence_id: bytes) -> int:
        """The uses counted so far of one licence (0 for an unknown one)."""
        r = self._row("SELECT uses FROM licences WHERE licence_id = ?", (licence_id,))
        return int(r[0]) if r else 0

    def licences_of(self, party_key: bytes, *, before_issued: int, limit: int) -> list[LicenceRow]:
        """Licences where the party is holder or licensee, newest first."""
        rows = self._rows(
            f"SELECT {self._LIC} FROM licences WHERE (holder_key = ? OR licensee_key = ?)"
            " AND issued_at < ? ORDER BY issued_at DESC, rowid DESC LIMIT ?",
            (party_key, party_key, before_issued, limit),
        )
        return [self._licence(r) for r in rows]

    _EV = "sequence, status_index, licence_id, licensee_key, revoked_at, cause"

    @staticmethod
    def _event(r: Sequence[Any]) -> RevocationEvent:
        return RevocationEvent(r[0], r[1], r[2], r[3], r[4], Cause(r[5]))

    def _revoke(
        self, c: Conn, lic: LicenceRow, now: int, cause: Cause, evidence: bytes
    ) -> RevocationEvent:
        c.execute("UPDATE licences SET revoked_at = ? WHERE licence_id = ?", (now, lic.licence_id))
        # What was earned up to this second is paid; the rest goes back to the advertiser.
        self._settle(c, lic.licence_id, now, close=True)
        self._log(
            c,
            transparency_pb2.LogEntry(
                revocation=transparency_pb2.LoggedRevocation(
                    licence_id=lic.licence_id,
                    revoked_at=now,
                    cause=cast(Any, int(cause)),
                    request=transparency_pb2.SignedCall.FromString(evidence),
                )
            ),
            now,
            "revocation",
            lic.licence_id,
        )
        r = c.execute(
            f"INSERT INTO revocations ({self._EV}) VALUES (?, ?, ?, ?, ?, ?) RETURNING {self._EV}",
            (
                self._next_sequence(c),
                lic.status_index,
                lic.licence_id,
                lic.licensee_key,
                now,
                int(cause),
            ),
        ).fetchone()
        event = self._event(r)
        self._announce(c, event)
        return event

    def revoke(
        self,
        licence_id: bytes,
        now: int,
        cause: Cause,
        evidence: bytes = b"",
        *,
        nonces: Sequence[SpentNonce] = (),
    ) -> tuple[LicenceRow, RevocationEvent]:
        """Revoke a licence (idempotent: a revoked licence returns its first revocation)."""

        def change(c: Conn) -> tuple[LicenceRow, RevocationEvent]:
            self._hold(c, b"licence", licence_id)
            r = c.execute(
                f"SELECT {self._LIC} FROM licences WHERE licence_id = ?", (licence_id,)
            ).fetchone()
            if r is None:
                raise LicentiaError(Reason.NOT_FOUND, "no such licence")
            lic = self._licence(r)
            if lic.revoked_at:
                ev = c.execute(
                    f"SELECT {self._EV} FROM revocations WHERE licence_id = ?", (licence_id,)
                ).fetchone()
                return lic, self._event(ev)
            event = self._revoke(c, lic, now, cause, evidence)
            return dataclasses.replace(lic, revoked_at=now), event

        return self._transact(change, nonces)

    def erase_assets(
        self,
        holder_key: bytes,
        digests: Sequence[bytes] | None,
        now: int,
        evidence: bytes = b"",
        *,
        nonces: Sequence[SpentNonce] = (),
    ) -> tuple[int, list[RevocationEvent]]:
        """Delete the holder's assets and revoke every live licence naming one of them."""

        def change(c: Conn) -> tuple[int, list[RevocationEvent]]:
            names = digests
            if names is None:
                names = [
                    r[0]
                    for r in c.execute(
                        "SELECT sha256 FROM assets WHERE holder_key = ?", (holder_key,)
                    )
                ]
            erased = 0
            events: list[RevocationEvent] = []
            for d in names:
                erased += c.execute(
                    "DELETE FROM assets WHERE holder_key = ? AND sha256 = ?", (holder_key, d)
                ).rowcount
                rows = c.execute(
                    f"SELECT {', '.join('l.' + x.strip() for x in self._LIC.split(','))}"
                    " FROM licences l JOIN licence_assets a ON a.licence_id = l.licence_id"
                    " WHERE a.holder_key = ? AND a.sha256 = ? AND l.revoked_at = 0"
                    " AND l.not_after > ?",
                    (holder_key, d, now),
                ).fetchall()
                for r in rows:
                    lic = self._licence(r)
                    if self._CONCURRENT_WRITERS:  # revoked meanwhile by another writer?
                        self._hold(c, b"licence", lic.licence_id)
                        again = c.execute(
                            "SELECT revoked_at FROM licences WHERE licence_id = ?",
                            (lic.licence_id,),
                        ).fetchone()
                        if again[0]:
                            continue
                    events.append(self._revoke(c, lic, now, Cause.ERASED, evidence))
            return erased, events

        return self._transact(change, nonces)

    def record_use(
        self,
        report_id: bytes,
        licence_id: bytes,
        platform_key: bytes,
        now: int,
        *,
        digest: bytes,
        nonces: Sequence[SpentNonce] = (),
    ) -> tuple[int, int]:
        """Count one use (idempotent by report id): ``(uses, recorded_at)``;
        IDEMPOTENCY_KEY_REUSED when the id was recorded with another digest."""
        _check_digest(digest)
        key = b"report\x00" + report_id

        def change(c: Conn) -> tuple[int, int]:
            self._hold(c, b"licence", licence_id)
            seen = c.execute(
                "SELECT licence_id, uses_after, recorded_at FROM use_reports WHERE report_id = ?",
                (report_id,),
            ).fetchone()
            if seen is not None:
                self._same_request(c, key, digest)
                if seen[0] != licence_id:
                    raise LicentiaError(
                        Reason.IDEMPOTENCY_KEY_REUSED, "report id used for another licence"
                    )
                return int(seen[1]), int(seen[2])
            r = c.execute(
                "UPDATE licences SET uses = uses + 1 WHERE licence_id = ?"
                " AND (max_uses = 0 OR uses < max_uses) RETURNING uses",
                (licence_id,),
            ).fetchone()
            if r is None:
                if self.licence_exists(c, licence_id):
                    raise LicentiaError(Reason.USES_EXHAUSTED, "every use has been counted")
                raise LicentiaError(Reason.NOT_FOUND, "no such licence")
            c.execute(
                "INSERT INTO use_reports VALUES (?, ?, ?, ?, ?)",
                (report_id, licence_id, platform_key, now, r[0]),
            )
            self._keep_digest(c, key, digest)
            found = self._money(c, licence_id)
            if found is not None:
                money, settled = found
                charged, settled = ledger.charge_use(money, settled, now)
                if charged is not None:
                    self._post(c, charged)
                self._save_settled(c, licence_id, settled)
            return int(r[0]), now

        return self._transact(change, nonces)

    def use_report(self, report_id: bytes, digest: bytes) -> tuple[bytes, int, int] | None:
        """A recorded use report: ``(licence_id, uses after it, recorded_at)``
        (IDEMPOTENCY_KEY_REUSED if it was recorded with another digest)."""
        _check_digest(digest)
        r = self._row(
            "SELECT licence_id, uses_after, recorded_at FROM use_reports WHERE report_id = ?",
            (report_id,),
        )
        if r is None:
            return None
        self._same_request(None, b"report\x00" + report_id, digest)
        return (r[0], int(r[1]), int(r[2]))

    @staticmethod
    def licence_exists(c: Conn, licence_id: bytes) -> bool:
        """True if the licence is stored (inside a transaction)."""
        return (
            c.execute("SELECT 1 FROM licences WHERE licence_id = ?", (licence_id,)).fetchone()
            is not None
        )

    def record_access(self, access: Access, *, nonces: Sequence[SpentNonce] = ()) -> None:
        """Record a licensee's fetch of an asset."""
        self._execute(
            "INSERT INTO accesses (holder_key, sha256, licence_id, licensee_key, accessed_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                access.holder_key,
                access.sha256,
                access.licence_id,
                access.licensee_key,
                access.accessed_at,
            ),
            nonces=nonces,
        )

    def accesses(self, holder_key: bytes, limit: int) -> list[Access]:
        """The holder's access log, newest first."""
        rows = self._rows(
            "SELECT holder_key, sha256, licence_id, licensee_key, accessed_at FROM accesses"
            " WHERE holder_key = ? ORDER BY id DESC LIMIT ?",
            (holder_key, limit),
        )
        return [Access(*r) for r in rows]

    # -- money ---------------------------------------------------------------------------
    @staticmethod
    def _balance(c: Conn, account: ledger.Account) -> int:
        r = c.execute(
            "SELECT balance FROM balances WHERE account_kind = ? AND account_key = ?",
            (account.kind, account.key),
        ).fetchone()
        return int(r[0]) if r else 0

    @staticmethod
    def _post(
        c: Conn,
        posting: ledger.Posting,
        idempotency: bytes | None = None,
        reference: str = "",
    ) -> int:
        """Write one posting and move the balances it names; its id. The balances table
        refuses (CHECK) any internal account going negative, so a bug cannot overdraw."""
        pid = int(
            c.execute(
                "INSERT INTO postings (kind, licence_id, at, idempotency, reference)"
                " VALUES (?, ?, ?, ?, ?) RETURNING id",
                (posting.kind.value, posting.licence_id, posting.at, idempotency, reference),
            ).fetchone()[0]
        )
        for e in posting.entries:
            c.execute(
                "INSERT INTO entries VALUES (?, ?, ?, ?)",
                (pid, e.account.kind, e.account.key, e.amount),
            )
            if e.amount > 0:  # a credit: one upsert (its proposed row passes the CHECK)
                c.execute(
                    "INSERT INTO balances VALUES (?, ?, ?) ON CONFLICT (account_kind,"
                    " account_key) DO UPDATE SET balance = balances.balance + excluded.balance",
                    (e.account.kind, e.account.key, e.amount),
                )
                continue
            # A debit: SQLite checks an upsert's proposed row before its conflict, so a
            # negative one is refused even for an account that exists; update instead.
            move = (e.amount, e.account.kind, e.account.key)
            update = (
                "UPDATE balances SET balance = balance + ?"
                " WHERE account_kind = ? AND account_key = ?"
            )
            if c.execute(update, move).rowcount:
                continue
            # An account's first entry inserts its row (a debit here fails the CHECK); when
            # another writer inserted it meanwhile, the entry moves that row instead.
            if not c.execute(
                "INSERT INTO balances VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (e.account.kind, e.account.key, e.amount),
            ).rowcount:
                c.execute(update, move)
        return pid

    _MONEY = (
        "licence_id, advertiser_key, holder_key, price, price_per_use, max_uses, fee_bps,"
        " not_before, not_after, time_earned, uses_charged, closed"
    )

    @staticmethod
    def _money_of(r: Sequence[Any]) -> tuple[ledger.LicenceMoney, ledger.Settled]:
        return (
            ledger.LicenceMoney(
                licence_id=r[0],
                advertiser_key=r[1],
                holder_key=r[2],
                price=r[3],
                price_per_use=r[4],
                max_uses=r[5],
                fee_bps=r[6],
                not_before=r[7],
                not_after=r[8],
            ),
            ledger.Settled(time_earned=r[9], uses_charged=r[10], closed=bool(r[11])),
        )

    def _money(
        self, c: Conn, licence_id: bytes
    ) -> tuple[ledger.LicenceMoney, ledger.Settled] | None:
        r = c.execute(
            f"SELECT {self._MONEY} FROM licence_money WHERE licence_id = ?", (licence_id,)
        ).fetchone()
        return self._money_of(r) if r else None

    @staticmethod
    def _save_settled(c: Conn, licence_id: bytes, s: ledger.Settled) -> None:
        c.execute(
            "UPDATE licence_money SET time_earned = ?, uses_charged = ?, closed = ?"
            " WHERE licence_id = ?",
            (s.time_earned, s.uses_charged, int(s.closed), licence_id),
        )

    def _settle(self, c: Conn, licence_id: bytes, now: int, *, close: bool) -> None:
        """Pay what the licence has earned by ``now``; with ``close`` (revocation, or the
        term is over), refund the rest of its escrow too. The same result whenever it runs."""
        found = self._money(c, licence_id)
        if found is not None:
            self._settle_money(c, *found, now, close=close)

    def _settle_money(
        self,
        c: Conn,
        money: ledger.LicenceMoney,
        settled: ledger.Settled,
        now: int,
        *,
        close: bool,
    ) -> None:
        """:meth:`_settle` for a licence's money row already read; writes only what moved."""
        if settled.closed:
            return
        if close or now >= money.not_after:
            postings, after = ledger.close(money, settled, now)
        else:
            accrued, after = ledger.accrue(money, settled, now)
            postings = [accrued] if accrued is not None else []
        for p in postings:
            self._post(c, p)
        if after != settled:
            self._save_settled(c, money.licence_id, after)

    def settle(self, party_key: bytes, now: int, *, nonces: Sequence[SpentNonce] = ()) -> None:
        """Settle every open licence of the party (as holder or advertiser) up to ``now``.

        The open licences are read in one statement, and only those whose money moves are
        written: a statement read again soon after costs one query and no writes. When
        nothing moves, no write transaction is taken at all.
        """
        query = (
            f"SELECT {self._MONEY} FROM licence_money WHERE closed = 0 AND holder_key = ?"
            f" UNION ALL SELECT {self._MONEY} FROM licence_money WHERE closed = 0"
            " AND advertiser_key = ? AND holder_key != ?"
        )
        params = (party_key, party_key, party_key)

        def moves(r: Sequence[Any]) -> bool:
            money, settled = self._money_of(r)
            if now >= money.not_after:
                return True
            return ledger.accrue(money, settled, now)[0] is not None

        if not any(moves(r) for r in self._rows(query, params)):
            return  # read on this thread's snapshot: nothing has earned a minor unit since

        def change(c: Conn) -> None:
            for r in c.execute(query, params).fetchall():
                found: tuple[ledger.LicenceMoney, ledger.Settled] | None = self._money_of(r)
                if self._CONCURRENT_WRITERS:  # read again under the licence's lock
                    self._hold(c, b"licence", r[0])
                    found = self._money(c, r[0])
                if found is not None:
                    self._settle_money(c, *found, now, close=False)

        self._transact(change, nonces)

    def _replayed(self, c: Conn, idempotency: bytes, account: ledger.Account) -> LedgerLine | None:
        r = c.execute("SELECT id FROM postings WHERE idempotency = ?", (idempotency,)).fetchone()
        return self._line(c, int(r[0]), account) if r else None

    @staticmethod
    def _line(c: Conn, posting_id: int, account: ledger.Account) -> LedgerLine:
        (line,) = SqlStore._lines(c, [posting_id], account)
        return line

    @staticmethod
    def _lines(c: Conn, posting_ids: Sequence[int], account: ledger.Account) -> list[LedgerLine]:
        """The postings as they touched ``account``, newest first, in one statement."""
        if not posting_ids:
            return []
        rows = c.execute(
            "SELECT p.id, p.kind, p.licence_id, p.at, p.reference,"
            " coalesce(sum(CASE WHEN e.account_kind = ? AND e.account_key = ?"
            "   THEN e.amount END), 0),"
            " coalesce(sum(CASE WHEN e.account_kind = 'fee' THEN e.amount END), 0)"
            " FROM postings p JOIN entries e ON e.posting_id = p.id"
            f" WHERE p.id IN ({', '.join('?' * len(posting_ids))})"
            " GROUP BY p.id ORDER BY p.id DESC",
            (account.kind, account.key, *posting_ids),
        ).fetchall()
        holder = account.kind == ledger.HOLDER
        return [
            LedgerLine(
                int(r[0]), r[1], bytes(r[2]), int(r[3]), int(r[5]), int(r[6]) if holder else 0, r[4]
            )
            for r in rows
        ]

    def deposit(
        self,
        advertiser_key: bytes,
        amount: int,
        reference: str,
        now: int,
        *,
        digest: bytes,
        nonces: Sequence[SpentNonce] = (),
    ) -> tuple[LedgerLine, int, bool]:
        """Credit an advertiser; ``(line, balance, replayed)``. The reference is the
        idempotency key: a reference credited before moves nothing and returns that line
        (IDEMPOTENCY_KEY_REUSED if it was credited for a request with another digest)."""
        _check_digest(digest)
        account = ledger.Account.advertiser(advertiser_key)
        key = b"deposit\x00" + reference.encode()

        def change(c: Conn) -> tuple[LedgerLine, int, bool]:
            self._hold(c, b"posting", key)
            seen = self._replayed(c, key, account)
            if seen is not None:
                self._same_request(c, key, digest)
                if seen.amount != amount:
                    raise LicentiaError(
                        Reason.IDEMPOTENCY_KEY_REUSED,
                        "this payment reference was credited with another amount or account",
                    )
                return seen, self._balance(c, account), True
            self._keep_digest(c, key, digest)
            pid = self._post(c, ledger.deposit(advertiser_key, amount, now), key, reference)
            return self._line(c, pid, account), self._balance(c, account), False

        return self._transact(change, nonces)

    def withdraw(
        self,
        holder_key: bytes,
        amount: int,
        payout_reference: str,
        idempotency_key: bytes,
        now: int,
        *,
        digest: bytes,
        nonces: Sequence[SpentNonce] = (),
    ) -> tuple[LedgerLine, int, bool]:
        """Pay a holder out; ``(line, balance, replayed)``; idempotent by the key
        (IDEMPOTENCY_KEY_REUSED for a request with another digest)."""
        _check_digest(digest)
        account = ledger.Account.holder(holder_key)
        key = b"withdraw\x00" + holder_key + idempotency_key

        def change(c: Conn) -> tuple[LedgerLine, int, bool]:
            # Only payouts take money out of a holder's account (and the key names the holder).
            self._hold(c, b"account", ledger.HOLDER.encode(), holder_key)
            seen = self._replayed(c, key, account)
            if seen is not None:
                self._same_request(c, key, digest)
                if seen.amount != -amount or seen.reference != payout_reference:
                    raise LicentiaError(
                        Reason.IDEMPOTENCY_KEY_REUSED,
                        "this idempotency key paid out another amount or to another reference",
                    )
                return seen, self._balance(c, account), True
            posting = ledger.withdraw(holder_key, amount, self._balance(c, account), now)
            self._keep_digest(c, key, digest)
            pid = self._post(c, posting, key, payout_reference)
            return self._line(c, pid, account), self._balance(c, account), False

        return self._transact(change, nonces)

    def statement(self, party: Party, before: int, limit: int) -> Statement:
        """The party's money now (settle first: :meth:`settle`), newest lines first."""
        account = (
            ledger.Account.holder(party.key)
            if party.role == Role.HOLDER
            else ledger.Account.advertiser(party.key)
        )
        with self._snapshot() as c:  # one read snapshot
            ids = [
                int(r[0])
                for r in c.execute(
                    "SELECT DISTINCT posting_id FROM entries WHERE account_kind = ?"
                    " AND account_key = ? AND (? = 0 OR posting_id < ?)"
                    " ORDER BY posting_id DESC LIMIT ?",
                    (account.kind, account.key, before, before, limit + 1),
                )
            ]
            more = len(ids) > limit
            lines = tuple(self._lines(c, ids[:limit], account))
            available = self._balance(c, account)
            if party.role == Role.HOLDER:
                pending = 0
                for r in c.execute(
                    f"SELECT {self._MONEY} FROM licence_money WHERE closed = 0 AND holder_key = ?",
                    (party.key,),
                ):
                    money, settled = self._money_of(r)
                    pending += ledger.holder_pending(money, settled)
                total = c.execute(
                    "SELECT coalesce(sum(e.amount), 0) FROM entries e JOIN postings p"
                    " ON p.id = e.posting_id WHERE e.account_kind = 'holder'"
                    " AND e.account_key = ? AND p.kind IN ('ACCRUAL', 'USE')",
                    (party.key,),
                ).fetchone()[0]
            else:
                pending = c.execute(
                    "SELECT coalesce(sum(b.balance), 0) FROM licence_money m JOIN balances b"
                    " ON b.account_kind = 'escrow' AND b.account_key = m.licence_id"
                    " WHERE m.closed = 0 AND m.advertiser_key = ?",
                    (party.key,),
                ).fetchone()[0]
                # Spent: what left for escrow, less what came back, less what is still held.
                total = (
                    -pending
                    - c.execute(
                        "SELECT coalesce(sum(e.amount), 0) FROM entries e JOIN postings p"
                        " ON p.id = e.posting_id WHERE e.account_kind = 'advertiser'"
                        " AND e.account_key = ? AND p.kind IN ('ESCROW', 'REFUND')",
                        (party.key,),
                    ).fetchone()[0]
                )
        return Statement(
            available=available,
            pending=int(pending),
            total=int(total),
            lines=lines,
            next_before=ids[limit - 1] if more else 0,
        )

    def ledger_check(self) -> list[str]:
        """The ledger's invariants, checked over every row: what is wrong (empty: nothing).

        Every posting sums to zero; every balance equals the sum of its entries; no internal
        account is negative; the internal accounts hold exactly deposits minus withdrawals."""
        with self._snapshot() as c:
            problems = [
                f"posting {r[0]} sums to {r[1]}"
                for r in c.execute(
                    "SELECT posting_id, sum(amount) FROM entries GROUP BY posting_id"
                    " HAVING sum(amount) != 0"
                )
            ]
            problems += [
                f"balance of {r[0]} {bytes(r[1]).hex()} is {r[2]}, its entries sum to {r[3]}"
                for r in c.execute(
                    "SELECT * FROM (SELECT b.account_kind, b.account_key, b.balance,"
                    " (SELECT coalesce(sum(amount), 0) FROM entries e"
                    "  WHERE e.account_kind = b.account_kind AND e.account_key = b.account_key)"
                    " AS s FROM balances b) x WHERE balance != s"
                )
            ]
            problems += [
                f"{r[0]} {bytes(r[1]).hex()} is negative: {r[2]}"
                for r in c.execute(
                    "SELECT account_kind, account_key, balance FROM balances"
                    " WHERE balance < 0 AND account_kind != 'external'"
                )
            ]
            internal = c.execute(
                "SELECT coalesce(sum(balance), 0) FROM balances WHERE account_kind != 'external'"
            ).fetchone()[0]
            external = c.execute(
                "SELECT coalesce(sum(balance), 0) FROM balances WHERE account_kind = 'external'"
            ).fetchone()[0]
            if internal != -external:
                problems.append(
                    f"internal accounts hold {internal}, deposits - withdrawals {-external}"
                )
        return problems

    # -- the public log --------------------------------------------------------------------
    def _log(
        self,
        c: Conn,
        entry: transparency_pb2.LogEntry,
        now: int,
        kind: str,
        licence_id: bytes,
    ) -> int:
        """Append one entry (inside the caller's transaction) and the subtree hashes it
        completes; its index."""
        data = entry.SerializeToString(deterministic=True)
        index = self._next_log_index(c)
        c.execute(
            "INSERT INTO log_entries VALUES (?, ?, ?, ?, ?)", (index, data, now, kind, licence_id)
        )
        for level, i, h in merkle.completed_nodes(index, merkle.leaf_hash(data), SqlNodes(c)):
            c.execute("INSERT INTO log_nodes VALUES (?, ?, ?)", (level, i, h))
        return index

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

    # -- the status list -----------------------------------------------------------------
    def events_after(self, sequence: int, limit: int) -> list[RevocationEvent]:
        """Revocation events with a larger sequence number, in order."""
        rows = self._rows(
            f"SELECT {self._EV} FROM revocations WHERE sequence > ? ORDER BY sequence LIMIT ?",
            (sequence, limit),
        )
        return [self._event(r) for r in rows]

    def status(self) -> tuple[list[int], int]:
        """``(revoked indexes, last sequence)`` of the status list now, one snapshot."""
        with self._snapshot() as c:  # one read snapshot for both reads
            revoked = [r[0] for r in c.execute("SELECT status_index FROM revocations")]
            seq = c.execute("SELECT coalesce(max(sequence), 0) FROM revocations").fetchone()
        return revoked, int(seq[0])

    # -- the exchange's own keys -----------------------------------------------------------
    def exchange_keys(self) -> dict[str, bytes]:
        """The exchange's public keys as recorded by its first start, by name."""
        if self.read_only and not self._has_table("exchange_keys"):
            return {}  # a follower's store that its primary has not migrated yet
        rows = self._rows("SELECT name, public_key FROM exchange_keys")
        return {str(name): bytes(key) for name, key in rows}

    def record_exchange_keys(self, keys: Mapping[str, bytes], now: int) -> dict[str, bytes]:
        """Record the keys of ``keys`` whose name has no record yet; every record after."""

        def change(c: Conn) -> dict[str, bytes]:
            self._hold(c, b"exchange_keys")
            for name, key in sorted(keys.items()):
                c.execute(
                    "INSERT INTO exchange_keys VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING",
                    (name, key, now),
                )
            rows = c.execute("SELECT name, public_key FROM exchange_keys").fetchall()
            return {str(name): bytes(key) for name, key in rows}

        return self._transact(change)

    # -- issuer keys ---------------------------------------------------------------------
    def issuer_keys(self) -> list[IssuerKeyRow]:
        """Every published issuer key, oldest first."""
        rows = self._rows(
            "SELECT key_id, public_key, not_before, not_after FROM issuer_keys"
            " ORDER BY not_before, rowid"
        )
        return [IssuerKeyRow(*r) for r in rows]

    def withdraw_issuer_key(
        self, key_id: bytes, now: int = 0, *, nonces: Sequence[SpentNonce] = ()
    ) -> bool:
        """Unpublish a key (compromise): what it signed stops verifying. False if unknown."""

        def change(c: Conn) -> bool:
            r = c.execute(
                "DELETE FROM issuer_keys WHERE key_id = ?"
                " RETURNING key_id, public_key, not_before, not_after",
                (key_id,),
            ).fetchone()
            if r is None:
                return False
            self._log_key(c, IssuerKeyRow(*r), now, withdrawn=True)
            return True

        return self._transact(change, nonces)

    def _log_key(self, c: Conn, key: IssuerKeyRow, now: int, *, withdrawn: bool = False) -> None:
        self._log(
            c,
            transparency_pb2.LogEntry(
                issuer_key=transparency_pb2.LoggedIssuerKey(
                    key_id=key.key_id,
                    public_key=key.public_key,
                    not_before=key.not_before,
                    not_after=key.not_after,
                    withdrawn=withdrawn,
                )
            ),
            now,
            "issuer_key",
            b"",
        )

    def rotate_issuer_key(self, new: IssuerKeyRow, *, nonces: Sequence[SpentNonce] = ()) -> None:
        """Publish ``new`` as the current key, ending the current one's window at its start."""

        def change(c: Conn) -> None:
            self._hold(c, b"issuer_keys")
            for r in c.execute(
                "UPDATE issuer_keys SET not_after = ? WHERE not_after = 0"
                " RETURNING key_id, public_key, not_before, not_after",
                (new.not_before,),
            ).fetchall():
                self._log_key(c, IssuerKeyRow(*r), new.not_before)
            c.execute(
                "INSERT INTO issuer_keys VALUES (?, ?, ?, ?)",
                (new.key_id, new.public_key, new.not_before, new.not_after),
            )
            self._log_key(c, new, new.not_before)

        self._transact(change, nonces)


def _check_digest(digest: bytes) -> None:
    """A request digest is a SHA-256 (32 bytes): refuse anything else, so that no caller
    stores an idempotency key without the request it belongs to."""
    if len(digest) != 32:
        raise ValueError("a request digest is 32 bytes")


def only_nonces(c: Conn) -> None:
    """The change of :meth:`SqlStore.spend_nonces`: nothing but the call's nonces, which
    every transaction records (a named function, so that tests can tell it apart)."""
