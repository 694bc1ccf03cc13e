"""The exchange end to end over real channels: register, offer, request, approve, verify,
fetch, report uses, revoke, watch, erase, export, restart."""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path

import pytest

from licentia import keys
from licentia.errors import Reason
from licentia.keys import IssuerKeySet
from licentia.token import parse_token
from licentia.v1 import (
    exchange_pb2,
    licences_pb2,
    records_pb2,
    registry_pb2,
    verification_pb2,
)
from licentia.vocabulary import DataCategory, Purpose

from .exchange_harness import (
    PHOTO,
    PHOTO_SHA,
    Exchange,
    ExchangeError,
    Party,
    ad_scope,
    approve_request,
    photo_use,
    reasons,
    register_advertiser,
    register_holder,
    register_platform,
    registered,
    request_licence,
    start_exchange,
    verify,
    wire,
)

#: The tests that run on both stores (the ``ex`` fixture, tests/integration/conftest.py).
BOTH_STORES = pytest.mark.parametrize("ex", ["sqlite", "postgres"], indirect=True)


@pytest.fixture
def cast(ex: Exchange) -> tuple[Party, Party, Party]:
    """A registered holder (with assets and terms), advertiser and platform."""
    holder, adv, platform = registered(ex)
    return holder, adv, platform


def _issued(holder: Party, adv: Party, **kw: object) -> records_pb2.LicenceRecord:
    req = request_licence(adv, holder.key.public.raw, **kw).request  # type: ignore[arg-type]
    assert req.state == records_pb2.REQUEST_STATE_PENDING
    return approve_request(holder, req).licence


def _reason(e: pytest.ExceptionInfo[ExchangeError]) -> str:
    return str(e.value.reason.name)


@BOTH_STORES
def test_the_whole_story(ex: Exchange, cast: tuple[Party, Party, Party]) -> None:
    holder, adv, platform = cast
    offers = adv.call(
        exchange_pb2,
        "SearchOffers",
        exchange_pb2.SearchOffersRequest(purpose=wire(Purpose.ADVERTISING)[0], territory="FR"),
        exchange_pb2.SearchOffersResponse,
    ).offers
    (offer,) = offers
    # The offer names nobody: the advertiser's own references, not her key, handle or name.
    assert len(offer.offer_ref) == 32
    assert offer.display_name == ""
    assert {DataCategory(a.category) for a in offer.offered_assets} == {
        DataCategory.IMAGE,
        DataCategory.VOICE,
    }

    pending = adv.call(
        exchange_pb2,
        "RequestLicence",
        exchange_pb2.RequestLicenceRequest(
            offer_ref=offer.offer_ref,
            asset_refs=[
                a.asset_ref for a in offer.offered_assets if int(a.category) == DataCategory.IMAGE
            ],
            scope=ad_scope(),
            not_after=int(time.time()) + 30 * 86400,
            offered_price_minor=30 * 100,
        ),
        exchange_pb2.RequestLicenceResponse,
    ).request
    assert pending.offer_ref == offer.offer_ref
    assert pending.holder_key == b""
    inbox = holder.call(
        exchange_pb2, "ListInbox", exchange_pb2.ListInboxRequest(), exchange_pb2.ListInboxResponse
    ).requests
    assert [r.request_id for r in inbox] == [pending.request_id]
    assert inbox[0].advertiser_organisation == "Acme Ads"

    licence = approve_request(holder, pending).licence
    assert licence.state == records_pb2.LICENCE_STATE_ACTIVE
    token = licence.token
    keyset = IssuerKeySet.from_proto(
        holder.call(
            licences_pb2,
            "GetIssuerKeys",
            licences_pb2.GetIssuerKeysRequest(),
            licences_pb2.GetIssuerKeysResponse,
        ).keys
    )
    assert parse_token(token).verify(keyset).licence_id == licence.licence_id

    # The advertiser sees it; the platform allows an in-scope use and denies others.
    got = adv.call(
        licences_pb2,
        "GetLicence",
        licences_pb2.GetLicenceRequest(licence_id=licence.licence_id),
        licences_pb2.GetLicenceResponse,
    ).licence
    assert got.token == token
    assert verify(platform, adv, token, photo_use()).allowed
    denied = verify(platform, adv, token, photo_use(Purpose.POLITICAL_CAMPAIGN))
    assert not denied.allowed
    assert reasons(denied) == [Reason.OUT_OF_SCOPE_PURPOSE]
    elsewhere = verify(platform, adv, token, photo_use(where="US"))
    assert reasons(elsewhere) == [Reason.OUT_OF_SCOPE_TERRITORY]
    stolen = verify(platform, ex.party(), token, photo_use())
    assert Reason.WRONG_LICENSEE in reasons(stolen)

    # The licensee fetches the bytes; the holder sees the access.
    content = adv.call(
        licences_pb2,
        "FetchAsset",
        licences_pb2.FetchAssetRequest(licence_id=licence.licence_id, sha256=PHOTO_SHA),
        licences_pb2.FetchAssetResponse,
    ).content
    assert content == PHOTO
    accesses = holder.call(
        licences_pb2,
        "ListAccesses",
        licences_pb2.ListAccessesRequest(),
        licences_pb2.ListAccessesResponse,
    ).accesses
    assert [(a.sha256, a.licence_id) for a in accesses] == [(PHOTO_SHA, licence.licence_id)]

    # Revocation: a subscriber sees it, the receipt verifies, the platform denies.
    seen: list[licences_pb2.WatchRevocationsResponse] = []
    ready = threading.Event()

    def watch() -> None:
        for msg in holder.stream(
            licences_pb2,
            "WatchRevocations",
            licences_pb2.WatchRevocationsRequest(after_sequence=0),
            licences_pb2.WatchRevocationsResponse,
        ):
            ready.set()
            seen.append(msg)
            if msg.HasField("event"):
                return

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    receipt = holder.call(
        licences_pb2,
        "RevokeLicence",
        licences_pb2.RevokeLicenceRequest(licence_id=licence.licence_id),
        licences_pb2.RevokeLicenceResponse,
    )
    t.join(timeout=5)
    assert seen
    assert seen[-1].HasField("event")
    assert seen[-1].event.status_index == parse_token(token).status_index
    r = receipt.receipt
    issuer = keyset.resolve(r.issuer_key_id)
    assert issuer is not None
    assert issuer.public.verify(keys.TERMINATION_RECEIPT, r.receipt, r.signature)
    assert receipt.licence.state == records_pb2.LICENCE_STATE_REVOKED
    after = verify(platform, adv, token, photo_use())
    assert reasons(after) == [Reason.REVOKED]
    with pytest.raises(ExchangeError) as e:
        adv.call(
            licences_pb2,
            "FetchAsset",
            licences_pb2.FetchAssetRequest(licence_id=licence.licence_id, sha256=PHOTO_SHA),
            licences_pb2.FetchAssetResponse,
        )
    assert _reason(e) == "LICENCE_NOT_ACTIVE"

    export = holder.call(
        registry_pb2,
        "ExportData",
        registry_pb2.ExportDataRequest(),
        registry_pb2.ExportDataResponse,
    )
    assert [x.licence_id for x in export.licences] == [licence.licence_id]
    assert len(export.accesses) == 1
    assert len(export.assets) == 2


