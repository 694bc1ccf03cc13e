"""The store contract, requests and issuance (both backends)."""

from __future__ import annotations

import threading

import pytest

from licentia import merkle, sealed
from licentia.errors import LicentiaError, Reason
from licentia.scope import Scope
from licentia.services import issuance
from licentia.services.model import (
    Cause,
    LiveLicence,
    RequestRow,
    RequestState,
)
from licentia.services.store import StaleVerdict, Store
from licentia.token import LicenceClaims
from licentia.v1 import transparency_pb2

from .harness import (
    DAY,
    LICENSEE,
    NOW,
    PRICE,
    THREADS,
    Opener,
    _claims,
    _concurrently,
    _d,
    _holder,
    _issue,
    _issued,
    _licence,
    _nonce,
    _raises,
    _reason,
    _register,
    _request,
    _row,
)


# -- requests ------------------------------------------------------------------------------
def test_requests_idempotency_and_finishing(store: Store) -> None:
    holder = _holder()
    first = _request(store, _claims(holder, 1), key=b"k1")
    again = _request(store, _claims(holder, 2), key=b"k1")  # same key: the first request
    assert again == first
    assert store.request_by_key(LICENSEE.public.raw, b"k1", _d(b"k1")) == first
    assert store.request_by_key(LICENSEE.public.raw, b"k2", _d(b"k2")) is None
    assert store.request(first.request_id) == first
    assert store.request(_claims(holder, 2).licence_id) is None
    second = _request(store, _claims(holder, 3))
    assert second.claims != first.claims
    assert (
        LicenceClaims.decode(second.claims).status_index
        != LicenceClaims.decode(first.claims).status_index
    )
    h = holder.public.raw
    assert [
        r.request_id for r in store.requests_for_holder(h, include_answered=False, limit=9)
    ] == [
        second.request_id,
        first.request_id,
    ]
    declined = store.finish_request(
        first.request_id, RequestState.DECLINED, NOW + 5, reason="no thanks"
    )
    assert (declined.state, declined.updated_at, declined.reason) == (
        RequestState.DECLINED,
        NOW + 5,
        "no thanks",
    )
    _raises(
        Reason.REQUEST_NOT_PENDING,
        lambda: store.finish_request(first.request_id, RequestState.EXPIRED, NOW + 6),
    )
    expired = store.finish_request(
        second.request_id, RequestState.EXPIRED, NOW + DAY, failure="REQUEST_EXPIRED"
    )
    assert (expired.state, expired.failure) == (RequestState.EXPIRED, "REQUEST_EXPIRED")
    _raises(
        Reason.NOT_FOUND,
        lambda: store.finish_request(b"\x00" * 16, RequestState.DECLINED, NOW),
    )
    assert store.requests_for_holder(h, include_answered=False, limit=9) == []
    assert len(store.requests_for_holder(h, include_answered=True, limit=9)) == 2
    assert len(store.requests_for_holder(h, include_answered=True, limit=1)) == 1


def test_concurrent_requests_with_one_idempotency_key_store_one(opener: Opener) -> None:
    stores = [opener() for _ in range(4)]
    holder = _holder()
    got: list[RequestRow] = []
    lock = threading.Lock()

    def make(i: int) -> None:
        row = _request(stores[i % 4], _claims(holder, 100 + i), key=b"same")
        with lock:
            got.append(row)

    assert _concurrently(8, make) == [None] * 8
    assert len({r.request_id for r in got}) == 1
    assert (
        len(stores[0].requests_for_holder(holder.public.raw, include_answered=True, limit=99)) == 1
    )


def test_status_indexes_are_unique_across_replicas(opener: Opener) -> None:
    stores = [opener() for _ in range(4)]
    holder = _holder()
    indexes: list[int] = []
    lock = threading.Lock()

    def make(i: int) -> None:
        for j in range(10):
            row = _request(stores[i % 4], _claims(holder, 1000 + 10 * i + j))
            with lock:
                indexes.append(LicenceClaims.decode(row.claims).status_index)

    assert _concurrently(8, make) == [None] * 8
    assert len(set(indexes)) == len(indexes) == 80


