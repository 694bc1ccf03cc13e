"""What the synchronous and the asyncio holder SDK share: everything but the I/O.

The requests are built here (the protobuf messages, the consent signature over a request's
exact claims, a standing rule signed with the holder's key), so :mod:`.sdk` and :mod:`.aio`
only send and receive. Answers are the exchange's own records (``licentia.v1`` messages,
typed by their generated stubs): a holder app shows them as they are, as the wallet does.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, cast

from google.protobuf.message import DecodeError

from licentia import pairwise
from licentia.errors import LicentiaError, Reason
from licentia.keys import PrivateKey, PublicKey
from licentia.methods import path
from licentia.scope import Scope
from licentia.token import (
    RULE_ID_BYTES,
    LicenceClaims,
    StandingRule,
    approve,
    sign_standing_rule,
)
from licentia.v1 import (
    exchange_pb2,
    ledger_pb2,
    licence_pb2,
    licences_pb2,
    records_pb2,
    registry_pb2,
)
from licentia.vocabulary import DataCategory, Medium, Purpose

DAY = 86_400
#: Bytes of a withdrawal's idempotency key.
IDEMPOTENCY_KEY_BYTES = 16
#: Licences asked for per page when listing the holder's.
PAGE_SIZE = 500

REGISTER_HOLDER = path(registry_pb2, "RegisterHolder")
GET_PROFILE = path(registry_pb2, "GetProfile")
UPDATE_PROFILE = path(registry_pb2, "UpdateProfile")
DECLARE_ASSET = path(registry_pb2, "DeclareAsset")
UPLOAD_ASSET = path(registry_pb2, "UploadAsset")
GET_ASSET_LIMITS = path(registry_pb2, "GetAssetLimits")
LIST_ASSETS = path(registry_pb2, "ListAssets")
SET_TERMS = path(registry_pb2, "SetTerms")
GET_TERMS = path(registry_pb2, "GetTerms")
SET_OBJECTION = path(registry_pb2, "SetObjection")
EXPORT_DATA = path(registry_pb2, "ExportData")
ERASE_ASSETS = path(registry_pb2, "EraseAssets")
DELETE_ACCOUNT = path(registry_pb2, "DeleteAccount")
GET_ISSUER_KEYS = path(licences_pb2, "GetIssuerKeys")
LIST_INBOX = path(exchange_pb2, "ListInbox")
APPROVE_REQUEST = path(exchange_pb2, "ApproveRequest")
DECLINE_REQUEST = path(exchange_pb2, "DeclineRequest")
ADD_STANDING_RULE = path(exchange_pb2, "AddStandingRule")
LIST_STANDING_RULES = path(exchange_pb2, "ListStandingRules")
WITHDRAW_STANDING_RULE = path(exchange_pb2, "WithdrawStandingRule")
GET_LICENCE = path(licences_pb2, "GetLicence")
LIST_LICENCES = path(licences_pb2, "ListLicences")
REVOKE_LICENCE = path(licences_pb2, "RevokeLicence")
LIST_ACCESSES = path(licences_pb2, "ListAccesses")
GET_STATEMENT = path(ledger_pb2, "GetStatement")
WITHDRAW = path(ledger_pb2, "Withdraw")
ADD_PAYOUT_DESTINATION = path(ledger_pb2, "AddPayoutDestination")
CANCEL_PAYOUT_DESTINATION = path(ledger_pb2, "CancelPayoutDestination")
LIST_PAYOUT_DESTINATIONS = path(ledger_pb2, "ListPayoutDestinations")


@dataclass(frozen=True, slots=True)
class Revocation:
    """A revoked licence and the exchange's signed termination receipt."""

    #: The licence as the exchange now holds it (REVOKED).
    licence: records_pb2.LicenceRecord
    #: The receipt as signed (its bytes, the issuer key id and the signature).
    signed: records_pb2.SignedTerminationReceipt
    #: The receipt's content, read from :attr:`signed` (not verified here).
    receipt: records_pb2.TerminationReceipt


@dataclass(frozen=True, slots=True)
class SignedRule:
    """A standing rule and the holder's signature over its exact bytes."""

    rule: StandingRule
    consent: licence_pb2.StandingConsent


