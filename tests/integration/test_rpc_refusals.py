"""Every RPC of the registry, exchange, licence and verification services refuses bad input and
forbidden calls with the right gRPC status code and ErrorInfo reason, and a refused call
changes nothing: the state is re-read through the API before and after. A real exchange on
127.0.0.1:0 whose clock the test controls (``services.app.build(clock=...)``)."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import grpc  # type: ignore[import-untyped]
import pytest
from google.protobuf.message import Message

from licentia import keys, territory
from licentia.clients.channel import SignedChannel
from licentia.errors import LicentiaError, Reason
from licentia.keys import IssuerKeySet, PrivateKey
from licentia.presentation import present
from licentia.scope import IntendedUse, Scope
from licentia.services.deps import Settings
from licentia.status import StatusLists, verify_snapshot
from licentia.token import StandingRule, approve, parse_token, sign_standing_rule
from licentia.v1 import (
    exchange_pb2,
    licence_pb2,
    licences_pb2,
    records_pb2,
    registry_pb2,
    status_pb2,
    verification_pb2,
)
from licentia.vocabulary import DataCategory, Medium, Purpose

from .exchange_harness import (
    PHOTO,
    PHOTO_SHA,
    TERMS,
    VOICE_SHA,
    Exchange,
    ExchangeError,
    ManualClock,
    Party,
    approve_request,
    method_path,
    offer_refs,
    photo_rule,
    reasons,
    register_advertiser,
    register_holder,
    register_platform,
    start_exchange,
    wire,
)

DAY = 86400
MAX_ASSET = 64
SETTINGS = Settings(heartbeat_seconds=0.5, max_asset_bytes=MAX_ASSET)
C = grpc.StatusCode
#: The status code each reason must travel under (the contract, restated independently).
CODE: dict[Reason, Any] = {
    **dict.fromkeys(
        (
            Reason.MALFORMED,
            Reason.TOO_LARGE,
            Reason.INVALID_REQUEST,
            Reason.INVALID_USE,
            Reason.INVALID_TERM,
            Reason.SENSITIVE_USE_NEEDS_APPROVAL,
            Reason.BAD_CONSENT,
            Reason.ASSET_MISMATCH,
            Reason.OUT_OF_SCOPE_PURPOSE,
        ),
        C.INVALID_ARGUMENT,
    ),
    Reason.UNKNOWN_KEY: C.UNAUTHENTICATED,
    Reason.BAD_REQUEST_SIGNATURE: C.UNAUTHENTICATED,
    Reason.NOT_OWNER: C.PERMISSION_DENIED,
    Reason.WRONG_LICENSEE: C.PERMISSION_DENIED,
    Reason.WRONG_AUDIENCE: C.PERMISSION_DENIED,
    Reason.NOT_FOUND: C.NOT_FOUND,
    Reason.ALREADY_EXISTS: C.ALREADY_EXISTS,
    Reason.IDEMPOTENCY_KEY_REUSED: C.ALREADY_EXISTS,
    **dict.fromkeys(
        (
            Reason.OPTED_OUT,
            Reason.OUTSIDE_TERMS,
            Reason.REQUEST_NOT_PENDING,
            Reason.REQUEST_EXPIRED,
            Reason.PRICE_TOO_LOW,
            Reason.LICENCE_NOT_ACTIVE,
            Reason.REVOKED,
            Reason.NOT_YET_VALID,
        ),
        C.FAILED_PRECONDITION,
    ),
}


def P(name: str, *values: Any) -> Any:
    """A parametrized case named ``name``."""
    return pytest.param(*values, id=name)


def refused(reason: Reason, fn: Callable[[], object]) -> ExchangeError:
    """Run ``fn``; it must fail with ``reason`` under ``reason``'s status code."""
    with pytest.raises(ExchangeError) as e:
        fn()
    assert (e.value.code, e.value.reason) == (CODE[reason], reason), repr(e.value)
    return e.value


# -- every method, by name ------------------------------------------------------------------


@dataclass(frozen=True)
class Rpc:
    """One method of the four services, as the descriptors define it."""

    module: Any
    name: str
    response: type[Message]
    client_streaming: bool
    server_streaming: bool

    @property
    def path(self) -> str:
        return method_path(self.module, self.name)


RPCS: dict[str, Rpc] = {}
for _module in (registry_pb2, exchange_pb2, licences_pb2, verification_pb2):
    for _svc in _module.DESCRIPTOR.services_by_name.values():
        for _md in _svc.methods:
            assert _md.name not in RPCS, _md.name
            RPCS[_md.name] = Rpc(
                _module,
                _md.name,
                getattr(_module, _md.output_type.name),
                _md.client_streaming,
                _md.server_streaming,
            )
PUBLIC = (
    "WatchRevocations",
    "GetStatusSnapshot",
    "GetIssuerKeys",
    "ListPlatforms",
    "GetAssetLimits",
)
REGISTER = ("RegisterHolder", "RegisterAdvertiser", "RegisterPlatform")
SIGNED = [n for n in RPCS if n not in PUBLIC]
#: Signed methods that act for a registered party.
PARTY_METHODS = [n for n in SIGNED if n not in REGISTER]


def invoke(p: Party, name: str, request: Message, timeout: float = 10) -> Any:
    """Call ``name``: the response, or a stream's first response."""
    rpc = RPCS[name]
    if rpc.client_streaming and not rpc.server_streaming:  # an upload: header, no chunks
        return p.rpc.stream_unary(rpc.path, [request], rpc.response, timeout=timeout)
    if rpc.client_streaming:
        return next(p.rpc.stream_stream(rpc.path, [request], rpc.response, timeout=timeout))
    if rpc.server_streaming:
        return next(p.rpc.server_stream(rpc.path, request, rpc.response, timeout=timeout))
    return p.rpc.unary(rpc.path, request, rpc.response, timeout=timeout)


def stream(p: Party, name: str, request: Message, timeout: float = 10) -> Iterator[Any]:
    """A server stream's responses."""
    rpc = RPCS[name]
    return p.rpc.server_stream(rpc.path, request, rpc.response, timeout=timeout)


# -- the world: a running exchange, its clock, and parties with licences and requests --------


@dataclass
class World:
    """An exchange with a holder (alice), a second holder offering no exclusivity (bob), a
    holder without terms (carol), two advertisers and a platform; licences of the advertiser:
    ``licence`` (photo), ``voice`` (photo and the voice, whose bytes are not stored),
    ``future`` (starts tomorrow), ``revoked``; one pending request and one standing rule
    (for a licensee nobody is, so it covers nothing)."""

    ex: Exchange
    clock: ManualClock
    holder: Party
    bob: Party
    carol: Party
    adv: Party
    adv2: Party
    platform: Party
    licence: records_pb2.LicenceRecord
    voice: records_pb2.LicenceRecord
    future: records_pb2.LicenceRecord
    revoked: records_pb2.LicenceRecord
    pending: records_pb2.LicenceRequest
    rule: licence_pb2.StandingConsent

    def party(self) -> Party:
        """A new, unregistered key signing with the exchange's clock."""
        return signed_party(self.ex, self.clock)

    def now(self) -> int:
        return self.clock.now()

    def by_role(self, role: str) -> Party:
        return {"holder": self.holder, "advertiser": self.adv, "platform": self.platform}[role]


def signed_party(ex: Exchange, clock: ManualClock) -> Party:
    key = PrivateKey.generate()
    return Party(key, SignedChannel(ex.channel(), key, clock=clock.now), ex)


def scope(
    categories: tuple[int, ...] = (DataCategory.IMAGE,),
    purposes: tuple[int, ...] = (Purpose.ADVERTISING,),
    media: tuple[int, ...] = (Medium.ONLINE,),
    territories: tuple[str, ...] = ("FR",),
) -> licence_pb2.Scope:
    return licence_pb2.Scope(
        categories=wire(*categories),
        purposes=wire(*purposes),
        media=wire(*media),
        territories=list(territories),
    )


def licence_request(
    w: World,
    *,
    holder: Party | None = None,
    days: int = 30,
    start: int = 0,
    assets: tuple[bytes, ...] = (PHOTO_SHA,),
    scope_: licence_pb2.Scope | None = None,
    exclusive: bool = False,
    price: int | None = None,
    max_uses: int = 0,
) -> exchange_pb2.RequestLicenceRequest:
    """The photo (by default) for ``days`` from ``start`` seconds from now, at the price, by
    the advertiser's references to the holder and those assets."""
    not_before = w.now() + start
    offer_ref, asset_refs = offer_refs(w.adv, (holder or w.holder).key.public.raw, assets)
    return exchange_pb2.RequestLicenceRequest(
        offer_ref=offer_ref,
        asset_refs=asset_refs,
        scope=scope_ or scope(),
        not_before=not_before,
        not_after=not_before + days * DAY,
        exclusive=exclusive,
        max_uses=max_uses,
        offered_price_minor=price if price is not None else days * 100 * (3 if exclusive else 1),
    )


def ask(w: World, request: exchange_pb2.RequestLicenceRequest | None = None) -> Any:
    """The advertiser's RequestLicence response."""
    return invoke(w.adv, "RequestLicence", request or licence_request(w))


def issued(w: World, request: exchange_pb2.RequestLicenceRequest | None = None) -> Any:
    """A licence the holder approved."""
    pending = ask(w, request).request
    assert pending.state == records_pb2.REQUEST_STATE_PENDING
    return approve_request(w.holder, pending).licence


def rule(
    w: World,
    *,
    holder: PrivateKey | None = None,
    purposes: tuple[Purpose, ...] = (Purpose.MARKETING,),
    categories: tuple[DataCategory, ...] = (DataCategory.IMAGE,),
    licensees: tuple[bytes, ...] = (),
    rule_id: bytes | None = None,
) -> StandingRule:
    """Auto-approve marketing uses of the photo in the EU online for up to 60 days."""
    return photo_rule(
        (holder or w.holder.key).public,
        w.now(),
        rule_id=rule_id or secrets.token_bytes(16),
        scope=Scope.of(categories, purposes, [Medium.ONLINE], ["EU"]),
        licensee_keys=frozenset(licensees),
    )


