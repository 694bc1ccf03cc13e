"""The exchange's own keys and its published issuer keys (part of :class:`.common.SqlStore`)."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence

from licentia.errors import LicentiaError, Reason
from licentia.v1 import transparency_pb2

from ..model import (
    IssuerKeyRow,
)
from ._log import LogPart
from ._sql import Conn
from .base import SpentNonce


class KeysPart(LogPart):
    """The exchange's keys and issuer keys, each change logged."""

    # -- the exchange's own keys -----------------------------------------------------------
    def exchange_keys(self) -> dict[str, bytes]:
        """The exchange's public keys as recorded by its first start, by name."""
        if self.read_only and not self._has_table("exchange_keys"):
            return {}  # a follower's store that its primary has not migrated yet
        rows = self._rows("SELECT name, public_key FROM exchange_keys")
        return {str(name): bytes(key) for name, key in rows}

    def record_exchange_keys(self, keys: Mapping[str, bytes], now: int) -> dict[str, bytes]:
        """Record the keys of ``keys`` whose name has no record yet; every record after."""

        def change(c: Conn) -> dict[str, bytes]:
            self._hold(c, b"exchange_keys")
            for name, key in sorted(keys.items()):
                c.execute(
                    "INSERT INTO exchange_keys VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING",
                    (name, key, now),
                )
            rows = c.execute("SELECT name, public_key FROM exchange_keys").fetchall()
            return {str(name): bytes(key) for name, key in rows}

        return self._transact(change)

    def exchange_secret(self, name: str) -> bytes:
        """The exchange's secret ``name``, made (32 random bytes) at its first use; of two
        replicas making it at once, both keep the first one committed."""
        if self.read_only:
            r = self._row("SELECT secret FROM exchange_secrets WHERE name = ?", (name,))
            if r is None:
                raise LicentiaError(Reason.UNAVAILABLE, "the exchange is not set up yet")
            return bytes(r[0])
        made = secrets.token_bytes(32)

        def change(c: Conn) -> bytes:
            c.execute(
                "INSERT INTO exchange_secrets (name, secret) VALUES (?, ?)"
                " ON CONFLICT (name) DO NOTHING",
                (name, made),
            )
            r = c.execute("SELECT secret FROM exchange_secrets WHERE name = ?", (name,)).fetchone()
            return bytes(r[0])

        return self._transact(change)

    # -- issuer keys ---------------------------------------------------------------------
    def issuer_keys(self) -> list[IssuerKeyRow]:
        """Every published issuer key, oldest first."""
        rows = self._rows(
            "SELECT key_id, public_key, not_before, not_after FROM issuer_keys"
            " ORDER BY not_before, rowid"
        )
        return [IssuerKeyRow(*r) for r in rows]

    def withdraw_issuer_key(
        self, key_id: bytes, now: int = 0, *, nonces: Sequence[SpentNonce] = ()
    ) -> bool:
        """Unpublish a key (compromise): what it signed stops verifying. False if unknown."""

        def change(c: Conn) -> bool:
            r = c.execute(
                "DELETE FROM issuer_keys WHERE key_id = ?"
                " RETURNING key_id, public_key, not_before, not_after",
                (key_id,),
            ).fetchone()
            if r is None:
                return False
            self._log_key(c, IssuerKeyRow(*r), now, withdrawn=True)
            return True

        return self._transact(change, nonces)

    def _log_key(self, c: Conn, key: IssuerKeyRow, now: int, *, withdrawn: bool = False) -> None:
        self._log(
            c,
            transparency_pb2.LogEntry(
                issuer_key=transparency_pb2.LoggedIssuerKey(
                    key_id=key.key_id,
                    public_key=key.public_key,
                    not_before=key.not_before,
                    not_after=key.not_after,
                    withdrawn=withdrawn,
                )
            ),
            now,
            "issuer_key",
            b"",
        )

    def rotate_issuer_key(self, new: IssuerKeyRow, *, nonces: Sequence[SpentNonce] = ()) -> None:
        """Publish ``new`` as the current key, ending the current one's window at its start."""

        def change(c: Conn) -> None:
            self._hold(c, b"issuer_keys")
            for r in c.execute(
                "UPDATE issuer_keys SET not_after = ? WHERE not_after = 0"
                " RETURNING key_id, public_key, not_before, not_after",
                (new.not_before,),
            ).fetchall():
                self._log_key(c, IssuerKeyRow(*r), new.not_before)
            c.execute(
                "INSERT INTO issuer_keys VALUES (?, ?, ?, ?)",
                (new.key_id, new.public_key, new.not_before, new.not_after),
            )
            self._log_key(c, new, new.not_before)

        self._transact(change, nonces)