@BOTH_STORES
def test_licence_and_request_ids_begin_with_the_second_they_were_made(
    ex: Exchange, cast: tuple[Party, Party, Party]
) -> None:
    """Ids in time order (docs/token-format.md §3.1): a request's id starts with its
    ``created_at``, its licence's with the ``issued_at`` its claims state, each as 4 bytes
    big-endian; two made in the same second still differ (12 random bytes)."""
    holder, adv, _ = cast
    before = int(time.time())
    first = request_licence(adv, holder.key.public.raw).request
    second = request_licence(adv, holder.key.public.raw).request
    after = int(time.time())
    for req in (first, second):
        assert len(req.request_id) == 16
        assert int.from_bytes(req.request_id[:4], "big") == req.created_at
        assert before <= req.created_at <= after
    assert first.request_id[4:] != second.request_id[4:]
    licence = approve_request(holder, first).licence
    issued_at = parse_token(licence.token).claims.issued_at
    assert len(licence.licence_id) == 16
    assert int.from_bytes(licence.licence_id[:4], "big") == issued_at
    assert before <= issued_at <= int(time.time())


@BOTH_STORES
def test_exclusive_race_issues_exactly_one(ex: Exchange, cast: tuple[Party, Party, Party]) -> None:
    holder, _, _ = cast
    advertisers = [ex.party() for _ in range(16)]
    for i, a in enumerate(advertisers):
        register_advertiser(a, f"Buyer {i}")
    pending = [
        request_licence(a, holder.key.public.raw, exclusive=True).request for a in advertisers
    ]
    results: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(pending))

    def approve_one(req: records_pb2.LicenceRequest) -> None:
        barrier.wait()
        try:
            approve_request(holder, req)
            outcome = "ISSUED"
        except ExchangeError as e:
            outcome = e.reason.name
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=approve_one, args=(r,)) for r in pending]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert results.count("ISSUED") == 1
    assert sorted(set(results)) == ["EXCLUSIVITY_CONFLICT", "ISSUED"]
    licences = holder.call(
        licences_pb2,
        "ListLicences",
        licences_pb2.ListLicencesRequest(),
        licences_pb2.ListLicencesResponse,
    ).licences
    assert len(licences) == 1