def consent(key: PrivateKey, r: StandingRule, *, data: bytes | None = None) -> Any:
    """The wire consent: ``data`` (the rule's bytes by default) signed by ``key``, without
    :func:`sign_standing_rule`'s refusals."""
    body = r.encode() if data is None else data
    return licence_pb2.StandingConsent(
        rule=r.encode(), holder_signature=key.sign(keys.STANDING_RULE, body)
    )


def signed_rule(key: PrivateKey, r: StandingRule) -> licence_pb2.StandingConsent:
    """The wire consent the wallet's :func:`sign_standing_rule` makes."""
    c = sign_standing_rule(key, r)
    return licence_pb2.StandingConsent(rule=c.rule_bytes, holder_signature=c.signature)


def add_rule(p: Party, c: licence_pb2.StandingConsent) -> Any:
    return invoke(p, "AddStandingRule", exchange_pb2.AddStandingRuleRequest(consent=c))


def photo_use(
    purpose: Purpose = Purpose.PERSONALISED_ADVERTISING,
    where: str = "FR",
    category: DataCategory = DataCategory.IMAGE,
    sha: bytes = PHOTO_SHA,
) -> IntendedUse:
    return IntendedUse(category, purpose, Medium.ONLINE, where, sha)


def check(
    w: World,
    lic: records_pb2.LicenceRecord,
    use: IntendedUse | None = None,
    *,
    signer: PrivateKey | None = None,
    licence_id: bytes | None = None,
    pres_use: IntendedUse | None = None,
    at: int | None = None,
) -> verification_pb2.VerifyRequest:
    """A VerifyRequest: the licence, the advertiser's presentation of it, the use."""
    use = use or photo_use()
    pres = present(
        signer or w.adv.key,
        licence_id or lic.licence_id,
        "photoshare",
        pres_use or use,
        w.now() if at is None else at,
    )
    return verification_pb2.VerifyRequest(token=lic.token, presentation=pres, use=use.to_proto())


def report(req: verification_pb2.VerifyRequest, report_id: bytes) -> Any:
    return verification_pb2.ReportUseRequest(
        report_id=report_id, token=req.token, presentation=req.presentation, use=req.use
    )


def build_world(path: Path) -> World:
    clock = ManualClock()
    ex = start_exchange(path, settings=SETTINGS, clock=clock)
    p = [signed_party(ex, clock) for _ in range(6)]
    holder, bob, carol, adv, adv2, platform = p
    register_holder(holder)
    register_holder(bob, "bob")
    no_exclusivity = records_pb2.Terms()
    no_exclusivity.CopyFrom(TERMS)
    no_exclusivity.exclusivity_offered = False
    invoke(bob, "SetTerms", registry_pb2.SetTermsRequest(terms=no_exclusivity))
    invoke(carol, "RegisterHolder", registry_pb2.RegisterHolderRequest(handle="carol"))
    invoke(
        carol,
        "DeclareAsset",
        registry_pb2.DeclareAssetRequest(category=wire(DataCategory.IMAGE)[0], sha256=PHOTO_SHA),
    )
    register_advertiser(adv)
    register_advertiser(adv2, "Other Ads")
    register_platform(platform)
    empty = records_pb2.LicenceRecord()
    w = World(
        ex, clock, holder, bob, carol, adv, adv2, platform, empty, empty, empty, empty,
        records_pb2.LicenceRequest(), licence_pb2.StandingConsent(),
    )  # fmt: skip
    w.licence = issued(w)
    voice_scope = scope((DataCategory.IMAGE, DataCategory.VOICE))
    w.voice = issued(w, licence_request(w, assets=(PHOTO_SHA, VOICE_SHA), scope_=voice_scope))
    w.future = issued(w, licence_request(w, start=DAY))
    w.revoked = issued(w)
    invoke(
        holder, "RevokeLicence", licences_pb2.RevokeLicenceRequest(licence_id=w.revoked.licence_id)
    )
    w.pending = ask(w).request
    nobody = PrivateKey.generate().public.raw
    w.rule = signed_rule(holder.key, rule(w, licensees=(nobody,)))
    add_rule(holder, w.rule)
    return w


def state(w: World) -> list[bytes]:
    """Everything a refused call could have changed, read through the API."""
    export = invoke(w.holder, "ExportData", registry_pb2.ExportDataRequest())
    export.exported_at = 0
    snap = invoke(w.holder, "GetStatusSnapshot", licences_pb2.GetStatusSnapshotRequest()).snapshot
    status = status_pb2.StatusListSnapshot.FromString(snap.snapshot)
    status.taken_at = 0
    everything: list[Message] = [export, status]
    for p in (w.bob, w.carol):
        everything.append(
            invoke(p, "ListInbox", exchange_pb2.ListInboxRequest(include_answered=True))
        )
        everything.append(invoke(p, "ListAssets", registry_pb2.ListAssetsRequest()))
    for p in (w.bob, w.carol, w.adv, w.adv2, w.platform):
        everything.append(invoke(p, "GetProfile", registry_pb2.GetProfileRequest()))
    for p in (w.adv, w.adv2):
        everything.append(invoke(p, "ListLicences", licences_pb2.ListLicencesRequest()))
    return [m.SerializeToString(deterministic=True) for m in everything]


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    world = build_world(tmp_path / "data")
    try:
        yield world
    finally:
        world.ex.stop()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One world for the tables of refusals: each case checks that it changed nothing."""
    world = build_world(tmp_path_factory.mktemp("shared"))
    try:
        yield world
    finally:
        world.ex.stop()


# -- who may call what --------------------------------------------------------------------

#: A well-formed request for every signed method, naming the world's real records.
GOOD: dict[str, Callable[[World], Message]] = {
    "RegisterHolder": lambda w: registry_pb2.RegisterHolderRequest(handle="newcomer"),
    "RegisterAdvertiser": lambda w: registry_pb2.RegisterAdvertiserRequest(
        organisation="New Ads", country="DE"
    ),
    "RegisterPlatform": lambda w: registry_pb2.RegisterPlatformRequest(
        platform_id="newplatform", name="New"
    ),
    "GetProfile": lambda w: registry_pb2.GetProfileRequest(),
    "UpdateProfile": lambda w: registry_pb2.UpdateProfileRequest(display_name="Mallory"),
    "DeclareAsset": lambda w: registry_pb2.DeclareAssetRequest(
        category=wire(DataCategory.NAME)[0], sha256=hashlib.sha256(b"x").digest(), content=b"x"
    ),
    "ListAssets": lambda w: registry_pb2.ListAssetsRequest(),
    "UploadAsset": lambda w: registry_pb2.UploadAssetRequest(
        header=registry_pb2.UploadAssetHeader(
            category=wire(DataCategory.IMAGE)[0], sha256=hashlib.sha256(b"x").digest(), size=1
        )
    ),
    "IssueContentCertificate": lambda w: registry_pb2.IssueContentCertificateRequest(),
    "SetTerms": lambda w: registry_pb2.SetTermsRequest(terms=terms(price_per_day_minor=1)),
    "GetTerms": lambda w: registry_pb2.GetTermsRequest(),
    "SetObjection": lambda w: registry_pb2.SetObjectionRequest(objecting=True),
    "ExportData": lambda w: registry_pb2.ExportDataRequest(),
    "EraseAssets": lambda w: registry_pb2.EraseAssetsRequest(sha256=[PHOTO_SHA]),
    "DeleteAccount": lambda w: registry_pb2.DeleteAccountRequest(),
    "SearchOffers": lambda w: exchange_pb2.SearchOffersRequest(),
    "RequestLicence": licence_request,
    "GetRequest": lambda w: exchange_pb2.GetRequestRequest(request_id=w.pending.request_id),
    "WatchRequest": lambda w: exchange_pb2.WatchRequestRequest(request_id=w.pending.request_id),
    "ListInbox": lambda w: exchange_pb2.ListInboxRequest(include_answered=True),
    "ApproveRequest": lambda w: exchange_pb2.ApproveRequestRequest(
        request_id=w.pending.request_id,
        holder_signature=approve(w.holder.key, w.pending.claims).signature,
    ),
    "DeclineRequest": lambda w: exchange_pb2.DeclineRequestRequest(request_id=w.pending.request_id),
    "WithdrawRequest": lambda w: exchange_pb2.WithdrawRequestRequest(
        request_id=w.pending.request_id
    ),
    "AddStandingRule": lambda w: exchange_pb2.AddStandingRuleRequest(
        consent=consent(w.holder.key, rule(w))
    ),
    "ListStandingRules": lambda w: exchange_pb2.ListStandingRulesRequest(),
    "WithdrawStandingRule": lambda w: exchange_pb2.WithdrawStandingRuleRequest(
        rule_id=StandingRule.decode(w.rule.rule).rule_id
    ),
    "GetLicence": lambda w: licences_pb2.GetLicenceRequest(licence_id=w.licence.licence_id),
    "ListLicences": lambda w: licences_pb2.ListLicencesRequest(),
    "RevokeLicence": lambda w: licences_pb2.RevokeLicenceRequest(licence_id=w.licence.licence_id),
    "FetchAsset": lambda w: licences_pb2.FetchAssetRequest(
        licence_id=w.licence.licence_id, sha256=PHOTO_SHA
    ),
    "FetchAssetChunks": lambda w: licences_pb2.FetchAssetRequest(
        licence_id=w.licence.licence_id, sha256=PHOTO_SHA
    ),
    "ListAccesses": lambda w: licences_pb2.ListAccessesRequest(),
    "WatchLicenceEvents": lambda w: licences_pb2.WatchLicenceEventsRequest(),
    "Verify": lambda w: check(w, w.licence),
    "VerifyStream": lambda w: check(w, w.licence),
    "ReportUse": lambda w: report(check(w, w.licence), secrets.token_bytes(16)),
    "CheckAssetDigests": lambda w: verification_pb2.CheckAssetDigestsRequest(sha256=[PHOTO_SHA]),
}
#: Methods for one role only.
ROLE_OF: dict[str, str | tuple[str, ...]] = {
    **dict.fromkeys(
        (
            "DeclareAsset",
            "UploadAsset",
            "ListAssets",
            "SetTerms",
            "GetTerms",
            "SetObjection",
            "ExportData",
            "EraseAssets",
            "DeleteAccount",
            "ListInbox",
            "ApproveRequest",
            "DeclineRequest",
            "AddStandingRule",
            "ListStandingRules",
            "WithdrawStandingRule",
            "RevokeLicence",
            "ListAccesses",
        ),
        "holder",
    ),
    **dict.fromkeys(
        (
            "RequestLicence",
            "IssueContentCertificate",
            "WithdrawRequest",
            "FetchAsset",
            "FetchAssetChunks",
            "WatchLicenceEvents",
        ),
        "advertiser",
    ),
    **dict.fromkeys(("Verify", "VerifyStream", "ReportUse", "CheckAssetDigests"), "platform"),
    # Requests and licences are their holder's and advertiser's: a platform has none, and
    # is NOT_OWNER like any wrong role (it used to be NOT_FOUND, or an empty list).
    **dict.fromkeys(
        ("GetRequest", "WatchRequest", "GetLicence", "ListLicences"), ("holder", "advertiser")
    ),
}
#: Methods for any registered party (each answers only about the caller's own records).
ANY_ROLE = ("GetProfile", "UpdateProfile", "SearchOffers")
ROLES = ("holder", "advertiser", "platform")
WRONG_ROLE = [
    P(f"{name}-by-{role}", name, role)
    for name, right in ROLE_OF.items()
    for role in ROLES
    if role not in ((right,) if isinstance(right, str) else right)
]


def terms(**changes: Any) -> records_pb2.Terms:
    """The harness's terms with some fields replaced (lists replace whole)."""
    t = records_pb2.Terms()
    t.CopyFrom(TERMS)
    for name, value in changes.items():
        if isinstance(value, list):
            field = getattr(t, name)
            del field[:]
            field.extend(value)
        else:
            setattr(t, name, value)
    return t


