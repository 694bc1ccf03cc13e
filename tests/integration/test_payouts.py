"""Payout destinations over real gRPC: a withdrawal pays only to a destination the holder
added at least the exchange's payout delay ago and has not cancelled, so a thief with her
laptop cannot send her earnings to himself at once. A real exchange whose clock the test
holds still and moves (the world of ``test_ledger_rpc``), with the default delay of 72 hours;
each refusal moves nothing (her statement, re-read through the API, is unchanged)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from licentia.errors import Reason
from licentia.services import server
from licentia.services.deps import DEFAULT_PAYOUT_DELAY_SECONDS, Settings
from licentia.v1 import exchange_pb2, ledger_pb2, records_pb2

from .exchange_harness import Party
from .test_ledger_rpc import (
    World,
    add_destination,
    earn_900,
    make_world,
    refused,
    statement,
    withdraw,
)

DELAY = 72 * 3600
S = ledger_pb2.PayoutDestinationState
IBAN = "IBAN DE44 5001 0517 5407 3249 31"


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    world = make_world(tmp_path / "data", Settings(heartbeat_seconds=0.5))
    try:
        assert world.ex.app.deps.settings.payout_delay_seconds == DELAY
        yield world
    finally:
        world.ex.stop()


def cancel(p: Party, reference: str) -> ledger_pb2.PayoutDestination:
    return p.call(
        ledger_pb2,
        "CancelPayoutDestination",
        ledger_pb2.CancelPayoutDestinationRequest(reference=reference),
        ledger_pb2.CancelPayoutDestinationResponse,
    ).destination


def destinations(p: Party) -> list[ledger_pb2.PayoutDestination]:
    return list(
        p.call(
            ledger_pb2,
            "ListPayoutDestinations",
            ledger_pb2.ListPayoutDestinationsRequest(),
            ledger_pb2.ListPayoutDestinationsResponse,
        ).destinations
    )


def notices(p: Party) -> list[records_pb2.Notice]:
    return list(
        p.call(
            exchange_pb2,
            "ListInbox",
            exchange_pb2.ListInboxRequest(),
            exchange_pb2.ListInboxResponse,
        ).notices
    )


def test_the_default_delay_is_72_hours() -> None:
    assert DEFAULT_PAYOUT_DELAY_SECONDS == DELAY
    assert Settings().payout_delay_seconds == DELAY


def test_a_withdrawal_to_a_reference_never_added_is_unknown_and_moves_nothing(w: World) -> None:
    earn_900(w)
    before = statement(w.holder)
    e = refused(Reason.PAYOUT_DESTINATION_UNKNOWN, lambda: withdraw(w.holder, 100, reference=IBAN))
    assert "add it first" in str(e)
    assert "licentia-wallet payouts add" in str(e)
    assert statement(w.holder) == before
    w.check()


def test_a_new_destination_is_pending_until_the_delay_has_passed(w: World) -> None:
    earn_900(w)
    now = w.clock.now()
    added = add_destination(w.holder, IBAN)
    assert (added.reference, added.added_at, added.usable_at) == (IBAN, now, now + DELAY)
    assert (added.state, added.cancelled_at) == (S.PAYOUT_DESTINATION_STATE_PENDING, 0)
    assert add_destination(w.holder, IBAN) == added  # again: unchanged, no new delay
    w.clock.advance(DELAY - 1)
    before = statement(w.holder)
    e = refused(Reason.PAYOUT_DESTINATION_PENDING, lambda: withdraw(w.holder, 100, reference=IBAN))
    assert "becomes usable at" in str(e)
    assert "(in 0 h 00 min)" not in str(e)
    assert "cancel it now" in str(e)
    assert "licentia-wallet payouts cancel" in str(e)
    assert statement(w.holder) == before
    # Once usable_at is reached, it is confirmed, and payouts to it are paid at once.
    w.clock.advance(1)
    (confirmed,) = [d for d in destinations(w.holder) if d.reference == IBAN]
    assert confirmed.state == S.PAYOUT_DESTINATION_STATE_CONFIRMED
    paid = withdraw(w.holder, 300, reference=IBAN)
    assert (paid.line.amount_minor, paid.line.reference) == (-300, IBAN)
    assert withdraw(w.holder, 100, reference=IBAN).balance_minor == paid.balance_minor - 100
    assert add_destination(w.holder, IBAN) == confirmed  # adding it again changes nothing
    w.check()


def test_a_destination_cancelled_during_its_delay_is_never_usable(w: World) -> None:
    earn_900(w)
    add_destination(w.holder, IBAN)
    w.clock.advance(3600)
    gone = cancel(w.holder, IBAN)
    assert (gone.state, gone.cancelled_at) == (S.PAYOUT_DESTINATION_STATE_CANCELLED, w.clock.now())
    w.clock.advance(2 * DELAY)  # long past its usable_at
    before = statement(w.holder)
    refused(Reason.PAYOUT_DESTINATION_UNKNOWN, lambda: withdraw(w.holder, 100, reference=IBAN))
    assert statement(w.holder) == before
    refused(Reason.NOT_FOUND, lambda: cancel(w.holder, IBAN))  # cancelled once is enough
    # Adding it again starts a new delay, from now.
    again = add_destination(w.holder, IBAN)
    assert again.usable_at == w.clock.now() + DELAY
    assert again.state == S.PAYOUT_DESTINATION_STATE_PENDING
    refused(Reason.PAYOUT_DESTINATION_PENDING, lambda: withdraw(w.holder, 100, reference=IBAN))
    listed = [d for d in destinations(w.holder) if d.reference == IBAN]
    assert [d.state for d in listed] == [
        S.PAYOUT_DESTINATION_STATE_CANCELLED,
        S.PAYOUT_DESTINATION_STATE_PENDING,
    ]
    w.clock.advance(DELAY)
    available = statement(w.holder).available_minor
    assert withdraw(w.holder, 100, reference=IBAN).balance_minor == available - 100
    w.check()


def test_cancelling_a_confirmed_destination_takes_effect_at_once(w: World) -> None:
    earn_900(w)
    add_destination(w.holder, IBAN)
    w.clock.advance(DELAY)
    key = secrets.token_bytes(16)
    first = withdraw(w.holder, 100, key, IBAN)
    cancel(w.holder, IBAN)
    before = statement(w.holder)
    refused(Reason.PAYOUT_DESTINATION_UNKNOWN, lambda: withdraw(w.holder, 100, reference=IBAN))
    # A retry of the payout made before is answered as it was, and pays nothing more.
    again = withdraw(w.holder, 100, key, IBAN)
    assert again.replayed
    assert again.line == first.line
    assert statement(w.holder) == before
    w.check()


def test_cancelling_what_is_not_a_destination_is_not_found(w: World) -> None:
    refused(Reason.NOT_FOUND, lambda: cancel(w.holder, IBAN))
    assert destinations(w.holder)[-1].reference != IBAN


def test_another_holder_neither_sees_nor_cancels_nor_uses_my_destinations(w: World) -> None:
    earn_900(w)
    add_destination(w.holder, IBAN)
    mallory = w.new_holder("mallory")
    assert destinations(mallory) == []
    assert notices(mallory) == []
    refused(Reason.NOT_FOUND, lambda: cancel(mallory, IBAN))
    # Her own destination of the same reference is hers: it does not make mine usable.
    add_destination(mallory, "IBAN FR76 0001")
    refused(Reason.NOT_FOUND, lambda: cancel(mallory, "IBAN FR76 3000 6000"))
    w.clock.advance(DELAY)
    (mine,) = [d for d in destinations(w.holder) if d.reference == IBAN]
    assert mine.state == S.PAYOUT_DESTINATION_STATE_CONFIRMED
    refused(Reason.PAYOUT_DESTINATION_UNKNOWN, lambda: withdraw(mallory, 1, reference=IBAN))
    w.check()


def test_only_a_holder_has_payout_destinations(w: World) -> None:
    for caller in (w.adv, w.platform):
        refused(Reason.NOT_OWNER, partial(add_destination, caller, IBAN))
        refused(Reason.NOT_OWNER, partial(cancel, caller, IBAN))
        refused(Reason.NOT_OWNER, partial(destinations, caller))
    refused(Reason.UNKNOWN_KEY, lambda: add_destination(w.party(), IBAN))


@pytest.mark.parametrize("reference", ["", "r" * 129, "IBAN\n", "IBAN\u202e"])
def test_a_bad_reference_is_invalid(w: World, reference: str) -> None:
    before = destinations(w.holder)
    refused(Reason.INVALID_REQUEST, lambda: add_destination(w.holder, reference))
    refused(Reason.INVALID_REQUEST, lambda: cancel(w.holder, reference))
    assert destinations(w.holder) == before


def test_at_most_16_destinations_not_cancelled(w: World) -> None:
    have = len(destinations(w.holder))  # those the world's holder added
    for i in range(16 - have):
        add_destination(w.holder, f"ref-{i}")
    e = refused(Reason.INVALID_REQUEST, lambda: add_destination(w.holder, "one too many"))
    assert "at most 16 payout destinations" in str(e)
    assert add_destination(w.holder, "ref-0").reference == "ref-0"  # one there: answered
    cancel(w.holder, "ref-0")
    add_destination(w.holder, "one too many")  # a cancelled one frees its place
    assert len(destinations(w.holder)) == 17


def test_the_inbox_tells_the_holder_of_each_destination_in_its_delay(w: World) -> None:
    ada = w.new_holder("ada")
    assert notices(ada) == []
    added = add_destination(ada, IBAN)
    (notice,) = notices(ada)
    assert notice.kind == records_pb2.NOTICE_KIND_PAYOUT_DESTINATION_ADDED
    assert (notice.at, notice.subject) == (added.added_at, IBAN)
    assert f"a payout destination {IBAN} was added at" in notice.text
    assert "it becomes usable at" in notice.text
    assert f"cancel it with `licentia-wallet payouts cancel {IBAN}`" in notice.text
    assert len(notices(w.holder)) == 3  # the world's holder added three, just as pending
    w.clock.advance(DELAY)  # usable now: nothing left to warn of
    assert notices(ada) == []
    add_destination(ada, "IBAN 2")
    cancel(ada, "IBAN 2")
    assert notices(ada) == []


def test_the_flag_takes_decimal_hours_and_refuses_a_negative_delay(tmp_path: Path) -> None:
    args = server._parser().parse_args(["serve", "--payout-delay-hours", "0.5"])
    assert args.payout_delay_hours == 0.5
    assert server._parser().parse_args(["serve"]).payout_delay_hours == 72
    for bad in ("-1", "nan", "100000"):
        code = server.main(["--payout-delay-hours", bad, "--data-dir", str(tmp_path / "d")])
        assert code == 2, bad
