"""The store contract, money (both backends)."""

from __future__ import annotations

from licentia.errors import Reason
from licentia.keys import PrivateKey
from licentia.services.model import (
    LedgerLine,
    Role,
)
from licentia.services.store import Store

from .harness import (
    DAY,
    LICENSEE,
    NOW,
    PRICE,
    Opener,
    _concurrently,
    _d,
    _holder,
    _issued,
    _party,
    _raises,
    _reason,
)


# -- money -----------------------------------------------------------------------------------
def test_deposits_and_withdrawals_are_idempotent(store: Store) -> None:
    adv = LICENSEE.public.raw
    line, balance, replayed = store.deposit(adv, 500, "bank-1", NOW, digest=_d("bank-1", 500))
    assert (line.amount, balance, replayed, line.reference) == (500, 500, False, "bank-1")
    again = store.deposit(adv, 500, "bank-1", NOW + 1, digest=_d("bank-1", 500))
    assert again == (line, 500, True)
    _raises(
        Reason.IDEMPOTENCY_KEY_REUSED,
        lambda: store.deposit(adv, 501, "bank-1", NOW, digest=_d("bank-1", 501)),
    )
    holder = _holder()
    lic = _issued(store, holder, 1)
    h = holder.public.raw
    store.add_payout_destination(h, "iban", NOW, NOW, limit=16)
    store.add_payout_destination(h, "other", NOW, NOW, limit=16)
    _raises(
        Reason.INSUFFICIENT_FUNDS,
        lambda: store.withdraw(h, 1, "iban", b"w0", NOW, digest=_d(b"w0", 1, "iban")),
    )  # nothing earned yet
    store.settle(h, lic.not_after)  # the whole term has passed: all earned
    hp = store.party(h)
    assert hp is not None
    earned = store.statement(hp, 0, 10).available
    assert earned == PRICE - PRICE // 10
    _raises(
        Reason.INSUFFICIENT_FUNDS,
        lambda: store.withdraw(
            h, earned + 1, "iban", b"w1", NOW, digest=_d(b"w1", earned + 1, "iban")
        ),
    )
    line, balance, replayed = store.withdraw(
        h, 1000, "iban", b"w1", NOW, digest=_d(b"w1", 1000, "iban")
    )
    assert (line.amount, balance, replayed) == (-1000, earned - 1000, False)
    assert store.withdraw(h, 1000, "iban", b"w1", NOW, digest=_d(b"w1", 1000, "iban")) == (
        line,
        earned - 1000,
        True,
    )
    _raises(
        Reason.IDEMPOTENCY_KEY_REUSED,
        lambda: store.withdraw(h, 999, "iban", b"w1", NOW, digest=_d(b"w1", 999, "iban")),
    )
    _raises(
        Reason.IDEMPOTENCY_KEY_REUSED,
        lambda: store.withdraw(h, 1000, "other", b"w1", NOW, digest=_d(b"w1", 1000, "other")),
    )


def test_concurrent_deposits_and_withdrawals_across_replicas(opener: Opener) -> None:
    stores = [opener() for _ in range(4)]
    adv = LICENSEE.public.raw
    errors = _concurrently(
        8,
        lambda i: stores[i % 4].deposit(
            adv, 100, f"ref-{i % 2}", NOW, digest=_d(f"ref-{i % 2}", 100)
        ),
    )
    assert errors == [None] * 8
    setup = stores[0]
    advertiser = _party(adv, Role.ADVERTISER, "acme")
    setup.add_party(advertiser)
    assert setup.statement(advertiser, 0, 10).available == 200  # two references, once each
    setup.deposit(adv, PRICE, "more", NOW, digest=_d("more", PRICE))
    holder = _holder()
    lic = _issued(setup, holder, 1)
    setup.settle(holder.public.raw, lic.not_after)
    hp = setup.party(holder.public.raw)
    assert hp is not None
    earned = setup.statement(hp, 0, 1).available
    setup.add_payout_destination(holder.public.raw, "iban", NOW, NOW, limit=16)
    # Eight payouts of 60% of the balance, four idempotency keys: exactly one is paid.
    errors = _concurrently(
        8,
        lambda i: stores[i % 4].withdraw(
            holder.public.raw,
            earned * 6 // 10,
            "iban",
            b"k%d" % (i % 4),
            NOW,
            digest=_d(b"k%d" % (i % 4)),
        ),
    )
    reasons = [_reason(e) for e in errors]
    assert reasons.count(Reason.INSUFFICIENT_FUNDS) >= 6
    assert setup.statement(hp, 0, 1).available == earned - earned * 6 // 10
    assert setup.ledger_check() == []