def test_the_tables_cover_every_rpc() -> None:
    assert len(RPCS) == 17 + 11 + 10 + 4
    assert set(GOOD) == set(SIGNED)
    assert set(ROLE_OF) | set(ANY_ROLE) == set(PARTY_METHODS)
    assert not set(ROLE_OF) & set(ANY_ROLE)


@pytest.mark.parametrize("name", PARTY_METHODS)
def test_an_unregistered_key_is_unknown(shared: World, name: str) -> None:
    w = shared
    before = state(w)
    stranger = w.party()
    refused(Reason.UNKNOWN_KEY, lambda: invoke(stranger, name, GOOD[name](w)))
    assert state(w) == before


@pytest.mark.parametrize("name", SIGNED)
def test_an_unsigned_call_is_refused(shared: World, name: str) -> None:
    w = shared
    before = state(w)
    anonymous = Party(PrivateKey.generate(), SignedChannel(w.ex.channel(), None))
    refused(Reason.BAD_REQUEST_SIGNATURE, lambda: invoke(anonymous, name, GOOD[name](w)))
    assert state(w) == before


@pytest.mark.parametrize(("name", "role"), WRONG_ROLE)
def test_a_party_of_the_wrong_role_is_not_the_owner(shared: World, name: str, role: str) -> None:
    w = shared
    before = state(w)
    refused(Reason.NOT_OWNER, lambda: invoke(w.by_role(role), name, GOOD[name](w)))
    assert state(w) == before


@pytest.mark.parametrize("name", PUBLIC)
def test_public_methods_need_no_key(shared: World, name: str) -> None:
    anonymous = Party(PrivateKey.generate(), SignedChannel(shared.ex.channel(), None))
    request_ = getattr(RPCS[name].module, f"{name}Request")()
    assert invoke(anonymous, name, request_).ByteSize() > 0


# -- registry -------------------------------------------------------------------------------

HOLDER = registry_pb2.RegisterHolderRequest
ADVERTISER = registry_pb2.RegisterAdvertiserRequest
PLATFORM = registry_pb2.RegisterPlatformRequest
BAD_REGISTRATIONS = [
    P("handle-too-short", "RegisterHolder", HOLDER(handle="ab")),
    P("handle-empty", "RegisterHolder", HOLDER(handle="")),
    P("handle-upper-case", "RegisterHolder", HOLDER(handle="Alice2")),
    P("handle-space", "RegisterHolder", HOLDER(handle="al ice")),
    P("handle-33-chars", "RegisterHolder", HOLDER(handle="a" * 33)),
    P("handle-not-ascii", "RegisterHolder", HOLDER(handle="alicé")),
    P("handle-newline", "RegisterHolder", HOLDER(handle="alice2\n")),
    P("handle-dot", "RegisterHolder", HOLDER(handle="a.b")),
    P("name-129", "RegisterHolder", HOLDER(handle="dora", display_name="x" * 129)),
    P("name-nul", "RegisterHolder", HOLDER(handle="dora", display_name="Do\x00ra")),
    P("name-lf", "RegisterHolder", HOLDER(handle="dora", display_name="Do\nra")),
    P("name-del", "RegisterHolder", HOLDER(handle="dora", display_name="Do\x7fra")),
    P("name-c1", "RegisterHolder", HOLDER(handle="dora", display_name="Do\x85ra")),
    # Format characters: a right-to-left override makes "Acme\u202eSDA" read "AcmeADS".
    P("name-rlo", "RegisterHolder", HOLDER(handle="dora", display_name="Do\u202era")),
    P("name-isolate", "RegisterHolder", HOLDER(handle="dora", display_name="Do\u2067ra")),
    P("name-zwsp", "RegisterHolder", HOLDER(handle="dora", display_name="Do\u200bra")),
    P("org-rlo", "RegisterAdvertiser", ADVERTISER(organisation="Acme\u202eSDA", country="FR")),
    P("org-bom", "RegisterAdvertiser", ADVERTISER(organisation="\ufeffAcme", country="FR")),
    P("org-empty", "RegisterAdvertiser", ADVERTISER(organisation="", country="FR")),
    P("org-blank", "RegisterAdvertiser", ADVERTISER(organisation="  ", country="FR")),
    P("org-129", "RegisterAdvertiser", ADVERTISER(organisation="x" * 129, country="FR")),
    P("org-esc", "RegisterAdvertiser", ADVERTISER(organisation="Ac\x1bme", country="FR")),
    P("cc-lower", "RegisterAdvertiser", ADVERTISER(organisation="Ac", country="fr")),
    P("cc-xx", "RegisterAdvertiser", ADVERTISER(organisation="Ac", country="XX")),
    P("cc-group", "RegisterAdvertiser", ADVERTISER(organisation="Ac", country="EU")),
    P("cc-alpha3", "RegisterAdvertiser", ADVERTISER(organisation="Ac", country="FRA")),
    P("cc-empty", "RegisterAdvertiser", ADVERTISER(organisation="Ac", country="")),
    P("id-too-short", "RegisterPlatform", PLATFORM(platform_id="ps", name="P")),
    P("id-upper", "RegisterPlatform", PLATFORM(platform_id="Photo", name="P")),
    P("id-space", "RegisterPlatform", PLATFORM(platform_id="ph oto", name="P")),
    P("id-33-chars", "RegisterPlatform", PLATFORM(platform_id="p" * 33, name="P")),
    P("pname-empty", "RegisterPlatform", PLATFORM(platform_id="pics", name="")),
    P("pname-129", "RegisterPlatform", PLATFORM(platform_id="pics", name="x" * 129)),
    P("pname-tab", "RegisterPlatform", PLATFORM(platform_id="pics", name="P\tS")),
]


@pytest.mark.parametrize(("name", "request_"), BAD_REGISTRATIONS)
def test_bad_registrations_are_invalid(shared: World, name: str, request_: Message) -> None:
    w = shared
    before = state(w)
    newcomer = w.party()
    refused(Reason.INVALID_REQUEST, lambda: invoke(newcomer, name, request_))
    refused(Reason.UNKNOWN_KEY, lambda: invoke(newcomer, "GetProfile", GOOD["GetProfile"](w)))
    assert state(w) == before


@pytest.mark.parametrize(
    ("name", "request_"),
    [
        ("RegisterHolder", HOLDER(handle="abc")),
        ("RegisterHolder", HOLDER(handle="a" * 32, display_name="x" * 128)),
        ("RegisterHolder", HOLDER(handle="a-b_9", display_name="Zoë 👩‍💻 Ünal")),
        ("RegisterAdvertiser", ADVERTISER(organisation="x" * 128, country="GR")),
        ("RegisterPlatform", PLATFORM(platform_id="p" * 32, name="x" * 128)),
    ],
)
def test_registrations_at_the_limits_are_accepted(
    shared: World, name: str, request_: Message
) -> None:
    newcomer = shared.party()
    profile = invoke(newcomer, name, request_).profile
    assert profile.key == newcomer.key.public.raw
    got = invoke(newcomer, "GetProfile", registry_pb2.GetProfileRequest()).profile
    assert got == profile


@pytest.mark.parametrize(
    ("who", "name", "request_"),
    [
        P("same-key-same-handle", "holder", "RegisterHolder", HOLDER(handle="alice")),
        P("same-key-new-handle", "holder", "RegisterHolder", HOLDER(handle="alice9")),
        P(
            "holder-as-advertiser",
            "holder",
            "RegisterAdvertiser",
            ADVERTISER(organisation="A", country="FR"),
        ),
        P(
            "holder-as-platform",
            "holder",
            "RegisterPlatform",
            PLATFORM(platform_id="alice8", name="A"),
        ),
        P(
            "advertiser-again",
            "adv",
            "RegisterAdvertiser",
            ADVERTISER(organisation="B", country="FR"),
        ),
        P("platform-as-holder", "platform", "RegisterHolder", HOLDER(handle="photoshare")),
        P("new-key-taken-handle", "new", "RegisterHolder", HOLDER(handle="alice")),
        P("new-key-platform-id", "new", "RegisterHolder", HOLDER(handle="photoshare")),
        P(
            "new-key-holder-handle",
            "new",
            "RegisterPlatform",
            PLATFORM(platform_id="bob", name="B"),
        ),
        P(
            "new-key-taken-platform-id",
            "new",
            "RegisterPlatform",
            PLATFORM(platform_id="photoshare", name="B"),
        ),
    ],
)
def test_duplicate_registrations_already_exist(
    shared: World, who: str, name: str, request_: Message
) -> None:
    w = shared
    before = state(w)
    caller = {"holder": w.holder, "adv": w.adv, "platform": w.platform, "new": w.party()}[who]
    refused(Reason.ALREADY_EXISTS, lambda: invoke(caller, name, request_))
    assert state(w) == before
    if who == "new":
        refused(Reason.UNKNOWN_KEY, lambda: invoke(caller, "GetProfile", GOOD["GetProfile"](w)))


