"""The exchange's money rules, as pure functions: double-entry postings, escrow and settlement.

No I/O: the store reads balances and each licence's :class:`Settled` state, calls these rules
inside its transaction, writes the postings they return and saves the new state.

Every amount is an integer number of minor units of the licence's currency; nothing here ever
uses a float. Money moves only as a :class:`Posting` whose entries sum to zero, between
:class:`Account` values:

* ``advertiser`` / ``holder``: the available balance of a party's key;
* ``escrow``: what one licence holds (its key is the licence id) until it is earned or refunded;
* ``fee``: the exchange's revenue;
* ``external``: the outside world — deposits come from it, withdrawals go to it. It is the only
  account that may be negative (its balance is minus the money inside the exchange).

A licence escrows ``price + price_per_use * max_uses`` when it is issued. The time price is
earned pro rata over the term; settlement is computed from cumulative totals (what should have
moved by ``at`` minus what has moved), never by adding increments, so settling at ``t1`` and
then ``t2`` moves exactly what settling once at ``t2`` would. Each use moves ``price_per_use``.
Whatever the holder earns is split with the exchange's fee (rounded down, in the holder's
favour); closing a licence refunds what was neither earned nor charged to the advertiser.
"""

from __future__ import annotations

import datetime
import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from licentia.errors import LicentiaError, Reason

#: Basis points in one.
BPS = 10_000
#: The largest fee, in basis points: the holder always gets at least half.
MAX_FEE_BPS = 5_000
#: The largest amount the exchange keeps (its store holds signed 64-bit integers).
MAX_MINOR = (1 << 63) - 1

ADVERTISER = "advertiser"
HOLDER = "holder"
ESCROW = "escrow"
FEE = "fee"
EXTERNAL = "external"
#: Every account kind.
ACCOUNT_KINDS = frozenset({ADVERTISER, HOLDER, ESCROW, FEE, EXTERNAL})
_KEYED = frozenset({ADVERTISER, HOLDER, ESCROW})


class Kind(enum.StrEnum):
    """What a posting does; mirrors ``licentia.v1.PostingKind`` (without its prefix)."""

    #: Money from outside credited to an advertiser.
    DEPOSIT = "DEPOSIT"
    #: An advertiser's money set aside for a licence when it is issued.
    ESCROW = "ESCROW"
    #: The part of a licence's time price earned so far, paid to the holder and the fee.
    ACCRUAL = "ACCRUAL"
    #: One use's price, paid to the holder and the fee.
    USE = "USE"
    #: What a closed licence's escrow still held, returned to the advertiser.
    REFUND = "REFUND"
    #: A holder's money paid out.
    WITHDRAWAL = "WITHDRAWAL"


@dataclass(frozen=True, slots=True)
class Account:
    """One balance: a ``kind`` (see :data:`ACCOUNT_KINDS`) and the key it belongs to.

    ``advertiser`` and ``holder`` accounts are keyed by the party's public key, ``escrow`` by
    the licence id; ``fee`` and ``external`` are unique and have the empty key.
    """

    kind: str
    key: bytes = b""

    def __post_init__(self) -> None:
        if self.kind not in ACCOUNT_KINDS:
            raise ValueError(f"unknown account kind {self.kind!r}")
        if (self.kind in _KEYED) != bool(self.key):
            raise ValueError(
                f"a {self.kind} account {'needs' if self.kind in _KEYED else 'has no'} key"
            )

    @classmethod
    def advertiser(cls, key: bytes) -> Account:
        """An advertiser's available balance."""
        return cls(ADVERTISER, key)

    @classmethod
    def holder(cls, key: bytes) -> Account:
        """A holder's available balance."""
        return cls(HOLDER, key)

    @classmethod
    def escrow(cls, licence_id: bytes) -> Account:
        """What one licence holds until it is earned or refunded."""
        return cls(ESCROW, licence_id)

    @classmethod
    def fee(cls) -> Account:
        """The exchange's revenue."""
        return cls(FEE)

    @classmethod
    def external(cls) -> Account:
        """The outside world: the source of deposits and the sink of withdrawals."""
        return cls(EXTERNAL)

    @property
    def internal(self) -> bool:
        """True for every account but ``external``: those never go negative."""
        return self.kind != EXTERNAL


@dataclass(frozen=True, slots=True)
class Entry:
    """One side of a posting: ``amount`` (signed minor units) credited to ``account``."""

    account: Account
    amount: int


