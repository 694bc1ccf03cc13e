"""Retention and the erasure of a whole account (part of :class:`.common.SqlStore`).

Retention (:meth:`ErasurePart.sweep_retention`) erases, once the operator's retention
period has passed since the last money movement, the personal fields of finished requests
and licences, keeping what the ledger, the status list and each party's own listings need.
Erasure (:meth:`ErasurePart.erase_account`) deletes a holder's account at her signed
request. What each keeps and erases, field by field: docs/operations.md, "Retention" and
"Deleting an account".
"""

from __future__ import annotations

from collections.abc import Sequence

from licentia.errors import LicentiaError, Reason
from licentia.v1 import transparency_pb2

from .. import ledger
from ..model import Cause, RequestState, Role
from ._licences import LicencesPart
from ._reserves import ReservesPart
from ._sql import Conn
from .base import SpentNonce
from .base_erasure import AccountErased, Swept, erased_key_digest

__all__ = ["ERASED_WITH_ACCOUNT", "KEPT_AFTER_ERASURE", "ErasurePart"]

#: Every table that holds rows about a holder's account, and the column naming the account:
#: :meth:`ErasurePart.erase_account` deletes each one's rows, in this order (``parties``
#: last). THE one list of what deleting an account erases: a table added about accounts
#: (pseudonyms, per-account log keys, …) is one line here.
ERASED_WITH_ACCOUNT: tuple[tuple[str, str], ...] = (
    ("assets", "holder_key"),
    ("terms", "holder_key"),
    ("standing_rules", "holder_key"),
    ("requests", "holder_key"),
    ("licence_assets", "holder_key"),
    ("accesses", "holder_key"),
    ("payout_destinations", "holder_key"),
    ("pairings", "account"),
    ("key_set_changes", "account"),
    ("account_keys", "account"),
    ("account_logs", "account"),
    ("pseudonyms", "account"),
    ("parties", "key"),
)

#: What an account erasure keeps, and why (stated in its signed receipt).
KEPT_AFTER_ERASURE: tuple[str, ...] = (
    "ledger postings, entries and balances naming the account (bookkeeping law)",
    "each licence's id, accounts, times, uses and status index (the ledger and status list)",
    "the public log's entries (append-only; their leaves are in signed checkpoints)",
    "a digest of each of the account's keys (so that they never authenticate again)",
)

_ISSUED = int(RequestState.ISSUED)
_PENDING = int(RequestState.PENDING)


