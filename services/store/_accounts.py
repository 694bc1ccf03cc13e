"""Accounts and their key sets: every key's account, the chain of signed changes, pairings,
and the consents a key gave (part of :class:`.common.SqlStore`).

A change of a key set is applied in one transaction with everything it implies: the change
is checked against the set the chain ends with (:func:`licentia.keyset.apply_change`, under
the account's lock), stored, appended to the public log, the keys that join and leave are
recorded, and every live licence bound to a licensee key that leaves as compromised is
revoked (its bit set on the revocation feed, its unused escrow refunded).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from licentia import keyset
from licentia.errors import LicentiaError, Reason
from licentia.keyset import KeySet
from licentia.v1 import accounts_pb2, transparency_pb2

from ..model import Cause, KeyRow, KeySetChanged, KeySetState, LicenceRow, Party, RevocationEvent
from ._licences import LicencesPart
from ._parties import PartiesPart
from ._sql import Conn
from .base import SpentNonce


class AccountsPart(LicencesPart):
    """Key sets, pairings and consents."""

    _KEY = "public_key, account, role, name, added_seq, added_at, removed_seq, removed_at, cause"

    @staticmethod
    def _key(r: Sequence[Any]) -> KeyRow:
        return KeyRow(bytes(r[0]), bytes(r[1]), *r[2:9])

    def key_owner(self, public_key: bytes) -> tuple[Party, KeyRow] | None:
        """The party whose account ``public_key`` is (or was) a key of, and the key."""
        r = self._row(
            f"SELECT {', '.join('k.' + x.strip() for x in self._KEY.split(','))},"
            " p.key, p.role, p.handle, p.display_name, p.country, p.registered_at,"
            " p.objecting, p.show_name FROM account_keys k JOIN parties p ON p.key = k.account"
            " WHERE k.public_key = ?",
            (public_key,),
        )
        if r is None:
            return None
        return PartiesPart._party(r[9:]), self._key(r[:9])

    def _state(self, c: Conn, account: bytes) -> KeySetState:
        changes = tuple(
            bytes(r[0])
            for r in c.execute(
                "SELECT change FROM key_set_changes WHERE account = ? ORDER BY sequence",
                (account,),
            ).fetchall()
        )
        rows = tuple(
            self._key(r)
            for r in c.execute(
                f"SELECT {self._KEY} FROM account_keys WHERE account = ?"
                " ORDER BY added_seq, public_key",
                (account,),
            ).fetchall()
        )
        return KeySetState(self._after(account, changes[-1] if changes else None), rows, changes)

    @staticmethod
    def _after(account: bytes, last: bytes | None) -> KeySet:
        """The set after the chain's ``last`` change (serialized), or the genesis."""
        if last is None:
            return keyset.genesis(account)
        return keyset.stated_by(accounts_pb2.SignedKeySetChange.FromString(last))

    def _current(self, c: Conn, account: bytes) -> KeySet:
        """The set ``account``'s chain ends with (its last change alone is read)."""
        r = c.execute(
            "SELECT change FROM key_set_changes WHERE account = ? ORDER BY sequence DESC LIMIT 1",
            (account,),
        ).fetchone()
        return self._after(account, bytes(r[0]) if r is not None else None)

    def key_set(self, account: bytes) -> KeySetState:
        """An account's key set, keys and chain, read in one snapshot."""
        with self._snapshot() as c:
            return self._state(c, account)

    def change_key_set(
        self,
        account: bytes,
        signed: accounts_pb2.SignedKeySetChange,
        now: int,
        evidence: bytes,
        *,
        nonces: Sequence[SpentNonce] = (),
    ) -> KeySetChanged:
        """Apply one signed change to ``account``'s set (the next of its chain, or
        KEY_SET_CONFLICT), log it, record its keys, and revoke the live licences bound to a
        licensee key it removes as compromised (``evidence``: the signed call, logged with
        each revocation). A key already in any account (or ever was) cannot join:
        KEY_SET_INVALID."""

        def change(c: Conn) -> KeySetChanged:
            self._hold(c, b"key-set", account)
            self._alive(c, account)
            before = self._current(c, account)
            parsed = keyset.decode_change(signed)
            after = keyset.apply_decoded(before, parsed)
            seq = after.sequence
            try:
                c.execute(
                    "INSERT INTO key_set_changes (account, sequence, change, at)"
                    " VALUES (?, ?, ?, ?)",
                    (account, seq, signed.SerializeToString(deterministic=True), now),
                )
            except self._INTEGRITY:
                raise LicentiaError(
                    Reason.KEY_SET_CONFLICT, "another change of this key set came first"
                ) from None
            old = {k.public for k in before.keys}
            for k in after.keys:
                if k.public in old:
                    continue
                taken = c.execute(
                    "SELECT 1 FROM account_keys WHERE public_key = ?"
                    " UNION ALL SELECT 1 FROM pseudonyms WHERE key = ?",
                    (k.public, k.public),
                ).fetchone()
                if taken:
                    raise LicentiaError(
                        Reason.KEY_SET_INVALID,
                        "that key belongs (or belonged) to an account, or is a pseudonym: a"
                        " key serves one account, once",
                    )
                c.execute(
                    f"INSERT INTO account_keys ({self._KEY}) VALUES (?, ?, ?, ?, ?, ?, 0, 0, 0)",
                    (k.public, account, int(k.role), k.name, seq, now),
                )
            events: list[RevocationEvent] = []
            for k in keyset.removed_by(before, after):
                c.execute(
                    "UPDATE account_keys SET removed_seq = ?, removed_at = ?, cause = ?"
                    " WHERE public_key = ?",
                    (seq, now, int(parsed.change.cause), k.public),
                )
                if parsed.change.cause == keyset.COMPROMISED:
                    events.extend(self._revoke_bound_to(c, k.public, now, evidence))
            self._log_sealed(
                c,
                account,
                transparency_pb2.LogEntry(key_set_change=signed),
                now,
                "key_set",
                account,
            )
            return KeySetChanged(self._state(c, account), tuple(events))

        return self._transact(change, nonces)

    def _revoke_bound_to(
        self, c: Conn, licensee_device: bytes, now: int, evidence: bytes
    ) -> list[RevocationEvent]:
        rows = c.execute(
            f"SELECT {self._LIC} FROM licences WHERE licensee_device = ? AND revoked_at = 0"
            " AND not_after > ?",
            (licensee_device, now),
        ).fetchall()
        return self._revoke_rows(c, rows, now, Cause.LICENSEE_KEY_COMPROMISED, evidence)

    def device_keys(self, accounts: Sequence[bytes]) -> dict[bytes, list[bytes]]:
        """The current device keys of each of ``accounts`` (at most 1000 accounts)."""
        out: dict[bytes, list[bytes]] = {}
        if not accounts:
            return out
        marks = ", ".join("?" * len(accounts))
        for account, key in self._rows(
            f"SELECT account, public_key FROM account_keys WHERE account IN ({marks})"
            " AND removed_at = 0 AND role = 1 ORDER BY account, added_seq, public_key",
            list(accounts),
        ):
            out.setdefault(bytes(account), []).append(bytes(key))
        return out

    def pseudonym(self, key: bytes) -> tuple[bytes, bytes] | None:
        """``(account, licensee account)`` of the pseudonym ``key``, if it is one."""
        r = self._row("SELECT account, licensee_account FROM pseudonyms WHERE key = ?", (key,))
        return (bytes(r[0]), bytes(r[1])) if r is not None else None

    # -- pairings --------------------------------------------------------------------------
    def start_pairing(
        self,
        code: str,
        account: bytes,
        expires_at: int,
        now: int,
        *,
        nonces: Sequence[SpentNonce] = (),
    ) -> None:
        """Open a pairing under ``code`` (sweeping the expired ones); ALREADY_EXISTS if the
        code is taken."""

        def change(c: Conn) -> None:
            c.execute("DELETE FROM pairings WHERE expires_at <= ?", (now,))
            try:
                c.execute(
                    "INSERT INTO pairings (code, account, expires_at, joined)"
                    " VALUES (?, ?, ?, NULL)",
                    (code, account, expires_at),
                )
            except self._INTEGRITY:
                raise LicentiaError(Reason.ALREADY_EXISTS, "that code is in use") from None

        self._transact(change, nonces)

    def pairing(self, code: str, now: int) -> tuple[bytes, int, bytes | None] | None:
        """``(account, expires_at, joined key)`` of a pairing still open at ``now``."""
        r = self._row(
            "SELECT account, expires_at, joined FROM pairings WHERE code = ? AND expires_at > ?",
            (code, now),
        )
        if r is None:
            return None
        return bytes(r[0]), int(r[1]), bytes(r[2]) if r[2] is not None else None

    def join_pairing(
        self, code: str, key: bytes, now: int, *, nonces: Sequence[SpentNonce] = ()
    ) -> tuple[bytes, int]:
        """Record the joining key (a serialized AccountKey) on an open pairing that none has
        joined; ``(account, expires_at)``. NOT_FOUND for an unknown or expired code,
        ALREADY_EXISTS when another key joined first (the same key again is a retry)."""

        def change(c: Conn) -> tuple[bytes, int]:
            r = c.execute(
                "SELECT account, expires_at, joined FROM pairings"
                " WHERE code = ? AND expires_at > ?",
                (code, now),
            ).fetchone()
            if r is None:
                raise LicentiaError(Reason.NOT_FOUND, "no such pairing code (or it has expired)")
            if r[2] is not None and bytes(r[2]) != key:
                raise LicentiaError(Reason.ALREADY_EXISTS, "another device joined this pairing")
            c.execute("UPDATE pairings SET joined = ? WHERE code = ?", (key, code))
            return bytes(r[0]), int(r[1])

        return self._transact(change, nonces)

    def seal_pairing(
        self,
        code: str,
        account: bytes,
        joined: bytes,
        sealed: bytes,
        keep_until: int,
        now: int,
        *,
        nonces: Sequence[SpentNonce] = (),
    ) -> int:
        """Leave ``sealed`` (the holder secret sealed to the joined key) on ``account``'s open
        pairing ``code`` whose joined key (a serialized AccountKey) is ``joined`` and is now a
        current key of ``account``; the pairing then lasts until ``keep_until`` at least, for
        the joined device to fetch it. Its end is returned. NOT_FOUND for another account's,
        an expired or an unjoined pairing, and while the joined key is not (or no longer) in
        the account."""

        def change(c: Conn) -> int:
            r = c.execute(
                "SELECT account, expires_at, joined FROM pairings"
                " WHERE code = ? AND expires_at > ?",
                (code, now),
            ).fetchone()
            if r is None or bytes(r[0]) != account or r[2] is None or bytes(r[2]) != joined:
                raise LicentiaError(Reason.NOT_FOUND, "no such pairing code (or it has expired)")
            public = accounts_pb2.AccountKey.FromString(joined).public_key
            k = c.execute(
                "SELECT account, removed_at FROM account_keys WHERE public_key = ?", (public,)
            ).fetchone()
            if k is None or bytes(k[0]) != account or k[1]:
                raise LicentiaError(
                    Reason.NOT_FOUND,
                    "the device that joined is not in the account: approve it first",
                )
            ends = max(int(r[1]), keep_until)
            c.execute(
                "UPDATE pairings SET sealed = ?, expires_at = ? WHERE code = ?",
                (sealed, ends, code),
            )
            return ends

        return self._transact(change, nonces)

    def pairing_secret(self, code: str, now: int) -> bytes | None:
        """The sealed holder secret left on the open pairing ``code``, if any."""
        r = self._row("SELECT sealed FROM pairings WHERE code = ? AND expires_at > ?", (code, now))
        return bytes(r[0]) if r is not None and r[0] is not None else None

    # -- consents --------------------------------------------------------------------------
    def consents_of(
        self, account: bytes, key: bytes, since: int, now: int, limit: int
    ) -> list[LicenceRow]:
        """Live licences of holder ``account`` whose consent ``key`` gave (it signed them, or
        approved them under a pseudonym), issued at or after ``since``, newest first (at
        most ``limit``)."""
        rows = self._rows(
            f"SELECT {self._LIC} FROM licences WHERE holder_key = ?"
            " AND (consent_key = ? OR consent_device = ?)"
            " AND revoked_at = 0 AND not_after > ? AND issued_at >= ?"
            " ORDER BY issued_at DESC, licence_id LIMIT ?",
            (account, key, key, now, since, limit),
        )
        return [self._licence(r) for r in rows]