def test_statements_page_newest_first(store: Store) -> None:
    adv = _party(LICENSEE.public.raw, Role.ADVERTISER, "acme")
    store.add_party(adv)
    for i in range(5):
        store.deposit(adv.key, 10 + i, f"d{i}", NOW + i, digest=_d(f"d{i}", 10 + i))
    first = store.statement(adv, 0, 2)
    assert [line.amount for line in first.lines] == [14, 13]
    assert (first.available, first.pending, first.total) == (60, 0, 0)
    second = store.statement(adv, first.next_before, 2)
    assert [line.amount for line in second.lines] == [12, 11]
    last = store.statement(adv, second.next_before, 2)
    assert [line.amount for line in last.lines] == [10]
    assert last.next_before == 0
    holder = _holder()
    lic = _issued(store, holder, 1)
    store.settle(holder.public.raw, NOW + 45 * DAY)  # half the term
    store.settle(holder.public.raw, NOW + 45 * DAY)  # again: nothing moves
    hp = store.party(holder.public.raw)
    assert hp is not None
    st = store.statement(hp, 0, 10)
    half = PRICE // 2
    assert st.available == half - half // 10
    assert st.total == st.available
    assert st.pending == (PRICE - half) - (PRICE - half) // 10
    assert [line.kind for line in st.lines] == ["ACCRUAL"]
    assert store.statement(adv, 0, 1).pending == PRICE - half
    assert lic.max_uses == 3


# -- payout destinations ---------------------------------------------------------------------
def _earned(store: Store, holder: PrivateKey) -> int:
    """The holder's whole licence earned and settled: her available balance."""
    lic = _issued(store, holder, 1)
    store.settle(holder.public.raw, lic.not_after)
    hp = store.party(holder.public.raw)
    assert hp is not None
    return store.statement(hp, 0, 1).available


def _paid_out(store: Store, holder: PrivateKey) -> tuple[int, int]:
    """The holder's available balance and statement length, read through the store."""
    hp = store.party(holder.public.raw)
    assert hp is not None
    st = store.statement(hp, 0, 100)
    return st.available, len(st.lines)


def test_a_payout_goes_only_to_a_confirmed_destination(store: Store) -> None:
    holder = _holder()
    h = holder.public.raw
    earned = _earned(store, holder)
    before = _paid_out(store, holder)

    def pay(ref: str, key: bytes, at: int = NOW) -> tuple[LedgerLine, int, bool]:
        return store.withdraw(h, 100, ref, key, at, digest=_d(key, 100, ref))

    _raises(Reason.PAYOUT_DESTINATION_UNKNOWN, lambda: pay("iban", b"w0"))
    dest, added = store.add_payout_destination(h, "iban", NOW, NOW + DAY, limit=16)
    assert added
    assert (dest.reference, dest.added_at, dest.usable_at, dest.cancelled_at) == (
        "iban",
        NOW,
        NOW + DAY,
        0,
    )
    assert dest.state_at(NOW) == "PENDING"
    assert dest.state_at(NOW + DAY) == "CONFIRMED"
    # Adding it again changes nothing: the delay is not restarted.
    assert store.add_payout_destination(h, "iban", NOW + 5, NOW + 5 + DAY, limit=16) == (
        dest,
        False,
    )
    _raises(Reason.PAYOUT_DESTINATION_PENDING, lambda: pay("iban", b"w1"))
    _raises(Reason.PAYOUT_DESTINATION_PENDING, lambda: pay("iban", b"w1", NOW + DAY - 1))
    assert _paid_out(store, holder) == before  # refusals moved nothing
    line, balance, replayed = pay("iban", b"w1", NOW + DAY)
    assert (line.amount, balance, replayed) == (-100, earned - 100, False)
    # Cancelled: a retry of the payout made is answered as it was, a new one is refused.
    gone = store.cancel_payout_destination(h, "iban", NOW + DAY + 1)
    assert gone.cancelled_at == NOW + DAY + 1
    assert gone.state_at(NOW + 2 * DAY) == "CANCELLED"
    assert pay("iban", b"w1", NOW + DAY + 2) == (line, earned - 100, True)
    _raises(Reason.PAYOUT_DESTINATION_UNKNOWN, lambda: pay("iban", b"w2", NOW + 9 * DAY))
    _raises(Reason.NOT_FOUND, lambda: store.cancel_payout_destination(h, "iban", NOW + DAY))
    # Added again: a new destination with a delay of its own.
    again, added = store.add_payout_destination(h, "iban", NOW + 2 * DAY, NOW + 3 * DAY, limit=16)
    assert added
    assert again.usable_at == NOW + 3 * DAY
    _raises(Reason.PAYOUT_DESTINATION_PENDING, lambda: pay("iban", b"w3", NOW + 2 * DAY))
    assert [(d.reference, d.cancelled_at) for d in store.payout_destinations(h)] == [
        ("iban", NOW + DAY + 1),
        ("iban", 0),
    ]


