"""The typical licence of the specification, for benchmarks, tests and vectors.

Two categories, two purposes, two media, two territories, two assets with full SHA-256
digests, both keys, a status index, price terms and a use limit: the shape whose token must
stay within 560 characters.
"""

from __future__ import annotations

import hashlib

from .keys import PrivateKey
from .scope import Scope
from .token import Asset, LicenceClaims, PriceTerms
from .vocabulary import DataCategory, Medium, Purpose

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
