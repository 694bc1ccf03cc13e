"""The ledger's pure money rules: postings, escrow, pro-rata accrual, uses, refunds, payouts."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from licentia.errors import LicentiaError, Reason
from licentia.services import ledger
from licentia.services.ledger import Account, Entry, Kind, LicenceMoney, Posting, Settled

DAY = 86400
T0 = 1_800_000_000
LID = b"L" * 16
ADV = b"a" * 32
HOL = b"h" * 32
ESCROW = Account.escrow(LID)
ADVERTISER = Account.advertiser(ADV)
HOLDER = Account.holder(HOL)
FEE = Account.fee()
EXTERNAL = Account.external()


def _money(**changes: Any) -> LicenceMoney:
    """3000 over 30 days at a 10% fee, unless told otherwise."""
    fields: dict[str, Any] = {
        "licence_id": LID,
        "advertiser_key": ADV,
        "holder_key": HOL,
        "price": 3000,
        "price_per_use": 0,
        "max_uses": 0,
        "fee_bps": 1000,
        "not_before": T0,
        "not_after": T0 + 30 * DAY,
    }
    fields.update(changes)
    return LicenceMoney(**fields)


def _refused(reason: Reason) -> pytest.RaisesExc[LicentiaError]:
    return pytest.raises(LicentiaError, check=lambda e: e.reason == reason)


def _net(postings: list[Posting | None], account: Account) -> int:
    return sum(p.amount_for(account) for p in postings if p is not None)


# -- accounts and postings -------------------------------------------------------------------


def test_account_constructors_name_the_kind_and_key() -> None:
    assert ADVERTISER == Account("advertiser", ADV)
    assert HOLDER == Account("holder", HOL)
    assert ESCROW == Account("escrow", LID)
    assert FEE == Account("fee", b"")
    assert EXTERNAL == Account("external")
    assert [a.internal for a in (ADVERTISER, HOLDER, ESCROW, FEE, EXTERNAL)] == [
        True,
        True,
        True,
        True,
        False,
    ]
    assert len({ADVERTISER, Account.advertiser(ADV), Account.holder(ADV)}) == 2


@pytest.mark.parametrize(
    ("kind", "key"),
    [("bank", b""), ("advertiser", b""), ("holder", b""), ("escrow", b""), ("fee", b"x")],
)
def test_account_refuses_an_unknown_kind_or_a_wrong_key(kind: str, key: bytes) -> None:
    with pytest.raises(ValueError, match="account"):
        Account(kind, key)


def test_posting_keeps_its_entries_and_nets_an_account() -> None:
    p = Posting(Kind.ACCRUAL, LID, T0, (Entry(ESCROW, -10), Entry(HOLDER, 9), Entry(FEE, 1)))
    assert (p.kind, p.kind.value, p.licence_id, p.at) == (Kind.ACCRUAL, "ACCRUAL", LID, T0)
    assert [p.amount_for(a) for a in (ESCROW, HOLDER, FEE, ADVERTISER)] == [-10, 9, 1, 0]


@pytest.mark.parametrize(
    "entries",
    [
        (),
        (Entry(ESCROW, -1), Entry(HOLDER, 2)),
        (Entry(ESCROW, -1), Entry(HOLDER, 1), Entry(FEE, 0)),
        (Entry(ESCROW, 0),),
        (Entry(ESCROW, -1.0), Entry(HOLDER, 1.0)),  # type: ignore[arg-type]
    ],
    ids=["empty", "unbalanced", "zero-entry", "only-zero", "float"],
)
def test_posting_refuses_bad_entries(entries: tuple[Entry, ...]) -> None:
    with pytest.raises(ValueError, match=r"posting|entry"):
        Posting(Kind.ACCRUAL, LID, T0, entries)


# -- earned and split ------------------------------------------------------------------------


def test_earned_is_pro_rata_over_the_term() -> None:
    end = T0 + 30 * DAY
    assert ledger.earned(3000, T0, end, T0 + 10 * DAY) == 1000
    assert ledger.earned(3000, T0, end, T0 + 15 * DAY) == 1500
    assert ledger.earned(3000, T0, end, end) == 3000


def test_earned_is_clamped_to_the_term() -> None:
    end = T0 + 30 * DAY
    assert ledger.earned(3000, T0, end, T0 - DAY) == 0
    assert ledger.earned(3000, T0, end, T0) == 0
    assert ledger.earned(3000, T0, end, end + 365 * DAY) == 3000


def test_earned_rounds_down() -> None:
    assert [ledger.earned(7, 0, 3, t) for t in range(5)] == [0, 2, 4, 7, 7]
    assert [ledger.earned(1, 0, 2, t) for t in range(3)] == [0, 0, 1]
    assert ledger.earned(1, T0, T0 + 30 * DAY, T0 + 30 * DAY - 1) == 0
    assert ledger.earned(3000, T0, T0 + 30 * DAY, T0 + 1) == 0  # 3000 * 1 // 2592000
    assert ledger.earned(3000, T0, T0 + 30 * DAY, T0 + 864) == 1


@pytest.mark.parametrize(("price", "not_after"), [(1, T0), (1, T0 - 1), (-1, T0 + 1)])
def test_earned_refuses_an_empty_term_or_a_negative_price(price: int, not_after: int) -> None:
    with pytest.raises(ValueError, match=r"term|price"):
        ledger.earned(price, T0, not_after, T0)


def test_split_takes_the_fee_rounded_down() -> None:
    assert ledger.split(1000, 1000) == (900, 100)
    assert ledger.split(19, 1000) == (18, 1)
    assert ledger.split(9, 1000) == (9, 0)
    assert ledger.split(3, 5000) == (2, 1)
    assert ledger.split(1, 5000) == (1, 0)
    assert ledger.split(1234, 0) == (1234, 0)
    assert ledger.split(0, 2500) == (0, 0)


@pytest.mark.parametrize("fee_bps", [-1, 5001, 10_000])
def test_split_and_check_fee_bps_refuse_a_fee_outside_0_to_5000(fee_bps: int) -> None:
    with _refused(Reason.INVALID_REQUEST):
        ledger.check_fee_bps(fee_bps)
    with _refused(Reason.INVALID_REQUEST):
        ledger.split(100, fee_bps)


def test_check_fee_bps_accepts_its_bounds() -> None:
    ledger.check_fee_bps(0)
    ledger.check_fee_bps(ledger.MAX_FEE_BPS)
    assert ledger.MAX_FEE_BPS == 5000


def test_split_refuses_a_negative_amount() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        ledger.split(-1, 1000)


# -- licence money ---------------------------------------------------------------------------


def test_escrow_total_is_the_price_and_every_use() -> None:
    assert _money().escrow_total == 3000
    assert _money(price_per_use=250, max_uses=4).escrow_total == 4000
    assert _money(price=0, price_per_use=5, max_uses=3).escrow_total == 15
    assert _money(price=0, max_uses=3).escrow_total == 0


@pytest.mark.parametrize(
    "changes",
    [
        {"price": -1},
        {"price_per_use": -1, "max_uses": 1},
        {"max_uses": -1},
        {"price_per_use": 1, "max_uses": 0},
        {"fee_bps": 5001},
        {"fee_bps": -1},
        {"not_after": T0},
        {"not_after": T0 - 1},
        {"licence_id": b""},
        {"advertiser_key": b""},
        {"holder_key": b""},
        {"price": ledger.MAX_MINOR + 1},
        {"price": 1, "price_per_use": (ledger.MAX_MINOR + 1) // 2, "max_uses": 2},
    ],
)
def test_licence_money_refuses_bad_terms(changes: dict[str, Any]) -> None:
    with _refused(Reason.INVALID_REQUEST):
        _money(**changes)


# -- deposit, escrow -------------------------------------------------------------------------


def test_deposit_moves_money_from_outside_to_the_advertiser() -> None:
    p = ledger.deposit(ADV, 5000, T0)
    assert (p.kind, p.licence_id, p.at) == (Kind.DEPOSIT, b"", T0)
    assert set(p.entries) == {Entry(EXTERNAL, -5000), Entry(ADVERTISER, 5000)}


@pytest.mark.parametrize("amount", [0, -1])
def test_deposit_refuses_a_non_positive_amount(amount: int) -> None:
    with _refused(Reason.INVALID_REQUEST):
        ledger.deposit(ADV, amount, T0)


def test_shortfall_is_what_the_balance_lacks() -> None:
    m = _money(price_per_use=250, max_uses=4)
    assert ledger.shortfall(0, m) == 4000
    assert ledger.shortfall(3999, m) == 1
    assert ledger.shortfall(4000, m) == 0
    assert ledger.shortfall(10**9, m) == 0
    assert ledger.shortfall(0, _money(price=0)) == 0


def test_escrow_sets_the_whole_price_aside() -> None:
    p = ledger.escrow(_money(price_per_use=250, max_uses=4), T0)
    assert p is not None
    assert (p.kind, p.licence_id, p.at) == (Kind.ESCROW, LID, T0)
    assert set(p.entries) == {Entry(ADVERTISER, -4000), Entry(ESCROW, 4000)}


def test_escrow_of_a_free_licence_moves_nothing() -> None:
    assert ledger.escrow(_money(price=0), T0) is None


# -- accrual ---------------------------------------------------------------------------------


def test_accrue_pays_the_time_earned_split_with_the_fee() -> None:
    p, s = ledger.accrue(_money(), Settled(), T0 + 10 * DAY)
    assert p is not None
    assert (p.kind, p.licence_id, p.at) == (Kind.ACCRUAL, LID, T0 + 10 * DAY)
    assert set(p.entries) == {Entry(ESCROW, -1000), Entry(HOLDER, 900), Entry(FEE, 100)}
    assert s == Settled(time_earned=1000, uses_charged=0, closed=False)


def test_accrue_is_path_independent() -> None:
    m = _money()
    once, s_once = ledger.accrue(m, Settled(), T0 + 10 * DAY)
    steps: list[Posting | None] = []
    s = Settled()
    for day in (1, 3, 7, 10):
        p, s = ledger.accrue(m, s, T0 + day * DAY)
        steps.append(p)
    assert s == s_once
    for account in (ESCROW, HOLDER, FEE):
        assert _net(steps, account) == _net([once], account)


def test_accrue_of_7_over_3_seconds_pays_the_split_of_what_is_earned_each_step() -> None:
    m = _money(price=7, fee_bps=5000, not_after=T0 + 3)
    s = Settled()
    paid: list[Posting | None] = []
    for t, holder, fee in [(1, 1, 1), (2, 2, 2), (3, 4, 3)]:
        p, s = ledger.accrue(m, s, T0 + t)
        paid.append(p)
        assert (_net(paid, HOLDER), _net(paid, FEE), s.time_earned) == (holder, fee, holder + fee)


def test_accrue_splits_the_cumulative_total_not_each_increment() -> None:
    # 20 at 10% over 20 seconds, settled at 9, 18 and 20 seconds: splitting each increment
    # (9, 9, 2) would round every fee down to 0; the cumulative split pays (18, 2).
    m = _money(price=20, not_after=T0 + 20)
    s = Settled()
    paid: list[Posting | None] = []
    for t, holder, fee in [(9, 9, 0), (18, 17, 1), (20, 18, 2)]:
        p, s = ledger.accrue(m, s, T0 + t)
        paid.append(p)
        assert (_net(paid, HOLDER), _net(paid, FEE)) == (holder, fee)
    assert _net(paid, ESCROW) == -20


def test_accrue_of_price_1_pays_only_at_the_end() -> None:
    m = _money(price=1, fee_bps=0, not_after=T0 + 2)
    p, s = ledger.accrue(m, Settled(), T0 + 1)
    assert (p, s) == (None, Settled())
    p, s = ledger.accrue(m, s, T0 + 2)
    assert p is not None
    assert set(p.entries) == {Entry(ESCROW, -1), Entry(HOLDER, 1)}


def test_accrue_twice_at_the_same_time_moves_nothing_the_second_time() -> None:
    m = _money()
    _, s = ledger.accrue(m, Settled(), T0 + 10 * DAY)
    assert ledger.accrue(m, s, T0 + 10 * DAY) == (None, s)


def test_accrue_moves_nothing_before_the_term_or_backwards() -> None:
    m = _money()
    assert ledger.accrue(m, Settled(), T0 - DAY) == (None, Settled())
    assert ledger.accrue(m, Settled(), T0) == (None, Settled())
    _, s = ledger.accrue(m, Settled(), T0 + 10 * DAY)
    assert ledger.accrue(m, s, T0 + 5 * DAY) == (None, s)


def test_accrue_never_goes_beyond_the_end_of_the_term() -> None:
    m = _money()
    p, s = ledger.accrue(m, Settled(), T0 + 300 * DAY)
    assert p is not None
    assert set(p.entries) == {Entry(ESCROW, -3000), Entry(HOLDER, 2700), Entry(FEE, 300)}
    assert s.time_earned == 3000
    assert ledger.accrue(m, s, T0 + 400 * DAY) == (None, s)


def test_accrue_moves_nothing_once_closed() -> None:
    s = Settled(closed=True)
    assert ledger.accrue(_money(), s, T0 + 10 * DAY) == (None, s)


def test_accrue_with_no_fee_pays_the_holder_only() -> None:
    p, _ = ledger.accrue(_money(fee_bps=0), Settled(), T0 + 10 * DAY)
    assert p is not None
    assert set(p.entries) == {Entry(ESCROW, -1000), Entry(HOLDER, 1000)}


# -- uses ------------------------------------------------------------------------------------


def test_charge_use_moves_one_use_price_split_with_the_fee() -> None:
    m = _money(price_per_use=250, max_uses=4)
    p, s = ledger.charge_use(m, Settled(time_earned=1000), T0 + DAY)
    assert p is not None
    assert (p.kind, p.licence_id, p.at) == (Kind.USE, LID, T0 + DAY)
    assert set(p.entries) == {Entry(ESCROW, -250), Entry(HOLDER, 225), Entry(FEE, 25)}
    assert s == Settled(time_earned=1000, uses_charged=1)


def test_charge_use_splits_each_use_on_its_own() -> None:
    m = _money(price=0, price_per_use=19, max_uses=2)
    p1, s = ledger.charge_use(m, Settled(), T0)
    p2, s = ledger.charge_use(m, s, T0)
    assert (_net([p1, p2], HOLDER), _net([p1, p2], FEE), s.uses_charged) == (36, 2, 2)


def test_charge_use_refuses_once_every_use_is_charged() -> None:
    m = _money(price_per_use=250, max_uses=2)
    with _refused(Reason.USES_EXHAUSTED):
        ledger.charge_use(m, Settled(uses_charged=2), T0)


def test_charge_use_limits_free_uses_too() -> None:
    m = _money(max_uses=2)
    p, s = ledger.charge_use(m, Settled(uses_charged=1), T0)
    assert (p, s) == (None, Settled(uses_charged=2))
    with _refused(Reason.USES_EXHAUSTED):
        ledger.charge_use(m, s, T0)


def test_charge_use_without_a_per_use_price_only_counts() -> None:
    m = _money()  # max_uses 0: uses are not limited
    assert ledger.charge_use(m, Settled(uses_charged=41), T0) == (None, Settled(uses_charged=42))


def test_charge_use_refuses_once_closed() -> None:
    m = _money(price_per_use=250, max_uses=4)
    with _refused(Reason.LICENCE_NOT_ACTIVE):
        ledger.charge_use(m, Settled(closed=True), T0)
    with _refused(Reason.LICENCE_NOT_ACTIVE):
        ledger.charge_use(_money(), Settled(closed=True), T0)


# -- close -----------------------------------------------------------------------------------


def test_revoking_on_day_10_pays_a_third_and_refunds_the_rest() -> None:
    postings, s = ledger.close(_money(), Settled(), T0 + 10 * DAY)
    assert [p.kind for p in postings] == [Kind.ACCRUAL, Kind.REFUND]
    accrual, refund = postings
    assert set(accrual.entries) == {Entry(ESCROW, -1000), Entry(HOLDER, 900), Entry(FEE, 100)}
    assert set(refund.entries) == {Entry(ESCROW, -2000), Entry(ADVERTISER, 2000)}
    assert (refund.licence_id, refund.at) == (LID, T0 + 10 * DAY)
    assert s == Settled(time_earned=1000, uses_charged=0, closed=True)


def test_close_refunds_the_uses_not_charged() -> None:
    m = _money(price_per_use=250, max_uses=4)
    _, s = ledger.accrue(m, Settled(), T0 + 5 * DAY)
    _, s = ledger.charge_use(m, s, T0 + 5 * DAY)
    postings, s = ledger.close(m, s, T0 + 10 * DAY)
    assert _net(list(postings), HOLDER) == 450  # days 5-10: 500 earned, 450 to the holder
    assert _net(list(postings), ADVERTISER) == 2000 + 3 * 250
    assert s == Settled(time_earned=1000, uses_charged=1, closed=True)


def test_close_before_the_term_refunds_everything() -> None:
    m = _money(price_per_use=250, max_uses=4)
    postings, s = ledger.close(m, Settled(), T0 - DAY)
    assert len(postings) == 1
    assert set(postings[0].entries) == {Entry(ESCROW, -4000), Entry(ADVERTISER, 4000)}
    assert s == Settled(closed=True)


def test_close_after_the_term_pays_the_rest_of_the_time_price() -> None:
    _, s = ledger.accrue(_money(), Settled(), T0 + 10 * DAY)
    postings, s = ledger.close(_money(), s, T0 + 31 * DAY)
    assert [p.kind for p in postings] == [Kind.ACCRUAL]
    assert set(postings[0].entries) == {
        Entry(ESCROW, -2000),
        Entry(HOLDER, 1800),
        Entry(FEE, 200),
    }
    assert s == Settled(time_earned=3000, closed=True)


def test_close_of_a_fully_settled_licence_only_marks_it_closed() -> None:
    m = _money(price_per_use=250, max_uses=1)
    _, s = ledger.accrue(m, Settled(), T0 + 30 * DAY)
    _, s = ledger.charge_use(m, s, T0 + 30 * DAY)
    assert ledger.close(m, s, T0 + 30 * DAY) == ([], replace(s, closed=True))


def test_close_of_a_free_licence_moves_nothing() -> None:
    assert ledger.close(_money(price=0), Settled(), T0 + DAY) == ([], Settled(closed=True))


def test_close_is_idempotent() -> None:
    m = _money()
    _, s = ledger.close(m, Settled(), T0 + 10 * DAY)
    assert ledger.close(m, s, T0 + 10 * DAY) == ([], s)
    assert ledger.close(m, s, T0 + 20 * DAY) == ([], s)


def test_close_earlier_than_the_last_accrual_refunds_only_what_is_left() -> None:
    m = _money()
    _, s = ledger.accrue(m, Settled(), T0 + 20 * DAY)
    postings, s = ledger.close(m, s, T0 + 10 * DAY)
    assert [p.kind for p in postings] == [Kind.REFUND]
    assert postings[0].amount_for(ADVERTISER) == 1000
    assert s == Settled(time_earned=2000, closed=True)


# -- escrow left, pending --------------------------------------------------------------------


def test_escrow_left_and_holder_pending_follow_settlement() -> None:
    m = _money(price_per_use=250, max_uses=4)
    s = Settled()
    assert (ledger.escrow_left(m, s), ledger.holder_pending(m, s)) == (4000, 2700 + 4 * 225)
    _, s = ledger.accrue(m, s, T0 + 10 * DAY)
    _, s = ledger.charge_use(m, s, T0 + 10 * DAY)
    assert (ledger.escrow_left(m, s), ledger.holder_pending(m, s)) == (2750, 1800 + 3 * 225)
    _, s = ledger.close(m, s, T0 + 10 * DAY)
    assert (ledger.escrow_left(m, s), ledger.holder_pending(m, s)) == (0, 0)


def test_holder_pending_of_unlimited_free_uses_is_the_time_price() -> None:
    assert ledger.holder_pending(_money(), Settled(uses_charged=9)) == 2700


# -- withdraw --------------------------------------------------------------------------------


def test_withdraw_pays_the_holder_out() -> None:
    p = ledger.withdraw(HOL, 900, 900, T0)
    assert (p.kind, p.licence_id, p.at) == (Kind.WITHDRAWAL, b"", T0)
    assert set(p.entries) == {Entry(HOLDER, -900), Entry(EXTERNAL, 900)}


@pytest.mark.parametrize("amount", [0, -1])
def test_withdraw_refuses_a_non_positive_amount(amount: int) -> None:
    with _refused(Reason.INVALID_REQUEST):
        ledger.withdraw(HOL, amount, 900, T0)


def test_withdraw_refuses_more_than_the_balance() -> None:
    with _refused(Reason.INSUFFICIENT_FUNDS):
        ledger.withdraw(HOL, 901, 900, T0)
    with _refused(Reason.INSUFFICIENT_FUNDS):
        ledger.withdraw(HOL, 1, 0, T0)


# -- balances --------------------------------------------------------------------------------


def test_balances_apply_postings() -> None:
    b = ledger.Balances()
    b.apply(ledger.deposit(ADV, 5000, T0))
    assert (b[ADVERTISER], b[EXTERNAL], b[HOLDER]) == (5000, -5000, 0)
    assert b.internal_total() == 5000
    assert set(b) == {ADVERTISER, EXTERNAL}


def test_balances_refuse_to_overdraw_an_internal_account_and_move_nothing() -> None:
    b = ledger.Balances()
    b.apply(ledger.deposit(ADV, 100, T0))
    p = Posting(Kind.ESCROW, LID, T0, (Entry(ADVERTISER, -101), Entry(ESCROW, 101)))
    with pytest.raises(ValueError, match="overdraw"):
        b.apply(p)
    assert (b[ADVERTISER], b[ESCROW]) == (100, 0)
    with pytest.raises(ValueError, match="overdraw"):
        b.apply(ledger.withdraw(HOL, 1, 1, T0))
    assert b[HOLDER] == 0


def test_balances_net_several_entries_on_one_account() -> None:
    b = ledger.Balances()
    b.apply(ledger.deposit(ADV, 10, T0))
    # -15 then +5 nets to -10: allowed, though the first entry alone would overdraw.
    b.apply(
        Posting(
            Kind.ESCROW,
            LID,
            T0,
            (Entry(ADVERTISER, -15), Entry(ADVERTISER, 5), Entry(ESCROW, 10)),
        )
    )
    assert (b[ADVERTISER], b[ESCROW]) == (0, 10)


def test_a_licence_from_deposit_to_payout() -> None:
    m = _money(price_per_use=250, max_uses=4)
    b = ledger.Balances()
    b.apply(ledger.deposit(ADV, 5000, T0 - DAY))
    assert ledger.shortfall(b[ADVERTISER], m) == 0
    escrowed = ledger.escrow(m, T0 - DAY)
    assert escrowed is not None
    b.apply(escrowed)
    s = Settled()
    for day in (3, 10):
        p, s = ledger.accrue(m, s, T0 + day * DAY)
        assert p is not None
        b.apply(p)
        p, s = ledger.charge_use(m, s, T0 + day * DAY)
        assert p is not None
        b.apply(p)
    postings, s = ledger.close(m, s, T0 + 10 * DAY)
    assert [p.kind for p in postings] == [Kind.REFUND]
    for p in postings:
        b.apply(p)
    b.apply(ledger.withdraw(HOL, b[HOLDER], b[HOLDER], T0 + 11 * DAY))
    # 1000 earned (900 + 100), two uses (2 x 225 + 2 x 25), 1000 + 500 refunded.
    assert (b[ADVERTISER], b[ESCROW], b[HOLDER], b[FEE]) == (1000 + 2000 + 500, 0, 0, 150)
    assert b[EXTERNAL] == -5000 + 1350
    assert b.internal_total() == 5000 - 1350


@pytest.mark.parametrize(
    ("price", "term", "earned_before"),
    [
        (45_000, 90 * 86_400, 0),
        (45_000, 90 * 86_400, 12_345),
        (7, 30 * 86_400, 3),
        (1, 10, 0),
        (3_000, 365 * 86_400, 2_999),
        (0, 100, 0),
        (10**15, 86_400, 5 * 10**14),
    ],
)
def test_next_due_is_the_first_second_a_settlement_moves_money(
    price: int, term: int, earned_before: int
) -> None:
    m = LicenceMoney(b"L", b"a", b"h", price, 0, 0, 1000, 1_000, 1_000 + term)
    settled = Settled(time_earned=earned_before)
    due = ledger.next_due(m, settled)
    assert m.not_before < due <= m.not_after
    if due < m.not_after:  # before it nothing is earned; at it, a minor unit is
        assert ledger.accrue(m, settled, due - 1)[0] is None
        assert ledger.accrue(m, settled, due)[0] is not None
    else:  # nothing more to earn before the end, where the licence closes
        assert ledger.accrue(m, settled, due - 1)[0] is None
    assert ledger.next_due(m, Settled(time_earned=earned_before, closed=True)) == m.not_after
