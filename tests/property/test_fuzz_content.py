"""Hypothesis fuzzing of the file reader path: ``licentia.content.read`` then ``check``.

Real PNG, JPEG and WAV files (made by hand here: no imaging library) carry a licence signed
under a content root of a trusted issuer key; each is ALLOW before it is touched. Then bytes
are flipped, inserted, deleted, or the file is cut short, anywhere:

- the reader and the check never raise, whatever the bytes (a :class:`Reading` and a
  :class:`Decision` every time), and a file cut short is never ALLOW;
- a byte changed in the region C2PA's hard binding covers (every byte of the file outside
  its manifest: the bytes before and after it, found as what the signed file shares with
  the file it was made from) is never ALLOW.

A change inside the manifest's own framing that nothing signs (the JUMBF superbox's length)
is not a change of what is signed: the second property leaves the manifest's bytes out; the
first covers them. Hypothesis is derandomized; the budget is small (the whole suite stays
under six minutes).
"""

from __future__ import annotations

import io
import struct
import time
import wave
from functools import cache

import nacl.signing
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from licentia import content, content_certs
from licentia.errors import Reason
from licentia.examples import PHOTO_SHA256, tiny_png, uncounted_token_v2
from licentia.keys import IssuerKey, IssuerKeySet, PrivateKey
from licentia.verify import Decision, VerificationEngine
from licentia.vocabulary import Medium, Purpose

DAY = 86400
#: Today (C2PA signs at the real time: the certificate must be valid now).
NOW = int(time.time()) // DAY * DAY
ISSUER, HOLDER, LICENSEE = (PrivateKey.from_seed(bytes([i]) * 32) for i in (11, 12, 13))
KEYS = IssuerKeySet([IssuerKey(ISSUER.public, NOW - 400 * DAY)])
USE = {"purpose": Purpose.ADVERTISING, "medium": Medium.ONLINE, "territory": "FR"}
FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class NotRevoked:
    """A status source that knows every licence live and fresh."""

    def check(self, status_list: int, status_index: int, now: int) -> Reason | None:
        return None


def _wav() -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(bytes(i % 256 for i in range(128)))
    return out.getvalue()


def _jpeg() -> bytes:
    def seg(marker: int, body: bytes) -> bytes:
        return b"\xff" + bytes([marker]) + struct.pack(">H", len(body) + 2) + body

    huffman = bytes([1] + [0] * 15) + b"\x00"
    return (
        b"\xff\xd8"
        + seg(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
        + seg(0xDB, b"\x00" + b"\x01" * 64)
        + seg(0xC0, b"\x08\x00\x08\x00\x08\x01\x01\x11\x00")
        + seg(0xC4, b"\x00" + huffman)
        + seg(0xC4, b"\x10" + huffman)
        + seg(0xDA, b"\x01\x01\x00\x00\x3f\x00")
        + b"\x3f\xff\xd9"
    )


@cache
def signed(kind: str) -> tuple[bytes, bytes, tuple[int, int]]:
    """A signed file of ``kind``, its root, and the span of its manifest: the bytes the
    file made from it does not share at the start and at the end."""
    source = {"png": tiny_png, "jpeg": _jpeg, "wav": _wav}[kind]()
    issuer = nacl.signing.SigningKey(ISSUER.seed)
    root = content_certs.root_certificate(issuer, ISSUER.public.key_id, NOW - 400 * DAY, None)
    cert = content_certs.content_certificate(
        issuer, ISSUER.public.key_id, root, LICENSEE.public.raw, "Acme Ads", NOW - DAY, 400 * DAY
    )
    token = uncounted_token_v2(ISSUER, HOLDER, LICENSEE, NOW)
    assertion = content.LicenceAssertion.for_token(token, PHOTO_SHA256)
    key = nacl.signing.SigningKey(LICENSEE.seed)
    data = content.embed(
        source,
        content.mime_of(source[:16]),
        assertion,
        key,
        content_certs.chain_pem(cert, root),
    )
    head = next(i for i, (a, b) in enumerate(zip(source, data, strict=False)) if a != b)
    tail = next(
        i for i, (a, b) in enumerate(zip(reversed(source), reversed(data), strict=False)) if a != b
    )
    return data, root, (head, len(data) - tail)


def decide(data: bytes, root: bytes) -> Decision:
    engine = VerificationEngine(KEYS, NotRevoked())
    reading = content.read(data, None, [root])
    assert isinstance(reading, content.Reading)
    return content.check(reading, engine, NOW + DAY, **USE)  # type: ignore[arg-type]


KINDS = ["png", "jpeg", "wav"]


@pytest.mark.parametrize("kind", KINDS)
def test_each_signed_file_is_allowed_before_it_is_touched(kind: str) -> None:
    data, root, (start, end) = signed(kind)
    assert decide(data, root).allowed
    assert 0 < start < end <= len(data)


@pytest.mark.parametrize("kind", KINDS)
@FUZZ
@given(st.data())
def test_any_change_anywhere_never_raises(kind: str, data: st.DataObject) -> None:
    original, root, _ = signed(kind)
    buf = bytearray(original)
    action = data.draw(st.sampled_from(["flip", "insert", "delete", "cut"]))
    at = data.draw(st.integers(0, len(buf) - 1))
    if action == "flip":
        buf[at] ^= data.draw(st.integers(1, 255))
    elif action == "insert":
        buf[at:at] = data.draw(st.binary(min_size=1, max_size=64))
    elif action == "delete":
        del buf[at : at + data.draw(st.integers(1, 64))]
    else:
        del buf[at:]
    decision = decide(bytes(buf), root)
    assert isinstance(decision, Decision)
    if action == "cut":  # a file cut short is never allowed
        assert not decision.allowed


@pytest.mark.parametrize("kind", KINDS)
@FUZZ
@given(st.data())
def test_a_changed_byte_of_the_bound_region_is_never_allowed(
    kind: str, data: st.DataObject
) -> None:
    original, root, (start, end) = signed(kind)
    outside = [*range(start), *range(end, len(original))]
    buf = bytearray(original)
    places = data.draw(st.lists(st.sampled_from(outside), min_size=1, max_size=3, unique=True))
    for at in places:  # distinct bytes: two flips of one byte could undo each other
        buf[at] ^= data.draw(st.integers(1, 255))
    decision = decide(bytes(buf), root)
    assert not decision.allowed
    assert decision.reasons
