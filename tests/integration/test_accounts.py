"""Accounts with key sets, against a real exchange: devices that join by pairing and consent
from any of them, a stolen device removed as compromised that stops at once, the recovery
key that replaces every device, racing changes, a compromised licensee key whose licences
stop everywhere, and every bad change refused with its reason and nothing changed."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from licentia import keyset, sealed
from licentia.clients import accounts
from licentia.clients.advertiser import Advertiser
from licentia.clients.channel import SignedChannel
from licentia.clients.holder import ExchangeError, Holder, standing_rule
from licentia.errors import Reason
from licentia.keys import PrivateKey
from licentia.presentation import present
from licentia.token import LicenceClaims, RuleCommitment, StandingConsent, parse_token
from licentia.v1 import (
    accounts_pb2,
    exchange_pb2,
    records_pb2,
    transparency_pb2,
    verification_pb2,
)
from licentia.vocabulary import DataCategory, Medium, Purpose

from .exchange_harness import (
    DAY,
    PHOTO_SHA,
    Exchange,
    Party,
    issue_licence,
    photo_use,
    reasons,
    register_advertiser,
    register_holder,
    register_platform,
    request_licence,
    revoke_licence,
    start_verifier,
    verify,
    wait_for,
)

BOTH_STORES = pytest.mark.parametrize("ex", ["sqlite", "postgres"], indirect=True)


@pytest.fixture
def laptop(ex: Exchange) -> Iterator[Holder]:
    """Alice's first device: her account's key (registered, with a photo and terms)."""
    alice = ex.party()
    register_holder(alice)
    with Holder(ex.channel(), alice.key) as h:
        yield h


def paired(ex: Exchange, old: Holder, name: str = "phone") -> Holder:
    """A new device joined to ``old``'s account by a pairing code, approved on ``old``."""
    code = old.start_pairing().code
    new = Holder(ex.channel(), PrivateKey.generate())
    joined = new.join_pairing(code, name)
    assert joined.joined
    assert joined.account == old.account
    old.approve_pairing(code)
    new.key_set()
    return new


def refused(reason: Reason, fn: Callable[..., object], *args: Any, **kw: Any) -> ExchangeError:
    """The ExchangeError ``fn(*args, **kw)`` fails with; the test fails unless its reason is
    ``reason``."""
    with pytest.raises(ExchangeError) as e:
        fn(*args, **kw)
    assert e.value.reason == reason, str(e.value)
    return e.value


@BOTH_STORES
def test_a_second_device_joins_by_code_and_consents_in_the_holders_name(
    ex: Exchange, laptop: Holder
) -> None:
    adv = ex.party()
    register_advertiser(adv)
    phone = paired(ex, laptop)
    assert phone.account == laptop.account == laptop.key.public.raw
    assert {k.name for k in phone.key_set().current.keys} == {"", "phone"}

    asked = request_licence(adv, laptop.account).request
    (seen,) = phone.inbox()  # the phone sees, and signs, the claims naming itself
    assert _holder_named(seen.claims) == phone.key.public.raw
    # So does every other view of the request: its own device in GetRequest and
    # WatchRequest, the account key on the laptop, the account to the advertiser.
    ask = exchange_pb2.GetRequestRequest(request_id=asked.request_id)
    watch = exchange_pb2.WatchRequestRequest(request_id=asked.request_id)
    on_phone = Party(phone.key, SignedChannel(ex.channel(), phone.key), ex)
    on_laptop = Party(laptop.key, SignedChannel(ex.channel(), laptop.key), ex)
    for who, named in ((on_phone, phone.key), (on_laptop, laptop.key)):
        got = who.call(exchange_pb2, "GetRequest", ask, exchange_pb2.GetRequestResponse)
        assert _holder_named(got.request.claims) == named.public.raw
        first = next(
            iter(who.stream(exchange_pb2, "WatchRequest", watch, exchange_pb2.WatchRequestResponse))
        )
        assert _holder_named(first.request.claims) == named.public.raw
    theirs = adv.call(exchange_pb2, "GetRequest", ask, exchange_pb2.GetRequestResponse)
    assert _holder_named(theirs.request.claims) == b""  # the advertiser sees no holder key
    licence = phone.approve(seen)
    token = parse_token(licence.token)
    assert token.holder_key == phone.key.public.raw  # the device that consented
    assert licence.holder_key == laptop.account  # the account that owns it
    assert licence.consent_key == phone.key.public.raw
    assert licence.licensee_device_key == adv.key.public.raw
    assert licence.request_id == asked.request_id
    # The licence verifies as any other, and both devices see it as hers.
    assert [x.licence_id for x in laptop.licences()] == [licence.licence_id]
    assert [x.licence_id for x in phone.licences()] == [licence.licence_id]
    laptop_view = laptop.inbox(include_answered=True)[0]
    assert laptop_view.state == records_pb2.REQUEST_STATE_ISSUED