@pytest.mark.parametrize(
    ("role", "name"),
    [
        ("holder", "x" * 129),
        ("holder", "Al\x00ice"),
        ("holder", "Al\x7fice"),
        ("holder", "Al\u0085ice"),
        ("advertiser", ""),
        ("advertiser", "   "),
        ("advertiser", "x" * 129),
        ("platform", ""),
        ("platform", "Photo\rShare"),
    ],
)
def test_bad_profile_updates_are_invalid(shared: World, role: str, name: str) -> None:
    w = shared
    before = state(w)
    request_ = registry_pb2.UpdateProfileRequest(display_name=name)
    refused(Reason.INVALID_REQUEST, lambda: invoke(w.by_role(role), "UpdateProfile", request_))
    assert state(w) == before


def declare(
    category: int = DataCategory.NAME,
    sha: bytes | None = None,
    content: bytes = b"",
    label: str = "",
) -> registry_pb2.DeclareAssetRequest:
    return registry_pb2.DeclareAssetRequest(
        category=cast("Any", category),
        sha256=hashlib.sha256(content or b"name").digest() if sha is None else sha,
        content=content,
        label=label,
    )


BIG = b"b" * (MAX_ASSET + 1)
HUGE = b"h" * (MAX_ASSET + 4096 + 1)


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        P("category-unspecified", declare(category=0), Reason.INVALID_REQUEST),
        P("category-unknown", declare(category=99), Reason.INVALID_REQUEST),
        P("digest-31-bytes", declare(sha=b"\x01" * 31), Reason.INVALID_REQUEST),
        P("digest-33-bytes", declare(sha=b"\x01" * 33), Reason.INVALID_REQUEST),
        P("digest-empty", declare(sha=b""), Reason.INVALID_REQUEST),
        P("mismatch", declare(sha=PHOTO_SHA, content=b"not the photo"), Reason.INVALID_REQUEST),
        P("label-129", declare(label="x" * 129), Reason.INVALID_REQUEST),
        P("label-nul", declare(label="a\x00b"), Reason.INVALID_REQUEST),
        P("content-over-cap", declare(content=BIG), Reason.TOO_LARGE),
        P("request-over-cap", declare(content=HUGE), Reason.TOO_LARGE),
    ],
)
def test_bad_assets_are_refused(shared: World, request_: Message, reason: Reason) -> None:
    w = shared
    before = state(w)
    refused(reason, lambda: invoke(w.holder, "DeclareAsset", request_))
    assert state(w) == before


def test_an_asset_at_the_cap_is_stored(w: World) -> None:
    content = b"c" * MAX_ASSET
    asset = invoke(w.holder, "DeclareAsset", declare(content=content)).asset
    assert (asset.has_content, asset.content_size) == (True, MAX_ASSET)
    listed = invoke(w.holder, "ListAssets", registry_pb2.ListAssetsRequest()).assets
    assert listed[-1] == asset


#: 33 distinct territories, one more than a list may hold.
TOO_MANY_TERRITORIES = sorted(territory.EU | {"NO", "IS", "LI", "CH", "GB", "US"})


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        P("missing", registry_pb2.SetTermsRequest(), Reason.INVALID_REQUEST),
        P("price-zero", terms(price_per_day_minor=0), Reason.INVALID_REQUEST),
        P("price-huge", terms(price_per_day_minor=2**64 - 1), Reason.INVALID_REQUEST),
        P("max-term-zero", terms(max_term_seconds=0), Reason.INVALID_TERM),
        P("over-cap", terms(max_term_seconds=365 * DAY + 1), Reason.INVALID_TERM),
        P("max-term-huge", terms(max_term_seconds=2**64 - 1), Reason.INVALID_TERM),
        P("currency-other", terms(currency="USD"), Reason.INVALID_REQUEST),
        P("currency-lower", terms(currency="eur"), Reason.INVALID_REQUEST),
        P("currency-empty", terms(currency=""), Reason.INVALID_REQUEST),
        P("territory-unknown", terms(territories=["XX"]), Reason.INVALID_REQUEST),
        P("territory-lower", terms(territories=["fr"]), Reason.INVALID_REQUEST),
        P("territory-none", terms(territories=[]), Reason.INVALID_REQUEST),
        P("territory-dup", terms(territories=["FR", "FR"]), Reason.INVALID_REQUEST),
        P("territory-33", terms(territories=TOO_MANY_TERRITORIES), Reason.TOO_LARGE),
        P("category-none", terms(categories=[]), Reason.INVALID_REQUEST),
        P("category-unknown", terms(categories=[99]), Reason.INVALID_REQUEST),
        P("category-dup", terms(categories=wire(2, 2)), Reason.INVALID_REQUEST),
        P("media-none", terms(media=[]), Reason.INVALID_REQUEST),
        P("purpose-none", terms(allowed_purposes=[]), Reason.INVALID_REQUEST),
        P("purpose-unknown", terms(allowed_purposes=[99]), Reason.INVALID_REQUEST),
        P(
            "purpose-dup",
            terms(allowed_purposes=wire(Purpose.MARKETING, Purpose.MARKETING)),
            Reason.INVALID_REQUEST,
        ),
        P(
            "refused-dup",
            terms(refused_purposes=wire(Purpose.RECRUITMENT, Purpose.RECRUITMENT)),
            Reason.INVALID_REQUEST,
        ),
        P(
            "all-refused-by-a-broader-one",
            terms(allowed_purposes=wire(Purpose.ADVERTISING), refused_purposes=wire(1)),
            Reason.INVALID_REQUEST,
        ),
        P(
            "all-refused",
            terms(
                allowed_purposes=wire(Purpose.MARKETING, Purpose.POLITICAL_CAMPAIGN),
                refused_purposes=wire(Purpose.MARKETING, Purpose.POLITICAL_CAMPAIGN),
            ),
            Reason.INVALID_REQUEST,
        ),
        P("multiplier-below-1", terms(exclusivity_multiplier_bps=9_999), Reason.INVALID_REQUEST),
    ],
)
def test_bad_terms_are_refused(shared: World, request_: Message, reason: Reason) -> None:
    w = shared
    if isinstance(request_, records_pb2.Terms):
        request_ = registry_pb2.SetTermsRequest(terms=request_)
    before = state(w)
    refused(reason, lambda: invoke(w.holder, "SetTerms", request_))
    assert state(w) == before
    assert invoke(w.holder, "GetTerms", registry_pb2.GetTermsRequest()).terms.price_per_day_minor


def test_terms_at_the_limits_are_accepted(w: World) -> None:
    t = terms(max_term_seconds=365 * DAY, exclusivity_multiplier_bps=0, exclusivity_offered=False)
    stored = invoke(w.holder, "SetTerms", registry_pb2.SetTermsRequest(terms=t)).terms
    assert stored.exclusivity_multiplier_bps == 10_000
    assert invoke(w.holder, "GetTerms", registry_pb2.GetTermsRequest()).terms == stored


def test_a_holder_without_terms_offers_nothing(shared: World) -> None:
    w = shared
    got = invoke(w.carol, "GetTerms", registry_pb2.GetTermsRequest())
    assert not got.HasField("terms")
    assert got.ByteSize() == 0
    offers = invoke(w.adv, "SearchOffers", exchange_pb2.SearchOffersRequest()).offers
    assert [o.offer_ref for o in offers] == [_ref(w, w.holder), _ref(w, w.bob)]
    before = state(w)
    request_ = licence_request(w, holder=w.carol)
    refused(Reason.OUTSIDE_TERMS, lambda: invoke(w.adv, "RequestLicence", request_))
    assert state(w) == before


def test_erasing_over_200_digests_is_too_large(shared: World) -> None:
    w = shared
    before = state(w)
    many = [secrets.token_bytes(32) for _ in range(200)]
    request_ = registry_pb2.EraseAssetsRequest(sha256=[PHOTO_SHA, *many])
    refused(Reason.TOO_LARGE, lambda: invoke(w.holder, "EraseAssets", request_))
    assert state(w) == before
    # 200 is allowed; none of them is an asset, so nothing is erased.
    erased = invoke(w.holder, "EraseAssets", registry_pb2.EraseAssetsRequest(sha256=many))
    assert (erased.erased, list(erased.revoked_licence_ids)) == (0, [])
    assert state(w) == before


@pytest.mark.parametrize(
    ("digests", "reason"),
    [
        ([], Reason.INVALID_REQUEST),
        ([PHOTO_SHA, PHOTO_SHA[:31]], Reason.INVALID_REQUEST),
        ([PHOTO_SHA + b"\x00"], Reason.INVALID_REQUEST),
        ([PHOTO_SHA] * 65, Reason.TOO_LARGE),
    ],
    ids=["none", "short", "long", "65"],
)
def test_bad_asset_digest_checks_are_refused(
    shared: World, digests: list[bytes], reason: Reason
) -> None:
    w = shared
    before = state(w)
    request_ = verification_pb2.CheckAssetDigestsRequest(sha256=digests)
    refused(reason, lambda: invoke(w.platform, "CheckAssetDigests", request_))
    assert state(w) == before


def test_asset_digest_checks_answer_one_bit_each_and_name_nobody(shared: World) -> None:
    w = shared
    nobody = hashlib.sha256(b"nobody declared this").digest()
    asked = [VOICE_SHA, nobody, PHOTO_SHA, *[secrets.token_bytes(32) for _ in range(60)], nobody]
    resp = invoke(
        w.platform, "CheckAssetDigests", verification_pb2.CheckAssetDigestsRequest(sha256=asked)
    )
    assert list(resp.declared) == [True, False, True, *[False] * 60, False]
    assert resp.ListFields() == [(resp.DESCRIPTOR.fields_by_name["declared"], resp.declared)]


