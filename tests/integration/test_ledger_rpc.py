"""The exchange's money over real gRPC: deposits, escrow at issuance, accrual pro rata over the
term, per-use charges, refunds on revocation and expiry, withdrawals, statements, retries and
restarts. Each rule and each refusal has its own test; a refused call changes no balance and no
statement (re-read through the API), and every test ends with the store's own check of the
ledger's invariants. A real exchange on 127.0.0.1:0 whose clock the test holds still and moves
(``services.app.build(clock=...)``), so every amount below is exact."""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped]
import pytest

from licentia.clients.channel import SignedChannel
from licentia.errors import Reason
from licentia.keys import PrivateKey
from licentia.presentation import present
from licentia.services import server
from licentia.services.app import DB_FILE
from licentia.services.deps import DEFAULT_PAYOUT_DELAY_SECONDS, Settings
from licentia.services.store.common import only_nonces
from licentia.v1 import (
    exchange_pb2,
    ledger_pb2,
    licences_pb2,
    records_pb2,
    registry_pb2,
    verification_pb2,
)

from .exchange_harness import (
    FUNDS,
    Exchange,
    ExchangeError,
    Party,
    ad_scope,
    add_standing_rule,
    approve_request,
    offer_refs,
    photo_rule,
    photo_use,
    register_advertiser,
    register_holder,
    register_platform,
    start_exchange,
)

DAY = 86400
#: The exchange's fee: 10 %, the default (restated, so a changed default is noticed).
FEE_BPS = 1000
#: No payout delay: most tests here are not about it (section 12 is), so a destination the
#: holder adds is usable at once.
SETTINGS = Settings(heartbeat_seconds=0.5, payout_delay_seconds=0)
#: The payout destinations the world's holder adds at its start.
PAYOUT_REFERENCES = ("IBAN FR76 0001", "IBAN FR76 3000 6000", "payout-1")
#: A 30-day licence at the holder's price (1.00 EUR a day).
PRICE = 3000
C = grpc.StatusCode
#: The status code each reason must travel under (the contract, restated independently).
CODE: dict[Reason, Any] = {
    Reason.INVALID_REQUEST: C.INVALID_ARGUMENT,
    Reason.NOT_OWNER: C.PERMISSION_DENIED,
    Reason.NOT_FOUND: C.NOT_FOUND,
    Reason.ALREADY_EXISTS: C.ALREADY_EXISTS,
    Reason.IDEMPOTENCY_KEY_REUSED: C.ALREADY_EXISTS,
    Reason.INSUFFICIENT_FUNDS: C.FAILED_PRECONDITION,
    Reason.REQUEST_NOT_APPROVABLE: C.FAILED_PRECONDITION,
    Reason.USES_EXHAUSTED: C.FAILED_PRECONDITION,
    Reason.UNKNOWN_KEY: C.UNAUTHENTICATED,
    Reason.PAYOUT_DESTINATION_PENDING: C.FAILED_PRECONDITION,
    Reason.PAYOUT_DESTINATION_UNKNOWN: C.FAILED_PRECONDITION,
}
K = ledger_pb2.PostingKind


def holder_part(amount: int) -> int:
    """What the holder keeps of ``amount`` (the fee is rounded down), restated."""
    return amount - amount * FEE_BPS // 10_000


# -- the world: an exchange whose clock stands still until the test moves it ------------------


class FrozenClock:
    """The exchange's clock, and every party's: still, moved only by :meth:`advance`."""

    def __init__(self) -> None:
        self.t = int(time.time())

    def now(self) -> int:
        return self.t

    def advance(self, seconds: int) -> None:
        self.t += seconds


@dataclass
class World:
    """An exchange, its clock, a holder (alice), a funded advertiser and a platform."""

    ex: Exchange
    clock: FrozenClock
    holder: Party
    adv: Party
    platform: Party

    def party(self) -> Party:
        """A new, unregistered key signing by the exchange's clock."""
        return signed_party(self.ex, self.clock)

    def new_holder(self, handle: str) -> Party:
        p = self.party()
        register_holder(p, handle)
        return p

    def new_advertiser(self, funds: int, org: str = "Other Ads") -> Party:
        p = self.party()
        register_advertiser(p, org, funds=funds)
        return p

    def check(self) -> None:
        """The store's own check of the ledger's invariants finds nothing wrong."""
        assert self.ex.app.deps.store.ledger_check() == []


def signed_party(ex: Exchange, clock: FrozenClock) -> Party:
    key = PrivateKey.generate()
    return Party(key, SignedChannel(ex.channel(), key, clock=clock.now), ex)


def rebind(p: Party, ex: Exchange, clock: FrozenClock) -> Party:
    """The same key, talking to another (restarted) exchange."""
    return Party(p.key, SignedChannel(ex.channel(), p.key, clock=clock.now), ex)


def make_world(path: Path, settings: Settings = SETTINGS) -> World:
    """A world on a new exchange; its holder has added :data:`PAYOUT_REFERENCES` (usable
    at once under :data:`SETTINGS`)."""
    clock = FrozenClock()
    ex = start_exchange(path, settings=settings, clock=clock)
    try:
        assert ex.app.deps.settings.fee_bps == FEE_BPS
        assert ex.app.deps.settings.currency == "EUR"
        holder, adv, platform = (signed_party(ex, clock) for _ in range(3))
        register_holder(holder)
        register_advertiser(adv)
        register_platform(platform)
        for reference in PAYOUT_REFERENCES:
            add_destination(holder, reference)
    except BaseException:
        ex.stop()
        raise
    return World(ex, clock, holder, adv, platform)


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    world = make_world(tmp_path / "data")
    try:
        yield world
    finally:
        world.ex.stop()


# -- calls ------------------------------------------------------------------------------------


def refused(reason: Reason, fn: Callable[[], object]) -> ExchangeError:
    """``fn`` is refused with ``reason``, under that reason's status code."""
    with pytest.raises(ExchangeError) as e:
        fn()
    assert e.value.reason == reason, repr(e.value)
    assert e.value.code == CODE[reason], repr(e.value)
    return e.value


def deposit(
    caller: Party, advertiser_key: bytes, amount: int, reference: str
) -> ledger_pb2.DepositResponse:
    return caller.call(
        ledger_pb2,
        "Deposit",
        ledger_pb2.DepositRequest(
            advertiser_key=advertiser_key, amount_minor=amount, reference=reference
        ),
        ledger_pb2.DepositResponse,
    )


def withdraw(
    caller: Party, amount: int, key: bytes | None = None, reference: str = "IBAN FR76 0001"
) -> ledger_pb2.WithdrawResponse:
    return caller.call(
        ledger_pb2,
        "Withdraw",
        ledger_pb2.WithdrawRequest(
            amount_minor=amount,
            payout_reference=reference,
            idempotency_key=secrets.token_bytes(16) if key is None else key,
        ),
        ledger_pb2.WithdrawResponse,
    )


