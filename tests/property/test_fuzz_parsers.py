"""Hypothesis fuzzing of every parser an attacker can feed: tokens, presentations, status list
snapshots and events, request signature metadata, checkpoints and Merkle proofs.

What it proves, for random, truncated, padded, spliced and field-level garbage input (valid
artefacts mutated byte by byte or line by line, protobuf built field by field from the
message descriptors with valid tags and random payloads, wrong wire types, lying lengths,
over-long varints, invalid UTF-8, unknown enum values, long repeated fields, deep nesting):

- each parser raises nothing but its documented error, ``LicentiaError`` (the Merkle
  verifiers never raise at all, and answer ``False``);
- nothing mutated is ever accepted: a changed token, presentation, snapshot, request
  signature or checkpoint never verifies (never ALLOW), and a refused presentation or
  request burns no nonce;
- what a parser does accept is well-formed: garbage *validly signed* (so that it gets past
  every signature) is either refused as MALFORMED / TOO_LARGE or is canonical protobuf that
  decodes to a value the domain constructors accept (a note: to exactly the text signed);
- a status view fed any events and heartbeats never goes back, never forgets a revocation,
  and answers STATUS_STALE (never a silent ALLOW) once past its bound;
- the size caps hold before any decoding (token 4096 characters, presentation 1024, snapshot
  8 MiB, note 64 KiB, 16 assets, 32 scope items, 256-character signature headers), and a
  zlib bomb is refused without being inflated.

``test_core_properties.py`` and ``test_merkle_properties.py`` already prove single-character
and single-byte changes, truncations of a token, arbitrary text as a token, and altered
Merkle proofs; nothing here repeats them. Hypothesis is derandomized (CI sees the same
examples each run); ``LICENTIA_FUZZ_SCALE=N`` multiplies the examples for a longer hunt.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
import tracemalloc
import zlib
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, TypeAlias, TypeVar

import pytest
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st

from licentia import checkpoint, keys, merkle, methods
from licentia.checkpoint import Checkpoint
from licentia.encoding import b64url_decode, b64url_encode, parse_canonical
from licentia.errors import LicentiaError, Reason
from licentia.examples import typical_claims, typical_rule
from licentia.keys import IssuerKey, IssuerKeySet, PrivateKey, PublicKey
from licentia.nonces import MemoryNonceStore
from licentia.presentation import (
    MAX_PRESENTATION_CHARS,
    check_presentation,
    parse_presentation,
    present,
)
from licentia.request import (
    HEADERS,
    KEY_HEADER,
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    parse_request_metadata,
    sign_request,
    verify_request,
)
from licentia.scope import IntendedUse, Scope
from licentia.status import (
    MAX_SNAPSHOT_BYTES,
    MAX_STATUS_BITS,
    StatusEvent,
    StatusLists,
    StatusView,
    signed_heartbeat,
    verify_event,
    verify_heartbeat,
    verify_snapshot,
)
from licentia.token import (
    MAX_TOKEN_CHARS,
    Asset,
    LicenceClaims,
    PriceTerms,
    StandingConsent,
    StandingRule,
    VerificationError,
    approve,
    issuance_message,
    issue,
    parse_token,
    sign_standing_rule,
)
from licentia.v1 import licence_pb2, registry_pb2, status_pb2
from licentia.verify import VerificationEngine
from licentia.vocabulary import DataCategory, Medium, Purpose

from ..wire import delimited, field_key, varint

NOW = 1_800_000_000
DAY = 86400
ISSUER = PrivateKey.from_seed(b"\x31" * 32)
HOLDER = PrivateKey.from_seed(b"\x32" * 32)
LICENSEE = PrivateKey.from_seed(b"\x33" * 32)
CALLER = PrivateKey.from_seed(b"\x34" * 32)
LOG_KEY = PrivateKey.from_seed(b"\x35" * 32)
KEYS = IssuerKeySet([IssuerKey(ISSUER.public, NOW - 400 * DAY)])
AUDIENCE = "platform-1"
#: ``LICENTIA_FUZZ_SCALE=10`` runs ten times the examples (a longer hunt than CI's).
SCALE = int(os.environ.get("LICENTIA_FUZZ_SCALE", "1"))
T = TypeVar("T")
#: A message descriptor (the stubs know two kinds: protobuf's Python one and upb's).
Descriptor: TypeAlias = Any

SETTINGS = settings(
    max_examples=120 * SCALE,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)

# -- the valid artefacts everything below mutates ---------------------------------------------

CLAIMS = typical_claims(ISSUER, HOLDER, LICENSEE, NOW)
CLAIMS_BYTES = CLAIMS.encode()
TOKEN = issue(ISSUER, CLAIMS_BYTES, approve(HOLDER, CLAIMS_BYTES))
RULE = typical_rule(HOLDER, NOW)
STANDING_TOKEN = issue(ISSUER, CLAIMS_BYTES, sign_standing_rule(HOLDER, RULE))
ASSET = CLAIMS.assets[0]
USE = IntendedUse(ASSET.category, Purpose.ADVERTISING, Medium.ONLINE, "FR", ASSET.sha256)
NONCE = b"\x07" * 16
PRESENTATION = present(LICENSEE, CLAIMS.licence_id, AUDIENCE, USE, NOW, nonce=NONCE)
_STATUS = StatusLists()  # the tokens here are v1: list 0
_STATUS.declare(0, NOW + 1000 * DAY)
for _index in (1, 9, 999_999):
    _STATUS.revoke(0, _index)
SNAPSHOT = _STATUS.snapshot(ISSUER, 3, NOW)
METHOD = methods.path(registry_pb2, "GetProfile")
BODY = b"\x08\x01"
METADATA = sign_request(CALLER, METHOD, BODY, NOW, nonce=NONCE)
ORIGIN = "licentia.example/log"
CHECKPOINT = Checkpoint(ORIGIN, 12345, hashlib.sha256(b"root").digest())
NOTE = checkpoint.sign_checkpoint(CHECKPOINT, ORIGIN, LOG_KEY)

B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
#: Characters a mutation inserts: the alphabet, its look-alikes, separators, controls, non-ASCII.
NOISE = B64URL + "+/=. \t\r\n\x00\x7f\u00e9\u2014\u2028\ud7ff\ud800\U0001f600lic1lpr1"


def engine(audience: str | None = None) -> VerificationEngine:
    """A fresh verification engine (no cache, no seen nonces) trusting ISSUER."""
    view = StatusView(verify_snapshot(SNAPSHOT, KEYS), 10**9)
    nonces = MemoryNonceStore() if audience else None
    return VerificationEngine(KEYS, view, audience=audience, nonces=nonces, cache_size=0)


def attempt(fn: Callable[[], T]) -> T | LicentiaError:
    """What ``fn`` returned, or the ``LicentiaError`` it raised. Any other exception
    propagates and fails the test."""
    try:
        return fn()
    except LicentiaError as e:
        return e


def reason_of(fn: Callable[[], object]) -> Reason | None:
    """The reason ``fn`` refused with, or ``None`` if it returned."""
    outcome = attempt(fn)
    return outcome.reason if isinstance(outcome, LicentiaError) else None


def test_the_valid_artefacts_are_accepted() -> None:
    """The properties below mean something only if the untouched artefacts pass."""
    assert engine().verify(TOKEN, USE, NOW + 10).allowed
    assert engine().verify(STANDING_TOKEN, USE, NOW + 10).allowed
    assert engine(AUDIENCE).verify(TOKEN, USE, NOW + 10, presentation=PRESENTATION).allowed
    assert verify_snapshot(SNAPSHOT, KEYS).sequence == 3
    signed = parse_request_metadata(METADATA)
    assert verify_request(signed, METHOD, BODY, NOW, MemoryNonceStore()) == CALLER.public
    assert checkpoint.open_checkpoint(NOTE, ORIGIN, LOG_KEY.public, ORIGIN) == CHECKPOINT


# -- mutation strategies ------------------------------------------------------------------------


def _length_classes(n: int, prefix: int) -> st.SearchStrategy[int]:
    """Truncation points: every class a parser may treat differently (empty, inside the
    prefix, each base64 tail length, around the middle, one short) and anything else."""
    fixed = {0, 1, max(prefix - 1, 0), prefix, prefix + 1, prefix + 2, prefix + 3}
    fixed |= {n // 2, n // 2 + 1, n - 3, n - 2, n - 1}
    return st.one_of(st.sampled_from(sorted(k for k in fixed if 0 <= k < n)), st.integers(0, n))


@st.composite
def mutated_text(draw: st.DrawFn, original: str, prefix: int = 0, cap: int = 0) -> str:
    """``original`` after one to three edits: insertion, deletion, duplication of a span,
    truncation, padding (up to and past ``cap``), replacement, or a swap of two spans."""
    text = original
    for _ in range(draw(st.integers(1, 3))):
        n = len(text)
        i = draw(st.integers(0, n))
        j = draw(st.integers(i, min(n, i + 64)))
        op = draw(st.integers(0, 7))
        noise = draw(st.text(st.sampled_from(NOISE), min_size=1, max_size=24))
        if op == 0:
            text = text[:i] + noise + text[i:]
        elif op == 1:
            text = text[:i] + text[j:]
        elif op == 2:
            text = text[:j] + text[i:j] + text[j:]
        elif op == 3 and n:
            text = text[: draw(_length_classes(n, prefix))]
        elif op == 4:
            pad = draw(st.sampled_from("AQg_-=. \x00"))
            size = draw(st.sampled_from([1, 2, 3, 4, 100]) | st.integers(0, 200))
            if cap and draw(st.booleans()):
                size = max(cap + draw(st.integers(-1, 1)) - n, 0)
            text += pad * size
        elif op == 5:
            text = text[:i] + noise + text[j:]
        elif op == 6:
            k = draw(st.integers(j, n))
            text = text[:i] + text[j:k] + text[i:j] + text[k:]
        else:
            text = noise + text
    return text


@st.composite
def mutated_bytes(draw: st.DrawFn, original: bytes) -> bytes:
    """``original`` after one to three edits: bit flips, insertion, deletion, truncation,
    duplication of a span, or appended / prepended garbage."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 3))):
        n = len(data)
        i = draw(st.integers(0, n))
        j = draw(st.integers(i, min(n, i + 32)))
        op = draw(st.integers(0, 5))
        noise = draw(st.binary(min_size=1, max_size=16))
        if op == 0 and n:
            k = draw(st.integers(0, n - 1))
            data[k] ^= 1 << draw(st.integers(0, 7))
        elif op == 1:
            data[i:i] = noise
        elif op == 2:
            del data[i:j]
        elif op == 3 and n:
            del data[draw(_length_classes(n, 0)) :]
        elif op == 4:
            data[j:j] = data[i:j]
        elif draw(st.booleans()):
            data += noise
        else:
            data[0:0] = noise
    return bytes(data)