def test_requests_outside_terms_are_refused_and_nothing_is_stored(
    ex: Exchange, cast: tuple[Party, Party, Party]
) -> None:
    holder, adv, _ = cast
    from .exchange_harness import ad_scope

    cases = [
        ({"price": 1}, "PRICE_TOO_LOW"),
        ({"days": 200}, "INVALID_TERM"),
        ({"scope": ad_scope((Purpose.DIRECT_MARKETING,))}, "OUTSIDE_TERMS"),
        ({"scope": ad_scope((Purpose.RECRUITMENT,))}, "OUTSIDE_TERMS"),
        ({"exclusive": True, "price": 3000}, "PRICE_TOO_LOW"),
    ]
    for kw, reason in cases:
        with pytest.raises(ExchangeError) as e:
            request_licence(adv, holder.key.public.raw, **kw)  # type: ignore[arg-type]
        assert _reason(e) == reason, kw
    inbox = holder.call(
        exchange_pb2,
        "ListInbox",
        exchange_pb2.ListInboxRequest(include_answered=True),
        exchange_pb2.ListInboxResponse,
    )
    assert list(inbox.requests) == []
    holder.call(
        registry_pb2,
        "SetObjection",
        registry_pb2.SetObjectionRequest(objecting=True),
        registry_pb2.SetObjectionResponse,
    )
    with pytest.raises(ExchangeError) as e:
        request_licence(adv, holder.key.public.raw)
    assert _reason(e) == "OPTED_OUT"


@BOTH_STORES
def test_erasure_revokes_live_licences_and_tells_the_licensee(
    ex: Exchange, cast: tuple[Party, Party, Party]
) -> None:
    holder, adv, platform = cast
    licence = _issued(holder, adv)
    events = adv.stream(
        licences_pb2,
        "WatchLicenceEvents",
        licences_pb2.WatchLicenceEventsRequest(),
        licences_pb2.WatchLicenceEventsResponse,
    )
    erased = holder.call(
        registry_pb2,
        "EraseAssets",
        registry_pb2.EraseAssetsRequest(sha256=[PHOTO_SHA]),
        registry_pb2.EraseAssetsResponse,
    )
    assert erased.erased == 1
    assert list(erased.revoked_licence_ids) == [licence.licence_id]
    for ev in events:
        if ev.licence_id:
            assert ev.licence_id == licence.licence_id
            assert ev.cause == licences_pb2.TERMINATION_CAUSE_ERASED
            break
    assert reasons(verify(platform, adv, licence.token, photo_use())) == [Reason.REVOKED]