def _holder_named(claims: bytes) -> bytes:
    """The holder key that the claims name."""
    return LicenceClaims.decode(claims).holder_raw


def test_a_device_removed_as_compromised_is_refused_at_once_and_changes_nothing(
    ex: Exchange, laptop: Holder
) -> None:
    adv = ex.party()
    register_advertiser(adv)
    phone = paired(ex, laptop)
    phone_licence = phone.approve(_ask(adv, laptop, phone))
    laptop_licence = laptop.approve(_ask(adv, laptop, laptop))
    before = laptop.key_set().current

    done = laptop.remove_key(phone.key.public.raw, compromised=True)
    assert done.key_set.sequence == before.sequence + 1
    (gone,) = done.key_set.removed
    assert (gone.public_key, gone.cause) == (
        phone.key.public.raw,
        accounts_pb2.KEY_REMOVAL_CAUSE_COMPROMISED,
    )
    # The stolen phone's next signed call, of any service, is refused.
    refused(Reason.KEY_REMOVED, phone.inbox)
    refused(Reason.KEY_REMOVED, phone.revoke, laptop_licence.licence_id)
    refused(Reason.KEY_REMOVED, phone.key_set)
    refused(Reason.KEY_REMOVED, phone.remove_key, laptop.key.public.raw, compromised=True)
    assert laptop.key_set().current.sequence == before.sequence + 1  # nothing changed
    assert laptop.licence(laptop_licence.licence_id).state == records_pb2.LICENCE_STATE_ACTIVE
    # What the phone approved is listed for the holder to review, then revoked by her.
    consents = laptop.consents(phone.key.public.raw)
    assert [x.licence_id for x in consents.licences] == [phone_licence.licence_id]
    assert laptop.consents(phone.key.public.raw, since=int(time.time()) + 5).licences == []
    laptop.revoke(phone_licence.licence_id)
    assert laptop.consents(phone.key.public.raw).licences == []
    # A removed key can never join again, nor register.
    again = Holder(ex.channel(), phone.key)
    refused(Reason.ALREADY_EXISTS, again.register, "phonie")


def _ask(adv: Party, holder: Holder, device: Holder) -> records_pb2.LicenceRequest:
    asked = request_licence(adv, holder.account).request
    return next(r for r in device.inbox() if r.request_id == asked.request_id)


def test_a_retired_devices_licences_stay_valid(ex: Exchange, laptop: Holder) -> None:
    adv, platform = ex.party(), ex.party()
    register_advertiser(adv)
    register_platform(platform)
    phone = paired(ex, laptop)
    licence = phone.approve(_ask(adv, laptop, phone))
    laptop.remove_key(phone.key.public.raw, compromised=False)
    refused(Reason.KEY_REMOVED, phone.inbox)
    assert reasons(verify(platform, adv, licence.token, photo_use())) == []