@dataclass(frozen=True, slots=True)
class Posting:
    """One transaction: entries that sum to zero.

    Raises ValueError (a programming error, never reachable from the wire) if there are no
    entries, an entry moves nothing, or the entries do not sum to zero.
    """

    kind: Kind
    #: The licence the posting belongs to (``b""`` for deposits and withdrawals).
    licence_id: bytes
    #: Unix seconds.
    at: int
    entries: tuple[Entry, ...]

    def __post_init__(self) -> None:
        if not self.entries:
            raise ValueError("a posting has entries")
        if any(type(e.amount) is not int or e.amount == 0 for e in self.entries):
            raise ValueError("every entry moves a non-zero integer amount")
        if sum(e.amount for e in self.entries) != 0:
            raise ValueError("a posting's entries sum to zero")

    def amount_for(self, account: Account) -> int:
        """The net amount this posting credits ``account`` (0 if it does not touch it)."""
        return sum(e.amount for e in self.entries if e.account == account)


def _move(
    kind: Kind, licence_id: bytes, at: int, source: Account, targets: Iterable[tuple[Account, int]]
) -> Posting | None:
    """A posting moving each target amount from ``source``; zero amounts are left out, and
    None if nothing moves."""
    credits = [Entry(a, n) for a, n in targets if n]
    total = sum(e.amount for e in credits)
    if not total:
        return None
    return Posting(kind, licence_id, at, (Entry(source, -total), *credits))


def check_fee_bps(fee_bps: int) -> None:
    """Refuse a fee outside 0..:data:`MAX_FEE_BPS` basis points (INVALID_REQUEST)."""
    if not 0 <= fee_bps <= MAX_FEE_BPS:
        raise LicentiaError(Reason.INVALID_REQUEST, f"the fee is 0 to {MAX_FEE_BPS} basis points")


def split(amount: int, fee_bps: int) -> tuple[int, int]:
    """``(holder part, fee part)`` of ``amount``: the fee is rounded down.

    Both parts are non-decreasing in ``amount``, so splitting cumulative totals never takes
    back what an earlier split paid. Raises LicentiaError for a bad fee, ValueError for a
    negative amount.
    """
    check_fee_bps(fee_bps)
    if amount < 0:
        raise ValueError("only a non-negative amount is split")
    fee = amount * fee_bps // BPS
    return amount - fee, fee


def earned(price: int, not_before: int, not_after: int, at: int) -> int:
    """The part of ``price`` earned by ``at``, pro rata over the term, rounded down.

    Nothing before ``not_before``, all of it from ``not_after`` on. Raises ValueError for an
    empty term or a negative price.
    """
    term = not_after - not_before
    if term <= 0:
        raise ValueError("a term is at least one second")
    if price < 0:
        raise ValueError("a price is never negative")
    return price * min(max(at - not_before, 0), term) // term


def escrow_total(price: int, price_per_use: int, max_uses: int) -> int:
    """What a licence's approval escrows (and its request reserves when it is made): the time
    price and every use it may make, in minor units."""
    return price + price_per_use * max_uses


@dataclass(frozen=True, slots=True)
class LicenceMoney:
    """A licence's money terms. Checked on construction (LicentiaError INVALID_REQUEST).

    ``max_uses`` 0 means the uses are not limited, which only a licence without a per-use
    price may be (its escrow has to cover every use).
    """

    licence_id: bytes
    advertiser_key: bytes
    holder_key: bytes
    #: The time price, earned pro rata over the term.
    price: int
    price_per_use: int
    max_uses: int
    fee_bps: int
    not_before: int
    not_after: int

    def __post_init__(self) -> None:
        if not (self.licence_id and self.advertiser_key and self.holder_key):
            raise LicentiaError(
                Reason.INVALID_REQUEST, "a licence's money names the licence and both parties"
            )
        if self.price < 0 or self.price_per_use < 0:
            raise LicentiaError(Reason.INVALID_REQUEST, "a price is never negative")
        if self.max_uses < 0:
            raise LicentiaError(Reason.INVALID_REQUEST, "the number of uses is never negative")
        if self.price_per_use and not self.max_uses:
            raise LicentiaError(
                Reason.INVALID_REQUEST, "a per-use price needs a maximum number of uses"
            )
        check_fee_bps(self.fee_bps)
        if self.not_after <= self.not_before:
            raise LicentiaError(Reason.INVALID_REQUEST, "the term is at least one second")
        if self.escrow_total > MAX_MINOR:
            raise LicentiaError(Reason.INVALID_REQUEST, "the licence's price is too large")

    @property
    def escrow_total(self) -> int:
        """What the advertiser sets aside at issuance: the time price and every use."""
        return escrow_total(self.price, self.price_per_use, self.max_uses)


