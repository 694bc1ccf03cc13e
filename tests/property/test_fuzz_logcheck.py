"""Fuzzing of what an auditor reads from the public log (clients/logcheck.py): whatever the
exchange sends — random bytes, entries of any shape, a revocation with any signed call, a
key event with any values, any token — the auditor never crashes: it decodes or refuses
with ``LicentiaError``, and it reports findings; it never certifies a forged revocation."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from licentia import keys, methods
from licentia.clients.logcheck import (
    LicenceFacts,
    LoggedKeys,
    check_licence,
    check_revocation,
    decode_entry,
)
from licentia.errors import LicentiaError
from licentia.examples import typical_claims
from licentia.keys import PrivateKey
from licentia.request import request_payload
from licentia.token import approve, issue, parse_token
from licentia.v1 import licences_pb2, registry_pb2, transparency_pb2

NOW = 1_800_000_000
ISSUER, HOLDER, LICENSEE = (PrivateKey.from_seed(bytes([i]) * 32) for i in (0x41, 0x42, 0x43))
_CLAIMS = typical_claims(ISSUER, HOLDER, LICENSEE, NOW, 7).encode()
TOKEN = issue(ISSUER, _CLAIMS, approve(HOLDER, _CLAIMS))
FACTS = LicenceFacts.of(parse_token(TOKEN))
REVOKE = methods.path(licences_pb2, "RevokeLicence")

FUZZ = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)

u64 = st.integers(min_value=0, max_value=2**64 - 1)
text = st.text(max_size=80)


@FUZZ
@given(st.binary(max_size=2048))
def test_any_bytes_decode_to_an_entry_or_a_licentia_error(data: bytes) -> None:
    try:
        entry = decode_entry(data)
    except LicentiaError:
        return
    assert entry.WhichOneof("kind") is not None


@st.composite
def signed_calls(draw: st.DrawFn) -> transparency_pb2.SignedCall:
    return transparency_pb2.SignedCall(
        method=draw(st.sampled_from([REVOKE, methods.path(registry_pb2, "EraseAssets"), ""]))
        if draw(st.booleans())
        else draw(text),
        body=draw(st.binary(max_size=200)),
        key=draw(st.sampled_from([HOLDER.public.raw, LICENSEE.public.raw, b"", b"\x00" * 31])),
        timestamp=draw(u64),
        nonce=draw(st.binary(max_size=40)),
        signature=draw(st.binary(min_size=0, max_size=70)),
    )


@FUZZ
@given(
    licence_id=st.sampled_from([FACTS.licence_id, b"", b"\x01" * 16]),
    revoked_at=u64,
    cause=st.integers(min_value=0, max_value=9),
    call=st.one_of(st.none(), signed_calls()),
    known=st.booleans(),
)
def test_a_revocation_of_any_shape_gives_findings_never_an_error(
    licence_id: bytes,
    revoked_at: int,
    cause: int,
    call: transparency_pb2.SignedCall | None,
    known: bool,
) -> None:
    rev = transparency_pb2.LoggedRevocation(licence_id=licence_id, revoked_at=revoked_at)
    rev.cause = cause  # type: ignore[assignment]  # any number, known to the enum or not
    if call is not None:
        rev.request.CopyFrom(call)
    findings = check_revocation(rev, FACTS if known else None)
    # Nothing here carries the holder's genuine signature: every one is flagged.
    assert findings


@FUZZ
@given(nonce=st.binary(min_size=16, max_size=16), flip=st.integers(0, 63))
def test_a_genuine_revocation_with_one_signature_bit_flipped_is_flagged(
    nonce: bytes, flip: int
) -> None:
    body = licences_pb2.RevokeLicenceRequest(licence_id=FACTS.licence_id).SerializeToString(
        deterministic=True
    )
    stamp = NOW + 3600
    signature = bytearray(HOLDER.sign(keys.REQUEST, request_payload(REVOKE, body, stamp, nonce)))
    rev = transparency_pb2.LoggedRevocation(
        licence_id=FACTS.licence_id,
        revoked_at=stamp,
        cause=licences_pb2.TERMINATION_CAUSE_REVOKED,
        request=transparency_pb2.SignedCall(
            method=REVOKE,
            body=body,
            key=HOLDER.public.raw,
            timestamp=stamp,
            nonce=nonce,
            signature=bytes(signature),
        ),
    )
    assert not any(f.kind == "revocation_signature" for f in check_revocation(rev, FACTS))
    signature[flip] ^= 0x01
    rev.request.signature = bytes(signature)
    assert any(f.kind == "revocation_signature" for f in check_revocation(rev, FACTS))


@FUZZ
@given(
    key_id=st.binary(max_size=12),
    public_key=st.binary(max_size=40),
    not_before=u64,
    not_after=u64,
    withdrawn=st.booleans(),
)
def test_a_key_event_of_any_shape_is_recorded_or_flagged_never_an_error(
    key_id: bytes, public_key: bytes, not_before: int, not_after: int, withdrawn: bool
) -> None:
    logged = LoggedKeys()
    event = transparency_pb2.LoggedIssuerKey(
        key_id=key_id,
        public_key=public_key,
        not_before=not_before,
        not_after=not_after,
        withdrawn=withdrawn,
    )
    findings, _ = logged.apply(event)
    assert isinstance(findings, list)


@FUZZ
@given(st.one_of(text, st.just(TOKEN), st.builds(lambda i: TOKEN[:i], st.integers(0, 600))))
def test_any_token_in_a_licence_entry_gives_facts_or_findings(token: str) -> None:
    facts, findings = check_licence(token, LoggedKeys())
    # No issuer key has been logged yet: even the genuine token is flagged, never certified.
    assert findings
    assert facts is None or facts.licence_id


@FUZZ
@given(
    st.binary(max_size=20),
    st.binary(max_size=40),
    st.binary(max_size=600),
    st.integers(min_value=1, max_value=3),
)
def test_a_sealed_entry_of_any_shape_is_checked_or_refused_never_a_crash(
    tag: bytes, commitment: bytes, box: bytes, j: int
) -> None:
    """The form check and the holder's opening take any sealed entry, even one carrying her
    own tag: a finding (or another account's entry), never an exception, never a plaintext
    that was not sealed to her."""
    from licentia import sealed
    from licentia.clients.auditor.holder import HolderLog
    from licentia.clients.logcheck import check_sealed_form

    key = b"\x21" * 32
    if j < 3:  # her own tag for the entry after the one found
        tag = sealed.tag(key, j)
    entry = transparency_pb2.SealedEntry(tag=tag, commitment=commitment, box=box)
    assert all(f.kind == "sealed_form" for f in check_sealed_form(entry))
    found, clear = HolderLog(key, j - 1 if j < 3 else 0).open(7, entry)
    assert clear is None
    assert [f.kind for f in found] == (["sealed_unopened"] if j < 3 else [])
