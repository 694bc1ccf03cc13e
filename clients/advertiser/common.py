"""What the synchronous and the asyncio SDK share: everything but the I/O.

Both flavours build the same requests here, turn the same responses into the SDK's frozen
values here, and map the same failures here; :mod:`.sdk` and :mod:`.aio` only send and
receive. Protobuf messages stay in this module and the two thin I/O layers: callers see
:class:`Offer`, :class:`OfferedAsset`, :class:`LicenceRequest`, :class:`LicenceRecord`,
:class:`Termination` and the
:mod:`licentia.vocabulary` enums.

Why one module of this size: it is the SDK's whole I/O-free half, every request built and every
response read, for both flavours; split by kind, each call's request and response would sit
in two modules.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import secrets
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Callable,
    Generator,
    Iterable,
    Iterator,
    Sequence,
)
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar, cast

import grpc  # type: ignore[import-untyped]

from licentia import token as tokens
from licentia.errors import LicentiaError, Reason
from licentia.keys import IssuerKeySet, PrivateKey, PublicKey
from licentia.methods import path
from licentia.presentation import present
from licentia.scope import IntendedUse, Scope
from licentia.states import LicenceState, RequestState, TerminationCause
from licentia.token import Asset, LicenceClaims, UnverifiedLicence, parse_token
from licentia.v1 import (
    exchange_pb2,
    ledger_pb2,
    licence_pb2,
    licences_pb2,
    records_pb2,
    registry_pb2,
)
from licentia.vocabulary import DataCategory, Medium, Purpose

from ..channel import ExchangeError, ExchangeUnavailable

_E = TypeVar("_E", bound=enum.IntEnum)

DAY = 86_400
#: Channel options of both flavours: assets up to 16 MiB, and keepalive pings on idle
#: connections so a long ``terminations()`` stream notices a dead peer.


REGISTER_ADVERTISER = path(registry_pb2, "RegisterAdvertiser")
SEARCH_OFFERS = path(exchange_pb2, "SearchOffers")
REQUEST_LICENCE = path(exchange_pb2, "RequestLicence")
GET_REQUEST = path(exchange_pb2, "GetRequest")
WATCH_REQUEST = path(exchange_pb2, "WatchRequest")
WITHDRAW_REQUEST = path(exchange_pb2, "WithdrawRequest")
GET_LICENCE = path(licences_pb2, "GetLicence")
LIST_LICENCES = path(licences_pb2, "ListLicences")
FETCH_ASSET_CHUNKS = path(licences_pb2, "FetchAssetChunks")
#: The longest a whole asset's fetch may take, in seconds (50 MiB on a slow line).
FETCH_TIMEOUT = 600.0
#: The most bytes a fetch accepts whatever the exchange says (the largest cap it may set).
MAX_FETCH_BYTES = 512 * 1024 * 1024
GET_ISSUER_KEYS = path(licences_pb2, "GetIssuerKeys")
WATCH_LICENCE_EVENTS = path(licences_pb2, "WatchLicenceEvents")
GET_STATEMENT = path(ledger_pb2, "GetStatement")


# -- the SDK's values --------------------------------------------------------------------------


class DecisionTimeout(ExchangeUnavailable):
    """``wait_for_decision`` gave up: the holder had not answered within the timeout.

    The request is still pending (``request`` is the last state seen, when one was seen);
    waiting again is safe. ``code`` is DEADLINE_EXCEEDED and ``reason`` UNAVAILABLE.
    """

    def __init__(self, request: LicenceRequest | None, timeout: float) -> None:
        super().__init__(
            Reason.UNAVAILABLE,
            grpc.StatusCode.DEADLINE_EXCEEDED,
            f"no decision on the request within {timeout:g} s",
        )
        self.request = request


@dataclass(frozen=True, slots=True)
class Profile:
    """The advertiser as the exchange registered it."""

    key: PublicKey
    organisation: str
    country: str
    registered_at: int


@dataclass(frozen=True, slots=True)
class Terms:
    """What a holder offers and at what price (prices in minor units of ``currency``)."""

    categories: frozenset[DataCategory]
    allowed_purposes: frozenset[Purpose]
    refused_purposes: frozenset[Purpose]
    media: frozenset[Medium]
    territories: frozenset[str]
    currency: str
    price_per_day_minor: int
    max_term_seconds: int
    exclusivity_offered: bool
    exclusivity_multiplier_bps: int

    def price_for(self, term_seconds: int, *, exclusive: bool = False) -> int:
        """The holder's price for a term: whole days rounded up, times the exclusivity
        multiplier for an exclusive licence (the least ``request_licence`` may offer)."""
        price = -(-term_seconds // DAY) * self.price_per_day_minor
        if exclusive:
            price = -(-price * self.exclusivity_multiplier_bps // 10_000)
        return price


@dataclass(frozen=True, slots=True)
class OfferedAsset:
    """One asset of an offer: its category, and this advertiser's reference to it."""

    category: DataCategory
    #: This advertiser's reference to the asset (16 opaque bytes): name it so in
    #: ``request_licence``. Once licensed, the licence names the asset by its digest.
    ref: bytes
    #: True when the exchange stores its bytes (``fetch_asset`` serves them under a licence).
    stored: bool


