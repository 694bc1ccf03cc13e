"""Ids the exchange makes for licences and requests."""

from __future__ import annotations

import secrets
import time

__all__ = ["ID_TIME_BYTES", "new_id"]

#: Bytes of an id's time prefix (:func:`new_id`): milliseconds since the epoch.
ID_TIME_BYTES = 6


def new_id(size: int = 16, at_ms: int | None = None) -> bytes:
    """A new licence or request id of ``size`` bytes: the time in milliseconds (6 bytes,
    big-endian: ``at_ms``, by default now), then random bytes (80 bits in 16 bytes), so
    that it is unguessable and unique as before, and ids made one after another sort by
    when they were made. The store's indexes keyed by these ids (the licence, its request,
    asset, money, escrow account and log entry) then grow at one end: with random ids,
    each issuance landed on a random page of each, and on a store of a million licences
    wrote and read ~10 more pages (docs/performance.md, "Growth")."""
    ms = time.time_ns() // 1_000_000 if at_ms is None else at_ms
    return ms.to_bytes(ID_TIME_BYTES, "big") + secrets.token_bytes(size - ID_TIME_BYTES)