def test_payout_destinations_are_each_holders_own_and_capped(store: Store) -> None:
    alice, bob = _holder(2), _holder(3)
    a, b = alice.public.raw, bob.public.raw
    _earned(store, alice)
    store.add_payout_destination(a, "alice-iban", NOW, NOW, limit=16)
    assert store.payout_destinations(b) == []
    _raises(Reason.NOT_FOUND, lambda: store.cancel_payout_destination(b, "alice-iban", NOW))
    # Bob's destination of the same reference is his, and does not make Alice's usable.
    store.add_payout_destination(b, "bob-iban", NOW, NOW, limit=16)
    _raises(
        Reason.PAYOUT_DESTINATION_UNKNOWN,
        lambda: store.withdraw(a, 1, "bob-iban", b"x", NOW, digest=_d("x")),
    )
    for i in range(15):
        store.add_payout_destination(a, f"ref-{i}", NOW, NOW, limit=16)
    _raises(
        Reason.INVALID_REQUEST,
        lambda: store.add_payout_destination(a, "one-more", NOW, NOW, limit=16),
    )
    # One already there is still answered; a cancelled one frees a place.
    assert not store.add_payout_destination(a, "ref-3", NOW, NOW, limit=16)[1]
    store.cancel_payout_destination(a, "ref-3", NOW)
    assert store.add_payout_destination(a, "one-more", NOW, NOW, limit=16)[1]
    listed = store.payout_destinations(a)
    assert len(listed) == 17
    assert sum(1 for d in listed if d.cancelled_at) == 1
    assert store.payout_destinations(a, cancelled=0) == [d for d in listed if not d.cancelled_at]
    assert [d.reference for d in store.payout_destinations(b)] == ["bob-iban"]


def test_concurrent_cancellations_and_payouts_across_replicas(opener: Opener) -> None:
    """A payout and a cancellation of its destination, at once on several replicas: the
    payout is made only if it committed before the cancellation, and once."""
    stores = [opener() for _ in range(4)]
    holder = _holder()
    h = holder.public.raw
    earned = _earned(stores[0], holder)
    stores[0].add_payout_destination(h, "iban", NOW, NOW, limit=16)
    errors = _concurrently(
        8,
        lambda i: (
            stores[i % 4].cancel_payout_destination(h, "iban", NOW)
            if i % 2
            else stores[i % 4].withdraw(h, 10, "iban", b"k%d" % i, NOW, digest=_d(b"k%d" % i))
        ),
    )
    reasons = [_reason(e) for e in errors]
    assert reasons[1::2].count(None) == 1  # one cancellation, the others found none
    assert reasons[1::2].count(Reason.NOT_FOUND) == 3
    paid = reasons[0::2].count(None)
    hp = stores[0].party(h)
    assert hp is not None
    assert stores[0].statement(hp, 0, 1).available == earned - 10 * paid
    assert {_reason(e) for e in errors[0::2]} <= {None, Reason.PAYOUT_DESTINATION_UNKNOWN}
