"""Request signatures: how a holder, an advertiser or a platform signs a call.

The signer covers the method, the SHA-256 of the exact request bytes, a timestamp and a
nonce, under a domain naming the transport: ``licentia.v1.request`` for a gRPC call (the
bytes: the serialized protobuf request), ``licentia.v1.http-request`` for a call through
the HTTP/JSON gateway (the bytes: the HTTP body as sent). So a JSON body's signature is
never valid for a protobuf call, nor the reverse. The four values travel in gRPC metadata
or, over HTTP, in headers of the same names (``x-licentia-key``, ``x-licentia-timestamp``,
``x-licentia-nonce``, ``x-licentia-signature``). The server checks the window, the
signature and the nonce (one nonce store for both transports: a nonce spent on one is
spent on the other); whether the key is registered, and whether it owns what the call
touches, is the server's own business.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from . import keys
from .encoding import b64url_decode, b64url_encode, u32be, u64be
from .errors import LicentiaError, Reason
from .keys import PrivateKey, PublicKey
from .nonces import NonceStore

__all__ = [
    "DEFAULT_WINDOW_SECONDS",
    "HEADERS",
    "KEY_HEADER",
    "MAX_METHOD_CHARS",
    "NONCE_BYTES",
    "NONCE_HEADER",
    "REQUEST_DOMAINS",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "SignedRequest",
    "parse_request_metadata",
    "request_payload",
    "sign_http_request",
    "sign_request",
    "verify_request",
]


KEY_HEADER = "x-licentia-key"
TIMESTAMP_HEADER = "x-licentia-timestamp"
NONCE_HEADER = "x-licentia-nonce"
SIGNATURE_HEADER = "x-licentia-signature"
HEADERS = (KEY_HEADER, TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER)
_HEADER_SET = frozenset(HEADERS)
NONCE_BYTES = 16
MAX_METHOD_CHARS = 256
#: Default window: a request is accepted this many seconds either side of the server's now.
DEFAULT_WINDOW_SECONDS = 60
#: The signature domains of a request: a gRPC call's, an HTTP/JSON call's.
REQUEST_DOMAINS = (keys.REQUEST, keys.HTTP_REQUEST)


def request_payload(method: str, body: bytes, timestamp: int, nonce: bytes) -> bytes:
    """The exact bytes a request signature covers (after the domain)."""
    m = method.encode("utf-8")
    return u32be(len(m)) + m + hashlib.sha256(body).digest() + u64be(timestamp) + nonce


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """The signature values parsed from a call's metadata, not yet verified."""

    key: PublicKey
    timestamp: int
    nonce: bytes
    signature: bytes


def sign_request(
    key: PrivateKey,
    method: str,
    body: bytes,
    now: int,
    nonce: bytes | None = None,
    *,
    domain: bytes = keys.REQUEST,
) -> tuple[tuple[str, str], ...]:
    """The metadata to send with a call of ``method`` whose serialized request is ``body``
    (``domain``: one of :data:`REQUEST_DOMAINS`, the gRPC one by default)."""
    if domain not in REQUEST_DOMAINS:
        raise ValueError("not a request signature domain")
    nonce = secrets.token_bytes(NONCE_BYTES) if nonce is None else nonce
    sig = key.sign(domain, request_payload(method, body, now, nonce))
    return (
        (KEY_HEADER, key.public.text),
        (TIMESTAMP_HEADER, str(now)),
        (NONCE_HEADER, b64url_encode(nonce)),
        (SIGNATURE_HEADER, b64url_encode(sig)),
    )


def sign_http_request(
    key: PrivateKey, method: str, body: bytes, now: int, nonce: bytes | None = None
) -> tuple[tuple[str, str], ...]:
    """The headers to send with an HTTP/JSON gateway call of ``method``
    (``/licentia.v1.Service/Method``) whose body is exactly ``body`` (the JSON bytes sent)."""
    return sign_request(key, method, body, now, nonce, domain=keys.HTTP_REQUEST)


