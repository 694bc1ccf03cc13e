"""The advertiser SDK, both flavours, against a real exchange on 127.0.0.1:0: register,
search, request, wait for the holder's consent, fetch, present, hear of terminations, and
the error family with the server's reasons. Also runs the package docstring's example."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

import licentia.clients.advertiser as advertiser_pkg
from licentia.clients.advertiser import (
    Advertiser,
    AsyncAdvertiser,
    DecisionTimeout,
    ExchangeError,
    ExchangeUnavailable,
    LicenceRecord,
    LicenceRequest,
    LicenceState,
    Offer,
    OfferedAsset,
    RequestState,
    Termination,
    TerminationCause,
)
from licentia.clients.keyfile import seed_text
from licentia.errors import Reason
from licentia.keys import PrivateKey
from licentia.v1 import exchange_pb2, licences_pb2, records_pb2, registry_pb2, verification_pb2
from licentia.vocabulary import DataCategory, Medium, Purpose

from .exchange_harness import (
    DAY,
    FUNDS,
    PHOTO,
    PHOTO_SHA,
    Exchange,
    Party,
    approve_request,
    photo_use,
    register_holder,
    register_platform,
)

SCOPE: dict[str, list[DataCategory] | list[Purpose] | list[Medium] | list[str]] = {
    "categories": [DataCategory.IMAGE],
    "purposes": [Purpose.ADVERTISING],
    "media": [Medium.ONLINE],
    "territories": ["FR"],
}

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def parties(ex: Exchange) -> tuple[Party, Party]:
    """A registered holder (photo, voice, terms) who shows her name, "Alice", in offers
    (which is how the tests' advertisers find hers), and the platform "photoshare"."""
    holder, platform = ex.party(), ex.party()
    register_holder(holder)
    holder.call(
        registry_pb2,
        "UpdateProfile",
        registry_pb2.UpdateProfileRequest(display_name="Alice", show_display_name=True),
        registry_pb2.UpdateProfileResponse,
    )
    register_platform(platform)
    return holder, platform


def _alice(offers: Iterable[Offer]) -> tuple[Offer, OfferedAsset]:
    """Alice's offer among ``offers``, and its photo."""
    offer = next(o for o in offers if o.display_name == "Alice")
    return offer, offer.assets_in(DataCategory.IMAGE)[0]


# -- the holder's and the platform's side (through the harness) ------------------------------


def _wire_request(req: LicenceRequest) -> records_pb2.LicenceRequest:
    return records_pb2.LicenceRequest(request_id=req.request_id, claims=req.claims)


def _approve_later(holder: Party, req: LicenceRequest, delay: float = 0.3) -> threading.Thread:
    """The holder approves ``req`` from another thread after ``delay`` seconds."""

    def run() -> None:
        time.sleep(delay)
        approve_request(holder, _wire_request(req))

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def _approve_first_pending(holder: Party) -> threading.Thread:
    """The holder approves the first request to reach its inbox (within 10 s)."""

    def run() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            inbox = holder.call(
                exchange_pb2,
                "ListInbox",
                exchange_pb2.ListInboxRequest(),
                exchange_pb2.ListInboxResponse,
            ).requests
            if inbox:
                approve_request(holder, inbox[0])
                return
            time.sleep(0.05)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def _revoke(holder: Party, licence_id: bytes) -> None:
    holder.call(
        licences_pb2,
        "RevokeLicence",
        licences_pb2.RevokeLicenceRequest(licence_id=licence_id),
        licences_pb2.RevokeLicenceResponse,
    )


def _erase_photo(holder: Party) -> None:
    holder.call(
        registry_pb2,
        "EraseAssets",
        registry_pb2.EraseAssetsRequest(sha256=[PHOTO_SHA]),
        registry_pb2.EraseAssetsResponse,
    )


def _platform_verify(platform: Party, token: str, presentation: str) -> bool:
    return platform.call(
        verification_pb2,
        "Verify",
        verification_pb2.VerifyRequest(
            token=token, presentation=presentation, use=photo_use().to_proto()
        ),
        verification_pb2.VerifyResponse,
    ).allowed


def _price(days: int = 30) -> int:
    return days * 100  # the harness holder's price: 100 minor units a day


# -- the synchronous SDK ----------------------------------------------------------------------


def _request(adv: Advertiser, **kw: object) -> LicenceRequest:
    """Ask Alice, found by her offer, for the photo."""
    args: dict[str, object] = {
        **SCOPE,
        "not_after": int(time.time()) + 30 * DAY,
        "price": _price(),
        **kw,
    }
    offer, photo = _alice(adv.search())
    return adv.request_licence(offer, [photo], **args)  # type: ignore[arg-type]


def _watch(adv: Advertiser) -> tuple[queue.Queue[Termination], threading.Thread]:
    """Terminations as they arrive, from another thread (ends when ``adv`` closes)."""
    got: queue.Queue[Termination] = queue.Queue()

    def run() -> None:
        with contextlib.suppress(ExchangeError):
            for t in adv.terminations():
                got.put(t)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return got, thread


def test_sync_story(ex: Exchange, parties: tuple[Party, Party]) -> None:
    holder, platform = parties
    register_holder(ex.party(), "bob")
    key = PrivateKey.generate()
    with Advertiser.connect(ex.address, key) as adv, Advertiser.connect(ex.address, key) as feed:
        profile = adv.register("Acme Ads", "FR")
        assert (profile.key, profile.organisation, profile.country) == (
            key.public,
            "Acme Ads",
            "FR",
        )
        # Money: nothing until the operator credits the account; a statement shows it.
        assert adv.balance() == 0
        ex.fund(key.public.raw, 10 * _price(), "bank-ref-1")
        st = adv.statement()
        assert (st.currency, st.available, st.escrowed, st.spent) == ("EUR", 10 * _price(), 0, 0)
        assert [(x.kind, x.amount, x.reference) for x in st.lines] == [
            ("deposit", 10 * _price(), "bank-ref-1")
        ]

        # Search follows page tokens; filters narrow; values are the SDK's. An offer names
        # its holder by this advertiser's reference; her name only because she chose it.
        assert [o.display_name for o in adv.search(page_size=1)] == ["Alice", ""]
        offers = list(adv.search(DataCategory.IMAGE, Purpose.ADVERTISING, territory="FR"))
        assert len({o.offer_ref for o in offers}) == 2
        offer, photo = _alice(offers)
        assert len(offer.offer_ref) == 32
        assert [(a.category, a.stored) for a in offer.assets] == [
            (DataCategory.IMAGE, True),
            (DataCategory.VOICE, False),
        ]
        assert photo.ref not in {PHOTO_SHA, PHOTO_SHA[:16]}
        assert Purpose.DIRECT_MARKETING in offer.terms.refused_purposes
        assert offer.terms.price_for(30 * DAY) == _price()
        assert offer.terms.price_for(30 * DAY, exclusive=True) == 3 * _price()
        assert list(adv.search(max_price_per_day=99)) == []

        # Request; the holder approves from another thread while we wait.
        pending = _request(adv, message="for our spring campaign")
        assert pending.offer_ref == offer.offer_ref
        assert pending.state == RequestState.PENDING
        assert pending.licence is None
        assert pending.licence_claims.licensee == key.public
        approver = _approve_later(holder, pending)
        decided = adv.wait_for_decision(pending.request_id, timeout=5)
        approver.join()
        assert decided.state == RequestState.ISSUED
        licence = decided.licence
        assert isinstance(licence, LicenceRecord)
        assert licence.state == LicenceState.ACTIVE
        assert licence.licensee_key == key.public
        assert licence.parsed.licence_id == licence.licence_id
        assert [a.sha256 for a in licence.assets] == [PHOTO_SHA]
        assert adv.verify(licence).licence_id == licence.licence_id
        assert adv.request(pending.request_id).state == RequestState.ISSUED
        paid = adv.statement()
        assert (paid.available, paid.escrowed) == (9 * _price(), _price())
        assert paid.lines[0].kind == "escrow"
        assert paid.lines[0].licence_id == licence.licence_id

        assert adv.licence(licence.licence_id) == licence
        assert [x.licence_id for x in adv.licences(page_size=1)] == [licence.licence_id]
        assert adv.fetch_asset(licence.licence_id, PHOTO_SHA) == PHOTO

        # Present to the platform: its Verify allows.
        pres = adv.present(licence, "photoshare", photo_use())
        assert pres.startswith("lpr1.")
        assert _platform_verify(platform, licence.token, pres)

        # Revocation reaches terminations() at once.
        events, watcher = _watch(feed)
        _revoke(holder, licence.licence_id)
        revoked = events.get(timeout=2)
        assert (revoked.licence_id, revoked.cause) == (licence.licence_id, TerminationCause.REVOKED)
        assert adv.licence(licence.licence_id).state == LicenceState.REVOKED
        refunded = adv.statement()
        assert refunded.lines[0].kind == "refund"
        assert refunded.escrowed == 0
        assert refunded.available + refunded.spent == 10 * _price()

        # Erasure: a second licence on the photo ends with cause ERASED.
        second = _request(adv)
        issued = approve_request(holder, _wire_request(second)).licence
        _erase_photo(holder)
        erased = events.get(timeout=2)
        assert (erased.licence_id, erased.cause) == (issued.licence_id, TerminationCause.ERASED)
        assert erased.sequence > revoked.sequence
        # Resuming after a sequence replays only what follows it.
        resumed = adv.terminations(after_sequence=revoked.sequence)
        assert next(resumed) == erased
        resumed.close()
    watcher.join(timeout=2)
    assert not watcher.is_alive()


def test_sync_errors_carry_the_servers_reasons(ex: Exchange, parties: tuple[Party, Party]) -> None:
    holder, _ = parties
    with Advertiser.connect(ex.address, PrivateKey.generate()) as adv:
        with pytest.raises(ExchangeError) as e:
            list(adv.search())
        assert e.value.reason == Reason.UNKNOWN_KEY

        adv.register("Acme Ads", "FR")
        with pytest.raises(ExchangeError) as e:
            adv.register("Acme Ads", "FR")
        assert e.value.reason == Reason.ALREADY_EXISTS
        # Unfunded, a request is refused to the advertiser (it never reaches the holder).
        with pytest.raises(ExchangeError) as e:
            _request(adv)
        assert e.value.reason == Reason.INSUFFICIENT_FUNDS
        assert f"the licence costs {_price()}, available 0" in str(e.value)
        ex.fund(adv.key.public.raw)

        offer, photo = _alice(adv.search())
        for ref in (secrets.token_bytes(32), holder.key.public.raw):  # nobody's, her key
            with pytest.raises(ExchangeError) as e:
                adv.request_licence(
                    ref,
                    [photo],
                    not_after=int(time.time()) + DAY,
                    price=100,
                    **SCOPE,  # type: ignore[arg-type]
                )
            assert e.value.reason == Reason.NOT_FOUND
        with pytest.raises(ExchangeError) as e:
            adv.request_licence(
                offer,
                [photo],
                categories=[DataCategory.IMAGE],
                purposes=[Purpose.DIRECT_MARKETING],  # the holder refuses it
                media=[Medium.ONLINE],
                territories=["FR"],
                not_after=int(time.time()) + 30 * DAY,
                price=_price(),
            )
        assert e.value.reason == Reason.OUTSIDE_TERMS
        assert e.value.message == (
            "scope.purposes: the holder refuses direct-marketing; the request asks direct-marketing"
        )
        with pytest.raises(ExchangeError) as e:  # the issue's example: TV, offered online+social
            _request(adv, media=[Medium.TV])
        assert e.value.reason == Reason.OUTSIDE_TERMS
        assert (
            e.value.message == "scope.media: the holder offers online, social; the request asks tv"
        )
        with pytest.raises(ExchangeError) as e:
            _request(adv, price=1)
        assert e.value.reason == Reason.PRICE_TOO_LOW
        assert e.value.message.startswith("offered_price_minor: the holder's price for this term")
        assert e.value.message.endswith("; the request offers 1")

        with pytest.raises(ExchangeError) as e:
            adv.licence(bytes(16))
        assert e.value.reason == Reason.NOT_FOUND

        pending = _request(adv)
        started = time.monotonic()
        with pytest.raises(DecisionTimeout) as t:
            adv.wait_for_decision(pending.request_id, timeout=0.5)
        assert 0.4 < time.monotonic() - started < 3
        assert isinstance(t.value, ExchangeError)
        assert t.value.request is not None
        assert t.value.request.state == RequestState.PENDING

        assert adv.withdraw(pending.request_id).state == RequestState.WITHDRAWN
        assert adv.wait_for_decision(pending.request_id, 2).state == RequestState.WITHDRAWN
        with pytest.raises(ExchangeError) as e:
            adv.withdraw(pending.request_id)
        assert e.value.reason == Reason.REQUEST_NOT_PENDING

    with (
        Advertiser.connect("127.0.0.1:1", PrivateKey.generate(), timeout=1) as nowhere,
        pytest.raises(ExchangeUnavailable),
    ):
        nowhere.register("Acme Ads", "FR")


# -- the asyncio SDK --------------------------------------------------------------------------


async def _arequest(adv: AsyncAdvertiser, **kw: object) -> LicenceRequest:
    """Ask Alice, found by her offer, for the photo."""
    args: dict[str, object] = {
        **SCOPE,
        "not_after": int(time.time()) + 30 * DAY,
        "price": _price(),
        **kw,
    }
    offer, photo = _alice([o async for o in adv.search()])
    return await adv.request_licence(offer, [photo], **args)  # type: ignore[arg-type]


async def _in_thread(fn: Callable[[], object]) -> None:
    await asyncio.to_thread(fn)


def test_async_story(ex: Exchange, parties: tuple[Party, Party]) -> None:
    holder, platform = parties
    key = PrivateKey.generate()

    async def story() -> None:
        async with AsyncAdvertiser.connect(ex.address, key) as adv:
            assert (await adv.register("Acme Ads", "FR")).key == key.public
            ex.fund(key.public.raw)
            assert (await adv.balance()) == FUNDS
            offers = [o async for o in adv.search(purpose=Purpose.ADVERTISING, page_size=1)]
            assert [o.display_name for o in offers] == ["Alice"]

            pending = await _arequest(adv)
            assert pending.offer_ref == offers[0].offer_ref
            assert pending.state == RequestState.PENDING
            approver = _approve_later(holder, pending)
            decided = await adv.wait_for_decision(pending.request_id, timeout=5)
            await asyncio.to_thread(approver.join)
            assert decided.state == RequestState.ISSUED
            licence = decided.licence
            assert licence is not None
            assert (await adv.verify(licence)).licence_id == licence.licence_id
            assert await adv.licence(licence.licence_id) == licence
            assert [x.licence_id async for x in adv.licences()] == [licence.licence_id]
            assert await adv.fetch_asset(licence.licence_id, PHOTO_SHA) == PHOTO
            pres = adv.present(licence, "photoshare", photo_use())
            assert await asyncio.to_thread(_platform_verify, platform, licence.token, pres)

            async with contextlib.aclosing(adv.terminations()) as events:
                await _in_thread(lambda: _revoke(holder, licence.licence_id))
                revoked = await asyncio.wait_for(anext(events), 2)
                assert revoked.licence_id == licence.licence_id
                assert revoked.cause == TerminationCause.REVOKED

                second = await _arequest(adv)
                await _in_thread(lambda: approve_request(holder, _wire_request(second)))
                await _in_thread(lambda: _erase_photo(holder))
                erased = await asyncio.wait_for(anext(events), 2)
                assert erased.cause == TerminationCause.ERASED
                assert erased.licence_id != licence.licence_id

    asyncio.run(story())


@pytest.mark.usefixtures("parties")
def test_async_errors_carry_the_servers_reasons(ex: Exchange) -> None:

    async def errors() -> None:
        async with AsyncAdvertiser.connect(ex.address, PrivateKey.generate()) as adv:
            with pytest.raises(ExchangeError) as e:
                await adv.register("Acme Ads", "not a country")
            assert e.value.reason == Reason.INVALID_REQUEST
            await adv.register("Acme Ads", "FR")
            ex.fund(adv.key.public.raw)
            with pytest.raises(ExchangeError) as e:
                await _arequest(adv, not_after=int(time.time()) + 200 * DAY)
            assert e.value.reason == Reason.INVALID_TERM
            offer, photo = _alice([o async for o in adv.search()])
            with pytest.raises(ExchangeError) as e:
                await adv.request_licence(
                    offer,
                    [photo],
                    categories=[DataCategory.IMAGE],
                    purposes=[Purpose.RECRUITMENT],  # not among the holder's purposes
                    media=[Medium.ONLINE],
                    territories=["FR"],
                    not_after=int(time.time()) + 30 * DAY,
                    price=_price(),
                )
            assert e.value.reason == Reason.OUTSIDE_TERMS
            with pytest.raises(ExchangeError) as e:
                await adv.fetch_asset(bytes(16), PHOTO_SHA)
            assert e.value.reason == Reason.NOT_FOUND
            pending = await _arequest(adv)
            with pytest.raises(DecisionTimeout):
                await adv.wait_for_decision(pending.request_id, timeout=0.5)
            assert (await adv.withdraw(pending.request_id)).state == RequestState.WITHDRAWN

    asyncio.run(errors())


# -- the example in the package docstring -----------------------------------------------------


def test_the_docstring_example_runs(
    ex: Exchange,
    parties: tuple[Party, Party],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """The package's example is the README's, and it goes the whole way once the holder
    approves (an advertiser registered and credited before, its key from the environment)."""
    holder, platform = parties
    doc = advertiser_pkg.__doc__ or ""
    example = doc.split("```python\n", 1)[1].split("```", 1)[0]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"```python\n{example}```" in readme
    key = PrivateKey.generate()
    with Advertiser.connect(ex.address, key) as first_run:
        first_run.register("Acme Ads", "FR")
    ex.fund(key.public.raw)
    monkeypatch.setenv("LICENTIA_SERVER", ex.address)
    monkeypatch.setenv("LICENTIA_ADVERTISER_KEY", seed_text(key))
    monkeypatch.chdir(tmp_path)  # it saves what it hands the platform
    approver = _approve_first_pending(holder)
    exec(example, {"__name__": "__example__"})
    approver.join()
    asked, presentation = capsys.readouterr().out.strip().splitlines()
    assert asked.startswith("asked: request ")  # she answered by hand: it waited
    assert presentation.startswith("lpr1.")
    assert (tmp_path / "presentation.txt").read_text() == presentation
    (licence,) = holder.call(
        licences_pb2,
        "ListLicences",
        licences_pb2.ListLicencesRequest(),
        licences_pb2.ListLicencesResponse,
    ).licences
    allowed = platform.call(
        verification_pb2,
        "Verify",
        verification_pb2.VerifyRequest(
            token=licence.token,
            presentation=presentation,
            use=photo_use(Purpose.ADVERTISING).to_proto(),
        ),
        verification_pb2.VerifyResponse,
    )
    assert allowed.allowed, list(allowed.reasons)