@dataclass(frozen=True, slots=True)
class Offer:
    """One holder's offer: whom to ask, on what terms, and which assets are on offer.

    The offer names nobody: the holder is ``offer_ref``, a reference made for this
    advertiser alone (another advertiser gets another one for the same person, and this one
    is useless to it), and her assets are references too. Her display name is there only
    when she chose to show it."""

    #: This advertiser's reference to the holder (opaque bytes): ask her with it.
    offer_ref: bytes
    #: Her display name when she chose to show it in offers; else "".
    display_name: str
    terms: Terms
    #: The holder's assets in the offered categories.
    assets: tuple[OfferedAsset, ...]

    def assets_in(self, category: DataCategory) -> tuple[OfferedAsset, ...]:
        """The offered assets of ``category``."""
        return tuple(a for a in self.assets if a.category == category)


@dataclass(frozen=True, slots=True)
class LicenceRecord:
    """A licence as the exchange holds it, with its token parsed (not verified).

    ``parsed`` is :func:`licentia.token.parse_token` of ``token``: its fields are the
    claims as the wire carries them. Nothing here has checked a signature, so this is a
    record and not a :class:`licentia.token.Licence`, which only verification returns: use
    the client's ``verify`` (or a platform's verifier) before trusting them.
    """

    licence_id: bytes
    #: The token ``lic2.…`` (``lic1.…`` before token v2) exactly as issued.
    token: str
    state: LicenceState
    #: The holder's key the claims name: her pseudonym for this advertiser when she approved
    #: with one (docs/token-format.md §1b), never her account (another advertiser sees
    #: another key); None for a licence issued under her standing rule (token v2), whose
    #: claims name no holder key.
    holder_key: PublicKey | None
    licensee_key: PublicKey
    issued_at: int
    not_before: int
    not_after: int
    #: Unix seconds of revocation; 0 when not revoked.
    revoked_at: int
    #: Uses reported by platforms so far, and the cap (0 = unlimited).
    uses: int
    max_uses: int
    request_id: bytes
    status_index: int
    #: The status list holding ``status_index`` (docs/token-format.md §7).
    status_list: int
    parsed: UnverifiedLicence = field(repr=False, compare=False)

    @property
    def scope(self) -> Scope:
        """What the licence allows (from the token)."""
        return self.parsed.scope

    #: The plain SHA-256 of each licensed asset, in the claims' order (a v2 token names
    #: them salted; the exchange tells the licence's parties the plain ones, checked here
    #: against the token).
    asset_sha256: tuple[bytes, ...] = ()

    @property
    def assets(self) -> tuple[Asset, ...]:
        """The licensed assets by their plain SHA-256, in the claims' order (the categories
        from the token)."""
        if not self.parsed.asset_salt:
            return tuple(Asset(c, d) for d, c in self.parsed.asset_categories.items())
        out = []
        for plain in self.asset_sha256:
            category = self.parsed.asset_category(plain)
            if category is not None:
                out.append(Asset(category, plain))
        return tuple(out)


@dataclass(frozen=True, slots=True)
class LicenceRequest:
    """A licence request and, once ISSUED, its licence."""

    request_id: bytes
    state: RequestState
    advertiser_key: PublicKey
    advertiser_organisation: str
    #: The holder, as this advertiser's offer named her (never her key before consent).
    offer_ref: bytes
    #: The exact claims bytes the holder is asked to sign.
    claims: bytes
    created_at: int
    expires_at: int
    updated_at: int
    #: The holder's reason when DECLINED, or why issuance FAILED.
    reason: str
    #: The reason code when FAILED, else None.
    failure: Reason | None
    auto_approved: bool
    licence: LicenceRecord | None = None

    @property
    def licence_claims(self) -> LicenceClaims:
        """The prepared claims as a domain value (licence id, scope, term, price)."""
        return LicenceClaims.decode(self.claims)


