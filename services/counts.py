"""How many of something each key holds (a client address, a holder), with a cap each: the
one count behind the stream slots per client (:class:`.rpc.StreamLimit`), the uploads per
holder (:class:`.uploads.UploadSlots`) and the gateway's connections and body reads per
client (:mod:`.http_limits`). Not thread-safe: a caller shared by threads holds its own lock.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class PerKey(Generic[K]):
    """How many of something each key holds, at most ``cap`` each (a key at zero is
    forgotten, so the table holds only the keys that hold something)."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._held: dict[K, int] = {}

    def held(self, key: K) -> int:
        """How many ``key`` holds."""
        return self._held.get(key, 0)

    def take(self, key: K) -> bool:
        """One more for ``key``; False (nothing taken) if it holds ``cap`` already."""
        held = self._held.get(key, 0)
        if held >= self.cap:
            return False
        self._held[key] = held + 1
        return True

    def give(self, key: K) -> None:
        """Give back one that :meth:`take` took for ``key``."""
        left = self._held.get(key, 1) - 1
        if left > 0:
            self._held[key] = left
        else:
            self._held.pop(key, None)
