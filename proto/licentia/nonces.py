"""Seen-nonce stores: replay protection for presentations and signed requests."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Protocol

from .errors import LicentiaError, Reason

__all__ = ["MemoryNonceStore", "NonceStore", "NonceStoreUnavailableError"]


class NonceStoreUnavailableError(LicentiaError):
    """A shared nonce store could not answer (its file locked past the timeout, its
    database away): whether the nonce was seen is unknown. A presentation checked against
    it is denied ``UNAVAILABLE`` (fail closed), never ``REPLAYED``: retrying may succeed."""

    def __init__(self, message: str = "the nonce store could not be reached") -> None:
        super().__init__(Reason.UNAVAILABLE, message)


class NonceStore(Protocol):
    """Remembers nonces until they expire.

    ``add_if_new`` must be atomic: of two concurrent calls with the same key, exactly one
    returns True. A store that cannot remember (full) must return False: fail closed. A
    store that cannot answer at all (a shared one whose file or database is away) raises
    :class:`NonceStoreUnavailableError`.
    """

    def add_if_new(self, key: bytes, expires_at: int, now: int) -> bool:
        """Record ``key`` until ``expires_at``; False if it is already recorded (a replay)."""
        ...


class MemoryNonceStore:
    """A bounded in-process nonce store for one verifier or one server process.

    Entries expire at their own ``expires_at``. Each new entry first drops the expired ones
    at the oldest end (O(1) per entry, no scan of live ones), so the store holds about one
    window's nonces, not every nonce it ever saw (``make load`` found the server's memory
    growing with every call until ``max_entries``). When it is full of live entries, it
    refuses (fail closed) rather than forget a live nonce.
    """

    __slots__ = ("_lock", "_seen", "max_entries")

    def __init__(self, max_entries: int = 1_000_000) -> None:
        self._seen: OrderedDict[bytes, int] = OrderedDict()
        self._lock = threading.Lock()
        self.max_entries = max_entries

    def add_if_new(self, key: bytes, expires_at: int, now: int) -> bool:
        """Record ``key`` until ``expires_at``; False for a live repeat or a full store."""
        with self._lock:
            entries = self._seen
            seen = entries.get(key)
            if seen is not None:
                if seen > now:
                    return False
                del entries[key]  # expired: recorded again below, at the newest end
            while entries:
                oldest, expiry = next(iter(entries.items()))
                if expiry > now:
                    break
                del entries[oldest]
            if len(entries) >= self.max_entries:
                return False
            entries[key] = expires_at  # a new key goes to the newest end
            return True

    def __len__(self) -> int:
        return len(self._seen)
