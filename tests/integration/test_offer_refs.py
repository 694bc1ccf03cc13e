"""Offers name nobody: each advertiser sees its own references to a holder and her assets,
her display name only when she chose to show it, and before her consent nothing that
carries her account key (docs/privacy.md)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest

from licentia.errors import Reason
from licentia.token import parse_token
from licentia.v1 import exchange_pb2, ledger_pb2, records_pb2, registry_pb2
from licentia.vocabulary import DataCategory

from .exchange_harness import (
    PHOTO_SHA,
    VOICE_SHA,
    Exchange,
    ExchangeError,
    Party,
    approve_request,
    register_advertiser,
    register_holder,
    request_licence,
    start_exchange,
)


def _search(adv: Party, **kw: Any) -> exchange_pb2.SearchOffersResponse:
    return adv.call(
        exchange_pb2,
        "SearchOffers",
        exchange_pb2.SearchOffersRequest(**kw),
        exchange_pb2.SearchOffersResponse,
    )


def _ask(adv: Party, offer_ref: bytes, asset_refs: list[bytes]) -> records_pb2.LicenceRequest:
    return request_licence(adv, b"", refs=(offer_ref, asset_refs)).request


def _photo(offer: exchange_pb2.Offer) -> bytes:
    (photo,) = [a.asset_ref for a in offer.offered_assets if int(a.category) == DataCategory.IMAGE]
    return photo


def _inbox(holder: Party) -> list[records_pb2.LicenceRequest]:
    return list(
        holder.call(
            exchange_pb2,
            "ListInbox",
            exchange_pb2.ListInboxRequest(include_answered=True),
            exchange_pb2.ListInboxResponse,
        ).requests
    )


def _update(party: Party, name: str, show: bool | None) -> records_pb2.Profile:
    req = registry_pb2.UpdateProfileRequest(display_name=name)
    if show is not None:
        req.show_display_name = show
    return party.call(
        registry_pb2, "UpdateProfile", req, registry_pb2.UpdateProfileResponse
    ).profile


def _balance(adv: Party) -> int:
    return int(
        adv.call(
            ledger_pb2,
            "GetStatement",
            ledger_pb2.GetStatementRequest(page_size=1),
            ledger_pb2.GetStatementResponse,
        ).available_minor
    )


def _shown(adv: Party) -> list[str]:
    return [o.display_name for o in _search(adv).offers]


def test_two_advertisers_see_unrelated_references_and_nothing_that_names_her(
    ex: Exchange,
) -> None:
    holder, acme, other = ex.party(), ex.party(), ex.party()
    register_holder(holder, "alice")
    register_advertiser(acme, "Acme Ads")
    register_advertiser(other, "Other Ads")
    seen = {}
    for adv in (acme, other):
        answer = _search(adv)
        (offer,) = answer.offers
        raw = answer.SerializeToString()
        # Neither her account key, her handle, her display name (not chosen), a plain
        # digest, nor when she last changed her terms (the same instant for everyone).
        for named in (holder.key.public.raw, b"alice", b"Alice", PHOTO_SHA, VOICE_SHA):
            assert named not in raw
        assert offer.terms.updated_at == 0
        assert len(offer.offer_ref) == 32
        assert [
            (DataCategory(a.category), a.stored, len(a.asset_ref)) for a in offer.offered_assets
        ] == [
            (DataCategory.IMAGE, True, 16),
            (DataCategory.VOICE, False, 16),
        ]
        assert _search(adv).offers[0] == offer  # the same references at every search
        seen[adv.key.public.raw] = offer
    a, b = seen[acme.key.public.raw], seen[other.key.public.raw]
    assert a.offer_ref != b.offer_ref
    assert not {x.asset_ref for x in a.offered_assets} & {x.asset_ref for x in b.offered_assets}


def test_the_display_name_is_shown_only_when_she_chose_it_and_the_handle_never(
    ex: Exchange,
) -> None:
    alice, bob, adv = ex.party(), ex.party(), ex.party()
    register_holder(alice, "alice")
    register_advertiser(adv)
    assert _shown(adv) == [""]  # registered with a name, not chosen to show it
    assert _update(alice, "Alice", True).show_display_name
    assert _shown(adv) == ["Alice"]
    # A change of the name alone keeps her choice; she can take it back.
    assert _update(alice, "Alice M.", None).show_display_name
    assert _shown(adv) == ["Alice M."]
    assert not _update(alice, "Alice M.", False).show_display_name
    assert _shown(adv) == [""]
    # Chosen at registration; the handle is never shown.
    bob.call(
        registry_pb2,
        "RegisterHolder",
        registry_pb2.RegisterHolderRequest(
            handle="bob", display_name="Bob", show_display_name=True
        ),
        registry_pb2.RegisterHolderResponse,
    )
    bob.call(
        registry_pb2,
        "SetTerms",
        registry_pb2.SetTermsRequest(
            terms=alice.call(
                registry_pb2,
                "GetTerms",
                registry_pb2.GetTermsRequest(),
                registry_pb2.GetTermsResponse,
            ).terms
        ),
        registry_pb2.SetTermsResponse,
    )
    answer = _search(adv)
    assert [o.display_name for o in answer.offers] == ["", "Bob"]
    assert b"bob" not in answer.SerializeToString()
    # Only a holder's name is shown in offers: an advertiser's choice is refused, unchanged.
    with pytest.raises(ExchangeError) as e:
        _update(adv, "Renamed Ads", True)
    assert e.value.reason == Reason.INVALID_REQUEST
    profile = adv.call(
        registry_pb2,
        "GetProfile",
        registry_pb2.GetProfileRequest(),
        registry_pb2.GetProfileResponse,
    ).profile
    assert profile.display_name == "Acme Ads"
    assert not profile.show_display_name


def test_a_reference_of_another_advertiser_or_a_made_up_one_is_not_found(ex: Exchange) -> None:
    alice, bob, acme, other = ex.party(), ex.party(), ex.party(), ex.party()
    register_holder(alice, "alice")
    register_holder(bob, "bob")
    register_advertiser(acme, "Acme Ads")
    register_advertiser(other, "Other Ads")
    # Pages: each token is the caller's own.
    first = _search(acme, page_size=1)
    second = _search(acme, page_size=1, page_token=first.next_page_token)
    assert len(first.next_page_token) <= 64
    last = _search(acme, page_size=1, page_token=second.next_page_token)
    assert (len(last.offers), last.next_page_token) == (0, "")
    mine = [*first.offers, *second.offers]
    assert [o.offer_ref for o in mine] == [o.offer_ref for o in _search(acme).offers]
    for token in (first.next_page_token, "x" * 43, "not a token"):
        with pytest.raises(ExchangeError) as e:
            _search(other, page_size=1, page_token=token)
        assert e.value.reason == Reason.INVALID_REQUEST
    theirs = _search(other).offers
    balances = (_balance(acme), _balance(other))
    offer = mine[0]
    refused = [
        (acme, theirs[0].offer_ref, [_photo(offer)]),  # the other advertiser's holder ref
        (other, offer.offer_ref, [_photo(theirs[0])]),  # acme's ref, sent by the other
        (acme, secrets.token_bytes(32), [_photo(offer)]),  # made up
        (acme, offer.offer_ref[:16], [_photo(offer)]),  # cut short
        (acme, b"", [_photo(offer)]),
        (acme, alice.key.public.raw, [_photo(offer)]),  # her account key: no probing
        (acme, offer.offer_ref, [_photo(theirs[0])]),  # another advertiser's asset ref
        (acme, offer.offer_ref, [_photo(mine[1])]),  # an asset ref of another holder
        (acme, offer.offer_ref, [PHOTO_SHA]),  # a plain digest
        (acme, offer.offer_ref, [secrets.token_bytes(16)]),
    ]
    for adv, offer_ref, asset_refs in refused:
        with pytest.raises(ExchangeError) as e:
            _ask(adv, offer_ref, asset_refs)
        assert e.value.reason == Reason.NOT_FOUND
    # Nothing was stored: no request reached either holder, nothing was escrowed.
    assert _inbox(alice) == []
    assert _inbox(bob) == []
    assert (_balance(acme), _balance(other)) == balances


def test_a_request_by_reference_is_issued_and_its_advertiser_never_sees_her_key(
    tmp_path: Path,
) -> None:
    ex = start_exchange(tmp_path / "data")
    try:
        holder, adv = ex.party(1), ex.party(2)
        register_holder(holder, "alice")
        register_advertiser(adv)
        (offer,) = _search(adv).offers
        asked = _ask(adv, offer.offer_ref, [_photo(offer)])
        assert asked.state == records_pb2.REQUEST_STATE_PENDING
        views = [asked]
        views.append(
            adv.call(
                exchange_pb2,
                "GetRequest",
                exchange_pb2.GetRequestRequest(request_id=asked.request_id),
                exchange_pb2.GetRequestResponse,
            ).request
        )
        views.append(
            next(
                adv.stream(
                    exchange_pb2,
                    "WatchRequest",
                    exchange_pb2.WatchRequestRequest(request_id=asked.request_id),
                    exchange_pb2.WatchRequestResponse,
                )
            ).request
        )
        (seen_by_her,) = _inbox(holder)
        assert seen_by_her.holder_key == holder.key.public.raw
        assert seen_by_her.offer_ref == b""
        licence = approve_request(holder, seen_by_her).licence
        assert licence.state == records_pb2.LICENCE_STATE_ACTIVE
        token = parse_token(licence.token)  # v2: the photo, salted for this licence
        assert token.asset_category(PHOTO_SHA) == DataCategory.IMAGE
        assert PHOTO_SHA not in token.asset_categories
        assert list(licence.asset_sha256) == [PHOTO_SHA]  # told to the licence's parties
        views.append(
            adv.call(
                exchange_pb2,
                "GetRequest",
                exchange_pb2.GetRequestRequest(request_id=asked.request_id),
                exchange_pb2.GetRequestResponse,
            ).request
        )
        withdrawn = _ask(adv, offer.offer_ref, [_photo(offer)])
        views.append(
            adv.call(
                exchange_pb2,
                "WithdrawRequest",
                exchange_pb2.WithdrawRequestRequest(request_id=withdrawn.request_id),
                exchange_pb2.WithdrawRequestResponse,
            ).request
        )
        assert [v.state for v in views] == [
            records_pb2.REQUEST_STATE_PENDING,
            records_pb2.REQUEST_STATE_PENDING,
            records_pb2.REQUEST_STATE_PENDING,
            records_pb2.REQUEST_STATE_ISSUED,
            records_pb2.REQUEST_STATE_WITHDRAWN,
        ]
        for view in views:
            assert view.offer_ref == offer.offer_ref
            assert view.holder_key == b""
    finally:
        ex.stop()
    # The references survive a restart: the secret is kept in the store.
    ex = start_exchange(tmp_path / "data")
    try:
        again = ex.party(2)
        assert _search(again).offers[0] == offer
        assert _ask(again, offer.offer_ref, [_photo(offer)]).offer_ref == offer.offer_ref
    finally:
        ex.stop()