def add_destination(p: Party, reference: str) -> ledger_pb2.PayoutDestination:
    return p.call(
        ledger_pb2,
        "AddPayoutDestination",
        ledger_pb2.AddPayoutDestinationRequest(reference=reference),
        ledger_pb2.AddPayoutDestinationResponse,
    ).destination


def statement(p: Party, page_size: int = 0, before: int = 0) -> ledger_pb2.GetStatementResponse:
    return p.call(
        ledger_pb2,
        "GetStatement",
        ledger_pb2.GetStatementRequest(page_size=page_size, before_posting=before),
        ledger_pb2.GetStatementResponse,
    )


def kinds(st: ledger_pb2.GetStatementResponse) -> list[str]:
    """The statement's line kinds, newest first, without the prefix."""
    return [K.Name(x.kind).removeprefix("POSTING_KIND_") for x in st.lines]


def licence_request(
    w: World,
    holder: Party | None = None,
    *,
    adv: Party | None = None,
    days: int = 30,
    price: int | None = None,
    per_use: int = 0,
    max_uses: int = 0,
    idempotency_key: bytes = b"",
) -> exchange_pb2.RequestLicenceRequest:
    """The photo for ``days`` from now, at the holder's price unless ``price`` is given, by
    the references of ``adv`` (by default ``w.adv``), who sends it."""
    now = w.clock.now()
    offer_ref, asset_refs = offer_refs(adv or w.adv, (holder or w.holder).key.public.raw)
    return exchange_pb2.RequestLicenceRequest(
        offer_ref=offer_ref,
        asset_refs=asset_refs,
        scope=ad_scope(),
        not_before=now,
        not_after=now + days * DAY,
        max_uses=max_uses,
        offered_price_minor=days * 100 if price is None else price,
        price_per_use_minor=per_use,
        idempotency_key=idempotency_key,
    )


def ask(
    adv: Party, request: exchange_pb2.RequestLicenceRequest
) -> exchange_pb2.RequestLicenceResponse:
    return adv.call(exchange_pb2, "RequestLicence", request, exchange_pb2.RequestLicenceResponse)


def issue(
    w: World,
    holder: Party | None = None,
    adv: Party | None = None,
    **kw: Any,
) -> records_pb2.LicenceRecord:
    """A licence the holder approved."""
    holder = holder or w.holder
    pending = ask(adv or w.adv, licence_request(w, holder, adv=adv, **kw)).request
    assert pending.state == records_pb2.REQUEST_STATE_PENDING
    return approve_request(holder, pending).licence


def report_use(
    w: World, lic: records_pb2.LicenceRecord, report_id: bytes | None = None
) -> verification_pb2.ReportUseResponse:
    """The platform reports one use, with the advertiser's presentation of the licence."""
    use = photo_use()
    pres = present(w.adv.key, lic.licence_id, "photoshare", use, w.clock.now())
    return w.platform.call(
        verification_pb2,
        "ReportUse",
        verification_pb2.ReportUseRequest(
            report_id=report_id or secrets.token_bytes(16),
            token=lic.token,
            presentation=pres,
            use=use.to_proto(),
        ),
        verification_pb2.ReportUseResponse,
    )


def revoke(holder: Party, lic: records_pb2.LicenceRecord) -> licences_pb2.RevokeLicenceResponse:
    return holder.call(
        licences_pb2,
        "RevokeLicence",
        licences_pb2.RevokeLicenceRequest(licence_id=lic.licence_id),
        licences_pb2.RevokeLicenceResponse,
    )


def licences_of(p: Party) -> list[records_pb2.LicenceRecord]:
    return list(
        p.call(
            licences_pb2,
            "ListLicences",
            licences_pb2.ListLicencesRequest(),
            licences_pb2.ListLicencesResponse,
        ).licences
    )


def inbox(holder: Party) -> list[records_pb2.LicenceRequest]:
    return list(
        holder.call(
            exchange_pb2,
            "ListInbox",
            exchange_pb2.ListInboxRequest(include_answered=True),
            exchange_pb2.ListInboxResponse,
        ).requests
    )


def fee_balance(ex: Exchange) -> int:
    """The exchange's fee account, read from the database (no RPC shows it)."""
    db = sqlite3.connect(f"file:{ex.data_dir / DB_FILE}?mode=ro", uri=True)
    try:
        r = db.execute(
            "SELECT coalesce(sum(balance), 0) FROM balances WHERE account_kind = 'fee'"
        ).fetchone()
    finally:
        db.close()
    return int(r[0])


def add_alice_rule(w: World, licensee: bytes) -> None:
    """Alice auto-approves marketing uses of her photo online in the EU by ``licensee``."""
    rule = photo_rule(w.holder.key.public, w.clock.now(), licensee_keys=frozenset({licensee}))
    add_standing_rule(w.holder, rule)


# -- 1. deposits ------------------------------------------------------------------------------


def test_deposit_credits_once_per_reference(w: World) -> None:
    op = w.ex.operator()
    adv = w.new_advertiser(funds=0)
    key = adv.key.public.raw
    assert statement(adv).available_minor == 0
    first = deposit(op, key, 12_345, "bank-ref-1")
    assert not first.replayed
    assert first.balance_minor == 12_345
    assert first.line.kind == K.POSTING_KIND_DEPOSIT
    assert first.line.amount_minor == 12_345
    assert first.line.reference == "bank-ref-1"
    assert first.line.at == w.clock.now()
    assert first.line.licence_id == b""
    # The same payment reported again: credited once, the first line back.
    again = deposit(op, key, 12_345, "bank-ref-1")
    assert again.replayed
    assert again.balance_minor == 12_345
    assert again.line == first.line
    # Another reference is another payment.
    second = deposit(op, key, 5, "bank-ref-2")
    assert (second.replayed, second.balance_minor) == (False, 12_350)
    st = statement(adv)
    assert st.currency == "EUR"
    assert (st.available_minor, st.pending_minor, st.total_minor) == (12_350, 0, 0)
    assert kinds(st) == ["DEPOSIT", "DEPOSIT"]
    assert [x.amount_minor for x in st.lines] == [5, 12_345]
    assert st.lines[1] == first.line
    w.check()


def test_deposit_of_a_reference_with_another_amount_or_advertiser_is_refused(w: World) -> None:
    op = w.ex.operator()
    adv = w.new_advertiser(funds=0)
    key = adv.key.public.raw
    deposit(op, key, 1_000, "bank-ref-1")
    before, other_before = statement(adv), statement(w.adv)
    refused(Reason.IDEMPOTENCY_KEY_REUSED, lambda: deposit(op, key, 1_001, "bank-ref-1"))
    # The reference names one payment, to one advertiser.
    refused(
        Reason.IDEMPOTENCY_KEY_REUSED,
        lambda: deposit(op, w.adv.key.public.raw, 1_000, "bank-ref-1"),
    )
    assert statement(adv) == before
    assert statement(w.adv) == other_before
    w.check()