# -- issuance --------------------------------------------------------------------------------
def test_issuance_escrows_and_logs(store: Store) -> None:
    holder = _holder()
    _register(store, holder)
    row = _request(store, _claims(holder, 1))
    plan = _licence(row, holder)
    lic = plan.licence
    _raises(Reason.INSUFFICIENT_FUNDS, lambda: _issue(store, plan))
    assert store.request(row.request_id) == row  # still pending, nothing stored
    assert store.licence(lic.licence_id) is None
    assert store.log_size() == 0
    store.deposit(LICENSEE.public.raw, PRICE + 5, "pay-1", NOW, digest=_d("pay-1", PRICE + 5))
    issued = _issue(store, plan)
    assert (issued.state, issued.licence_id) == (RequestState.ISSUED, lic.licence_id)
    lic = plan.sign(0, NOW)  # signed inside the issuance, with the index of its entry
    assert store.licence(lic.licence_id) == lic
    _raises(Reason.REQUEST_NOT_PENDING, lambda: _issue(store, plan))
    advertiser = store.party(LICENSEE.public.raw)
    assert advertiser is not None
    st = store.statement(advertiser, 0, 10)
    assert (st.available, st.pending) == (5, PRICE)
    assert [line.kind for line in st.lines] == ["ESCROW", "DEPOSIT"]
    index = store.log_index_of_licence(lic.licence_id)
    assert index == 0
    [(i, entry, at)] = store.log_entries(0, 10)
    assert (i, at) == (0, NOW)
    # Sealed to the holder's account: its first entry; nothing of her or the token shows.
    logged = transparency_pb2.LogEntry.FromString(entry)
    assert logged.WhichOneof("kind") == "sealed"
    assert holder.public.raw not in entry
    assert lic.licence_id not in entry
    log_key, count = store.account_log(holder.public.raw)
    assert count == 1
    assert sealed.open_entry(log_key, 1, logged.sealed).licence == lic.token
    assert logged.sealed.commitment == sealed.licence_commitment(lic.token)
    assert store.licences_of(holder.public.raw, before_issued=NOW + 1, limit=5) == [lic]
    assert store.licences_of(LICENSEE.public.raw, before_issued=NOW + 1, limit=5) == [lic]
    assert store.licences_of(LICENSEE.public.raw, before_issued=NOW, limit=5) == []


def test_a_balance_short_by_one_is_refused_by_the_debit_changing_nothing(store: Store) -> None:
    # The escrow's debit decides INSUFFICIENT_FUNDS (made only if the balance covers it):
    # a balance one short is refused, automatic or approved, with what it holds and lacks.
    holder = _holder()
    _register(store, holder)
    store.deposit(LICENSEE.public.raw, PRICE - 1, "pay", NOW, digest=_d("pay", PRICE - 1))
    advertiser = store.party(LICENSEE.public.raw)
    assert advertiser is not None
    pending = _request(store, _claims(holder, 1))
    plan = _licence(pending, holder)
    with pytest.raises(LicentiaError) as refused:
        _issue(store, plan)
    assert refused.value.reason == Reason.INSUFFICIENT_FUNDS
    assert f"the balance is {PRICE - 1}: deposit 1 more" in str(refused.value)
    assert store.request(pending.request_id) == pending  # still pending
    row = _row(store, _claims(holder, 2))
    auto = _licence(row, holder)
    verdict = issuance.verdict(auto, [])
    with pytest.raises(LicentiaError) as refused:
        store.add_request(row, auto=(auto, verdict), now=NOW, nonces=[_nonce(b"auto")])
    assert refused.value.reason == Reason.INSUFFICIENT_FUNDS
    failed = store.request(row.request_id)
    assert failed is not None
    assert failed.failure == "INSUFFICIENT_FUNDS"
    for lic in (plan.licence, auto.licence):
        assert store.licence(lic.licence_id) is None
    assert store.log_size() == 0
    st = store.statement(advertiser, 0, 10)
    assert (st.available, st.pending, [x.kind for x in st.lines]) == (PRICE - 1, 0, ["DEPOSIT"])
    # The call changed its request (FAILED): its nonce is spent, as for any refusal.
    _raises(Reason.REPLAYED_REQUEST, lambda: store.spend_nonces([_nonce(b"auto")]))
    store.deposit(LICENSEE.public.raw, 1, "pay-2", NOW, digest=_d("pay-2", 1))
    assert _issue(store, plan).state == RequestState.ISSUED
    st = store.statement(advertiser, 0, 10)
    assert (st.available, st.pending) == (0, PRICE)


