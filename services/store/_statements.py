"""Statements and the ledger's checks: what a party's money is now, read (part of
:class:`.common.SqlStore`); the money itself moves in :mod:`._ledger`.
"""

from __future__ import annotations

from .. import ledger
from ..model import Party, Role, Statement
from ._ledger import LedgerPart
from ._reserves import ReservesPart


def _holder_part(column: str) -> str:
    """SQL for :func:`..ledger.split`'s holder part of the amount in ``column``:
    ``x - x * fee_bps // BPS``, written so that no product overflows 64 bits (an amount is
    at most :data:`..ledger.MAX_MINOR`, a fee at most half) and with no ``%`` (the shared
    SQL has none): ``x * f // B == (x // B) * f + ((x - (x // B) * B) * f) // B``."""
    whole = f"({column} / {ledger.BPS})"
    return (
        f"({column} - {whole} * fee_bps - (({column} - {whole} * {ledger.BPS}) * fee_bps)"
        f" / {ledger.BPS})"
    )


class StatementsPart(LedgerPart):
    """Statements and :meth:`ledger_check`."""

    #: :func:`..ledger.holder_pending` summed over licence money rows, in SQL (the check
    #: of the totals kept in ``holder_pending``).
    _PENDING_SUM = (
        "sum({price} - {earned}"
        " + CASE WHEN max_uses > uses_charged THEN (max_uses - uses_charged) * {use} ELSE 0 END)"
    ).format(
        price=_holder_part("price"),
        earned=_holder_part("time_earned"),
        use=_holder_part("price_per_use"),
    )

    def statement(self, party: Party, before: int, limit: int) -> Statement:
        """The party's money now (settle first: :meth:`settle`), newest lines first."""
        account = (
            ledger.Account.holder(party.key)
            if party.role == Role.HOLDER
            else ledger.Account.advertiser(party.key)
        )
        with self._snapshot() as c:  # one read snapshot
            ids = [
                int(r[0])
                for r in c.execute(
                    "SELECT DISTINCT posting_id FROM entries WHERE account_kind = ?"
                    " AND account_key = ? AND (? = 0 OR posting_id < ?)"
                    " ORDER BY posting_id DESC LIMIT ?",
                    (account.kind, account.key, before, before, limit + 1),
                )
            ]
            more = len(ids) > limit
            lines = tuple(self._lines(c, ids[:limit], account))
            available = self._balance(c, account)
            held = c.execute(
                "SELECT reserved, requests FROM reserves WHERE advertiser_key = ?", (party.key,)
            ).fetchone()
            if party.role == Role.HOLDER:
                # Kept with every change of her licences' money (m016_growth).
                kept = c.execute(
                    "SELECT pending FROM holder_pending WHERE holder_key = ?", (party.key,)
                ).fetchone()
                pending = int(kept[0]) if kept else 0
                # Her ACCRUAL and USE credits are every credit of her account, and her
                # WITHDRAWALs every debit (the ledger posts nothing else to a holder): what
                # she earned is her balance plus what she withdrew, read from her few debits.
                total = (
                    available
                    - c.execute(
                        "SELECT coalesce(sum(amount), 0) FROM entries WHERE account_kind ="
                        " 'holder' AND account_key = ? AND amount < 0",
                        (party.key,),
                    ).fetchone()[0]
                )
            else:
                pending = c.execute(
                    "SELECT coalesce(sum(b.balance), 0) FROM licence_money m JOIN balances b"
                    " ON b.account_kind = 'escrow' AND b.account_key = m.licence_id"
                    " WHERE m.closed = 0 AND m.advertiser_key = ?",
                    (party.key,),
                ).fetchone()[0]
                # Spent: what left for escrow, less what came back, less what is still held.
                total = (
                    -pending
                    - c.execute(
                        "SELECT coalesce(sum(e.amount), 0) FROM entries e JOIN postings p"
                        " ON p.id = e.posting_id WHERE e.account_kind = 'advertiser'"
                        " AND e.account_key = ? AND p.kind IN ('ESCROW', 'REFUND')",
                        (party.key,),
                    ).fetchone()[0]
                )
        return Statement(
            available=available,
            pending=int(pending),
            total=int(total),
            lines=lines,
            next_before=ids[limit - 1] if more else 0,
            reserved=int(held[0]) if held and party.role != Role.HOLDER else 0,
            reserved_requests=int(held[1]) if held and party.role != Role.HOLDER else 0,
        )

    def ledger_check(self) -> list[str]:
        """The ledger's invariants, checked over every row: what is wrong (empty: nothing).

        Every posting sums to zero; every balance equals the sum of its entries; no internal
        account is negative; the internal accounts hold exactly deposits minus withdrawals;
        each advertiser's reserved total is the sum over its pending requests' reservations
        and within its balance."""
        with self._snapshot() as c:
            problems = [
                f"posting {r[0]} sums to {r[1]}"
                for r in c.execute(
                    "SELECT posting_id, sum(amount) FROM entries GROUP BY posting_id"
                    " HAVING sum(amount) != 0"
                )
            ]
            problems += [
                f"balance of {r[0]} {bytes(r[1]).hex()} is {r[2]}, its entries sum to {r[3]}"
                for r in c.execute(
                    "SELECT * FROM (SELECT b.account_kind, b.account_key, b.balance,"
                    " (SELECT coalesce(sum(amount), 0) FROM entries e"
                    "  WHERE e.account_kind = b.account_kind AND e.account_key = b.account_key)"
                    " AS s FROM balances b) x WHERE balance != s"
                )
            ]
            problems += [
                f"{r[0]} {bytes(r[1]).hex()} is negative: {r[2]}"
                for r in c.execute(
                    "SELECT account_kind, account_key, balance FROM balances"
                    " WHERE balance < 0 AND account_kind != 'external'"
                )
            ]
            problems += [
                f"holder {bytes(r[0]).hex()} has {r[1]} pending, her open licences {r[2]}"
                for r in c.execute(
                    "SELECT m.holder_key, coalesce(p.pending, 0), m.s FROM"
                    f" (SELECT holder_key, {self._PENDING_SUM} AS s FROM licence_money"
                    "  WHERE closed = 0 GROUP BY holder_key) m"
                    " LEFT JOIN holder_pending p ON p.holder_key = m.holder_key"
                    " WHERE coalesce(p.pending, 0) != m.s"
                )
            ]
            problems += [
                f"holder {bytes(r[0]).hex()} has {r[1]} pending and no open licence"
                for r in c.execute(
                    "SELECT holder_key, pending FROM holder_pending p WHERE pending != 0"
                    " AND NOT EXISTS (SELECT 1 FROM licence_money m WHERE m.closed = 0"
                    " AND m.holder_key = p.holder_key)"
                )
            ]
            problems += ReservesPart.reserve_problems(c)
            internal = c.execute(
                "SELECT coalesce(sum(balance), 0) FROM balances WHERE account_kind != 'external'"
            ).fetchone()[0]
            external = c.execute(
                "SELECT coalesce(sum(balance), 0) FROM balances WHERE account_kind = 'external'"
            ).fetchone()[0]
            if internal != -external:
                problems.append(
                    f"internal accounts hold {internal}, deposits - withdrawals {-external}"
                )
        return problems
