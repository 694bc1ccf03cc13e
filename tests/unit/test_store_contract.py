"""The store's contract, run against every backend: SQLite on a file, and PostgreSQL on a real
server the tests start themselves (``tests/pg_server.py``) and stop at the end of the session.

Each test gets a fresh database; ``opener`` opens another store on the same database, which
for PostgreSQL stands for another exchange replica (its own pool, no shared Python state),
so the concurrency tests check what the engine guarantees, not what one process's locks do.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from licentia import merkle
from licentia.errors import LicentiaError, Reason
from licentia.examples import typical_claims
from licentia.keys import PrivateKey
from licentia.scope import Scope
from licentia.token import LicenceClaims, approve
from licentia.v1 import transparency_pb2
from licentia.vocabulary import DataCategory, Medium, Purpose

from ..pg_server import PgServer
from .test_store_commit import _concurrently, _nonce

if TYPE_CHECKING:  # mypy checks services/ as its own package (README, Layout)
    from services import issuance
    from services.model import (
        Access,
        AssetRow,
        Cause,
        IssuerKeyRow,
        LicenceRow,
        Party,
        RequestRow,
        RequestState,
        Role,
        StandingRuleRow,
        Terms,
    )
    from services.store import SqliteStore, StaleVerdict, Store
    from services.store.postgres import PostgresStore, migrate
else:
    from licentia.services import issuance
    from licentia.services.model import (
        Access,
        AssetRow,
        Cause,
        IssuerKeyRow,
        LicenceRow,
        Party,
        RequestRow,
        RequestState,
        Role,
        StandingRuleRow,
        Terms,
    )
    from licentia.services.store import SqliteStore, StaleVerdict, Store
    from licentia.services.store.postgres import PostgresStore, migrate

NOW = 1_800_000_000
DAY = 86_400
THREADS = 16
ISSUER = PrivateKey.from_seed(b"\x01" * 32)
LICENSEE = PrivateKey.from_seed(b"\x03" * 32)
PRICE = 45_000  # typical_claims' price

Opener = Callable[[], Store]


# -- the backends --------------------------------------------------------------------------
@pytest.fixture(params=["sqlite", "postgres"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens stores on one fresh database of the backend; closes them at the end."""
    opened: list[Store] = []
    if request.param == "sqlite":
        path = tmp_path / "licentia.db"

        def make() -> Store:
            s: Store = SqliteStore(path)
            opened.append(s)
            return s
    else:
        server: PgServer = request.getfixturevalue("pg_server")
        url = server.create_database(template=server.template)

        def make() -> Store:
            s: Store = PostgresStore(url)
            opened.append(s)
            return s

    yield make
    for s in opened:
        s.close()


@pytest.fixture
def store(opener: Opener) -> Iterator[Store]:
    """A store on a fresh database; its ledger must check out after every test."""
    s = opener()
    yield s
    assert s.ledger_check() == []


# -- helpers -------------------------------------------------------------------------------
def _key(i: int) -> bytes:
    return PrivateKey.from_seed(i.to_bytes(32, "big")).public.raw


def _holder(i: int = 2) -> PrivateKey:
    return PrivateKey.from_seed(i.to_bytes(32, "big"))


def _party(key: bytes, role: Role, handle: str) -> Party:
    return Party(key, role, handle, handle.title(), "FR", NOW)


def _register(store: Store, holder: PrivateKey) -> None:
    for p in (
        _party(holder.public.raw, Role.HOLDER, f"h{holder.public.raw.hex()[:12]}"),
        _party(LICENSEE.public.raw, Role.ADVERTISER, "acme"),
    ):
        if store.party(p.key) is None:
            store.add_party(p)


def _claims(holder: PrivateKey, n: int, **changes: Any) -> LicenceClaims:
    return dataclasses.replace(typical_claims(ISSUER, holder, LICENSEE, NOW, n), **changes)


def _d(*parts: object) -> bytes:
    """A request digest for a keyed change (the services hash the request message)."""
    return hashlib.sha256(repr(parts).encode()).digest()


def _row(store: Store, claims: LicenceClaims) -> RequestRow:
    """A pending request for ``claims``, with the next status-list index (its id: theirs)."""
    c = dataclasses.replace(claims, status_index=store.reserve_status_index())
    return RequestRow(
        request_id=c.licence_id,
        state=RequestState.PENDING,
        advertiser_key=c.licensee.raw,
        holder_key=c.holder.raw,
        claims=c.encode(),
        created_at=NOW,
        expires_at=NOW + DAY,
        updated_at=NOW,
    )


def _request(
    store: Store, claims: LicenceClaims, key: bytes = b"", digest: bytes | None = None
) -> RequestRow:
    return store.add_request(
        _row(store, claims),
        now=NOW,
        idempotency_key=key,
        digest=_d(key) if digest is None else digest,
    )


def _licence(row: RequestRow, holder: PrivateKey) -> issuance.Issuance:
    """The issuance of a request's licence, approved by its holder."""
    c = LicenceClaims.decode(row.claims)
    return issuance.prepare(row.request_id, c, row.claims, approve(holder, row.claims), ISSUER, NOW)


def _issue(store: Store, plan: issuance.Issuance) -> RequestRow:
    """Issue as the servicer does: decide over the live licences, again if they changed."""
    lic = plan.licence
    while True:
        live = store.live_licences(
            lic.holder_key, lic.not_before, lic.not_after, exclusive=lic.exclusive
        )
        try:
            return store.issue(plan, issuance.verdict(plan, live), NOW)
        except StaleVerdict:
            continue


