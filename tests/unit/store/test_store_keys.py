"""The store contract, issuer keys and the exchange's own keys (both backends)."""

from __future__ import annotations

import dataclasses

from licentia.services.model import (
    IssuerKeyRow,
)
from licentia.services.store import Store
from licentia.v1 import transparency_pb2

from .harness import (
    NOW,
    THREADS,
    Opener,
    _concurrently,
    _key,
)


# -- issuer keys -----------------------------------------------------------------------------
def test_issuer_key_rotation_and_withdrawal(store: Store) -> None:
    k1 = IssuerKeyRow(b"1" * 8, b"a" * 32, NOW)
    k2 = IssuerKeyRow(b"2" * 8, b"b" * 32, NOW + 100)
    store.rotate_issuer_key(k1)
    store.rotate_issuer_key(k2)
    assert store.issuer_keys() == [dataclasses.replace(k1, not_after=NOW + 100), k2]
    assert store.withdraw_issuer_key(k1.key_id, NOW + 200) is True
    assert store.withdraw_issuer_key(k1.key_id, NOW + 200) is False
    assert store.issuer_keys() == [k2]
    logged = [
        transparency_pb2.LogEntry.FromString(e).issuer_key for _, e, _ in store.log_entries(0, 9)
    ]
    assert [(k.key_id, k.not_after, k.withdrawn) for k in logged] == [
        (k1.key_id, 0, False),
        (k1.key_id, NOW + 100, False),
        (k2.key_id, 0, False),
        (k1.key_id, NOW + 100, True),
    ]


# -- the exchange's own keys ---------------------------------------------------------------
def test_the_first_record_of_the_exchanges_keys_stands(opener: Opener) -> None:
    """Replicas starting together each try to record their keys: one set is recorded, whole,
    and every one of them reads that set back (the others then refuse to start)."""
    store = opener()
    assert store.exchange_keys() == {}
    candidates = [{"operator": _key(10 + i), "log": _key(20 + i)} for i in range(THREADS)]
    stores = [opener() for _ in range(THREADS)]
    seen: list[dict[str, bytes]] = [{} for _ in range(THREADS)]

    def record(i: int) -> None:
        seen[i] = stores[i].record_exchange_keys(candidates[i], NOW)

    assert _concurrently(THREADS, record) == [None] * THREADS
    assert seen[0] in candidates
    assert all(s == seen[0] for s in seen)
    assert store.exchange_keys() == seen[0]
    # A name not yet recorded is added; a recorded one keeps its first key.
    after = store.record_exchange_keys({"operator": _key(99), "other": _key(98)}, NOW)
    assert after == {**seen[0], "other": _key(98)}