def test_the_recovery_key_replaces_every_device_and_signs_nothing_else(
    ex: Exchange, laptop: Holder
) -> None:
    adv = ex.party()
    register_advertiser(adv)
    paper = PrivateKey.generate()
    laptop.add_recovery_key(paper)
    licence = laptop.approve(_ask(adv, laptop, laptop))
    with Holder(ex.channel(), paper) as rec:
        refused(Reason.NOT_OWNER, rec.inbox)  # a recovery key signs key-set changes only
        refused(Reason.NOT_OWNER, rec.revoke, licence.licence_id)
        assert rec.key_set().current.account == laptop.account
        # It may read the profile: the wallet checks the handle before recovering.
        assert rec.profile().handle == laptop.profile().handle != ""
        new_laptop = PrivateKey.generate()
        done = rec.recover(new_laptop, "new laptop")
    assert [k.name for k in done.key_set.keys] == ["new laptop", "paper"]
    refused(Reason.KEY_REMOVED, laptop.inbox)  # the old laptop is out
    with Holder(ex.channel(), new_laptop) as me:
        assert me.key_set().current.account == laptop.account
        assert [x.licence_id for x in me.licences()] == [licence.licence_id]
        me.revoke(licence.licence_id)  # she is back in control of what is hers
        exported = me.export().key_set  # the right of access covers her keys and their chain
        assert [k.name for k in exported.keys] == ["new laptop", "paper"]
        assert {k.public_key for k in exported.removed} == {laptop.key.public.raw}
        assert len(exported.changes) == 2


