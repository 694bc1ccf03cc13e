"""One test per rule of the protocol core: every reason code is reachable, and exact."""

from __future__ import annotations

import threading
import zlib
from dataclasses import replace
from typing import Any

import nacl.signing
import pytest

from licentia import keys as K
from licentia import methods
from licentia.encoding import b64url_decode, b64url_encode, u64be
from licentia.errors import LicentiaError, Reason
from licentia.examples import NAME_SHA256, PHOTO_SHA256, typical_claims, typical_rule
from licentia.keys import IssuerKey, IssuerKeySet, PrivateKey, PublicKey
from licentia.nonces import MemoryNonceStore
from licentia.presentation import present
from licentia.request import parse_request_metadata, sign_request, verify_request
from licentia.scope import IntendedUse, Scope
from licentia.status import (
    StatusEvent,
    StatusList,
    StatusLists,
    StatusView,
    signed_heartbeat,
    verify_event,
    verify_heartbeat,
    verify_snapshot,
)
from licentia.territory import EEA, EU, ISO_3166_ALPHA2, covers, expand_all
from licentia.token import (
    Asset,
    LicenceClaims,
    StandingRule,
    approve,
    issue,
    parse_token,
    sign_standing_rule,
)
from licentia.v1 import licence_pb2, licences_pb2, status_pb2
from licentia.verify import VerificationEngine
from licentia.vocabulary import DataCategory, Medium, Purpose

NOW = 1_800_000_000
DAY = 86400
PHOTO = PHOTO_SHA256
NAME = NAME_SHA256
ISSUER = PrivateKey.from_seed(b"\x01" * 32)
HOLDER = PrivateKey.from_seed(b"\x02" * 32)
LICENSEE = PrivateKey.from_seed(b"\x03" * 32)
OTHER = PrivateKey.from_seed(b"\x04" * 32)
KEYS = IssuerKeySet([IssuerKey(ISSUER.public, NOW - DAY)])
USE = IntendedUse(DataCategory.IMAGE, Purpose.PERSONALISED_ADVERTISING, Medium.SOCIAL, "FR", PHOTO)


def claims(**over: object) -> LicenceClaims:
    base = replace(typical_claims(ISSUER, HOLDER, LICENSEE, NOW), status_index=7)
    return replace(base, **over)  # type: ignore[arg-type]


def token(c: LicenceClaims | None = None, holder: PrivateKey = HOLDER) -> str:
    data = (c or claims()).encode()
    return issue(ISSUER, data, approve(holder, data))


def view(bound: int = 300, taken_at: int = NOW) -> StatusView:
    return StatusView(verify_snapshot(StatusLists().snapshot(ISSUER, 0, taken_at), KEYS), bound)


def engine(**kw: object) -> VerificationEngine:
    return VerificationEngine(KEYS, view(), **kw)  # type: ignore[arg-type]


def reasons(decision: object) -> list[str]:
    return [r.name for r in decision.reasons]  # type: ignore[attr-defined]


# -- keys and encodings ------------------------------------------------------------------------


