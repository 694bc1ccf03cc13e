"""Licence requests and their issuance (part of :class:`.common.SqlStore`): a decided
:class:`~..issuance.Issuance` applied in one transaction with its checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, NamedTuple

from licentia import sealed
from licentia.errors import LicentiaError, Reason
from licentia.v1 import transparency_pb2

from .. import ledger
from ..issuance import Issuance, Verdict
from ..model import (
    LicenceRow,
    LiveLicence,
    RequestRow,
    RequestState,
)
from ._licences import LicencesPart
from ._pseudonyms import record_pseudonym
from ._reserves import ReservesPart
from ._sql import Conn, Cursor, _check_digest
from .base import SpentNonce, StaleVerdict


class RequestsPart(LicencesPart, ReservesPart):
    """Requests, their answers and the issuance of their licences."""

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

    def issued_licence(self, row: RequestRow) -> LicenceRow | None:
        """:meth:`.base.RequestsStore.issued_licence`: read (a backend may keep it)."""
        return self.licence(row.licence_id) if row.licence_id else None

    def add_request(
        self,
        row: RequestRow,
        *,
        auto: tuple[Issuance, Verdict] | None = None,
        now: int = 0,
        idempotency_key: bytes = b"",
        digest: bytes = b"",
        nonces: Sequence[SpentNonce] = (),
        cost: int = 0,
    ) -> RequestRow:
        """Store a new request — and, with ``auto``, issue its licence too, in the same
        transaction.

        ``cost``: what its approval will escrow, reserved of the advertiser's available
        funds (balance less what its pending requests reserve) until the request ends; when
        they do not cover it the request is refused INSUFFICIENT_FUNDS and nothing is stored.

        When the automatic issuance is refused (its verdict; funds that fall short were
        refused above, with nothing stored), the request is stored FAILED with the reason,
        and the refusal is raised after the commit; a stale verdict
        (:class:`.base.StaleVerdict`) stores nothing. With an ``idempotency_key``, a request
        the same advertiser made with that key before is returned instead, and nothing is
        stored (IDEMPOTENCY_KEY_REUSED if it had another ``digest``; the digest is stored
        with the key).
        """
        if idempotency_key:
            _check_digest(digest)

        def change(c: Conn) -> tuple[RequestRow, LicentiaError | None]:
            # Nothing is asked of an erased account, whatever the servicer read before
            # (checked once what follows is sent too: one wait on a pipelined connection).
            erased = self._alive_sent(c, row.holder_key)
            if idempotency_key:
                self._still_alive(erased, Reason.NOT_FOUND)
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
            self._reserve(c, row.advertiser_key, row.request_id, cost, now, keep=auto is None)
            if auto is None:
                self._still_alive(erased, Reason.NOT_FOUND)
                return row, None
            issuance, verdict = auto
            c.execute("SAVEPOINT issue")
            sent = self._issue_sent(c, issuance, just_stored=True)
            self._still_alive(erased, Reason.NOT_FOUND)
            try:
                issued = self._issue_in(c, issuance, verdict, now, sent, row)
            except LicentiaError as e:
                c.execute("ROLLBACK TO issue")
                self._forget_log_tail()
                c.execute("RELEASE issue")
                failed = self._finish(
                    c, row.request_id, RequestState.FAILED, now, str(e), e.reason.name
                )
                return failed, e
            c.execute("RELEASE issue")
            return issued, None

        stored, refused = self._transact(change, nonces, pipelined=True)
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
        """Inside a change: end the pending request (declined, withdrawn, expired, failed)
        and release its reservation. Takes the request's lock first, as an issuance does:
        an issuance releases the reservation (the advertiser's ``reserves`` row) before it
        updates the request's row, so an end that updated the row first and then waited on
        ``reserves`` would deadlock with it."""
        self._hold(c, b"request", request_id)
        return self._finished(
            c,
            request_id,
            self._finish_sent(c, request_id, state, now, reason, failure, licence_id, auto),
        )

    def _finish_sent(
        self,
        c: Conn,
        request_id: bytes,
        state: RequestState,
        now: int,
        reason: str,
        failure: str,
        licence_id: bytes = b"",
        auto: bool | None = None,
    ) -> Cursor:
        """:meth:`_finish`'s update, sent, then the release of the request's reservation;
        :meth:`_finished` reads the update's answer."""
        sent = c.execute(
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
        )
        self._release_sent(c, request_id)
        return sent

    def _finished(self, c: Conn, request_id: bytes, sent: Cursor) -> RequestRow:
        """The request as :meth:`_finish_sent` left it; NOT_FOUND or REQUEST_NOT_PENDING
        if it changed nothing."""
        r = sent.fetchone()
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
        return self._transact(
            lambda c: self._issue_in(c, issuance, verdict, now), nonces, pipelined=True
        )

    def _live_sql(self, exclusive: bool, columns: str = "") -> str:
        # Only licences that overlap in time can conflict, and a licence that is not
        # exclusive conflicts only with exclusive ones.
        only_exclusive = "" if exclusive else " AND exclusive = 1"
        return (
            f"SELECT {columns or self._LIC} FROM licences WHERE holder_key = ?"
            f" AND revoked_at = 0 AND not_after > ? AND not_before < ?{only_exclusive}"
        )

    def _live_sent(
        self, c: Conn, holder_key: bytes, not_before: int, not_after: int, exclusive: bool
    ) -> Cursor:
        """The ids alone of the live licences :meth:`live_licences` reads: inside the
        transaction they are compared with those the verdict saw, nothing else (a holder's
        thousand live licences are a thousand ids in the writer, not a thousand rows)."""
        return c.execute(
            self._live_sql(exclusive, "licence_id"), (holder_key, not_before, not_after)
        )

    def live_licences(
        self, holder_key: bytes, not_before: int, not_after: int, *, exclusive: bool
    ) -> list[LiveLicence]:
        """The holder's unrevoked licences a new one over the window could conflict with
        (one statement: one round trip to a database server), each its id, exclusivity and
        token."""
        rows = self._rows(
            self._live_sql(exclusive, "licence_id, exclusive, token"),
            (holder_key, not_before, not_after),
        )
        return [LiveLicence(bytes(r[0]), bool(r[1]), r[2]) for r in rows]

    class _Sent(NamedTuple):
        """What :meth:`RequestsPart._issue_sent` sent, to be read by ``_issue_in``."""

        erased: Cursor | None
        state: Cursor | None
        live: Cursor
        debit: Cursor | None
        posting: Cursor | None
        log_index: Cursor | None  # None: the writer knows it (``_known_log_tail``)
        entry: Cursor

    def _issue_sent(self, c: Conn, issuance: Issuance, *, just_stored: bool) -> _Sent:
        """Send the statements of :meth:`_issue_in` that need nothing it reads: its locks and
        checks, then — on the chance that the checks pass — its posting's row and its log
        index and entry number (a refusal's rollback gives them back). On a pipelined
        connection they all travel, with what the change sent before, in one round trip.
        ``just_stored``: its request was stored PENDING earlier in this same change (its
        holder's lock held and checked, and no other writer can see the request before this
        change commits), so neither lock is taken again nor the state read."""
        licence, money = issuance.licence, issuance.money
        # Concurrent writers wait here: one issuance (or answer) per request, and one
        # exclusivity check per holder at a time, each seeing what the one before committed.
        erased = state = None
        if not just_stored:  # (a request stored in this change is seen by no other yet)
            self._hold(c, b"request", licence.request_id)
            erased = self._alive_sent(c, licence.holder_key)
            state = c.execute(
                "SELECT state FROM requests WHERE request_id = ?", (licence.request_id,)
            )
        live = self._live_sent(
            c, licence.holder_key, licence.not_before, licence.not_after, licence.exclusive
        )
        # Only issuances take money out of an advertiser's account (this lock: one at a
        # time). The escrow's debit is made here, only if the balance covers it: its answer
        # decides INSUFFICIENT_FUNDS (a refusal's rollback gives it back, with the rest).
        self._hold(c, b"account", ledger.ADVERTISER.encode(), money.advertiser_key)
        debit = posting = None
        if issuance.escrow is not None:
            account = ledger.Account.advertiser(money.advertiser_key)
            amount = -sum(e.amount for e in issuance.escrow.entries if e.account == account)
            # Its own reservation becomes the escrow: released first (one issued as it is
            # stored reserved nothing), and the debit must leave what the advertiser's other
            # pending requests reserve.
            if not just_stored:
                self._release_sent(c, licence.request_id)
            debit = c.execute(
                self._DEBIT_COVERED, (amount, account.kind, account.key, account.key, amount)
            )
            posting = self._send_posting(c, issuance.escrow)
        # What the licence will pay its holder, before the log's lock: every writer takes
        # a holder's total before the log (a revocation settles, then logs). A refusal's
        # rollback gives it back with the rest.
        self._add_pending(c, money.holder_key, ledger.holder_pending(money, ledger.Settled()))
        # The log's place for the licence's entry (held until this change commits), then
        # the holder's entry number, in that order (see LogPart._log_sealed).
        index = None
        if self._known_log_tail() is None:
            index = c.execute(self._NEXT_LOG_INDEX_AND_SIBLINGS or self._NEXT_LOG_INDEX)
        entry = c.execute(self._NEXT_ENTRY, (licence.holder_key,))
        return self._Sent(erased, state, live, debit, posting, index, entry)

    def _issue_in(
        self,
        c: Conn,
        issuance: Issuance,
        verdict: Verdict,
        now: int,
        sent: _Sent | None = None,
        stored: RequestRow | None = None,
    ) -> RequestRow:
        """Apply ``issuance`` inside the caller's change; ``sent``: what
        :meth:`_issue_sent` sent for it already (else it is sent here); ``stored``: its
        request, stored PENDING earlier in this same change (its answer is then not read
        back: one wait less for a pipelined change)."""
        licence, money = issuance.licence, issuance.money
        if sent is None:
            sent = self._issue_sent(c, issuance, just_stored=False)
        if sent.erased is not None:
            self._still_alive(sent.erased, Reason.NOT_FOUND)
        if sent.state is not None:
            state = sent.state.fetchone()
            if state is None:
                raise LicentiaError(Reason.NOT_FOUND, "no such request")
            if state[0] != RequestState.PENDING:
                raise LicentiaError(Reason.REQUEST_NOT_PENDING, "the request is no longer pending")
        if frozenset(bytes(r[0]) for r in sent.live) != verdict.seen:
            raise StaleVerdict
        if verdict.refusal is not None:
            raise LicentiaError(verdict.refusal, "the licence conflicts with a live licence")
        account = ledger.Account.advertiser(money.advertiser_key)
        if sent.debit is not None and sent.debit.fetchone() is None:
            held = self._balance(c, account)  # read for the message alone
            raise LicentiaError(
                Reason.INSUFFICIENT_FUNDS,
                f"the licence costs {money.escrow_total}, the balance is {held}:"
                f" deposit {max(ledger.shortfall(held, money), 1)} more",
            )
        # The log's place for the licence's entry, then the licence signed with that
        # promise, then the entry itself: the index is held until this change commits.
        known: dict[tuple[int, int], bytes] | None = None
        tail = self._known_log_tail()
        if sent.log_index is None and tail is not None:
            index, known = tail[0], dict(tail[1])
        else:
            indexed = (sent.log_index or c.execute(self._NEXT_LOG_INDEX)).fetchall()
            index = int(indexed[0][0])  # rows (index,) or (index, level, hash)
            if self._NEXT_LOG_INDEX_AND_SIBLINGS:
                known = {
                    (r[1], (index >> r[1]) - 1): bytes(r[2]) for r in indexed if r[1] is not None
                }
        log_key, number = self._next_entry_number(c, licence.holder_key, sent.entry)
        # Never before the claims' issue time (another replica's clock may have set it a
        # little ahead): a promise dated before its licence would be NOT_LOGGED everywhere.
        licence = issuance.sign(index, max(now, issuance.claims.issued_at))
        if licence.consent_device:
            record_pseudonym(c, licence.consent_key, licence.holder_key, licence.licensee_key, now)
        # Every write is sent before any answer is read (a pipelined connection waits once
        # for them all, and once more for the log's nodes and the commit).
        c.execute(
            f"INSERT INTO licences ({self._LIC}) VALUES ({self._LIC_SLOTS})",
            self._licence_values(licence),
        )
        c.execute(self._MONEY_INSERT, self._money_values(money, ledger.Settled()))
        if issuance.asset_digests:  # one statement for them all
            c.execute(
                "INSERT INTO licence_assets VALUES"
                f" {', '.join(['(?, ?, ?)'] * len(issuance.asset_digests))}",
                [
                    v
                    for digest in issuance.asset_digests
                    for v in (licence.licence_id, licence.holder_key, digest)
                ],
            )
        finished = self._finish_sent(
            c, licence.request_id, RequestState.ISSUED, now, "", "", licence.licence_id
        )
        if issuance.escrow is not None:
            self._post(c, issuance.escrow, sent=sent.posting, debited=account)
        entry = sealed.seal(log_key, number, transparency_pb2.LogEntry(licence=licence.token))
        self._log(c, entry, now, "licence", licence.licence_id, index, known)
        if stored is not None:  # stored PENDING in this change, under its lock: it was pending
            return replace(
                stored,
                state=RequestState.ISSUED,
                updated_at=now,
                reason="",
                failure="",
                licence_id=licence.licence_id,
            )
        return self._finished(c, licence.request_id, finished)