def test_objection_stops_requests_and_approvals_until_withdrawn(w: World) -> None:
    def object_(on: bool) -> Any:
        request_ = registry_pb2.SetObjectionRequest(objecting=on)
        return invoke(w.holder, "SetObjection", request_).profile

    assert object_(True).objecting
    assert invoke(w.holder, "GetProfile", registry_pb2.GetProfileRequest()).profile.objecting
    offers = invoke(w.adv, "SearchOffers", exchange_pb2.SearchOffersRequest()).offers
    assert [o.offer_ref for o in offers] == [_ref(w, w.bob)]
    before = state(w)
    refused(Reason.OPTED_OUT, lambda: ask(w))
    refused(Reason.OPTED_OUT, lambda: approve_request(w.holder, w.pending))
    assert state(w) == before
    got = invoke(
        w.adv, "GetRequest", exchange_pb2.GetRequestRequest(request_id=w.pending.request_id)
    )
    assert got.request.state == records_pb2.REQUEST_STATE_PENDING
    assert not got.HasField("licence")

    assert not object_(False).objecting
    licence = approve_request(w.holder, w.pending).licence
    assert licence.state == records_pb2.LICENCE_STATE_ACTIVE
    assert ask(w).request.state == records_pb2.REQUEST_STATE_PENDING


# -- exchange -------------------------------------------------------------------------------

RequestCase = Callable[[World], exchange_pb2.RequestLicenceRequest]


def _req(**kw: Any) -> RequestCase:
    return lambda w: licence_request(w, **kw)


def _scoped(**kw: Any) -> RequestCase:
    return _req(scope_=scope(**kw))


def _at(start: int, end: int) -> RequestCase:
    """The window [now + start, now + end)."""
    return _with(not_before=lambda w: w.now() + start, not_after=lambda w: w.now() + end)


def _ref(w: World, holder: Party, adv: Party | None = None) -> bytes:
    """The advertiser's (by default ``w.adv``'s) reference to ``holder``."""
    return offer_refs(adv or w.adv, holder.key.public.raw)[0]


def _assets(*digests: bytes) -> RequestCase:
    """The photo request, naming the holder's assets of ``digests`` by reference."""
    return _with(asset_refs=lambda w: offer_refs(w.adv, w.holder.key.public.raw, digests)[1])


def _with(**fields: Any) -> RequestCase:
    def build(w: World) -> exchange_pb2.RequestLicenceRequest:
        r = licence_request(w)
        for name, given in fields.items():
            value = given(w) if callable(given) else given
            if name == "scope" and value is None:
                r.ClearField("scope")
            elif isinstance(value, list):
                del getattr(r, name)[:]
                getattr(r, name).extend(value)
            else:
                setattr(r, name, value)
        return r

    return build


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        P("no-holder", _with(offer_ref=secrets.token_bytes(32)), Reason.NOT_FOUND),
        P("short-offer-ref", _with(offer_ref=b"short"), Reason.NOT_FOUND),
        P("empty-offer-ref", _with(offer_ref=b""), Reason.NOT_FOUND),
        P("holder-key", _with(offer_ref=lambda w: w.holder.key.public.raw), Reason.NOT_FOUND),
        P("adv2s-ref", _with(offer_ref=lambda w: _ref(w, w.holder, w.adv2)), Reason.NOT_FOUND),
        P("advertiser", _with(offer_ref=lambda w: _ref(w, w.adv2)), Reason.NOT_FOUND),
        P("platform", _with(offer_ref=lambda w: _ref(w, w.platform)), Reason.NOT_FOUND),
        P("no-scope", _with(scope=None), Reason.INVALID_REQUEST),
        P("no-assets", _with(asset_refs=[]), Reason.INVALID_REQUEST),
        P(
            "17-assets",
            _with(asset_refs=[bytes([i]) * 16 for i in range(17)]),
            Reason.INVALID_REQUEST,
        ),
        P("dup-assets", _assets(PHOTO_SHA, PHOTO_SHA), Reason.INVALID_REQUEST),
        P("undeclared-asset", _assets(PHOTO_SHA, b"\x07" * 32), Reason.NOT_FOUND),
        P("asset-off-scope", _assets(PHOTO_SHA, VOICE_SHA), Reason.INVALID_REQUEST),
        P("plain-digest", _with(asset_refs=[PHOTO_SHA]), Reason.NOT_FOUND),
        P("short-asset-ref", _with(asset_refs=[b"short"]), Reason.NOT_FOUND),
        P(
            "adv2s-asset-ref",
            _with(asset_refs=lambda w: offer_refs(w.adv2, w.holder.key.public.raw)[1]),
            Reason.NOT_FOUND,
        ),
        P(
            "bobs-asset-ref",
            _with(asset_refs=lambda w: offer_refs(w.adv, w.bob.key.public.raw)[1]),
            Reason.NOT_FOUND,
        ),
        P("unknown-purpose", _scoped(purposes=(99,)), Reason.INVALID_REQUEST),
        P("no-territory", _scoped(territories=()), Reason.INVALID_REQUEST),
        P("message-513", _with(message="m" * 513), Reason.INVALID_REQUEST),
        P("message-nul", _with(message="m\x00"), Reason.INVALID_REQUEST),
        P("no-end", _with(not_after=0), Reason.INVALID_TERM),
        P("no-window", _with(not_before=0, not_after=0), Reason.INVALID_TERM),
        P(
            "empty-window",
            _at(60, 60),
            Reason.INVALID_TERM,
        ),
        P(
            "end-before-start",
            _at(60, 59),
            Reason.INVALID_TERM,
        ),
        P("starts-in-the-past", _req(start=-DAY), Reason.INVALID_TERM),
        P("over-holders-max", _req(days=91), Reason.INVALID_TERM),
        P(
            "starts-beyond-any-date",
            _with(not_before=2**63, not_after=2**63 + DAY, offered_price_minor=100),
            Reason.INVALID_TERM,
        ),
        P(
            "exclusivity-not-offered",
            lambda w: licence_request(w, holder=w.bob, exclusive=True),
            Reason.OUTSIDE_TERMS,
        ),
        P(
            "refused-purpose",
            _scoped(purposes=(Purpose.DIRECT_MARKETING,)),
            Reason.OUTSIDE_TERMS,
        ),
        P(
            "broader-purpose-covers-a-refused-one",
            _scoped(purposes=(Purpose.MARKETING,)),
            Reason.OUTSIDE_TERMS,
        ),
        P(
            "purpose-not-offered",
            _scoped(purposes=(Purpose.RECRUITMENT,)),
            Reason.OUTSIDE_TERMS,
        ),
        P("territory", _scoped(territories=("US",)), Reason.OUTSIDE_TERMS),
        P("medium", _scoped(media=(Medium.PRINT,)), Reason.OUTSIDE_TERMS),
        P(
            "category",
            _scoped(categories=(DataCategory.OPINIONS,)),
            Reason.OUTSIDE_TERMS,
        ),
        P("price", _req(price=2999), Reason.PRICE_TOO_LOW),
        P("exclusive-price", _req(exclusive=True, price=8999), Reason.PRICE_TOO_LOW),
        P(
            "days-round-up",
            _at(0, 30 * DAY + 1),
            Reason.PRICE_TOO_LOW,
        ),
    ],
)
def test_bad_licence_requests_are_refused(shared: World, case: RequestCase, reason: Reason) -> None:
    w = shared
    request_ = case(w)
    before = state(w)
    e = refused(reason, lambda: invoke(w.adv, "RequestLicence", request_))
    assert state(w) == before
    # The message names the request's field first ("scope.media: the holder offers …").
    assert re.match(r"(scope(\.[a-z]+)?|[a-z_]+): ", e.message), e.message


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (
            exchange_pb2.SearchOffersRequest(page_size=101),
            "page_size: 1 to 100; the request has 101",
        ),
        (
            exchange_pb2.SearchOffersRequest(category=cast("Any", 99)),
            "category: one of 1 (name), 2 (image)",
        ),
        (
            exchange_pb2.SearchOffersRequest(purpose=cast("Any", 99)),
            "purpose: one of 1 (marketing), 2 (advertising)",
        ),
        (exchange_pb2.SearchOffersRequest(medium=cast("Any", 99)), "10 (cinema); got 99"),
        (
            exchange_pb2.SearchOffersRequest(territory="XX"),
            "territory: an ISO 3166-1 alpha-2 code or a group (EU, EEA, WORLD); got 'XX'",
        ),
        (exchange_pb2.SearchOffersRequest(territory="fr"), "got 'fr'"),
        (exchange_pb2.SearchOffersRequest(page_token="h" * 65), "page_token: the next_page"),
        (exchange_pb2.SearchOffersRequest(page_token="alice"), "page_token: "),  # a handle
        (exchange_pb2.SearchOffersRequest(page_token="h" * 43), "page_token: "),  # nobody's ref
    ],
)
def test_bad_searches_are_invalid(shared: World, request_: Message, field: str) -> None:
    """Each refusal names the field, what is allowed and what the request has."""
    e = refused(Reason.INVALID_REQUEST, lambda: invoke(shared.adv, "SearchOffers", request_))
    assert field in e.message


def test_search_offers_pages_through_every_holder_once(tmp_path: Path) -> None:
    ex = start_exchange(tmp_path / "data", settings=SETTINGS)
    try:
        holders = [ex.party() for _ in range(5)]
        for i, h in reversed(list(enumerate(holders, 1))):
            register_holder(h, f"h{i:02}")
        adv = ex.party()
        register_advertiser(adv)
        max100 = invoke(adv, "SearchOffers", exchange_pb2.SearchOffersRequest(page_size=100))
        refs = [offer_refs(adv, h.key.public.raw)[0] for h in holders]  # h01 … h05
        assert [o.offer_ref for o in max100.offers] == refs
        pages: list[list[bytes]] = []
        token = ""
        while True:
            request_ = exchange_pb2.SearchOffersRequest(page_size=2, page_token=token)
            page = invoke(adv, "SearchOffers", request_)
            pages.append([o.offer_ref for o in page.offers])
            token = page.next_page_token
            if not token:
                break
        assert pages == [refs[:2], refs[2:4], refs[4:]]
    finally:
        ex.stop()


