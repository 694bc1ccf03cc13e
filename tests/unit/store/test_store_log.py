"""The store contract, the public log (both backends)."""

from __future__ import annotations

from licentia import merkle
from licentia.errors import Reason
from licentia.services import issuance
from licentia.services.model import (
    Cause,
)
from licentia.services.store import Store

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
    _raises,
    _reason,
    _register,
    _request,
    _row,
)


# -- the public log --------------------------------------------------------------------------
def test_log_proofs_verify(store: Store) -> None:
    holder = _holder()
    heads = [store.log_head()]
    assert heads[0][0] == 0
    for i in range(7):
        lic = _issued(
            store, holder, i, not_before=NOW + i * 91 * DAY, not_after=NOW + (i * 91 + 1) * DAY
        )
        if i % 2:
            store.revoke(lic.licence_id, NOW + 1, Cause.REVOKED)
        heads.append(store.log_head())
    size, root = store.log_head()
    assert size == store.log_size() == 7 + 3
    entries = store.log_entries(0, size)
    assert [i for i, _, _ in entries] == list(range(size))
    assert merkle.reference_root([e for _, e, _ in entries]) == root
    for index, entry, _ in entries:
        got_size, proof, got_entry = store.log_inclusion(index, 0)
        assert (got_size, got_entry) == (size, entry)
        assert merkle.verify_inclusion(entry, index, size, proof, root)
    old_size, old_root = heads[3]
    _, proof, _ = store.log_inclusion(1, old_size)
    assert merkle.verify_inclusion(entries[1][1], 1, old_size, proof, old_root)
    for old_size, old_root in heads[1:]:
        proof = store.log_consistency(old_size, size)
        assert merkle.verify_consistency(old_size, size, old_root, root, proof)
    _raises(Reason.INVALID_REQUEST, lambda: store.log_inclusion(size, 0))
    _raises(Reason.INVALID_REQUEST, lambda: store.log_consistency(0, size))
    _raises(Reason.INVALID_REQUEST, lambda: store.log_consistency(2, size + 1))
    assert store.log_index_of_licence(b"\x00" * 16) is None


def test_log_appends_from_replicas_stay_consistent(opener: Opener) -> None:
    setup = opener()
    setup.deposit(
        LICENSEE.public.raw, THREADS * PRICE, "pay", NOW, digest=_d("pay", THREADS * PRICE)
    )
    prepared = []
    for i in range(THREADS):
        holder = _holder(80 + i)
        _register(setup, holder)
        prepared.append(_licence(_request(setup, _claims(holder, i)), holder))
    replicas = [opener() for _ in range(4)]
    errors = _concurrently(THREADS, lambda i: _issue(replicas[i % 4], prepared[i]))
    assert errors == [None] * THREADS
    size, root = setup.log_head()
    entries = setup.log_entries(0, size)
    assert [i for i, _, _ in entries] == list(range(THREADS))
    assert merkle.reference_root([e for _, e, _ in entries]) == root
    assert sorted(setup.log_index_of_licence(p.licence.licence_id) or 0 for p in prepared) == list(
        range(THREADS)
    )


def test_issuances_refusals_and_revocations_in_one_batch_keep_the_log_whole(store: Store) -> None:
    # Group-committed together: issuances, some refused midway (the funds run out: their
    # rollback gives back nothing logged), and revocations appending between them. The log
    # stays gapless and its stored tree (the writer's kept tail included) proves every entry.
    first = [_issued(store, _holder(40 + i), i) for i in range(4)]
    before = store.log_head()
    store.deposit(LICENSEE.public.raw, 6 * PRICE, "six", NOW, digest=_d("six", 6 * PRICE))
    plans = []
    for i in range(THREADS):
        holder = _holder(60 + i)
        _register(store, holder)
        row = _row(store, _claims(holder, 100 + i))
        plans.append((row, _licence(row, holder)))

    def work(i: int) -> None:
        if i < 4:
            store.revoke(first[i].licence_id, NOW + 1, Cause.REVOKED)
            return
        row, plan = plans[i]
        store.add_request(row, auto=(plan, issuance.verdict(plan, [])), now=NOW)

    reasons = [_reason(e) for e in _concurrently(THREADS, work)]
    assert set(reasons) == {None, Reason.INSUFFICIENT_FUNDS}  # 6 + 4 refunds < 12 licences
    issued = [plan for (_, plan), r in zip(plans[4:], reasons[4:], strict=True) if r is None]
    size, root = store.log_head()
    assert size == before[0] + 4 + len(issued)
    entries = store.log_entries(0, size)
    assert [i for i, _, _ in entries] == list(range(size))
    assert merkle.reference_root([e for _, e, _ in entries]) == root
    for index, entry, _ in entries:
        _, proof, _ = store.log_inclusion(index, size)
        assert merkle.verify_inclusion(entry, index, size, proof, root)
    proof = store.log_consistency(before[0], size)
    assert merkle.verify_consistency(before[0], size, before[1], root, proof)
    logged = sorted(store.log_index_of_licence(p.licence.licence_id) or 0 for p in issued)
    assert len(set(logged)) == len(issued)
    assert all(before[0] <= i < size for i in logged)