# -- protobuf garbage, field by field, from the descriptors ------------------------------------

_T = FieldDescriptor
_VARINT_TYPES = {
    _T.TYPE_INT32,
    _T.TYPE_INT64,
    _T.TYPE_UINT32,
    _T.TYPE_UINT64,
    _T.TYPE_BOOL,
    _T.TYPE_ENUM,
    _T.TYPE_SINT32,
    _T.TYPE_SINT64,
}
#: ``bytes`` fields that carry an embedded message: the garbage speaks its language too.
EMBEDDED: dict[str, Descriptor] = {
    "licentia.v1.SignedLicence.claims": licence_pb2.LicenceClaims.DESCRIPTOR,
    "licentia.v1.StandingConsent.rule": licence_pb2.StandingRule.DESCRIPTOR,
    "licentia.v1.SignedPresentation.claims": licence_pb2.PresentationClaims.DESCRIPTOR,
    "licentia.v1.SignedStatusSnapshot.snapshot": status_pb2.StatusListSnapshot.DESCRIPTOR,
}
_BOUNDARY_INTS = [0, 1, 2, 3, 7, 8, 9, 16, 17, 32, 33, 127, 128, 255, 256, 10_000, 10_001]
_BOUNDARY_INTS += [2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**53, 2**62, 2**63 - 1, 2**63, 2**64 - 1]
_BOUNDARY_INTS += [NOW, NOW + DAY, NOW + 365 * DAY, MAX_STATUS_BITS, MAX_STATUS_BITS - 1]
#: Byte strings worth trying in any ``bytes`` field: the right sizes, the real values.
_BYTES_VALUES = [
    b"",
    b"\x00",
    CLAIMS.licence_id,
    ISSUER.public.key_id,
    HOLDER.public.raw,
    LICENSEE.public.raw,
    ASSET.sha256,
    CLAIMS.assets[1].sha256,
    NONCE,
    b"\x00" * 64,
    ISSUER.sign(keys.CONSENT, CLAIMS_BYTES),
    zlib.compress(b"\x40"),
    zlib.compress(b"\x00" * 100_000),  # a small bomb: 100 kB from ~100 bytes
    zlib.compress(b"\xff" * 8) + b"trailing",
    b"\x78\x9c\x00",
]
_TEXT_VALUES = ["", "EUR", "eur", "EURO", "FR", "EU", "WORLD", "XX", AUDIENCE, "a" * 129, "é"]
_INVALID_UTF8 = [b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xc0\xaf", b"a\x80b", b"\xf4\x90\x80\x80"]


_INTS = st.one_of(st.sampled_from(_BOUNDARY_INTS), st.integers(0, 2**64 - 1))


@st.composite
def varint_bytes(draw: st.DrawFn) -> bytes:
    """A varint: minimal, over-long (non-canonical), a negative int32 in ten bytes, or
    one that never ends within the ten bytes protobuf allows."""
    how = draw(st.integers(0, 9))
    if how == 0:
        minimal = bytearray(varint(draw(_INTS)))
        minimal[-1] |= 0x80
        return bytes(minimal) + b"\x80" * draw(st.integers(0, 3)) + b"\x00"
    if how == 1:
        return b"\xff" * draw(st.integers(10, 12)) + b"\x01"
    if how == 2:
        return varint((1 << 64) - draw(st.integers(1, 2**31)))
    return varint(draw(_INTS))


@st.composite
def wire_message(draw: st.DrawFn, desc: Descriptor, depth: int = 0) -> bytes:
    """Bytes in the language of ``desc``: mostly its own field numbers with payloads of the
    right wire type (values biased to the sizes and values that matter), sometimes unknown
    or reserved numbers, wrong or invalid wire types, lying lengths and deep group nesting."""
    out = bytearray()
    for _ in range(draw(st.integers(0, len(desc.fields) + 3))):
        out += draw(wire_field(desc, depth))
        if len(out) > 16_384:
            break
    return bytes(out)


@st.composite
def wire_field(draw: st.DrawFn, desc: Descriptor, depth: int) -> bytes:
    """One field of :func:`wire_message`."""
    field: FieldDescriptor | None = None
    fields: list[FieldDescriptor] = list(desc.fields)
    if draw(st.integers(0, 7)) > 0 and fields:
        field = draw(st.sampled_from(fields))
        number = field.number
    else:
        number = draw(st.sampled_from([1, 15, 16, 2047, 19000, 19999, 2**29 - 1]))
    how = draw(st.integers(0, 15))
    if field is None or how == 0:
        return field_key(number, draw(st.integers(0, 7))) + draw(_any_payload())
    if how == 1:  # a length prefix that promises more than there is
        body = draw(st.binary(max_size=20))
        extra = draw(st.sampled_from([1, 2, 1000, 2**31, 2**64 - 1 - len(body)]))
        return field_key(number, 2) + varint(len(body) + extra) + body
    if how == 2:  # deep nesting: groups inside groups, or the field inside itself
        n = draw(st.sampled_from([50, 99, 100, 101, 1000, 5000]))
        if draw(st.booleans()):
            return field_key(number, 3) * n + field_key(number, 4) * n
        body = b""
        for _ in range(n):
            body = delimited(number, body)
        return body
    sub = field.message_type or EMBEDDED.get(field.full_name)
    if sub is not None:
        inner = draw(wire_message(sub, depth + 1)) if depth < 4 else draw(st.binary(max_size=16))
        return delimited(number, inner)
    if field.type == _T.TYPE_STRING:
        text = draw(st.sampled_from(_TEXT_VALUES) | st.text(max_size=40)).encode("utf-8", "replace")
        if draw(st.integers(0, 4)) == 0:
            text += draw(st.sampled_from(_INVALID_UTF8))
        return delimited(number, text)
    if field.type == _T.TYPE_BYTES:
        return delimited(number, draw(st.sampled_from(_BYTES_VALUES) | st.binary(max_size=70)))
    if field.type in _VARINT_TYPES:
        if field.is_repeated and draw(st.booleans()):  # packed, possibly very long
            size = draw(st.sampled_from([0, 1, 3, 17, 33, 500]))
            values = draw(st.lists(st.integers(0, 40), min_size=size, max_size=size))
            return delimited(number, b"".join(varint(v) for v in values))
        return field_key(number, 0) + draw(varint_bytes())
    return field_key(number, draw(st.integers(0, 7))) + draw(_any_payload())


@st.composite
def _any_payload(draw: st.DrawFn) -> bytes:
    how = draw(st.integers(0, 3))
    if how == 0:
        return draw(varint_bytes())
    if how == 1:
        return varint(draw(st.integers(0, 80))) + draw(st.binary(max_size=80))
    return draw(st.binary(max_size=12))


_RANGES = {
    _T.TYPE_INT32: (-(2**31), 2**31 - 1),
    _T.TYPE_SINT32: (-(2**31), 2**31 - 1),
    _T.TYPE_ENUM: (-(2**31), 2**31 - 1),
    _T.TYPE_UINT32: (0, 2**32 - 1),
    _T.TYPE_INT64: (-(2**63), 2**63 - 1),
    _T.TYPE_SINT64: (-(2**63), 2**63 - 1),
    _T.TYPE_UINT64: (0, 2**64 - 1),
}


def typed_value(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    """A value the field accepts through the protobuf API (so the message stays valid
    protobuf), biased to the boundaries and the real values; enums may be unknown numbers."""
    if field.message_type is not None:
        return typed_message(field.message_type, depth + 1)
    if field.type == _T.TYPE_BOOL:
        return st.booleans()
    if field.type == _T.TYPE_STRING:
        return st.sampled_from(_TEXT_VALUES) | st.text(st.characters(codec="utf-8"), max_size=40)
    if field.type == _T.TYPE_BYTES:
        embedded = EMBEDDED.get(field.full_name)
        if embedded is not None and depth < 3:
            return typed_message(embedded, depth + 1).map(
                lambda m: m.SerializeToString(deterministic=True)
            )
        return st.sampled_from(_BYTES_VALUES) | st.binary(max_size=70)
    low, high = _RANGES[field.type]
    small = st.integers(max(low, -3), 20) if field.type == _T.TYPE_ENUM else st.nothing()
    edges = [v for v in _BOUNDARY_INTS if low <= v <= high] + [low, high, -1 if low < 0 else 0]
    return st.one_of(small, st.sampled_from(edges), st.integers(low, high))


@st.composite
def typed_message(draw: st.DrawFn, desc: Descriptor, depth: int = 0) -> Message:
    """A message of type ``desc`` with random fields set through the API: valid protobuf of
    the right type, canonical once serialized deterministically."""
    msg = GetMessageClass(desc)()
    for field in desc.fields:
        if draw(st.integers(0, 2)) == 0 or depth > 3:
            continue
        _set(msg, field, draw(_values_for(field, depth)))
    return msg


@st.composite
def _values_for(draw: st.DrawFn, field: FieldDescriptor, depth: int) -> list[Any]:
    if not field.is_repeated:
        return [draw(typed_value(field, depth))]
    size = draw(st.sampled_from([0, 1, 2, 3, 16, 17, 32, 33]))
    # Long lists repeat a few drawn values (cheap to draw, and duplicates are a case too).
    pool = draw(st.lists(typed_value(field, depth), min_size=1, max_size=3))
    return [pool[i % len(pool)] if i >= len(pool) else pool[i] for i in range(size)]


def _set(msg: Message, field: FieldDescriptor, values: list[Any]) -> None:
    if field.is_repeated:
        container: Any = getattr(msg, field.name)
        del container[:]
        for value in values:
            if field.message_type is not None:
                container.add().CopyFrom(value)
            else:
                container.append(value)
    elif field.message_type is not None:
        getattr(msg, field.name).CopyFrom(values[0])
    else:
        setattr(msg, field.name, values[0])


def _fields(msg: Message) -> list[Any]:
    return list(msg.DESCRIPTOR.fields)


@st.composite
def edited_message(draw: st.DrawFn, desc: Descriptor, valid: bytes) -> bytes:
    """The valid message with one to three fields (nested ones too) cleared, replaced or
    extended through the API, serialized canonically: it gets past every wire check and
    tests the rules on the values."""
    root = GetMessageClass(desc).FromString(valid)
    for _ in range(draw(st.integers(1, 3))):
        msg: Message = root
        field = draw(st.sampled_from(_fields(msg)))
        while (
            field.message_type is not None
            and not field.is_repeated
            and msg.HasField(field.name)
            and draw(st.booleans())
        ):
            msg = getattr(msg, field.name)
            field = draw(st.sampled_from(_fields(msg)))
        if draw(st.integers(0, 4)) == 0:
            msg.ClearField(field.name)
        elif field.is_repeated and draw(st.booleans()):
            current = list(getattr(msg, field.name))
            _set(msg, field, current + draw(_values_for(field, 1)))
        else:
            _set(msg, field, draw(_values_for(field, 1)))
    return root.SerializeToString(deterministic=True)


@st.composite
def garbage_for(draw: st.DrawFn, desc: Descriptor, valid: bytes) -> bytes:
    """Garbage for a message of type ``desc``: the valid encoding ``valid`` with fields
    edited through the API, garbage fields spliced in front, behind or inside, or mutated
    bytes; or a message built from the descriptor alone, at the wire or the API level."""
    how = draw(st.integers(0, 7))
    if how <= 2:
        return draw(edited_message(desc, valid))
    if how == 3:
        return draw(wire_message(desc))
    if how == 4:
        return draw(typed_message(desc)).SerializeToString(deterministic=True)
    if how == 5:
        return draw(mutated_bytes(valid))
    extra = draw(wire_field(desc, 1))
    if how == 6:
        return valid + extra if draw(st.booleans()) else extra + valid
    cut = draw(st.integers(0, len(valid)))
    return valid[:cut] + extra + valid[cut:]


# -- tokens --------------------------------------------------------------------------------------


@SETTINGS
@given(st.sampled_from([TOKEN, STANDING_TOKEN]).flatmap(lambda t: mutated_text(t, 5, 4096)))
def test_an_edited_token_is_refused_and_never_allowed(text: str) -> None:
    """Insertions, deletions, duplications, swaps, padding (to the cap and past it):
    parsing raises only ``LicentiaError`` and the engine never allows a changed token."""
    assume(text not in (TOKEN, STANDING_TOKEN))
    reason = reason_of(lambda: parse_token(text))
    if len(text) > MAX_TOKEN_CHARS:
        assert reason == Reason.TOO_LARGE
    decision = engine().verify(text, USE, NOW + 10)
    assert not decision.allowed
    assert decision.reasons


@SETTINGS
@given(garbage_for(licence_pb2.SignedLicence.DESCRIPTOR, b64url_decode(TOKEN[5:])))
def test_envelope_garbage_is_refused_and_never_allowed(raw: bytes) -> None:
    """Field-level garbage in the envelope (its claims and standing rule included)."""
    text = "lic1." + b64url_encode(raw)
    assume(text not in (TOKEN, STANDING_TOKEN))
    reason = reason_of(lambda: parse_token(text))
    event(reason.name if reason else "parsed")
    if reason is None:
        # Whatever parses is canonical: one licence, one token.
        env = licence_pb2.SignedLicence.FromString(raw)
        assert env.SerializeToString(deterministic=True) == raw
    else:
        assert reason in (Reason.MALFORMED, Reason.TOO_LARGE)
    assert not engine().verify(text, USE, NOW + 10).allowed


def _signed_token(claims_bytes: bytes) -> str:
    """A token around ``claims_bytes`` with a genuine holder approval and issuer signature
    (``issue`` would refuse garbage claims, so the envelope is built here)."""
    consent = approve(HOLDER, claims_bytes)
    env = licence_pb2.SignedLicence(
        claims=claims_bytes,
        holder_signature=consent.signature,
        issuer_signature=ISSUER.sign(keys.ISSUANCE, issuance_message(claims_bytes, consent)),
    )
    return "lic1." + b64url_encode(env.SerializeToString(deterministic=True))


def _rebuild(m: licence_pb2.LicenceClaims) -> LicenceClaims:
    """The claims through the domain constructors (every rule checked again, slowly)."""
    p = m.price
    return LicenceClaims(
        licence_id=m.licence_id,
        issuer_key_id=m.issuer_key_id,
        holder=PublicKey(m.holder_key),
        licensee=PublicKey(m.licensee_key),
        assets=tuple(Asset(DataCategory(a.category), a.sha256) for a in m.assets),
        scope=Scope.of(
            [DataCategory(c) for c in m.scope.categories],
            [Purpose(x) for x in m.scope.purposes],
            [Medium(x) for x in m.scope.media],
            m.scope.territories,
        ),
        issued_at=m.issued_at,
        not_before=m.not_before,
        not_after=m.not_after,
        status_index=m.status_index,
        price=PriceTerms(p.currency, p.amount_minor, p.per_use_minor, p.fee_bps),
        max_uses=m.max_uses,
        exclusive=m.exclusive,
    )


@settings(SETTINGS, max_examples=250 * SCALE)
@given(garbage_for(licence_pb2.LicenceClaims.DESCRIPTOR, CLAIMS_BYTES))
@example(CLAIMS_BYTES + delimited(5, delimited(2, ASSET.sha256)))  # an asset twice over
def test_validly_signed_garbage_claims_are_refused_or_well_formed(claims_bytes: bytes) -> None:
    """Both signatures genuine, the claims garbage: the parser refuses them as MALFORMED or
    TOO_LARGE, or they are the canonical encoding of claims every constructor accepts."""
    token = _signed_token(claims_bytes)
    parsed = attempt(lambda: parse_token(token))
    event(f"parse: {parsed.reason.name if isinstance(parsed, LicentiaError) else 'ok'}")
    if isinstance(parsed, LicentiaError):
        assert parsed.reason in (Reason.MALFORMED, Reason.TOO_LARGE), parsed
        assert not engine().verify(token, USE, NOW + 10).allowed
        return
    claims = parsed.claims
    assert LicenceClaims.decode(claims_bytes) == claims
    assert LicenceClaims.decode(claims.encode()) == claims
    assert _rebuild(parsed.wire_claims) == claims
    # The price terms and exclusivity the parse carries are the claims' own.
    p = claims.price
    terms = (p.currency, p.amount_minor, p.per_use_minor, p.fee_bps, claims.exclusive)
    assert (
        parsed.currency,
        parsed.amount_minor,
        parsed.per_use_minor,
        parsed.fee_bps,
        parsed.exclusive,
    ) == terms
    assert len(claims.assets) <= 16
    for items in (claims.scope.categories, claims.scope.purposes, claims.scope.media):
        assert 1 <= len(items) <= 32
    licence = attempt(lambda: parsed.verify(KEYS))
    event(f"verify: {licence.reason.name if isinstance(licence, LicentiaError) else 'ok'}")
    if isinstance(licence, LicentiaError):
        assert isinstance(licence, VerificationError)
        return
    # Authentic: the holder's own key, a real term. (Garbage may legitimately get here: the
    # holder approved exactly these bytes.)
    assert licence.claims.holder == HOLDER.public
    assert claims.issuer_key_id == ISSUER.public.key_id
    assert 0 < claims.not_after - claims.not_before <= 365 * DAY


@SETTINGS
@given(garbage_for(licence_pb2.StandingRule.DESCRIPTOR, RULE.encode()))
def test_a_validly_signed_garbage_standing_rule_never_authenticates_more(rule_bytes: bytes) -> None:
    """A token whose standing rule is garbage the holder did sign: a rule that does not
    decode makes the token MALFORMED (TOO_LARGE for a list over its limit) at parse, like
    the claims (docs/token-format.md §3.2); otherwise it authenticates only if the rule
    permits the claims; it never raises anything but LicentiaError."""
    consent = StandingConsent(rule_bytes, HOLDER.sign(keys.STANDING_RULE, rule_bytes))
    env = licence_pb2.SignedLicence(
        claims=CLAIMS_BYTES,
        issuer_signature=ISSUER.sign(keys.ISSUANCE, issuance_message(CLAIMS_BYTES, consent)),
    )
    env.standing.rule = rule_bytes
    env.standing.holder_signature = consent.signature
    token = "lic1." + b64url_encode(env.SerializeToString(deterministic=True))
    parsed = attempt(lambda: parse_token(token))
    if isinstance(parsed, LicentiaError):  # the claims are the valid ones: size or rule fails
        event(f"parse: {parsed.reason.name}")
        if len(token) > MAX_TOKEN_CHARS:
            assert parsed.reason == Reason.TOO_LARGE
        else:
            decoded = attempt(lambda: StandingRule.decode(rule_bytes))
            assert isinstance(decoded, LicentiaError)
            assert decoded.reason == parsed.reason
        assert not engine().verify(token, USE, NOW + 10).allowed
        return
    licence = attempt(lambda: parsed.verify(KEYS))
    event(f"verify: {licence.reason.name if isinstance(licence, LicentiaError) else 'ok'}")
    if isinstance(licence, LicentiaError):
        assert isinstance(licence, VerificationError)
        assert set(licence.reasons) <= {  # the holder did sign it: never BAD_CONSENT
            Reason.OUTSIDE_STANDING_RULE,
            Reason.SENSITIVE_USE_NEEDS_APPROVAL,
        }, licence
        assert not engine().verify(token, USE, NOW + 10).allowed
        return
    rule = consent.rule  # authenticated: the rule decodes, is the holder's, and covers it
    assert rule.holder == HOLDER.public
    assert rule.permits(CLAIMS) == []


@settings(SETTINGS, max_examples=30 * SCALE)
@given(st.integers(MAX_TOKEN_CHARS + 1, 4 * MAX_TOKEN_CHARS), st.sampled_from("A.\x00é"))
def test_an_oversized_token_is_too_large_before_decoding(size: int, pad: str) -> None:
    text = (TOKEN + pad * size)[:size]
    assert reason_of(lambda: parse_token(text)) == Reason.TOO_LARGE
    assert engine().verify(text, USE, NOW).reasons == (Reason.TOO_LARGE,)


def test_a_huge_token_is_refused_at_once() -> None:
    started = time.perf_counter()
    assert engine().verify("lic1." + "A" * 50_000_000, USE, NOW).reasons == (Reason.TOO_LARGE,)
    assert time.perf_counter() - started < 0.5


# -- presentations -------------------------------------------------------------------------------


def _check(text: str) -> tuple[list[Reason], MemoryNonceStore]:
    """Parse and check a presentation as the platform would; the reasons and the nonce store."""
    nonces = MemoryNonceStore()
    try:
        p = parse_presentation(text)
    except LicentiaError as e:
        return [e.reason], nonces
    reasons = check_presentation(
        p,
        licensee=LICENSEE.public,
        licence_id=CLAIMS.licence_id,
        audience=AUDIENCE,
        use=USE,
        now=NOW,
        nonces=nonces,
    )
    return reasons, nonces


@SETTINGS
@given(mutated_text(PRESENTATION, 5, MAX_PRESENTATION_CHARS))
def test_an_edited_presentation_is_refused_and_burns_no_nonce(text: str) -> None:
    assume(text != PRESENTATION)
    reasons, nonces = _check(text)
    assert reasons
    assert len(nonces) == 0
    if len(text) > MAX_PRESENTATION_CHARS:
        assert reasons == [Reason.TOO_LARGE]
    decision = engine(AUDIENCE).verify(TOKEN, USE, NOW, presentation=text)
    assert not decision.allowed


@SETTINGS
@given(garbage_for(licence_pb2.SignedPresentation.DESCRIPTOR, b64url_decode(PRESENTATION[5:])))
def test_presentation_envelope_garbage_is_refused(raw: bytes) -> None:
    text = "lpr1." + b64url_encode(raw)
    assume(text != PRESENTATION)
    reasons, nonces = _check(text)
    assert reasons
    assert len(nonces) == 0


@settings(SETTINGS, max_examples=200 * SCALE)
@given(
    garbage_for(
        licence_pb2.PresentationClaims.DESCRIPTOR,
        licence_pb2.SignedPresentation.FromString(b64url_decode(PRESENTATION[5:])).claims,
    )
)
def test_validly_signed_garbage_presentations_hold_only_for_the_real_use(claims: bytes) -> None:
    """The licensee's genuine signature over garbage claims: parsing refuses malformed
    claims; a parsed presentation is well-formed; it holds only for this licence, this
    platform, this use, now, and only then is its nonce recorded."""
    signed = licence_pb2.SignedPresentation(
        claims=claims, signature=LICENSEE.sign(keys.PRESENTATION, claims)
    )
    text = "lpr1." + b64url_encode(signed.SerializeToString(deterministic=True))
    p = attempt(lambda: parse_presentation(text))
    event(f"parse: {p.reason.name if isinstance(p, LicentiaError) else 'ok'}")
    if isinstance(p, LicentiaError):
        assert p.reason in (Reason.MALFORMED, Reason.TOO_LARGE), p
        return
    assert len(p.nonce) == 16
    assert 1 <= len(p.audience) <= 128
    assert (
        licence_pb2.PresentationClaims.FromString(claims).SerializeToString(deterministic=True)
        == claims
    )
    reasons, nonces = _check(text)
    if not reasons:
        assert (p.licence_id, p.audience, p.use) == (CLAIMS.licence_id, AUDIENCE, USE)
        assert abs(p.presented_at - NOW) <= 120
        assert len(nonces) == 1
    else:
        assert len(nonces) == 0


# -- status list snapshots and events ------------------------------------------------------------


@SETTINGS
@given(mutated_bytes(SNAPSHOT))
def test_a_changed_snapshot_never_verifies(data: bytes) -> None:
    assume(data != SNAPSHOT)
    assert reason_of(lambda: verify_snapshot(data, KEYS)) is not None


@settings(SETTINGS, max_examples=250 * SCALE)
@given(
    garbage_for(
        status_pb2.StatusListSnapshot.DESCRIPTOR,
        status_pb2.SignedStatusSnapshot.FromString(SNAPSHOT).snapshot,
    )
)
@example(  # more bits than a status list may hold
    status_pb2.StatusListSnapshot(
        issuer_key_id=ISSUER.public.key_id,
        taken_at=NOW,
        lists=[
            status_pb2.StatusListBits(
                list_id=1,
                bit_length=MAX_STATUS_BITS + 1,
                bits_zlib=zlib.compress(b"\x00" * (MAX_STATUS_BITS // 8 + 1)),
            )
        ],
    ).SerializeToString()
)
def test_validly_signed_garbage_snapshots_are_refused_or_exact(snap: bytes) -> None:
    """The issuer's genuine signature over garbage: refused with LicentiaError, or each
    list's bits are exactly ``ceil(bit_length / 8)`` bytes within the cap, and a view can
    use them."""
    data = status_pb2.SignedStatusSnapshot(
        snapshot=snap, signature=ISSUER.sign(keys.STATUS_SNAPSHOT, snap)
    ).SerializeToString(deterministic=True)
    started = time.perf_counter()
    verified = attempt(lambda: verify_snapshot(data, KEYS))
    event(f"{verified.reason.name if isinstance(verified, LicentiaError) else 'ok'}")
    if isinstance(verified, LicentiaError):
        assert time.perf_counter() - started < 2  # nothing was inflated beyond the bits
        assert verified.reason in (
            Reason.MALFORMED,
            Reason.TOO_LARGE,
            Reason.UNKNOWN_ISSUER_KEY,
            Reason.ISSUER_KEY_NOT_VALID,
        ), verified
        return
    view = StatusView(verified, 60)
    for x in verified.lists:
        assert x.bit_length <= MAX_STATUS_BITS
        assert len(x.bits) == (x.bit_length + 7) // 8
        beyond = view.check(x.list_id, x.bit_length + 1, verified.taken_at)
        assert beyond in (None, Reason.STATUS_LIST_DROPPED)  # dropped: ended by its time


def test_an_oversized_snapshot_is_too_large_before_parsing() -> None:
    oversized = b"\x0a" * (MAX_SNAPSHOT_BYTES + 1)
    assert reason_of(lambda: verify_snapshot(oversized, KEYS)) == Reason.TOO_LARGE


@pytest.mark.parametrize("bit_length", [0, 8, 8 * 1024])
def test_a_signed_zlib_bomb_is_refused_without_being_inflated(bit_length: int) -> None:
    """256 MiB of zeros in ~250 kB, signed by the issuer, claimed to be a few bits: refused
    as MALFORMED while Python allocates less than 4 MiB (the bits are inflated one byte past
    what the bit length allows, never further)."""
    bomb = zlib.compressobj(9)
    chunk = bytes(1 << 20)
    bits = b"".join(bomb.compress(chunk) for _ in range(256)) + bomb.flush()
    snap = status_pb2.StatusListSnapshot(
        issuer_key_id=ISSUER.public.key_id,
        taken_at=NOW,
        lists=[status_pb2.StatusListBits(list_id=1, bit_length=bit_length, bits_zlib=bits)],
    ).SerializeToString()
    data = status_pb2.SignedStatusSnapshot(
        snapshot=snap, signature=ISSUER.sign(keys.STATUS_SNAPSHOT, snap)
    ).SerializeToString()
    tracemalloc.start()
    try:
        reason = reason_of(lambda: verify_snapshot(data, KEYS))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert reason == Reason.MALFORMED
    assert peak < 4 << 20


@SETTINGS
@given(garbage_for(status_pb2.StatusEvent.DESCRIPTOR, status_pb2.StatusEvent(sequence=4,
       status_list=2, status_index=5, revoked_at=NOW).SerializeToString()))  # fmt: skip
def test_status_events_from_the_wire_are_in_range_or_refused(raw: bytes) -> None:
    try:
        msg = status_pb2.StatusEvent.FromString(raw)
    except DecodeError:
        return  # protobuf's own refusal, before ours
    event = attempt(lambda: StatusEvent.from_proto(msg))
    if isinstance(event, LicentiaError):
        assert event.reason == Reason.MALFORMED
        return
    assert event.sequence > 0
    assert 0 <= event.status_index < MAX_STATUS_BITS


_SIGNED_EVENT = StatusEvent(4, 2, 5, NOW).signed(ISSUER)
_SIGNED_BEAT = signed_heartbeat(ISSUER, 4, NOW, KEYS.digest())


def _verifies_only_as_signed(
    raw: bytes,
    message: type[Message],
    verify: Callable[[Any, IssuerKeySet], object],
    refusals: set[Reason],
    signed: object,
) -> None:
    """``raw`` parsed as ``message`` is either refused by ``verify`` with one of
    ``refusals``, or it verifies to exactly what was ``signed``."""
    try:
        msg = message.FromString(raw)
    except DecodeError:
        return  # protobuf's own refusal, before ours
    outcome = attempt(lambda: verify(msg, KEYS))
    if isinstance(outcome, LicentiaError):
        assert outcome.reason in refusals
        return
    assert outcome == signed


@SETTINGS
@given(garbage_for(status_pb2.StatusEvent.DESCRIPTOR, _SIGNED_EVENT.SerializeToString()))
def test_signed_status_events_verify_only_as_signed(raw: bytes) -> None:
    """Any edit of a signed event is refused with a reason; what verifies is what was signed."""
    refusals = {Reason.MALFORMED, Reason.UNKNOWN_ISSUER_KEY, Reason.BAD_SIGNATURE}
    _verifies_only_as_signed(
        raw, status_pb2.StatusEvent, verify_event, refusals, StatusEvent(4, 2, 5, NOW)
    )


@SETTINGS
@given(garbage_for(status_pb2.StatusHeartbeat.DESCRIPTOR, _SIGNED_BEAT.SerializeToString()))
def test_signed_heartbeats_verify_only_as_signed(raw: bytes) -> None:
    """A heartbeat keeps a verifier fresh only as the issuer signed it."""
    refusals = {
        Reason.MALFORMED,
        Reason.UNKNOWN_ISSUER_KEY,
        Reason.BAD_SIGNATURE,
        Reason.ISSUER_KEY_NOT_VALID,
    }
    _verifies_only_as_signed(
        raw, status_pb2.StatusHeartbeat, verify_heartbeat, refusals, (4, NOW, KEYS.digest())
    )


_feed = st.lists(
    st.one_of(
        st.tuples(
            st.just("event"),
            st.integers(0, 12),
            st.one_of(st.integers(0, 300), st.sampled_from([MAX_STATUS_BITS - 1, 2**64 - 1])),
            st.integers(NOW - DAY, NOW + DAY),
        ),
        st.tuples(
            st.just("beat"), st.integers(0, 12), st.just(0), st.integers(NOW - DAY, NOW + DAY)
        ),
    ),
    max_size=40,
)


@SETTINGS
@given(_feed, st.integers(NOW - DAY, NOW + 2 * DAY))
def test_a_view_fed_anything_stays_monotone_and_fails_closed(
    feed: list[tuple[str, int, int, int]], now: int
) -> None:
    """Events and heartbeats in any order: only STATUS_SEQUENCE_GAP or MALFORMED is raised,
    the sequence never goes back, a revoked bit stays revoked, and a licence not known
    revoked is STATUS_STALE exactly when the view is past its bound (never a silent ALLOW)."""
    base = verify_snapshot(SNAPSHOT, KEYS)
    view = StatusView(base, 3600)
    revoked = {1, 9, 999_999}
    for kind, sequence, index, at in feed:
        before = view.sequence
        if kind == "event":
            reason = reason_of(lambda: view.apply(StatusEvent(sequence, 0, index, at)))  # noqa: B023
        else:
            reason = reason_of(lambda: view.heartbeat(sequence, at))  # noqa: B023
        if reason is not None:
            assert reason in (Reason.STATUS_SEQUENCE_GAP, Reason.MALFORMED)
            assert view.sequence == before
            continue
        assert view.sequence >= before
        if kind == "event" and sequence == before + 1:
            revoked.add(index)
    for index in revoked:
        assert view.check(0, index, now) == Reason.REVOKED
    stale = now - view.fresh_at > 3600
    for index in (0, 2, 299):
        if index not in revoked:
            assert view.check(0, index, now) == (Reason.STATUS_STALE if stale else None)


# -- request signatures --------------------------------------------------------------------------

_names = st.sampled_from([*HEADERS, "x-licentia-other", "X-Licentia-Key", "grpc-timeout", ""])
_values = st.one_of(
    st.text(st.sampled_from(NOISE), max_size=100),
    st.sampled_from([v for _, v in METADATA]).flatmap(lambda v: mutated_text(v, 0, 256)),
    st.binary(max_size=40),
    st.sampled_from(
        ["0", "00" + str(NOW), str(NOW) + "0", "-1", "1e9", "١٢٣", "9" * 20, "ed25519:"]
    ),
)


@st.composite
def mutated_metadata(draw: st.DrawFn) -> list[tuple[str, str | bytes]]:
    """The valid signature headers with some dropped, repeated, replaced, reordered, or
    surrounded by other metadata."""
    items: list[tuple[str, str | bytes]] = list(METADATA)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.integers(0, 4))
        i = draw(st.integers(0, max(len(items) - 1, 0)))
        if op == 0 and items:
            del items[i]
        elif op == 1 and items:
            items.insert(draw(st.integers(0, len(items))), items[i])
        elif op == 2 and items:
            items[i] = (items[i][0], draw(_values))
        elif op == 3:
            items.insert(draw(st.integers(0, len(items))), (draw(_names), draw(_values)))
        else:
            items = draw(st.permutations(items))
    return items


@settings(SETTINGS, max_examples=250 * SCALE)
@given(mutated_metadata())
def test_edited_signature_metadata_never_verifies_and_burns_no_nonce(
    metadata: Sequence[tuple[str, str | bytes]],
) -> None:
    """Only BAD_REQUEST_SIGNATURE from parsing; a parsed request verifies only if it is the
    signed one (same key, time, nonce and signature), and a refusal records no nonce."""
    signed = attempt(lambda: parse_request_metadata(metadata))
    event("refused" if isinstance(signed, LicentiaError) else "parsed")
    if isinstance(signed, LicentiaError):
        assert signed.reason == Reason.BAD_REQUEST_SIGNATURE
        return
    genuine = signed == parse_request_metadata(METADATA)
    nonces = MemoryNonceStore()
    reason = reason_of(lambda: verify_request(signed, METHOD, BODY, NOW, nonces))
    assert (reason is None) is genuine
    assert len(nonces) == (1 if genuine else 0)


@SETTINGS
@given(
    st.text(st.sampled_from(NOISE), max_size=300) | mutated_text(METHOD),
    st.binary(max_size=64) | mutated_bytes(BODY),
    st.integers(NOW - 120, NOW + 120),
)
def test_a_signature_covers_method_body_and_window(method: str, body: bytes, now: int) -> None:
    signed = parse_request_metadata(METADATA)
    nonces = MemoryNonceStore()
    reason = reason_of(lambda: verify_request(signed, method, body, now, nonces))
    if (method, body) == (METHOD, BODY) and abs(now - NOW) <= 60:
        assert reason is None
    else:
        assert reason in (Reason.BAD_REQUEST_SIGNATURE, Reason.STALE_REQUEST)
        assert len(nonces) == 0


def test_an_oversized_signature_header_is_refused() -> None:
    for name in HEADERS:
        metadata = [(n, v + "A" * 300 if n == name else v) for n, v in METADATA]
        reason = reason_of(lambda md=metadata: parse_request_metadata(md))  # type: ignore[misc]
        assert reason == Reason.BAD_REQUEST_SIGNATURE
    assert {KEY_HEADER, TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER} == set(HEADERS)


# -- checkpoints ---------------------------------------------------------------------------------

_line = st.text(st.characters(codec="utf-8", min_codepoint=0x20), max_size=60)


@st.composite
def mutated_note(draw: st.DrawFn) -> str:
    """The signed note with lines inserted, deleted, duplicated, swapped or replaced, foreign
    signature lines added (up to past the 100-line cap), or a line padded past 64 KiB."""
    lines = NOTE.split("\n")
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.integers(0, 7))
        if op == 0:
            lines.insert(i, draw(_line))
        elif op == 1 and len(lines) > 1:
            del lines[i]
        elif op == 2:
            lines.insert(i, lines[i])
        elif op == 3:
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == 4:
            lines[i] = draw(mutated_text(lines[i]))
        elif op == 5:
            other = PrivateKey.from_seed(bytes([draw(st.integers(0, 255))]) * 32)
            foreign = checkpoint.sign_note(CHECKPOINT.body(), "witness", other).split("\n")[-2]
            count = draw(st.sampled_from([1, 99, 100, 101]))
            lines[-1:-1] = [foreign] * count
        elif op == 6:
            lines[i] += "A" * draw(st.sampled_from([100, 64 * 1024]))
        else:
            lines[1] = draw(st.sampled_from(["0", "012345", "-1", "+12345", "1e5", "9" * 20]))
    return "\n".join(lines)


@settings(SETTINGS, max_examples=250 * SCALE)
@given(mutated_note())
def test_an_edited_checkpoint_note_yields_the_signed_checkpoint_or_nothing(note: str) -> None:
    """Only LicentiaError; when a note opens (foreign signature lines are ignored by the
    spec), it is exactly the checkpoint that was signed."""
    forms: list[str | bytes] = [note, note.encode("utf-8", "surrogatepass")]
    for form in forms:
        opened = attempt(partial(checkpoint.open_checkpoint, form, ORIGIN, LOG_KEY.public, ORIGIN))
        assert isinstance(opened, LicentiaError) or opened == CHECKPOINT
        event(opened.reason.name if isinstance(opened, LicentiaError) else "opened")


_sizes = st.one_of(
    st.integers(0, 2**70).map(str),
    st.sampled_from(["0", "01", "-1", "+1", " 1", "1 ", "1_000", "0x10", "\u0661", ""]),
)
_roots = st.one_of(
    st.binary(min_size=32, max_size=32).map(lambda b: base64.b64encode(b).decode()),
    st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode()),
    st.binary(min_size=32, max_size=32).map(lambda b: base64.urlsafe_b64encode(b).decode()),
    st.binary(min_size=32, max_size=32).map(lambda b: base64.b64encode(b).decode().rstrip("=")),
    _line,
)


@SETTINGS
@given(
    st.tuples(_line, _sizes, _roots).map(list),
    st.lists(_line, max_size=3),
    st.sampled_from(["log", ORIGIN, "a+b", "x y"]),
)
def test_validly_signed_garbage_notes_are_refused_or_round_trip(
    head: list[str], extensions: list[str], name: str
) -> None:
    """The log key's genuine signature over a garbage checkpoint body: it opens only as a
    checkpoint whose canonical body is exactly the text signed."""
    lines = head + extensions
    text = "".join(line + "\n" for line in lines)
    note = attempt(lambda: checkpoint.sign_note(text, name, LOG_KEY))
    event("unsignable" if isinstance(note, LicentiaError) else "signed")
    if isinstance(note, LicentiaError):
        return
    opened = attempt(lambda: checkpoint.open_checkpoint(note, name, LOG_KEY.public, lines[0]))
    event(opened.reason.name if isinstance(opened, LicentiaError) else "opened")
    if isinstance(opened, LicentiaError):
        assert opened.reason in (Reason.MALFORMED, Reason.TOO_LARGE)
    else:
        assert opened.body() == text


@SETTINGS
@given(
    st.text(max_size=120)
    | mutated_text(checkpoint.vkey(ORIGIN, LOG_KEY.public))
    | st.binary(max_size=64).map(lambda b: b.decode("latin-1"))
)
def test_verifier_keys_parse_canonically_or_not_at_all(text: str) -> None:
    parsed = attempt(lambda: checkpoint.parse_vkey(text))
    if isinstance(parsed, LicentiaError):
        assert parsed.reason == Reason.MALFORMED
        return
    name, key_id, public = parsed
    assert checkpoint.vkey(name, public) == text
    assert checkpoint.key_id(name, public) == key_id


def test_oversized_notes_are_too_large() -> None:
    big = NOTE.replace("\n\n", "\n" + "x" * (64 * 1024) + "\n\n")
    for form in (big, big.encode()):
        reason = reason_of(lambda f=form: checkpoint.open_note(f, ORIGIN, LOG_KEY.public))  # type: ignore[misc]
        assert reason == Reason.TOO_LARGE


# -- Merkle proofs -------------------------------------------------------------------------------

_hash = st.one_of(
    st.binary(min_size=32, max_size=32),
    st.sampled_from([merkle.EMPTY_ROOT, merkle.leaf_hash(b""), b"", b"\x00" * 31, b"\x00" * 33]),
)
_junk = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(allow_nan=True),
    st.text(max_size=4),
    st.builds(bytearray, st.binary(min_size=32, max_size=32)),
    st.tuples(st.integers()),
)
_count = st.one_of(
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, 1, 2, 3, 2**62, merkle.MAX_TREE_SIZE, merkle.MAX_TREE_SIZE + 1]),
    _junk,
)
_proof = st.one_of(
    st.lists(_hash, max_size=3),
    st.lists(st.binary(min_size=32, max_size=32), min_size=62, max_size=66),
    st.lists(st.one_of(_hash, _junk), max_size=4),
    st.binary(max_size=64),
    _junk,
)