def test_deposit_by_anyone_but_the_operator_is_refused(w: World) -> None:
    key = w.adv.key.public.raw
    before = statement(w.adv)
    for caller in (w.adv, w.holder, w.platform):
        e = refused(Reason.NOT_OWNER, partial(deposit, caller, key, 100, "self-credit"))
        assert e.code == C.PERMISSION_DENIED
    # Nor may a key nobody registered (the operator itself is not a registered party).
    refused(Reason.NOT_OWNER, lambda: deposit(w.party(), key, 100, "stranger"))
    assert statement(w.adv) == before
    w.check()


def test_deposit_to_an_unknown_advertiser_or_a_holder_is_not_found(w: World) -> None:
    op = w.ex.operator()
    holder_before = statement(w.holder)
    for target in (
        PrivateKey.generate().public.raw,  # nobody
        w.holder.key.public.raw,  # a holder
        w.platform.key.public.raw,  # a platform
        w.adv.key.public.raw[:31],  # not a key
        b"",
    ):
        refused(Reason.NOT_FOUND, partial(deposit, op, target, 100, "misdirected"))
    assert statement(w.holder) == holder_before
    # The refused reference was not spent: it credits the right advertiser afterwards.
    assert not deposit(op, w.adv.key.public.raw, 100, "misdirected").replayed
    w.check()


@pytest.mark.parametrize(
    ("amount", "reference"),
    [
        pytest.param(0, "ref", id="amount-0"),
        pytest.param(10**12 + 1, "ref", id="amount-over-10**12"),
        pytest.param(100, "", id="reference-empty"),
        pytest.param(100, "r" * 129, id="reference-129-chars"),
        pytest.param(100, "ref\nline", id="reference-newline"),
        pytest.param(100, "ref\x00", id="reference-nul"),
    ],
)
def test_deposit_bad_amount_or_reference_is_invalid(w: World, amount: int, reference: str) -> None:
    op = w.ex.operator()
    before = statement(w.adv)
    refused(Reason.INVALID_REQUEST, lambda: deposit(op, w.adv.key.public.raw, amount, reference))
    assert statement(w.adv) == before
    w.check()


def test_deposit_limits_are_inclusive(w: World) -> None:
    op = w.ex.operator()
    adv = w.new_advertiser(funds=0)
    key = adv.key.public.raw
    assert deposit(op, key, 1, "r" * 128).balance_minor == 1
    assert deposit(op, key, 10**12, "big").balance_minor == 10**12 + 1
    w.check()


# -- 2. issuance the balance cannot pay ------------------------------------------------------


def _answer(holder: Party, method: str, request_id: bytes) -> None:
    """The holder declines, or the advertiser withdraws, a request."""
    if method == "DeclineRequest":
        holder.call(
            exchange_pb2,
            method,
            exchange_pb2.DeclineRequestRequest(request_id=request_id),
            exchange_pb2.DeclineRequestResponse,
        )
    else:
        holder.call(
            exchange_pb2,
            method,
            exchange_pb2.WithdrawRequestRequest(request_id=request_id),
            exchange_pb2.WithdrawRequestResponse,
        )


def test_a_request_the_balance_cannot_pay_never_reaches_the_holder(w: World) -> None:
    """Funds are checked and reserved when the advertiser asks: a request its available
    funds (balance less what its pending requests reserve) cannot pay is refused to it, with
    the amounts, and never reaches the holder's inbox; every end of a request releases what
    it reserved, and the holder's approval then cannot fail for money."""
    # The escrow is the time price and every use: 3000 + 2 * 50 > 3099.
    adv = w.new_advertiser(funds=PRICE + 99)
    before_adv, before_holder, seen = statement(adv), statement(w.holder), inbox(w.holder)
    e = refused(
        Reason.INSUFFICIENT_FUNDS,
        lambda: ask(adv, licence_request(w, adv=adv, per_use=50, max_uses=2)),
    )
    assert e.code == C.FAILED_PRECONDITION
    assert str(e) == (
        f"the licence costs {PRICE + 100}, available {PRICE + 99}: the balance is"
        f" {PRICE + 99}; deposit 1 more"
    )
    assert inbox(w.holder) == seen  # nothing reached her
    assert (statement(adv), statement(w.holder)) == (before_adv, before_holder)
    # Exactly enough: reserved, and shown in the statement.
    w.ex.fund(adv.key.public.raw, 1, "top-up")
    first = ask(adv, licence_request(w, adv=adv, per_use=50, max_uses=2)).request
    st = statement(adv)
    assert (st.available_minor, st.reserved_minor, st.reserved_requests) == (PRICE + 100,) * 2 + (
        1,
    )
    # The next one does not fit beside it, and says why.
    e = refused(Reason.INSUFFICIENT_FUNDS, lambda: ask(adv, licence_request(w, adv=adv)))
    assert str(e) == (
        f"the licence costs {PRICE}, available 0: the balance is {PRICE + 100}, of which"
        f" {PRICE + 100} is reserved for 1 pending request; deposit {PRICE} more"
    )
    # Declined, withdrawn, expired: each releases what it reserved.
    _answer(w.holder, "DeclineRequest", first.request_id)
    assert statement(adv).reserved_minor == 0
    second = ask(adv, licence_request(w, adv=adv)).request
    assert statement(adv).reserved_minor == PRICE
    _answer(adv, "WithdrawRequest", second.request_id)
    assert statement(adv).reserved_minor == 0
    ask(adv, licence_request(w, adv=adv))
    w.clock.advance(7 * DAY)  # the request's time to answer is over
    st = statement(adv)
    assert (st.reserved_minor, st.reserved_requests) == (0, 0)
    w.check()
    # Approved: the reservation becomes the escrow.
    lic = issue(w, adv=adv, per_use=50, max_uses=2)
    st = statement(adv)
    assert (st.available_minor, st.pending_minor, st.reserved_minor) == (0, PRICE + 100, 0)
    assert st.lines[0].licence_id == lic.licence_id
    w.check()


def test_an_approval_that_fails_for_money_tells_the_holder_nothing_of_it(w: World) -> None:
    """The defence behind the reservation: a request pending from before reservations
    existed (none made for it) whose advertiser spent its balance meanwhile. The holder is
    told only that it can no longer be approved; the advertiser, why."""
    adv = w.new_advertiser(funds=PRICE)
    pending = ask(adv, licence_request(w, adv=adv)).request
    store: Any = w.ex.app.deps.store  # as a store before migration m017 left it
    store._transact(lambda c: c.execute("DELETE FROM request_reserves"))
    store._transact(lambda c: c.execute("DELETE FROM reserves"))
    add_alice_rule(w, adv.key.public.raw)  # an automatic issuance spends the balance
    issued = ask(adv, licence_request(w, adv=adv)).request
    assert issued.state == records_pb2.REQUEST_STATE_ISSUED
    e = refused(Reason.REQUEST_NOT_APPROVABLE, lambda: approve_request(w.holder, pending))
    assert e.code == C.FAILED_PRECONDITION
    assert "balance" not in str(e)
    assert str(PRICE) not in str(e)
    (seen,) = [r for r in inbox(w.holder) if r.request_id == pending.request_id]
    assert seen.state == records_pb2.REQUEST_STATE_FAILED
    assert (seen.failure, seen.reason) == (
        "REQUEST_NOT_APPROVABLE",
        "this request can no longer be approved",
    )
    exported = w.holder.call(  # her data export says no more of it than her inbox
        registry_pb2,
        "ExportData",
        registry_pb2.ExportDataRequest(),
        registry_pb2.ExportDataResponse,
    )
    (kept,) = [r for r in exported.requests if r.request_id == pending.request_id]
    assert (kept.failure, kept.reason) == (seen.failure, seen.reason)
    assert "INSUFFICIENT_FUNDS" not in str(exported)
    told = adv.call(
        exchange_pb2,
        "GetRequest",
        exchange_pb2.GetRequestRequest(request_id=pending.request_id),
        exchange_pb2.GetRequestResponse,
    ).request
    assert told.failure == "INSUFFICIENT_FUNDS"
    w.check()


