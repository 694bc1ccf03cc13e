"""The store interface's part for the exchange's own keys and its issuer keys
(:class:`KeysStore`, :mod:`._keys`); :class:`.base.Store` includes it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from ..model import IssuerKeyRow
from .base import SpentNonce

__all__ = ["KeysStore"]


class KeysStore(Protocol):
    """The exchange's own keys and its issuer keys (:mod:`._keys`)."""

    def exchange_keys(self) -> dict[str, bytes]:
        """The exchange's public keys as recorded by its first start, by name (``operator``,
        ``log``): every replica must run with exactly these. Empty before the first start
        (and on a read-only store whose database predates the record)."""
        ...

    def record_exchange_keys(self, keys: Mapping[str, bytes], now: int) -> dict[str, bytes]:
        """Record the keys of ``keys`` whose name has no record yet (the first start's; on a
        store that predates the record, the first start's after the upgrade), in one change;
        returns every record after it. A name already recorded keeps its first key: of two
        replicas starting at once with different keys, one finds the other's."""
        ...

    def exchange_secret(self, name: str) -> bytes:
        """The exchange's secret ``name`` (32 random bytes), made at its first use and kept
        in the store, so that every replica sharing it, and every restart, has the same one
        (the secret of the advertisers' references: ``offer_refs``). On a read-only store
        that has none yet: UNAVAILABLE."""
        ...

    # -- issuer keys ---------------------------------------------------------------------
    def issuer_keys(self) -> list[IssuerKeyRow]:
        """Every published issuer key, oldest first."""
        ...

    def rotate_issuer_key(self, new: IssuerKeyRow, *, nonces: Sequence[SpentNonce] = ()) -> None:
        """Publish ``new`` as the current key, ending the current one's window at its start."""
        ...

    def withdraw_issuer_key(
        self, key_id: bytes, now: int = 0, *, nonces: Sequence[SpentNonce] = ()
    ) -> bool:
        """Unpublish a key (compromise): what it signed stops verifying. False if unknown."""
        ...