@dataclass(frozen=True, slots=True)
class Termination:
    """One of the advertiser's licences ended early: pull the content that uses it."""

    #: The revocation sequence number (pass it as ``after_sequence`` to resume).
    sequence: int
    licence_id: bytes
    cause: TerminationCause
    #: Unix seconds at which it took effect.
    at: int


# -- requests ----------------------------------------------------------------------------------


def _wire(values: Iterable[int]) -> Any:
    """Enum members as the generated stubs take them (sorted, no duplicates)."""
    return cast("Any", sorted({int(v) for v in values}))


def register_request(organisation: str, country: str) -> registry_pb2.RegisterAdvertiserRequest:
    """RegisterAdvertiser."""
    return registry_pb2.RegisterAdvertiserRequest(organisation=organisation, country=country)


def search_request(
    category: DataCategory | None,
    purpose: Purpose | None,
    medium: Medium | None,
    territory: str | None,
    max_price_per_day: int | None,
    page_size: int,
    page_token: str,
) -> exchange_pb2.SearchOffersRequest:
    """One page of SearchOffers (None = any)."""
    return exchange_pb2.SearchOffersRequest(
        category=cast("Any", int(category or 0)),
        purpose=cast("Any", int(purpose or 0)),
        medium=cast("Any", int(medium or 0)),
        territory=territory or "",
        max_price_per_day_minor=max_price_per_day or 0,
        page_size=page_size,
        page_token=page_token,
    )


def offer_raw(offer: Offer | bytes) -> bytes:
    """An offer's reference as the wire carries it."""
    return offer.offer_ref if isinstance(offer, Offer) else bytes(offer)


def asset_raw(asset: OfferedAsset | bytes) -> bytes:
    """An offered asset's reference as the wire carries it."""
    return asset.ref if isinstance(asset, OfferedAsset) else bytes(asset)


def licence_request(
    offer: Offer | bytes,
    assets: Sequence[OfferedAsset | bytes],
    *,
    categories: Iterable[DataCategory],
    purposes: Iterable[Purpose],
    media: Iterable[Medium],
    territories: Iterable[str],
    not_before: int | None,
    not_after: int,
    max_uses: int,
    exclusive: bool,
    price: int,
    message: str,
    price_per_use: int = 0,
    idempotency_key: bytes | None = None,
) -> exchange_pb2.RequestLicenceRequest:
    """RequestLicence; the exchange checks every value against the holder's terms. Without
    an ``idempotency_key``, a fresh random one is chosen (so a retry of this very request
    pays once)."""
    return exchange_pb2.RequestLicenceRequest(
        offer_ref=offer_raw(offer),
        asset_refs=[asset_raw(a) for a in assets],
        scope=licence_pb2.Scope(
            categories=_wire(categories),
            purposes=_wire(purposes),
            media=_wire(media),
            territories=sorted(set(territories)),
        ),
        not_before=not_before or 0,
        not_after=not_after,
        max_uses=max_uses,
        exclusive=exclusive,
        offered_price_minor=price,
        message=message,
        price_per_use_minor=price_per_use,
        idempotency_key=secrets.token_bytes(16) if idempotency_key is None else idempotency_key,
    )


@dataclass(frozen=True, slots=True)
class StatementLine:
    """One posting on the advertiser's balance: a deposit, an escrow, a refund."""

    posting_id: int
    #: ``deposit``, ``escrow``, ``refund`` (and for holders ``accrual``, ``use``, ``withdrawal``).
    kind: str
    licence_id: bytes
    at: int
    #: Signed minor units: + credited, - debited.
    amount: int
    reference: str