def test_approval_with_exactly_the_escrow_issues(w: World) -> None:
    adv = w.new_advertiser(funds=PRICE + 100)
    lic = issue(w, adv=adv, per_use=50, max_uses=2)
    st = statement(adv)
    assert (st.available_minor, st.pending_minor) == (0, PRICE + 100)
    assert st.lines[0].licence_id == lic.licence_id
    w.check()


def test_an_unfunded_advertiser_cannot_be_auto_issued_by_a_standing_rule(w: World) -> None:
    adv = w.new_advertiser(funds=0)
    add_alice_rule(w, adv.key.public.raw)
    key = secrets.token_bytes(16)
    before, seen = statement(adv), inbox(w.holder)
    refused(
        Reason.INSUFFICIENT_FUNDS,
        lambda: ask(adv, licence_request(w, adv=adv, idempotency_key=key)),
    )
    # Refused before anything is stored: nothing for the holder to see, nothing paid.
    assert inbox(w.holder) == seen
    assert licences_of(adv) == []
    assert statement(adv) == before
    # Funded, the same rule (and the same key: nothing was stored under it) issues at once
    # and escrows.
    w.ex.fund(adv.key.public.raw, PRICE, "top-up")
    issued = ask(adv, licence_request(w, adv=adv, idempotency_key=key))
    assert issued.request.state == records_pb2.REQUEST_STATE_ISSUED
    assert issued.request.auto_approved
    st = statement(adv)
    assert (st.available_minor, st.pending_minor, st.reserved_minor) == (0, PRICE, 0)
    w.check()


# -- 3. escrow at issuance --------------------------------------------------------------------


def test_issuance_escrows_the_price(w: World) -> None:
    lic = issue(w, per_use=50, max_uses=2)
    escrow = PRICE + 2 * 50
    st = statement(w.adv)
    assert st.available_minor == FUNDS - escrow
    assert st.pending_minor == escrow
    assert st.total_minor == 0  # nothing spent yet: it is all still in escrow
    assert kinds(st) == ["ESCROW", "DEPOSIT"]
    line = st.lines[0]
    assert line.licence_id == lic.licence_id
    assert line.amount_minor == -escrow
    assert line.at == w.clock.now()
    assert line.fee_minor == 0
    # The holder has earned nothing yet; all of it is still to come.
    h = statement(w.holder)
    assert (h.available_minor, h.total_minor) == (0, 0)
    assert h.pending_minor == holder_part(PRICE) + 2 * holder_part(50)
    assert list(h.lines) == []
    w.check()


# -- 4. accrual pro rata over the term --------------------------------------------------------


def test_accrual_at_day_ten_pays_the_holder_a_third_less_the_fee(w: World) -> None:
    lic = issue(w)  # 30 days at 3000
    w.clock.advance(10 * DAY)
    h = statement(w.holder)
    assert h.total_minor == 900  # 1000 earned, 100 of it the exchange's fee
    assert h.available_minor == 900
    assert h.pending_minor == 2700 - 900
    assert kinds(h) == ["ACCRUAL"]
    assert h.lines[0].licence_id == lic.licence_id
    assert (h.lines[0].amount_minor, h.lines[0].fee_minor) == (900, 100)
    assert h.lines[0].at == w.clock.now()
    assert fee_balance(w.ex) == 100
    a = statement(w.adv)
    assert a.available_minor == FUNDS - PRICE
    assert a.pending_minor == PRICE - 1000  # still in escrow
    assert a.total_minor == 1000  # spent: paid out of escrow, the fee included
    # Observed again at the same second: nothing more moves.
    assert statement(w.holder) == h
    w.check()


