"""The store interface's retention and erasure part (:class:`ErasureStore`, :mod:`._erasure`);
:class:`.base.Store` includes it."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ..model import RevocationEvent
from .base import SpentNonce

__all__ = ["AccountErased", "ErasureStore", "Swept", "erased_key_digest"]

#: The prefix of an erased key's digest (:func:`erased_key_digest`).
ERASED_KEY = b"licentia.v1.erased-key"


def erased_key_digest(public_key: bytes) -> bytes:
    """What the store keeps of each key of an erased account: SHA-256(``licentia.v1.erased-key``
    || 0x00 || key), so that a later call signed with it is refused as ACCOUNT_ERASED and the
    key never registers again, without the key itself staying in a table."""
    return hashlib.sha256(ERASED_KEY + b"\x00" + public_key).digest()


@dataclass(frozen=True, slots=True)
class Swept:
    """What one retention batch did."""

    #: Licences past their term whose money the batch closed (settled and refunded).
    closed: int = 0
    #: Licences whose personal fields it erased (their issued requests with them).
    licences: int = 0
    #: Declined, withdrawn, expired or failed requests whose personal fields it erased.
    requests: int = 0

    @property
    def total(self) -> int:
        """Every row the batch changed (0: nothing was left to do)."""
        return self.closed + self.licences + self.requests


@dataclass(frozen=True, slots=True)
class AccountErased:
    """What an account erasure did."""

    account: bytes
    erased_at: int
    #: The revocations of the account's live licences (cause ERASED), in order.
    revocations: tuple[RevocationEvent, ...]
    assets_erased: int
    #: The index of the erasure's own entry in the public log.
    log_index: int
    #: The tables whose rows about the account were deleted.
    erased: tuple[str, ...]


class ErasureStore(Protocol):
    """Retention and the erasure of a whole account (:mod:`._erasure`)."""

    def sweep_retention(self, now: int, keep_seconds: int, *, batch: int) -> Swept:
        """One bounded batch of retention, in one transaction (idempotent: run it until it
        does nothing). Closes the money of at most ``batch`` licences past their term, then
        erases the personal fields of at most ``batch`` finished licences (revoked or
        expired, money closed) and ``batch`` finished requests whose last money movement
        (or, with none, their end) is ``keep_seconds`` or more before ``now``."""
        ...

    def erase_account(
        self,
        account: bytes,
        now: int,
        evidence: bytes,
        *,
        nonces: Sequence[SpentNonce] = (),
    ) -> AccountErased:
        """Delete a holder's account in one transaction: revoke her live licences (cause
        ERASED, ``evidence`` logged with each), settle and close her licences' money, and,
        unless money is then owed to her (BALANCE_OWED, nothing changed), erase every row
        about her that :data:`._erasure.ERASED_WITH_ACCOUNT` names, erase her licences'
        personal fields, keep a digest of each of her keys (:func:`erased_key_digest`) and
        log the erasure. NOT_FOUND when she has no holder account."""
        ...

    def key_erased(self, public_key: bytes) -> bool:
        """Whether ``public_key`` was a key of an account since erased."""
        ...