@pytest.mark.parametrize("name", ["GetRequest", "WatchRequest"])
@pytest.mark.parametrize("who", ["adv2", "bob", "platform", "unknown-id"])
def test_a_request_is_only_for_its_parties(shared: World, name: str, who: str) -> None:
    w = shared
    caller = {"adv2": w.adv2, "bob": w.bob, "platform": w.platform, "unknown-id": w.adv}[who]
    request_id = secrets.token_bytes(16) if who == "unknown-id" else w.pending.request_id
    msg = getattr(exchange_pb2, f"{name}Request")(request_id=request_id)
    before = state(w)
    # A platform has no requests: the wrong role, NOT_OWNER, whatever the request.
    expected = Reason.NOT_OWNER if who == "platform" else Reason.NOT_FOUND
    refused(expected, lambda: invoke(caller, name, msg))
    assert state(w) == before
    for party in (w.adv, w.holder):  # its own parties see it
        assert invoke(party, name, msg if who != "unknown-id" else GOOD[name](w)).request.claims


def _approval(w: World, signature: Callable[[World, bytes], bytes]) -> Message:
    return exchange_pb2.ApproveRequestRequest(
        request_id=w.pending.request_id, holder_signature=signature(w, w.pending.claims)
    )


@pytest.mark.parametrize(
    ("who", "case", "reason"),
    [
        P(
            "signature-over-other-bytes",
            "holder",
            lambda w: _approval(w, lambda w, c: w.holder.key.sign(keys.CONSENT, c + b"x")),
            Reason.BAD_CONSENT,
        ),
        P(
            "signature-by-another-key",
            "holder",
            lambda w: _approval(w, lambda w, c: w.bob.key.sign(keys.CONSENT, c)),
            Reason.BAD_CONSENT,
        ),
        P(
            "signature-in-another-domain",
            "holder",
            lambda w: _approval(w, lambda w, c: w.holder.key.sign(keys.STANDING_RULE, c)),
            Reason.BAD_CONSENT,
        ),
        P("no-sig", "holder", lambda w: _approval(w, lambda w, c: b""), Reason.BAD_CONSENT),
        P(
            "by-another-holder",
            "bob",
            lambda w: _approval(w, lambda w, c: w.bob.key.sign(keys.CONSENT, c)),
            Reason.NOT_FOUND,
        ),
        P(
            "unknown-request",
            "holder",
            lambda w: exchange_pb2.ApproveRequestRequest(request_id=b"\x00" * 16),
            Reason.NOT_FOUND,
        ),
        P(
            "already-issued",
            "holder",
            lambda w: exchange_pb2.ApproveRequestRequest(
                request_id=w.licence.request_id,
                holder_signature=approve(
                    w.holder.key,
                    invoke(w.holder, "GetRequest", GOOD["GetRequest"](w)).request.claims,
                ).signature,
            ),
            Reason.REQUEST_NOT_PENDING,
        ),
    ],
)
def test_bad_approvals_are_refused(
    shared: World, who: str, case: Callable[[World], Message], reason: Reason
) -> None:
    w = shared
    caller = w.holder if who == "holder" else w.bob
    request_ = case(w)
    before = state(w)
    refused(reason, lambda: invoke(caller, "ApproveRequest", request_))
    assert state(w) == before


def test_approving_twice_is_not_pending_the_second_time(w: World) -> None:
    licence = approve_request(w.holder, w.pending).licence
    before = state(w)
    refused(Reason.REQUEST_NOT_PENDING, lambda: approve_request(w.holder, w.pending))
    assert state(w) == before
    listed = invoke(w.adv, "ListLicences", licences_pb2.ListLicencesRequest()).licences
    assert [x.licence_id for x in listed].count(licence.licence_id) == 1


def test_a_request_expires_unanswered(w: World) -> None:
    w.clock.offset += 7 * DAY + 1
    refused(Reason.REQUEST_EXPIRED, lambda: approve_request(w.holder, w.pending))
    inbox = invoke(w.holder, "ListInbox", exchange_pb2.ListInboxRequest(include_answered=True))
    states = {r.request_id: r.state for r in inbox.requests}
    assert states[w.pending.request_id] == records_pb2.REQUEST_STATE_EXPIRED
    assert not invoke(w.holder, "ListInbox", exchange_pb2.ListInboxRequest()).requests
    before = state(w)
    refused(Reason.REQUEST_EXPIRED, lambda: approve_request(w.holder, w.pending))
    decline = exchange_pb2.DeclineRequestRequest(request_id=w.pending.request_id)
    refused(Reason.REQUEST_EXPIRED, lambda: invoke(w.holder, "DeclineRequest", decline))
    withdraw = exchange_pb2.WithdrawRequestRequest(request_id=w.pending.request_id)
    refused(Reason.REQUEST_EXPIRED, lambda: invoke(w.adv, "WithdrawRequest", withdraw))
    assert state(w) == before


@pytest.mark.parametrize("reader", ["GetRequest", "WithdrawRequest"])
def test_an_expired_request_reads_as_expired_to_the_advertiser(w: World, reader: str) -> None:
    w.clock.offset += 7 * DAY + 1
    msg = getattr(exchange_pb2, f"{reader}Request")(request_id=w.pending.request_id)
    if reader == "WithdrawRequest":
        refused(Reason.REQUEST_EXPIRED, lambda: invoke(w.adv, reader, msg))
    got = invoke(w.adv, "GetRequest", GOOD["GetRequest"](w)).request
    assert got.state == records_pb2.REQUEST_STATE_EXPIRED
    assert got.updated_at >= got.expires_at


def test_a_declined_request_cannot_be_approved(w: World) -> None:
    too_long = exchange_pb2.DeclineRequestRequest(request_id=w.pending.request_id, reason="r" * 513)
    refused(Reason.INVALID_REQUEST, lambda: invoke(w.holder, "DeclineRequest", too_long))
    decline = exchange_pb2.DeclineRequestRequest(request_id=w.pending.request_id, reason="no")
    declined = invoke(w.holder, "DeclineRequest", decline).request
    assert (declined.state, declined.reason) == (records_pb2.REQUEST_STATE_DECLINED, "no")
    before = state(w)
    refused(Reason.REQUEST_NOT_PENDING, lambda: approve_request(w.holder, w.pending))
    refused(Reason.REQUEST_NOT_PENDING, lambda: invoke(w.holder, "DeclineRequest", decline))
    withdraw = exchange_pb2.WithdrawRequestRequest(request_id=w.pending.request_id)
    refused(Reason.REQUEST_NOT_PENDING, lambda: invoke(w.adv, "WithdrawRequest", withdraw))
    assert state(w) == before


def test_only_its_advertiser_withdraws_a_request(w: World) -> None:
    withdraw = exchange_pb2.WithdrawRequestRequest(request_id=w.pending.request_id)
    unknown = exchange_pb2.WithdrawRequestRequest(request_id=secrets.token_bytes(16))
    before = state(w)
    refused(Reason.NOT_FOUND, lambda: invoke(w.adv2, "WithdrawRequest", withdraw))
    refused(Reason.NOT_FOUND, lambda: invoke(w.adv, "WithdrawRequest", unknown))
    assert state(w) == before
    done = invoke(w.adv, "WithdrawRequest", withdraw).request
    assert done.state == records_pb2.REQUEST_STATE_WITHDRAWN
    before = state(w)
    refused(Reason.REQUEST_NOT_PENDING, lambda: approve_request(w.holder, w.pending))
    refused(Reason.REQUEST_NOT_PENDING, lambda: invoke(w.adv, "WithdrawRequest", withdraw))
    issued_one = exchange_pb2.WithdrawRequestRequest(request_id=w.licence.request_id)
    refused(Reason.REQUEST_NOT_PENDING, lambda: invoke(w.adv, "WithdrawRequest", issued_one))
    assert state(w) == before


def test_watch_request_streams_pending_then_issued(w: World) -> None:
    updates = stream(w.adv, "WatchRequest", GOOD["WatchRequest"](w))
    first = next(updates)
    assert first.request.state == records_pb2.REQUEST_STATE_PENDING
    assert not first.HasField("licence")
    with ThreadPoolExecutor(1) as pool:
        approval = pool.submit(approve_request, w.holder, w.pending)
        rest = list(updates)
        licence = approval.result(timeout=10).licence
    assert [m.request.state for m in rest] == [records_pb2.REQUEST_STATE_ISSUED]
    assert rest[0].licence == licence
    assert rest[0].licence.request_id == w.pending.request_id


# -- standing rules --------------------------------------------------------------------------

