"""Signed checkpoints of the transparency log, in the C2SP formats.

A checkpoint (c2sp.org/tlog-checkpoint) is the text::

    <origin>\\n<tree size, decimal>\\n<base64 root hash>\\n[<extension line>\\n ...]

wrapped in a signed note (c2sp.org/signed-note): the text, a blank line, then one line
per signature, ``— <key name> <base64(4-byte key id || signature)>\\n``. The key id of
an Ed25519 key is the first 4 bytes of SHA-256(key name || 0x0A || 0x01 || public key),
and a verifier key is written ``<name>+<hex key id>+<base64(0x01 || public key)>``
(:func:`vkey`). Base64 is the standard alphabet with padding (RFC 4648 §4). These are
the formats Go's ``golang.org/x/mod/sumdb/note``, the transparency-dev witnesses and
other C2SP tools read, so any of them can check, cosign and monitor our log.

**Why these signatures are not domain-separated.** Every other Licentia signature
covers ``domain || 0x00 || payload`` (see :mod:`licentia.keys`). A note signature is
plain Ed25519 (RFC 8032) over the note text itself, because that is what the C2SP
specification — and so every existing verifier — checks; the origin line and the note
format are what tie it to one log. The two kinds cannot be confused even under one
key: every Licentia signing input contains a 0x00 byte right after its ASCII domain,
and a note text never contains a control character (:func:`sign_note` refuses one).
Still, the log should sign with a key of its own.

:func:`open_checkpoint` returns a :class:`Checkpoint` only when a signature by the
expected key verifies; every refusal is a ``LicentiaError`` (``MALFORMED``,
``TOO_LARGE`` or ``BAD_SIGNATURE``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

import nacl.exceptions
import nacl.signing
from nacl.bindings import crypto_sign_open

from .errors import LicentiaError, Reason
from .keys import PUBLIC_KEY_BYTES, SIGNATURE_BYTES, PrivateKey, PublicKey
from .merkle import HASH_BYTES, MAX_TREE_SIZE

__all__ = [
    "KEY_ID_BYTES",
    "MAX_NOTE_BYTES",
    "MAX_SIGNATURES",
    "SIGNATURE_TYPE_ED25519",
    "Checkpoint",
    "check_key_name",
    "key_id",
    "open_checkpoint",
    "open_note",
    "parse_vkey",
    "sign_checkpoint",
    "sign_note",
    "vkey",
]


#: Notes longer than this (UTF-8 bytes) are refused before parsing. The signed-note
#: spec asks verifiers to accept at least 16 signatures, post-quantum ones included
#: (an ML-DSA-44 cosignature line is about 3.3 KB), hence 64 KiB rather than less.
MAX_NOTE_BYTES = 64 * 1024
#: At most this many signature lines (Go's note package has the same limit).
MAX_SIGNATURES = 100
#: The signature type byte of Ed25519 note signatures (signed-note, "Signature types").
SIGNATURE_TYPE_ED25519 = 0x01
KEY_ID_BYTES = 4

_SIGNATURE_PREFIX = "\u2014 "  # em dash, space
_DECIMAL = re.compile(r"(?:0|[1-9][0-9]*)")
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_HEX_KEY_ID = re.compile(r"[0-9a-f]{8}")


def _has_control(text: str, allow_newline: bool) -> bool:
    return any(ch < " " and not (allow_newline and ch == "\n") for ch in text)


def _check_text_line(line: str, what: str) -> None:
    """A non-empty line of a note text: no newline, no control character, valid UTF-8."""
    if not line or _has_control(line, allow_newline=False):
        raise LicentiaError(Reason.MALFORMED, f"{what} must be a non-empty line of text")
    _utf8(line)


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise LicentiaError(Reason.MALFORMED, "not valid UTF-8") from None


def _b64decode(text: str) -> bytes:
    """Strict standard base64: alphabet, padding, and the one canonical encoding."""
    if not _BASE64.fullmatch(text) or len(text) % 4:
        raise LicentiaError(Reason.MALFORMED, "not base64")
    try:
        raw = binascii.a2b_base64(text, strict_mode=True)
    except binascii.Error:
        raise LicentiaError(Reason.MALFORMED, "not base64") from None
    if _b64encode(raw) != text:
        raise LicentiaError(Reason.MALFORMED, "not canonical base64")
    return raw


def _b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def check_key_name(name: str) -> None:
    """Refuse a key name the signed-note spec forbids: empty, or with a Unicode space,
    a ``+`` or a control character. Raises ``LicentiaError(MALFORMED)``."""
    if (
        not isinstance(name, str)
        or not name
        or any(ch.isspace() or ch == "+" or ch < " " for ch in name)
    ):
        raise LicentiaError(Reason.MALFORMED, "a key name is non-empty, without spaces or '+'")
    _utf8(name)


def key_id(name: str, public_key: PublicKey) -> bytes:
    """The 4-byte key id: SHA-256(name || 0x0A || 0x01 || public key)[:4]."""
    check_key_name(name)
    material = _utf8(name) + b"\n" + bytes([SIGNATURE_TYPE_ED25519]) + public_key.raw
    return hashlib.sha256(material).digest()[:KEY_ID_BYTES]


def vkey(name: str, public_key: PublicKey) -> str:
    """The C2SP verifier key text ``<name>+<hex key id>+<base64(0x01 || public key)>``."""
    encoded = _b64encode(bytes([SIGNATURE_TYPE_ED25519]) + public_key.raw)
    return f"{name}+{key_id(name, public_key).hex()}+{encoded}"


def parse_vkey(text: str) -> tuple[str, bytes, PublicKey]:
    """Parse a verifier key: ``(name, 4-byte key id, public key)``.

    Strict: an Ed25519 key (type 0x01, 32 bytes), canonical base64, a lowercase 8-digit
    hex key id that matches the name and key. Raises ``LicentiaError(MALFORMED)``.
    """
    if not isinstance(text, str):
        raise LicentiaError(Reason.MALFORMED, "a verifier key is text")
    parts = text.split("+", 2)
    if len(parts) != 3 or not _HEX_KEY_ID.fullmatch(parts[1]):
        raise LicentiaError(Reason.MALFORMED, "a verifier key is <name>+<key id>+<key>")
    name, hex_id, encoded = parts
    check_key_name(name)
    raw = _b64decode(encoded)
    if len(raw) != 1 + PUBLIC_KEY_BYTES or raw[0] != SIGNATURE_TYPE_ED25519:
        raise LicentiaError(Reason.MALFORMED, "not an Ed25519 verifier key")
    public_key = PublicKey(raw[1:])
    expected = key_id(name, public_key)
    if bytes.fromhex(hex_id) != expected:
        raise LicentiaError(Reason.MALFORMED, "verifier key id does not match the key")
    return name, expected, public_key


# -- signed notes ------------------------------------------------------------------------


def sign_note(text: str, key_name: str, private_key: PrivateKey) -> str:
    """The signed note: ``text``, a blank line, and one Ed25519 signature line.

    ``text`` must be non-empty UTF-8 ending in a newline, without control characters
    other than newlines. The signature is RFC 8032 Ed25519 over the UTF-8 bytes of
    ``text`` — deliberately without Licentia's signature domain (see the module notes).
    """
    check_key_name(key_name)
    if not isinstance(text, str) or not text.endswith("\n") or _has_control(text, True):
        raise LicentiaError(Reason.MALFORMED, "a note text is lines ending in a newline")
    message = _utf8(text)
    signature = nacl.signing.SigningKey(private_key.seed).sign(message).signature
    blob = key_id(key_name, private_key.public) + signature
    note = f"{text}\n{_SIGNATURE_PREFIX}{key_name} {_b64encode(blob)}\n"
    if len(_utf8(note)) > MAX_NOTE_BYTES:
        raise LicentiaError(Reason.TOO_LARGE, "note too large")
    return note


def open_note(note: str | bytes, key_name: str, public_key: PublicKey) -> str:
    """Check a signed note against one trusted key and return its text.

    Strict (c2sp.org/signed-note): at most :data:`MAX_NOTE_BYTES` of valid UTF-8, no
    control character but newlines, the text separated from the signature lines by the
    last blank line, 1 to :data:`MAX_SIGNATURES` well-formed signature lines each ending
    in a newline. Lines by other keys (another name or key id) are ignored; every line
    by this key must verify, and at least one must. Raises ``LicentiaError``:
    ``TOO_LARGE``, ``MALFORMED``, or ``BAD_SIGNATURE``.
    """
    check_key_name(key_name)
    if isinstance(note, bytes):
        if len(note) > MAX_NOTE_BYTES:
            raise LicentiaError(Reason.TOO_LARGE, "note too large")
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError:
            raise LicentiaError(Reason.MALFORMED, "note is not UTF-8") from None
    elif not isinstance(note, str):
        raise LicentiaError(Reason.MALFORMED, "a note is text")
    if len(note) > MAX_NOTE_BYTES or len(_utf8(note)) > MAX_NOTE_BYTES:
        raise LicentiaError(Reason.TOO_LARGE, "note too large")
    if _has_control(note, allow_newline=True):
        raise LicentiaError(Reason.MALFORMED, "note contains a control character")
    split = note.rfind("\n\n")
    if split < 0 or not note.endswith("\n"):
        raise LicentiaError(Reason.MALFORMED, "note has no signature block")
    text, block = note[: split + 1], note[split + 2 :]
    lines = block[:-1].split("\n") if block else []
    if not lines:
        raise LicentiaError(Reason.MALFORMED, "note has no signature")
    if len(lines) > MAX_SIGNATURES:
        raise LicentiaError(Reason.TOO_LARGE, "too many signatures")

    wanted_id = key_id(key_name, public_key)
    message = _utf8(text)
    verified = False
    for line in lines:
        name, blob = _parse_signature_line(line)
        if name != key_name or blob[:KEY_ID_BYTES] != wanted_id:
            continue  # another signer (a witness, a rotated key): ignored, per the spec
        signature = blob[KEY_ID_BYTES:]
        if not _verify(public_key, message, signature):
            raise LicentiaError(Reason.BAD_SIGNATURE, "note signature does not verify")
        verified = True
    if not verified:
        raise LicentiaError(Reason.BAD_SIGNATURE, "note is not signed by the expected key")
    return text


def _parse_signature_line(line: str) -> tuple[str, bytes]:
    if not line.startswith(_SIGNATURE_PREFIX):
        raise LicentiaError(Reason.MALFORMED, "a signature line starts with an em dash")
    name, sep, encoded = line[len(_SIGNATURE_PREFIX) :].partition(" ")
    if not sep:
        raise LicentiaError(Reason.MALFORMED, "a signature line is '— <name> <signature>'")
    check_key_name(name)
    blob = _b64decode(encoded)
    if len(blob) <= KEY_ID_BYTES:
        raise LicentiaError(Reason.MALFORMED, "signature too short")
    return name, blob


def _verify(public_key: PublicKey, message: bytes, signature: bytes) -> bool:
    if len(signature) != SIGNATURE_BYTES:
        return False
    try:
        crypto_sign_open(signature + message, public_key.raw)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError):
        return False
    return True


# -- checkpoints -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A tree head: the log's ``origin``, its ``size`` and its 32-byte ``root`` hash.

    ``extensions`` are the optional opaque lines after the root (we write none, but
    keep those we read). Values are checked on construction.
    """

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_text_line(self.origin, "the origin")
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise LicentiaError(Reason.MALFORMED, "a tree size is an integer")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise LicentiaError(Reason.MALFORMED, "tree size out of range")
        if not isinstance(self.root, bytes) or len(self.root) != HASH_BYTES:
            raise LicentiaError(Reason.MALFORMED, "a root hash is 32 bytes")
        if not isinstance(self.extensions, tuple):
            raise LicentiaError(Reason.MALFORMED, "extensions are a tuple of lines")
        for line in self.extensions:
            _check_text_line(line, "an extension line")

    def body(self) -> str:
        """The checkpoint note text (c2sp.org/tlog-checkpoint), ending in a newline."""
        lines = [self.origin, str(self.size), _b64encode(self.root), *self.extensions]
        return "".join(line + "\n" for line in lines)


