"""The store contract, money (both backends)."""

from __future__ import annotations

from licentia.errors import Reason
from licentia.services.model import (
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