#: Callers' keys by their text, as parsed (a server sees the same few callers over and
#: over); at most :data:`_KEYS_REMEMBERED`, then it starts again. Only keys that parsed are
#: kept, so a text is refused or accepted exactly as :meth:`PublicKey.from_text` would.
_KEYS: dict[str, PublicKey] = {}
_KEYS_REMEMBERED = 4096


def _caller_key(text: str) -> PublicKey:
    key = _KEYS.get(text)
    if key is None:
        key = PublicKey.from_text(text)
        if len(_KEYS) >= _KEYS_REMEMBERED:
            _KEYS.clear()
        _KEYS[text] = key
    return key


def parse_request_metadata(metadata: Iterable[tuple[str, str | bytes]]) -> SignedRequest:
    """Extract the signature values; raises ``LicentiaError(BAD_REQUEST_SIGNATURE)``.

    Each header must appear exactly once.
    """
    found: dict[str, str] = {}
    for name, value in metadata:
        if name in _HEADER_SET:
            if name in found or not isinstance(value, str) or len(value) > 256:
                raise LicentiaError(Reason.BAD_REQUEST_SIGNATURE, "malformed signature metadata")
            found[name] = value
    if len(found) != len(HEADERS):
        raise LicentiaError(Reason.BAD_REQUEST_SIGNATURE, "the call is not signed")
    try:
        ts = found[TIMESTAMP_HEADER]
        # Exactly one text per time: decimal ASCII digits, no sign, no space, no leading
        # zero ("0" itself aside), at most 19 digits.
        if not (ts.isascii() and ts.isdigit()) or len(ts) > 19 or (ts[0] == "0" and ts != "0"):
            raise LicentiaError(Reason.MALFORMED, "bad timestamp")
        req = SignedRequest(
            _caller_key(found[KEY_HEADER]),
            int(ts),
            b64url_decode(found[NONCE_HEADER]),
            b64url_decode(found[SIGNATURE_HEADER]),
        )
    except LicentiaError:
        raise LicentiaError(Reason.BAD_REQUEST_SIGNATURE, "malformed signature metadata") from None
    if len(req.nonce) != NONCE_BYTES or len(req.signature) != keys.SIGNATURE_BYTES:
        raise LicentiaError(Reason.BAD_REQUEST_SIGNATURE, "malformed signature metadata")
    return req


def verify_request(
    req: SignedRequest,
    method: str,
    body: bytes,
    now: int,
    nonces: NonceStore,
    window_seconds: int = DEFAULT_WINDOW_SECONDS,
    *,
    domain: bytes = keys.REQUEST,
) -> PublicKey:
    """Check window, signature, then nonce; return the caller's key or raise ``LicentiaError``.

    ``domain`` is the transport's (:data:`REQUEST_DOMAINS`): a signature made for the other
    transport does not verify. The nonce is recorded only for a valid signature, so a forger
    cannot burn nonces; it is recorded under the key alone, whatever the domain.
    """
    if domain not in REQUEST_DOMAINS:
        raise ValueError("not a request signature domain")
    if abs(now - req.timestamp) > window_seconds:
        raise LicentiaError(Reason.STALE_REQUEST, "request timestamp outside the window")
    try:
        payload = request_payload(method, body, req.timestamp, req.nonce)
    except UnicodeEncodeError:  # a method name that is not text (a lone surrogate)
        payload = b""
    if (
        len(method) > MAX_METHOD_CHARS
        or not payload
        or not req.key.verify(domain, payload, req.signature)
    ):
        raise LicentiaError(Reason.BAD_REQUEST_SIGNATURE, "request signature does not verify")
    if not nonces.add_if_new(req.key.raw + req.nonce, req.timestamp + window_seconds + 1, now):
        raise LicentiaError(Reason.REPLAYED_REQUEST, "request nonce seen before")
    return req.key