def _wire(values: Iterable[int]) -> Any:
    """Enum members as the ints a repeated enum field takes."""
    return cast("Any", [int(v) for v in values])


def register_request(
    handle: str, display_name: str, show_display_name: bool = False
) -> registry_pb2.RegisterHolderRequest:
    """RegisterHolder for ``handle`` (and an optional display name, shown to advertisers in
    offers only with ``show_display_name``)."""
    return registry_pb2.RegisterHolderRequest(
        handle=handle, display_name=display_name, show_display_name=show_display_name
    )


def profile_request(
    display_name: str, show_display_name: bool | None
) -> registry_pb2.UpdateProfileRequest:
    """UpdateProfile: the display name, and whether offers show it (None: unchanged)."""
    req = registry_pb2.UpdateProfileRequest(display_name=display_name)
    if show_display_name is not None:
        req.show_display_name = show_display_name
    return req


#: How many bytes each UploadAsset chunk carries (the exchange's cap: GetAssetLimits).
UPLOAD_CHUNK_BYTES = 256 * 1024


def upload_requests(
    category: DataCategory,
    content: bytes,
    label: str,
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[registry_pb2.UploadAssetRequest]:
    """UploadAsset's stream for ``content``: its header (category, SHA-256, label, size:
    the signed body), then its chunks; ``progress(sent, total)`` after each chunk."""
    yield registry_pb2.UploadAssetRequest(
        header=registry_pb2.UploadAssetHeader(
            category=cast("Any", int(category)),
            sha256=hashlib.sha256(content).digest(),
            label=label,
            size=len(content),
        )
    )
    view = memoryview(content)
    for at in range(0, len(content), UPLOAD_CHUNK_BYTES):
        chunk = bytes(view[at : at + UPLOAD_CHUNK_BYTES])
        yield registry_pb2.UploadAssetRequest(chunk=chunk)
        if progress is not None:
            progress(at + len(chunk), len(content))


def declare_request(
    category: DataCategory, content: bytes, label: str
) -> registry_pb2.DeclareAssetRequest:
    """DeclareAsset of ``content`` by its SHA-256 alone (its bytes are uploaded apart:
    :func:`upload_requests`)."""
    return registry_pb2.DeclareAssetRequest(
        category=cast("Any", int(category)),
        sha256=hashlib.sha256(content).digest(),
        label=label,
    )


def terms_request(
    *,
    categories: Iterable[DataCategory],
    purposes: Iterable[Purpose],
    refused: Iterable[Purpose] = (),
    media: Iterable[Medium],
    territories: Iterable[str],
    price_per_day: int,
    currency: str = "EUR",
    max_term_seconds: int = 365 * DAY,
    exclusive_multiplier: float | None = None,
) -> registry_pb2.SetTermsRequest:
    """SetTerms: what the holder offers, at ``price_per_day`` minor units of ``currency``;
    exclusivity offered at ``exclusive_multiplier`` times the price when given."""
    return registry_pb2.SetTermsRequest(
        terms=records_pb2.Terms(
            categories=_wire(categories),
            allowed_purposes=_wire(purposes),
            refused_purposes=_wire(refused),
            media=_wire(media),
            territories=[t.strip().upper() for t in territories],
            currency=currency.upper(),
            price_per_day_minor=price_per_day,
            max_term_seconds=max_term_seconds,
            exclusivity_offered=exclusive_multiplier is not None,
            exclusivity_multiplier_bps=round((exclusive_multiplier or 1) * 10_000),
        )
    )


def approval(
    key: PrivateKey, request_id: bytes, claims: bytes
) -> exchange_pb2.ApproveRequestRequest:
    """ApproveRequest with the holder's consent signature over the exact ``claims`` bytes.

    Raises ``LicentiaError`` when the claims do not decode, and NOT_OWNER when they name
    another holder: nothing is signed then.
    """
    if LicenceClaims.decode(claims).holder != key.public:
        raise LicentiaError(Reason.NOT_OWNER, "the request is not addressed to this key")
    return exchange_pb2.ApproveRequestRequest(
        request_id=request_id, holder_signature=approve(key, claims).signature
    )


def pairwise_approval(
    device: PrivateKey, holder_secret: bytes, account: bytes, request: records_pb2.LicenceRequest
) -> exchange_pb2.ApproveRequestRequest:
    """ApproveRequest consenting with the holder's pairwise key for the request's licensee
    account (docs/token-format.md §1b): the claims, as shown to ``device``, rebound to that
    key and signed by it, with the key and its pseudonym proof for ``account``.

    Raises ``LicentiaError`` when the claims do not decode or the request has no licensee
    account, and NOT_OWNER when the claims name another key than ``device``: nothing is
    signed then.
    """
    claims = LicenceClaims.decode(request.claims)
    if claims.holder != device.public:
        raise LicentiaError(Reason.NOT_OWNER, "the request is not addressed to this key")
    licensee = request.advertiser_key
    key = pairwise.pairwise_key(holder_secret, licensee)
    bound = dataclasses.replace(claims, holder=key.public).encode()
    return exchange_pb2.ApproveRequestRequest(
        request_id=request.request_id,
        holder_signature=approve(key, bound).signature,
        consent_key=key.public.raw,
        consent_key_proof=pairwise.pseudonym_proof(key, account, licensee),
    )


def standing_rule(
    key: PrivateKey,
    *,
    categories: Iterable[DataCategory],
    purposes: Iterable[Purpose],
    media: Iterable[Medium],
    territories: Iterable[str],
    assets: Iterable[bytes],
    not_before: int,
    not_after: int,
    max_term_seconds: int,
    min_price_per_day: int,
    currency: str = "EUR",
    allow_exclusive: bool = False,
    max_uses: int = 0,
    licensees: Iterable[PublicKey] = (),
) -> SignedRule:
    """A new standing rule (a fresh id) signed with ``key``; nothing is sent.

    Raises ``LicentiaError`` for a rule the protocol refuses (SENSITIVE_USE_NEEDS_APPROVAL
    for political campaigns, AI training or opinions, which are always asked).
    """
    rule = StandingRule(
        rule_id=secrets.token_bytes(RULE_ID_BYTES),
        holder=key.public,
        scope=Scope.of(categories, purposes, media, territories),
        asset_sha256=frozenset(assets),
        not_before=not_before,
        not_after=not_after,
        max_term_seconds=max_term_seconds,
        min_price_per_day_minor=min_price_per_day,
        currency=currency.upper(),
        allow_exclusive=allow_exclusive,
        max_uses=max_uses,
        licensee_keys=frozenset(k.raw for k in licensees),
    )
    consent = sign_standing_rule(key, rule)
    return SignedRule(
        rule,
        licence_pb2.StandingConsent(rule=consent.rule_bytes, holder_signature=consent.signature),
    )


def withdrawal(
    amount: int, payout_reference: str, idempotency_key: bytes
) -> ledger_pb2.WithdrawRequest:
    """Withdraw ``amount`` minor units to ``payout_reference``, once per key."""
    return ledger_pb2.WithdrawRequest(
        amount_minor=amount, payout_reference=payout_reference, idempotency_key=idempotency_key
    )


def new_idempotency_key() -> bytes:
    """A fresh idempotency key for :meth:`withdraw` (keep it to retry a failed attempt)."""
    return secrets.token_bytes(IDEMPOTENCY_KEY_BYTES)


def revocation_from(resp: licences_pb2.RevokeLicenceResponse) -> Revocation:
    """The :class:`Revocation` an answer to RevokeLicence holds."""
    try:
        receipt = records_pb2.TerminationReceipt.FromString(resp.receipt.receipt)
    except DecodeError as e:
        raise LicentiaError(Reason.MALFORMED, f"an unreadable termination receipt: {e}") from None
    return Revocation(resp.licence, resp.receipt, receipt)


def mine(
    account: bytes, records: Iterable[records_pb2.LicenceRecord]
) -> list[records_pb2.LicenceRecord]:
    """The records naming ``account`` (the holder's account id) as their holder."""
    return [x for x in records if x.holder_key == account]


def is_holder(account: bytes, record: records_pb2.LicenceRecord) -> bool:
    """Whether ``record`` names ``account`` as its holder."""
    return record.holder_key == account