def test_automatic_issuance_and_its_refusal(store: Store) -> None:
    holder = _holder()
    _register(store, holder)
    store.deposit(LICENSEE.public.raw, 2 * PRICE, "pay", NOW, digest=_d("pay", 2 * PRICE))

    def create(n: int) -> RequestRow:
        row = _row(store, _claims(holder, n, exclusive=True))
        plan = _licence(row, holder)
        lic = plan.licence
        while True:
            live = store.live_licences(lic.holder_key, NOW, lic.not_after, exclusive=True)
            try:
                return store.add_request(row, auto=(plan, issuance.verdict(plan, live)), now=NOW)
            except StaleVerdict:
                continue

    first = create(1)
    assert first.state == RequestState.ISSUED
    assert first.auto_approved is False
    # Its licence as the issuing thread is given it: the row as stored, read or kept.
    made = store.issued_licence(first)
    assert made is not None
    assert made == store.licence(first.licence_id)
    assert store.issued_licence(first) == made  # asked again: read
    _raises(Reason.EXCLUSIVITY_CONFLICT, lambda: create(2))
    failed = store.request(_claims(holder, 2).licence_id)
    assert failed is not None
    assert (failed.state, failed.failure) == (RequestState.FAILED, "EXCLUSIVITY_CONFLICT")
    assert store.licence(_claims(holder, 2).licence_id) is None
    assert store.log_size() == 1


def test_live_licences_are_ids_exclusivity_and_tokens_and_a_verdict_over_others_is_stale(
    store: Store,
) -> None:
    """An exclusivity check reads each live licence as its id, exclusivity and token (a
    revoked one, or one over by the window, is not live); inside the transaction only the
    ids are read again, and a verdict decided over other ids is stale: nothing stored."""
    holder = _holder()
    typical = _claims(holder, 0).scope

    def elsewhere(territory: str) -> Scope:
        return Scope.of(typical.categories, typical.purposes, typical.media, [territory])

    shared = _issued(store, holder, 1)
    exclusive = _issued(store, holder, 2, scope=elsewhere("US"), exclusive=True)
    revoked = _issued(store, holder, 3, not_before=NOW + 120)
    store.revoke(revoked.licence_id, NOW + 1, Cause.REVOKED)
    ended = _issued(store, holder, 4, not_after=NOW + 30)
    window = (holder.public.raw, NOW + 60, NOW + 90 * DAY)
    everything = store.live_licences(*window, exclusive=True)
    assert sorted(everything) == sorted(
        LiveLicence(x.licence_id, x.exclusive, x.token) for x in (shared, exclusive)
    )
    assert [x.exclusive for x in sorted(everything)] == sorted([False, True])
    assert ended.licence_id not in {x.licence_id for x in everything}
    assert store.live_licences(*window, exclusive=False) == [
        LiveLicence(exclusive.licence_id, True, exclusive.token)
    ]
    store.deposit(LICENSEE.public.raw, PRICE, "pay-5", NOW, digest=_d("pay-5", PRICE))
    # Not exclusive, and elsewhere than the exclusive one: decided over it, no conflict.
    plan = _licence(_request(store, _claims(holder, 5, scope=elsewhere("JP"))), holder)
    (only,) = store.live_licences(*window, exclusive=False)
    before = store.log_size()
    shared_live = next(x for x in everything if not x.exclusive)
    for seen in ([], [shared_live], [only, only._replace(licence_id=b"x" * 16)]):
        with pytest.raises(StaleVerdict):
            store.issue(plan, issuance.verdict(plan, seen), NOW)
        assert store.licence(plan.licence.licence_id) is None
        assert store.log_size() == before
    done = store.issue(plan, issuance.verdict(plan, [only]), NOW)
    assert done.state == RequestState.ISSUED
    assert store.log_size() == before + 1