def test_restart_keeps_everything_acknowledged(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ex = start_exchange(data)
    try:
        holder, adv = ex.party(1), ex.party(2)
        register_holder(holder)
        register_advertiser(adv)
        licence = _issued(holder, adv)
        holder.call(
            licences_pb2,
            "RevokeLicence",
            licences_pb2.RevokeLicenceRequest(licence_id=licence.licence_id),
            licences_pb2.RevokeLicenceResponse,
        )
        second = _issued(holder, adv)
    finally:
        ex.stop()
    keyfiles = list((data / "issuer-keys").glob("*.key"))
    assert len(keyfiles) == 1
    assert stat.S_IMODE(os.stat(keyfiles[0]).st_mode) == 0o600
    ex = start_exchange(data)
    try:
        holder, adv = ex.party(1), ex.party(2)
        got = {
            x.licence_id: x.state
            for x in holder.call(
                licences_pb2,
                "ListLicences",
                licences_pb2.ListLicencesRequest(),
                licences_pb2.ListLicencesResponse,
            ).licences
        }
        assert got == {
            licence.licence_id: records_pb2.LICENCE_STATE_REVOKED,
            second.licence_id: records_pb2.LICENCE_STATE_ACTIVE,
        }
        platform = ex.party()
        register_platform(platform)
        assert reasons(verify(platform, adv, licence.token, photo_use())) == [Reason.REVOKED]
        assert verify(platform, adv, second.token, photo_use()).allowed
    finally:
        ex.stop()


@BOTH_STORES
def test_use_reports_count_once_and_stop_at_max_uses(
    ex: Exchange, cast: tuple[Party, Party, Party]
) -> None:
    holder, adv, platform = cast
    licence = _issued(holder, adv, max_uses=2)
    from licentia.presentation import present

    def report(report_id: bytes, where: str = "FR") -> verification_pb2.ReportUseResponse:
        use = photo_use(where=where)
        pres = present(adv.key, licence.licence_id, "photoshare", use, int(time.time()))
        return platform.call(
            verification_pb2,
            "ReportUse",
            verification_pb2.ReportUseRequest(
                report_id=report_id, token=licence.token, presentation=pres, use=use.to_proto()
            ),
            verification_pb2.ReportUseResponse,
        )

    assert report(b"\x01" * 16).uses == 1
    assert report(b"\x01" * 16).uses == 1  # a retry (presented anew) counts once
    # The same id for another use is not a retry: refused, nothing counted.
    with pytest.raises(ExchangeError) as e:
        report(b"\x01" * 16, where="DE")
    assert _reason(e) == "IDEMPOTENCY_KEY_REUSED"
    assert report(b"\x02" * 16).uses == 2
    with pytest.raises(ExchangeError) as e:
        report(b"\x03" * 16)
    assert _reason(e) == "USES_EXHAUSTED"
    assert not verify(platform, adv, licence.token, photo_use()).allowed


def test_rectifying_an_asset_without_bytes_keeps_the_stored_bytes(
    ex: Exchange, cast: tuple[Party, Party, Party]
) -> None:
    holder, adv, _ = cast
    holder.call(
        registry_pb2,
        "DeclareAsset",
        registry_pb2.DeclareAssetRequest(
            category=wire(DataCategory.IMAGE)[0], sha256=PHOTO_SHA, label="new label"
        ),
        registry_pb2.DeclareAssetResponse,
    )
    assets = holder.call(
        registry_pb2,
        "ListAssets",
        registry_pb2.ListAssetsRequest(),
        registry_pb2.ListAssetsResponse,
    ).assets
    photo = next(a for a in assets if a.sha256 == PHOTO_SHA)
    assert (photo.label, photo.has_content, photo.content_size) == ("new label", True, len(PHOTO))
    licence = _issued(holder, adv)
    content = adv.call(
        licences_pb2,
        "FetchAsset",
        licences_pb2.FetchAssetRequest(licence_id=licence.licence_id, sha256=PHOTO_SHA),
        licences_pb2.FetchAssetResponse,
    ).content
    assert content == PHOTO


def test_report_ids_belong_to_their_platform(
    ex: Exchange, cast: tuple[Party, Party, Party]
) -> None:
    holder, adv, platform = cast
    other = ex.party()
    register_platform(other, "videoshare")
    licence = _issued(holder, adv)
    from licentia.presentation import present

    def report(by: Party, audience: str) -> verification_pb2.ReportUseResponse:
        use = photo_use()
        pres = present(adv.key, licence.licence_id, audience, use, int(time.time()))
        return by.call(
            verification_pb2,
            "ReportUse",
            verification_pb2.ReportUseRequest(
                report_id=b"\x07" * 16, token=licence.token, presentation=pres, use=use.to_proto()
            ),
            verification_pb2.ReportUseResponse,
        )

    assert report(platform, "photoshare").uses == 1
    # The same id from another platform is that platform's own report: a second use.
    assert report(other, "videoshare").uses == 2


def test_a_licensee_far_behind_still_hears_of_every_termination(
    ex: Exchange, cast: tuple[Party, Party, Party], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The licensee's feed never skips to a snapshot: a snapshot cannot say whose licences
    ended (found while building the advertiser SDK)."""
    from licentia.services import hub

    monkeypatch.setattr(hub, "MAX_CATCH_UP", 1)
    holder, adv, _ = cast
    ids = []
    for _ in range(3):
        licence = _issued(holder, adv)
        holder.call(
            licences_pb2,
            "RevokeLicence",
            licences_pb2.RevokeLicenceRequest(licence_id=licence.licence_id),
            licences_pb2.RevokeLicenceResponse,
        )
        ids.append(licence.licence_id)
    heard = []
    for ev in adv.stream(
        licences_pb2,
        "WatchLicenceEvents",
        licences_pb2.WatchLicenceEventsRequest(after_sequence=0),
        licences_pb2.WatchLicenceEventsResponse,
    ):
        if not ev.licence_id:
            assert ev.sequence == 3  # a heartbeat says how far the exchange has got
            break
        heard.append(ev.licence_id)
    assert heard == ids
