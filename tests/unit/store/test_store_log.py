"""The store contract, the public log (both backends)."""

from __future__ import annotations

from licentia import merkle
from licentia.errors import Reason
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
    _register,
    _request,
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
