"""LedgerService: deposits (operator), withdrawals (holders), statements (every party).

The money rules are pure (:mod:`.ledger`); the store applies them inside its transactions
(escrow with issuance, settlement and refund with revocation, a charge with each use report).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any, cast

from licentia.errors import LicentiaError, Reason
from licentia.v1 import ledger_pb2, records_pb2

from . import ledger
from .deps import Deps
from .idempotency import request_digest
from .model import LedgerLine, PayoutDestination, Role
from .rpc import Call, Method
from .store import Store

#: The longest payment or payout reference.
MAX_REFERENCE_CHARS = 128
#: The most payout destinations not cancelled that one holder keeps.
MAX_PAYOUT_DESTINATIONS = 16
#: The most cancelled payout destinations a list shows (the newest).
LISTED_CANCELLED = 48
#: The most lines one statement page carries.
MAX_PAGE = 500
DEFAULT_PAGE = 100
#: The largest posting id there can be (the store's ids are signed 64-bit integers).
MAX_POSTING_ID = (1 << 63) - 1
#: The largest single deposit or withdrawal, in minor units (far above any real payment,
#: far below what an int64 balance can hold).
MAX_AMOUNT = 10**12


def _reference(text: str, what: str) -> str:
    if not 1 <= len(text) <= MAX_REFERENCE_CHARS or not text.isprintable():
        raise LicentiaError(
            Reason.INVALID_REQUEST, f"the {what} is 1 to {MAX_REFERENCE_CHARS} printable characters"
        )
    return text


def _amount(value: int) -> int:
    if not 0 < value <= MAX_AMOUNT:
        raise LicentiaError(Reason.INVALID_REQUEST, f"an amount is 1 to {MAX_AMOUNT} minor units")
    return value


def line_to(line: LedgerLine) -> ledger_pb2.StatementLine:
    """The wire form of a statement line."""
    return ledger_pb2.StatementLine(
        posting_id=line.posting_id,
        kind=cast("Any", ledger_pb2.PostingKind.Value(f"POSTING_KIND_{line.kind}")),
        licence_id=line.licence_id,
        at=line.at,
        amount_minor=line.amount,
        fee_minor=line.fee,
        reference=line.reference,
    )


#: The prefix of ``licentia.v1.PayoutDestinationState``'s names.
_STATE = "PAYOUT_DESTINATION_STATE_"


def destination_to(d: PayoutDestination, now: int) -> ledger_pb2.PayoutDestination:
    """The wire form of a payout destination, in its state at ``now``."""
    return ledger_pb2.PayoutDestination(
        reference=d.reference,
        added_at=d.added_at,
        usable_at=d.usable_at,
        state=cast("Any", ledger_pb2.PayoutDestinationState.Value(_STATE + d.state_at(now))),
        cancelled_at=d.cancelled_at,
    )


def payout_notices(store: Store, holder_key: bytes, now: int) -> list[records_pb2.Notice]:
    """What ListInbox tells the holder of her payout destinations: each one still in its
    delay, so that she can cancel one she did not add before it becomes usable."""
    return [
        records_pb2.Notice(
            kind=records_pb2.NOTICE_KIND_PAYOUT_DESTINATION_ADDED,
            at=d.added_at,
            text=(
                f"a payout destination {d.reference} was added at {ledger.utc_text(d.added_at)};"
                f" it becomes usable at {ledger.utc_text(d.usable_at)}; cancel it with"
                f" `licentia-wallet payouts cancel {d.reference}` if you did not add it"
            ),
            subject=d.reference,
        )
        for d in store.payout_destinations(holder_key, cancelled=0)
        if d.state_at(now) == "PENDING"
    ]


class LedgerService:
    """The servicer of balances and statements."""

    def __init__(self, deps: Deps) -> None:
        self.d = deps

    def methods(self) -> Mapping[str, Method]:
        """The handlers, by method name."""
        return {
            "Deposit": Method(self.deposit),
            "Withdraw": Method(self.withdraw),
            "GetStatement": Method(self.get_statement),
            "AddPayoutDestination": Method(self.add_payout_destination),
            "CancelPayoutDestination": Method(self.cancel_payout_destination),
            "ListPayoutDestinations": Method(self.list_payout_destinations),
        }

    def deposit(self, req: ledger_pb2.DepositRequest, call: Call) -> ledger_pb2.DepositResponse:
        """Credit an advertiser's balance; only the exchange operator's key may."""
        operator = self.d.operator_key
        if call.caller is None:
            raise LicentiaError(Reason.BAD_REQUEST_SIGNATURE, "the call is not signed")
        if operator is None or not hmac.compare_digest(call.caller.raw, operator):
            raise LicentiaError(Reason.NOT_OWNER, "only the exchange operator credits balances")
        amount = _amount(req.amount_minor)
        reference = _reference(req.reference, "payment reference")
        advertiser = (
            self.d.store.party(req.advertiser_key) if len(req.advertiser_key) == 32 else None
        )
        if advertiser is None or advertiser.role != Role.ADVERTISER:
            raise LicentiaError(Reason.NOT_FOUND, "no such advertiser")
        line, balance, replayed = self.d.store.deposit(
            advertiser.key,
            amount,
            reference,
            call.now,
            digest=request_digest(call.method, req),
            nonces=call.spends,
        )
        return ledger_pb2.DepositResponse(
            line=line_to(line), balance_minor=balance, replayed=replayed
        )

    def withdraw(self, req: ledger_pb2.WithdrawRequest, call: Call) -> ledger_pb2.WithdrawResponse:
        """Pay part of a holder's available balance out to an external reference."""
        holder = self.d.party(call, Role.HOLDER)
        if len(req.idempotency_key) != 16:
            raise LicentiaError(Reason.INVALID_REQUEST, "the idempotency key is 16 bytes")
        amount = _amount(req.amount_minor)
        reference = _reference(req.payout_reference, "payout reference")
        self.d.store.settle(
            holder.key, call.now, nonces=call.spends
        )  # what has been earned is available
        line, balance, replayed = self.d.store.withdraw(
            holder.key,
            amount,
            reference,
            req.idempotency_key,
            call.now,
            digest=request_digest(call.method, req),
            nonces=call.spends,
        )
        return ledger_pb2.WithdrawResponse(
            line=line_to(line), balance_minor=balance, replayed=replayed
        )

    def add_payout_destination(
        self, req: ledger_pb2.AddPayoutDestinationRequest, call: Call
    ) -> ledger_pb2.AddPayoutDestinationResponse:
        """Add a payout destination of the holder, usable after the exchange's payout delay."""
        holder = self.d.party(call, Role.HOLDER)
        reference = _reference(req.reference, "payout reference")
        dest, _ = self.d.store.add_payout_destination(
            holder.key,
            reference,
            call.now,
            call.now + self.d.settings.payout_delay_seconds,
            limit=MAX_PAYOUT_DESTINATIONS,
            nonces=call.spends,
        )
        return ledger_pb2.AddPayoutDestinationResponse(destination=destination_to(dest, call.now))

    def cancel_payout_destination(
        self, req: ledger_pb2.CancelPayoutDestinationRequest, call: Call
    ) -> ledger_pb2.CancelPayoutDestinationResponse:
        """Cancel one of the holder's payout destinations (pending or confirmed), at once.
        Her recovery key may cancel too: a thief's destination is stopped from paper."""
        holder = self.d.party(call, Role.HOLDER, recovery=True)
        reference = _reference(req.reference, "payout reference")
        dest = self.d.store.cancel_payout_destination(
            holder.key, reference, call.now, nonces=call.spends
        )
        return ledger_pb2.CancelPayoutDestinationResponse(
            destination=destination_to(dest, call.now)
        )

    def list_payout_destinations(
        self, req: ledger_pb2.ListPayoutDestinationsRequest, call: Call
    ) -> ledger_pb2.ListPayoutDestinationsResponse:
        """The holder's payout destinations, oldest first (her recovery key may read them)."""
        holder = self.d.party(call, Role.HOLDER, recovery=True)
        rows = self.d.store.payout_destinations(holder.key, cancelled=LISTED_CANCELLED)
        return ledger_pb2.ListPayoutDestinationsResponse(
            destinations=[destination_to(d, call.now) for d in rows],
            delay_seconds=self.d.settings.payout_delay_seconds,
        )

    def get_statement(
        self, req: ledger_pb2.GetStatementRequest, call: Call
    ) -> ledger_pb2.GetStatementResponse:
        """The caller's balance and lines, newest first, settled up to now."""
        party = self.d.party(call, Role.HOLDER, Role.ADVERTISER)
        size = req.page_size or DEFAULT_PAGE
        if not 1 <= size <= MAX_PAGE:
            raise LicentiaError(Reason.INVALID_REQUEST, f"page_size is 1 to {MAX_PAGE}")
        if req.before_posting > MAX_POSTING_ID:
            raise LicentiaError(Reason.INVALID_REQUEST, "before_posting is not a posting id")
        self.d.store.settle(party.key, call.now, nonces=call.spends)
        if party.role == Role.ADVERTISER:  # what its expired requests reserved is free
            self.d.store.expire_requests(party.key, call.now)
        st = self.d.store.statement(party, req.before_posting, size)
        return ledger_pb2.GetStatementResponse(
            currency=self.d.settings.currency,
            available_minor=st.available,
            pending_minor=st.pending,
            total_minor=st.total,
            lines=[line_to(x) for x in st.lines],
            next_before_posting=st.next_before,
            reserved_minor=st.reserved,
            reserved_requests=st.reserved_requests,
        )