def _issued(store: Store, holder: PrivateKey, n: int, **changes: Any) -> LicenceRow:
    """A licence issued for a new request (the advertiser is funded first)."""
    _register(store, holder)
    ref = f"fund-{holder.public.raw.hex()[:8]}-{n}"
    store.deposit(LICENSEE.public.raw, PRICE, ref, NOW, digest=_d(ref, PRICE))
    row = _request(store, _claims(holder, n, **changes))
    plan = _licence(row, holder)
    assert _issue(store, plan).state == RequestState.ISSUED
    stored = store.licence(plan.licence.licence_id)
    assert stored is not None
    return stored


def _reason(e: BaseException | None) -> Reason | None:
    assert e is None or isinstance(e, LicentiaError), repr(e)
    return None if e is None else e.reason


def _raises(reason: Reason, fn: Callable[[], object]) -> None:
    with pytest.raises(LicentiaError) as e:
        fn()
    assert e.value.reason == reason


def _terms(price: int = 100) -> Terms:
    scope = Scope.of(
        [DataCategory.IMAGE, DataCategory.NAME],
        [Purpose.ADVERTISING],
        [Medium.ONLINE, Medium.SOCIAL],
        ["FR", "DE"],
    )
    return Terms(
        scope, frozenset({Purpose.POLITICAL_CAMPAIGN}), "EUR", price, 90 * DAY, True, 15000, NOW
    )


# -- parties, assets, terms, rules -----------------------------------------------------------
def test_parties(store: Store) -> None:
    a = _party(_key(10), Role.HOLDER, "alice")
    store.add_party(a)
    assert store.party(a.key) == a
    assert store.party(_key(11)) is None
    _raises(Reason.ALREADY_EXISTS, lambda: store.add_party(a))
    _raises(
        Reason.ALREADY_EXISTS,
        lambda: store.add_party(_party(_key(12), Role.ADVERTISER, "alice")),
    )
    changed = store.update_party(a.key, display_name="Alice B", objecting=True)
    assert changed == dataclasses.replace(a, display_name="Alice B", objecting=True)
    assert store.party(a.key) == changed
    _raises(Reason.NOT_FOUND, lambda: store.update_party(_key(13), objecting=True))
    platform = Party(_key(14), Role.PLATFORM, "", "Platform", "DE", NOW)
    store.add_party(platform)  # no handle: several parties may have none
    store.add_party(dataclasses.replace(platform, key=_key(15)))
    assert store.party(_key(14)) == platform


def test_platforms_are_listed_by_id_in_pages(store: Store) -> None:
    store.add_party(_party(_key(30), Role.HOLDER, "aaa"))
    store.add_party(_party(_key(31), Role.ADVERTISER, ""))
    shops = [_party(_key(32 + i), Role.PLATFORM, f"shop{i}") for i in (2, 0, 1)]
    for p in shops:
        store.add_party(p)
    ordered = sorted(shops, key=lambda p: p.handle)
    assert store.platforms("", 10) == ordered  # platforms only, by id
    assert store.platforms("", 2) == ordered[:2]
    assert store.platforms("shop1", 10) == ordered[2:]
    assert store.platforms("shop2", 10) == []


def test_assets(store: Store) -> None:
    h = _key(20)
    photo, voice = hashlib.sha256(b"photo").digest(), hashlib.sha256(b"voice").digest()
    row = AssetRow(h, photo, DataCategory.IMAGE, "me", 0, False, NOW)
    got = store.put_asset(row, b"jpeg bytes")
    assert (got.content_size, got.has_content) == (10, True)
    store.put_asset(AssetRow(h, voice, DataCategory.VOICE, "hello", 0, False, NOW), None)
    # Rectified without bytes: label and category replaced, the bytes kept.
    again = store.put_asset(dataclasses.replace(row, label="portrait", declared_at=NOW + 1), None)
    assert (again.label, again.content_size, again.has_content) == ("portrait", 10, True)
    assert [a.sha256 for a in store.assets(h)] == [photo, voice]
    assert store.asset_content(h, photo) == b"jpeg bytes"
    assert store.asset_content(h, voice) is None
    assert store.asset_content(_key(21), photo) is None
    # A byte-less asset declared again without bytes stays byte-less.
    voice_again = store.put_asset(
        AssetRow(h, voice, DataCategory.VOICE, "hi", 0, False, NOW + 2), None
    )
    assert (voice_again.label, voice_again.content_size, voice_again.has_content) == (
        "hi",
        0,
        False,
    )
    assert store.assets(_key(21)) == []


def test_terms_and_offers(store: Store) -> None:
    for i, handle in enumerate(["bea", "al", "cy", "dee"]):
        store.add_party(_party(_key(30 + i), Role.HOLDER, handle))
    assert store.terms(_key(30)) is None
    store.set_terms(_key(30), _terms(100))
    store.set_terms(_key(30), _terms(250))  # replaced
    assert store.terms(_key(30)) == _terms(250)
    store.set_terms(_key(31), _terms())
    store.set_terms(_key(33), _terms())
    store.update_party(_key(33), objecting=True)  # objects: no offer
    assert [p.handle for p, _ in store.offers("", 10)] == ["al", "bea"]
    assert [p.handle for p, _ in store.offers("al", 10)] == ["bea"]
    assert [p.handle for p, _ in store.offers("", 1)] == ["al"]
    assert store.offers("", 10)[1] == (store.party(_key(30)), _terms(250))


