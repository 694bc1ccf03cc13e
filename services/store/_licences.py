"""Licences and their status: reads, revocation and erasure, use counts, accesses and the
status list (part of :class:`.common.SqlStore`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, cast

from licentia.errors import LicentiaError, Reason
from licentia.v1 import transparency_pb2

from .. import ledger
from ..model import (
    Access,
    Cause,
    LicenceRow,
    RevocationEvent,
)
from ._ledger import LedgerPart
from ._log import LogPart
from ._sql import Conn, _check_digest
from .base import SpentNonce


class LicencesPart(LedgerPart, LogPart):
    """Licences, revocations, uses, accesses and the status list."""

    # -- licences ------------------------------------------------------------------------
    _LIC = (
        "licence_id, request_id, token, holder_key, licensee_key, issued_at, not_before,"
        " not_after, status_index, max_uses, uses, exclusive, revoked_at, consent_key,"
        " licensee_device, asset_digests, consent_device, status_list"
    )
    _LIC_SLOTS = ", ".join("?" * len(_LIC.split(",")))

    @staticmethod
    def _licence(r: Sequence[Any]) -> LicenceRow:
        return LicenceRow(
            licence_id=r[0],
            request_id=r[1],
            token=r[2],
            holder_key=r[3],
            licensee_key=r[4],
            issued_at=r[5],
            not_before=r[6],
            not_after=r[7],
            status_index=r[8],
            max_uses=r[9],
            uses=r[10],
            exclusive=bool(r[11]),
            revoked_at=r[12],
            consent_key=r[13],
            licensee_device=r[14],
            asset_digests=bytes(r[15]),
            consent_device=r[16],
            status_list=r[17],
        )

    @staticmethod
    def _licence_values(x: LicenceRow) -> tuple[Any, ...]:
        return (
            x.licence_id,
            x.request_id,
            x.token,
            x.holder_key,
            x.licensee_key,
            x.issued_at,
            x.not_before,
            x.not_after,
            x.status_index,
            x.max_uses,
            x.uses,
            int(x.exclusive),
            x.revoked_at,
            x.consent_key or x.holder_key,
            x.licensee_device or x.licensee_key,
            x.asset_digests,
            x.consent_device,
            x.status_list,
        )

    def licence(self, licence_id: bytes) -> LicenceRow | None:
        """One licence."""
        r = self._row(f"SELECT {self._LIC} FROM licences WHERE licence_id = ?", (licence_id,))
        return self._licence(r) if r else None

    def licence_uses(self, licence_id: bytes) -> int:
        """The uses counted so far of one licence (0 for an unknown one)."""
        r = self._row("SELECT uses FROM licences WHERE licence_id = ?", (licence_id,))
        return int(r[0]) if r else 0

    def licences_of(self, party_key: bytes, *, before_issued: int, limit: int) -> list[LicenceRow]:
        """Licences where the party is holder or licensee, newest first."""
        rows = self._rows(
            f"SELECT {self._LIC} FROM licences WHERE (holder_key = ? OR licensee_key = ?)"
            " AND issued_at < ? ORDER BY issued_at DESC, rowid DESC LIMIT ?",
            (party_key, party_key, before_issued, limit),
        )
        return [self._licence(r) for r in rows]

    _EV = "sequence, status_index, licence_id, licensee_key, revoked_at, cause, status_list"

    @staticmethod
    def _event(r: Sequence[Any]) -> RevocationEvent:
        return RevocationEvent(r[0], r[1], r[2], r[3], r[4], Cause(r[5]), r[6])

    def _revoke_rows(
        self, c: Conn, rows: Sequence[Sequence[Any]], now: int, cause: Cause, evidence: bytes
    ) -> list[RevocationEvent]:
        """Inside a change: revoke each licence of ``rows`` (read live, columns ``_LIC``),
        but one another writer revoked meanwhile; the events, in order."""
        events = []
        for r in rows:
            lic = self._licence(r)
            if self._CONCURRENT_WRITERS:  # revoked meanwhile by another writer?
                self._hold(c, b"licence", lic.licence_id)
                again = c.execute(
                    "SELECT revoked_at FROM licences WHERE licence_id = ?", (lic.licence_id,)
                ).fetchone()
                if again[0]:
                    continue
            events.append(self._revoke(c, lic, now, cause, evidence))
        return events

    def _revoke(
        self, c: Conn, lic: LicenceRow, now: int, cause: Cause, evidence: bytes
    ) -> RevocationEvent:
        c.execute("UPDATE licences SET revoked_at = ? WHERE licence_id = ?", (now, lic.licence_id))
        # What was earned up to this second is paid; the rest goes back to the advertiser.
        self._settle(c, lic.licence_id, now, close=True)
        self._log_sealed(
            c,
            lic.holder_key,
            transparency_pb2.LogEntry(
                revocation=transparency_pb2.LoggedRevocation(
                    licence_id=lic.licence_id,
                    revoked_at=now,
                    cause=cast(Any, int(cause)),
                    request=transparency_pb2.SignedCall.FromString(evidence),
                )
            ),
            now,
            "revocation",
            lic.licence_id,
        )
        r = c.execute(
            f"INSERT INTO revocations ({self._EV}) VALUES (?, ?, ?, ?, ?, ?, ?)"
            f" RETURNING {self._EV}",
            (
                self._next_sequence(c),
                lic.status_index,
                lic.licence_id,
                lic.licensee_key,
                now,
                int(cause),
                lic.status_list,
            ),
        ).fetchone()
        event = self._event(r)
        self._announce(c, event)
        return event

    def revoke(
        self,
        licence_id: bytes,
        now: int,
        cause: Cause,
        evidence: bytes = b"",
        *,
        nonces: Sequence[SpentNonce] = (),
    ) -> tuple[LicenceRow, RevocationEvent]:
        """Revoke a licence (idempotent: a revoked licence returns its first revocation)."""

        def change(c: Conn) -> tuple[LicenceRow, RevocationEvent]:
            self._hold(c, b"licence", licence_id)
            r = c.execute(
                f"SELECT {self._LIC} FROM licences WHERE licence_id = ?", (licence_id,)
            ).fetchone()
            if r is None:
                raise LicentiaError(Reason.NOT_FOUND, "no such licence")
            lic = self._licence(r)
            if lic.revoked_at:
                ev = c.execute(
                    f"SELECT {self._EV} FROM revocations WHERE licence_id = ?", (licence_id,)
                ).fetchone()
                return lic, self._event(ev)
            event = self._revoke(c, lic, now, cause, evidence)
            return dataclasses.replace(lic, revoked_at=now), event

        return self._transact(change, nonces)

    def erase_assets(
        self,
        holder_key: bytes,
        digests: Sequence[bytes] | None,
        now: int,
        evidence: bytes = b"",
        *,
        nonces: Sequence[SpentNonce] = (),
    ) -> tuple[int, list[RevocationEvent]]:
        """Delete the holder's assets and revoke every live licence naming one of them."""

        def change(c: Conn) -> tuple[int, list[RevocationEvent]]:
            names = digests
            if names is None:
                names = [
                    r[0]
                    for r in c.execute(
                        "SELECT sha256 FROM assets WHERE holder_key = ?", (holder_key,)
                    )
                ]
            erased = 0
            events: list[RevocationEvent] = []
            for d in names:
                erased += c.execute(
                    "DELETE FROM assets WHERE holder_key = ? AND sha256 = ?", (holder_key, d)
                ).rowcount
                rows = c.execute(
                    f"SELECT {', '.join('l.' + x.strip() for x in self._LIC.split(','))}"
                    " FROM licences l JOIN licence_assets a ON a.licence_id = l.licence_id"
                    " WHERE a.holder_key = ? AND a.sha256 = ? AND l.revoked_at = 0"
                    " AND l.not_after > ?",
                    (holder_key, d, now),
                ).fetchall()
                events += self._revoke_rows(c, rows, now, Cause.ERASED, evidence)
            return erased, events

        return self._transact(change, nonces)

    def record_use(
        self,
        report_id: bytes,
        licence_id: bytes,
        platform_key: bytes,
        now: int,
        *,
        digest: bytes,
        nonces: Sequence[SpentNonce] = (),
    ) -> tuple[int, int]:
        """Count one use (idempotent by report id): ``(uses, recorded_at)``;
        IDEMPOTENCY_KEY_REUSED when the id was recorded with another digest."""
        _check_digest(digest)
        key = b"report\x00" + report_id

        def change(c: Conn) -> tuple[int, int]:
            self._hold(c, b"licence", licence_id)
            seen = c.execute(
                "SELECT licence_id, uses_after, recorded_at FROM use_reports WHERE report_id = ?",
                (report_id,),
            ).fetchone()
            if seen is not None:
                self._same_request(c, key, digest)
                if seen[0] != licence_id:
                    raise LicentiaError(
                        Reason.IDEMPOTENCY_KEY_REUSED, "report id used for another licence"
                    )
                return int(seen[1]), int(seen[2])
            r = c.execute(
                "UPDATE licences SET uses = uses + 1 WHERE licence_id = ?"
                " AND (max_uses = 0 OR uses < max_uses) RETURNING uses",
                (licence_id,),
            ).fetchone()
            if r is None:
                if self.licence_exists(c, licence_id):
                    raise LicentiaError(Reason.USES_EXHAUSTED, "every use has been counted")
                raise LicentiaError(Reason.NOT_FOUND, "no such licence")
            c.execute(
                "INSERT INTO use_reports VALUES (?, ?, ?, ?, ?)",
                (report_id, licence_id, platform_key, now, r[0]),
            )
            self._keep_digest(c, key, digest)
            found = self._money(c, licence_id)
            if found is not None:
                money, before = found
                charged, settled = ledger.charge_use(money, before, now)
                if charged is not None:
                    self._post(c, charged)
                self._save_settled(c, money, settled)
                self._add_pending(c, money.holder_key, self._pending_moved(money, before, settled))
            return int(r[0]), now

        return self._transact(change, nonces)

    def use_report(self, report_id: bytes, digest: bytes) -> tuple[bytes, int, int] | None:
        """A recorded use report: ``(licence_id, uses after it, recorded_at)``
        (IDEMPOTENCY_KEY_REUSED if it was recorded with another digest)."""
        _check_digest(digest)
        r = self._row(
            "SELECT licence_id, uses_after, recorded_at FROM use_reports WHERE report_id = ?",
            (report_id,),
        )
        if r is None:
            return None
        self._same_request(None, b"report\x00" + report_id, digest)
        return (r[0], int(r[1]), int(r[2]))

    @staticmethod
    def licence_exists(c: Conn, licence_id: bytes) -> bool:
        """True if the licence is stored (inside a transaction)."""
        return (
            c.execute("SELECT 1 FROM licences WHERE licence_id = ?", (licence_id,)).fetchone()
            is not None
        )

    def record_access(self, access: Access, *, nonces: Sequence[SpentNonce] = ()) -> None:
        """Record a licensee's fetch of an asset."""
        self._execute(
            "INSERT INTO accesses (holder_key, sha256, licence_id, licensee_key, accessed_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                access.holder_key,
                access.sha256,
                access.licence_id,
                access.licensee_key,
                access.accessed_at,
            ),
            nonces=nonces,
        )

    def accesses(self, holder_key: bytes, limit: int) -> list[Access]:
        """The holder's access log, newest first."""
        rows = self._rows(
            "SELECT holder_key, sha256, licence_id, licensee_key, accessed_at FROM accesses"
            " WHERE holder_key = ? ORDER BY id DESC LIMIT ?",
            (holder_key, limit),
        )
        return [Access(*r) for r in rows]

    # -- the status list -----------------------------------------------------------------
    def events_after(self, sequence: int, limit: int) -> list[RevocationEvent]:
        """Revocation events with a larger sequence number, in order."""
        rows = self._rows(
            f"SELECT {self._EV} FROM revocations WHERE sequence > ? ORDER BY sequence LIMIT ?",
            (sequence, limit),
        )
        return [self._event(r) for r in rows]

    _LIVE = "SELECT list_id, expires_at FROM status_lists WHERE expires_at >= ? ORDER BY list_id"

    def status_lists(self, live_since: int) -> list[tuple[int, int]]:
        """``(list id, expires_at)`` of every status list with ``expires_at >= live_since``
        (the live ones), by id."""
        return [(int(r[0]), int(r[1])) for r in self._rows(self._LIVE, (live_since,))]

    def status(self, live_since: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]], int]:
        """``(live lists, revoked slots, last sequence)`` now, one snapshot: the lists as
        :meth:`status_lists`, the ``(list, index)`` of every revoked licence of those lists
        (a dropped list's revocations are not read), and the last event's sequence."""
        with self._snapshot() as c:  # one read snapshot for the three reads
            lists = [(int(r[0]), int(r[1])) for r in c.execute(self._LIVE, (live_since,))]
            revoked = [
                (int(r[0]), int(r[1]))
                for r in c.execute(
                    "SELECT r.status_list, r.status_index FROM revocations r"
                    " JOIN status_lists s ON s.list_id = r.status_list WHERE s.expires_at >= ?",
                    (live_since,),
                )
            ]
            seq = c.execute("SELECT coalesce(max(sequence), 0) FROM revocations").fetchone()
        return lists, revoked, int(seq[0])
