"""Canonical text and integer encodings shared by every signed format.

Base64url is RFC 4648 section 5 without padding, and decoding is strict: only the
alphabet, no padding, no whitespace, and the unused trailing bits must be zero, so that
every byte string has exactly one text form (no malleable tokens).
"""

from __future__ import annotations

import base64
import binascii
import struct
from typing import TypeVar

from google.protobuf.message import DecodeError, Message

from .errors import LicentiaError, Reason

__all__ = ["b64url_decode", "b64url_encode", "parse_canonical", "u32be", "u64be"]


_M = TypeVar("_M", bound=Message)
#: URL-safe to standard alphabet; '+' '/' and '=' become bytes strict mode refuses.
_URL_TO_STD = bytes.maketrans(b"-_+/=", b"+/-_*")
_B64_VALUE = {
    c: i for i, c in enumerate(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
}
#: By length mod 4: the padding to add, and the bits of the last character that must be 0.
_PADDING = (b"", b"", b"==", b"=")
_UNUSED_BITS = (0, 0, 0x0F, 0x03)


def b64url_encode(data: bytes) -> str:
    """Encode ``data`` as unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode canonical unpadded base64url, or raise ``LicentiaError(MALFORMED)``.

    Strict: only the URL-safe alphabet, no padding or whitespace, and the unused bits of
    the last character must be zero, so every byte string has exactly one text form.
    """
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError:
        raise LicentiaError(Reason.MALFORMED, "not base64url") from None
    tail = len(raw) & 3
    if tail == 1 or (tail and _B64_VALUE.get(raw[-1], 0) & _UNUSED_BITS[tail]):
        raise LicentiaError(Reason.MALFORMED, "not canonical base64url")
    try:
        # The swap makes '+', '/' and '=' invalid, so strict mode refuses them like any
        # stray byte (padding is never accepted: only the one added here).
        return binascii.a2b_base64(raw.translate(_URL_TO_STD) + _PADDING[tail], strict_mode=True)
    except binascii.Error:
        raise LicentiaError(Reason.MALFORMED, "not base64url") from None


def u32be(n: int) -> bytes:
    """Four-byte big-endian length prefix."""
    return struct.pack(">I", n)


def u64be(n: int) -> bytes:
    """Eight-byte big-endian unsigned integer."""
    return struct.pack(">Q", n)


def parse_canonical(data: bytes, msg: _M, what: str) -> _M:
    """Parse ``data`` into ``msg`` and require that it re-encodes to exactly ``data``.

    This refuses unknown fields, repeated scalar fields, non-minimal varints and
    reordered fields: anything that would let two byte strings mean the same thing, so
    that every signed object has exactly one encoding. Raises ``LicentiaError(MALFORMED)``.
    """
    try:
        msg.ParseFromString(data)
    except (DecodeError, RecursionError, ValueError):
        raise LicentiaError(Reason.MALFORMED, f"{what} is not valid protobuf") from None
    # Parsing keeps unknown fields and re-emits them verbatim; dropping them (recursively)
    # first makes any unknown field show up as a difference, so it is refused (fail closed).
    msg.DiscardUnknownFields()
    if msg.SerializeToString(deterministic=True) != data:
        raise LicentiaError(Reason.MALFORMED, f"{what} is not in canonical form")
    return msg