RuleCase = Callable[[World], licence_pb2.StandingConsent]


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        P(
            "signature-over-other-bytes",
            lambda w: consent(w.holder.key, rule(w), data=b"other bytes"),
            Reason.BAD_CONSENT,
        ),
        P("signed-by-another-key", lambda w: consent(w.bob.key, rule(w)), Reason.BAD_CONSENT),
        P(
            "unsigned",
            lambda w: licence_pb2.StandingConsent(rule=rule(w).encode()),
            Reason.BAD_CONSENT,
        ),
        P(
            "another-holders-rule",
            lambda w: consent(w.bob.key, rule(w, holder=w.bob.key)),
            Reason.NOT_OWNER,
        ),
        P(
            "garbage",
            lambda w: licence_pb2.StandingConsent(rule=b"\xff\x00garbage", holder_signature=b"s"),
            Reason.INVALID_REQUEST,
        ),
        P("empty-consent", lambda w: licence_pb2.StandingConsent(), Reason.INVALID_REQUEST),
        P(
            "political-campaign",
            lambda w: consent(w.holder.key, rule(w, purposes=(Purpose.POLITICAL_CAMPAIGN,))),
            Reason.SENSITIVE_USE_NEEDS_APPROVAL,
        ),
        P(
            "ai-training",
            lambda w: consent(
                w.holder.key, rule(w, purposes=(Purpose.MARKETING, Purpose.AI_MODEL_TRAINING))
            ),
            Reason.SENSITIVE_USE_NEEDS_APPROVAL,
        ),
        P(
            "opinions",
            lambda w: consent(w.holder.key, rule(w, categories=(DataCategory.OPINIONS,))),
            Reason.SENSITIVE_USE_NEEDS_APPROVAL,
        ),
        P("same-rule-again", lambda w: w.rule, Reason.ALREADY_EXISTS),
        P(
            "same-rule-id",
            lambda w: consent(
                w.holder.key, rule(w, rule_id=StandingRule.decode(w.rule.rule).rule_id)
            ),
            Reason.ALREADY_EXISTS,
        ),
    ],
)
def test_bad_standing_rules_are_refused(shared: World, case: RuleCase, reason: Reason) -> None:
    w = shared
    c = case(w)
    if reason == Reason.SENSITIVE_USE_NEEDS_APPROVAL:  # the wallet would not even sign it
        with pytest.raises(LicentiaError) as e:
            sign_standing_rule(w.holder.key, StandingRule.decode(c.rule))
        assert e.value.reason == reason
    before = state(w)
    refused(reason, lambda: add_rule(w.holder, c))
    assert state(w) == before


def test_standing_rules_auto_approve_what_they_cover_and_stop_when_withdrawn(w: World) -> None:
    added = add_rule(w.holder, signed_rule(w.holder.key, rule(w))).rule
    # Covered: issued at once, approved by the rule.
    covered = ask(w, licence_request(w))
    assert covered.request.state == records_pb2.REQUEST_STATE_ISSUED
    assert covered.request.auto_approved
    assert covered.HasField("licence")
    assert covered.licence.request_id == covered.request.request_id
    keyset = IssuerKeySet.from_proto(
        invoke(w.adv, "GetIssuerKeys", licences_pb2.GetIssuerKeysRequest()).keys
    )
    verified = parse_token(covered.licence.token).verify(keyset)
    assert verified.consent_kind == "standing"
    read = exchange_pb2.GetRequestRequest(request_id=covered.request.request_id)
    assert invoke(w.adv, "GetRequest", read).request.auto_approved
    # A sensitive purpose is never auto-approved, whatever the rules.
    political = licence_request(w, scope_=scope(purposes=(Purpose.POLITICAL_CAMPAIGN,)))
    sensitive = ask(w, political)
    assert sensitive.request.state == records_pb2.REQUEST_STATE_PENDING
    assert not sensitive.request.auto_approved
    assert not sensitive.HasField("licence")
    # Outside the rule (65 days > its 60): pending.
    assert ask(w, licence_request(w, days=65)).request.state == records_pb2.REQUEST_STATE_PENDING
    # Withdrawn: the same request waits for the holder.
    rule_id = StandingRule.decode(added.consent.rule).rule_id
    gone = invoke(
        w.holder, "WithdrawStandingRule", exchange_pb2.WithdrawStandingRuleRequest(rule_id=rule_id)
    ).rule
    assert gone.withdrawn_at
    after = ask(w, licence_request(w))
    assert after.request.state == records_pb2.REQUEST_STATE_PENDING
    assert not after.HasField("licence")


@pytest.mark.parametrize("who", ["bob", "holder"])
def test_withdrawing_someone_elses_or_no_rule_is_not_found(shared: World, who: str) -> None:
    w = shared
    rule_id = StandingRule.decode(w.rule.rule).rule_id if who == "bob" else b"\x09" * 16
    caller = w.bob if who == "bob" else w.holder
    msg = exchange_pb2.WithdrawStandingRuleRequest(rule_id=rule_id)
    before = state(w)
    refused(Reason.NOT_FOUND, lambda: invoke(caller, "WithdrawStandingRule", msg))
    assert state(w) == before


# -- licences -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["GetLicence", "RevokeLicence"])
@pytest.mark.parametrize("which", ["15-bytes", "17-bytes", "unknown", "empty"])
def test_an_unknown_licence_is_not_found(shared: World, name: str, which: str) -> None:
    w = shared
    real = w.licence.licence_id
    licence_id = {
        "15-bytes": real[:15],
        "17-bytes": real + b"\x00",
        "unknown": secrets.token_bytes(16),
        "empty": b"",
    }[which]
    msg = getattr(licences_pb2, f"{name}Request")(licence_id=licence_id)
    before = state(w)
    refused(Reason.NOT_FOUND, lambda: invoke(w.holder, name, msg))
    assert state(w) == before


def test_revoking_twice_returns_the_same_receipt(w: World) -> None:
    msg = licences_pb2.RevokeLicenceRequest(licence_id=w.licence.licence_id)
    first = invoke(w.holder, "RevokeLicence", msg)
    w.clock.offset += 5
    second = invoke(w.holder, "RevokeLicence", msg)
    r1 = records_pb2.TerminationReceipt.FromString(first.receipt.receipt)
    r2 = records_pb2.TerminationReceipt.FromString(second.receipt.receipt)
    assert r1.sequence == r2.sequence == 2  # the world's revoked licence is 1
    assert r1 == r2
    assert first.licence.revoked_at == second.licence.revoked_at
    events = stream(w.holder, "WatchRevocations", licences_pb2.WatchRevocationsRequest())
    got = [next(events) for _ in range(3)]
    assert [m.WhichOneof("message") for m in got] == ["event", "event", "heartbeat"]
    assert [m.event.sequence for m in got[:2]] == [1, 2]
    assert got[2].heartbeat.sequence == 2


@pytest.mark.parametrize(
    ("who", "case", "reason"),
    [
        P("not-in-licence", "adv", lambda w: (w.licence, VOICE_SHA), Reason.ASSET_MISMATCH),
        P("unknown-digest", "adv", lambda w: (w.licence, b"\x05" * 32), Reason.ASSET_MISMATCH),
        P("no-stored-bytes", "adv", lambda w: (w.voice, VOICE_SHA), Reason.NOT_FOUND),
        P("before-start", "adv", lambda w: (w.future, PHOTO_SHA), Reason.LICENCE_NOT_ACTIVE),
        P("revoked", "adv", lambda w: (w.revoked, PHOTO_SHA), Reason.LICENCE_NOT_ACTIVE),
        P(
            "15-byte-id",
            "adv",
            lambda w: (records_pb2.LicenceRecord(licence_id=w.licence.licence_id[:15]), PHOTO_SHA),
            Reason.NOT_FOUND,
        ),
    ],
)
def test_bad_fetches_are_refused(
    shared: World,
    who: str,
    case: Callable[[World], tuple[records_pb2.LicenceRecord, bytes]],
    reason: Reason,
) -> None:
    w = shared
    lic, sha = case(w)
    msg = licences_pb2.FetchAssetRequest(licence_id=lic.licence_id, sha256=sha)
    before = state(w)
    refused(reason, lambda: invoke(w.adv if who == "adv" else w.adv2, "FetchAsset", msg))
    assert state(w) == before
    assert not invoke(w.holder, "ListAccesses", licences_pb2.ListAccessesRequest()).accesses


def test_a_licence_is_fetchable_from_its_start_to_its_end(w: World) -> None:
    msg = licences_pb2.FetchAssetRequest(licence_id=w.future.licence_id, sha256=PHOTO_SHA)
    refused(Reason.LICENCE_NOT_ACTIVE, lambda: invoke(w.adv, "FetchAsset", msg))
    w.clock.offset += DAY
    assert invoke(w.adv, "FetchAsset", msg).content == PHOTO
    w.clock.offset += 30 * DAY
    refused(Reason.LICENCE_NOT_ACTIVE, lambda: invoke(w.adv, "FetchAsset", msg))
    accesses = invoke(w.holder, "ListAccesses", licences_pb2.ListAccessesRequest()).accesses
    assert [a.licence_id for a in accesses] == [w.future.licence_id]


def _token(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "request_",
    [
        P("page-501", licences_pb2.ListLicencesRequest(page_size=501)),
        P("token-not-base64", licences_pb2.ListLicencesRequest(page_token="!!!")),
        P("token-bad-padding", licences_pb2.ListLicencesRequest(page_token="abc")),
        P("token-not-ascii", licences_pb2.ListLicencesRequest(page_token="é")),
        P("token-not-int", licences_pb2.ListLicencesRequest(page_token=_token("x"))),
        P("token-negative", licences_pb2.ListLicencesRequest(page_token=_token("-5"))),
        P("token-huge", licences_pb2.ListLicencesRequest(page_token=_token("9" * 30))),
    ],
)
def test_bad_licence_listings_are_invalid(shared: World, request_: Message) -> None:
    refused(Reason.INVALID_REQUEST, lambda: invoke(shared.holder, "ListLicences", request_))


@pytest.mark.parametrize(
    "request_",
    [
        P("page-1001", registry_pb2.ListPlatformsRequest(page_size=1001)),
        P("page-huge", registry_pb2.ListPlatformsRequest(page_size=2**32 - 1)),
        P("token-33-chars", registry_pb2.ListPlatformsRequest(page_token="a" * 33)),
    ],
)
def test_bad_platform_listings_are_invalid(shared: World, request_: Message) -> None:
    anonymous = Party(PrivateKey.generate(), SignedChannel(shared.ex.channel(), None))
    refused(Reason.INVALID_REQUEST, lambda: invoke(anonymous, "ListPlatforms", request_))


