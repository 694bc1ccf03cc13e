"""Protobuf ↔ domain conversions at the servicers' edge (and the caps on what comes in)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any, TypeVar, cast

from licentia import territory
from licentia.errors import LicentiaError, Reason
from licentia.scope import MAX_SCOPE_ITEMS, Scope, unknown_value
from licentia.token import is_currency, parse_token
from licentia.v1 import licence_pb2, records_pb2
from licentia.vocabulary import DataCategory, Medium, Purpose

from .model import AssetRow, LicenceRow, Party, RequestRow, StandingRuleRow, Terms

_E = TypeVar("_E", DataCategory, Purpose, Medium)


def for_holder(row: RequestRow) -> RequestRow:
    """The request as its holder may see it, wherever she reads it (her inbox, a request,
    her data export): the advertiser's money is none of her business, so a request that
    failed for it reads as one that can no longer be approved."""
    if row.failure != Reason.INSUFFICIENT_FUNDS.name:
        return row
    return dataclasses.replace(
        row,
        failure=Reason.REQUEST_NOT_APPROVABLE.name,
        reason="this request can no longer be approved",
    )


def enum_value(value: int, kind: type[_E], what: str) -> _E | None:
    """A known enum value, None for 0 (no filter); INVALID_REQUEST naming the field and the
    allowed values otherwise."""
    if not value:
        return None
    try:
        return kind(value)
    except ValueError:
        raise LicentiaError(Reason.INVALID_REQUEST, unknown_value(kind, what, value)) from None


def unknown_territory(code: str) -> str:
    """The message for a territory that is neither a country nor a group."""
    shown = code[:16] + ("…" if len(code) > 16 else "")
    return (
        f"territory: an ISO 3166-1 alpha-2 code or a group ({', '.join(territory.GROUPS)}); "
        f"got {shown!r}"
    )


def enum_set(values: Iterable[int], kind: type[_E], what: str) -> frozenset[_E]:
    """Known, distinct enum values, at most ``MAX_SCOPE_ITEMS``; INVALID_REQUEST otherwise."""
    items = list(values)
    if len(items) > MAX_SCOPE_ITEMS:
        raise LicentiaError(Reason.TOO_LARGE, f"too many {what}")
    try:
        out = frozenset(kind(v) for v in items)
    except ValueError:
        bad = next(v for v in items if v not in kind._value2member_map_)
        raise LicentiaError(Reason.INVALID_REQUEST, unknown_value(kind, what, bad)) from None
    if len(out) != len(items):
        raise LicentiaError(Reason.INVALID_REQUEST, f"duplicate {what}")
    return out


def scope_from(msg: licence_pb2.Scope) -> Scope:
    """A scope from the wire; INVALID_REQUEST for anything malformed."""
    try:
        return Scope.from_proto(msg)
    except LicentiaError as e:
        reason = Reason.TOO_LARGE if e.reason == Reason.TOO_LARGE else Reason.INVALID_REQUEST
        raise LicentiaError(reason, str(e)) from None


def terms_from(msg: records_pb2.Terms) -> Terms:
    """Terms from the wire; INVALID_REQUEST for anything malformed."""
    if len(msg.territories) > MAX_SCOPE_ITEMS:
        raise LicentiaError(Reason.TOO_LARGE, "too many territories")
    for code in msg.territories:
        if not territory.is_territory(code):
            raise LicentiaError(Reason.INVALID_REQUEST, unknown_territory(code))
    if len(set(msg.territories)) != len(msg.territories):
        raise LicentiaError(Reason.INVALID_REQUEST, "duplicate territory")
    try:
        scope = Scope(
            enum_set(msg.categories, DataCategory, "category"),
            enum_set(msg.allowed_purposes, Purpose, "purpose"),
            enum_set(msg.media, Medium, "medium"),
            frozenset(msg.territories),
        )
    except LicentiaError as e:
        raise LicentiaError(Reason.INVALID_REQUEST, str(e)) from None
    currency = msg.currency
    if not is_currency(currency):
        raise LicentiaError(Reason.INVALID_REQUEST, "currency is a 3-letter ISO 4217 code")
    return Terms(
        scope=scope,
        refused_purposes=enum_set(msg.refused_purposes, Purpose, "refused purpose"),
        currency=currency,
        price_per_day_minor=msg.price_per_day_minor,
        max_term_seconds=msg.max_term_seconds,
        exclusivity_offered=msg.exclusivity_offered,
        exclusivity_multiplier_bps=msg.exclusivity_multiplier_bps or 10_000,
    )


def _wire(values: Iterable[Any]) -> Any:
    return sorted(values)


def terms_to(t: Terms) -> records_pb2.Terms:
    """The wire form of terms."""
    return records_pb2.Terms(
        categories=_wire(t.scope.categories),
        allowed_purposes=_wire(t.scope.purposes),
        refused_purposes=_wire(t.refused_purposes),
        media=_wire(t.scope.media),
        territories=sorted(t.scope.territories),
        currency=t.currency,
        price_per_day_minor=t.price_per_day_minor,
        max_term_seconds=t.max_term_seconds,
        exclusivity_offered=t.exclusivity_offered,
        exclusivity_multiplier_bps=t.exclusivity_multiplier_bps,
        updated_at=t.updated_at,
    )


def profile_to(p: Party) -> records_pb2.Profile:
    """The wire form of a party."""
    return records_pb2.Profile(
        key=p.key,
        role=cast("Any", int(p.role)),
        handle=p.handle,
        display_name=p.display_name,
        country=p.country,
        registered_at=p.registered_at,
        objecting=p.objecting,
        show_display_name=p.show_name,
    )


def asset_to(a: AssetRow) -> records_pb2.AssetRecord:
    """The wire form of an asset (never its bytes)."""
    return records_pb2.AssetRecord(
        category=cast("Any", int(a.category)),
        sha256=a.sha256,
        label=a.label,
        has_content=a.has_content,
        content_size=a.content_size,
        declared_at=a.declared_at,
    )


def request_to(
    r: RequestRow, organisation: str, *, offer_ref: bytes | None
) -> records_pb2.LicenceRequest:
    """The wire form of a licence request: the holder's view (``offer_ref`` None: it names
    her account), or the advertiser's (it names her by ``offer_ref``, never by her key)."""
    return records_pb2.LicenceRequest(
        request_id=r.request_id,
        state=cast("Any", int(r.state)),
        advertiser_key=r.advertiser_key,
        advertiser_organisation=organisation,
        holder_key=r.holder_key if offer_ref is None else b"",
        offer_ref=offer_ref or b"",
        claims=r.claims,
        created_at=r.created_at,
        expires_at=r.expires_at,
        updated_at=r.updated_at,
        reason=r.reason,
        failure=r.failure,
        auto_approved=r.auto_approved,
        message=r.message,
        erased=not r.claims,
    )