def test_rfc8032_test_1_through_pynacl() -> None:
    seed = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    assert PrivateKey.from_seed(seed).public.raw.hex() == (
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    )
    assert nacl.signing.SigningKey(seed).sign(b"").signature.hex() == (
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065"
        "224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    )


def test_public_key_text_round_trip_and_bad_forms() -> None:
    assert PublicKey.from_text(HOLDER.public.text) == HOLDER.public
    for bad in ("", "ed25519:", "x25519:" + HOLDER.public.text[8:], HOLDER.public.text + "A"):
        with pytest.raises(LicentiaError) as e:
            PublicKey.from_text(bad)
        assert e.value.reason is Reason.MALFORMED


def test_signature_of_one_domain_never_verifies_under_another() -> None:
    sig = HOLDER.sign(K.CONSENT, b"claims")
    assert HOLDER.public.verify(K.CONSENT, b"claims", sig)
    for domain in K.DOMAINS - {K.CONSENT}:
        assert not HOLDER.public.verify(domain, b"claims", sig)


def test_private_key_repr_hides_the_seed() -> None:
    assert HOLDER.seed.hex() not in repr(HOLDER)
    assert b64url_encode(HOLDER.seed) not in repr(HOLDER)


@pytest.mark.parametrize("bad", ["AB==", "AC", "A", "a+bc", "a/bc", "ab c", "ab\n", "é"])
def test_base64url_is_strict(bad: str) -> None:
    with pytest.raises(LicentiaError):
        b64url_decode(bad)


# -- territories and purposes ------------------------------------------------------------------


def test_territory_groups_expand_exactly() -> None:
    assert len(ISO_3166_ALPHA2) == 249
    assert len(EU) == 27
    assert EEA == EU | {"IS", "LI", "NO"}
    assert covers(expand_all(["EEA"]), "EU")
    assert not covers(expand_all(["EU"]), "EEA")
    assert covers(expand_all(["WORLD"]), "EEA")
    assert not covers(expand_all(["FR"]), "XX")


def test_broader_purpose_covers_narrower_never_the_reverse() -> None:
    s = Scope.of([DataCategory.IMAGE], [Purpose.ADVERTISING], [Medium.SOCIAL], ["FR"])
    narrow = Scope.of(
        [DataCategory.IMAGE], [Purpose.PERSONALISED_ADVERTISING], [Medium.SOCIAL], ["FR"]
    )
    assert s.contains(narrow)
    assert not narrow.contains(s)
    marketing = Scope.of([DataCategory.IMAGE], [Purpose.MARKETING], [Medium.SOCIAL], ["WORLD"])
    assert Purpose.POLITICAL_CAMPAIGN not in marketing.purpose_closure
    assert Purpose.AI_MODEL_TRAINING not in marketing.purpose_closure


# -- the licence -------------------------------------------------------------------------------


def test_typical_licence_fits_in_560_characters_and_allows_an_in_scope_use() -> None:
    t = token()
    assert len(t) <= 560
    assert engine().verify(t, USE, NOW + 10).allowed


@pytest.mark.parametrize(
    ("use", "expected"),
    [
        (replace(USE, purpose=Purpose.RECRUITMENT), ["OUT_OF_SCOPE_PURPOSE"]),
        (replace(USE, medium=Medium.TV), ["OUT_OF_SCOPE_MEDIUM"]),
        (replace(USE, territory="US"), ["OUT_OF_SCOPE_TERRITORY"]),
        (replace(USE, territory="EU"), ["OUT_OF_SCOPE_TERRITORY"]),
        (replace(USE, category=DataCategory.VOICE), ["OUT_OF_SCOPE_CATEGORY", "ASSET_MISMATCH"]),
        (replace(USE, asset_sha256=NAME), ["ASSET_MISMATCH"]),
        (replace(USE, asset_sha256=b"\x00" * 32), ["ASSET_MISMATCH"]),
    ],
)
def test_each_scope_dimension_has_its_reason(use: IntendedUse, expected: list[str]) -> None:
    d = engine().verify(token(), use, NOW + 10)
    assert not d.allowed
    assert reasons(d) == expected


def test_time_reasons() -> None:
    t = token()
    assert reasons(engine().verify(t, USE, NOW - 1)) == ["NOT_YET_VALID"]
    e = VerificationEngine(KEYS, view(bound=10**9))
    assert reasons(e.verify(t, USE, NOW + 90 * DAY)) == ["EXPIRED"]


def test_term_longer_than_the_maximum_is_invalid() -> None:
    t = token(claims(not_after=NOW + 400 * DAY))
    assert reasons(engine().verify(t, USE, NOW + 10)) == ["INVALID_TERM"]
    assert engine(max_term_seconds=500 * DAY).verify(t, USE, NOW + 10).allowed


def test_uses_exhausted() -> None:
    assert reasons(engine().verify(token(), USE, NOW + 10, uses_so_far=3)) == ["USES_EXHAUSTED"]
    assert engine().verify(token(), USE, NOW + 10, uses_so_far=2).allowed


def test_consent_by_another_key_is_bad_consent() -> None:
    assert reasons(engine().verify(token(holder=OTHER), USE, NOW + 10)) == ["BAD_CONSENT"]


def test_issuer_signature_by_another_key_is_bad_signature() -> None:
    data = claims().encode()
    env = licence_pb2.SignedLicence(
        claims=data,
        holder_signature=approve(HOLDER, data).signature,
        issuer_signature=OTHER.sign(K.ISSUANCE, b"anything"),
    )
    t = "lic1." + b64url_encode(env.SerializeToString(deterministic=True))
    assert reasons(engine().verify(t, USE, NOW + 10)) == ["BAD_SIGNATURE"]


def test_unknown_and_out_of_window_issuer_keys() -> None:
    t = token()
    other_keys = IssuerKeySet([IssuerKey(OTHER.public, NOW - DAY)])
    e = VerificationEngine(other_keys, view())
    assert reasons(e.verify(t, USE, NOW + 10)) == ["UNKNOWN_ISSUER_KEY"]
    retired = IssuerKeySet([IssuerKey(ISSUER.public, NOW - DAY, NOW - 1)])
    e = VerificationEngine(retired, view())
    assert reasons(e.verify(t, USE, NOW + 10)) == ["ISSUER_KEY_NOT_VALID"]


def test_issue_refuses_claims_naming_another_issuer_key() -> None:
    data = claims(issuer_key_id=OTHER.public.key_id).encode()
    with pytest.raises(LicentiaError):
        issue(ISSUER, data, approve(HOLDER, data))


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda t: "x" * 5000, "TOO_LARGE"),
        (lambda t: "lic2." + t[5:], "MALFORMED"),
        (lambda t: t + "A", "MALFORMED"),
        (lambda t: t[:-3], "MALFORMED"),
        (lambda t: "lic1." + b64url_encode(b64url_decode(t[5:]) + b"\x28\x01"), "MALFORMED"),
    ],
)
def test_malformed_tokens_are_denied_with_their_reason(mutate: object, reason: str) -> None:
    d = engine().verify(mutate(token()), USE, NOW + 10)  # type: ignore[operator]
    assert reasons(d) == [reason]