def _is_hash(v: object) -> bool:
    return type(v) is bytes and len(v) == 32


def _is_size(v: object) -> bool:
    return type(v) is int and 0 <= v <= merkle.MAX_TREE_SIZE


@settings(SETTINGS, max_examples=300 * SCALE)
@given(st.one_of(st.binary(max_size=8), _junk), _count, _count, _proof, st.one_of(_hash, _junk))
def test_inclusion_verification_never_raises_and_refuses_garbage(
    leaf: Any, index: Any, size: Any, proof: Any, root: Any
) -> None:
    result = merkle.verify_inclusion(leaf, index, size, proof, root)
    assert result is False or (
        # The one proof garbage can hold: a one-entry tree whose root is the leaf's hash.
        isinstance(leaf, bytes) and index == 0 and size == 1 and list(proof) == []
        and root == merkle.leaf_hash(leaf)
    )  # fmt: skip
    assert merkle.verify_inclusion_hash(root, index, size, proof, root) in (True, False)


@settings(SETTINGS, max_examples=300 * SCALE)
@given(_count, _count, st.one_of(_hash, _junk), st.one_of(_hash, _junk), _proof)
def test_consistency_verification_never_raises_and_refuses_garbage(
    old: Any, new: Any, old_root: Any, new_root: Any, proof: Any
) -> None:
    result = merkle.verify_consistency(old, new, old_root, new_root, proof)
    if result:
        # Only the trivial proofs can hold for garbage: the empty tree, or a tree itself.
        assert _is_size(old)
        assert _is_size(new)
        assert _is_hash(old_root)
        assert _is_hash(new_root)
        assert list(proof) == []
        assert (old == 0 and old_root == merkle.EMPTY_ROOT) or (old == new and old_root == new_root)


# -- the shared text encodings -------------------------------------------------------------------


@SETTINGS
@given(st.text(st.sampled_from(NOISE), max_size=80) | mutated_text(TOKEN[5:80]))
def test_base64url_has_one_text_form_or_none(text: str) -> None:
    raw = attempt(lambda: b64url_decode(text))
    if isinstance(raw, LicentiaError):
        assert raw.reason == Reason.MALFORMED
    else:
        assert b64url_encode(raw) == text


@pytest.mark.parametrize(
    "message",
    [licence_pb2.SignedLicence, licence_pb2.LicenceClaims, status_pb2.SignedStatusSnapshot],
)
def test_deep_nesting_is_malformed_not_a_crash(message: type[Message]) -> None:
    for depth in (100, 101, 10_000):
        for number, wire_type in ((1, 3), (19, 3), (5, 2)):
            if wire_type == 3:
                data = field_key(number, 3) * depth + field_key(number, 4) * depth
            else:
                data = b""
                for _ in range(depth):
                    data = delimited(number, data)
            reason = reason_of(lambda d=data: parse_canonical(d, message(), "x"))  # type: ignore[misc]
            assert reason == Reason.MALFORMED
