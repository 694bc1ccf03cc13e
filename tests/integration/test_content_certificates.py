"""Content certificates against a real exchange: an advertiser gets a C2PA certificate for its
key, signs a PNG it made with a licence (``sign_content``) and fetches a licensed asset with
its Content Credentials (``fetch_asset_to``); a plain C2PA reader given the exchange's roots
(``GetIssuerKeys``) as trust anchors reports the file Trusted, signed by that key; given
another exchange's roots, not. Callers that are not advertisers get no certificate."""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import c2pa
import pytest

from licentia import content, content_certs
from licentia.clients.advertiser import Advertiser, AsyncAdvertiser, ExchangeError
from licentia.errors import LicentiaError, Reason
from licentia.examples import tiny_png
from licentia.keys import IssuerKeySet
from licentia.services.deps import Settings
from licentia.v1 import licences_pb2, records_pb2, registry_pb2
from licentia.vocabulary import DataCategory

from .exchange_harness import (
    PHOTO_SHA,
    Exchange,
    Party,
    issue_licence,
    register_holder,
    start_exchange,
    wait_for,
)

T = TypeVar("T")
ASSET = tiny_png(8, 8, seed=10)  # the holder's own photo, a real PNG this time
ASSET_SHA = hashlib.sha256(ASSET).digest()


def published(ex: Exchange) -> tuple[IssuerKeySet, list[bytes]]:
    """The exchange's issuer keys and the roots a checker keeps of what it publishes."""
    resp = ex.party().call(
        licences_pb2,
        "GetIssuerKeys",
        licences_pb2.GetIssuerKeysRequest(),
        licences_pb2.GetIssuerKeysResponse,
    )
    keys = IssuerKeySet.from_proto(resp.keys)
    return keys, content_certs.trusted_roots(resp.content_roots, keys)


def c2pa_reader(data: bytes, roots: list[bytes]) -> tuple[str, dict[str, Any]]:
    """What c2pa-python's own reader says of ``data`` with ``roots`` as its trust anchors:
    the validation state and the active manifest."""
    settings = {
        "verify": {"verify_trust": True, "ocsp_fetch": False, "remote_manifest_fetch": False},
        "trust": {"trust_anchors": content.roots_pem(roots)},
    }
    context = c2pa.Context.builder().with_settings(c2pa.Settings.from_dict(settings)).build()
    reader = c2pa.Reader("image/png", io.BytesIO(data), context=context)
    return str(reader.get_validation_state()), cast(dict[str, Any], reader.get_active_manifest())


def off_loop(real: Callable[..., T]) -> Callable[..., T]:
    """``real``, failing the test when called on a running event loop's thread."""

    def checked(*args: Any, **kw: Any) -> T:
        with pytest.raises(RuntimeError):
            asyncio.get_running_loop()
        return real(*args, **kw)

    return checked


def declare_png(holder: Party) -> None:
    holder.call(
        registry_pb2,
        "DeclareAsset",
        registry_pb2.DeclareAssetRequest(
            category=cast(Any, DataCategory.IMAGE), sha256=ASSET_SHA, label="png", content=ASSET
        ),
        registry_pb2.DeclareAssetResponse,
    )


def licensed_advertiser(
    ex: Exchange,
) -> tuple[Party, Party, Advertiser, records_pb2.LicenceRecord]:
    """A holder, and Acme Ads (its party and SDK), registered and funded, holding a licence
    for her photo and PNG."""
    holder, party = ex.party(), ex.party()
    register_holder(holder)
    declare_png(holder)
    adv = Advertiser(ex.channel(), party.key)
    adv.register("Acme Ads", "FR")
    ex.fund(party.key.public.raw)
    return holder, party, adv, issue_licence(holder, party, digests=(PHOTO_SHA, ASSET_SHA))