def test_every_single_character_change_is_refused() -> None:
    t = token()
    e = engine()
    for i in range(len(t)):
        for ch in "A_0":
            if t[i] != ch:
                assert not e.verify(t[:i] + ch + t[i + 1 :], USE, NOW + 10).allowed


def test_cached_token_is_reauthenticated_when_the_issuer_key_is_withdrawn() -> None:
    class Keys:
        def __init__(self) -> None:
            self.by_id = {ISSUER.public.key_id: IssuerKey(ISSUER.public, NOW - DAY)}

        def resolve(self, key_id: bytes) -> IssuerKey | None:
            return self.by_id.get(key_id)

    ks = Keys()
    e = VerificationEngine(ks, view())
    t = token()
    assert e.verify(t, USE, NOW + 10).allowed
    assert e.verify(t, USE, NOW + 10).allowed
    ks.by_id.clear()
    assert reasons(e.verify(t, USE, NOW + 10)) == ["UNKNOWN_ISSUER_KEY"]


# -- standing rules ----------------------------------------------------------------------------


def rule(**over: object) -> StandingRule:
    base = typical_rule(HOLDER, NOW)
    return replace(base, **over)  # type: ignore[arg-type]


def standing_token(c: LicenceClaims, r: StandingRule) -> str:
    return issue(ISSUER, c.encode(), sign_standing_rule(HOLDER, r))


def test_licence_within_a_standing_rule_is_allowed() -> None:
    t = standing_token(claims(), rule())
    assert engine().verify(t, USE, NOW + 10).allowed
    assert parse_token(t).verify(KEYS).consent_kind == "standing"


@pytest.mark.parametrize(
    "over",
    [
        {
            "scope": Scope.of(
                [DataCategory.IMAGE, DataCategory.NAME],
                [Purpose.ADVERTISING],
                [Medium.SOCIAL, Medium.ONLINE],
                ["FR"],
            )
        },
        {"asset_sha256": frozenset({PHOTO})},
        {"not_after": NOW + 30 * DAY},
        {"max_term_seconds": 30 * DAY},
        {"min_price_per_day_minor": 10_000},
        {"currency": "USD"},
        {"max_uses": 2},
        {"licensee_keys": frozenset({OTHER.public.raw})},
    ],
)
def test_claims_outside_the_standing_rule(over: dict[str, object]) -> None:
    # `claims()` asks for IMAGE+NAME, ADVERTISING+DIRECT_MARKETING, ONLINE+SOCIAL, FR+DE,
    # 90 days, EUR 450.00, 3 uses; each override makes the rule too narrow in one way.
    r = rule(**over)
    t = standing_token(claims(), r)
    assert reasons(engine().verify(t, USE, NOW + 10)) == ["OUTSIDE_STANDING_RULE"]
    # The exchange's check (domain claims) and the verifier's (parsed wire claims) agree.
    assert r.permits(claims()) == r.permits_parsed(parse_token(t)) == [Reason.OUTSIDE_STANDING_RULE]
    assert rule().permits(claims()) == rule().permits_parsed(parse_token(t)) == []