def test_standing_rules(store: Store) -> None:
    h = _key(40)
    rules = [StandingRuleRow(bytes([i]) * 16, h, b"rule%d" % i, b"sig", NOW + i) for i in (3, 1, 2)]
    for r in rules:
        store.add_rule(r)
    _raises(Reason.ALREADY_EXISTS, lambda: store.add_rule(rules[0]))
    assert store.rules(h) == rules  # oldest first
    withdrawn = store.withdraw_rule(h, rules[1].rule_id, NOW + 9)
    assert withdrawn == dataclasses.replace(rules[1], withdrawn_at=NOW + 9)
    # Withdrawing again keeps the first withdrawal; another holder's rule is not found.
    assert store.withdraw_rule(h, rules[1].rule_id, NOW + 10).withdrawn_at == NOW + 9
    _raises(Reason.NOT_FOUND, lambda: store.withdraw_rule(_key(41), rules[0].rule_id, NOW))
    assert store.rules(_key(41)) == []


# -- requests ------------------------------------------------------------------------------
def test_requests_idempotency_and_finishing(store: Store) -> None:
    holder = _holder()
    first = _request(store, _claims(holder, 1), key=b"k1")
    again = _request(store, _claims(holder, 2), key=b"k1")  # same key: the first request
    assert again == first
    assert store.request_by_key(LICENSEE.public.raw, b"k1", _d(b"k1")) == first
    assert store.request_by_key(LICENSEE.public.raw, b"k2", _d(b"k2")) is None
    assert store.request(first.request_id) == first
    assert store.request(_claims(holder, 2).licence_id) is None
    second = _request(store, _claims(holder, 3))
    assert second.claims != first.claims
    assert (
        LicenceClaims.decode(second.claims).status_index
        != LicenceClaims.decode(first.claims).status_index
    )
    h = holder.public.raw
    assert [
        r.request_id for r in store.requests_for_holder(h, include_answered=False, limit=9)
    ] == [
        second.request_id,
        first.request_id,
    ]
    declined = store.finish_request(
        first.request_id, RequestState.DECLINED, NOW + 5, reason="no thanks"
    )
    assert (declined.state, declined.updated_at, declined.reason) == (
        RequestState.DECLINED,
        NOW + 5,
        "no thanks",
    )
    _raises(
        Reason.REQUEST_NOT_PENDING,
        lambda: store.finish_request(first.request_id, RequestState.EXPIRED, NOW + 6),
    )
    expired = store.finish_request(
        second.request_id, RequestState.EXPIRED, NOW + DAY, failure="REQUEST_EXPIRED"
    )
    assert (expired.state, expired.failure) == (RequestState.EXPIRED, "REQUEST_EXPIRED")
    _raises(
        Reason.NOT_FOUND,
        lambda: store.finish_request(b"\x00" * 16, RequestState.DECLINED, NOW),
    )
    assert store.requests_for_holder(h, include_answered=False, limit=9) == []
    assert len(store.requests_for_holder(h, include_answered=True, limit=9)) == 2
    assert len(store.requests_for_holder(h, include_answered=True, limit=1)) == 1


def test_concurrent_requests_with_one_idempotency_key_store_one(opener: Opener) -> None:
    stores = [opener() for _ in range(4)]
    holder = _holder()
    got: list[RequestRow] = []
    lock = threading.Lock()

    def make(i: int) -> None:
        row = _request(stores[i % 4], _claims(holder, 100 + i), key=b"same")
        with lock:
            got.append(row)

    assert _concurrently(8, make) == [None] * 8
    assert len({r.request_id for r in got}) == 1
    assert (
        len(stores[0].requests_for_holder(holder.public.raw, include_answered=True, limit=99)) == 1
    )


def test_status_indexes_are_unique_across_replicas(opener: Opener) -> None:
    stores = [opener() for _ in range(4)]
    holder = _holder()
    indexes: list[int] = []
    lock = threading.Lock()

    def make(i: int) -> None:
        for j in range(10):
            row = _request(stores[i % 4], _claims(holder, 1000 + 10 * i + j))
            with lock:
                indexes.append(LicenceClaims.decode(row.claims).status_index)

    assert _concurrently(8, make) == [None] * 8
    assert len(set(indexes)) == len(indexes) == 80


# -- issuance --------------------------------------------------------------------------------
def test_issuance_escrows_and_logs(store: Store) -> None:
    holder = _holder()
    _register(store, holder)
    row = _request(store, _claims(holder, 1))
    plan = _licence(row, holder)
    lic = plan.licence
    _raises(Reason.INSUFFICIENT_FUNDS, lambda: _issue(store, plan))
    assert store.request(row.request_id) == row  # still pending, nothing stored
    assert store.licence(lic.licence_id) is None
    assert store.log_size() == 0
    store.deposit(LICENSEE.public.raw, PRICE + 5, "pay-1", NOW, digest=_d("pay-1", PRICE + 5))
    issued = _issue(store, plan)
    assert (issued.state, issued.licence_id) == (RequestState.ISSUED, lic.licence_id)
    assert store.licence(lic.licence_id) == lic
    _raises(Reason.REQUEST_NOT_PENDING, lambda: _issue(store, plan))
    advertiser = store.party(LICENSEE.public.raw)
    assert advertiser is not None
    st = store.statement(advertiser, 0, 10)
    assert (st.available, st.pending) == (5, PRICE)
    assert [line.kind for line in st.lines] == ["ESCROW", "DEPOSIT"]
    index = store.log_index_of_licence(lic.licence_id)
    assert index == 0
    [(i, entry, at)] = store.log_entries(0, 10)
    assert (i, at) == (0, NOW)
    assert transparency_pb2.LogEntry.FromString(entry).licence == lic.token
    assert store.licences_of(holder.public.raw, before_issued=NOW + 1, limit=5) == [lic]
    assert store.licences_of(LICENSEE.public.raw, before_issued=NOW + 1, limit=5) == [lic]
    assert store.licences_of(LICENSEE.public.raw, before_issued=NOW, limit=5) == []