@dataclass(frozen=True, slots=True)
class Settled:
    """How far a licence's money has been settled (the store keeps it with the licence)."""

    #: The cumulative part of the time price moved out of escrow (holder and fee together).
    time_earned: int = 0
    #: The number of uses charged.
    uses_charged: int = 0
    #: True once the escrow is closed (revoked, or its term over) and the rest refunded.
    closed: bool = False


def escrow_left(m: LicenceMoney, settled: Settled) -> int:
    """What the licence's escrow still holds (0 once closed)."""
    if settled.closed:
        return 0
    return m.escrow_total - settled.time_earned - settled.uses_charged * m.price_per_use


def holder_pending(m: LicenceMoney, settled: Settled) -> int:
    """What the holder will still earn if the licence runs its term and every use is made
    (0 once closed)."""
    if settled.closed:
        return 0
    time_left = split(m.price, m.fee_bps)[0] - split(settled.time_earned, m.fee_bps)[0]
    uses_left = max(m.max_uses - settled.uses_charged, 0)
    return time_left + uses_left * split(m.price_per_use, m.fee_bps)[0]


def next_due(m: LicenceMoney, settled: Settled) -> int:
    """The first time at which settling the licence moves money: when its time price has
    earned one more minor unit than ``settled`` holds, or its end (where it closes),
    whichever comes first (its end for a closed licence). Before it, :func:`accrue` moves
    nothing; from it on, a settlement writes (the store settles only licences that are due,
    so a statement's cost does not grow with the licences that earned nothing since)."""
    if settled.closed or settled.time_earned >= m.price:
        return m.not_after
    term = m.not_after - m.not_before
    # earned(t) > time_earned  <=>  price * (t - not_before) >= (time_earned + 1) * term
    wait = -(-(settled.time_earned + 1) * term // m.price)
    return min(m.not_before + wait, m.not_after)


def deposit(advertiser_key: bytes, amount: int, at: int) -> Posting:
    """Credit an advertiser with money from outside. Refuses ``amount <= 0``
    (INVALID_REQUEST)."""
    if amount <= 0:
        raise LicentiaError(Reason.INVALID_REQUEST, "a deposit is a positive amount")
    return Posting(
        Kind.DEPOSIT,
        b"",
        at,
        (Entry(Account.external(), -amount), Entry(Account.advertiser(advertiser_key), amount)),
    )


def shortfall(balance: int, m: LicenceMoney) -> int:
    """How much the advertiser's available ``balance`` lacks to escrow the licence (0 if it
    is enough). The caller refuses the issuance when it is not 0."""
    return max(m.escrow_total - balance, 0)


def escrow(m: LicenceMoney, at: int) -> Posting | None:
    """Set the licence's :attr:`~LicenceMoney.escrow_total` aside from the advertiser's
    balance (None for a free licence). Check :func:`shortfall` first."""
    return _move(
        Kind.ESCROW,
        m.licence_id,
        at,
        Account.advertiser(m.advertiser_key),
        [(Account.escrow(m.licence_id), m.escrow_total)],
    )


def accrue(m: LicenceMoney, settled: Settled, at: int) -> tuple[Posting | None, Settled]:
    """Pay the holder (and the fee) the time price earned by ``at`` and not yet paid.

    Cumulative: the holder's total becomes ``split(earned(price, …, at), fee_bps)[0]`` and the
    fee's the rest, whatever settlements came before; never beyond ``not_after``, never
    backwards (an earlier ``at`` moves nothing), and nothing once closed.
    """
    if settled.closed:
        return None, settled
    target = max(earned(m.price, m.not_before, m.not_after, at), settled.time_earned)
    if target == settled.time_earned:
        return None, settled
    holder_now, fee_now = split(target, m.fee_bps)
    holder_before, fee_before = split(settled.time_earned, m.fee_bps)
    posting = _move(
        Kind.ACCRUAL,
        m.licence_id,
        at,
        Account.escrow(m.licence_id),
        [
            (Account.holder(m.holder_key), holder_now - holder_before),
            (Account.fee(), fee_now - fee_before),
        ],
    )
    return posting, replace(settled, time_earned=target)


def charge_use(m: LicenceMoney, settled: Settled, at: int) -> tuple[Posting | None, Settled]:
    """Charge one use: ``price_per_use`` from escrow, split between the holder and the fee.

    A licence without a per-use price moves nothing (None) but still counts the use. Raises
    LicentiaError USES_EXHAUSTED when every one of ``max_uses`` has been charged, and
    LICENCE_NOT_ACTIVE once the escrow is closed (what it held has been refunded).
    """
    if settled.closed:
        raise LicentiaError(Reason.LICENCE_NOT_ACTIVE, "the licence's escrow is closed")
    if m.max_uses and settled.uses_charged >= m.max_uses:
        raise LicentiaError(Reason.USES_EXHAUSTED, "every use has been charged")
    holder_part, fee_part = split(m.price_per_use, m.fee_bps)
    posting = _move(
        Kind.USE,
        m.licence_id,
        at,
        Account.escrow(m.licence_id),
        [(Account.holder(m.holder_key), holder_part), (Account.fee(), fee_part)],
    )
    return posting, replace(settled, uses_charged=settled.uses_charged + 1)


def close(m: LicenceMoney, settled: Settled, at: int) -> tuple[list[Posting], Settled]:
    """End the licence's escrow at ``at`` (revocation, or its term is over).

    Accrues the time price up to ``at`` (clamped to the term), then refunds everything left
    in escrow — the time price not earned and the uses not charged — to the advertiser.
    Idempotent: a closed licence returns no postings.
    """
    if settled.closed:
        return [], settled
    postings: list[Posting] = []
    accrued, settled = accrue(m, settled, at)
    if accrued is not None:
        postings.append(accrued)
    refund = _move(
        Kind.REFUND,
        m.licence_id,
        at,
        Account.escrow(m.licence_id),
        [(Account.advertiser(m.advertiser_key), escrow_left(m, settled))],
    )
    if refund is not None:
        postings.append(refund)
    return postings, replace(settled, closed=True)


def withdraw(holder_key: bytes, amount: int, balance: int, at: int) -> Posting:
    """Pay ``amount`` of the holder's available ``balance`` out.

    Raises LicentiaError INVALID_REQUEST for ``amount <= 0``, INSUFFICIENT_FUNDS when it is
    more than the balance.
    """
    if amount <= 0:
        raise LicentiaError(Reason.INVALID_REQUEST, "a withdrawal is a positive amount")
    if amount > balance:
        raise LicentiaError(
            Reason.INSUFFICIENT_FUNDS,
            f"the withdrawal is {amount}, the available balance is {balance}",
        )
    return Posting(
        Kind.WITHDRAWAL,
        b"",
        at,
        (Entry(Account.holder(holder_key), -amount), Entry(Account.external(), amount)),
    )


def utc_text(t: int) -> str:
    """Unix seconds ``t`` as a UTC time a person reads (``2026-12-07 04:40:12 UTC``)."""
    try:
        return datetime.datetime.fromtimestamp(t, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return f"{t} (Unix seconds)"


def check_payout_destination(usable_at: int | None, now: int) -> None:
    """Refuse a payout to a destination that is not confirmed at ``now``.

    ``usable_at`` is that of the holder's destination with the payout reference, not
    cancelled (None when there is none): PAYOUT_DESTINATION_UNKNOWN, saying how to add one;
    PAYOUT_DESTINATION_PENDING before ``usable_at``, saying when and how to cancel it.
    """
    if usable_at is None:
        raise LicentiaError(
            Reason.PAYOUT_DESTINATION_UNKNOWN,
            "this payout reference is not one of your payout destinations: add it first"
            " (AddPayoutDestination; licentia-wallet payouts add REF); it becomes usable"
            " after the exchange's payout delay",
        )
    if now < usable_at:
        raise LicentiaError(
            Reason.PAYOUT_DESTINATION_PENDING,
            f"this payout destination becomes usable at {utc_text(usable_at)}"
            f" (in {_duration(usable_at - now)}); if you did not add it, cancel it now"
            " (CancelPayoutDestination; licentia-wallet payouts cancel REF)",
        )


def _duration(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


class Balances:
    """Balances by account, moved one posting at a time; no internal account goes negative.

    A pure in-memory helper: tests keep one alongside the rules, and the store's checks
    recompute one from its entries.
    """

    __slots__ = ("_by_account",)

    def __init__(self) -> None:
        self._by_account: dict[Account, int] = {}

    def __getitem__(self, account: Account) -> int:
        """The balance of ``account`` (0 if nothing moved it)."""
        return self._by_account.get(account, 0)

    def __iter__(self) -> Iterator[Account]:
        """Every account a posting has touched."""
        return iter(self._by_account)

    def apply(self, posting: Posting) -> None:
        """Move the balances the posting names, or — if that would make an internal account
        negative — raise ValueError and move none of them."""
        moved: dict[Account, int] = {}
        for e in posting.entries:
            moved[e.account] = moved.get(e.account, 0) + e.amount
        for account, amount in moved.items():
            if account.internal and self[account] + amount < 0:
                raise ValueError(f"{posting.kind} would overdraw a {account.kind} account")
        for account, amount in moved.items():
            self._by_account[account] = self[account] + amount

    def internal_total(self) -> int:
        """The sum of every internal account: the money inside the exchange."""
        return sum(n for a, n in self._by_account.items() if a.internal)