def test_an_advertiser_signs_content_a_c2pa_reader_trusts_under_the_exchanges_roots(
    ex: Exchange, tmp_path: Path
) -> None:
    holder, party, adv, licence = licensed_advertiser(ex)
    keys, roots = published(ex)
    assert len(roots) == len(keys) == 1

    cert = adv.content_certificate()
    assert cert.subject_key == party.key.public.text
    assert cert.organisation == "Acme Ads"
    assert cert.root == roots[0]
    assert adv.content_certificate() is cert  # kept while it lasts
    assert adv.content_certificate(refresh=True).certificate != b""

    # A creative made from the photo: signed with the licence, trusted under the roots.
    source, creative = tmp_path / "ad.png", tmp_path / "ad-signed.png"
    source.write_bytes(tiny_png())
    assert adv.sign_content(source, creative, licence.token, PHOTO_SHA) == creative
    signed = creative.read_bytes()
    state, manifest = c2pa_reader(signed, roots)
    assert state == "Trusted"
    assert manifest["signature_info"]["common_name"] == party.key.public.text
    assert manifest["signature_info"]["issuer"] == "Acme Ads"
    labels = [a["label"] for a in manifest["assertions"]]
    assert content.ASSERTION_LABEL in labels
    reading = content.read(signed, None, roots)
    assert reading.state == "trusted"
    assert reading.signer == party.key.public.text
    assert reading.assertion == content.LicenceAssertion.for_token(licence.token, PHOTO_SHA)

    # Another exchange's roots anchor nothing here: the signature holds, untrusted.
    other = start_exchange(tmp_path / "other")
    try:
        _, other_roots = published(other)
    finally:
        other.stop()
    assert c2pa_reader(signed, other_roots)[0] == "Valid"
    assert content.read(signed, None, other_roots).state == "valid_untrusted"

    # The fetched asset itself, written with its Content Credentials; or bare on request.
    fetched = adv.fetch_asset_to(licence.licence_id, ASSET_SHA, tmp_path / "asset.png")
    state, manifest = c2pa_reader(fetched.read_bytes(), roots)
    assert state == "Trusted"
    assert content.read(fetched.read_bytes(), None, roots).assertion == (
        content.LicenceAssertion.for_token(licence.token, ASSET_SHA)
    )
    bare = adv.fetch_asset_to(licence.licence_id, ASSET_SHA, tmp_path / "b.png", credentials=False)
    assert bare.read_bytes() == ASSET

    # What cannot be signed is refused before any file is written.
    text = tmp_path / "note.txt"
    text.write_text("not an image")
    refusals: list[tuple[Any, Reason]] = [
        (
            lambda: adv.sign_content(text, tmp_path / "x", licence.token, PHOTO_SHA),
            Reason.MALFORMED,
        ),
        (
            lambda: adv.sign_content(source, tmp_path / "x", licence.token, b"\x00" * 32),
            Reason.ASSET_MISMATCH,
        ),
        (
            lambda: adv.fetch_asset_to(licence.licence_id, PHOTO_SHA, tmp_path / "x"),
            Reason.MALFORMED,  # the harness's photo is no real image: no credentials for it
        ),
    ]
    for call, reason in refusals:
        with pytest.raises(LicentiaError) as e:
            call()
        assert e.value.reason == reason
    assert not (tmp_path / "x").exists()
    # A licence that counts and prices its uses: refused before any call (no certificate
    # asked, no asset fetched), with the reason and why (token-format §12.2).
    counted = issue_licence(
        holder, party, digests=(PHOTO_SHA, ASSET_SHA), max_uses=2, price_per_use=10
    )
    fresh = Advertiser(ex.channel(), party.key)  # no certificate kept: a call would show
    for call in (
        lambda: fresh.sign_content(source, tmp_path / "x", counted.token, PHOTO_SHA),
        lambda: adv.fetch_asset_to(counted.licence_id, ASSET_SHA, tmp_path / "x"),
    ):
        with pytest.raises(LicentiaError) as e:
            call()
        assert e.value.reason == Reason.CONTENT_USES_COUNTED
        assert str(e.value) == content.COUNTED_MESSAGE
    assert fresh._content_certificate is None  # no certificate was asked for
    assert not (tmp_path / "x").exists()
    # Another advertiser cannot sign with this licence: the checker would find the signer
    # is not the licensee.
    rival = Advertiser(ex.channel(), ex.party().key)
    rival.register("Rival", "FR")
    with pytest.raises(LicentiaError) as e:
        rival.sign_content(source, tmp_path / "x", licence.token, PHOTO_SHA)
    assert e.value.reason == Reason.WRONG_LICENSEE

    # The key retires: its root is published anew (its window ended), both roots are kept,
    # the file signed before stays trusted, and new certificates come from the new key.
    ex.app.deps.keyring.rotate(ex.app.deps.clock.now())
    keys, roots = published(ex)
    assert len(roots) == len(keys) == 2
    assert cert.root not in roots
    assert c2pa_reader(signed, roots)[0] == "Trusted"
    # (the new key signs from the next second on)
    wait_for(lambda: adv.content_certificate(refresh=True).issuer_key_id != cert.issuer_key_id, 3)
    assert adv.content_certificate().root in roots


