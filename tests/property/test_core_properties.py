"""Hypothesis properties of the core: round trips, tamper resistance, and the coverage lattices."""

from __future__ import annotations

import contextlib
import hashlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from licentia.encoding import b64url_decode, b64url_encode
from licentia.errors import LicentiaError
from licentia.keys import IssuerKey, IssuerKeySet, PrivateKey
from licentia.nonces import MemoryNonceStore
from licentia.presentation import present
from licentia.scope import PURPOSE_COVERS, IntendedUse, Scope
from licentia.status import StatusList, StatusView, verify_snapshot
from licentia.territory import GROUPS, ISO_3166_ALPHA2, covers, expand_all
from licentia.token import Asset, LicenceClaims, PriceTerms, approve, issue, parse_token
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
    view = StatusView(verify_snapshot(StatusList().snapshot(ISSUER, 0, NOW), KEYS), 10**9)
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