def licence_to(x: LicenceRow, now: int, *, to_holder: bool = False) -> records_pb2.LicenceRecord:
    """The wire form of a licence, with its state at ``now``. Only its holder (``to_holder``)
    is told her account (``holder_key``) and the key that consented (``consent_key``: her
    pseudonym, a device key, or the device that signed the standing rule); anyone else
    (its licensee) is told, in both, only the key the token itself names: her pseudonym for
    that licensee (§1b), or none under a v2 standing rule. An erased licence names none."""
    if to_holder:
        holder = x.holder_key
        consent = x.consent_key or (x.holder_key if x.token else b"")
    else:
        holder = consent = parse_token(x.token).holder_key if x.token else b""
    return records_pb2.LicenceRecord(
        licence_id=x.licence_id,
        token=x.token,
        state=cast("Any", int(x.state_at(now))),
        holder_key=holder,
        licensee_key=x.licensee_key,
        consent_key=consent,
        licensee_device_key=x.licensee_device or (x.licensee_key if x.token else b""),
        issued_at=x.issued_at,
        not_before=x.not_before,
        not_after=x.not_after,
        revoked_at=x.revoked_at,
        uses=x.uses,
        max_uses=x.max_uses,
        request_id=x.request_id,
        status_index=x.status_index,
        status_list=x.status_list,
        asset_sha256=x.plain_assets,
        erased=not x.token,
    )


def rule_to(r: StandingRuleRow) -> records_pb2.StandingRuleRecord:
    """The wire form of a standing rule."""
    return records_pb2.StandingRuleRecord(
        consent=licence_pb2.StandingConsent(rule=r.rule, holder_signature=r.signature),
        created_at=r.created_at,
        withdrawn_at=r.withdrawn_at,
    )