def test_only_a_registered_advertiser_gets_a_certificate(
    ex: Exchange, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stranger = Advertiser(ex.channel(), ex.party().key)
    with pytest.raises(ExchangeError) as e:
        stranger.content_certificate()
    assert e.value.reason == Reason.UNKNOWN_KEY
    holder = ex.party()
    register_holder(holder)
    with pytest.raises(ExchangeError) as e:
        Advertiser(ex.channel(), holder.key).content_certificate()
    assert e.value.reason == Reason.NOT_OWNER

    # The asyncio client: the same certificate, kept; the same signed files. Its
    # certificate work runs off the event loop (issue 22, second review).
    declare_png(holder)
    party = ex.party()

    async def asynchronously() -> None:
        async with AsyncAdvertiser.connect(ex.address, party.key) as adv:
            await adv.register("Acme Ads", "FR")
            real = content_certs.trusted_roots
            monkeypatch.setattr(content_certs, "trusted_roots", off_loop(real))
            cert = await adv.content_certificate()
            assert cert.subject_key == party.key.public.text
            assert await adv.content_certificate() is cert
            monkeypatch.undo()
            ex.fund(party.key.public.raw)
            licence = issue_licence(holder, party, digests=(PHOTO_SHA, ASSET_SHA))
            source = tmp_path / "ad.png"
            source.write_bytes(tiny_png())
            made = await adv.sign_content(source, tmp_path / "signed.png", licence.token, PHOTO_SHA)
            fetched = await adv.fetch_asset_to(licence.licence_id, ASSET_SHA, tmp_path / "a.png")
            _, roots = published(ex)
            for path in (made, fetched):
                reading = content.read(path.read_bytes(), None, roots)
                assert reading.state == "trusted"
                assert reading.signer == party.key.public.text
                assert reading.assertion is not None
                assert reading.assertion.token == licence.token
            counted = issue_licence(holder, party, digests=(PHOTO_SHA, ASSET_SHA), max_uses=1)
            for refused in (
                adv.sign_content(source, tmp_path / "x.png", counted.token, PHOTO_SHA),
                adv.fetch_asset_to(counted.licence_id, ASSET_SHA, tmp_path / "x.png"),
            ):
                with pytest.raises(LicentiaError) as e:
                    await refused
                assert e.value.reason == Reason.CONTENT_USES_COUNTED
            assert not (tmp_path / "x.png").exists()

    asyncio.run(asynchronously())


def test_the_sdk_renews_a_certificate_whose_issuer_key_was_withdrawn(
    ex: Exchange, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After ``withdraw-key`` the checkers drop the key's root: the SDK no longer signs
    under the certificate it kept from that key (it did: every file came out untrusted,
    with no error), it fetches one from the new key, sync and asyncio; and it signs nothing
    under a certificate no published root anchors."""
    _, party, adv, licence = licensed_advertiser(ex)
    source = tmp_path / "ad.png"
    source.write_bytes(tiny_png())
    keyring, clock = ex.app.deps.keyring, ex.app.deps.clock
    kept = adv.content_certificate()

    keyring.withdraw(kept.issuer_key_id, clock.now())
    made = adv.sign_content(source, tmp_path / "after.png", licence.token, PHOTO_SHA)
    _, roots = published(ex)
    assert content.read(made.read_bytes(), None, roots).state == "trusted"
    renewed = adv.content_certificate()
    assert renewed.issuer_key_id != kept.issuer_key_id
    assert renewed.root in roots

    async def asynchronously() -> None:
        async with AsyncAdvertiser.connect(ex.address, party.key) as aio:
            first = await aio.content_certificate()
            assert await aio.content_certificate() is first  # kept while anchored
            keyring.withdraw(first.issuer_key_id, clock.now())
            out = await aio.sign_content(source, tmp_path / "aio.png", licence.token, PHOTO_SHA)
            _, roots = published(ex)
            assert content.read(out.read_bytes(), None, roots).state == "trusted"
            assert (await aio.content_certificate()).issuer_key_id != first.issuer_key_id

    asyncio.run(asynchronously())

    # An exchange that publishes no root for its key: no file is signed.
    monkeypatch.setattr(keyring, "content_roots", list)
    with pytest.raises(ExchangeError) as e:
        adv.sign_content(source, tmp_path / "none.png", licence.token, PHOTO_SHA)
    assert e.value.reason == Reason.CONTENT_CREDENTIAL_UNTRUSTED
    assert not (tmp_path / "none.png").exists()


@pytest.mark.parametrize("term_days", [30, 1000])
def test_the_certificate_life_is_the_published_content_term(term_days: int, tmp_path: Path) -> None:
    """Issue 22 (second review): an exchange's certificates last twice its content term (its
    longest licence term, capped at a year) and GetIssuerKeys publishes that term, which
    checkers drop retired roots with: with 30 days a retired secret's certificates are
    trusted for 60 days at most (not 730); with 1000 days no certificate outlives the
    checkers' window (730 days, not 2000)."""
    day = 86400
    settings = Settings(heartbeat_seconds=0.5, max_term_seconds=term_days * day)
    ex = start_exchange(tmp_path / "ex", settings=settings)
    try:
        party = ex.party()
        adv = Advertiser(ex.channel(), party.key)
        adv.register("Acme Ads", "FR")
        cert = adv.content_certificate()
        answer = ex.party().call(
            licences_pb2,
            "GetIssuerKeys",
            licences_pb2.GetIssuerKeysRequest(),
            licences_pb2.GetIssuerKeysResponse,
        )
    finally:
        ex.stop()
    term = min(term_days, 365) * day
    assert answer.content_term_seconds == term
    backdated = cert.not_after - cert.not_before - 2 * term  # not before the root's start
    assert 0 <= backdated <= content_certs.BACKDATE_SECONDS
