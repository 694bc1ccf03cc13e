"""Funds reserved at request time (part of :class:`.common.SqlStore`).

An advertiser's request reserves what its approval will escrow (the licence's price and
every use it may make, the fee inside them): its *available* funds are its balance less
what its pending requests reserve, and a request they do not cover is refused to the
advertiser (INSUFFICIENT_FUNDS) before anything is stored, so a holder never meets a
request she cannot approve for want of money. The reservation is a counter, not a
posting: ``request_reserves`` holds each pending request's amount, ``reserves`` each
advertiser's total and number of requests, both changed in the transaction that adds or
ends the request (migration m017). Any end — approval (the escrow takes its place),
decline, withdrawal, expiry or failure — releases it. :meth:`ReservesPart.reserve_problems`
proves the totals against the rows for ``ledger_check``.
"""

from __future__ import annotations

from licentia.errors import LicentiaError, Reason

from .. import ledger
from ..model import RequestState
from ._ledger import LedgerPart
from ._sql import Conn


class ReservesPart(LedgerPart):
    """Reservations of advertisers' funds for their pending requests."""

    #: The advertiser's balance, what its pending requests reserve and how many, and whether
    #: one of them is due to expire (advertiser key x3, pending state, now): one round trip.
    _AVAILABLE = (
        "SELECT coalesce((SELECT balance FROM balances WHERE account_kind = 'advertiser'"
        " AND account_key = ?), 0), coalesce((SELECT reserved FROM reserves"
        " WHERE advertiser_key = ?), 0), coalesce((SELECT requests FROM reserves"
        " WHERE advertiser_key = ?), 0), EXISTS (SELECT 1 FROM request_reserves x"
        " JOIN requests q ON q.request_id = x.request_id WHERE x.advertiser_key = ?"
        " AND q.state = ? AND q.expires_at <= ?)"
    )

    def _reserve(
        self,
        c: Conn,
        advertiser_key: bytes,
        request_id: bytes,
        cost: int,
        now: int,
        *,
        keep: bool = True,
    ) -> None:
        """Inside a change: reserve ``cost`` of the advertiser's available funds for the
        request, or refuse (INSUFFICIENT_FUNDS, saying what the licence costs, what is
        available and what is reserved). Holds the advertiser's account lock (the one every
        issuance holds) so that two requests never reserve the same money. Its requests
        whose time to answer is over expire first (:meth:`_expire_due`). ``keep`` False:
        only check (a request issued at once in the same change: its escrow is the debit)."""
        if cost <= 0:
            return
        self._hold(c, b"account", ledger.ADVERTISER.encode(), advertiser_key)
        args = (advertiser_key,) * 4 + (int(RequestState.PENDING), now)
        balance, reserved, requests, due = c.execute(self._AVAILABLE, args).fetchone()
        if due:
            self._expire_due(c, advertiser_key, now)
            balance, reserved, requests, due = c.execute(self._AVAILABLE, args).fetchone()
        balance, reserved, requests = int(balance), int(reserved), int(requests)
        available = balance - reserved
        if available < cost:
            plural = "request" if requests == 1 else "requests"
            held_back = (
                f", of which {reserved} is reserved for {requests} pending {plural}"
                if reserved
                else ""
            )
            raise LicentiaError(
                Reason.INSUFFICIENT_FUNDS,
                f"the licence costs {cost}, available {max(available, 0)}: the balance is"
                f" {balance}{held_back}; deposit {cost - available} more",
            )
        if not keep:
            return
        c.execute(
            "INSERT INTO request_reserves VALUES (?, ?, ?)", (request_id, advertiser_key, cost)
        )
        c.execute(
            "INSERT INTO reserves VALUES (?, ?, 1) ON CONFLICT (advertiser_key) DO UPDATE"
            " SET reserved = reserves.reserved + excluded.reserved,"
            " requests = reserves.requests + 1",
            (advertiser_key, cost),
        )

    @staticmethod
    def _release_sent(c: Conn, request_id: bytes) -> None:
        """Inside a change: send the release of the request's reservation, if it has one
        (nothing to read back: a pipelined change waits for nothing here). Sent after the
        request's own row is updated, so that of two ends of one request (their update
        waits for the other's commit) only the first finds a reservation to release."""
        c.execute(
            "UPDATE reserves SET reserved = reserved - r.amount, requests = requests - 1"
            " FROM (SELECT advertiser_key, amount FROM request_reserves WHERE request_id = ?) r"
            " WHERE reserves.advertiser_key = r.advertiser_key",
            (request_id,),
        )
        c.execute("DELETE FROM request_reserves WHERE request_id = ?", (request_id,))

    def _expire_due(self, c: Conn, advertiser_key: bytes, now: int) -> int:
        """Inside a change: expire the advertiser's reserving requests whose time to answer
        is over (requests otherwise expire when next read) and release what they reserve;
        how many. Holds the advertiser's account lock first, as an issuance does before it
        touches ``reserves`` and then its request's row: the reverse order would deadlock."""
        self._hold(c, b"account", ledger.ADVERTISER.encode(), advertiser_key)
        expired = c.execute(
            "UPDATE requests SET state = ?, updated_at = ? WHERE state = ? AND expires_at <= ?"
            " AND request_id IN (SELECT request_id FROM request_reserves"
            " WHERE advertiser_key = ?) RETURNING request_id",
            (int(RequestState.EXPIRED), now, int(RequestState.PENDING), now, advertiser_key),
        ).fetchall()
        for (rid,) in expired:
            self._release_sent(c, bytes(rid))
        return len(expired)

    def expire_requests(self, advertiser_key: bytes, now: int) -> int:
        """Expire the advertiser's pending requests whose time to answer is over, releasing
        their reservations (before its statement is read); how many. No write transaction
        when none is due."""
        due = self._row(
            "SELECT 1 FROM request_reserves x JOIN requests q ON q.request_id = x.request_id"
            " WHERE x.advertiser_key = ? AND q.state = ? AND q.expires_at <= ? LIMIT 1",
            (advertiser_key, int(RequestState.PENDING), now),
        )
        if due is None:
            return 0
        return self._transact(lambda c: self._expire_due(c, advertiser_key, now))

    def reserved(self, advertiser_key: bytes) -> tuple[int, int]:
        """What the advertiser's pending requests reserve: ``(amount, requests)``."""
        r = self._row(
            "SELECT reserved, requests FROM reserves WHERE advertiser_key = ?", (advertiser_key,)
        )
        return (int(r[0]), int(r[1])) if r else (0, 0)

    @staticmethod
    def reserve_problems(c: Conn) -> list[str]:
        """What is wrong with the reservations (``ledger_check``): each advertiser's total
        and count are the sum and number of its requests' reservations, only pending
        requests reserve, and no advertiser has reserved more than its balance."""
        problems = [
            f"advertiser {bytes(r[0]).hex()} has {r[1]} reserved for {r[2]} requests,"
            f" its pending requests reserve {r[3]} for {r[4]}"
            for r in c.execute(
                "SELECT coalesce(t.advertiser_key, s.advertiser_key), coalesce(t.reserved, 0),"
                " coalesce(t.requests, 0), coalesce(s.amount, 0), coalesce(s.n, 0)"
                " FROM reserves t FULL OUTER JOIN (SELECT advertiser_key, sum(amount) AS amount,"
                " count(*) AS n FROM request_reserves GROUP BY advertiser_key) s"
                " ON s.advertiser_key = t.advertiser_key"
                " WHERE coalesce(t.reserved, 0) != coalesce(s.amount, 0)"
                " OR coalesce(t.requests, 0) != coalesce(s.n, 0)"
            )
        ]
        problems += [
            f"request {bytes(r[0]).hex()} reserves {r[1]} but is not pending"
            for r in c.execute(
                "SELECT x.request_id, x.amount FROM request_reserves x"
                " LEFT JOIN requests q ON q.request_id = x.request_id"
                f" WHERE q.state IS NULL OR q.state != {int(RequestState.PENDING)}"
            )
        ]
        problems += [
            f"advertiser {bytes(r[0]).hex()} has {r[1]} reserved, its balance is {r[2]}"
            for r in c.execute(
                "SELECT t.advertiser_key, t.reserved, coalesce(b.balance, 0) FROM reserves t"
                " LEFT JOIN balances b ON b.account_kind = 'advertiser'"
                " AND b.account_key = t.advertiser_key WHERE t.reserved > coalesce(b.balance, 0)"
            )
        ]
        return problems