def test_exclusivity_holds_across_replicas(opener: Opener) -> None:
    """16 writers (each its own store: a replica) issue overlapping exclusive licences of one
    holder at once: exactly one is issued."""
    setup = opener()
    holder = _holder()
    _register(setup, holder)
    setup.deposit(
        LICENSEE.public.raw, THREADS * PRICE, "pay", NOW, digest=_d("pay", THREADS * PRICE)
    )
    prepared = []
    for i in range(THREADS):
        row = _request(setup, _claims(holder, i, not_before=NOW + i * 60, exclusive=True))
        prepared.append(_licence(row, holder))
    replicas = [opener() for _ in range(THREADS)]
    errors = _concurrently(THREADS, lambda i: _issue(replicas[i], prepared[i]))
    reasons = [_reason(e) for e in errors]
    assert reasons.count(None) == 1
    assert reasons.count(Reason.EXCLUSIVITY_CONFLICT) == THREADS - 1
    live = setup.licences_of(holder.public.raw, before_issued=NOW + 1, limit=99)
    assert len(live) == 1
    assert setup.log_size() == 1
    assert setup.ledger_check() == []


def test_funds_are_never_spent_twice_across_replicas(opener: Opener) -> None:
    """Eight replicas issue licences of eight holders paid from one balance that covers
    three: exactly three are issued, and no balance goes negative."""
    setup = opener()
    setup.deposit(LICENSEE.public.raw, 3 * PRICE, "pay", NOW, digest=_d("pay", 3 * PRICE))
    prepared = []
    for i in range(8):
        holder = _holder(50 + i)
        _register(setup, holder)
        prepared.append(_licence(_request(setup, _claims(holder, i)), holder))
    replicas = [opener() for _ in range(8)]
    errors = _concurrently(8, lambda i: _issue(replicas[i], prepared[i]))
    reasons = [_reason(e) for e in errors]
    assert reasons.count(None) == 3
    assert reasons.count(Reason.INSUFFICIENT_FUNDS) == 5
    assert setup.ledger_check() == []
    # The log has one entry per licence, indexes gapless.
    assert [i for i, _, _ in setup.log_entries(0, 99)] == [0, 1, 2]


