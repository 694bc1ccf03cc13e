"""Sealed log entries: a public log whose entries about an account name nobody.

Every log entry about an account — a licence issued to its holder, a revocation, a change of
its key set — is appended as a :class:`~licentia.v1.transparency_pb2.SealedEntry`
(docs/token-format.md §10c). The account holds a 32-byte **log key** (the exchange keeps it
and gives it to the account's own keys); its entries are numbered ``j`` = 1, 2, 3, … in log
order, and entry ``j`` is:

- ``tag``: the first 16 bytes of ``HMAC-SHA512(log_key, "licentia.v2.log-entry" || 0x00 ||
  u64be(j))`` — the account computes the tags of its next entries and finds them; to
  anyone else a tag is 16 random bytes, different in every entry;
- ``commitment``: ``SHA-256("licentia.v2.log-commitment" || 0x00 || plaintext)``, the
  plaintext being the deterministic encoding of the clear ``LogEntry`` (a licence's token,
  a revocation, a key-set change, an account's erasure): whoever holds a licence's token computes it
  (:func:`licence_commitment`) and checks that this exact token is in the log;
- ``box``: the plaintext, framed and zero-padded to a multiple of 256 bytes (so that its
  length says little), sealed with XSalsa20-Poly1305 under the last 32 bytes of that HMAC
  and an all-zero nonce (each key seals exactly one entry).

Nothing here does I/O; the store seals (:func:`seal`) and the wallet's audit finds and opens
(:class:`TagWindow`, :func:`open_entry`).
"""

from __future__ import annotations

import hashlib
import hmac
import struct

import nacl.exceptions
import nacl.secret

from .encoding import parse_canonical
from .errors import LicentiaError, Reason
from .v1 import transparency_pb2

__all__ = [
    "COMMITMENT_BYTES",
    "LOG_KEY_BYTES",
    "MAX_BOX_BYTES",
    "PAD_BYTES",
    "TAG_BYTES",
    "TagWindow",
    "commitment",
    "entry_secrets",
    "licence_commitment",
    "open_entry",
    "plaintext_of",
    "seal",
    "tag",
]

LOG_KEY_BYTES = 32
TAG_BYTES = 16
COMMITMENT_BYTES = 32
#: The plaintext (with its 4-byte length) is padded to a multiple of this.
PAD_BYTES = 256
#: The largest box a sealed entry may carry (a licence token is at most 4096 characters;
#: a key-set change at most 4096 bytes; a revocation carries a signed call of a few hundred).
MAX_BOX_BYTES = 8192

_ENTRY = b"licentia.v2.log-entry\x00"
_COMMITMENT = b"licentia.v2.log-commitment\x00"
_NONCE = bytes(nacl.secret.SecretBox.NONCE_SIZE)
_MAC = nacl.secret.SecretBox.MACBYTES


def _check_key(log_key: bytes) -> None:
    if len(log_key) != LOG_KEY_BYTES:
        raise LicentiaError(Reason.MALFORMED, f"a log key is {LOG_KEY_BYTES} bytes")


def entry_secrets(log_key: bytes, j: int) -> tuple[bytes, bytes]:
    """``(tag, box key)`` of the account's entry number ``j`` (1, 2, …)."""
    _check_key(log_key)
    if not 1 <= j < 2**64:
        raise LicentiaError(Reason.MALFORMED, "entries are numbered from 1")
    out = hmac.new(log_key, _ENTRY + struct.pack(">Q", j), hashlib.sha512).digest()
    return out[:TAG_BYTES], out[32:]


def tag(log_key: bytes, j: int) -> bytes:
    """The 16-byte tag of the account's entry number ``j``."""
    return entry_secrets(log_key, j)[0]


def commitment(plaintext: bytes) -> bytes:
    """The commitment a sealed entry carries to its plaintext."""
    return hashlib.sha256(_COMMITMENT + plaintext).digest()


def plaintext_of(entry: transparency_pb2.LogEntry) -> bytes:
    """The exact plaintext bytes of a clear entry (its deterministic encoding)."""
    return entry.SerializeToString(deterministic=True)


def licence_commitment(token: str) -> bytes:
    """The commitment of the sealed entry that logs the licence ``token``: what its holder
    (the licensee, a platform) compares with the entry at the token's log promise."""
    return commitment(plaintext_of(transparency_pb2.LogEntry(licence=token)))


