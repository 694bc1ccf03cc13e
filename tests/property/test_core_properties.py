"""Hypothesis properties of the core: round trips, tamper resistance, and the coverage lattices."""

from __future__ import annotations

import contextlib
import hashlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from licentia.encoding import b64url_decode, b64url_encode
from licentia.errors import LicentiaError, Reason
from licentia.keys import IssuerKey, IssuerKeySet, PrivateKey, PublicKey
from licentia.nonces import MemoryNonceStore
from licentia.presentation import present
from licentia.scope import PURPOSE_COVERS, IntendedUse, Scope
from licentia.status import StatusLists, StatusView, verify_snapshot
from licentia.territory import GROUPS, ISO_3166_ALPHA2, covers, expand_all
from licentia.token import (
    Asset,
    LicenceClaims,
    PriceTerms,
    approve,
    check_claims_message,
    issue,
    parse_token,
)
from licentia.v1 import licence_pb2
from licentia.verify import VerificationEngine
from licentia.vocabulary import DataCategory, Medium, Purpose

NOW = 1_800_000_000
DAY = 86400
ISSUER = PrivateKey.from_seed(b"\x01" * 32)
HOLDER = PrivateKey.from_seed(b"\x02" * 32)
LICENSEE = PrivateKey.from_seed(b"\x03" * 32)
KEYS = IssuerKeySet([IssuerKey(ISSUER.public, NOW - DAY)])
DIGEST = hashlib.sha256(b"photo").digest()
TERRITORIES = sorted(ISO_3166_ALPHA2 | GROUPS.keys())
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _engine(audience: str | None = None) -> VerificationEngine:
    view = StatusView(verify_snapshot(StatusLists().snapshot(ISSUER, 0, NOW), KEYS), 10**9)
    nonces = MemoryNonceStore() if audience else None
    return VerificationEngine(KEYS, view, audience=audience, nonces=nonces)


@st.composite
def claims(draw: st.DrawFn) -> LicenceClaims:
    cats = draw(st.sets(st.sampled_from(DataCategory), min_size=1, max_size=4))
    cat = sorted(cats)[0]
    start = draw(st.integers(NOW - 30 * DAY, NOW + 30 * DAY))
    return LicenceClaims(
        licence_id=draw(st.binary(min_size=16, max_size=16)),
        issuer_key_id=ISSUER.public.key_id,
        holder=HOLDER.public,
        licensee=LICENSEE.public,
        assets=(Asset(cat, DIGEST),),
        scope=Scope.of(
            cats,
            draw(st.sets(st.sampled_from(Purpose), min_size=1, max_size=4)),
            draw(st.sets(st.sampled_from(Medium), min_size=1, max_size=4)),
            draw(st.sets(st.sampled_from(TERRITORIES), min_size=1, max_size=4)),
        ),
        issued_at=NOW - DAY,
        not_before=start,
        not_after=start + draw(st.integers(1, 365 * DAY)),
        status_index=draw(st.integers(0, 1 << 20)),
        price=PriceTerms("EUR", draw(st.integers(0, 10**9)), draw(st.integers(0, 10**6)), 1000),
        max_uses=draw(st.integers(0, 10**6)),
        exclusive=draw(st.booleans()),
    )


def _token(c: LicenceClaims) -> str:
    data = c.encode()
    return issue(ISSUER, data, approve(HOLDER, data))


@SETTINGS
@given(claims())
def test_token_round_trip(c: LicenceClaims) -> None:
    t = _token(c)
    parsed = parse_token(t)
    assert parsed.claims == c
    assert parsed.verify(KEYS).claims == c
    assert LicenceClaims.decode(c.encode()) == c


_VALID = _token(
    LicenceClaims(
        licence_id=b"\x10" * 16,
        issuer_key_id=ISSUER.public.key_id,
        holder=HOLDER.public,
        licensee=LICENSEE.public,
        assets=(Asset(DataCategory.IMAGE, DIGEST),),
        scope=Scope.of([DataCategory.IMAGE], [Purpose.ADVERTISING], [Medium.SOCIAL], ["EU"]),
        issued_at=NOW,
        not_before=NOW,
        not_after=NOW + 30 * DAY,
        status_index=1,
        price=PriceTerms("EUR", 1000),
    )
)
_USE = IntendedUse(DataCategory.IMAGE, Purpose.ADVERTISING, Medium.SOCIAL, "FR", DIGEST)
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ \x00é"


def test_the_valid_token_is_allowed() -> None:
    # The properties below only mean something if the untouched token passes.
    assert _engine().verify(_VALID, _USE, NOW + 10).allowed


@SETTINGS
@given(st.integers(0, len(_VALID) - 1), st.sampled_from(_ALPHABET))
def test_any_character_change_is_denied_never_raised(i: int, ch: str) -> None:
    tampered = _VALID[:i] + ch + _VALID[i + 1 :]
    if tampered != _VALID:
        assert not _engine().verify(tampered, _USE, NOW + 10).allowed


@SETTINGS
@given(st.integers(0, 400), st.integers(1, 255))
def test_any_envelope_byte_change_is_denied(i: int, xor: int) -> None:
    raw = bytearray(b64url_decode(_VALID[5:]))
    raw[i % len(raw)] ^= xor
    assert not _engine().verify("lic1." + b64url_encode(bytes(raw)), _USE, NOW + 10).allowed


@SETTINGS
@given(st.integers(0, len(_VALID) - 1))
def test_any_truncation_is_denied(n: int) -> None:
    assert not _engine().verify(_VALID[:n], _USE, NOW + 10).allowed