class ErasurePart(LicencesPart, ReservesPart):
    """Retention sweeps and account erasure."""

    @staticmethod
    def _strip_licence(c: Conn, licence_id: bytes, request_id: bytes) -> int:
        """Erase one licence's personal fields (its token, the consenting and presenting
        keys, its asset digests, the fetches of its assets) and its request's (claims,
        note, reason); 1 if it still had them."""
        done = c.execute(
            "UPDATE licences SET token = '', consent_key = ?, licensee_device = ?,"
            " asset_digests = ?, consent_device = ? WHERE licence_id = ? AND token != ''",
            (b"", b"", b"", b"", licence_id),
        ).rowcount
        c.execute("DELETE FROM licence_assets WHERE licence_id = ?", (licence_id,))
        c.execute("DELETE FROM accesses WHERE licence_id = ?", (licence_id,))
        c.execute(
            "UPDATE requests SET claims = ?, message = '', reason = '' WHERE request_id = ?",
            (b"", request_id),
        )
        return int(done > 0)

    def sweep_retention(self, now: int, keep_seconds: int, *, batch: int) -> Swept:
        """One bounded batch of retention, in one transaction (idempotent)."""
        cutoff = now - keep_seconds

        def change(c: Conn) -> Swept:
            closed = 0
            # Licences past their term whose money nobody settled yet: close it now (pay the
            # term, refund the uses never made), so that its retention period can start.
            for (lid,) in c.execute(
                "SELECT licence_id FROM licence_money WHERE closed = 0 AND not_after <= ? LIMIT ?",
                (now, batch),
            ).fetchall():
                self._hold(c, b"licence", lid)
                self._settle(c, lid, now, close=True)
                found = self._money(c, lid)
                closed += int(found is not None and found[1].closed)  # only what it did
            licences = 0
            for lid, rid in c.execute(
                "SELECT l.licence_id, l.request_id FROM licences l WHERE l.token != ''"
                " AND (l.revoked_at != 0 OR l.not_after <= ?)"
                " AND (CASE WHEN l.revoked_at != 0 THEN l.revoked_at ELSE l.not_after END) <= ?"
                " AND NOT EXISTS (SELECT 1 FROM licence_money m"
                "  WHERE m.licence_id = l.licence_id AND m.closed = 0)"
                " AND NOT EXISTS (SELECT 1 FROM postings p"
                "  WHERE p.licence_id = l.licence_id AND p.at > ?)"
                " LIMIT ?",
                (now, cutoff, cutoff, batch),
            ).fetchall():
                self._hold(c, b"licence", lid)
                licences += self._strip_licence(c, lid, rid)
            requests = 0
            for (rid,) in c.execute(
                "SELECT request_id FROM requests WHERE state != ? AND length(claims) > 0"
                " AND ((state != ? AND updated_at <= ?) OR (state = ? AND expires_at <= ?))"
                " LIMIT ?",
                (_ISSUED, _PENDING, cutoff, _PENDING, cutoff, batch),
            ).fetchall():
                self._hold(c, b"request", rid)
                requests += c.execute(
                    "UPDATE requests SET claims = ?, message = '', reason = '',"
                    " state = CASE WHEN state = ? THEN ? ELSE state END,"
                    " updated_at = CASE WHEN state = ? THEN expires_at ELSE updated_at END"
                    " WHERE request_id = ? AND state != ? AND length(claims) > 0",
                    (
                        b"",
                        _PENDING,
                        int(RequestState.EXPIRED),
                        _PENDING,
                        rid,
                        _ISSUED,
                    ),
                ).rowcount
                self._release_sent(c, rid)  # an expired request reserves nothing
            return Swept(closed, licences, requests)

        return self._transact(change)

    def erase_account(
        self,
        account: bytes,
        now: int,
        evidence: bytes,
        *,
        nonces: Sequence[SpentNonce] = (),
    ) -> AccountErased:
        """Delete a holder's account in one transaction (:class:`.base_erasure.ErasureStore`)."""
        holder = ledger.Account.holder(account)

        def change(c: Conn) -> AccountErased:
            # Issuances, payouts and key-set changes of this account wait for the erasure.
            self._hold(c, b"holder", account)
            self._hold(c, b"account", ledger.HOLDER.encode(), account)
            role = c.execute("SELECT role FROM parties WHERE key = ?", (account,)).fetchone()
            if role is None or role[0] != int(Role.HOLDER):
                raise LicentiaError(Reason.NOT_FOUND, "no such holder account")
            before = self._balance(c, holder)
            live = c.execute(
                f"SELECT {self._LIC} FROM licences WHERE holder_key = ? AND revoked_at = 0"
                " AND not_after > ? ORDER BY issued_at",
                (account, now),
            ).fetchall()
            events = self._revoke_rows(c, live, now, Cause.ERASED, evidence)
            for (lid,) in c.execute(
                "SELECT licence_id FROM licence_money WHERE holder_key = ? AND closed = 0",
                (account,),
            ).fetchall():
                self._hold(c, b"licence", lid)
                self._settle(c, lid, now, close=True)
            owed = self._balance(c, holder)
            if owed > 0:  # raised inside the change: everything above is rolled back
                earned = owed - before
                raise LicentiaError(
                    Reason.BALANCE_OWED,
                    f"{owed} minor units are owed to you"
                    + (f" ({earned} of them earned by your live licences so far)" if earned else "")
                    + ": revoke your live licences (erase your assets), withdraw your whole"
                    " balance, then delete the account; nothing was changed",
                )
            counted = c.execute("SELECT count(*) FROM assets WHERE holder_key = ?", (account,))
            assets = int(counted.fetchone()[0])
            # The log's rows no longer say which of its entries were hers (her sealed
            # entries keep their leaves; their log key goes below): not even the exchange
            # can find them again.
            c.execute(
                "UPDATE log_entries SET licence_id = ? WHERE licence_id = ? OR licence_id IN"
                " (SELECT licence_id FROM licences WHERE holder_key = ?)",
                (b"", account, account),
            )
            for lid, rid in c.execute(
                "SELECT licence_id, request_id FROM licences WHERE holder_key = ?", (account,)
            ).fetchall():
                self._strip_licence(c, lid, rid)
            for (key,) in c.execute(
                "SELECT public_key FROM account_keys WHERE account = ?", (account,)
            ).fetchall():
                c.execute(
                    "INSERT INTO erased_keys VALUES (?, ?) ON CONFLICT DO NOTHING",
                    (erased_key_digest(bytes(key)), now),
                )
            entry = transparency_pb2.LogEntry(
                account_erasure=transparency_pb2.LoggedAccountErasure(
                    erased_at=now, request=transparency_pb2.SignedCall.FromString(evidence)
                )
            )
            # Sealed to her account like every entry about it; her log key is then erased
            # with the account, so nobody can ever open her entries again.
            index = self._log_sealed(c, account, entry, now, "account_erasure", b"")
            for (rid,) in c.execute(  # her pending requests go: their funds are free
                "SELECT request_id FROM requests WHERE holder_key = ? AND state = ?",
                (account, _PENDING),
            ).fetchall():
                self._release_sent(c, rid)
            for table, column in ERASED_WITH_ACCOUNT:
                c.execute(f"DELETE FROM {table} WHERE {column} = ?", (account,))
            return AccountErased(
                account,
                now,
                tuple(events),
                assets,
                index,
                tuple(table for table, _ in ERASED_WITH_ACCOUNT),
            )

        return self._transact(change, nonces)

    def key_erased(self, public_key: bytes) -> bool:
        """Whether ``public_key`` was a key of an account since erased."""
        return self._row(self._ERASED_KEY, (erased_key_digest(public_key),)) is not None
