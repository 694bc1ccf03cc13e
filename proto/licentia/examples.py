"""The typical licence of the specification, for benchmarks, tests and vectors.

Two categories, two purposes, two media, two territories, two assets with full SHA-256
digests, both keys, a status index, price terms and a use limit: the shape whose token must
stay within 560 characters. :func:`typical_claims` is its v1 form (plain digests);
:func:`salted` makes any claims v2 (digests salted for the licence), and
:func:`typical_token_v2` issues the typical v2 licence with its log promise;
:func:`uncounted_claims` and :func:`uncounted_token_v2` are the same licence with no use
limit and no price per use: the kind a file's Content Credentials may carry
(token-format §12.2: a file carries no counted licence).
:func:`tiny_png` is the project's one small real image (the demo's photo, the content the
Content Credentials tests, fuzzers and benchmarks sign).
"""

from __future__ import annotations

import dataclasses
import hashlib
import struct
import zlib

from .keys import PrivateKey
from .scope import Scope
from .token import (
    Asset,
    LicenceClaims,
    LogPromise,
    PriceTerms,
    StandingRule,
    approve,
    issue,
    salted_digest,
)
from .vocabulary import DataCategory, Medium, Purpose

__all__ = [
    "DAY",
    "NAME_SHA256",
    "PHOTO_SHA256",
    "salted",
    "tiny_png",
    "typical_claims",
    "typical_rule",
    "typical_token_v2",
    "uncounted_claims",
    "uncounted_token_v2",
]


#: SHA-256 digests of the two example assets (a photo and a name).
PHOTO_SHA256 = hashlib.sha256(b"example photo").digest()
NAME_SHA256 = hashlib.sha256(b"example name").digest()
DAY = 86400


def typical_claims(
    issuer: PrivateKey,
    holder: PrivateKey,
    licensee: PrivateKey,
    now: int,
    index: int = 0,
) -> LicenceClaims:
    """The typical licence, valid for 90 days from ``now``; ``index`` varies id and status."""
    return LicenceClaims(
        licence_id=(0x10_0000 + index).to_bytes(16, "big"),
        issuer_key_id=issuer.public.key_id,
        holder=holder.public,
        licensee=licensee.public,
        assets=(Asset(DataCategory.IMAGE, PHOTO_SHA256), Asset(DataCategory.NAME, NAME_SHA256)),
        scope=Scope.of(
            [DataCategory.IMAGE, DataCategory.NAME],
            [Purpose.ADVERTISING, Purpose.DIRECT_MARKETING],
            [Medium.ONLINE, Medium.SOCIAL],
            ["FR", "DE"],
        ),
        issued_at=now,
        not_before=now,
        not_after=now + 90 * DAY,
        status_index=1_000_000 + index,
        price=PriceTerms("EUR", 45_000, 0, 1000),
        max_uses=3,
    )


def typical_rule(holder: PrivateKey, now: int) -> StandingRule:
    """A standing rule that covers :func:`typical_claims`: marketing in the EU, terms up to
    120 days, at least 1.00 EUR a day, at most 10 uses, both example assets."""
    return StandingRule(
        rule_id=b"\x20" * 16,
        holder=holder.public,
        scope=Scope.of(
            [DataCategory.IMAGE, DataCategory.NAME],
            [Purpose.MARKETING],
            [Medium.ONLINE, Medium.SOCIAL],
            ["EU"],
        ),
        asset_sha256=frozenset({PHOTO_SHA256, NAME_SHA256}),
        not_before=now - DAY,
        not_after=now + 365 * DAY,
        max_term_seconds=120 * DAY,
        min_price_per_day_minor=100,
        currency="EUR",
        max_uses=10,
    )


def salted(claims: LicenceClaims, salt: bytes, status_list: int = 1) -> LicenceClaims:
    """``claims`` as v2 claims: the assets named by their digests salted with ``salt``, the
    licence's bit in list ``status_list`` (by default 1, the exchange's first sharded list;
    v1 claims name list 0, the legacy list)."""
    return dataclasses.replace(
        claims,
        asset_salt=salt,
        status_list=status_list,
        assets=tuple(Asset(a.category, salted_digest(salt, a.sha256)) for a in claims.assets),
    )


def typical_token_v2(
    issuer: PrivateKey,
    holder: PrivateKey,
    licensee: PrivateKey,
    now: int,
    index: int = 0,
) -> str:
    """The typical licence as a v2 token approved by ``holder`` (a pairwise key, to the
    format: any key), its assets salted with bytes derived from ``index``, logged at leaf
    ``index`` at ``now``."""
    claims = typical_claims(issuer, holder, licensee, now, index)
    return _approved_v2(issuer, holder, claims, now, index)


def _approved_v2(
    issuer: PrivateKey, holder: PrivateKey, claims: LicenceClaims, now: int, index: int
) -> str:
    """``claims`` as a v2 token approved by ``holder``: its assets salted with bytes derived
    from ``index``, logged at leaf ``index`` at ``now``."""
    salt = hashlib.sha256(b"example salt %d" % index).digest()[:16]
    data = salted(claims, salt).encode()
    return issue(issuer, data, approve(holder, data), promise=LogPromise(index, now))


def uncounted_claims(
    issuer: PrivateKey,
    holder: PrivateKey,
    licensee: PrivateKey,
    now: int,
    index: int = 0,
) -> LicenceClaims:
    """:func:`typical_claims` with no use limit (``max_uses`` 0) and no price per use: priced
    for its term alone, the licence a file may carry (token-format §12.2)."""
    claims = typical_claims(issuer, holder, licensee, now, index)
    price = dataclasses.replace(claims.price, per_use_minor=0)
    return dataclasses.replace(claims, max_uses=0, price=price)


def uncounted_token_v2(
    issuer: PrivateKey,
    holder: PrivateKey,
    licensee: PrivateKey,
    now: int,
    index: int = 0,
) -> str:
    """:func:`typical_token_v2` made from :func:`uncounted_claims`: the typical v2 licence a
    file's Content Credentials may carry, its assets salted and its leaf as there."""
    claims = uncounted_claims(issuer, holder, licensee, now, index)
    return _approved_v2(issuer, holder, claims, now, index)


def tiny_png(width: int = 4, height: int = 4, seed: int = 0) -> bytes:
    """A valid truecolour PNG of ``width`` x ``height`` pixels (8 bits per channel), made by
    hand with zlib and CRC-32 (no imaging library): each row's bytes follow from ``seed``, so
    files with other seeds differ in their pixels. Any image reader shows it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    rows = b"".join(
        b"\x00" + bytes((seed + x * 7 + y * 13) % 256 for x in range(width * 3))
        for y in range(height)
    )  # filter type 0 (none) before each row
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