def _framed(plaintext: bytes) -> bytes:
    body = struct.pack(">I", len(plaintext)) + plaintext
    return body + bytes(-len(body) % PAD_BYTES)


def seal(log_key: bytes, j: int, entry: transparency_pb2.LogEntry) -> transparency_pb2.LogEntry:
    """The sealed log entry number ``j`` of the account whose log key is ``log_key``, for the
    clear ``entry``. Raises ``LicentiaError(TOO_LARGE)`` if it would not fit a box."""
    plaintext = plaintext_of(entry)
    framed = _framed(plaintext)
    if len(framed) + _MAC > MAX_BOX_BYTES:
        raise LicentiaError(Reason.TOO_LARGE, "a log entry is too large to seal")
    tag_, key = entry_secrets(log_key, j)
    box = nacl.secret.SecretBox(key).encrypt(framed, _NONCE).ciphertext
    return transparency_pb2.LogEntry(
        sealed=transparency_pb2.SealedEntry(tag=tag_, commitment=commitment(plaintext), box=box)
    )


def open_entry(
    log_key: bytes, j: int, sealed: transparency_pb2.SealedEntry
) -> transparency_pb2.LogEntry:
    """The clear entry inside ``sealed``, the account's entry number ``j``.

    Raises ``LicentiaError(MALFORMED)`` when the tag is not entry ``j``'s, the box does not
    open under its key, the framing or padding is wrong, the plaintext does not match the
    commitment, or is not a clear entry (sealed inside sealed, or an issuer-key event)."""
    tag_, key = entry_secrets(log_key, j)
    if not hmac.compare_digest(tag_, sealed.tag):
        raise LicentiaError(Reason.MALFORMED, f"the entry is not the account's entry {j}")
    if len(sealed.box) > MAX_BOX_BYTES:
        raise LicentiaError(Reason.TOO_LARGE, "a sealed box is at most 8 KiB")
    try:
        framed = nacl.secret.SecretBox(key).decrypt(sealed.box, _NONCE)
    except nacl.exceptions.CryptoError:
        raise LicentiaError(Reason.MALFORMED, "the sealed box does not open") from None
    if len(framed) < 4 or len(framed) % PAD_BYTES:
        raise LicentiaError(Reason.MALFORMED, "the sealed plaintext is not padded")
    (n,) = struct.unpack(">I", framed[:4])
    plaintext = framed[4 : 4 + n]
    if len(plaintext) != n or any(framed[4 + n :]):
        raise LicentiaError(Reason.MALFORMED, "the sealed plaintext is not framed")
    if not hmac.compare_digest(commitment(plaintext), sealed.commitment):
        raise LicentiaError(Reason.MALFORMED, "the plaintext does not match the commitment")
    # Canonical (token-format §1): unknown fields, repeats and re-orderings are refused, so
    # the holder opens exactly what a licensee's commitment check accepts.
    entry = parse_canonical(plaintext, transparency_pb2.LogEntry(), "sealed plaintext")
    if entry.WhichOneof("kind") not in (
        "licence",
        "revocation",
        "key_set_change",
        "account_erasure",
    ):
        raise LicentiaError(Reason.MALFORMED, "the sealed plaintext is not a clear entry")
    return entry


class TagWindow:
    """The tags of an account's next entries, to find them in the log in one pass.

    The exchange numbers an account's entries in log order, so the next entry of the account
    is normally number ``found + 1``. The window looks ``ahead`` further, so that an entry
    the log skipped (an entry the exchange numbered but did not append) shows up as a gap
    instead of hiding every later entry.
    """

    def __init__(self, log_key: bytes, found: int = 0, ahead: int = 64) -> None:
        _check_key(log_key)
        self.log_key = log_key
        #: The highest entry number found so far.
        self.found = found
        self.ahead = ahead
        self._tags: dict[bytes, int] = {}
        self._refill()

    def _refill(self) -> None:
        wanted = range(self.found + 1, self.found + 1 + self.ahead)
        self._tags = {t: j for t, j in self._tags.items() if j > self.found}
        have = set(self._tags.values())
        for j in wanted:
            if j not in have:
                self._tags[tag(self.log_key, j)] = j

    def match(self, sealed: transparency_pb2.SealedEntry) -> int | None:
        """The entry number of ``sealed`` if it is one of the account's next entries; the
        window then moves past it. ``None`` for anyone else's entry."""
        j = self._tags.get(bytes(sealed.tag))
        if j is None:
            return None
        self.found = max(self.found, j)
        self._refill()
        return j
