"""The ledger as a state machine: random deposits, issuances, clock moves, accruals, uses,
revocations, expiries and withdrawals never create, lose or overdraw money, and settlement
depends only on when it last ran, never on how often."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from licentia.errors import LicentiaError, Reason
from licentia.services import ledger
from licentia.services.ledger import Account, Kind, LicenceMoney, Posting, Settled

T0 = 1_800_000_000
ADVERTISERS = [b"adv-1", b"adv-2"]
HOLDERS = [b"hol-1", b"hol-2"]


@dataclass(slots=True)
class Tracked:
    """One licence's money terms, settlement state, and what its postings moved."""

    money: LicenceMoney
    settled: Settled = field(default_factory=Settled)
    #: The latest time the time price was settled up to (None: never).
    settled_at: int | None = None
    holder_time: int = 0
    fee_time: int = 0
    holder_uses: int = 0
    fee_uses: int = 0
    refunded: int = 0


class LedgerMachine(RuleBasedStateMachine):
    """A model exchange driven only by the ledger's rules."""

    def __init__(self) -> None:
        super().__init__()
        self.balances = ledger.Balances()
        self.now = T0
        self.deposited = 0
        self.withdrawn = 0
        self.licences: list[Tracked] = []

    # -- helpers -----------------------------------------------------------------------------
    def _post(self, posting: Posting, licence: Tracked | None = None) -> None:
        assert sum(e.amount for e in posting.entries) == 0
        assert all(e.amount != 0 for e in posting.entries)
        self.balances.apply(posting)  # raises if an internal account would go negative
        if licence is None:
            return
        m = licence.money
        holder = posting.amount_for(Account.holder(m.holder_key))
        fee = posting.amount_for(Account.fee())
        if posting.kind == Kind.ACCRUAL:
            licence.holder_time += holder
            licence.fee_time += fee
        elif posting.kind == Kind.USE:
            licence.holder_uses += holder
            licence.fee_uses += fee
        elif posting.kind == Kind.REFUND:
            licence.refunded += posting.amount_for(Account.advertiser(m.advertiser_key))

    def _settled_up_to(self, licence: Tracked, at: int) -> None:
        if licence.settled_at is None or at > licence.settled_at:
            licence.settled_at = at

    # -- rules -------------------------------------------------------------------------------
    @rule(advertiser=st.sampled_from(ADVERTISERS), amount=st.integers(1, 5_000))
    def deposit(self, advertiser: bytes, amount: int) -> None:
        self._post(ledger.deposit(advertiser, amount, self.now))
        self.deposited += amount

    @rule(
        advertiser=st.sampled_from(ADVERTISERS),
        holder=st.sampled_from(HOLDERS),
        price=st.integers(0, 3_000),
        per_use=st.integers(0, 300),
        max_uses=st.integers(0, 5),
        fee_bps=st.sampled_from([0, 1, 999, 1000, 3333, 5000]),
        starts_in=st.integers(-50, 200),
        term=st.integers(1, 1_000),
        top_up=st.booleans(),
    )
    def issue(
        self,
        advertiser: bytes,
        holder: bytes,
        price: int,
        per_use: int,
        max_uses: int,
        fee_bps: int,
        starts_in: int,
        term: int,
        top_up: bool,
    ) -> None:
        """Issue a licence if the advertiser can pay for it (with ``top_up``, after depositing
        what it lacks)."""
        m = LicenceMoney(
            licence_id=len(self.licences).to_bytes(16, "big"),
            advertiser_key=advertiser,
            holder_key=holder,
            price=price,
            price_per_use=per_use if max_uses else 0,
            max_uses=max_uses,
            fee_bps=fee_bps,
            not_before=self.now + starts_in,
            not_after=self.now + starts_in + term,
        )
        held = self.balances[Account.advertiser(advertiser)]
        if top_up and held < m.escrow_total:
            self.deposit(advertiser, m.escrow_total - held)
            held = m.escrow_total
        missing = ledger.shortfall(held, m)
        assert missing == max(m.escrow_total - held, 0)
        if missing:
            return  # refused: the exchange issues nothing and moves nothing
        licence = Tracked(m)
        escrowed = ledger.escrow(m, self.now)
        assert (escrowed is None) == (m.escrow_total == 0)
        if escrowed is not None:
            self._post(escrowed)
        self.licences.append(licence)

    @rule(seconds=st.integers(0, 400))
    def tick(self, seconds: int) -> None:
        self.now += seconds

    @precondition(lambda self: self.licences)
    @rule(pick=st.integers(0, 10**6))
    def accrue(self, pick: int) -> None:
        licence = self.licences[pick % len(self.licences)]
        posting, licence.settled = ledger.accrue(licence.money, licence.settled, self.now)
        if posting is not None:
            self._post(posting, licence)
        if not licence.settled.closed:
            self._settled_up_to(licence, self.now)
        assert ledger.accrue(licence.money, licence.settled, self.now) == (None, licence.settled)

    @precondition(lambda self: self.licences)
    @rule()
    def settle_everything(self) -> None:
        """What the store does before a statement: accrue every licence up to now."""
        for pick in range(len(self.licences)):
            self.accrue(pick)

    @precondition(lambda self: self.licences)
    @rule(pick=st.integers(0, 10**6))
    def use(self, pick: int) -> None:
        licence = self.licences[pick % len(self.licences)]
        m, s = licence.money, licence.settled
        refusal = (
            Reason.LICENCE_NOT_ACTIVE
            if s.closed
            else Reason.USES_EXHAUSTED
            if 0 < m.max_uses <= s.uses_charged
            else None
        )
        if refusal is not None:
            with pytest.raises(LicentiaError, check=lambda e: e.reason == refusal):
                ledger.charge_use(m, s, self.now)
            return
        posting, licence.settled = ledger.charge_use(m, s, self.now)
        assert not s.closed
        assert licence.settled.uses_charged == s.uses_charged + 1
        assert m.max_uses == 0 or licence.settled.uses_charged <= m.max_uses
        assert (posting is None) == (m.price_per_use == 0)
        if posting is not None:
            self._post(posting, licence)

    @precondition(lambda self: self.licences)
    @rule(pick=st.integers(0, 10**6))
    def use_them_all(self, pick: int) -> None:
        """Report uses until the licence refuses one."""
        for _ in range(self.licences[pick % len(self.licences)].money.max_uses + 1):
            self.use(pick)

    @precondition(lambda self: self.licences)
    @rule(pick=st.integers(0, 10**6))
    def revoke(self, pick: int) -> None:
        licence = self.licences[pick % len(self.licences)]
        was_closed = licence.settled.closed
        postings, licence.settled = ledger.close(licence.money, licence.settled, self.now)
        assert licence.settled.closed
        if was_closed:
            assert postings == []
            return
        for p in postings:
            self._post(p, licence)
        self._settled_up_to(licence, self.now)

    @precondition(lambda self: self.licences)
    @rule(pick=st.integers(0, 10**6), late=st.integers(0, 100), then_close=st.booleans())
    def expire(self, pick: int, late: int, then_close: bool) -> None:
        """The clock passes the end of a licence's term and it is settled (the store closes
        it then; without closing, the time price is all paid and the uses stay open)."""
        licence = self.licences[pick % len(self.licences)]
        self.now = max(self.now, licence.money.not_after + late)
        if then_close:
            self.revoke(pick)
            return
        self.accrue(pick)
        if not licence.settled.closed:
            assert licence.settled.time_earned == licence.money.price

    @rule(holder=st.sampled_from(HOLDERS), amount=st.integers(-5, 5_000))
    def withdraw(self, holder: bytes, amount: int) -> None:
        balance = self.balances[Account.holder(holder)]
        refusal = (
            Reason.INVALID_REQUEST
            if amount <= 0
            else Reason.INSUFFICIENT_FUNDS
            if amount > balance
            else None
        )
        if refusal is not None:
            with pytest.raises(LicentiaError, check=lambda e: e.reason == refusal):
                ledger.withdraw(holder, amount, balance, self.now)
            return
        posting = ledger.withdraw(holder, amount, balance, self.now)
        self._post(posting)
        self.withdrawn += amount

    @precondition(lambda self: self.licences)
    @rule(pick=st.integers(0, 10**6))
    def withdraw_everything(self, pick: int) -> None:
        holder = self.licences[pick % len(self.licences)].money.holder_key
        balance = self.balances[Account.holder(holder)]
        self.withdraw(holder, balance + 1)  # refused
        self.withdraw(holder, balance)  # refused if 0

    # -- invariants --------------------------------------------------------------------------
    @invariant()
    def no_internal_account_is_negative(self) -> None:
        for account in self.balances:
            assert not account.internal or self.balances[account] >= 0

    @invariant()
    def money_is_neither_created_nor_lost(self) -> None:
        inside = self.deposited - self.withdrawn
        assert self.balances.internal_total() == inside
        assert self.balances[Account.external()] == -inside

    @invariant()
    def every_escrow_holds_what_is_left(self) -> None:
        for licence in self.licences:
            m, s = licence.money, licence.settled
            assert self.balances[Account.escrow(m.licence_id)] == ledger.escrow_left(m, s)

    @invariant()
    def settlement_depends_only_on_when_it_last_ran(self) -> None:
        for licence in self.licences:
            m, s = licence.money, licence.settled
            at = licence.settled_at
            expected = 0 if at is None else ledger.earned(m.price, m.not_before, m.not_after, at)
            assert s.time_earned == expected
            assert (licence.holder_time, licence.fee_time) == ledger.split(expected, m.fee_bps)
            per_use = ledger.split(m.price_per_use, m.fee_bps)
            assert licence.holder_uses == s.uses_charged * per_use[0]
            assert licence.fee_uses == s.uses_charged * per_use[1]
            if at is not None and not s.closed:
                assert ledger.accrue(m, s, at) == (None, s)

    @invariant()
    def earnings_and_fees_are_rounded_down(self) -> None:
        """Checked from the definitions, without the ledger's own arithmetic."""
        for licence in self.licences:
            m, s = licence.money, licence.settled
            term = m.not_after - m.not_before
            at = licence.settled_at
            elapsed = 0 if at is None else min(max(at - m.not_before, 0), term)
            # time_earned = floor(price * elapsed / term)
            assert s.time_earned * term <= m.price * elapsed < (s.time_earned + 1) * term
            for gross, fee in [
                (s.time_earned, licence.fee_time),
                (s.uses_charged * m.price_per_use, licence.fee_uses),
            ]:
                # fee = floor(gross * bps / 10000) (per use: the same for each use)
                assert fee * 10_000 <= gross * m.fee_bps
                assert fee <= gross - fee
            if s.uses_charged and m.price_per_use:
                fee = licence.fee_uses // s.uses_charged
                assert fee * 10_000 <= m.price_per_use * m.fee_bps < (fee + 1) * 10_000
            fee = licence.fee_time
            assert fee * 10_000 <= s.time_earned * m.fee_bps < (fee + 1) * 10_000

    @invariant()
    def a_fully_settled_licence_accounts_for_its_whole_escrow(self) -> None:
        for licence in self.licences:
            m, s = licence.money, licence.settled
            paid_out = s.time_earned == m.price and s.uses_charged >= m.max_uses
            if not (s.closed or paid_out):
                assert licence.refunded == 0
                continue
            earnings = licence.holder_time + licence.holder_uses
            fees = licence.fee_time + licence.fee_uses
            assert earnings + fees + licence.refunded == m.escrow_total
            assert self.balances[Account.escrow(m.licence_id)] == 0


LedgerMachine.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestLedgerMachine = LedgerMachine.TestCase
