"""The ledger: balances, postings, each licence's money and its settlement (part of
:class:`.common.SqlStore`); the postings themselves are decided by :mod:`..ledger`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from licentia.errors import LicentiaError, Reason

from .. import ledger
from ..model import (
    LedgerLine,
    PayoutDestination,
)
from ._sql import Conn, Cursor, SqlBase, _check_digest
from .base import SpentNonce


class LedgerPart(SqlBase):
    """Money: deposits, payouts, escrow, settlement, statements and the ledger's checks."""

    # -- money ---------------------------------------------------------------------------
    _BALANCE = "SELECT balance FROM balances WHERE account_kind = ? AND account_key = ?"

    @staticmethod
    def _balance(c: Conn, account: ledger.Account) -> int:
        r = c.execute(LedgerPart._BALANCE, (account.kind, account.key)).fetchone()
        return int(r[0]) if r else 0

    def _post(
        self,
        c: Conn,
        posting: ledger.Posting,
        idempotency: bytes | None = None,
        reference: str = "",
        sent: Cursor | None = None,
        debited: ledger.Account | None = None,
    ) -> int:
        """Write one posting (its row ``sent`` already, :meth:`_send_posting`) and move the
        balances it names (but ``debited``'s, moved already by :data:`_DEBIT_COVERED`); its
        id. The balances table refuses (CHECK) an internal account going negative, so a bug
        cannot overdraw."""
        sent = sent or self._send_posting(c, posting, idempotency, reference)
        pid = int(sent.fetchone()[0])
        debits: list[tuple[ledger.Entry, Cursor]] = []
        c.execute(  # its entries in one statement
            f"INSERT INTO entries VALUES {', '.join(['(?, ?, ?, ?)'] * len(posting.entries))}",
            [v for e in posting.entries for v in (pid, e.account.kind, e.account.key, e.amount)],
        )
        for e in posting.entries:
            if e.amount > 0:  # a credit: one upsert (its proposed row passes the CHECK)
                c.execute(
                    "INSERT INTO balances VALUES (?, ?, ?) ON CONFLICT (account_kind,"
                    " account_key) DO UPDATE SET balance = balances.balance + excluded.balance",
                    (e.account.kind, e.account.key, e.amount),
                )
                continue
            if e.account == debited:  # its balance moved already (:data:`_DEBIT_COVERED`)
                continue
            # A debit: SQLite checks an upsert's proposed row before its conflict, so a
            # negative one is refused even for an account that exists; update instead.
            debits.append((e, c.execute(self._DEBIT, (e.amount, e.account.kind, e.account.key))))
        for e, moved in debits:  # read once all are sent (one wait when pipelined)
            if not self._DEBIT_CHECKED or moved.rowcount:
                continue
            # An account's first entry inserts its row (a debit here fails the CHECK); when
            # another writer inserted it meanwhile, the entry moves that row instead.
            if not c.execute(
                "INSERT INTO balances VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (e.account.kind, e.account.key, e.amount),
            ).rowcount:
                c.execute(self._DEBIT, (e.amount, e.account.kind, e.account.key))
        return pid

    #: A debit (amount, kind, key); ``_DEBIT_CHECKED``: :meth:`_post` inserts a missing row.
    _DEBIT = "UPDATE balances SET balance = balance + ? WHERE account_kind = ? AND account_key = ?"
    _DEBIT_CHECKED = True
    #: A debit (amount to take, kind, key, the key again, the same amount) made only if the
    #: balance less what the advertiser's pending requests reserve (m017) covers it: one row
    #: (the new balance) when made, none when it (or the row) falls short. The one statement
    #: that decides an issuance's INSUFFICIENT_FUNDS.
    _DEBIT_COVERED = (
        "UPDATE balances SET balance = balance - ? WHERE account_kind = ? AND account_key = ?"
        " AND balance - coalesce((SELECT reserved FROM reserves WHERE advertiser_key = ?), 0)"
        " >= ? RETURNING balance"
    )

    @staticmethod
    def _send_posting(
        c: Conn, posting: ledger.Posting, idempotency: bytes | None = None, reference: str = ""
    ) -> Cursor:
        """Send :meth:`_post`'s postings row; its cursor answers the posting's id."""
        return c.execute(
            "INSERT INTO postings (kind, licence_id, at, idempotency, reference)"
            " VALUES (?, ?, ?, ?, ?) RETURNING id",
            (posting.kind.value, posting.licence_id, posting.at, idempotency, reference),
        )

    _MONEY = (
        "licence_id, advertiser_key, holder_key, price, price_per_use, max_uses, fee_bps,"
        " not_before, not_after, time_earned, uses_charged, closed"
    )

    @staticmethod
    def _money_of(r: Sequence[Any]) -> tuple[ledger.LicenceMoney, ledger.Settled]:
        return (
            ledger.LicenceMoney(
                licence_id=r[0],
                advertiser_key=r[1],
                holder_key=r[2],
                price=r[3],
                price_per_use=r[4],
                max_uses=r[5],
                fee_bps=r[6],
                not_before=r[7],
                not_after=r[8],
            ),
            ledger.Settled(time_earned=r[9], uses_charged=r[10], closed=bool(r[11])),
        )

    def _money(
        self, c: Conn, licence_id: bytes
    ) -> tuple[ledger.LicenceMoney, ledger.Settled] | None:
        r = c.execute(
            f"SELECT {self._MONEY} FROM licence_money WHERE licence_id = ?", (licence_id,)
        ).fetchone()
        return self._money_of(r) if r else None

    @staticmethod
    def _money_values(m: ledger.LicenceMoney, s: ledger.Settled) -> tuple[Any, ...]:
        """A licence's money row, columns :attr:`_MONEY` then ``due_at``."""
        return (
            m.licence_id,
            m.advertiser_key,
            m.holder_key,
            m.price,
            m.price_per_use,
            m.max_uses,
            m.fee_bps,
            m.not_before,
            m.not_after,
            s.time_earned,
            s.uses_charged,
            int(s.closed),
            ledger.next_due(m, s),
        )

    _MONEY_INSERT = f"INSERT INTO licence_money ({_MONEY}, due_at) VALUES ({', '.join('?' * 13)})"

    @staticmethod
    def _add_pending(c: Conn, holder_key: bytes, delta: int) -> None:
        """Move what the holder's open licences will still pay her by ``delta``. Taken
        last in a change (after its licences' locks), once, so that writers meet in one
        order."""
        if delta:
            c.execute(
                "INSERT INTO holder_pending (holder_key, pending) VALUES (?, ?)"
                " ON CONFLICT (holder_key) DO UPDATE"
                " SET pending = holder_pending.pending + excluded.pending",
                (holder_key, delta),
            )

    @staticmethod
    def _pending_moved(
        money: ledger.LicenceMoney, before: ledger.Settled, after: ledger.Settled
    ) -> int:
        return ledger.holder_pending(money, after) - ledger.holder_pending(money, before)

    @staticmethod
    def _save_settled(c: Conn, money: ledger.LicenceMoney, s: ledger.Settled) -> None:
        c.execute(
            "UPDATE licence_money SET time_earned = ?, uses_charged = ?, closed = ?, due_at = ?"
            " WHERE licence_id = ?",
            (
                s.time_earned,
                s.uses_charged,
                int(s.closed),
                ledger.next_due(money, s),
                money.licence_id,
            ),
        )

    def _settle(self, c: Conn, licence_id: bytes, now: int, *, close: bool) -> None:
        """Pay what the licence has earned by ``now``; with ``close`` (revocation, or the
        term is over), refund the rest of its escrow too. The same result whenever it runs."""
        found = self._money(c, licence_id)
        if found is not None:
            self._add_pending(
                c, found[0].holder_key, self._settle_money(c, *found, now, close=close)
            )

    def _settle_money(
        self,
        c: Conn,
        money: ledger.LicenceMoney,
        settled: ledger.Settled,
        now: int,
        *,
        close: bool,
        due: int | None = None,
    ) -> int:
        """:meth:`_settle` for a licence's money row already read; writes only what moved
        (and a ``due_at`` that was not the row's next settlement time, ``due``). Returns how
        much its holder's pending total moved, for the caller to add (:meth:`_add_pending`)."""
        if settled.closed:
            return 0
        if close or now >= money.not_after:
            postings, after = ledger.close(money, settled, now)
        else:
            accrued, after = ledger.accrue(money, settled, now)
            postings = [accrued] if accrued is not None else []
        for p in postings:
            self._post(c, p)
        if after != settled or (due is not None and due != ledger.next_due(money, after)):
            self._save_settled(c, money, after)
        return self._pending_moved(money, settled, after)

    def settle(self, party_key: bytes, now: int, *, nonces: Sequence[SpentNonce] = ()) -> None:
        """Settle every open licence of the party (as holder or advertiser) up to ``now``.

        Only the licences *due* are read (``due_at``, :func:`..ledger.next_due`: their time
        price has earned a minor unit since their last settlement, or their term is over),
        through an index, and only they are written: a statement costs the same whatever
        the party's open licences, and when none is due no write transaction is taken.
        """
        query = (
            f"SELECT {self._MONEY}, due_at FROM licence_money WHERE closed = 0"
            " AND holder_key = ? AND due_at <= ?"
            f" UNION ALL SELECT {self._MONEY}, due_at FROM licence_money WHERE closed = 0"
            " AND advertiser_key = ? AND holder_key != ? AND due_at <= ?"
        )
        params = (party_key, now, party_key, party_key, now)
        if not self._rows(query, params):
            return  # read on this thread's snapshot: nothing has earned a minor unit since

        def change(c: Conn) -> None:
            moved: dict[bytes, int] = {}
            for r in c.execute(query, params).fetchall():
                due = int(r[12])
                found: tuple[ledger.LicenceMoney, ledger.Settled] | None = self._money_of(r)
                if self._CONCURRENT_WRITERS:  # read again under the licence's lock
                    self._hold(c, b"licence", r[0])
                    again = c.execute(
                        f"SELECT {self._MONEY}, due_at FROM licence_money WHERE licence_id = ?",
                        (r[0],),
                    ).fetchone()
                    found, due = (self._money_of(again), int(again[12])) if again else (None, 0)
                if found is not None:
                    holder = found[0].holder_key
                    delta = self._settle_money(c, *found, now, close=False, due=due)
                    moved[holder] = moved.get(holder, 0) + delta
            for holder, delta in sorted(moved.items()):
                self._add_pending(c, holder, delta)

        self._transact(change, nonces)

    def _replayed(self, c: Conn, idempotency: bytes, account: ledger.Account) -> LedgerLine | None:
        r = c.execute("SELECT id FROM postings WHERE idempotency = ?", (idempotency,)).fetchone()
        return self._line(c, int(r[0]), account) if r else None

    @staticmethod
    def _line(c: Conn, posting_id: int, account: ledger.Account) -> LedgerLine:
        (line,) = LedgerPart._lines(c, [posting_id], account)
        return line

    @staticmethod
    def _lines(c: Conn, posting_ids: Sequence[int], account: ledger.Account) -> list[LedgerLine]:
        """The postings as they touched ``account``, newest first, in one statement."""
        if not posting_ids:
            return []
        # Each amount through the entries' account index (account, key, posting): entries
        # have no index by posting alone, and a join on it read every entry of the ledger.
        # The fee account is one account, with the empty key.
        rows = c.execute(
            "SELECT p.id, p.kind, p.licence_id, p.at, p.reference,"
            " (SELECT coalesce(sum(e.amount), 0) FROM entries e WHERE e.account_kind = ?"
            "   AND e.account_key = ? AND e.posting_id = p.id),"
            " (SELECT coalesce(sum(e.amount), 0) FROM entries e WHERE e.account_kind = ?"
            "   AND e.account_key = ? AND e.posting_id = p.id)"
            f" FROM postings p WHERE p.id IN ({', '.join('?' * len(posting_ids))})"
            " ORDER BY p.id DESC",
            (account.kind, account.key, ledger.FEE, ledger.Account.fee().key, *posting_ids),
        ).fetchall()
        holder = account.kind == ledger.HOLDER
        return [
            LedgerLine(
                int(r[0]), r[1], bytes(r[2]), int(r[3]), int(r[5]), int(r[6]) if holder else 0, r[4]
            )
            for r in rows
        ]

    def deposit(
        self,
        advertiser_key: bytes,
        amount: int,
        reference: str,
        now: int,
        *,
        digest: bytes,
        nonces: Sequence[SpentNonce] = (),
    ) -> tuple[LedgerLine, int, bool]:
        """Credit an advertiser; ``(line, balance, replayed)``. The reference is the
        idempotency key: a reference credited before moves nothing and returns that line
        (IDEMPOTENCY_KEY_REUSED if it was credited for a request with another digest)."""
        _check_digest(digest)
        account = ledger.Account.advertiser(advertiser_key)
        key = b"deposit\x00" + reference.encode()

        def change(c: Conn) -> tuple[LedgerLine, int, bool]:
            self._hold(c, b"posting", key)
            seen = self._replayed(c, key, account)
            if seen is not None:
                self._same_request(c, key, digest)
                if seen.amount != amount:
                    raise LicentiaError(
                        Reason.IDEMPOTENCY_KEY_REUSED,
                        "this payment reference was credited with another amount or account",
                    )
                return seen, self._balance(c, account), True
            self._keep_digest(c, key, digest)
            pid = self._post(c, ledger.deposit(advertiser_key, amount, now), key, reference)
            return self._line(c, pid, account), self._balance(c, account), False

        return self._transact(change, nonces)

    def withdraw(
        self,
        holder_key: bytes,
        amount: int,
        payout_reference: str,
        idempotency_key: bytes,
        now: int,
        *,
        digest: bytes,
        nonces: Sequence[SpentNonce] = (),
    ) -> tuple[LedgerLine, int, bool]:
        """Pay a holder out; ``(line, balance, replayed)``; idempotent by the key
        (IDEMPOTENCY_KEY_REUSED for a request with another digest). Only to one of the
        holder's confirmed payout destinations, checked in the payout's transaction
        (PAYOUT_DESTINATION_UNKNOWN, PAYOUT_DESTINATION_PENDING); a retry of a payout made
        is answered as it was, whatever became of its destination since."""
        _check_digest(digest)
        account = ledger.Account.holder(holder_key)
        key = b"withdraw\x00" + holder_key + idempotency_key

        def change(c: Conn) -> tuple[LedgerLine, int, bool]:
            # Only payouts take money out of a holder's account (and the key names the holder).
            self._hold(c, b"account", ledger.HOLDER.encode(), holder_key)
            seen = self._replayed(c, key, account)
            if seen is not None:
                self._same_request(c, key, digest)
                if seen.amount != -amount or seen.reference != payout_reference:
                    raise LicentiaError(
                        Reason.IDEMPOTENCY_KEY_REUSED,
                        "this idempotency key paid out another amount or to another reference",
                    )
                return seen, self._balance(c, account), True
            # The destination is read under the lock that its changes take too: a
            # cancellation commits before this payout or after it, never during it.
            dest = c.execute(
                "SELECT usable_at FROM payout_destinations WHERE holder_key = ?"
                " AND reference = ? AND cancelled_at = 0",
                (holder_key, payout_reference),
            ).fetchone()
            ledger.check_payout_destination(None if dest is None else int(dest[0]), now)
            posting = ledger.withdraw(holder_key, amount, self._balance(c, account), now)
            self._keep_digest(c, key, digest)
            pid = self._post(c, posting, key, payout_reference)
            return self._line(c, pid, account), self._balance(c, account), False

        return self._transact(change, nonces)

    # -- payout destinations ---------------------------------------------------------------
    _DEST = "holder_key, reference, added_at, usable_at, cancelled_at"

    @staticmethod
    def _destination(r: Sequence[Any]) -> PayoutDestination:
        return PayoutDestination(bytes(r[0]), r[1], int(r[2]), int(r[3]), int(r[4]))

    def _live_destination(
        self, c: Conn, holder_key: bytes, reference: str
    ) -> PayoutDestination | None:
        r = c.execute(
            f"SELECT {self._DEST} FROM payout_destinations WHERE holder_key = ?"
            " AND reference = ? AND cancelled_at = 0",
            (holder_key, reference),
        ).fetchone()
        return self._destination(r) if r else None

    def add_payout_destination(
        self,
        holder_key: bytes,
        reference: str,
        now: int,
        usable_at: int,
        *,
        limit: int,
        nonces: Sequence[SpentNonce] = (),
    ) -> tuple[PayoutDestination, bool]:
        """Add a payout destination usable from ``usable_at``: ``(destination, added)``.

        One already there and not cancelled is returned unchanged (``added`` False). Refuses
        (INVALID_REQUEST) a new one beyond ``limit`` destinations not cancelled."""

        def change(c: Conn) -> tuple[PayoutDestination, bool]:
            self._alive(c, holder_key)
            self._hold(c, b"account", ledger.HOLDER.encode(), holder_key)
            seen = self._live_destination(c, holder_key, reference)
            if seen is not None:
                return seen, False
            live = c.execute(
                "SELECT count(*) FROM payout_destinations WHERE holder_key = ?"
                " AND cancelled_at = 0",
                (holder_key,),
            ).fetchone()[0]
            if int(live) >= limit:
                raise LicentiaError(
                    Reason.INVALID_REQUEST,
                    f"at most {limit} payout destinations that are not cancelled:"
                    " cancel one you no longer use first",
                )
            c.execute(
                "INSERT INTO payout_destinations (holder_key, reference, added_at, usable_at)"
                " VALUES (?, ?, ?, ?)",
                (holder_key, reference, now, usable_at),
            )
            return PayoutDestination(holder_key, reference, now, usable_at), True

        return self._transact(change, nonces)

    def cancel_payout_destination(
        self, holder_key: bytes, reference: str, now: int, *, nonces: Sequence[SpentNonce] = ()
    ) -> PayoutDestination:
        """Cancel the holder's destination not cancelled with this reference, pending or
        confirmed (NOT_FOUND when there is none): no payout goes to it from then on."""

        def change(c: Conn) -> PayoutDestination:
            self._hold(c, b"account", ledger.HOLDER.encode(), holder_key)
            seen = self._live_destination(c, holder_key, reference)
            if seen is None:
                raise LicentiaError(Reason.NOT_FOUND, "no such payout destination")
            c.execute(
                "UPDATE payout_destinations SET cancelled_at = ? WHERE holder_key = ?"
                " AND reference = ? AND cancelled_at = 0",
                (now, holder_key, reference),
            )
            return PayoutDestination(holder_key, reference, seen.added_at, seen.usable_at, now)

        return self._transact(change, nonces)

    def payout_destinations(
        self, holder_key: bytes, *, cancelled: int = 48
    ) -> list[PayoutDestination]:
        """The holder's destinations not cancelled and its ``cancelled`` most recently
        cancelled ones, oldest first."""
        with self._snapshot() as c:
            live = c.execute(
                f"SELECT id, {self._DEST} FROM payout_destinations WHERE holder_key = ?"
                " AND cancelled_at = 0",
                (holder_key,),
            ).fetchall()
            gone = c.execute(
                f"SELECT id, {self._DEST} FROM payout_destinations WHERE holder_key = ?"
                " AND cancelled_at != 0 ORDER BY id DESC LIMIT ?",
                (holder_key, cancelled),
            ).fetchall()
        rows = sorted([*live, *gone], key=lambda r: int(r[0]))
        return [self._destination(r[1:]) for r in rows]
