"""The store interface's accounts part (:class:`AccountsStore`): key sets, pairings and the
consents a key gave (:mod:`._accounts`); :class:`.base.Store` includes it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from licentia.v1 import accounts_pb2

from ..model import KeyRow, KeySetChanged, KeySetState, LicenceRow, Party
from .base import SpentNonce

Nonces = Sequence[SpentNonce]
SignedChange = accounts_pb2.SignedKeySetChange


class AccountsStore(Protocol):
    """Accounts' key sets, pairings and the consents a key gave (:mod:`._accounts`)."""

    def key_owner(self, public_key: bytes) -> tuple[Party, KeyRow] | None:
        """The party whose account ``public_key`` is (or was) a key of, and the key."""
        ...

    def account_log(self, account: bytes) -> tuple[bytes, int]:
        """The account's log key and how many log entries are about it (a key is made for
        an account with none yet; the log part keeps them: :mod:`._log`)."""
        ...

    def device_keys(self, accounts: Sequence[bytes]) -> dict[bytes, list[bytes]]:
        """The current device keys of each of ``accounts`` (at most 1000 accounts)."""
        ...

    def key_set(self, account: bytes) -> KeySetState:
        """An account's key set, keys and chain, read in one snapshot."""
        ...

    def change_key_set(
        self,
        account: bytes,
        signed: SignedChange,
        now: int,
        evidence: bytes,
        *,
        nonces: Nonces = (),
    ) -> KeySetChanged:
        """Apply, store and log one signed change of ``account``'s set (the next of its
        chain, else KEY_SET_CONFLICT; refusals as :func:`licentia.keyset.apply_change`),
        recording the keys that join and leave and revoking the live licences bound to a
        licensee key that leaves as compromised, all in one transaction."""
        ...

    def start_pairing(
        self, code: str, account: bytes, expires_at: int, now: int, *, nonces: Nonces = ()
    ) -> None:
        """Open a pairing under ``code``; ALREADY_EXISTS if the code is taken."""
        ...

    def pairing(self, code: str, now: int) -> tuple[bytes, int, bytes | None] | None:
        """``(account, expires_at, joined key)`` of a pairing still open at ``now``."""
        ...

    def join_pairing(
        self, code: str, key: bytes, now: int, *, nonces: Nonces = ()
    ) -> tuple[bytes, int]:
        """Record the joining key on an open pairing; ``(account, expires_at)``."""
        ...

    def seal_pairing(
        self,
        code: str,
        account: bytes,
        joined: bytes,
        sealed: bytes,
        keep_until: int,
        now: int,
        *,
        nonces: Nonces = (),
    ) -> int:
        """Leave the sealed holder secret on ``account``'s pairing whose joined key (now in
        the account) is ``joined``; it lasts until ``keep_until`` at least; its end."""
        ...

    def pairing_secret(self, code: str, now: int) -> bytes | None:
        """The sealed holder secret left on the open pairing ``code``, if any."""
        ...

    def pseudonym(self, key: bytes) -> tuple[bytes, bytes] | None:
        """``(account, licensee account)`` of the pseudonym ``key``, if it is one."""
        ...

    def consents_of(
        self, account: bytes, key: bytes, since: int, now: int, limit: int
    ) -> list[LicenceRow]:
        """Live licences of holder ``account`` whose consent ``key`` gave since ``since``."""
        ...
