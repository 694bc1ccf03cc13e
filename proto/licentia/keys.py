"""Ed25519 keys, domain-separated signatures, key ids, and the issuer key set.

Every Licentia signature is Ed25519 (RFC 8032, via PyNaCl) over
``domain || 0x00 || payload``, where ``domain`` is one of the fixed ASCII strings below:
a signature made for one purpose can never be replayed as another. Public keys are
written ``ed25519:<base64url>`` so that the algorithm is always named.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

import nacl.exceptions
import nacl.signing
from nacl.bindings import crypto_sign_open

from .encoding import b64url_decode, b64url_encode
from .errors import LicentiaError, Reason
from .v1 import keys_pb2

__all__ = [
    "CONSENT",
    "DOMAINS",
    "ERASURE_RECEIPT",
    "HTTP_REQUEST",
    "ISSUANCE",
    "ISSUANCE_V2",
    "KEY_ID",
    "KEY_ID_BYTES",
    "KEY_POSSESSION",
    "KEY_SET",
    "KEY_SET_CHANGE",
    "PRESENTATION",
    "PSEUDONYM",
    "PUBLIC_KEY_BYTES",
    "REQUEST",
    "SEALED_SECRET",
    "SEED_BYTES",
    "SIGNATURE_BYTES",
    "STANDING_RULE",
    "STATUS_EVENT",
    "STATUS_EVENT_V2",
    "STATUS_HEARTBEAT",
    "STATUS_SNAPSHOT",
    "TERMINATION_RECEIPT",
    "IssuerKey",
    "IssuerKeyResolver",
    "IssuerKeySet",
    "PrivateKey",
    "PublicKey",
    "key_id_of",
    "signed_message",
    "verify_signature",
]


# -- signature domains (docs/token-format.md, "Signatures") ------------------------------
CONSENT = b"licentia.v1.consent"
STANDING_RULE = b"licentia.v1.standing-rule"
ISSUANCE = b"licentia.v1.issuance"
ISSUANCE_V2 = b"licentia.v2.issuance"
PRESENTATION = b"licentia.v1.presentation"
STATUS_SNAPSHOT = b"licentia.v1.status-snapshot"
#: Retired: status events before status lists named their list (never signed now).
STATUS_EVENT = b"licentia.v1.status-event"
#: A status event naming its list (token-format §7).
STATUS_EVENT_V2 = b"licentia.v2.status-event"
STATUS_HEARTBEAT = b"licentia.v1.status-heartbeat"
REQUEST = b"licentia.v1.request"
#: A request signature over an HTTP/JSON body (the gateway's; token-format §6): never valid
#: for a gRPC call, nor the reverse.
HTTP_REQUEST = b"licentia.v1.http-request"
TERMINATION_RECEIPT = b"licentia.v1.termination-receipt"
ERASURE_RECEIPT = b"licentia.v1.erasure-receipt"
KEY_SET_CHANGE = b"licentia.v1.key-set-change"
KEY_POSSESSION = b"licentia.v1.key-possession"
#: A pairwise holder key says which account and licensee it serves (token-format §1b).
PSEUDONYM = b"licentia.v2.pseudonym"
SEALED_SECRET = b"licentia.v2.sealed-secret"
#: Not a signature domain: the prefix hashed into key ids.
KEY_ID = b"licentia.v1.key-id"
#: Not a signature domain: the prefix hashed into an issuer key set's digest.
KEY_SET = b"licentia.v1.issuer-key-set"

DOMAINS: frozenset[bytes] = frozenset(
    {
        CONSENT,
        STANDING_RULE,
        ISSUANCE,
        ISSUANCE_V2,
        PRESENTATION,
        STATUS_SNAPSHOT,
        STATUS_EVENT,
        STATUS_EVENT_V2,
        STATUS_HEARTBEAT,
        REQUEST,
        HTTP_REQUEST,
        TERMINATION_RECEIPT,
        ERASURE_RECEIPT,
        KEY_SET_CHANGE,
        KEY_POSSESSION,
        PSEUDONYM,
        SEALED_SECRET,
    }
)

PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
SEED_BYTES = 32
KEY_ID_BYTES = 8
_TEXT_PREFIX = "ed25519:"


def signed_message(domain: bytes, payload: bytes) -> bytes:
    """The exact bytes an Ed25519 signature of ``domain`` covers."""
    return domain + b"\x00" + payload


def key_id_of(public_key: bytes) -> bytes:
    """First 8 bytes of SHA-256(``licentia.v1.key-id`` || 0x00 || public key)."""
    return hashlib.sha256(KEY_ID + b"\x00" + public_key).digest()[:KEY_ID_BYTES]


@dataclass(frozen=True, slots=True)
class PublicKey:
    """An Ed25519 public key (32 raw bytes)."""

    raw: bytes

    def __post_init__(self) -> None:
        if len(self.raw) != PUBLIC_KEY_BYTES:
            raise LicentiaError(Reason.MALFORMED, "an Ed25519 public key is 32 bytes")

    @classmethod
    def from_text(cls, text: str) -> PublicKey:
        """Parse ``ed25519:<base64url>``; raises ``LicentiaError(MALFORMED)``."""
        if not text.startswith(_TEXT_PREFIX):
            raise LicentiaError(Reason.MALFORMED, "a public key is written ed25519:<base64url>")
        return cls(b64url_decode(text[len(_TEXT_PREFIX) :]))

    @property
    def text(self) -> str:
        """The key as ``ed25519:<base64url>``."""
        return _TEXT_PREFIX + b64url_encode(self.raw)

    @property
    def key_id(self) -> bytes:
        """The 8-byte key id (see :func:`key_id_of`)."""
        return key_id_of(self.raw)

    def verify(self, domain: bytes, payload: bytes, signature: bytes) -> bool:
        """True only if ``signature`` is this key's over ``domain || 0x00 || payload``."""
        return verify_signature(self.raw, domain, payload, signature)

    def __str__(self) -> str:
        return self.text