def _parse_body(text: str, origin: str) -> Checkpoint:
    lines = text[:-1].split("\n")
    if len(lines) < 3 or not all(lines):
        raise LicentiaError(Reason.MALFORMED, "a checkpoint is at least three non-empty lines")
    if lines[0] != origin:
        raise LicentiaError(Reason.MALFORMED, "checkpoint is for another log")
    if not _DECIMAL.fullmatch(lines[1]) or len(lines[1]) > len(str(MAX_TREE_SIZE)):
        raise LicentiaError(Reason.MALFORMED, "tree size is not a decimal number")
    size = int(lines[1])
    if size > MAX_TREE_SIZE:
        raise LicentiaError(Reason.MALFORMED, "tree size out of range")
    return Checkpoint(lines[0], size, _b64decode(lines[2]), tuple(lines[3:]))


def sign_checkpoint(checkpoint: Checkpoint, key_name: str, private_key: PrivateKey) -> str:
    """The signed note of ``checkpoint``. The spec recommends ``key_name`` = the origin."""
    return sign_note(checkpoint.body(), key_name, private_key)


def open_checkpoint(
    note_text: str | bytes, name: str, public_key: PublicKey, origin: str
) -> Checkpoint:
    """Verify a signed checkpoint from the log ``origin`` under key ``(name, public_key)``.

    The note is checked as :func:`open_note` does, then its text must be a checkpoint
    whose origin line is exactly ``origin``, with a canonical decimal size and a
    canonical base64 32-byte root. Raises ``LicentiaError`` otherwise.
    """
    return _parse_body(open_note(note_text, name, public_key), origin)