@SETTINGS
@given(st.one_of(st.text(max_size=600), st.binary(max_size=600).map(lambda b: b.decode("latin-1"))))
def test_arbitrary_text_is_denied_and_parse_raises_only_licentia_errors(text: str) -> None:
    assert not _engine().verify(text, _USE, NOW).allowed
    assert not _engine().verify("lic1." + text, _USE, NOW).allowed
    with contextlib.suppress(LicentiaError):
        parse_token("lic1." + text)


_PRESENTATION = present(LICENSEE, b"\x10" * 16, "platform-1", _USE, NOW, nonce=b"\x01" * 16)


@SETTINGS
@given(st.integers(0, len(_PRESENTATION) - 1), st.sampled_from(_ALPHABET))
def test_any_presentation_change_is_denied(i: int, ch: str) -> None:
    engine = _engine("platform-1")
    tampered = _PRESENTATION[:i] + ch + _PRESENTATION[i + 1 :]
    decision = engine.verify(_VALID, _USE, NOW, presentation=tampered)
    assert decision.allowed is (tampered == _PRESENTATION)


territory_sets = st.sets(st.sampled_from(TERRITORIES), min_size=1, max_size=5)


@SETTINGS
@given(territory_sets, territory_sets, st.sampled_from(TERRITORIES))
def test_territory_coverage_is_monotone_under_union(a: set[str], b: set[str], t: str) -> None:
    if covers(expand_all(a), t):
        assert covers(expand_all(a | b), t)
    for code in a:
        assert covers(expand_all(a), code)  # reflexive


@SETTINGS
@given(st.sampled_from(TERRITORIES), st.sampled_from(TERRITORIES), st.sampled_from(TERRITORIES))
def test_territory_coverage_is_transitive(a: str, b: str, c: str) -> None:
    if covers(expand_all([a]), b) and covers(expand_all([b]), c):
        assert covers(expand_all([a]), c)


@SETTINGS
@given(st.sampled_from(Purpose), st.sampled_from(Purpose), st.sampled_from(Purpose))
def test_purpose_coverage_is_a_partial_order(a: Purpose, b: Purpose, c: Purpose) -> None:
    assert a in PURPOSE_COVERS[a]
    if b in PURPOSE_COVERS[a] and a in PURPOSE_COVERS[b]:
        assert a == b
    if b in PURPOSE_COVERS[a] and c in PURPOSE_COVERS[b]:
        assert c in PURPOSE_COVERS[a]


@st.composite
def mutated_claims_message(draw: st.DrawFn) -> licence_pb2.LicenceClaims:
    """A claims message with some fields pushed past the rules (or not)."""
    msg = draw(claims()).to_proto()
    edits = draw(st.lists(st.integers(0, 9), min_size=1, max_size=2))
    for e in edits:
        if e == 0:
            msg.licence_id = draw(st.binary(max_size=20))
        elif e == 1:
            msg.issuer_key_id = draw(st.binary(max_size=10))
        elif e == 2:
            field = draw(st.sampled_from(["holder_key", "licensee_key"]))
            setattr(msg, field, draw(st.binary(max_size=33)))
        elif e == 3:
            msg.assets.add(category=draw(st.integers(0, 12)), sha256=draw(st.binary(max_size=33)))
        elif e == 4:
            del msg.assets[:]
        elif e == 5:
            msg.not_after = draw(st.sampled_from([0, 1, NOW]))
        elif e == 6:
            msg.price.currency = draw(st.sampled_from(["", "eur", "EURO", "EUR", "ÉUR"]))
        elif e == 7:
            msg.price.fee_bps = draw(st.sampled_from([0, 10_000, 10_001]))
        elif e == 8:
            msg.ClearField(draw(st.sampled_from(["scope", "price"])))
        else:
            msg.assets.add().CopyFrom(msg.assets[0])
    return msg


@settings(SETTINGS, max_examples=400)
@given(mutated_claims_message())
def test_wire_checks_agree_with_the_domain_constructor(msg: licence_pb2.LicenceClaims) -> None:
    """check_claims_message (the verifier's fast path) refuses exactly what LicenceClaims does."""
    fast: Reason | None = None
    try:
        scope, by_digest = check_claims_message(msg)
    except LicentiaError as e:
        fast = e.reason
    try:
        p = msg.price
        slow: LicenceClaims | Reason = LicenceClaims(
            licence_id=msg.licence_id,
            issuer_key_id=msg.issuer_key_id,
            holder=PublicKey(msg.holder_key),
            licensee=PublicKey(msg.licensee_key),
            assets=tuple(Asset(DataCategory(a.category), a.sha256) for a in msg.assets),
            scope=Scope.from_proto(msg.scope),
            issued_at=msg.issued_at,
            not_before=msg.not_before,
            not_after=msg.not_after,
            status_index=msg.status_index,
            price=PriceTerms(p.currency, p.amount_minor, p.per_use_minor, p.fee_bps),
            max_uses=msg.max_uses,
            exclusive=msg.exclusive,
        )
        if not (msg.HasField("scope") and msg.HasField("price")):
            slow = Reason.MALFORMED
    except LicentiaError as e:
        slow = e.reason
    except ValueError:  # unknown category number
        slow = Reason.MALFORMED
    if fast is None:
        assert isinstance(slow, LicenceClaims)
        assert LicenceClaims._from_checked(msg, scope, by_digest) == slow
        assert LicenceClaims.decode(slow.encode()) == slow
    else:
        assert fast == slow