def verify_signature(public_key: bytes, domain: bytes, payload: bytes, signature: bytes) -> bool:
    """Verify a domain-separated Ed25519 signature; never raises for bad input."""
    if len(signature) != SIGNATURE_BYTES or len(public_key) != PUBLIC_KEY_BYTES:
        return False
    try:
        # The binding behind VerifyKey.verify, without building a VerifyKey per call.
        crypto_sign_open(signature + domain + b"\x00" + payload, public_key)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError):
        return False
    return True


class PrivateKey:
    """An Ed25519 signing key. Its ``repr`` never shows the secret."""

    __slots__ = ("_signing", "public")

    def __init__(self, signing: nacl.signing.SigningKey) -> None:
        self._signing = signing
        self.public = PublicKey(bytes(signing.verify_key))

    @classmethod
    def generate(cls) -> PrivateKey:
        """A new random key from the operating system's CSPRNG."""
        return cls(nacl.signing.SigningKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> PrivateKey:
        """The key derived from a 32-byte RFC 8032 secret seed."""
        if len(seed) != SEED_BYTES:
            raise LicentiaError(Reason.MALFORMED, "an Ed25519 seed is 32 bytes")
        return cls(nacl.signing.SigningKey(seed))

    @property
    def seed(self) -> bytes:
        """The 32-byte secret seed: store it only encrypted."""
        return bytes(self._signing)

    def sign(self, domain: bytes, payload: bytes) -> bytes:
        """The 64-byte signature over ``domain || 0x00 || payload``."""
        if domain not in DOMAINS:
            raise ValueError("unknown signature domain")
        return self._signing.sign(domain + b"\x00" + payload).signature

    def __repr__(self) -> str:
        return f"PrivateKey(public={self.public.text})"


@dataclass(frozen=True, slots=True)
class IssuerKey:
    """An exchange signing key and the window ``[not_before, not_after)`` in which it signs.

    ``not_after`` is ``None`` while the key is current. A retired key stays published so
    that what it signed keeps verifying.
    """

    public: PublicKey
    not_before: int
    not_after: int | None = None

    @property
    def key_id(self) -> bytes:
        """The key's 8-byte id."""
        return self.public.key_id

    def may_sign_at(self, t: int) -> bool:
        """True if the key was allowed to sign at unix time ``t``."""
        return self.not_before <= t and (self.not_after is None or t < self.not_after)

    def to_proto(self) -> keys_pb2.IssuerKey:
        """The wire form."""
        return keys_pb2.IssuerKey(
            key_id=self.key_id,
            public_key=self.public.raw,
            not_before=self.not_before,
            not_after=self.not_after or 0,
        )

    @classmethod
    def from_proto(cls, msg: keys_pb2.IssuerKey) -> IssuerKey:
        """Parse the wire form; the key id must match the key."""
        key = cls(PublicKey(msg.public_key), msg.not_before, msg.not_after or None)
        if msg.key_id != key.key_id:
            raise LicentiaError(Reason.MALFORMED, "issuer key id does not match its key")
        if key.not_after is not None and key.not_after <= key.not_before:
            raise LicentiaError(Reason.MALFORMED, "issuer key window is empty")
        return key


class IssuerKeyResolver(Protocol):
    """Finds an issuer key by id; ``None`` when the key is unknown or withdrawn."""

    def resolve(self, key_id: bytes) -> IssuerKey | None:
        """The key with this id, or ``None``."""
        ...


class IssuerKeySet:
    """An immutable set of trusted issuer keys, by key id."""

    __slots__ = ("_by_id", "_digest")

    #: Cap on the number of keys accepted from the wire.
    MAX_KEYS = 256

    def __init__(self, keys: Iterable[IssuerKey]) -> None:
        by_id: dict[bytes, IssuerKey] = {}
        for key in keys:
            if key.key_id in by_id:
                raise LicentiaError(Reason.MALFORMED, "duplicate issuer key id")
            by_id[key.key_id] = key
        if len(by_id) > self.MAX_KEYS:
            raise LicentiaError(Reason.TOO_LARGE, "too many issuer keys")
        self._by_id: Mapping[bytes, IssuerKey] = by_id
        self._digest: bytes | None = None  # computed by digest() when first asked

    def resolve(self, key_id: bytes) -> IssuerKey | None:
        """The key with this id, or ``None``."""
        return self._by_id.get(key_id)

    def __iter__(self) -> Iterator[IssuerKey]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    def digest(self) -> bytes:
        """SHA-256 of the set in canonical form (``licentia.v1.issuer-key-set`` ‖ 0x00 ‖ the
        ``IssuerKeySet`` message with its keys sorted by id): equal sets, equal digests. The
        exchange's signed heartbeats carry it, so a verifier notices a rotation or a
        withdrawal within one heartbeat."""
        if self._digest is None:
            ordered = sorted(self._by_id.values(), key=lambda k: k.key_id)
            msg = keys_pb2.IssuerKeySet(keys=[k.to_proto() for k in ordered])
            self._digest = hashlib.sha256(
                KEY_SET + b"\x00" + msg.SerializeToString(deterministic=True)
            ).digest()
        return self._digest

    def to_proto(self) -> keys_pb2.IssuerKeySet:
        """The wire form."""
        return keys_pb2.IssuerKeySet(keys=[k.to_proto() for k in self._by_id.values()])

    @classmethod
    def from_proto(cls, msg: keys_pb2.IssuerKeySet) -> IssuerKeySet:
        """Parse the wire form (at most ``MAX_KEYS`` keys)."""
        if len(msg.keys) > cls.MAX_KEYS:
            raise LicentiaError(Reason.TOO_LARGE, "too many issuer keys")
        return cls(IssuerKey.from_proto(k) for k in msg.keys)