def test_automatic_issuance_and_its_refusal(store: Store) -> None:
    holder = _holder()
    _register(store, holder)
    store.deposit(LICENSEE.public.raw, 2 * PRICE, "pay", NOW, digest=_d("pay", 2 * PRICE))

    def create(n: int) -> RequestRow:
        row = _row(store, _claims(holder, n, exclusive=True))
        plan = _licence(row, holder)
        lic = plan.licence
        while True:
            live = store.live_licences(lic.holder_key, NOW, lic.not_after, exclusive=True)
            try:
                return store.add_request(row, auto=(plan, issuance.verdict(plan, live)), now=NOW)
            except StaleVerdict:
                continue

    first = create(1)
    assert first.state == RequestState.ISSUED
    assert first.auto_approved is False
    _raises(Reason.EXCLUSIVITY_CONFLICT, lambda: create(2))
    failed = store.request(_claims(holder, 2).licence_id)
    assert failed is not None
    assert (failed.state, failed.failure) == (RequestState.FAILED, "EXCLUSIVITY_CONFLICT")
    assert store.licence(_claims(holder, 2).licence_id) is None
    assert store.log_size() == 1


def test_exclusivity_holds_across_replicas(opener: Opener) -> None:
    """16 writers (each its own store: a replica) issue overlapping exclusive licences of one
    holder at once: exactly one is issued."""
    setup = opener()
    holder = _holder()
    _register(setup, holder)
    setup.deposit(
        LICENSEE.public.raw, THREADS * PRICE, "pay", NOW, digest=_d("pay", THREADS * PRICE)
    )
    prepared = []
    for i in range(THREADS):
        row = _request(setup, _claims(holder, i, not_before=NOW + i * 60, exclusive=True))
        prepared.append(_licence(row, holder))
    replicas = [opener() for _ in range(THREADS)]
    errors = _concurrently(THREADS, lambda i: _issue(replicas[i], prepared[i]))
    reasons = [_reason(e) for e in errors]
    assert reasons.count(None) == 1
    assert reasons.count(Reason.EXCLUSIVITY_CONFLICT) == THREADS - 1
    live = setup.licences_of(holder.public.raw, before_issued=NOW + 1, limit=99)
    assert len(live) == 1
    assert setup.log_size() == 1
    assert setup.ledger_check() == []


def test_funds_are_never_spent_twice_across_replicas(opener: Opener) -> None:
    """Eight replicas issue licences of eight holders paid from one balance that covers
    three: exactly three are issued, and no balance goes negative."""
    setup = opener()
    setup.deposit(LICENSEE.public.raw, 3 * PRICE, "pay", NOW, digest=_d("pay", 3 * PRICE))
    prepared = []
    for i in range(8):
        holder = _holder(50 + i)
        _register(setup, holder)
        prepared.append(_licence(_request(setup, _claims(holder, i)), holder))
    replicas = [opener() for _ in range(8)]
    errors = _concurrently(8, lambda i: _issue(replicas[i], prepared[i]))
    reasons = [_reason(e) for e in errors]
    assert reasons.count(None) == 3
    assert reasons.count(Reason.INSUFFICIENT_FUNDS) == 5
    assert setup.ledger_check() == []
    # The log has one entry per licence, indexes gapless.
    assert [i for i, _, _ in setup.log_entries(0, 99)] == [0, 1, 2]


