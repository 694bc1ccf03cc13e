"""The store contract, funds reserved at request time (both backends): a request reserves
what its approval will escrow or is refused with nothing stored, every end of a request
releases it, no issuance takes reserved money, and ledger_check proves the totals."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest

from licentia.errors import LicentiaError, Reason
from licentia.services import issuance
from licentia.services.model import RequestRow, RequestState
from licentia.services.store import Store
from licentia.services.store import common as store_common
from licentia.services.store.common import SqlStore

from .harness import (
    DAY,
    LICENSEE,
    NOW,
    PRICE,
    Opener,
    _claims,
    _concurrently,
    _d,
    _holder,
    _issue,
    _licence,
    _raises,
    _reason,
    _register,
    _row,
)

ADV = LICENSEE.public.raw


def _ask(store: Store, n: int, cost: int = PRICE, holder_seed: int = 2) -> RequestRow:
    """A request of claims ``n`` reserving ``cost`` (what the servicer passes: its price)."""
    return store.add_request(
        _row(store, _claims(_holder(holder_seed), n)), now=NOW, digest=_d(n), cost=cost
    )


def test_every_end_of_a_request_releases_what_it_reserved(store: Store) -> None:
    holder = _holder()
    _register(store, holder)
    store.deposit(ADV, 2 * PRICE, "pay", NOW, digest=_d("pay"))
    a, b = _ask(store, 1), _ask(store, 2)
    assert store.reserved(ADV) == (2 * PRICE, 2)
    assert store.ledger_check() == []
    # A third does not fit: refused, saying why, and nothing of it stored.
    third = _row(store, _claims(holder, 3))
    with pytest.raises(LicentiaError) as refused:
        store.add_request(third, now=NOW, cost=PRICE)
    assert refused.value.reason == Reason.INSUFFICIENT_FUNDS
    assert str(refused.value) == (
        f"the licence costs {PRICE}, available 0: the balance is {2 * PRICE}, of which"
        f" {2 * PRICE} is reserved for 2 pending requests; deposit {PRICE} more"
    )
    assert store.request(third.request_id) is None
    assert store.reserved(ADV) == (2 * PRICE, 2)
    # Declined: released, and the third fits now.
    store.finish_request(a.request_id, RequestState.DECLINED, NOW + 1)
    assert store.reserved(ADV) == (PRICE, 1)
    c = store.add_request(third, now=NOW, cost=PRICE)
    assert store.reserved(ADV) == (2 * PRICE, 2)
    # Approved: the reservation becomes the escrow.
    assert _issue(store, _licence(b, holder)).state == RequestState.ISSUED
    assert store.reserved(ADV) == (PRICE, 1)
    advertiser = store.party(ADV)
    assert advertiser is not None
    st = store.statement(advertiser, 0, 10)
    assert (st.available, st.pending, st.reserved, st.reserved_requests) == (
        PRICE,
        PRICE,
        PRICE,
        1,
    )
    # Withdrawn, failed: released.
    store.finish_request(c.request_id, RequestState.WITHDRAWN, NOW + 2)
    assert store.reserved(ADV) == (0, 0)
    d = _ask(store, 4)
    store.finish_request(d.request_id, RequestState.FAILED, NOW + 2, failure="KEY_REMOVED")
    assert store.reserved(ADV) == (0, 0)
    # Expired: released when its time is over, by the next request or the statement.
    e = _ask(store, 5)
    assert store.expire_requests(ADV, NOW + DAY - 1) == 0
    assert store.reserved(ADV) == (PRICE, 1)
    assert store.expire_requests(ADV, NOW + DAY) == 1
    assert store.reserved(ADV) == (0, 0)
    expired = store.request(e.request_id)
    assert expired is not None
    assert expired.state == RequestState.EXPIRED
    f = _ask(store, 6)
    g = store.add_request(
        dataclasses.replace(
            _row(store, _claims(holder, 7)), created_at=NOW + DAY, expires_at=NOW + 2 * DAY
        ),
        now=NOW + DAY,
        cost=PRICE,
    )  # f's time is over: its reservation makes way
    assert store.reserved(ADV) == (PRICE, 1)
    assert store.request(f.request_id).state == RequestState.EXPIRED  # type: ignore[union-attr]
    assert store.request(g.request_id).state == RequestState.PENDING  # type: ignore[union-attr]


def test_no_issuance_takes_what_pending_requests_reserve(store: Store) -> None:
    holder = _holder()
    _register(store, holder)
    store.deposit(ADV, PRICE, "pay", NOW, digest=_d("pay"))
    reserving = _ask(store, 1)
    # A request pending from before reservations (it reserved nothing) cannot take it…
    older = _ask(store, 2, cost=0)
    _raises(Reason.INSUFFICIENT_FUNDS, lambda: _issue(store, _licence(older, holder)))
    # …nor can an automatic issuance, refused before anything is stored.
    row = _row(store, _claims(holder, 3))
    plan = _licence(row, holder)
    _raises(
        Reason.INSUFFICIENT_FUNDS,
        lambda: store.add_request(
            row, auto=(plan, issuance.verdict(plan, [])), now=NOW, cost=PRICE
        ),
    )
    assert store.request(row.request_id) is None
    # The reserving request is approved: its own reservation pays it.
    assert _issue(store, _licence(reserving, holder)).state == RequestState.ISSUED
    assert store.reserved(ADV) == (0, 0)
    assert store.log_size() == 1


def test_an_automatic_issuance_reserves_nothing_once_done(store: Store) -> None:
    holder = _holder()
    _register(store, holder)
    store.deposit(ADV, PRICE, "pay", NOW, digest=_d("pay"))
    row = _row(store, _claims(holder, 1))
    plan = _licence(row, holder)
    done = store.add_request(row, auto=(plan, issuance.verdict(plan, [])), now=NOW, cost=PRICE)
    assert done.state == RequestState.ISSUED
    assert store.reserved(ADV) == (0, 0)


def test_reservations_never_promise_the_same_money_twice_across_replicas(
    opener: Opener,
) -> None:
    """Eight replicas ask at once from a balance that covers three: three are stored."""
    setup = opener()
    _register(setup, _holder())
    setup.deposit(ADV, 3 * PRICE, "pay", NOW, digest=_d("pay"))
    rows = [_row(setup, _claims(_holder(), i)) for i in range(8)]
    replicas = [opener() for _ in range(8)]
    errors = _concurrently(
        8, lambda i: replicas[i].add_request(rows[i], now=NOW, digest=_d(i), cost=PRICE)
    )
    reasons = [_reason(e) for e in errors]
    assert reasons.count(None) == 3
    assert reasons.count(Reason.INSUFFICIENT_FUNDS) == 5
    assert setup.reserved(ADV) == (3 * PRICE, 3)
    assert setup.ledger_check() == []


def test_ledger_check_proves_the_reserved_totals(store: Store) -> None:
    _register(store, _holder())
    store.deposit(ADV, 2 * PRICE, "pay", NOW, digest=_d("pay"))
    _ask(store, 1)
    assert isinstance(store, SqlStore)
    store._transact(lambda c: c.execute("UPDATE reserves SET reserved = reserved + 1"))
    assert store.ledger_check() == [
        f"advertiser {ADV.hex()} has {PRICE + 1} reserved for 1 requests,"
        f" its pending requests reserve {PRICE} for 1"
    ]
    store._transact(lambda c: c.execute("UPDATE reserves SET reserved = reserved - 1"))
    store._transact(
        lambda c: c.execute("UPDATE requests SET state = ?", (int(RequestState.DECLINED),))
    )
    assert store.ledger_check() == [
        f"request {_claims(_holder(), 1).licence_id.hex()} reserves {PRICE} but is not pending"
    ]
    store._transact(lambda c: c.execute("DELETE FROM request_reserves"))
    store._transact(lambda c: c.execute("DELETE FROM reserves"))


def test_the_retention_sweep_and_an_erasure_release_what_requests_reserved(store: Store) -> None:
    holder, other = _holder(), _holder(7)
    _register(store, holder)
    _register(store, other)
    store.deposit(ADV, 3 * PRICE, "pay", NOW, digest=_d("pay"))
    _ask(store, 1)
    _ask(store, 2, holder_seed=7)
    assert store.reserved(ADV) == (2 * PRICE, 2)
    # Her account is deleted: her pending request goes, and what it reserved is free.
    store.erase_account(other.public.raw, NOW + 1, b"")
    assert store.reserved(ADV) == (PRICE, 1)
    # Long after its time, the sweep expires the other (nobody read it since).
    swept = store.sweep_retention(NOW + 10 * DAY, DAY, batch=10)
    assert swept.requests == 1
    assert store.reserved(ADV) == (0, 0)


def test_a_decline_racing_an_approval_waits_for_it_and_never_deadlocks(
    opener: Opener, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The approval releases the reservation, then (paused here) marks its request issued;
    a decline of the same request meanwhile waits for the request's lock instead of taking
    the request's row and then waiting on the reservation (a deadlock on PostgreSQL, which
    its retry hid at the cost of a stall)."""
    approver, decliner = opener(), opener()
    holder = _holder()
    _register(approver, holder)
    approver.deposit(ADV, 2 * PRICE, "pay", NOW, digest=_d("pay"))
    req = _ask(approver, 1)
    retries: list[str] = []
    monkeypatch.setattr(store_common, "retried", retries.append)
    halfway = threading.Event()
    finish_sent = approver._finish_sent  # type: ignore[attr-defined]

    def paused(
        c: object, request_id: bytes, state: RequestState, *a: object, **k: object
    ) -> object:
        if state == RequestState.ISSUED and not halfway.is_set():
            c.execute("SELECT 1").fetchone()  # type: ignore[attr-defined]  # the release has run
            halfway.set()
            time.sleep(0.5)
        return finish_sent(c, request_id, state, *a, **k)

    monkeypatch.setattr(approver, "_finish_sent", paused)
    declined: list[object] = []

    def decline() -> None:
        halfway.wait(10)
        try:
            declined.append(decliner.finish_request(req.request_id, RequestState.DECLINED, NOW))
        except LicentiaError as e:
            declined.append(e.reason)

    t = threading.Thread(target=decline)
    t.start()
    issued = _issue(approver, _licence(req, holder))
    t.join(20)
    assert issued.state == RequestState.ISSUED
    assert declined == [Reason.REQUEST_NOT_PENDING]
    assert retries == []
    assert approver.reserved(ADV) == (0, 0)
    assert approver.ledger_check() == []