@dataclass(frozen=True, slots=True)
class Statement:
    """The advertiser's money at the exchange, settled up to now, in minor units."""

    currency: str
    #: What new licences can be paid from.
    available: int
    #: Held in escrow for the advertiser's live licences (refunded in part on revocation).
    escrowed: int
    #: Spent so far: paid out of escrow for the time and uses its licences got.
    spent: int
    lines: tuple[StatementLine, ...]
    #: Pass as ``before`` for the next page (0: none).
    next_before: int
    #: Of ``available``, what the advertiser's pending requests reserve (each reserves what
    #: its approval will escrow when it is made): a new request may use only the rest.
    reserved: int = 0


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _reads(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """A reader of the exchange's responses that fails as the SDK documents: a response it
    cannot read (a token that does not parse, a key of the wrong size, a state this SDK does
    not know, …) raises :class:`ExchangeError` ``MALFORMED``, never a bare ``ValueError``."""

    @functools.wraps(fn)
    def read(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return fn(*args, **kwargs)
        except ExchangeError:
            raise
        except (LicentiaError, ValueError, KeyError, TypeError, OverflowError) as e:
            raise ExchangeError(
                Reason.MALFORMED,
                grpc.StatusCode.DATA_LOSS,
                f"the exchange sent a response this SDK cannot read: {e}",
            ) from None

    return read


def statement_request(page_size: int, before: int) -> ledger_pb2.GetStatementRequest:
    """GetStatement for one page."""
    return ledger_pb2.GetStatementRequest(page_size=page_size, before_posting=before)


@_reads
def statement_from(msg: ledger_pb2.GetStatementResponse) -> Statement:
    """The SDK's value of a statement."""
    return Statement(
        currency=msg.currency,
        available=msg.available_minor,
        escrowed=msg.pending_minor,
        spent=msg.total_minor,
        reserved=msg.reserved_minor,
        lines=tuple(
            StatementLine(
                posting_id=x.posting_id,
                kind=ledger_pb2.PostingKind.Name(x.kind).removeprefix("POSTING_KIND_").lower(),
                licence_id=x.licence_id,
                at=x.at,
                amount=x.amount_minor,
                reference=x.reference,
            )
            for x in msg.lines
        ),
        next_before=msg.next_before_posting,
    )


def presentation(
    key: PrivateKey,
    licence: LicenceRecord | tokens.Licence | UnverifiedLicence,
    platform_id: str,
    use: IntendedUse,
    now: int,
) -> str:
    """The presentation ``lpr1.…`` of ``licence`` to ``platform_id`` for ``use``."""
    return present(key, licence.licence_id, platform_id, use, now)


def joined(parts: Iterable[licences_pb2.FetchAssetChunk]) -> bytes:
    """FetchAssetChunks' messages joined: exactly the size the first one states (at most
    :data:`MAX_FETCH_BYTES`), else MALFORMED."""
    out = bytearray()
    size: int | None = None
    for part in parts:
        if size is None:
            size = part.size
            if size > MAX_FETCH_BYTES:
                raise ExchangeError(
                    Reason.MALFORMED, grpc.StatusCode.DATA_LOSS, "the asset is too large"
                )
        if len(out) + len(part.chunk) > size:
            raise ExchangeError(
                Reason.MALFORMED, grpc.StatusCode.DATA_LOSS, "more bytes than announced"
            )
        out += part.chunk
    if size is None or len(out) != size:
        raise ExchangeError(
            Reason.MALFORMED, grpc.StatusCode.DATA_LOSS, "the asset's bytes ended early"
        )
    return bytes(out)


def checked_content(content: bytes, sha256: bytes) -> bytes:
    """``content`` when its SHA-256 is ``sha256``; else ASSET_MISMATCH (DATA_LOSS)."""
    if hashlib.sha256(content).digest() != sha256:
        raise ExchangeError(
            Reason.ASSET_MISMATCH,
            grpc.StatusCode.DATA_LOSS,
            "the bytes received do not have the SHA-256 asked for",
        )
    return content


# -- responses ---------------------------------------------------------------------------------


def _known(values: Iterable[int], kind: type[_E]) -> frozenset[_E]:
    """The values this SDK knows (a newer exchange may offer more; they are left out)."""
    members = {int(m) for m in kind}
    return frozenset(kind(v) for v in values if v in members)


@_reads
def profile_from(msg: records_pb2.Profile) -> Profile:
    """The SDK's :class:`Profile`."""
    return Profile(PublicKey(msg.key), msg.display_name, msg.country, msg.registered_at)


@_reads
def terms_from(msg: records_pb2.Terms) -> Terms:
    """The SDK's :class:`Terms`."""
    return Terms(
        categories=_known(msg.categories, DataCategory),
        allowed_purposes=_known(msg.allowed_purposes, Purpose),
        refused_purposes=_known(msg.refused_purposes, Purpose),
        media=_known(msg.media, Medium),
        territories=frozenset(msg.territories),
        currency=msg.currency,
        price_per_day_minor=msg.price_per_day_minor,
        max_term_seconds=msg.max_term_seconds,
        exclusivity_offered=msg.exclusivity_offered,
        exclusivity_multiplier_bps=msg.exclusivity_multiplier_bps,
    )


@_reads
def offer_from(msg: exchange_pb2.Offer) -> Offer:
    """The SDK's :class:`Offer`."""
    known = {int(c) for c in DataCategory}
    return Offer(
        offer_ref=msg.offer_ref,
        display_name=msg.display_name,
        terms=terms_from(msg.terms),
        assets=tuple(
            OfferedAsset(DataCategory(a.category), a.asset_ref, a.stored)
            for a in msg.offered_assets
            if a.category in known
        ),
    )


@_reads
def licence_from(msg: records_pb2.LicenceRecord) -> LicenceRecord:
    """The SDK's :class:`LicenceRecord` (its token parsed, not verified)."""
    return LicenceRecord(
        licence_id=msg.licence_id,
        token=msg.token,
        state=LicenceState(msg.state),
        holder_key=PublicKey(msg.holder_key) if msg.holder_key else None,
        licensee_key=PublicKey(msg.licensee_key),
        issued_at=msg.issued_at,
        not_before=msg.not_before,
        not_after=msg.not_after,
        revoked_at=msg.revoked_at,
        uses=msg.uses,
        max_uses=msg.max_uses,
        request_id=msg.request_id,
        status_index=msg.status_index,
        status_list=msg.status_list,
        parsed=parse_token(msg.token),
        asset_sha256=tuple(msg.asset_sha256),
    )


@_reads
def request_from(
    msg: records_pb2.LicenceRequest, licence: records_pb2.LicenceRecord | None = None
) -> LicenceRequest:
    """The SDK's :class:`LicenceRequest`, with its licence when one is given."""
    return LicenceRequest(
        request_id=msg.request_id,
        state=RequestState(msg.state),
        advertiser_key=PublicKey(msg.advertiser_key),
        advertiser_organisation=msg.advertiser_organisation,
        offer_ref=msg.offer_ref,
        claims=msg.claims,
        created_at=msg.created_at,
        expires_at=msg.expires_at,
        updated_at=msg.updated_at,
        reason=msg.reason,
        failure=Reason.__members__.get(msg.failure),
        auto_approved=msg.auto_approved,
        licence=licence_from(licence) if licence is not None and licence.licence_id else None,
    )


@_reads
def with_licence(
    msg: exchange_pb2.RequestLicenceResponse
    | exchange_pb2.GetRequestResponse
    | exchange_pb2.WatchRequestResponse,
) -> LicenceRequest:
    """The request of a response that may also carry its licence."""
    return request_from(msg.request, msg.licence if msg.HasField("licence") else None)


@_reads
def termination_from(msg: licences_pb2.WatchLicenceEventsResponse) -> Termination | None:
    """The :class:`Termination`, or None for a heartbeat."""
    if not msg.licence_id:
        return None
    return Termination(msg.sequence, msg.licence_id, TerminationCause(msg.cause), msg.at)


@_reads
def issuer_keys_from(msg: licences_pb2.GetIssuerKeysResponse) -> IssuerKeySet:
    """The exchange's issuer keys."""
    return IssuerKeySet.from_proto(msg.keys)


def close(stream: Iterator[Any]) -> None:
    """Close a response stream at once (which cancels its call)."""
    if isinstance(stream, Generator):
        stream.close()


async def aclose(stream: AsyncIterator[Any]) -> None:
    """Close an asyncio response stream at once (which cancels its call)."""
    if isinstance(stream, AsyncGenerator):
        await stream.aclose()


class DecisionWatch:
    """Follows WatchRequest responses until the request leaves PENDING (both flavours)."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.last: LicenceRequest | None = None

    def see(self, msg: exchange_pb2.WatchRequestResponse) -> LicenceRequest | None:
        """The request once decided, else None (keep waiting)."""
        self.last = with_licence(msg)
        return None if self.last.state == RequestState.PENDING else self.last

    def failed(self, error: ExchangeError) -> ExchangeError:
        """What to raise for a failure of the stream: our deadline is a :class:`DecisionTimeout`."""
        if error.code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return DecisionTimeout(self.last, self.timeout)
        return error

    def ended(self) -> ExchangeError:
        """What to raise when the stream ended with the request still pending."""
        return ExchangeUnavailable(
            Reason.UNAVAILABLE,
            grpc.StatusCode.UNAVAILABLE,
            "the exchange ended the watch before a decision",
        )