def test_a_rule_signature_is_checked_once_per_exact_rule_key_and_signature(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import licentia.token as token_module

    monkeypatch.setattr(token_module, "_VERIFIED_RULES", {})
    checked: list[bytes] = []
    real = K.verify_signature

    def counting(public_key: bytes, domain: bytes, payload: bytes, signature: bytes) -> bool:
        checked.append(domain)
        return real(public_key, domain, payload, signature)

    monkeypatch.setattr(K, "verify_signature", counting)
    r = rule()
    tokens = [standing_token(claims(licence_id=bytes([i]) * 16), r) for i in range(3)]
    for t in tokens:
        assert engine().verify(t, USE, NOW + 10).allowed
    assert checked.count(K.STANDING_RULE) == 1  # the rule once, then remembered
    assert checked.count(K.ISSUANCE) == 3  # every licence's own signature, every time
    # The same rule bytes with another signature, or signed by another key, are not the
    # remembered rule: each is checked, and refused.
    from licentia.token import StandingConsent

    data = r.encode()
    forged = StandingConsent(data, bytes(64))
    c = claims(licence_id=b"\x09" * 16)
    assert reasons(engine().verify(issue(ISSUER, c.encode(), forged), USE, NOW + 10)) == [
        "BAD_CONSENT"
    ]
    by_other = StandingConsent(data, OTHER.sign(K.STANDING_RULE, data))
    assert reasons(engine().verify(issue(ISSUER, c.encode(), by_other), USE, NOW + 10)) == [
        "BAD_CONSENT"
    ]
    assert checked.count(K.STANDING_RULE) == 3
    # Bounded: a full cache is emptied, never grown.
    monkeypatch.setattr(token_module, "_VERIFIED_RULES_MAX", 1)
    other_rule = rule(rule_id=b"\x21" * 16)
    assert engine().verify(standing_token(c, other_rule), USE, NOW + 10).allowed
    assert len(token_module._VERIFIED_RULES) == 1


def test_exclusive_licence_needs_a_rule_that_allows_exclusivity() -> None:
    t = standing_token(claims(exclusive=True), rule())
    assert reasons(engine().verify(t, USE, NOW + 10)) == ["OUTSIDE_STANDING_RULE"]
    assert (
        engine()
        .verify(standing_token(claims(exclusive=True), rule(allow_exclusive=True)), USE, NOW + 10)
        .allowed
    )


@pytest.mark.parametrize(
    "scope",
    [
        Scope.of([DataCategory.IMAGE], [Purpose.POLITICAL_CAMPAIGN], [Medium.SOCIAL], ["FR"]),
        Scope.of([DataCategory.IMAGE], [Purpose.AI_MODEL_TRAINING], [Medium.SOCIAL], ["FR"]),
        Scope.of([DataCategory.OPINIONS], [Purpose.ADVERTISING], [Medium.SOCIAL], ["FR"]),
    ],
)
def test_sensitive_uses_are_never_auto_approved(scope: Scope) -> None:
    with pytest.raises(LicentiaError) as e:
        sign_standing_rule(HOLDER, rule(scope=scope))
    assert e.value.reason is Reason.SENSITIVE_USE_NEEDS_APPROVAL
    # A rule signed by hand around the check is still refused by every verifier.
    r = rule(scope=scope, asset_sha256=frozenset({PHOTO}))
    data = r.encode()
    from licentia.token import StandingConsent

    consent = StandingConsent(data, HOLDER.sign(K.STANDING_RULE, data))
    cat = next(iter(scope.categories))
    c = claims(assets=(Asset(cat, PHOTO),), scope=scope)
    t = issue(ISSUER, c.encode(), consent)
    d = engine().verify(t, None, NOW + 10)
    assert reasons(d) == ["SENSITIVE_USE_NEEDS_APPROVAL"]


# -- presentations -----------------------------------------------------------------------------


def platform() -> VerificationEngine:
    return engine(audience="platform-1", nonces=MemoryNonceStore())


def test_presentation_rules() -> None:
    t, lid, e = token(), claims().licence_id, platform()
    assert e.verify(
        t, USE, NOW, presentation=present(LICENSEE, lid, "platform-1", USE, NOW)
    ).allowed
    assert reasons(e.verify(t, USE, NOW)) == ["WRONG_LICENSEE"]
    stolen = present(OTHER, lid, "platform-1", USE, NOW)
    assert reasons(e.verify(t, USE, NOW, presentation=stolen)) == ["WRONG_LICENSEE"]
    elsewhere = present(LICENSEE, lid, "platform-2", USE, NOW)
    assert reasons(e.verify(t, USE, NOW, presentation=elsewhere)) == ["WRONG_AUDIENCE"]
    old = present(LICENSEE, lid, "platform-1", USE, NOW - 1000)
    assert reasons(e.verify(t, USE, NOW, presentation=old)) == ["PRESENTATION_EXPIRED"]
    other_use = present(LICENSEE, lid, "platform-1", replace(USE, territory="DE"), NOW)
    assert reasons(e.verify(t, USE, NOW, presentation=other_use)) == ["PRESENTATION_MISMATCH"]


def test_replayed_presentation_is_refused_and_forgery_burns_no_nonce() -> None:
    t, lid, e = token(), claims().licence_id, platform()
    nonce = b"\x42" * 16
    forged = present(OTHER, lid, "platform-1", USE, NOW, nonce=nonce)
    assert reasons(e.verify(t, USE, NOW, presentation=forged)) == ["WRONG_LICENSEE"]
    genuine = present(LICENSEE, lid, "platform-1", USE, NOW, nonce=nonce)
    assert e.verify(t, USE, NOW, presentation=genuine).allowed
    assert reasons(e.verify(t, USE, NOW, presentation=genuine)) == ["REPLAYED"]


# -- status list -------------------------------------------------------------------------------


def test_revocation_event_denies_and_stays_revoked_when_stale() -> None:
    v = view(bound=60)
    e = VerificationEngine(KEYS, v)
    t = token()
    assert e.verify(t, USE, NOW + 10).allowed
    v.apply(StatusEvent(1, 0, 7, NOW + 20))
    assert reasons(e.verify(t, USE, NOW + 21)) == ["REVOKED"]
    assert reasons(e.verify(t, USE, NOW + 10_000)) == ["REVOKED"]


def test_staleness_bound_is_exact_and_heartbeats_refresh() -> None:
    v = view(bound=60)
    assert v.check(0, 7, NOW + 60) is None
    assert v.check(0, 7, NOW + 61) is Reason.STATUS_STALE
    v.heartbeat(0, NOW + 100)
    assert v.check(0, 7, NOW + 150) is None


def test_event_gaps_and_heartbeats_ahead_need_a_resync() -> None:
    v = view()
    v.apply(StatusEvent(1, 0, 3, NOW))
    v.apply(StatusEvent(1, 0, 3, NOW))  # a repeat is ignored
    with pytest.raises(LicentiaError) as e:
        v.apply(StatusEvent(3, 0, 4, NOW))
    assert e.value.reason is Reason.STATUS_SEQUENCE_GAP
    with pytest.raises(LicentiaError):
        v.heartbeat(5, NOW + 10)
    assert v.check(0, 7, NOW + 301) is Reason.STATUS_STALE


def _edited(msg: Any, **fields: Any) -> Any:
    out = type(msg)()
    out.CopyFrom(msg)
    for name, value in fields.items():
        setattr(out, name, value)
    return out


def test_signed_status_events_verify_and_every_edit_is_refused() -> None:
    signed = StatusEvent(5, 0, 42, NOW).signed(ISSUER)
    assert verify_event(signed, KEYS) == StatusEvent(5, 0, 42, NOW)
    flipped = bytes([signed.signature[0] ^ 1]) + signed.signature[1:]
    forged = StatusEvent(5, 0, 42, NOW).signed(OTHER)  # another key, claiming the issuer's id
    forged.issuer_key_id = ISSUER.public.key_id
    old = u64be(5) + u64be(42) + u64be(NOW) + ISSUER.public.key_id
    v1_signed = _edited(signed, signature=ISSUER.sign(K.STATUS_EVENT, old))
    for bad, reason in [
        (_edited(signed, sequence=6), Reason.BAD_SIGNATURE),
        (_edited(signed, status_index=43), Reason.BAD_SIGNATURE),
        (_edited(signed, status_list=1), Reason.BAD_SIGNATURE),  # another list's licence
        (_edited(signed, status_list=1 << 63), Reason.MALFORMED),  # names no list
        (v1_signed, Reason.BAD_SIGNATURE),  # signed before events named their list
        (_edited(signed, revoked_at=NOW + 1), Reason.BAD_SIGNATURE),
        (_edited(signed, signature=flipped), Reason.BAD_SIGNATURE),
        (_edited(signed, signature=b""), Reason.BAD_SIGNATURE),
        (
            status_pb2.StatusEvent(sequence=5, status_index=42, revoked_at=NOW),
            Reason.UNKNOWN_ISSUER_KEY,
        ),  # unsigned
        (forged, Reason.BAD_SIGNATURE),
        (StatusEvent(5, 0, 42, NOW).signed(OTHER), Reason.UNKNOWN_ISSUER_KEY),
        (_edited(signed, sequence=0), Reason.MALFORMED),
    ]:
        with pytest.raises(LicentiaError) as e:
            verify_event(bad, KEYS)
        assert e.value.reason is reason, bad


def test_signed_heartbeats_verify_and_every_edit_is_refused() -> None:
    digest = KEYS.digest()
    beat = signed_heartbeat(ISSUER, 7, NOW, digest)
    assert verify_heartbeat(beat, KEYS) == (7, NOW, digest)
    forged = signed_heartbeat(OTHER, 7, NOW, digest)
    forged.issuer_key_id = ISSUER.public.key_id
    # An event's signature over the same numbers is no heartbeat's (each has its domain).
    event = StatusEvent(7, 0, 0, NOW).signed(ISSUER)
    as_beat = status_pb2.StatusHeartbeat(
        sequence=7,
        at=NOW,
        issuer_key_id=event.issuer_key_id,
        signature=event.signature,
        key_set_sha256=digest,
    )
    unsigned = status_pb2.StatusHeartbeat(sequence=7, at=NOW, key_set_sha256=digest)
    with pytest.raises(ValueError, match="32 bytes"):
        signed_heartbeat(ISSUER, 7, NOW, digest[:31])  # the exchange never signs a bad digest
    for bad, reason in [
        (_edited(beat, sequence=8), Reason.BAD_SIGNATURE),
        (_edited(beat, at=NOW + 60), Reason.BAD_SIGNATURE),  # kept "fresh" for longer
        (_edited(beat, key_set_sha256=bytes(32)), Reason.BAD_SIGNATURE),  # hides a withdrawal
        (_edited(beat, key_set_sha256=b""), Reason.MALFORMED),
        (unsigned, Reason.UNKNOWN_ISSUER_KEY),
        (_edited(beat, signature=b""), Reason.BAD_SIGNATURE),
        (forged, Reason.BAD_SIGNATURE),
        (as_beat, Reason.BAD_SIGNATURE),
        (signed_heartbeat(ISSUER, 7, NOW - 2 * 86400, digest), Reason.ISSUER_KEY_NOT_VALID),
    ]:
        with pytest.raises(LicentiaError) as e:
            verify_heartbeat(bad, KEYS)
        assert e.value.reason is reason, bad


def test_a_key_set_digest_is_canonical_and_changes_with_any_key_or_window() -> None:
    a = IssuerKey(ISSUER.public, NOW - DAY)
    b = IssuerKey(OTHER.public, NOW, NOW + DAY)
    assert IssuerKeySet([a, b]).digest() == IssuerKeySet([b, a]).digest()  # order-free
    assert (
        IssuerKeySet([a, b]).digest()
        == IssuerKeySet.from_proto(IssuerKeySet([b, a]).to_proto()).digest()
    )
    others = [
        IssuerKeySet([a]),  # a key withdrawn
        IssuerKeySet([a, IssuerKey(OTHER.public, NOW, NOW + 2 * DAY)]),  # a window changed
        IssuerKeySet([]),
    ]
    digests = {IssuerKeySet([a, b]).digest(), *(k.digest() for k in others)}
    assert len(digests) == 4
    assert all(len(d) == 32 for d in digests)


def test_snapshot_round_trip_and_tampering() -> None:
    sl = StatusLists()
    sl.declare(1, NOW + DAY)
    sl.declare(2, NOW + 2 * DAY)
    sl.revoke(1, 3)
    sl.revoke(2, 1000)
    snap = verify_snapshot(sl.snapshot(ISSUER, 2, NOW), KEYS)
    v = StatusView(snap, 60)
    assert v.check(1, 3, NOW) is Reason.REVOKED
    assert v.check(2, 1000, NOW) is Reason.REVOKED
    assert v.check(1, 1000, NOW) is v.check(2, 3, NOW) is v.check(1, 4, NOW) is None
    signed = status_pb2.SignedStatusSnapshot()
    signed.ParseFromString(sl.snapshot(ISSUER, 2, NOW))
    signed.snapshot = signed.snapshot[:-1] + bytes([signed.snapshot[-1] ^ 1])
    with pytest.raises(LicentiaError) as e:
        verify_snapshot(signed.SerializeToString(), KEYS)
    assert e.value.reason is Reason.BAD_SIGNATURE


def test_snapshot_whose_bits_do_not_match_its_length_is_malformed() -> None:
    body = status_pb2.StatusListSnapshot(
        issuer_key_id=ISSUER.public.key_id,
        sequence=0,
        taken_at=NOW,
        lists=[
            status_pb2.StatusListBits(
                list_id=1, expires_at=NOW, bit_length=8, bits_zlib=zlib.compress(bytes(1 << 20))
            )
        ],
    ).SerializeToString()
    data = status_pb2.SignedStatusSnapshot(
        snapshot=body, signature=ISSUER.sign(K.STATUS_SNAPSHOT, body)
    ).SerializeToString()
    with pytest.raises(LicentiaError) as e:
        verify_snapshot(data, KEYS)
    assert e.value.reason is Reason.MALFORMED


# -- request signatures ------------------------------------------------------------------------

METHOD = methods.path(licences_pb2, "RevokeLicence")


def test_signed_request_round_trip_and_refusals() -> None:
    store = MemoryNonceStore()
    md = sign_request(HOLDER, METHOD, b"body", NOW)
    assert verify_request(parse_request_metadata(md), METHOD, b"body", NOW, store) == HOLDER.public

    def refused(md: tuple[tuple[str, str], ...], method: str, body: bytes, now: int) -> str:
        with pytest.raises(LicentiaError) as e:
            verify_request(parse_request_metadata(md), method, body, now, store)
        return e.value.reason.name

    assert refused(md, METHOD, b"body", NOW) == "REPLAYED_REQUEST"
    fresh = sign_request(HOLDER, METHOD, b"body", NOW)
    assert refused(fresh, methods.path(licences_pb2, "GetLicence"), b"body", NOW) == (
        "BAD_REQUEST_SIGNATURE"
    )
    assert refused(fresh, METHOD, b"changed", NOW) == "BAD_REQUEST_SIGNATURE"
    assert refused(fresh, METHOD, b"body", NOW + 3600) == "STALE_REQUEST"
    # a method name that cannot be encoded is refused like any other (found by fuzzing)
    assert refused(fresh, METHOD + "\ud800", b"body", NOW) == "BAD_REQUEST_SIGNATURE"
    # none of the refusals above burnt the nonce of `fresh`
    assert verify_request(parse_request_metadata(fresh), METHOD, b"body", NOW, store)


def test_request_metadata_must_carry_each_header_once() -> None:
    md = sign_request(HOLDER, METHOD, b"", NOW)
    for broken in (md[1:], (*md, md[0])):
        with pytest.raises(LicentiaError) as e:
            parse_request_metadata(broken)
        assert e.value.reason is Reason.BAD_REQUEST_SIGNATURE


def test_nonce_store_expires_and_fails_closed_when_full() -> None:
    s = MemoryNonceStore(max_entries=2)
    assert s.add_if_new(b"a", NOW + 10, NOW)
    assert not s.add_if_new(b"a", NOW + 10, NOW)
    assert s.add_if_new(b"b", NOW + 10, NOW)
    assert not s.add_if_new(b"c", NOW + 10, NOW)  # full of live nonces: refuse
    assert s.add_if_new(b"c", NOW + 30, NOW + 11)  # the others expired


def test_nonce_store_drops_expired_entries_from_the_oldest_end() -> None:
    s = MemoryNonceStore(max_entries=3)
    assert s.add_if_new(b"a", NOW + 5, NOW)
    assert s.add_if_new(b"b", NOW + 50, NOW)
    assert s.add_if_new(b"c", NOW + 50, NOW)
    assert s.add_if_new(b"d", NOW + 60, NOW + 10)  # "a" expired and made room
    assert not s.add_if_new(b"e", NOW + 60, NOW + 10)  # the rest are live: refuse
    assert len(s) == 3


def test_an_expired_nonce_recorded_again_is_live_and_newest() -> None:
    s = MemoryNonceStore(max_entries=3)
    assert s.add_if_new(b"b", NOW + 50, NOW)
    assert s.add_if_new(b"a", NOW + 5, NOW)
    assert s.add_if_new(b"a", NOW + 100, NOW + 10)  # expired: recorded again
    assert not s.add_if_new(b"a", NOW + 100, NOW + 20)  # and live
    assert s.add_if_new(b"d", NOW + 70, NOW + 20)
    assert list(s._seen) == [b"b", b"a", b"d"]  # "a" at the newest end, not where it was
    assert s.add_if_new(b"e", NOW + 90, NOW + 60)  # "b" expired at the oldest end
    assert list(s._seen) == [b"a", b"d", b"e"]


def test_nonce_store_holds_one_window_of_nonces_not_every_one_it_saw() -> None:
    """Found by ``make load``: the store dropped expired nonces only once full, so the
    server's memory grew with every call until a million of them (about 220 MB a store)."""
    s = MemoryNonceStore()
    for i in range(10_000):  # one call a second, each nonce valid for 60 s
        assert s.add_if_new(i.to_bytes(4, "big"), NOW + i + 60, NOW + i)
        assert len(s) <= 60
    assert not s.add_if_new((9_999).to_bytes(4, "big"), NOW + 10_060, NOW + 10_000)  # live


def test_engine_cache_evicts_the_oldest_token_first() -> None:
    e = VerificationEngine(KEYS, view(), cache_size=2)
    tokens = [token(claims(licence_id=bytes([i]) * 16, status_index=i)) for i in range(3)]
    for t in tokens:
        assert e.verify(t, USE, NOW + 10).allowed
    assert list(e._cache) == tokens[1:]


def test_engine_denies_a_token_that_is_not_text() -> None:
    """Found while building the platform verifier: a non-str token raised from the cache."""
    assert engine().verify(["lic1."], None, NOW).reasons == (Reason.MALFORMED,)  # type: ignore[arg-type]


def test_a_status_list_never_shows_a_length_its_bytes_do_not_cover() -> None:
    """Found while building the platform verifier: revoke() grew the length first, so a
    reader in another thread could index past the bytes."""
    lst = StatusList()
    seen: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                lst.is_revoked(lst.bit_length - 1)
            except BaseException as e:  # noqa: BLE001 - any failure is the bug
                seen.append(e)
                return

    t = threading.Thread(target=read)
    t.start()
    for i in range(0, 200_000, 7):
        lst.revoke(i)
    stop.set()
    t.join()
    assert seen == []


USE_ENUMS: dict[str, Any] = {"category": 1, "purpose": 1, "medium": 1}


def test_intended_uses_from_the_wire_are_interned_and_still_checked() -> None:
    wire = USE.to_proto()
    first = IntendedUse.from_proto(wire)
    assert first == USE
    assert IntendedUse.from_proto(licence_pb2.IntendedUse.FromString(wire.SerializeToString())) is (
        first
    )
    for bad in (
        licence_pb2.IntendedUse.FromString(b"\x08\x63\x10\x01\x18\x01\x22\x02FR"),  # category 99
        licence_pb2.IntendedUse(territory="XX", asset_sha256=PHOTO, **USE_ENUMS),
        licence_pb2.IntendedUse(territory="FR", asset_sha256=b"1", **USE_ENUMS),
    ):
        for _ in range(2):  # a refused use is never remembered as valid
            with pytest.raises(LicentiaError) as e:
                IntendedUse.from_proto(bad)
            assert e.value.reason is Reason.INVALID_USE
