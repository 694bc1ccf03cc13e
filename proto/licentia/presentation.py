"""Presentations: the licensee's proof of possession, for one platform and one use.

The licensee signs (licence id, audience platform id, intended use, time, nonce) with
the key the licence names. A platform accepts it only for itself, only within a
freshness window, and only once (its nonce store refuses a replay). A stolen licence
token alone is therefore worthless.
"""

from __future__ import annotations

import secrets
from typing import NamedTuple

from . import keys
from .encoding import b64url_decode, b64url_encode, parse_canonical
from .errors import LicentiaError, Reason
from .keys import PrivateKey, PublicKey
from .nonces import NonceStore, NonceStoreUnavailableError
from .scope import IntendedUse
from .v1 import licence_pb2

__all__ = [
    "DEFAULT_WINDOW_SECONDS",
    "LICENCE_ID_BYTES",
    "MAX_AUDIENCE_CHARS",
    "MAX_PRESENTATION_CHARS",
    "NONCE_BYTES",
    "PRESENTATION_PREFIX",
    "Presentation",
    "check_presentation",
    "checked",
    "parse_presentation",
    "present",
]


PRESENTATION_PREFIX = "lpr1."
MAX_PRESENTATION_CHARS = 1024
MAX_AUDIENCE_CHARS = 128
NONCE_BYTES = 16
LICENCE_ID_BYTES = 16
#: Default freshness window: a presentation is accepted this many seconds either side of now.
DEFAULT_WINDOW_SECONDS = 120
_new_presentation = tuple.__new__


class Presentation(NamedTuple):
    """A parsed presentation whose signature has not been checked yet (a named tuple: the
    cheapest immutable record, built on every platform check)."""

    claims_bytes: bytes
    licence_id: bytes
    audience: str
    use: IntendedUse
    presented_at: int
    nonce: bytes
    signature: bytes


def present(
    licensee_key: PrivateKey,
    licence_id: bytes,
    audience: str,
    use: IntendedUse,
    now: int,
    nonce: bytes | None = None,
) -> str:
    """The licensee's presentation ``lpr1.…`` of a licence to the platform ``audience``."""
    if not 0 < len(audience) <= MAX_AUDIENCE_CHARS:
        raise LicentiaError(Reason.MALFORMED, "audience is 1 to 128 characters")
    nonce = secrets.token_bytes(NONCE_BYTES) if nonce is None else nonce
    if len(nonce) != NONCE_BYTES:
        raise LicentiaError(Reason.MALFORMED, "a nonce is 16 bytes")
    claims = licence_pb2.PresentationClaims(
        licence_id=licence_id,
        audience=audience,
        use=use.to_proto(),
        presented_at=now,
        nonce=nonce,
    ).SerializeToString(deterministic=True)
    signed = licence_pb2.SignedPresentation(
        claims=claims, signature=licensee_key.sign(keys.PRESENTATION, claims)
    )
    return PRESENTATION_PREFIX + b64url_encode(signed.SerializeToString(deterministic=True))


def parse_presentation(text: str) -> Presentation:
    """Parse ``lpr1.…``; raises ``LicentiaError`` (size checked before decoding)."""
    if not isinstance(text, str):
        raise LicentiaError(Reason.MALFORMED, "a presentation is text")
    if len(text) > MAX_PRESENTATION_CHARS:
        raise LicentiaError(Reason.TOO_LARGE, "presentation too large")
    if not text.startswith(PRESENTATION_PREFIX):
        raise LicentiaError(Reason.MALFORMED, f"a presentation starts with {PRESENTATION_PREFIX!r}")
    signed = licence_pb2.SignedPresentation()
    parse_canonical(b64url_decode(text[len(PRESENTATION_PREFIX) :]), signed, "presentation")
    claims_bytes = signed.claims
    claims = licence_pb2.PresentationClaims()
    parse_canonical(claims_bytes, claims, "presentation claims")
    licence_id = claims.licence_id
    if len(licence_id) != LICENCE_ID_BYTES:
        raise LicentiaError(Reason.MALFORMED, "a presentation names a 16-byte licence id")
    nonce = claims.nonce
    if len(nonce) != NONCE_BYTES or not claims.HasField("use"):
        raise LicentiaError(Reason.MALFORMED, "presentation needs a 16-byte nonce and a use")
    audience = claims.audience
    if not 0 < len(audience) <= MAX_AUDIENCE_CHARS:
        raise LicentiaError(Reason.MALFORMED, "audience is 1 to 128 characters")
    try:
        use = IntendedUse.from_proto(claims.use)
    except LicentiaError:
        raise LicentiaError(Reason.MALFORMED, "presentation names an invalid use") from None
    # tuple.__new__: the named tuple's own __new__ is a Python function over its fields.
    return _new_presentation(
        Presentation,
        (claims_bytes, licence_id, audience, use, claims.presented_at, nonce, signed.signature),
    )


def check_presentation(
    p: Presentation,
    *,
    licensee: PublicKey,
    licence_id: bytes,
    audience: str,
    use: IntendedUse,
    now: int,
    nonces: NonceStore,
    window_seconds: int = DEFAULT_WINDOW_SECONDS,
) -> list[Reason]:
    """Every reason the presentation fails (empty when it holds).

    The nonce is recorded only when everything else holds, so neither a forged nor a
    mismatched presentation can burn a genuine nonce.
    """
    return checked(p, licensee.raw, licence_id, audience, use, now, nonces, window_seconds)


def checked(
    p: Presentation,
    licensee: bytes,
    licence_id: bytes,
    audience: str,
    use: IntendedUse,
    now: int,
    nonces: NonceStore,
    window_seconds: int,
) -> list[Reason]:
    """:func:`check_presentation` with the licensee's raw key, all arguments positional:
    the verification engine's hot path."""
    if not keys.verify_signature(licensee, keys.PRESENTATION, p.claims_bytes, p.signature):
        return [Reason.WRONG_LICENSEE]
    reasons: list[Reason] = []
    if p.licence_id != licence_id or (p.use is not use and p.use != use):
        reasons.append(Reason.PRESENTATION_MISMATCH)
    if p.audience != audience:
        reasons.append(Reason.WRONG_AUDIENCE)
    at = p.presented_at
    if abs(now - at) > window_seconds:
        reasons.append(Reason.PRESENTATION_EXPIRED)
    if not reasons:
        try:
            fresh = nonces.add_if_new(licence_id + p.nonce, at + window_seconds + 1, now)
        except NonceStoreUnavailableError:
            return [Reason.UNAVAILABLE]  # unknown whether it was seen: deny, not a replay
        if not fresh:
            reasons.append(Reason.REPLAYED)
    return reasons
