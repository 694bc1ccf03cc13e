"""The store contract, spent nonces (both backends)."""

from __future__ import annotations

import pytest

from licentia.errors import LicentiaError, Reason
from licentia.services.model import (
    Role,
)

from .harness import (
    NOW,
    Opener,
    _concurrently,
    _key,
    _nonce,
    _party,
    _reason,
)


# -- spent nonces ----------------------------------------------------------------------------
def test_spent_nonces(opener: Opener) -> None:
    store = opener()
    store.add_party(_party(_key(90), Role.HOLDER, "n1"), nonces=(_nonce(b"n1"),))
    other = opener()  # another replica (or a restart): no memory of the call
    with pytest.raises(LicentiaError) as e:
        other.add_party(_party(_key(91), Role.HOLDER, "n2"), nonces=(_nonce(b"n1"),))
    assert e.value.reason is Reason.REPLAYED_REQUEST
    assert other.party(_key(91)) is None
    # A call's second change is not a replay of its first; a refused change spends nothing.
    nonce = _nonce(b"n2")
    with pytest.raises(LicentiaError):
        store.add_party(_party(_key(90), Role.HOLDER, "n1"), nonces=(nonce,))
    assert not nonce.recorded
    store.add_party(_party(_key(92), Role.HOLDER, "n3"), nonces=(nonce,))
    assert nonce.recorded
    store.add_party(_party(_key(93), Role.HOLDER, "n4"), nonces=(nonce,))
    # Expired: the same key may be spent again.
    later = NOW + 100
    other.add_party(_party(_key(94), Role.HOLDER, "n5"), nonces=(_nonce(b"n1", later + 61, later),))
    # The same nonce on several replicas at once: one change, the others refused.
    replicas = [opener() for _ in range(4)]

    def call(i: int) -> None:
        replicas[i % 4].add_party(
            _party(_key(100 + i), Role.HOLDER, f"r{i}"), nonces=(_nonce(b"race"),)
        )

    reasons = [_reason(e) for e in _concurrently(8, call)]
    assert reasons.count(None) == 1
    assert reasons.count(Reason.REPLAYED_REQUEST) == 7