@pytest.mark.parametrize("spread", [0, 1], ids=["same-second", "a-second-apart"])
def test_list_licences_pages_through_every_licence_once(tmp_path: Path, spread: int) -> None:
    clock = ManualClock()
    ex = start_exchange(tmp_path / "data", settings=SETTINGS, clock=clock)
    try:
        holder, adv = signed_party(ex, clock), signed_party(ex, clock)
        register_holder(holder)
        register_advertiser(adv)
        made: list[bytes] = []
        for _ in range(5):
            now = clock.now()
            pending = invoke(
                adv,
                "RequestLicence",
                exchange_pb2.RequestLicenceRequest(
                    offer_ref=offer_refs(adv, holder.key.public.raw)[0],
                    asset_refs=offer_refs(adv, holder.key.public.raw)[1],
                    scope=scope(),
                    not_before=now,
                    not_after=now + DAY,
                    offered_price_minor=100,
                ),
            ).request
            made.append(approve_request(holder, pending).licence.licence_id)
            clock.offset += spread
        for party in (holder, adv):
            pages: list[list[bytes]] = []
            token = ""
            while True:
                msg = licences_pb2.ListLicencesRequest(page_size=2, page_token=token)
                page = invoke(party, "ListLicences", msg)
                pages.append([x.licence_id for x in page.licences])
                token = page.next_page_token
                if not token:
                    break
            assert [len(p) for p in pages] == [2, 2, 1]
            assert [i for p in pages for i in p] == made[::-1]  # newest first, each once
    finally:
        ex.stop()


def _keyset(w: World) -> IssuerKeySet:
    msg = invoke(w.holder, "GetIssuerKeys", licences_pb2.GetIssuerKeysRequest()).keys
    return IssuerKeySet.from_proto(msg)


def _bits(
    w: World, signed: status_pb2.SignedStatusSnapshot
) -> tuple[int, Callable[[records_pb2.LicenceRecord], bool]]:
    """The snapshot's sequence, and whether it holds a licence revoked."""
    snap = verify_snapshot(signed.SerializeToString(deterministic=True), _keyset(w))
    lists = StatusLists(snap.lists)
    return (
        snap.sequence,
        lambda x: lists.lookup(x.status_list, x.status_index, snap.taken_at) is Reason.REVOKED,
    )


def test_a_subscriber_ahead_of_the_exchange_starts_from_a_signed_snapshot(w: World) -> None:
    ahead = licences_pb2.WatchRevocationsRequest(after_sequence=1000)
    feed = stream(w.holder, "WatchRevocations", ahead)
    first = next(feed)
    assert first.WhichOneof("message") == "snapshot"
    sequence, revoked = _bits(w, first.snapshot)
    assert sequence == 1
    assert revoked(w.revoked)
    assert not revoked(w.licence)
    second = next(feed)
    assert second.WhichOneof("message") == "heartbeat"
    assert second.heartbeat.sequence == 1


def test_a_late_subscriber_catches_up_in_order_then_hears_heartbeats(w: World) -> None:
    revoked = [w.licence, w.voice, w.future]
    for lic in revoked:
        revoke = licences_pb2.RevokeLicenceRequest(licence_id=lic.licence_id)
        invoke(w.holder, "RevokeLicence", revoke)
    anonymous = Party(PrivateKey.generate(), SignedChannel(w.ex.channel(), None))
    feed = stream(anonymous, "WatchRevocations", licences_pb2.WatchRevocationsRequest())
    events = [next(feed) for _ in range(4)]
    assert [m.WhichOneof("message") for m in events] == ["event"] * 4
    assert [m.event.sequence for m in events] == [1, 2, 3, 4]
    slots = [(m.event.status_list, m.event.status_index) for m in events]
    assert slots == [(x.status_list, x.status_index) for x in [w.revoked, *revoked]]
    started = time.monotonic()
    beats = [next(feed), next(feed)]
    assert [m.WhichOneof("message") for m in beats] == ["heartbeat", "heartbeat"]
    assert [m.heartbeat.sequence for m in beats] == [4, 4]
    assert 0.5 <= time.monotonic() - started < 3
    sequence, held = _bits(
        w, invoke(w.holder, "GetStatusSnapshot", licences_pb2.GetStatusSnapshotRequest()).snapshot
    )
    assert sequence == 4
    assert all(held(x) for x in [w.revoked, *revoked])


# -- verification ---------------------------------------------------------------------------

VerifyCase = Callable[[World], verification_pb2.VerifyRequest]


def _long_presentation(w: World, length: int) -> verification_pb2.VerifyRequest:
    req = check(w, w.licence)
    req.presentation = req.presentation + "A" * (length - len(req.presentation))
    return req


@pytest.mark.parametrize(
    ("case", "expected", "authenticated"),
    [
        P("pres-1500", lambda w: _long_presentation(w, 1500), [Reason.TOO_LARGE], True),
        P(
            "no-use",
            lambda w: verification_pb2.VerifyRequest(
                token=w.licence.token, presentation=check(w, w.licence).presentation
            ),
            [Reason.INVALID_USE],
            False,
        ),
        P(
            "use-unknown-territory",
            lambda w: verification_pb2.VerifyRequest(
                token=w.licence.token,
                presentation=check(w, w.licence).presentation,
                use=licence_pb2.IntendedUse(
                    category=wire(DataCategory.IMAGE)[0],
                    purpose=wire(Purpose.ADVERTISING)[0],
                    medium=wire(Medium.ONLINE)[0],
                    territory="XX",
                    asset_sha256=PHOTO_SHA,
                ),
            ),
            [Reason.INVALID_USE],
            False,
        ),
        P(
            "garbage-token",
            lambda w: verification_pb2.VerifyRequest(
                token="lic1.garbage", presentation="lpr1.x", use=photo_use().to_proto()
            ),
            [Reason.MALFORMED],
            False,
        ),
        P(
            "presentation-for-another-licence",
            lambda w: check(w, w.licence, licence_id=w.voice.licence_id),
            [Reason.PRESENTATION_MISMATCH],
            True,
        ),
        P(
            "old-presentation",
            lambda w: check(w, w.licence, at=w.now() - 600),
            [Reason.PRESENTATION_EXPIRED],
            True,
        ),
        P(
            "out-of-scope",
            lambda w: check(w, w.licence, photo_use(Purpose.POLITICAL_CAMPAIGN)),
            [Reason.OUT_OF_SCOPE_PURPOSE],
            True,
        ),
        P("revoked", lambda w: check(w, w.revoked), [Reason.REVOKED], True),
        P("not-yet-valid", lambda w: check(w, w.future), [Reason.NOT_YET_VALID], True),
    ],
)
def test_verify_denies_with_reasons_and_never_errs(
    shared: World, case: VerifyCase, expected: list[Reason], authenticated: bool
) -> None:
    w = shared
    req = case(w)
    before = state(w)
    got = invoke(w.platform, "Verify", req)
    assert (got.allowed, reasons(got)) == (False, expected)
    assert bool(got.licence_id) is authenticated
    assert state(w) == before


def test_verify_stream_answers_in_order(shared: World) -> None:
    w = shared
    checks = [
        check(w, w.licence),
        check(w, w.licence, photo_use(Purpose.POLITICAL_CAMPAIGN)),
        check(w, w.voice),
        check(w, w.licence, photo_use(where="US")),
        verification_pb2.VerifyRequest(token="nonsense", use=photo_use().to_proto()),
    ]
    before = state(w)
    answers = list(
        w.platform.rpc.stream_stream(
            RPCS["VerifyStream"].path, checks, verification_pb2.VerifyResponse, timeout=10
        )
    )
    assert [(a.allowed, reasons(a)) for a in answers] == [
        (True, []),
        (False, [Reason.OUT_OF_SCOPE_PURPOSE]),
        (True, []),
        (False, [Reason.OUT_OF_SCOPE_TERRITORY]),
        (False, [Reason.MALFORMED]),
    ]
    ids = [w.licence.licence_id, w.licence.licence_id, w.voice.licence_id, w.licence.licence_id]
    assert [a.licence_id for a in answers[:4]] == ids
    assert state(w) == before


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        P("id-15", lambda w: report(check(w, w.licence), b"\x01" * 15), Reason.INVALID_REQUEST),
        P("id-17", lambda w: report(check(w, w.licence), b"\x01" * 17), Reason.INVALID_REQUEST),
        P("no-id", lambda w: report(check(w, w.licence), b""), Reason.INVALID_REQUEST),
        P(
            "out-of-scope",
            lambda w: report(check(w, w.licence, photo_use(Purpose.RECRUITMENT)), b"\x02" * 16),
            Reason.OUT_OF_SCOPE_PURPOSE,
        ),
        P(
            "first-of-two-reasons",
            lambda w: report(
                check(w, w.licence, photo_use(Purpose.RECRUITMENT), signer=w.adv2.key),
                b"\x02" * 16,
            ),
            Reason.OUT_OF_SCOPE_PURPOSE,
        ),
        P("revoked", lambda w: report(check(w, w.revoked), b"\x03" * 16), Reason.REVOKED),
        P(
            "not-yet-valid",
            lambda w: report(check(w, w.future), b"\x04" * 16),
            Reason.NOT_YET_VALID,
        ),
        P(
            "garbage-token",
            lambda w: verification_pb2.ReportUseRequest(
                report_id=b"\x07" * 16, token="lic1.garbage", use=photo_use().to_proto()
            ),
            Reason.MALFORMED,
        ),
        P(
            "no-use",
            lambda w: verification_pb2.ReportUseRequest(
                report_id=b"\x08" * 16,
                token=w.licence.token,
                presentation=check(w, w.licence).presentation,
            ),
            Reason.INVALID_USE,
        ),
    ],
)
def test_bad_use_reports_are_refused_with_the_first_reason(
    shared: World, case: Callable[[World], Message], reason: Reason
) -> None:
    w = shared
    msg = case(w)
    before = state(w)
    refused(reason, lambda: invoke(w.platform, "ReportUse", msg))
    assert state(w) == before


def test_a_report_id_is_for_one_licence(w: World) -> None:
    report_id = secrets.token_bytes(16)
    first = invoke(w.platform, "ReportUse", report(check(w, w.licence), report_id))
    assert (first.licence_id, first.uses) == (w.licence.licence_id, 1)
    before = state(w)
    other = report(check(w, w.voice), report_id)
    refused(Reason.IDEMPOTENCY_KEY_REUSED, lambda: invoke(w.platform, "ReportUse", other))
    assert state(w) == before
    # A genuine retry (same licence, the presentation's nonce already spent) counts once.
    again = invoke(w.platform, "ReportUse", report(check(w, w.licence), report_id))
    assert (again.licence_id, again.uses, again.recorded_at) == (
        first.licence_id,
        1,
        first.recorded_at,
    )
    assert state(w) == before