def test_a_statement_when_nothing_has_accrued_writes_nothing(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading a statement settles only what moved: with nothing earned since the last
    settlement, it writes nothing but its request's nonce (which every answered signed
    call spends in the store, group-committed; docs/architecture.md)."""
    issue(w)
    store: Any = w.ex.app.deps.store  # the SQLite store's write path, counted
    writes: list[object] = []
    transact = store._transact

    def counted(fn: Callable[..., object], nonces: Any = ()) -> object:
        if fn is not only_nonces:
            writes.append(fn)
        return transact(fn, nonces)

    monkeypatch.setattr(store, "_transact", counted)
    w.clock.advance(DAY)
    first = statement(w.holder)
    assert len(writes) == 1
    assert statement(w.holder) == first  # the same second: nothing to move
    assert statement(w.adv).pending_minor == PRICE - 100
    w.clock.advance(60)  # 3000 a month earns a minor unit every 864 s: still nothing
    statement(w.holder)
    assert len(writes) == 1
    w.clock.advance(900)
    assert statement(w.holder).total_minor > first.total_minor
    assert len(writes) == 2
    w.check()


def test_accrual_is_rounded_down_to_the_second(w: World) -> None:
    issue(w)
    w.clock.advance(10 * DAY + 3601)  # 3000 * 867601 / 2592000 = 1004.17
    h = statement(w.holder)
    assert h.total_minor == holder_part(1004) == 904
    assert h.lines[0].fee_minor == 100
    w.check()


def test_accrual_does_not_depend_on_how_often_it_is_observed(w: World) -> None:
    price = 3017  # chosen so that settling day by day and rounding each step would differ
    daily, once = w.new_holder("bob"), w.new_holder("carol")
    issue(w, daily, price=price)
    issue(w, once, price=price)
    for _ in range(20):
        w.clock.advance(DAY)
        statement(daily)
    seen_daily, seen_once = statement(daily), statement(once)
    earned = price * 20 // 30  # 2011
    assert seen_daily.total_minor == seen_once.total_minor == holder_part(earned) == 1810
    assert seen_daily.available_minor == seen_once.available_minor == 1810
    assert seen_daily.pending_minor == seen_once.pending_minor == holder_part(price) - 1810
    assert len(seen_daily.lines) == 20
    assert len(seen_once.lines) == 1
    assert sum(x.fee_minor for x in seen_daily.lines) == seen_once.lines[0].fee_minor == 201
    assert sum(x.amount_minor for x in seen_daily.lines) == 1810
    w.check()


# -- 5. per-use pricing -----------------------------------------------------------------------


def test_each_reported_use_is_charged_until_the_uses_run_out(w: World) -> None:
    lic = issue(w, per_use=50, max_uses=2)
    escrow = PRICE + 100
    first_id = secrets.token_bytes(16)
    assert report_use(w, lic, first_id).uses == 1
    h = statement(w.holder)
    assert (h.available_minor, h.total_minor) == (45, 45)
    assert kinds(h) == ["USE"]
    assert (h.lines[0].amount_minor, h.lines[0].fee_minor) == (45, 5)
    assert h.lines[0].licence_id == lic.licence_id
    assert statement(w.adv).pending_minor == escrow - 50
    # A retried report counts and charges once.
    assert report_use(w, lic, first_id).uses == 1
    assert statement(w.holder) == h
    assert report_use(w, lic).uses == 2
    h = statement(w.holder)
    assert (h.available_minor, h.total_minor) == (90, 90)
    assert h.pending_minor == holder_part(PRICE)  # only the time price is still to come
    assert kinds(h) == ["USE", "USE"]
    a = statement(w.adv)
    assert a.pending_minor == escrow - 100
    assert a.total_minor == 100
    # Every use is charged: the third is refused, and nothing moves.
    refused(Reason.USES_EXHAUSTED, lambda: report_use(w, lic))
    assert statement(w.holder) == h
    assert statement(w.adv) == a
    assert fee_balance(w.ex) == 10
    w.check()


def test_a_price_per_use_needs_max_uses(w: World) -> None:
    before = statement(w.adv)
    refused(Reason.INVALID_REQUEST, lambda: ask(w.adv, licence_request(w, per_use=50)))
    assert inbox(w.holder) == []
    assert statement(w.adv) == before
    w.check()


# -- 6. revocation ----------------------------------------------------------------------------


def test_revocation_settles_to_the_second_and_refunds_the_rest(w: World) -> None:
    lic = issue(w, per_use=50, max_uses=2)
    escrow = PRICE + 100
    report_use(w, lic)
    w.clock.advance(10 * DAY + 3601)
    revoke(w.holder, lic)
    earned = 1004  # 3000 * 867601 // 2592000
    refund = escrow - earned - 50
    h = statement(w.holder)
    assert h.total_minor == holder_part(earned) + 45
    assert h.available_minor == h.total_minor
    assert h.pending_minor == 0
    assert kinds(h) == ["ACCRUAL", "USE"]
    a = statement(w.adv)
    assert kinds(a) == ["REFUND", "ESCROW", "DEPOSIT"]
    assert a.lines[0].amount_minor == refund == 2046
    assert a.lines[0].licence_id == lic.licence_id
    assert a.lines[0].at == w.clock.now()
    assert a.pending_minor == 0
    assert a.available_minor == FUNDS - escrow + refund
    assert a.total_minor == earned + 50
    assert fee_balance(w.ex) + h.total_minor + refund == escrow
    # Revoking again, or time passing, changes nothing.
    w.clock.advance(DAY)
    again = revoke(w.holder, lic)
    assert again.licence.state == records_pb2.LICENCE_STATE_REVOKED
    w.clock.advance(30 * DAY)
    assert statement(w.holder) == h
    assert statement(w.adv) == a
    w.check()


# -- 7. expiry --------------------------------------------------------------------------------


def test_expiry_pays_the_full_time_price_and_refunds_unused_uses(w: World) -> None:
    lic = issue(w, per_use=50, max_uses=2)
    escrow = PRICE + 100
    report_use(w, lic)
    w.clock.advance(31 * DAY)
    # The holder's statement closes the licence: the advertiser need not ask.
    h = statement(w.holder)
    assert h.total_minor == holder_part(PRICE) + 45 == 2745
    assert h.pending_minor == 0
    assert kinds(h) == ["ACCRUAL", "USE"]
    assert h.lines[0].at == w.clock.now()
    fee = sum(x.fee_minor for x in h.lines)
    assert fee == 305 == fee_balance(w.ex)
    a = statement(w.adv)
    assert kinds(a) == ["REFUND", "ESCROW", "DEPOSIT"]
    refund = a.lines[0].amount_minor
    assert refund == 50  # the use not made
    assert -a.lines[1].amount_minor == escrow
    assert h.total_minor + fee + refund == escrow
    assert a.pending_minor == 0
    assert a.total_minor == escrow - refund
    assert a.available_minor == FUNDS - escrow + refund
    # Closed: later statements move nothing more.
    w.clock.advance(DAY)
    assert statement(w.holder) == h
    assert statement(w.adv) == a
    w.check()


def test_expiry_closes_when_the_advertiser_looks_first(w: World) -> None:
    issue(w)
    w.clock.advance(30 * DAY)  # exactly not_after
    a = statement(w.adv)
    assert a.pending_minor == 0
    assert a.total_minor == PRICE
    assert kinds(a) == ["ESCROW", "DEPOSIT"]  # all earned: nothing to refund
    h = statement(w.holder)
    assert (h.total_minor, h.available_minor, h.pending_minor) == (2700, 2700, 0)
    w.check()


# -- 8. withdrawals ---------------------------------------------------------------------------


def earn_900(w: World) -> None:
    """Alice earns 900 (a third of a 30-day licence at 3000, less the fee)."""
    issue(w)
    w.clock.advance(10 * DAY)


def test_a_holder_withdraws_part_of_its_balance(w: World) -> None:
    earn_900(w)
    out = withdraw(w.holder, 300, reference="IBAN FR76 3000 6000")
    assert not out.replayed
    assert out.balance_minor == 600
    assert out.line.kind == K.POSTING_KIND_WITHDRAWAL
    assert out.line.amount_minor == -300
    assert out.line.reference == "IBAN FR76 3000 6000"
    assert out.line.licence_id == b""
    h = statement(w.holder)
    assert h.available_minor == 600
    assert h.total_minor == 900  # earned, whatever was paid out
    assert kinds(h) == ["WITHDRAWAL", "ACCRUAL"]
    assert h.lines[0] == out.line
    # All of what is left may go too.
    assert withdraw(w.holder, 600).balance_minor == 0
    w.check()


def test_withdrawing_more_than_the_balance_is_refused(w: World) -> None:
    earn_900(w)
    before = statement(w.holder)
    refused(Reason.INSUFFICIENT_FUNDS, lambda: withdraw(w.holder, 10_000))
    # What is pending (not yet earned) is not available.
    refused(Reason.INSUFFICIENT_FUNDS, lambda: withdraw(w.holder, 900 + 1800))
    assert statement(w.holder) == before
    w.check()


def test_withdrawing_one_unit_more_than_the_balance_is_insufficient_funds(w: World) -> None:
    # The boundary: 901 of 900 (an off-by-one here reaches the store, whose CHECK refuses
    # a negative balance with INTERNAL).
    earn_900(w)
    before = statement(w.holder)
    refused(Reason.INSUFFICIENT_FUNDS, lambda: withdraw(w.holder, 901))
    assert statement(w.holder) == before
    w.check()


def test_a_withdrawal_retried_with_its_key_pays_once(w: World) -> None:
    earn_900(w)
    key = secrets.token_bytes(16)
    first = withdraw(w.holder, 300, key)
    again = withdraw(w.holder, 300, key)
    assert again.replayed
    assert again.line == first.line
    assert again.balance_minor == 600
    h = statement(w.holder)
    assert h.available_minor == 600
    assert kinds(h) == ["WITHDRAWAL", "ACCRUAL"]
    # The same key for another amount or payee is a mistake, not a retry: refused.
    refused(Reason.IDEMPOTENCY_KEY_REUSED, lambda: withdraw(w.holder, 200, key))
    refused(Reason.IDEMPOTENCY_KEY_REUSED, lambda: withdraw(w.holder, 300, key, "IBAN DE89 0002"))
    assert statement(w.holder) == h
    # Another key is another payout.
    assert withdraw(w.holder, 300).balance_minor == 300
    w.check()


@pytest.mark.parametrize("size", [0, 5, 15, 17, 32])
def test_a_withdrawal_key_not_16_bytes_is_invalid(w: World, size: int) -> None:
    earn_900(w)
    before = statement(w.holder)
    refused(Reason.INVALID_REQUEST, lambda: withdraw(w.holder, 100, b"k" * size))
    assert statement(w.holder) == before
    w.check()


@pytest.mark.parametrize(
    ("amount", "reference"),
    [
        pytest.param(0, "IBAN", id="amount-0"),
        pytest.param(10**12 + 1, "IBAN", id="amount-over-10**12"),
        pytest.param(100, "", id="reference-empty"),
        pytest.param(100, "r" * 129, id="reference-129-chars"),
        pytest.param(100, "IBAN\n", id="reference-newline"),
    ],
)
def test_a_withdrawal_bad_amount_or_reference_is_invalid(
    w: World, amount: int, reference: str
) -> None:
    earn_900(w)
    before = statement(w.holder)
    refused(Reason.INVALID_REQUEST, lambda: withdraw(w.holder, amount, reference=reference))
    assert statement(w.holder) == before
    w.check()


def test_only_a_holder_withdraws(w: World) -> None:
    earn_900(w)
    before_adv, before_holder = statement(w.adv), statement(w.holder)
    for caller in (w.adv, w.platform):
        refused(Reason.NOT_OWNER, partial(withdraw, caller, 100))
    refused(Reason.UNKNOWN_KEY, lambda: withdraw(w.party(), 100))
    assert statement(w.adv) == before_adv
    assert statement(w.holder) == before_holder
    w.check()


# -- 9. statements ----------------------------------------------------------------------------


def test_a_platform_has_no_statement(w: World) -> None:
    refused(Reason.NOT_OWNER, lambda: statement(w.platform))
    refused(Reason.UNKNOWN_KEY, lambda: statement(w.party()))
    w.check()


def test_statement_pages_walk_every_line_newest_first(w: World) -> None:
    for i in range(3):
        w.ex.fund(w.adv.key.public.raw, 10 + i, f"extra-{i}")
    lic = issue(w)
    w.clock.advance(DAY)
    revoke(w.holder, lic)
    whole = statement(w.adv)
    assert whole.next_before_posting == 0
    assert kinds(whole) == ["REFUND", "ESCROW", "DEPOSIT", "DEPOSIT", "DEPOSIT", "DEPOSIT"]
    ids = [x.posting_id for x in whole.lines]
    assert ids == sorted(ids, reverse=True)
    assert len(set(ids)) == len(ids)
    walked: list[ledger_pb2.StatementLine] = []
    before = 0
    while True:
        page = statement(w.adv, page_size=1, before=before)
        assert len(page.lines) == 1
        assert page.available_minor == whole.available_minor  # every page: the balance now
        walked.extend(page.lines)
        if not page.next_before_posting:
            break
        assert page.next_before_posting == page.lines[0].posting_id
        before = page.next_before_posting
    assert walked == list(whole.lines)
    # Two at a time: three pages, the last one short of nothing.
    two = statement(w.adv, page_size=2)
    assert list(two.lines) == list(whole.lines[:2])
    assert two.next_before_posting == whole.lines[1].posting_id
    assert statement(w.adv, page_size=6).next_before_posting == 0
    assert statement(w.adv, page_size=500) == whole
    w.check()


def test_a_page_of_501_lines_is_invalid(w: World) -> None:
    refused(Reason.INVALID_REQUEST, lambda: statement(w.adv, page_size=501))
    refused(Reason.INVALID_REQUEST, lambda: statement(w.holder, page_size=501))
    w.check()


@pytest.mark.parametrize("before", [2**63, 2**64 - 1])
def test_a_posting_id_past_the_store_range_is_invalid_not_internal(w: World, before: int) -> None:
    # Found by fuzzing (tests/integration/test_fuzz_rpc.py): SQLite could not bind it, and
    # the call failed with INTERNAL.
    refused(Reason.INVALID_REQUEST, lambda: statement(w.adv, before=before))
    refused(Reason.INVALID_REQUEST, lambda: statement(w.holder, before=before))
    assert statement(w.adv, before=2**63 - 1).lines == statement(w.adv).lines
    w.check()


# -- 10. RequestLicence retries ---------------------------------------------------------------


def test_a_request_retried_with_its_key_is_the_first_one(w: World) -> None:
    key = secrets.token_bytes(16)
    first = ask(w.adv, licence_request(w, idempotency_key=key)).request
    again = ask(w.adv, licence_request(w, idempotency_key=key)).request
    assert again.request_id == first.request_id
    assert len(inbox(w.holder)) == 1
    issued = approve_request(w.holder, first)
    # After the approval, the retry returns the request and its licence; nothing is paid twice.
    retried = ask(w.adv, licence_request(w, idempotency_key=key))
    assert retried.request.request_id == first.request_id
    assert retried.request.state == records_pb2.REQUEST_STATE_ISSUED
    assert retried.licence.licence_id == issued.licence.licence_id
    st = statement(w.adv)
    assert kinds(st) == ["ESCROW", "DEPOSIT"]
    assert st.available_minor == FUNDS - PRICE
    assert len(licences_of(w.adv)) == 1
    w.check()


def test_an_auto_issued_request_retried_with_its_key_escrows_once(w: World) -> None:
    add_alice_rule(w, w.adv.key.public.raw)
    key = secrets.token_bytes(16)
    first = ask(w.adv, licence_request(w, idempotency_key=key))
    assert first.request.state == records_pb2.REQUEST_STATE_ISSUED
    again = ask(w.adv, licence_request(w, idempotency_key=key))
    assert again.request.request_id == first.request.request_id
    assert again.licence.licence_id == first.licence.licence_id
    st = statement(w.adv)
    assert kinds(st) == ["ESCROW", "DEPOSIT"]
    assert (st.available_minor, st.pending_minor) == (FUNDS - PRICE, PRICE)
    # Another key is another request, escrowed on its own.
    other = ask(w.adv, licence_request(w, idempotency_key=secrets.token_bytes(16)))
    assert other.request.request_id != first.request.request_id
    assert statement(w.adv).pending_minor == 2 * PRICE
    w.check()


def test_a_request_key_reused_for_another_request_is_refused(w: World) -> None:
    """The same key with another body is a mistake, not a retry: IDEMPOTENCY_KEY_REUSED,
    nothing stored (it used to return the first request silently)."""
    key = secrets.token_bytes(16)
    first = ask(w.adv, licence_request(w, idempotency_key=key)).request
    before = statement(w.adv)
    for other in (
        licence_request(w, days=20, idempotency_key=key),
        licence_request(w, price=3_500, idempotency_key=key),
        licence_request(w, max_uses=3, idempotency_key=key),
    ):
        refused(Reason.IDEMPOTENCY_KEY_REUSED, partial(ask, w.adv, other))
    assert [r.request_id for r in inbox(w.holder)] == [first.request_id]
    assert statement(w.adv) == before
    # The same body, signed anew (new timestamp and nonce), is still the retry it was.
    assert ask(w.adv, licence_request(w, idempotency_key=key)).request == first
    w.check()


@pytest.mark.parametrize("size", [5, 15, 17])
def test_a_request_key_not_16_bytes_is_invalid(w: World, size: int) -> None:
    before = statement(w.adv)
    refused(
        Reason.INVALID_REQUEST,
        lambda: ask(w.adv, licence_request(w, idempotency_key=b"k" * size)),
    )
    assert inbox(w.holder) == []
    assert statement(w.adv) == before
    w.check()


# -- 11. restart ------------------------------------------------------------------------------


def test_balances_and_lines_survive_a_restart(tmp_path: Path) -> None:
    w = make_world(tmp_path / "data")
    try:
        lic = issue(w, per_use=50, max_uses=2)
        report_use(w, lic)
        w.clock.advance(10 * DAY)
        withdraw(w.holder, 100, reference="payout-1")
        holder_before, adv_before = statement(w.holder), statement(w.adv)
        fee_before = fee_balance(w.ex)
    finally:
        w.ex.stop()
    ex = start_exchange(tmp_path / "data", settings=SETTINGS, clock=w.clock)
    try:
        holder, adv = rebind(w.holder, ex, w.clock), rebind(w.adv, ex, w.clock)
        assert statement(holder) == holder_before
        assert statement(adv) == adv_before
        assert fee_balance(ex) == fee_before
        assert holder_before.total_minor == 900 + 45
        assert kinds(holder_before) == ["WITHDRAWAL", "ACCRUAL", "USE"]
        # The ledger carries on where it stopped: the term runs, the licence is still escrowed.
        w.clock.advance(10 * DAY)
        assert statement(holder).total_minor == 1800 + 45
        assert statement(adv).pending_minor == PRICE + 50 - 2000
        # A deposit reference credited before the restart is still spent.
        op = ex.operator()
        first = adv_before.lines[-1]
        replay = deposit(op, adv.key.public.raw, FUNDS, first.reference)
        assert replay.replayed
        assert replay.line == first
        assert ex.app.deps.store.ledger_check() == []
    finally:
        ex.stop()


# -- 12. payout destinations: a withdrawal pays only to one past its delay ---------------------
# A thief with the holder's laptop cannot send her earnings to himself at once. With the
# default delay of 72 hours; each refusal moves nothing (her statement is unchanged).

DELAY = 72 * 3600
S = ledger_pb2.PayoutDestinationState
IBAN = "IBAN DE44 5001 0517 5407 3249 31"


@pytest.fixture
def wd(tmp_path: Path) -> Iterator[World]:
    """A world whose exchange has the default payout delay, 72 hours: the destinations its
    holder added at the start are pending."""
    world = make_world(tmp_path / "data", Settings(heartbeat_seconds=0.5))
    try:
        assert world.ex.app.deps.settings.payout_delay_seconds == DELAY
        yield world
    finally:
        world.ex.stop()


def cancel(p: Party, reference: str) -> ledger_pb2.PayoutDestination:
    return p.call(
        ledger_pb2,
        "CancelPayoutDestination",
        ledger_pb2.CancelPayoutDestinationRequest(reference=reference),
        ledger_pb2.CancelPayoutDestinationResponse,
    ).destination


def destinations(p: Party) -> list[ledger_pb2.PayoutDestination]:
    return list(
        p.call(
            ledger_pb2,
            "ListPayoutDestinations",
            ledger_pb2.ListPayoutDestinationsRequest(),
            ledger_pb2.ListPayoutDestinationsResponse,
        ).destinations
    )


def notices(p: Party) -> list[records_pb2.Notice]:
    return list(
        p.call(
            exchange_pb2,
            "ListInbox",
            exchange_pb2.ListInboxRequest(),
            exchange_pb2.ListInboxResponse,
        ).notices
    )


def test_the_default_delay_is_72_hours() -> None:
    assert DEFAULT_PAYOUT_DELAY_SECONDS == DELAY
    assert Settings().payout_delay_seconds == DELAY


def test_a_withdrawal_to_a_reference_never_added_is_unknown_and_moves_nothing(wd: World) -> None:
    w = wd
    earn_900(w)
    before = statement(w.holder)
    e = refused(Reason.PAYOUT_DESTINATION_UNKNOWN, lambda: withdraw(w.holder, 100, reference=IBAN))
    assert "add it first" in str(e)
    assert "licentia-wallet payouts add" in str(e)
    assert statement(w.holder) == before
    w.check()


def test_a_new_destination_is_pending_until_the_delay_has_passed(wd: World) -> None:
    w = wd
    earn_900(w)
    now = w.clock.now()
    added = add_destination(w.holder, IBAN)
    assert (added.reference, added.added_at, added.usable_at) == (IBAN, now, now + DELAY)
    assert (added.state, added.cancelled_at) == (S.PAYOUT_DESTINATION_STATE_PENDING, 0)
    assert add_destination(w.holder, IBAN) == added  # again: unchanged, no new delay
    w.clock.advance(DELAY - 1)
    before = statement(w.holder)
    e = refused(Reason.PAYOUT_DESTINATION_PENDING, lambda: withdraw(w.holder, 100, reference=IBAN))
    assert "becomes usable at" in str(e)
    assert "(in 0 h 00 min)" not in str(e)
    assert "cancel it now" in str(e)
    assert "licentia-wallet payouts cancel" in str(e)
    assert statement(w.holder) == before
    # Once usable_at is reached, it is confirmed, and payouts to it are paid at once.
    w.clock.advance(1)
    (confirmed,) = [d for d in destinations(w.holder) if d.reference == IBAN]
    assert confirmed.state == S.PAYOUT_DESTINATION_STATE_CONFIRMED
    paid = withdraw(w.holder, 300, reference=IBAN)
    assert (paid.line.amount_minor, paid.line.reference) == (-300, IBAN)
    assert withdraw(w.holder, 100, reference=IBAN).balance_minor == paid.balance_minor - 100
    assert add_destination(w.holder, IBAN) == confirmed  # adding it again changes nothing
    w.check()


def test_a_destination_cancelled_during_its_delay_is_never_usable(wd: World) -> None:
    w = wd
    earn_900(w)
    add_destination(w.holder, IBAN)
    w.clock.advance(3600)
    gone = cancel(w.holder, IBAN)
    assert (gone.state, gone.cancelled_at) == (S.PAYOUT_DESTINATION_STATE_CANCELLED, w.clock.now())
    w.clock.advance(2 * DELAY)  # long past its usable_at
    before = statement(w.holder)
    refused(Reason.PAYOUT_DESTINATION_UNKNOWN, lambda: withdraw(w.holder, 100, reference=IBAN))
    assert statement(w.holder) == before
    refused(Reason.NOT_FOUND, lambda: cancel(w.holder, IBAN))  # cancelled once is enough
    # Adding it again starts a new delay, from now.
    again = add_destination(w.holder, IBAN)
    assert again.usable_at == w.clock.now() + DELAY
    assert again.state == S.PAYOUT_DESTINATION_STATE_PENDING
    refused(Reason.PAYOUT_DESTINATION_PENDING, lambda: withdraw(w.holder, 100, reference=IBAN))
    listed = [d for d in destinations(w.holder) if d.reference == IBAN]
    assert [d.state for d in listed] == [
        S.PAYOUT_DESTINATION_STATE_CANCELLED,
        S.PAYOUT_DESTINATION_STATE_PENDING,
    ]
    w.clock.advance(DELAY)
    available = statement(w.holder).available_minor
    assert withdraw(w.holder, 100, reference=IBAN).balance_minor == available - 100
    w.check()


def test_cancelling_a_confirmed_destination_takes_effect_at_once(wd: World) -> None:
    w = wd
    earn_900(w)
    add_destination(w.holder, IBAN)
    w.clock.advance(DELAY)
    key = secrets.token_bytes(16)
    first = withdraw(w.holder, 100, key, IBAN)
    cancel(w.holder, IBAN)
    before = statement(w.holder)
    refused(Reason.PAYOUT_DESTINATION_UNKNOWN, lambda: withdraw(w.holder, 100, reference=IBAN))
    # A retry of the payout made before is answered as it was, and pays nothing more.
    again = withdraw(w.holder, 100, key, IBAN)
    assert again.replayed
    assert again.line == first.line
    assert statement(w.holder) == before
    w.check()


def test_cancelling_what_is_not_a_destination_is_not_found(wd: World) -> None:
    w = wd
    refused(Reason.NOT_FOUND, lambda: cancel(w.holder, IBAN))
    assert destinations(w.holder)[-1].reference != IBAN


def test_another_holder_neither_sees_nor_cancels_nor_uses_my_destinations(wd: World) -> None:
    w = wd
    earn_900(w)
    add_destination(w.holder, IBAN)
    mallory = w.new_holder("mallory")
    assert destinations(mallory) == []
    assert notices(mallory) == []
    refused(Reason.NOT_FOUND, lambda: cancel(mallory, IBAN))
    # Her own destination of the same reference is hers: it does not make mine usable.
    add_destination(mallory, "IBAN FR76 0001")
    refused(Reason.NOT_FOUND, lambda: cancel(mallory, "IBAN FR76 3000 6000"))
    w.clock.advance(DELAY)
    (mine,) = [d for d in destinations(w.holder) if d.reference == IBAN]
    assert mine.state == S.PAYOUT_DESTINATION_STATE_CONFIRMED
    refused(Reason.PAYOUT_DESTINATION_UNKNOWN, lambda: withdraw(mallory, 1, reference=IBAN))
    w.check()


def test_only_a_holder_has_payout_destinations(wd: World) -> None:
    w = wd
    for caller in (w.adv, w.platform):
        refused(Reason.NOT_OWNER, partial(add_destination, caller, IBAN))
        refused(Reason.NOT_OWNER, partial(cancel, caller, IBAN))
        refused(Reason.NOT_OWNER, partial(destinations, caller))
    refused(Reason.UNKNOWN_KEY, lambda: add_destination(w.party(), IBAN))


@pytest.mark.parametrize("reference", ["", "r" * 129, "IBAN\n", "IBAN\u202e"])
def test_a_bad_reference_is_invalid(wd: World, reference: str) -> None:
    w = wd
    before = destinations(w.holder)
    refused(Reason.INVALID_REQUEST, lambda: add_destination(w.holder, reference))
    refused(Reason.INVALID_REQUEST, lambda: cancel(w.holder, reference))
    assert destinations(w.holder) == before


def test_at_most_16_destinations_not_cancelled(wd: World) -> None:
    w = wd
    have = len(destinations(w.holder))  # those the world's holder added
    for i in range(16 - have):
        add_destination(w.holder, f"ref-{i}")
    e = refused(Reason.INVALID_REQUEST, lambda: add_destination(w.holder, "one too many"))
    assert "at most 16 payout destinations" in str(e)
    assert add_destination(w.holder, "ref-0").reference == "ref-0"  # one there: answered
    cancel(w.holder, "ref-0")
    add_destination(w.holder, "one too many")  # a cancelled one frees its place
    assert len(destinations(w.holder)) == 17


def test_the_inbox_tells_the_holder_of_each_destination_in_its_delay(wd: World) -> None:
    w = wd
    ada = w.new_holder("ada")
    assert notices(ada) == []
    added = add_destination(ada, IBAN)
    (notice,) = notices(ada)
    assert notice.kind == records_pb2.NOTICE_KIND_PAYOUT_DESTINATION_ADDED
    assert (notice.at, notice.subject) == (added.added_at, IBAN)
    assert f"a payout destination {IBAN} was added at" in notice.text
    assert "it becomes usable at" in notice.text
    assert f"cancel it with `licentia-wallet payouts cancel {IBAN}`" in notice.text
    assert len(notices(w.holder)) == 3  # the world's holder added three, just as pending
    w.clock.advance(DELAY)  # usable now: nothing left to warn of
    assert notices(ada) == []
    add_destination(ada, "IBAN 2")
    cancel(ada, "IBAN 2")
    assert notices(ada) == []


def test_the_export_holds_every_payout_destination(wd: World) -> None:
    w = wd
    add_destination(w.holder, IBAN)
    cancel(w.holder, IBAN)
    exported = w.holder.call(
        registry_pb2,
        "ExportData",
        registry_pb2.ExportDataRequest(),
        registry_pb2.ExportDataResponse,
    )
    assert list(exported.payout_destinations) == destinations(w.holder)
    assert [d.reference for d in exported.payout_destinations][-1] == IBAN


def test_the_flag_takes_decimal_hours_and_refuses_a_negative_delay(tmp_path: Path) -> None:
    args = server._parser().parse_args(["serve", "--payout-delay-hours", "0.5"])
    assert args.payout_delay_hours == 0.5
    assert server._parser().parse_args(["serve"]).payout_delay_hours == 72
    for bad in ("-1", "nan", "100000"):
        code = server.main(["--payout-delay-hours", bad, "--data-dir", str(tmp_path / "d")])
        assert code == 2, bad
