"""The wallet's payout destinations: ``payouts add``, ``payouts list``, ``payouts cancel``,
what ``earnings`` shows of them, and what ``withdraw`` says when the exchange refuses one.

A destination (an IBAN, say) is usable only the exchange's payout delay (72 hours by
default) after it was added; until then it is pending, the holder is told of it in her
inbox, and she can cancel it. So a thief with her laptop cannot send her earnings to his
own account at once: she has the delay to notice and cancel.
"""

from __future__ import annotations

from typing import Any

from licentia.v1 import ledger_pb2

from ..channel import ExchangeError
from .render import _dict, _out, _when
from .session import OperationFailedError, Session

_STATE = {
    v: k.removeprefix("PAYOUT_DESTINATION_STATE_").lower()
    for k, v in ledger_pb2.PayoutDestinationState.items()
}


def describe(d: ledger_pb2.PayoutDestination) -> str:
    """One destination in plain words: its reference and where it stands."""
    state = _STATE.get(d.state, f"state {d.state}")
    if state == "pending":
        return (
            f"{d.reference}  pending: usable from {_when(d.usable_at)} (added {_when(d.added_at)})"
        )
    if state == "confirmed":
        return f"{d.reference}  confirmed: usable since {_when(d.usable_at)}"
    if state == "cancelled":
        return f"{d.reference}  cancelled {_when(d.cancelled_at)}: never usable"
    return f"{d.reference}  {state}"


def cmd_payouts_add(s: Session) -> None:
    """Add a payout destination: usable once the exchange's delay has passed."""
    d = s.holder.add_payout_destination(s.args.reference)
    if _STATE.get(d.state) == "confirmed":
        text = f"{d.reference} is a payout destination, usable since {_when(d.usable_at)}."
    else:
        text = (
            f"Added payout destination {d.reference}: pending, usable from"
            f" {_when(d.usable_at)}.\nUntil then nothing can be withdrawn to it, and you can"
            f" cancel it: 'licentia-wallet payouts cancel {d.reference}'."
        )
    _out(s.args, _dict(d), text)


def cmd_payouts_list(s: Session) -> None:
    """Your payout destinations: pending, confirmed and cancelled."""
    rows = s.holder.list_payout_destinations()
    _out(
        s.args,
        [_dict(d) for d in rows],
        "\n".join(describe(d) for d in rows)
        or "No payout destination: add one with 'licentia-wallet payouts add REF'.",
    )


def cmd_payouts_cancel(s: Session) -> None:
    """Cancel a payout destination (pending or confirmed): nothing is paid to it any more."""
    try:
        d = s.holder.cancel_payout_destination(s.args.reference)
    except ExchangeError as e:
        if e.reason.name != "NOT_FOUND":
            raise
        raise OperationFailedError(
            f"{s.args.reference} is not one of your payout destinations"
            " (see 'licentia-wallet payouts list')"
        ) from None
    _out(
        s.args,
        _dict(d),
        f"Cancelled payout destination {d.reference}: nothing will be paid to it."
        " Adding it again starts a new delay.",
    )


def destinations_for_earnings(s: Session, doc: dict[str, Any], lines: list[str]) -> None:
    """Add the holder's destinations not cancelled to what ``earnings`` shows (its JSON
    document and its lines), pending ones with the time they become usable."""
    rows = [d for d in s.holder.list_payout_destinations() if _STATE.get(d.state) != "cancelled"]
    doc["payout_destinations"] = [_dict(d) for d in rows]
    if not rows:
        lines.append("Payout destinations:   none (add one: 'licentia-wallet payouts add REF')")
        return
    lines.append("Payout destinations:")
    lines.extend("  " + describe(d) for d in rows)


def explain_refusal(s: Session, e: ExchangeError, reference: str) -> None:
    """Raise what the holder should know when a withdrawal to ``reference`` was refused
    for its destination (pending or unknown); return for any other refusal."""
    reason = e.reason.name
    if reason == "PAYOUT_DESTINATION_PENDING":
        pending = [
            d
            for d in s.holder.list_payout_destinations()
            if d.reference == reference and _STATE.get(d.state) == "pending"
        ]
        when = f"at {_when(pending[0].usable_at)}" if pending else "once its delay has passed"
        raise OperationFailedError(
            f"the exchange refused: {reason}: {reference} is a new payout destination; it"
            f" becomes usable {when}, and nothing was paid. If you did not add it, cancel it"
            f" now: 'licentia-wallet payouts cancel {reference}'."
        ) from None
    if reason == "PAYOUT_DESTINATION_UNKNOWN":
        raise OperationFailedError(
            f"the exchange refused: {reason}: {reference} is not one of your payout"
            " destinations, and nothing was paid. Add it with 'licentia-wallet payouts add"
            f" {reference}'; it becomes usable after the exchange's delay (72 hours unless"
            " the exchange says otherwise), then withdraw again."
        ) from None