# -- revocation, erasure, the status list ----------------------------------------------------
def test_revocation_refunds_sets_the_bit_and_logs(store: Store) -> None:
    holder = _holder()
    lic = _issued(store, holder, 1)
    assert store.status() == ([], 0)
    call = transparency_pb2.SignedCall(method="Revoke", body=b"b", key=b"k", nonce=b"n")
    later = NOW + 9 * DAY  # a tenth of the 90-day term
    revoked, event = store.revoke(lic.licence_id, later, Cause.REVOKED, call.SerializeToString())
    assert revoked == dataclasses.replace(lic, revoked_at=later)
    assert (event.sequence, event.status_index, event.licence_id, event.cause) == (
        1,
        lic.status_index,
        lic.licence_id,
        Cause.REVOKED,
    )
    assert store.status() == ([lic.status_index], 1)
    assert store.events_after(0, 10) == [event]
    assert store.events_after(1, 10) == []
    # Idempotent: the first revocation, nothing new.
    assert store.revoke(lic.licence_id, later + 5, Cause.ERASED) == (revoked, event)
    _raises(Reason.NOT_FOUND, lambda: store.revoke(b"\x00" * 16, later, Cause.REVOKED))
    entries = store.log_entries(0, 10)
    assert len(entries) == 2
    logged = transparency_pb2.LogEntry.FromString(entries[1][1]).revocation
    assert (logged.licence_id, logged.revoked_at, logged.request.method) == (
        lic.licence_id,
        later,
        "Revoke",
    )
    advertiser = store.party(LICENSEE.public.raw)
    h = store.party(holder.public.raw)
    assert advertiser is not None
    assert h is not None
    st = store.statement(advertiser, 0, 10)
    assert st.pending == 0
    assert st.available == PRICE - PRICE // 10  # the unused nine tenths came back
    assert store.statement(h, 0, 10).available == (PRICE // 10) * 9 // 10  # less the 10% fee


def test_revocation_sequences_are_gapless_across_replicas(opener: Opener) -> None:
    setup = opener()
    holder = _holder()
    licences = [_issued(setup, holder, i) for i in range(THREADS)]
    replicas = [opener() for _ in range(4)]
    errors = _concurrently(
        THREADS,
        lambda i: replicas[i % 4].revoke(licences[i].licence_id, NOW + i, Cause.REVOKED),
    )
    assert errors == [None] * THREADS
    events = setup.events_after(0, 99)
    assert [e.sequence for e in events] == list(range(1, THREADS + 1))
    assert {e.licence_id for e in events} == {lic.licence_id for lic in licences}
    assert setup.events_after(10, 3) == events[10:13]
    revoked, last = setup.status()
    assert (sorted(revoked), last) == (sorted(lic.status_index for lic in licences), THREADS)
    # Every revocation was logged once, after the issuances, indexes gapless.
    assert [i for i, _, _ in setup.log_entries(0, 99)] == list(range(2 * THREADS))
    assert setup.ledger_check() == []


def test_concurrent_revocations_of_one_licence_revoke_once(opener: Opener) -> None:
    setup = opener()
    lic = _issued(setup, _holder(), 1)
    replicas = [opener() for _ in range(8)]
    errors = _concurrently(8, lambda i: replicas[i].revoke(lic.licence_id, NOW + i, Cause.REVOKED))
    assert errors == [None] * 8
    assert len(setup.events_after(0, 99)) == 1
    assert setup.log_size() == 2
    assert setup.ledger_check() == []


def test_erasure_deletes_assets_and_revokes_their_licences(store: Store) -> None:
    holder = _holder()
    h = holder.public.raw
    claims = _claims(holder, 1)
    for a in claims.assets:
        store.put_asset(AssetRow(h, a.sha256, a.category, "x", 0, False, NOW), b"bytes")
    lic = _issued(store, holder, 1)
    other = _issued(store, holder, 2, assets=claims.assets[1:])  # names the second asset only
    erased, events = store.erase_assets(h, [claims.assets[0].sha256], NOW + 10, b"")
    assert erased == 1
    assert [(e.licence_id, e.cause) for e in events] == [(lic.licence_id, Cause.ERASED)]
    assert [a.sha256 for a in store.assets(h)] == [claims.assets[1].sha256]
    live = store.licence(other.licence_id)
    assert live is not None
    assert live.revoked_at == 0
    erased, events = store.erase_assets(h, None, NOW + 20)  # everything left
    assert erased == 1
    assert [e.licence_id for e in events] == [other.licence_id]
    assert store.assets(h) == []
    assert [e.sequence for e in store.events_after(0, 9)] == [1, 2]


def test_a_key_reused_for_another_request_is_refused(store: Store) -> None:
    """One rule for every keyed change: the first request's digest is stored with its key;
    the same key with another digest is IDEMPOTENCY_KEY_REUSED and changes nothing, while
    the same key with the same digest replays the first answer."""
    holder = _holder()
    first = _request(store, _claims(holder, 1), key=b"k1", digest=_d("request one"))
    reused = _claims(holder, 2)
    _raises(
        Reason.IDEMPOTENCY_KEY_REUSED,
        lambda: _request(store, reused, key=b"k1", digest=_d("request two")),
    )
    _raises(
        Reason.IDEMPOTENCY_KEY_REUSED,
        lambda: store.request_by_key(LICENSEE.public.raw, b"k1", _d("request two")),
    )
    assert store.request(reused.licence_id) is None
    assert _request(store, _claims(holder, 3), key=b"k1", digest=_d("request one")) == first

    adv = LICENSEE.public.raw
    line, _, _ = store.deposit(adv, 500, "bank-9", NOW, digest=_d("deposit one"))
    # Even the same amount to the same account: the request is not the same one.
    _raises(
        Reason.IDEMPOTENCY_KEY_REUSED,
        lambda: store.deposit(adv, 500, "bank-9", NOW, digest=_d("deposit two")),
    )
    assert store.deposit(adv, 500, "bank-9", NOW + 1, digest=_d("deposit one"))[0] == line

    lic = _issued(store, holder, 4)
    platform = _key(60)
    assert store.record_use(b"r", lic.licence_id, platform, NOW, digest=_d("use one")) == (1, NOW)
    _raises(
        Reason.IDEMPOTENCY_KEY_REUSED,
        lambda: store.record_use(b"r", lic.licence_id, platform, NOW, digest=_d("use two")),
    )
    _raises(Reason.IDEMPOTENCY_KEY_REUSED, lambda: store.use_report(b"r", _d("use two")))
    assert store.licence_uses(lic.licence_id) == 1
    h = holder.public.raw
    store.settle(h, lic.not_after)
    paid, balance, _ = store.withdraw(h, 100, "iban", b"w", NOW, digest=_d("payout one"))
    _raises(
        Reason.IDEMPOTENCY_KEY_REUSED,
        lambda: store.withdraw(h, 100, "iban", b"w", NOW, digest=_d("payout two")),
    )
    assert store.withdraw(h, 100, "iban", b"w", NOW, digest=_d("payout one")) == (
        paid,
        balance,
        True,
    )

    assert store.ledger_check() == []


# -- uses, accesses --------------------------------------------------------------------------
def test_use_counting(store: Store) -> None:
    lic = _issued(store, _holder(), 1)  # max_uses = 3
    platform = _key(60)
    assert store.licence_uses(lic.licence_id) == 0
    assert store.record_use(b"r1", lic.licence_id, platform, NOW + 1, digest=_d(b"r1")) == (
        1,
        NOW + 1,
    )
    assert store.record_use(b"r1", lic.licence_id, platform, NOW + 5, digest=_d(b"r1")) == (
        1,
        NOW + 1,
    )  # replay
    assert store.record_use(b"r2", lic.licence_id, platform, NOW + 2, digest=_d(b"r2")) == (
        2,
        NOW + 2,
    )
    assert store.record_use(b"r3", lic.licence_id, platform, NOW + 3, digest=_d(b"r3")) == (
        3,
        NOW + 3,
    )
    _raises(
        Reason.USES_EXHAUSTED,
        lambda: store.record_use(b"r4", lic.licence_id, platform, NOW, digest=_d(b"r4")),
    )
    _raises(
        Reason.NOT_FOUND,
        lambda: store.record_use(b"r5", b"\x00" * 16, platform, NOW, digest=_d(b"r5")),
    )
    other = _issued(store, _holder(), 2, not_before=NOW + 100 * DAY, not_after=NOW + 110 * DAY)
    _raises(
        Reason.IDEMPOTENCY_KEY_REUSED,
        lambda: store.record_use(b"r1", other.licence_id, platform, NOW, digest=_d(b"r1")),
    )
    assert store.use_report(b"r2", _d(b"r2")) == (lic.licence_id, 2, NOW + 2)
    assert store.use_report(b"r9", _d(b"r9")) is None
    stored = store.licence(lic.licence_id)
    assert stored is not None
    assert stored.uses == 3 == store.licence_uses(lic.licence_id)
    assert store.licence_uses(b"\x00" * 16) == 0


def test_use_counting_across_replicas(opener: Opener) -> None:
    setup = opener()
    lic = _issued(setup, _holder(), 1)  # max_uses = 3
    replicas = [opener() for _ in range(4)]
    errors = _concurrently(
        8,
        lambda i: replicas[i % 4].record_use(
            b"u%d" % i, lic.licence_id, _key(60), NOW + 1, digest=_d(b"u%d" % i)
        ),
    )
    reasons = [_reason(e) for e in errors]
    assert reasons.count(None) == 3
    assert reasons.count(Reason.USES_EXHAUSTED) == 5
    stored = setup.licence(lic.licence_id)
    assert stored is not None
    assert stored.uses == 3
    # The same report from several replicas at once counts once.
    lic2 = _issued(setup, _holder(3), 2)
    errors = _concurrently(
        8,
        lambda i: replicas[i % 4].record_use(
            b"same", lic2.licence_id, _key(60), NOW + 1, digest=_d(b"same")
        ),
    )
    assert errors == [None] * 8
    stored = setup.licence(lic2.licence_id)
    assert stored is not None
    assert stored.uses == 1
    assert setup.ledger_check() == []


def test_accesses(store: Store) -> None:
    h = _key(70)
    for i in range(3):
        store.record_access(Access(h, bytes([i]) * 32, b"l" * 16, _key(71), NOW + i))
    got = store.accesses(h, 2)
    assert [a.accessed_at for a in got] == [NOW + 2, NOW + 1]
    assert store.accesses(_key(72), 5) == []


# -- money -----------------------------------------------------------------------------------
def test_deposits_and_withdrawals_are_idempotent(store: Store) -> None:
    adv = LICENSEE.public.raw
    line, balance, replayed = store.deposit(adv, 500, "bank-1", NOW, digest=_d("bank-1", 500))
    assert (line.amount, balance, replayed, line.reference) == (500, 500, False, "bank-1")
    again = store.deposit(adv, 500, "bank-1", NOW + 1, digest=_d("bank-1", 500))
    assert again == (line, 500, True)
    _raises(
        Reason.IDEMPOTENCY_KEY_REUSED,
        lambda: store.deposit(adv, 501, "bank-1", NOW, digest=_d("bank-1", 501)),
    )
    holder = _holder()
    lic = _issued(store, holder, 1)
    h = holder.public.raw
    _raises(
        Reason.INSUFFICIENT_FUNDS,
        lambda: store.withdraw(h, 1, "iban", b"w0", NOW, digest=_d(b"w0", 1, "iban")),
    )  # nothing earned yet
    store.settle(h, lic.not_after)  # the whole term has passed: all earned
    hp = store.party(h)
    assert hp is not None
    earned = store.statement(hp, 0, 10).available
    assert earned == PRICE - PRICE // 10
    _raises(
        Reason.INSUFFICIENT_FUNDS,
        lambda: store.withdraw(
            h, earned + 1, "iban", b"w1", NOW, digest=_d(b"w1", earned + 1, "iban")
        ),
    )
    line, balance, replayed = store.withdraw(
        h, 1000, "iban", b"w1", NOW, digest=_d(b"w1", 1000, "iban")
    )
    assert (line.amount, balance, replayed) == (-1000, earned - 1000, False)
    assert store.withdraw(h, 1000, "iban", b"w1", NOW, digest=_d(b"w1", 1000, "iban")) == (
        line,
        earned - 1000,
        True,
    )
    _raises(
        Reason.IDEMPOTENCY_KEY_REUSED,
        lambda: store.withdraw(h, 999, "iban", b"w1", NOW, digest=_d(b"w1", 999, "iban")),
    )
    _raises(
        Reason.IDEMPOTENCY_KEY_REUSED,
        lambda: store.withdraw(h, 1000, "other", b"w1", NOW, digest=_d(b"w1", 1000, "other")),
    )


def test_concurrent_deposits_and_withdrawals_across_replicas(opener: Opener) -> None:
    stores = [opener() for _ in range(4)]
    adv = LICENSEE.public.raw
    errors = _concurrently(
        8,
        lambda i: stores[i % 4].deposit(
            adv, 100, f"ref-{i % 2}", NOW, digest=_d(f"ref-{i % 2}", 100)
        ),
    )
    assert errors == [None] * 8
    setup = stores[0]
    advertiser = _party(adv, Role.ADVERTISER, "acme")
    setup.add_party(advertiser)
    assert setup.statement(advertiser, 0, 10).available == 200  # two references, once each
    setup.deposit(adv, PRICE, "more", NOW, digest=_d("more", PRICE))
    holder = _holder()
    lic = _issued(setup, holder, 1)
    setup.settle(holder.public.raw, lic.not_after)
    hp = setup.party(holder.public.raw)
    assert hp is not None
    earned = setup.statement(hp, 0, 1).available
    # Eight payouts of 60% of the balance, four idempotency keys: exactly one is paid.
    errors = _concurrently(
        8,
        lambda i: stores[i % 4].withdraw(
            holder.public.raw,
            earned * 6 // 10,
            "iban",
            b"k%d" % (i % 4),
            NOW,
            digest=_d(b"k%d" % (i % 4)),
        ),
    )
    reasons = [_reason(e) for e in errors]
    assert reasons.count(Reason.INSUFFICIENT_FUNDS) >= 6
    assert setup.statement(hp, 0, 1).available == earned - earned * 6 // 10
    assert setup.ledger_check() == []


def test_statements_page_newest_first(store: Store) -> None:
    adv = _party(LICENSEE.public.raw, Role.ADVERTISER, "acme")
    store.add_party(adv)
    for i in range(5):
        store.deposit(adv.key, 10 + i, f"d{i}", NOW + i, digest=_d(f"d{i}", 10 + i))
    first = store.statement(adv, 0, 2)
    assert [line.amount for line in first.lines] == [14, 13]
    assert (first.available, first.pending, first.total) == (60, 0, 0)
    second = store.statement(adv, first.next_before, 2)
    assert [line.amount for line in second.lines] == [12, 11]
    last = store.statement(adv, second.next_before, 2)
    assert [line.amount for line in last.lines] == [10]
    assert last.next_before == 0
    holder = _holder()
    lic = _issued(store, holder, 1)
    store.settle(holder.public.raw, NOW + 45 * DAY)  # half the term
    store.settle(holder.public.raw, NOW + 45 * DAY)  # again: nothing moves
    hp = store.party(holder.public.raw)
    assert hp is not None
    st = store.statement(hp, 0, 10)
    half = PRICE // 2
    assert st.available == half - half // 10
    assert st.total == st.available
    assert st.pending == (PRICE - half) - (PRICE - half) // 10
    assert [line.kind for line in st.lines] == ["ACCRUAL"]
    assert store.statement(adv, 0, 1).pending == PRICE - half
    assert lic.max_uses == 3


# -- the public log --------------------------------------------------------------------------
def test_log_proofs_verify(store: Store) -> None:
    holder = _holder()
    heads = [store.log_head()]
    assert heads[0][0] == 0
    for i in range(7):
        lic = _issued(
            store, holder, i, not_before=NOW + i * 91 * DAY, not_after=NOW + (i * 91 + 1) * DAY
        )
        if i % 2:
            store.revoke(lic.licence_id, NOW + 1, Cause.REVOKED)
        heads.append(store.log_head())
    size, root = store.log_head()
    assert size == store.log_size() == 7 + 3
    entries = store.log_entries(0, size)
    assert [i for i, _, _ in entries] == list(range(size))
    assert merkle.reference_root([e for _, e, _ in entries]) == root
    for index, entry, _ in entries:
        got_size, proof, got_entry = store.log_inclusion(index, 0)
        assert (got_size, got_entry) == (size, entry)
        assert merkle.verify_inclusion(entry, index, size, proof, root)
    old_size, old_root = heads[3]
    _, proof, _ = store.log_inclusion(1, old_size)
    assert merkle.verify_inclusion(entries[1][1], 1, old_size, proof, old_root)
    for old_size, old_root in heads[1:]:
        proof = store.log_consistency(old_size, size)
        assert merkle.verify_consistency(old_size, size, old_root, root, proof)
    _raises(Reason.INVALID_REQUEST, lambda: store.log_inclusion(size, 0))
    _raises(Reason.INVALID_REQUEST, lambda: store.log_consistency(0, size))
    _raises(Reason.INVALID_REQUEST, lambda: store.log_consistency(2, size + 1))
    assert store.log_index_of_licence(b"\x00" * 16) is None


def test_log_appends_from_replicas_stay_consistent(opener: Opener) -> None:
    setup = opener()
    setup.deposit(
        LICENSEE.public.raw, THREADS * PRICE, "pay", NOW, digest=_d("pay", THREADS * PRICE)
    )
    prepared = []
    for i in range(THREADS):
        holder = _holder(80 + i)
        _register(setup, holder)
        prepared.append(_licence(_request(setup, _claims(holder, i)), holder))
    replicas = [opener() for _ in range(4)]
    errors = _concurrently(THREADS, lambda i: _issue(replicas[i % 4], prepared[i]))
    assert errors == [None] * THREADS
    size, root = setup.log_head()
    entries = setup.log_entries(0, size)
    assert [i for i, _, _ in entries] == list(range(THREADS))
    assert merkle.reference_root([e for _, e, _ in entries]) == root
    assert sorted(setup.log_index_of_licence(p.licence.licence_id) or 0 for p in prepared) == list(
        range(THREADS)
    )


# -- issuer keys -----------------------------------------------------------------------------
def test_issuer_key_rotation_and_withdrawal(store: Store) -> None:
    k1 = IssuerKeyRow(b"1" * 8, b"a" * 32, NOW)
    k2 = IssuerKeyRow(b"2" * 8, b"b" * 32, NOW + 100)
    store.rotate_issuer_key(k1)
    store.rotate_issuer_key(k2)
    assert store.issuer_keys() == [dataclasses.replace(k1, not_after=NOW + 100), k2]
    assert store.withdraw_issuer_key(k1.key_id, NOW + 200) is True
    assert store.withdraw_issuer_key(k1.key_id, NOW + 200) is False
    assert store.issuer_keys() == [k2]
    logged = [
        transparency_pb2.LogEntry.FromString(e).issuer_key for _, e, _ in store.log_entries(0, 9)
    ]
    assert [(k.key_id, k.not_after, k.withdrawn) for k in logged] == [
        (k1.key_id, 0, False),
        (k1.key_id, NOW + 100, False),
        (k2.key_id, 0, False),
        (k1.key_id, NOW + 100, True),
    ]


# -- spent nonces ----------------------------------------------------------------------------
def test_spent_nonces(opener: Opener) -> None:
    store = opener()
    store.add_party(_party(_key(90), Role.HOLDER, "n1"), nonces=(_nonce(b"n1"),))
    other = opener()  # another replica (or a restart): no memory of the call
    with pytest.raises(LicentiaError) as e:
        other.add_party(_party(_key(91), Role.HOLDER, "n2"), nonces=(_nonce(b"n1"),))
    assert e.value.reason is Reason.REPLAYED_REQUEST
    assert other.party(_key(91)) is None
    # A call's second change is not a replay of its first; a refused change spends nothing.
    nonce = _nonce(b"n2")
    with pytest.raises(LicentiaError):
        store.add_party(_party(_key(90), Role.HOLDER, "n1"), nonces=(nonce,))
    assert not nonce.recorded
    store.add_party(_party(_key(92), Role.HOLDER, "n3"), nonces=(nonce,))
    assert nonce.recorded
    store.add_party(_party(_key(93), Role.HOLDER, "n4"), nonces=(nonce,))
    # Expired: the same key may be spent again.
    later = NOW + 100
    other.add_party(_party(_key(94), Role.HOLDER, "n5"), nonces=(_nonce(b"n1", later + 61, later),))
    # The same nonce on several replicas at once: one change, the others refused.
    replicas = [opener() for _ in range(4)]

    def call(i: int) -> None:
        replicas[i % 4].add_party(
            _party(_key(100 + i), Role.HOLDER, f"r{i}"), nonces=(_nonce(b"race"),)
        )

    reasons = [_reason(e) for e in _concurrently(8, call)]
    assert reasons.count(None) == 1
    assert reasons.count(Reason.REPLAYED_REQUEST) == 7


# -- the exchange's own keys ---------------------------------------------------------------
def test_the_first_record_of_the_exchanges_keys_stands(opener: Opener) -> None:
    """Replicas starting together each try to record their keys: one set is recorded, whole,
    and every one of them reads that set back (the others then refuse to start)."""
    store = opener()
    assert store.exchange_keys() == {}
    candidates = [{"operator": _key(10 + i), "log": _key(20 + i)} for i in range(THREADS)]
    stores = [opener() for _ in range(THREADS)]
    seen: list[dict[str, bytes]] = [{} for _ in range(THREADS)]

    def record(i: int) -> None:
        seen[i] = stores[i].record_exchange_keys(candidates[i], NOW)

    assert _concurrently(THREADS, record) == [None] * THREADS
    assert seen[0] in candidates
    assert all(s == seen[0] for s in seen)
    assert store.exchange_keys() == seen[0]
    # A name not yet recorded is added; a recorded one keeps its first key.
    after = store.record_exchange_keys({"operator": _key(99), "other": _key(98)}, NOW)
    assert after == {**seen[0], "other": _key(98)}


# -- the backends' own start ---------------------------------------------------------------
def test_reopening_keeps_everything(opener: Opener) -> None:
    store = opener()
    lic = _issued(store, _holder(), 1)
    store.close()
    again = opener()  # migrations already applied: nothing re-run, nothing lost
    assert again.licence(lic.licence_id) == lic
    assert again.log_size() == 1


def test_replicas_starting_together_migrate_once(pg_server: PgServer) -> None:
    url = pg_server.create_database()  # empty: no migration applied yet
    applied: list[list[str]] = [[] for _ in range(6)]

    def start(i: int) -> None:
        applied[i] = migrate(url)

    assert _concurrently(6, start) == [None] * 6
    names = [n for a in applied for n in a]
    assert sorted(names) == [
        "m001_initial",
        "m002_live_exclusive_index",
        "m003_ledger",
        "m004_log",
        "m005_spent_nonces",
        "m006_exchange_keys",
        "m007_idempotency_digests",
    ]
    store = PostgresStore(url)
    _issued(store, _holder(), 1)
    assert store.ledger_check() == []
    store.close()


def test_acknowledged_changes_survive_a_server_crash(pg_server: PgServer) -> None:
    """What a PostgreSQL store acknowledged is on disk: the server is stopped as by a power
    cut right after, and everything is there when it comes back."""
    url = pg_server.create_database(pg_server.template)
    store = PostgresStore(url)
    lic = _issued(store, _holder(), 1)
    store.revoke(lic.licence_id, NOW + 1, Cause.REVOKED)
    store.close()
    pg_server.crash_and_restart()
    again = PostgresStore(url)
    stored = again.licence(lic.licence_id)
    assert stored is not None
    assert stored.revoked_at == NOW + 1
    assert again.status()[1] == 1
    assert again.log_size() == 2
    assert again.ledger_check() == []
    again.close()