def test_issuances_committed_together_keep_their_own_outcomes(store: Store) -> None:
    """16 automatic issuances at once on one store (on PostgreSQL they share a group
    commit): each gets its own outcome — issued, refused by an earlier one of the same
    batch, replayed, a duplicate the engine refuses — and nothing of a refused one stays."""
    holder, other = _holder(), _holder(7)  # the other's two licences are exclusive
    _register(store, holder)
    _register(store, other)
    store.deposit(LICENSEE.public.raw, 20 * PRICE, "pay", NOW, digest=_d("pay", 20 * PRICE))
    store.spend_nonces([_nonce(b"spent")])
    rows = [_row(store, _claims(other, i, exclusive=True)) for i in range(2)]
    rows += [_row(store, _claims(holder, i)) for i in range(2, 15)]
    rows.append(rows[2])  # the same request twice: its second insert breaks a unique key
    nonces = [[_nonce(b"spent")] if i == 3 else [_nonce(b"n%d" % i)] for i in range(16)]

    def create(i: int) -> RequestRow:
        plan = _licence(rows[i], other if i < 2 else holder)
        lic = plan.licence
        while True:
            live = store.live_licences(
                lic.holder_key, lic.not_before, lic.not_after, exclusive=lic.exclusive
            )
            try:
                return store.add_request(
                    rows[i],
                    auto=(plan, issuance.verdict(plan, live)),
                    now=NOW,
                    nonces=nonces[i],
                )
            except StaleVerdict:
                continue

    errors = _concurrently(16, create)
    assert _reason(errors[3]) == Reason.REPLAYED_REQUEST
    assert store.request(rows[3].request_id) is None
    assert sorted([_reason(errors[0]), _reason(errors[1])], key=str) == sorted(
        [None, Reason.EXCLUSIVITY_CONFLICT], key=str
    )
    assert [_reason(e) for e in errors[4:15]] == [None] * 11
    # One of the two inserts of the same request is refused by the engine, alone.
    duplicate = [e for e in (errors[2], errors[15]) if e is not None]
    assert len(duplicate) == 1
    assert isinstance(duplicate[0], store._INTEGRITY)  # type: ignore[attr-defined]
    issued = 14 - 1  # 15 requests, one replayed, one exclusivity conflict
    assert store.log_size() == issued
    entries = store.log_entries(0, 99)
    assert [i for i, _, _ in entries] == list(range(issued))
    # The tree's stored nodes (some read in the round trip that took the index) are right.
    assert store.log_head() == (issued, merkle.reference_root([e for _, e, _ in entries]))
    lics = store.licences_of(holder.public.raw, before_issued=NOW + 1, limit=99)
    assert len(lics) == issued - 1
    assert len(store.licences_of(other.public.raw, before_issued=NOW + 1, limit=99)) == 1


def test_an_automatic_issuance_refused_before_it_is_made_changes_nothing(store: Store) -> None:
    # PostgreSQL makes an automatic issuance in two server-side calls whose checks come
    # before their first write (services/store/_pg_issue.py); whatever refuses it, nothing
    # is stored and its nonce stays unspent, as on SQLite, and the log stays whole.
    holder = _holder()
    _register(store, holder)
    store.deposit(LICENSEE.public.raw, 2 * PRICE, "pay", NOW, digest=_d("pay", 2 * PRICE))

    def auto(n: int, nonce: bytes, seen: frozenset[bytes] = frozenset()) -> RequestRow:
        row = _row(store, _claims(holder, n))
        plan = _licence(row, holder)
        verdict = issuance.Verdict(None, seen)
        return store.add_request(
            row, auto=(plan, verdict), now=NOW, nonces=[_nonce(nonce)], cost=PRICE
        )

    def refused(n: int, nonce: bytes, seen: frozenset[bytes] = frozenset()) -> object:
        with pytest.raises((LicentiaError, StaleVerdict)) as e:
            auto(n, nonce, seen)
        return e.value if isinstance(e.value, StaleVerdict) else _reason(e.value)

    first = auto(1, b"n1")
    assert first.state == RequestState.ISSUED
    assert store.request(first.request_id) == first
    lic = store.licence(first.licence_id)
    assert lic is not None
    assert lic.request_id == first.request_id
    assert refused(2, b"n1") == Reason.REPLAYED_REQUEST
    # decided over a licence that is not live: decided again (the servicer's loop)
    assert isinstance(refused(3, b"n3", frozenset({b"\x07" * 16})), StaleVerdict)
    second = auto(4, b"n4")
    assert refused(5, b"n5") == Reason.INSUFFICIENT_FUNDS  # the balance is in escrow
    rows = store.requests_for_holder(holder.public.raw, include_answered=True, limit=9)
    assert {r.request_id for r in rows} == {first.request_id, second.request_id}
    store.spend_nonces([_nonce(b"n3"), _nonce(b"n5")])  # neither was spent
    advertiser = store.party(LICENSEE.public.raw)
    assert advertiser is not None
    st = store.statement(advertiser, 0, 10)
    assert (st.available, st.pending) == (0, 2 * PRICE)
    size, root = store.log_head()
    assert size == 2
    _, proof, entry = store.log_inclusion(1, 2)
    assert merkle.verify_inclusion(entry, 1, 2, proof, root)
