"""Token v2's parse rules and sealed log entries, each refusal with its reason
(docs/token-format.md §3.6-3.9, §10c)."""

from __future__ import annotations

import struct
from collections.abc import Callable

import nacl.secret
import pytest

from licentia import sealed
from licentia.encoding import b64url_decode, b64url_encode
from licentia.errors import LicentiaError, Reason
from licentia.examples import typical_token_v2
from licentia.keys import IssuerKey, IssuerKeySet, PrivateKey
from licentia.token import (
    DEFAULT_MAX_TERM_SECONDS,
    LogPromise,
    authenticate,
    new_licence_id,
    parse_token,
    time_ordered_id,
)
from licentia.v1 import licence_pb2, transparency_pb2

NOW = 1_800_000_000
ISSUER, HOLDER, LICENSEE = (PrivateKey.from_seed(bytes([i]) * 32) for i in (1, 2, 3))
LOG_KEY = b"\x07" * 32


def _envelope(token: str) -> licence_pb2.SignedLicence:
    return licence_pb2.SignedLicence.FromString(b64url_decode(token[5:]))


def _token(env: licence_pb2.SignedLicence) -> str:
    return "lic2." + b64url_encode(env.SerializeToString(deterministic=True))


def _malformed(token: str) -> None:
    with pytest.raises(LicentiaError) as e:
        parse_token(token)
    assert e.value.reason == Reason.MALFORMED


def test_a_promise_without_a_time_and_a_short_approval_are_malformed() -> None:
    token = typical_token_v2(ISSUER, HOLDER, LICENSEE, NOW)
    assert parse_token(token).promise is not None
    # A promise present but empty would sign as no promise: one licence, two tokens.
    env = _envelope(token)
    env.log_promise.Clear()
    env.log_promise.SetInParent()
    _malformed(_token(env))
    env = _envelope(token)
    env.log_promise.logged_at = 0
    _malformed(_token(env))
    # The promise is framed after the approval: the approval must be exactly 64 bytes.
    env = _envelope(token)
    env.holder_signature = env.holder_signature[:63]
    _malformed(_token(env))


def test_the_promise_is_authenticated_by_the_bytes_the_token_carries() -> None:
    # The parse keeps the promise's exact bytes for the issuer's signature; a parse built by
    # hand without them encodes the promise instead; bytes that are not the token's fail.
    keys = IssuerKeySet([IssuerKey(ISSUER.public, NOW - 86400)])
    u = parse_token(typical_token_v2(ISSUER, HOLDER, LICENSEE, NOW))
    assert u.promise is not None
    assert u.promise_bytes == u.promise.encode()
    assert authenticate(u, keys, DEFAULT_MAX_TERM_SECONDS)[1] == []
    assert authenticate(u._replace(promise_bytes=b""), keys, DEFAULT_MAX_TERM_SECONDS)[1] == []
    other = LogPromise(u.promise.index + 1, u.promise.logged_at).encode()
    forged = u._replace(promise_bytes=other)
    assert authenticate(forged, keys, DEFAULT_MAX_TERM_SECONDS)[1] == [Reason.BAD_SIGNATURE]


def _sealed(plaintext: bytes, j: int, padding: bytes = b"") -> transparency_pb2.SealedEntry:
    tag, key = sealed.entry_secrets(LOG_KEY, j)
    framed = struct.pack(">I", len(plaintext)) + plaintext + padding
    framed += bytes(-len(framed) % sealed.PAD_BYTES)
    box = nacl.secret.SecretBox(key).encrypt(framed, bytes(24)).ciphertext
    return transparency_pb2.SealedEntry(tag=tag, commitment=sealed.commitment(plaintext), box=box)


def test_a_sealed_entry_opens_only_as_its_account_and_number_and_only_canonical() -> None:
    clear = transparency_pb2.LogEntry(licence="lic2.x")
    entry = sealed.seal(LOG_KEY, 3, clear).sealed
    assert sealed.open_entry(LOG_KEY, 3, entry) == clear
    assert len(entry.box) % sealed.PAD_BYTES == nacl.secret.SecretBox.MACBYTES
    refusals: dict[str, Callable[[], object]] = {
        "another number": lambda: sealed.open_entry(LOG_KEY, 4, entry),
        "another account": lambda: sealed.open_entry(b"\x08" * 32, 3, entry),
        "a flipped box": lambda: sealed.open_entry(
            LOG_KEY,
            3,
            transparency_pb2.SealedEntry(
                tag=entry.tag, commitment=entry.commitment, box=entry.box[:-1] + b"\x00"
            ),
        ),
        "another commitment": lambda: sealed.open_entry(
            LOG_KEY,
            3,
            transparency_pb2.SealedEntry(tag=entry.tag, commitment=bytes(32), box=entry.box),
        ),
        # What a licensee's commitment check would refuse, the holder refuses too.
        "an unknown field": lambda: sealed.open_entry(
            LOG_KEY, 5, _sealed(sealed.plaintext_of(clear) + b"\xf8\x3f\x01", 5)
        ),
        "padding not zero": lambda: sealed.open_entry(
            LOG_KEY, 6, _sealed(sealed.plaintext_of(clear), 6, b"\x01")
        ),
        "an issuer-key event": lambda: sealed.open_entry(
            LOG_KEY,
            7,
            _sealed(
                sealed.plaintext_of(
                    transparency_pb2.LogEntry(
                        issuer_key=transparency_pb2.LoggedIssuerKey(key_id=b"k")
                    )
                ),
                7,
            ),
        ),
    }
    for what, attempt in refusals.items():
        with pytest.raises(LicentiaError) as e:
            attempt()
        assert e.value.reason == Reason.MALFORMED, what


def test_the_window_finds_an_accounts_entries_in_order_and_past_a_gap() -> None:
    window = sealed.TagWindow(LOG_KEY, ahead=4)
    other = sealed.seal(b"\x09" * 32, 1, transparency_pb2.LogEntry(licence="x")).sealed
    assert window.match(other) is None
    for j in (1, 2, 4):  # 3 is missing: 4 is still found, and the gap shows
        assert window.match(sealed.seal(LOG_KEY, j, transparency_pb2.LogEntry()).sealed) == j
    assert window.found == 4


def test_time_ordered_ids_sort_by_their_second_and_never_repeat() -> None:
    """A licence id is its second as 4 bytes big-endian, then 12 random bytes: ids of later
    seconds sort after earlier ones, and ids of one second differ."""
    same_second = {new_licence_id(NOW) for _ in range(1000)}
    assert len(same_second) == 1000
    assert {i[:4] for i in same_second} == {NOW.to_bytes(4, "big")}
    assert all(len(i) == 16 for i in same_second)
    later = [time_ordered_id(NOW + d) for d in (1, 60, 86_400)]
    assert max(same_second) < later[0] < later[1] < later[2]
    assert time_ordered_id(2**32 + 5)[:4] == (5).to_bytes(4, "big")  # modulo 2³² (in 2106)