@BOTH_STORES
def test_two_changes_at_once_one_wins_the_other_is_aborted(ex: Exchange, laptop: Holder) -> None:
    phone = paired(ex, laptop)
    current = laptop.key_set().current
    a = accounts.add_key(current, laptop.key, PrivateKey.generate(), name="a", at=int(time.time()))
    b = accounts.add_key(current, phone.key, PrivateKey.generate(), name="b", at=int(time.time()))
    results: dict[str, object] = {}
    go = threading.Barrier(2)

    def send(name: str, who: Holder, change: accounts_pb2.SignedKeySetChange) -> None:
        go.wait()
        try:
            results[name] = who.change_key_set(change).key_set.sequence
        except ExchangeError as e:
            results[name] = e.reason

    threads = [
        threading.Thread(target=send, args=("a", laptop, a)),
        threading.Thread(target=send, args=("b", phone, b)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(map(str, results.values())) == sorted(
        [str(current.sequence + 1), str(Reason.KEY_SET_CONFLICT)]
    )
    after = laptop.key_set().current
    assert after.sequence == current.sequence + 1
    assert len(after.keys) == len(current.keys) + 1


def test_bad_changes_are_refused_with_a_reason_and_change_nothing(
    ex: Exchange, laptop: Holder
) -> None:
    phone = paired(ex, laptop)
    current = laptop.key_set().current
    now = int(time.time())
    stranger = Holder(ex.channel(), PrivateKey.generate())
    stranger.register("bob")
    theirs = stranger.key_set().current
    cases = [
        # for another account than the caller's
        (
            Reason.KEY_SET_INVALID,
            accounts.add_key(theirs, stranger.key, PrivateKey.generate(), at=now),
        ),
        # replayed: the change that added the phone
        (Reason.KEY_SET_CONFLICT, laptop.key_set().answer.changes[0]),
        # signed by a stranger's key
        (
            Reason.KEY_SET_UNAUTHORISED,
            accounts.add_key(current, stranger.key, PrivateKey.generate(), at=now),
        ),
        # dated out of the window
        (
            Reason.KEY_SET_INVALID,
            accounts.add_key(current, laptop.key, PrivateKey.generate(), at=now - 3600),
        ),
        # a key of another account joining
        (Reason.KEY_SET_INVALID, accounts.add_key(current, laptop.key, stranger.key, at=now)),
        # a key removing itself
        (
            Reason.KEY_SET_UNAUTHORISED,
            accounts.remove_key(
                current, phone.key, phone.key.public.raw, compromised=False, at=now
            ),
        ),
    ]
    for reason, change in cases:
        refused(reason, laptop.change_key_set, change)
    malformed = accounts_pb2.SignedKeySetChange(
        change=b"\xff", signer=bytes(32), signature=bytes(64)
    )
    refused(Reason.KEY_SET_INVALID, laptop.change_key_set, malformed)
    refused(Reason.KEY_SET_INVALID, laptop.change_key_set, accounts_pb2.SignedKeySetChange())
    assert laptop.key_set().current == current  # nothing changed
    laptop.remove_key(phone.key.public.raw, compromised=False)
    last = laptop.key_set().current
    empty = keyset.make_change(
        last, laptop.key, keyset.REMOVE_KEY, [], at=now, cause=keyset.RETIRED
    )
    refused(Reason.LAST_KEY, laptop.change_key_set, empty)
    assert laptop.key_set().current == last


def test_pairing_codes_are_single_use_scoped_and_typed_forgivingly(
    ex: Exchange, laptop: Holder
) -> None:
    code = laptop.start_pairing().code
    assert len(code) == 9
    assert code[4] == "-"
    with Holder(ex.channel(), PrivateKey.generate()) as wrong:
        refused(Reason.NOT_FOUND, wrong.join_pairing, "ZZZZ-ZZZZ", "x")
        refused(Reason.INVALID_REQUEST, wrong.join_pairing, "nope", "x")
    first = Holder(ex.channel(), PrivateKey.generate())
    assert first.join_pairing(code.lower().replace("-", " "), "phone").joined
    second = Holder(ex.channel(), PrivateKey.generate())
    refused(Reason.ALREADY_EXISTS, second.join_pairing, code, "thief")
    stranger = Holder(ex.channel(), PrivateKey.generate())
    stranger.register("bob")
    refused(Reason.NOT_FOUND, stranger.pairing, code)  # another account's pairing
    refused(Reason.ALREADY_EXISTS, stranger.join_pairing, code, "bob")  # a registered key
    laptop.approve_pairing(code)
    assert first.key_set().current.key(first.key.public.raw) is not None


def test_a_joining_key_must_sign_its_call_be_a_device_and_prove_itself(
    ex: Exchange, laptop: Holder
) -> None:
    """JoinPairing refuses a key that is not the caller's, a recovery key, an invalid name,
    and a proof made for another account; the pairing stays open for the right device."""
    code = laptop.start_pairing().code
    device, other = PrivateKey.generate(), PrivateKey.generate()
    joiner = Party(device, SignedChannel(ex.channel(), device), ex)

    def join(key: accounts_pb2.AccountKey) -> accounts_pb2.JoinPairingResponse:
        return joiner.call(
            accounts_pb2,
            "JoinPairing",
            accounts_pb2.JoinPairingRequest(code=code, key=key),
            accounts_pb2.JoinPairingResponse,
        )

    mine = device.public.raw
    cases = [
        (
            Reason.INVALID_REQUEST,
            accounts_pb2.AccountKey(public_key=other.public.raw, role=accounts_pb2.KEY_ROLE_DEVICE),
        ),
        (
            Reason.INVALID_REQUEST,
            accounts_pb2.AccountKey(public_key=mine, role=accounts_pb2.KEY_ROLE_RECOVERY),
        ),
        (
            Reason.KEY_SET_INVALID,
            accounts_pb2.AccountKey(
                public_key=mine, role=accounts_pb2.KEY_ROLE_DEVICE, name="a\x07"
            ),
        ),
        (
            Reason.KEY_SET_UNAUTHORISED,
            accounts_pb2.AccountKey(
                public_key=mine,
                role=accounts_pb2.KEY_ROLE_DEVICE,
                proof=keyset.possession_proof(device, other.public.raw),  # another account
            ),
        ),
    ]
    for reason, key in cases:
        refused(reason, join, key)
    assert not laptop.pairing(code).HasField("key")  # nobody joined
    with Holder(ex.channel(), device) as h:
        assert h.join_pairing(code, "phone").joined
    assert laptop.pairing(code).key.public_key == mine


def test_consents_are_listed_only_for_a_key_of_the_callers_account(
    ex: Exchange, laptop: Holder
) -> None:
    stranger = Holder(ex.channel(), PrivateKey.generate())
    stranger.register("bob")
    refused(Reason.NOT_FOUND, laptop.consents, stranger.key.public.raw)
    refused(Reason.NOT_FOUND, laptop.consents, PrivateKey.generate().public.raw)
    refused(Reason.NOT_FOUND, laptop.consents, b"short")
    assert laptop.consents(laptop.key.public.raw).licences == []


def test_every_change_is_in_the_public_log(ex: Exchange, laptop: Holder) -> None:
    """Each change is logged sealed to the account (nothing about it in clear): the account
    finds and opens them with its log key, and GetLogKey counts exactly those."""
    phone = paired(ex, laptop)
    laptop.remove_key(phone.key.public.raw, compromised=True)
    chain = list(laptop.key_set().answer.changes)
    answer = laptop.log_key()
    window = sealed.TagWindow(answer.log_key)
    logged = []
    for _, raw, _ in ex.app.deps.store.log_entries(0, ex.app.deps.store.log_size()):
        e = transparency_pb2.LogEntry.FromString(raw)
        assert not e.HasField("key_set_change")
        if e.HasField("sealed") and (j := window.match(e.sealed)) is not None:
            logged.append(sealed.open_entry(answer.log_key, j, e.sealed).key_set_change)
    assert answer.entries == len(logged) == 2
    assert logged == chain
    assert keyset.verify_chain(laptop.account, logged)[-1] == laptop.key_set().current


def test_a_standing_rule_signed_by_a_second_device_approves_in_its_name(
    ex: Exchange, laptop: Holder
) -> None:
    adv = ex.party()
    register_advertiser(adv)
    phone = paired(ex, laptop)
    rule = standing_rule(
        phone.key,
        categories=[DataCategory.IMAGE],
        purposes=[Purpose.ADVERTISING],
        media=[Medium.ONLINE],
        territories=["FR"],
        assets=[PHOTO_SHA],
        not_before=int(time.time()) - 60,
        not_after=int(time.time()) + 100 * DAY,
        max_term_seconds=100 * DAY,
        min_price_per_day=100,
    )
    phone.add_standing_rule(rule)
    issued = request_licence(adv, laptop.account)
    assert issued.request.state == records_pb2.REQUEST_STATE_ISSUED
    # A v2 licence under a rule names no holder key; the exchange records the phone's
    # consent (it signed the rule), and the token commits to that rule.
    token = parse_token(issued.licence.token)
    assert token.holder_key == b""
    assert isinstance(token.consent, RuleCommitment)
    assert token.consent.opens_to(StandingConsent(rule.consent.rule, rule.consent.holder_signature))
    assert issued.licence.consent_key == b""  # the advertiser is told no key of hers
    (mine,) = [x for x in laptop.licences() if x.licence_id == issued.licence.licence_id]
    assert mine.consent_key == phone.key.public.raw  # she is told which device's rule
    assert [r.consent.rule for r in laptop.consents(phone.key.public.raw).rules] == [
        rule.consent.rule
    ]


@BOTH_STORES
def test_a_compromised_licensee_key_stops_presenting_everywhere(ex: Exchange) -> None:
    holder, adv, platform = ex.party(), ex.party(), ex.party()
    register_holder(holder)
    register_advertiser(adv)
    register_platform(platform)
    service = PrivateKey.generate()  # the advertiser's second service key
    with Holder(ex.channel(), adv.key) as adv_account:
        adv_account.add_device(service, "ad server")
    leaked = Party(service, SignedChannel(ex.channel(), service), ex)
    bound = issue_licence(holder, leaked)
    kept = issue_licence(holder, adv)
    assert parse_token(bound.token).licensee_key == service.public.raw
    assert bound.licensee_key == adv.key.public.raw  # the advertiser's account
    assert reasons(verify(platform, leaked, bound.token, photo_use())) == []
    verifier, channel = start_verifier(ex.address, "photoshare")
    try:
        wait_for(lambda: verifier.check(bound.token, _pres(leaked, bound), photo_use()).allowed, 5)
        with Holder(ex.channel(), adv.key) as adv_account:
            done = adv_account.remove_key(service.public.raw, compromised=True)
        assert done.licences_revoked == 1
        wait_for(
            lambda: (
                Reason.REVOKED
                in verifier.check(bound.token, _pres(leaked, bound), photo_use()).reasons
            ),
            3,
        )
    finally:
        verifier.close()
        channel.close()
    assert reasons(verify(platform, leaked, bound.token, photo_use())) == [Reason.REVOKED]
    assert reasons(verify(platform, adv, kept.token, photo_use())) == []
    refused(Reason.KEY_REMOVED, request_licence, leaked, holder.key.public.raw)
    again = revoke_licence(holder, bound.licence_id)  # already revoked: the same answer
    assert again.licence.state == records_pb2.LICENCE_STATE_REVOKED


def _pres(adv: Party, licence: records_pb2.LicenceRecord) -> str:
    return present(adv.key, licence.licence_id, "photoshare", photo_use(), int(time.time()))


def test_a_recovery_racing_a_thief_who_keeps_changing_the_set_wins(
    ex: Exchange, laptop: Holder
) -> None:
    """The thief's stolen laptop adds devices as fast as it can while the holder recovers
    from her phrase: the recovery reads the set again after each conflict and wins, and the
    thief and every device he added are out."""
    paper = PrivateKey.generate()
    laptop.add_recovery_key(paper)
    stop = threading.Event()
    added: list[bytes] = []
    refusals: list[Reason] = []

    def thief() -> None:
        while not stop.is_set():
            extra = PrivateKey.generate()
            try:
                laptop.add_device(extra, "thief")
                added.append(extra.public.raw)
            except ExchangeError as e:
                refusals.append(e.reason)
                if e.reason == Reason.KEY_REMOVED:
                    return
            # A round trip of his own between changes (in this process he would otherwise
            # hold the interpreter between the two calls of each of the recovery's tries).
            time.sleep(0.005)

    t = threading.Thread(target=thief)
    t.start()
    try:
        wait_for(lambda: len(added) >= 2, 10)
        new_laptop = PrivateKey.generate()
        with Holder(ex.channel(), paper) as rec:
            done = rec.recover(new_laptop, "new laptop")
    finally:
        stop.set()
        t.join(10)
    assert [k.public_key for k in done.key_set.keys] == [
        new_laptop.public.raw,
        paper.public.raw,
    ]
    assert added  # the thief did change the set meanwhile
    removed = {r.public_key for r in done.key_set.removed}
    assert {laptop.key.public.raw, *added} <= removed
    refused(Reason.KEY_REMOVED, laptop.inbox)


def test_an_advertisers_service_key_asks_presents_and_sees_its_accounts_licences(
    ex: Exchange,
) -> None:
    """docs/accounts.md's SDK example: a second service key, connected with its account id,
    asks for a licence that names it, presents it, and lists the account's licences."""
    holder, platform = ex.party(), ex.party()
    register_holder(holder)
    register_platform(platform)
    office, ad_server, vault = PrivateKey.generate(), PrivateKey.generate(), PrivateKey.generate()
    with Advertiser.connect(ex.address, office) as acme:
        acme.register("Acme Ads", "FR")
        ex.fund(office.public.raw)
        acme.add_recovery_key(vault, "vault")
        acme.add_device(ad_server, "ad server")
        assert [k.name for k in acme.key_set().current.keys] == ["", "vault", "ad server"]
        (at_office,) = acme.search()
    with Advertiser.connect(ex.address, ad_server, account=office.public.raw) as server:
        now = int(time.time())
        (offer,) = server.search()
        assert offer == at_office  # the account's references, whichever of its keys asks
        asked = server.request_licence(
            offer,
            offer.assets_in(DataCategory.IMAGE),
            categories=[DataCategory.IMAGE],
            purposes=[Purpose.ADVERTISING],
            media=[Medium.ONLINE],
            territories=["FR"],
            not_after=now + 30 * DAY,
            price=30 * 100,
        )
        _approve_as(holder, asked.request_id)
        licence = server.wait_for_decision(asked.request_id, timeout=10).licence
        assert licence is not None
        assert licence.parsed.licensee_key == ad_server.public.raw
        assert licence.licensee_key.raw == office.public.raw  # the account owns it
        assert [x.licence_id for x in server.licences()] == [licence.licence_id]
        use = photo_use()
        presented = server.present(licence, "photoshare", use)
    with Advertiser.connect(ex.address, office) as acme:
        assert [x.licence_id for x in acme.licences()] == [licence.licence_id]
        wrong = acme.present(licence, "photoshare", use)  # the office key is not its licensee
    answers = [
        platform.call(
            verification_pb2,
            "Verify",
            verification_pb2.VerifyRequest(token=licence.token, presentation=p, use=use.to_proto()),
            verification_pb2.VerifyResponse,
        )
        for p in (presented, wrong)
    ]
    assert [reasons(a) for a in answers] == [[], [Reason.WRONG_LICENSEE]]


def _approve_as(holder: Party, request_id: bytes) -> None:
    h = Holder(holder.rpc.channel, holder.key)  # on the party's channel (it closes it)
    h.approve(next(r for r in h.inbox() if r.request_id == request_id))
