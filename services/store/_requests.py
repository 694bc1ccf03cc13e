"""Licence requests and their issuance (part of :class:`.common.SqlStore`): a decided
:class:`~..issuance.Issuance` applied in one transaction with its checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from licentia.errors import LicentiaError, Reason
from licentia.v1 import transparency_pb2

from .. import ledger
from ..issuance import Issuance, Verdict
from ..model import (
    LicenceRow,
    RequestRow,
    RequestState,
)
from ._licences import LicencesPart
from ._pseudonyms import record_pseudonym
from ._sql import Conn, _check_digest
from .base import SpentNonce, StaleVerdict


class RequestsPart(LicencesPart):
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
            # Nothing is asked of an erased account, whatever the servicer read before.
            self._alive(c, row.holder_key, Reason.NOT_FOUND)
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
        self._alive(c, licence.holder_key, Reason.NOT_FOUND)
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
        # The log's place for the licence's entry, then the licence signed with that
        # promise, then the entry itself: the index is held until this change commits.
        # What the licence will pay its holder, before the log's lock: every writer takes
        # a holder's total before the log (a revocation settles, then logs).
        self._add_pending(c, money.holder_key, ledger.holder_pending(money, ledger.Settled()))
        index = self._next_log_index(c)
        # Never before the claims' issue time (another replica's clock may have set it a
        # little ahead): a promise dated before its licence would be NOT_LOGGED everywhere.
        licence = issuance.sign(index, max(now, issuance.claims.issued_at))
        if licence.consent_device:
            record_pseudonym(c, licence.consent_key, licence.holder_key, licence.licensee_key, now)
        c.execute(
            f"INSERT INTO licences ({self._LIC}) VALUES ({self._LIC_SLOTS})",
            self._licence_values(licence),
        )
        if issuance.escrow is not None:
            self._post(c, issuance.escrow)
        c.execute(self._MONEY_INSERT, self._money_values(money, ledger.Settled()))
        self._log_sealed(
            c,
            licence.holder_key,
            transparency_pb2.LogEntry(licence=licence.token),
            now,
            "licence",
            licence.licence_id,
            index,
        )
        for digest in issuance.asset_digests:
            c.execute(
                "INSERT INTO licence_assets VALUES (?, ?, ?)",
                (licence.licence_id, licence.holder_key, digest),
            )
        return self._finish(
            c, licence.request_id, RequestState.ISSUED, now, "", "", licence.licence_id
        )
