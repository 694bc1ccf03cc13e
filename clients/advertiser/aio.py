"""The asyncio advertiser SDK: :class:`AsyncAdvertiser`, over ``grpc.aio``.

The same methods as :class:`~licentia.clients.advertiser.sdk.Advertiser`, as coroutines
and async iterators; requests and responses are built and read by the same code
(:mod:`.common`), and calls are signed over their exact bytes by
:class:`~licentia.clients.aio_channel.AsyncSignedChannel`. Every failure is an
:class:`~licentia.clients.channel.ExchangeError` with the exchange's stable reason.

Close async iterators you leave early (``contextlib.aclosing``) so their calls end at once.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncGenerator, Iterable, Sequence
from pathlib import Path

from licentia import token as tokens
from licentia.keys import IssuerKeySet
from licentia.scope import IntendedUse
from licentia.token import UnverifiedLicence
from licentia.v1 import exchange_pb2, ledger_pb2, licences_pb2, registry_pb2
from licentia.vocabulary import DataCategory, Medium, Purpose

from ..channel import ExchangeError
from ..party import AsyncPartyClient
from . import common
from . import credentials as _credentials
from .common import (
    LicenceRecord,
    LicenceRequest,
    Offer,
    OfferedAsset,
    Profile,
    Statement,
    Termination,
)
from .credentials import ContentCertificate


class AsyncAdvertiser(AsyncPartyClient):
    """An advertiser's asyncio client of the exchange, over ``channel`` with ``key``.

    ``timeout`` is the deadline of each unary call in seconds; ``clock`` gives the Unix
    seconds of request signatures and presentations. The client owns the channel: use it
    as an async context manager, or await :meth:`close`.
    """

    #: The content certificate kept by :meth:`content_certificate`.
    _content_certificate: ContentCertificate | None = None

    # -- registry ----------------------------------------------------------------------------

    async def register(self, organisation: str, country: str) -> Profile:
        """Register this key as an advertiser of ``organisation`` (ISO 3166-1 ``country``)."""
        resp = await self._rpc.unary(
            common.REGISTER_ADVERTISER,
            common.register_request(organisation, country),
            registry_pb2.RegisterAdvertiserResponse,
        )
        return common.profile_from(resp.profile)

    # -- the market --------------------------------------------------------------------------

    async def search(
        self,
        category: DataCategory | None = None,
        purpose: Purpose | None = None,
        medium: Medium | None = None,
        territory: str | None = None,
        max_price_per_day: int | None = None,
        page_size: int = 20,
    ) -> AsyncGenerator[Offer, None]:
        """Every offer matching all the filters given, fetched a page at a time; each names
        its holder and her assets by this advertiser's references."""
        token = ""
        while True:
            req = common.search_request(
                category, purpose, medium, territory, max_price_per_day, page_size, token
            )
            page = await self._rpc.unary(
                common.SEARCH_OFFERS, req, exchange_pb2.SearchOffersResponse
            )
            for offer in page.offers:
                yield common.offer_from(offer)
            token = page.next_page_token
            if not token:
                return

    async def request_licence(
        self,
        offer: Offer | bytes,
        assets: Sequence[OfferedAsset | bytes],
        *,
        categories: Iterable[DataCategory],
        purposes: Iterable[Purpose],
        media: Iterable[Medium],
        territories: Iterable[str],
        not_before: int | None = None,
        not_after: int,
        max_uses: int = 0,
        exclusive: bool = False,
        price: int,
        message: str = "",
        price_per_use: int = 0,
        idempotency_key: bytes | None = None,
    ) -> LicenceRequest:
        """Ask the holder for a licence on ``assets`` (see ``Advertiser.request_licence``)."""
        req = common.licence_request(
            offer,
            assets,
            categories=categories,
            purposes=purposes,
            media=media,
            territories=territories,
            not_before=not_before,
            not_after=not_after,
            max_uses=max_uses,
            exclusive=exclusive,
            price=price,
            message=message,
            price_per_use=price_per_use,
            idempotency_key=idempotency_key,
        )
        resp = await self._rpc.unary(
            common.REQUEST_LICENCE, req, exchange_pb2.RequestLicenceResponse
        )
        return common.with_licence(resp)

    async def request(self, request_id: bytes) -> LicenceRequest:
        """One of the advertiser's requests now (with its licence once ISSUED)."""
        resp = await self._rpc.unary(
            common.GET_REQUEST,
            exchange_pb2.GetRequestRequest(request_id=request_id),
            exchange_pb2.GetRequestResponse,
        )
        return common.with_licence(resp)

    async def wait_for_decision(self, request_id: bytes, timeout: float) -> LicenceRequest:
        """Wait until the request leaves PENDING (at most ``timeout`` seconds); the request
        then, with its licence when ISSUED. Raises :class:`DecisionTimeout` on timeout."""
        watch = common.DecisionWatch(timeout)
        stream = self._rpc.server_stream(
            common.WATCH_REQUEST,
            exchange_pb2.WatchRequestRequest(request_id=request_id),
            exchange_pb2.WatchRequestResponse,
            timeout=timeout,
        )
        try:
            async for msg in stream:
                decided = watch.see(msg)
                if decided is not None:
                    return decided
        except ExchangeError as e:
            raise watch.failed(e) from None
        finally:
            await common.aclose(stream)
        raise watch.ended()

    async def withdraw(self, request_id: bytes) -> LicenceRequest:
        """Withdraw a request that is still pending (else REQUEST_NOT_PENDING)."""
        resp = await self._rpc.unary(
            common.WITHDRAW_REQUEST,
            exchange_pb2.WithdrawRequestRequest(request_id=request_id),
            exchange_pb2.WithdrawRequestResponse,
        )
        return common.request_from(resp.request)

    # -- licences ----------------------------------------------------------------------------

    async def statement(self, page_size: int = 100, before: int = 0) -> Statement:
        """The advertiser's balance, escrow and spending, settled up to now, and one page of
        its postings, newest first (pass ``next_before`` as ``before`` for the next)."""
        resp = await self._rpc.unary(
            common.GET_STATEMENT,
            common.statement_request(page_size, before),
            ledger_pb2.GetStatementResponse,
        )
        return common.statement_from(resp)

    async def balance(self) -> int:
        """What new licences can be paid from now, in minor units."""
        return (await self.statement(page_size=1)).available

    async def licence(self, licence_id: bytes) -> LicenceRecord:
        """One of the advertiser's licences (NOT_FOUND for any other)."""
        resp = await self._rpc.unary(
            common.GET_LICENCE,
            licences_pb2.GetLicenceRequest(licence_id=licence_id),
            licences_pb2.GetLicenceResponse,
        )
        return common.licence_from(resp.licence)

    async def licences(self, page_size: int = 100) -> AsyncGenerator[LicenceRecord, None]:
        """Every licence of the advertiser, newest first, fetched a page at a time."""
        token = ""
        while True:
            page = await self._rpc.unary(
                common.LIST_LICENCES,
                licences_pb2.ListLicencesRequest(page_size=page_size, page_token=token),
                licences_pb2.ListLicencesResponse,
            )
            for record in page.licences:
                yield common.licence_from(record)
            token = page.next_page_token
            if not token:
                return

    async def fetch_asset(self, licence_id: bytes, sha256: bytes) -> bytes:
        """The bytes of an asset the live licence names, streamed in chunks of any size,
        checked against ``sha256`` (ASSET_MISMATCH when they differ). The holder sees the
        fetch."""
        parts = [
            part
            async for part in self._rpc.server_stream(
                common.FETCH_ASSET_CHUNKS,
                licences_pb2.FetchAssetRequest(licence_id=licence_id, sha256=sha256),
                licences_pb2.FetchAssetChunk,
                timeout=common.FETCH_TIMEOUT,
            )
        ]
        return common.checked_content(common.joined(parts), sha256)

    def present(
        self,
        licence: LicenceRecord | tokens.Licence | UnverifiedLicence,
        platform_id: str,
        use: IntendedUse,
        *,
        now: int | None = None,
    ) -> str:
        """The presentation ``lpr1.…`` of ``licence`` to the platform ``platform_id`` for
        ``use``, signed with the advertiser's key. Pure (no call), hence not a coroutine."""
        return common.presentation(
            self.key, licence, platform_id, use, self.clock() if now is None else now
        )

    async def content_certificate(
        self, *, valid_until: int | None = None, refresh: bool = False
    ) -> ContentCertificate:
        """This key's C2PA content certificate and its root (``IssueContentCertificate``,
        docs/token-format.md §12): the one kept from an earlier call while it is valid past
        ``valid_until`` (default: a day from now) and issued under a content root the
        exchange still publishes (its issuer key not withdrawn: ``GetIssuerKeys`` is asked
        each time) unless ``refresh``, else a new one from the exchange, which must be under
        a published root too (else CONTENT_CREDENTIAL_UNTRUSTED: no file is signed that
        checkers would not trust). Raises :class:`ExchangeError` (NOT_OWNER unless the key is an
        advertiser's; MALFORMED for a certificate that is not for this key)."""
        now = self.clock()
        published = await self._published_keys()
        kept = self._content_certificate
        if (
            kept is not None
            and not refresh
            and kept.lasts(now, valid_until)
            and await asyncio.to_thread(_credentials.anchored, kept, published, now)
        ):
            return kept
        resp = await self._rpc.unary(
            _credentials.ISSUE_CONTENT_CERTIFICATE,
            registry_pb2.IssueContentCertificateRequest(),
            registry_pb2.IssueContentCertificateResponse,
        )
        fresh = await asyncio.to_thread(_credentials.certificate_from, resp, self.key.public)
        # (a key rotated in since the answer above: asked once more)
        # (certificate work, about 2.4 ms a root: off the event loop)
        if not await asyncio.to_thread(
            _credentials.anchored, fresh, published, now
        ) and not await asyncio.to_thread(
            _credentials.anchored, fresh, await self._published_keys(), now
        ):
            raise _credentials.unanchored()
        self._content_certificate = fresh
        return fresh

    async def _published_keys(self) -> licences_pb2.GetIssuerKeysResponse:
        return await self._rpc.unary(
            common.GET_ISSUER_KEYS,
            licences_pb2.GetIssuerKeysRequest(),
            licences_pb2.GetIssuerKeysResponse,
        )

    async def sign_content(
        self,
        source_path: str | os.PathLike[str],
        output_path: str | os.PathLike[str],
        licence_token: LicenceRecord | str,
        asset_sha256: bytes,
        *,
        exchange: str = "",
    ) -> Path:
        """Prepare a creative: write ``source_path`` (a JPEG, PNG, WAV, WebP or MP4 that uses
        the asset ``asset_sha256``) to ``output_path`` with Content Credentials, a C2PA
        manifest holding the licence (a :class:`LicenceRecord` of this advertiser, or its
        token) signed with this key under its content certificate (:meth:`content_certificate`,
        renewed if the licence would outlive it); ``exchange`` (``host:port``) tells checkers
        where to ask for the licence's status. Anyone can then check the file
        (:func:`licentia.content.check`). Raises ``LicentiaError`` before any call for a file or
        licence that cannot be signed (:func:`._credentials.creative`: MALFORMED, TOO_LARGE,
        WRONG_LICENSEE, ASSET_MISMATCH, NOT_LOGGED, and CONTENT_USES_COUNTED for a licence
        that counts or prices its uses: a file carries none, token-format §12.2),
        :class:`ExchangeError` for a refused call. Returns the output path, written all or
        nothing."""
        token = licence_token if isinstance(licence_token, str) else licence_token.token
        data = await asyncio.to_thread(_credentials.read_file, source_path)
        made = _credentials.creative(data, token, asset_sha256, self.key.public, exchange)
        certificate = await self.content_certificate(valid_until=made.valid_until)
        signed = await asyncio.to_thread(_credentials.sign, data, made, self.key, certificate)
        return await asyncio.to_thread(_credentials.write_file, output_path, signed)

    async def fetch_asset_to(
        self,
        licence_id: bytes,
        sha256: bytes,
        output_path: str | os.PathLike[str],
        *,
        credentials: bool = True,
        exchange: str = "",
    ) -> Path:
        """:meth:`fetch_asset`, written to ``output_path`` (all or nothing). With
        ``credentials`` (the default) the file carries the licence as Content Credentials,
        as :meth:`sign_content` writes them: the asset must then be a JPEG, PNG, WAV, WebP
        or MP4 (MALFORMED otherwise: pass ``credentials=False`` for its bare bytes), and
        the licence one that neither counts nor prices its uses: ``LicentiaError``
        CONTENT_USES_COUNTED before the asset is fetched otherwise (token-format §12.2).
        Returns the output path."""
        token = ""
        if credentials:  # a counted licence is refused before the asset is fetched
            token = (await self.licence(licence_id)).token
            _credentials.refuse_counted(token)
        data = await self.fetch_asset(licence_id, sha256)
        if credentials:
            made = _credentials.creative(data, token, sha256, self.key.public, exchange)
            certificate = await self.content_certificate(valid_until=made.valid_until)
            data = await asyncio.to_thread(_credentials.sign, data, made, self.key, certificate)
        return await asyncio.to_thread(_credentials.write_file, output_path, data)

    async def issuer_keys(self) -> IssuerKeySet:
        """The exchange's issuer keys, current and retired."""
        resp = await self._rpc.unary(
            common.GET_ISSUER_KEYS,
            licences_pb2.GetIssuerKeysRequest(),
            licences_pb2.GetIssuerKeysResponse,
        )
        return common.issuer_keys_from(resp)

    async def verify(
        self, licence: LicenceRecord, keys: IssuerKeySet | None = None
    ) -> tokens.Licence:
        """Check the licence's issuer signature and the holder's consent against ``keys``
        (the exchange's, fetched when None). Raises ``VerificationError`` with reasons."""
        return licence.parsed.verify(await self.issuer_keys() if keys is None else keys)

    async def terminations(self, after_sequence: int = 0) -> AsyncGenerator[Termination, None]:
        """Each early end of one of the advertiser's licences (revocation, erasure) as it
        happens, after ``after_sequence``; heartbeats are skipped. The stream never ends
        by itself: ``aclose()`` the generator to stop (``contextlib.aclosing``)."""
        stream = self._rpc.server_stream(
            common.WATCH_LICENCE_EVENTS,
            licences_pb2.WatchLicenceEventsRequest(after_sequence=after_sequence),
            licences_pb2.WatchLicenceEventsResponse,
        )
        try:
            async for msg in stream:
                event = common.termination_from(msg)
                if event is not None:
                    yield event
        finally:
            await common.aclose(stream)
