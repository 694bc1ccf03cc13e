"""Content certificates (licentia.content_certs): the roots are deterministic and C2PA's
profile holds; a checker keeps only the roots its trusted issuer keys self-sign, for their
published windows; a C2PA reader given those roots trusts what their certificates sign."""

from __future__ import annotations

import contextlib
import hashlib
import io
from typing import Any

import c2pa
import nacl.signing
import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from licentia import content
from licentia import content_certs as cc
from licentia.clients.advertiser import ExchangeError, credentials
from licentia.errors import LicentiaError, Reason
from licentia.examples import tiny_png
from licentia.keys import IssuerKey, IssuerKeySet, PublicKey
from licentia.v1 import licences_pb2, registry_pb2

T0 = 1_800_000_000
YEAR = 365 * 86400
#: 2020-09-13: before any test runs.
PAST = 1_600_000_000


def issuer(seed: int, not_before: int = T0 - 100) -> tuple[nacl.signing.SigningKey, IssuerKey]:
    key = nacl.signing.SigningKey(bytes([seed]) * 32)
    return key, IssuerKey(PublicKey(bytes(key.verify_key)), not_before)


def root_of(key: nacl.signing.SigningKey, published: IssuerKey) -> bytes:
    return cc.root_certificate(key, published.key_id, published.not_before, published.not_after)


def ext(cert: x509.Certificate, kind: type[Any]) -> x509.Extension[Any]:
    return cert.extensions.get_extension_for_class(kind)


def test_a_root_is_deterministic_and_a_ca_self_signed_by_its_issuer_key() -> None:
    key, published = issuer(1)
    der = root_of(key, published)
    assert der == root_of(key, published)  # every replica publishes the same bytes
    cert = x509.load_der_x509_certificate(der)
    assert cert.subject == cert.issuer
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        "Licentia exchange content root " + published.key_id.hex()
    )
    assert cert.serial_number == int.from_bytes(published.key_id, "big")
    assert int(cert.not_valid_before_utc.timestamp()) == T0 - 100
    assert cert.not_valid_after_utc == cc.NO_END
    basic = ext(cert, x509.BasicConstraints)
    assert basic.critical
    assert basic.value.ca
    assert basic.value.path_length == 0
    usage = ext(cert, x509.KeyUsage)
    assert usage.critical
    assert usage.value.key_cert_sign
    assert usage.value.crl_sign
    assert not usage.value.digital_signature
    assert ext(cert, x509.SubjectKeyIdentifier).value.digest
    # A retired key's root ends with the key's window: other bytes.
    retired = IssuerKey(published.public, published.not_before, T0 + 500)
    later = x509.load_der_x509_certificate(root_of(key, retired))
    assert int(later.not_valid_after_utc.timestamp()) == T0 + 500
    with pytest.raises(LicentiaError) as e:
        cc.root_certificate(key, b"\x00" * 8, T0, None)  # another key's id
    assert e.value.reason == Reason.MALFORMED


def test_an_end_entity_certificate_follows_c2pas_profile() -> None:
    key, published = issuer(1)
    root = root_of(key, published)
    advertiser = nacl.signing.SigningKey(bytes([9]) * 32)
    subject = bytes(advertiser.verify_key)
    der = cc.content_certificate(key, published.key_id, root, subject, "Acme Ads", T0, YEAR)
    cert = x509.load_der_x509_certificate(der)
    assert cert.version == x509.Version.v3
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        PublicKey(subject).text
    )
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Acme Ads"
    assert cert.issuer == x509.load_der_x509_certificate(root).subject
    basic = ext(cert, x509.BasicConstraints)
    assert basic.critical
    assert not basic.value.ca
    usage = ext(cert, x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature
    assert not usage.value.key_cert_sign
    eku = ext(cert, x509.ExtendedKeyUsage).value
    assert cc.DOCUMENT_SIGNING in eku
    assert ExtendedKeyUsageOID.EMAIL_PROTECTION in eku
    assert ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in eku  # C2PA forbids it
    root_ski = ext(x509.load_der_x509_certificate(root), x509.SubjectKeyIdentifier).value
    assert ext(cert, x509.AuthorityKeyIdentifier).value.key_identifier == root_ski.digest
    assert ext(cert, x509.SubjectKeyIdentifier).value.digest
    # The serial is derived (same inputs, same certificate), positive, and differs per second.
    assert der == cc.content_certificate(key, published.key_id, root, subject, "Acme Ads", T0, YEAR)
    again = cc.content_certificate(key, published.key_id, root, subject, "Acme Ads", T0 + 1, YEAR)
    assert 0 < cert.serial_number != x509.load_der_x509_certificate(again).serial_number
    info = cc.describe(der)
    # Valid from a little before it is issued (clocks that lag), never before its root.
    assert info == cc.CertificateInfo(
        PublicKey(subject).text, "Acme Ads", T0 - 100, T0 + YEAR, published.key_id
    )
    later = cc.content_certificate(key, published.key_id, root, subject, "", T0 + 9999, 1)
    assert cc.describe(later).not_before == T0 + 9999 - cc.BACKDATE_SECONDS
    assert cc.subject_key_text(der) == PublicKey(subject).text
    # No organisation: no O; a long one is cut to X.520's bound.
    bare = cc.describe(cc.content_certificate(key, published.key_id, root, subject, "", T0, 1))
    assert bare.organisation == ""
    long = cc.content_certificate(key, published.key_id, root, subject, "x" * 128, T0, 1)
    assert cc.describe(long).organisation == "x" * 64
    pem = cc.chain_pem(der, root)
    assert pem.count("BEGIN CERTIFICATE") == 2
    assert pem.index(content.roots_pem([der])) == 0


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"subject_key": b"\x01" * 31}, Reason.MALFORMED),
        ({"valid_seconds": 0}, Reason.INVALID_REQUEST),
        ({"root_der": b"\x30\x03\x02\x01\x01"}, Reason.MALFORMED),
        ({"root_der": b"\x30" * 4097}, Reason.TOO_LARGE),
        ({"other_root": True}, Reason.MALFORMED),
    ],
)
def test_a_certificate_is_refused_for_bad_input(change: dict[str, Any], reason: Reason) -> None:
    key, published = issuer(1)
    other, other_published = issuer(2)
    args: dict[str, Any] = {
        "issuer": key,
        "key_id": published.key_id,
        "root_der": root_of(key, published),
        "subject_key": b"\x07" * 32,
        "organisation": "Acme",
        "now": T0,
        "valid_seconds": YEAR,
    }
    if change.pop("other_root", False):
        args["root_der"] = root_of(other, other_published)
    args.update(change)
    with pytest.raises(LicentiaError) as e:
        cc.content_certificate(**args)
    assert e.value.reason == reason


def test_trusted_roots_keeps_only_the_roots_of_trusted_keys_for_their_windows() -> None:
    key, published = issuer(1)
    old_key, old = issuer(3)
    retired = IssuerKey(old.public, old.not_before, T0 + 10)
    trusted = IssuerKeySet([published, retired])
    good, good_old = root_of(key, published), root_of(old_key, retired)
    unknown = root_of(*issuer(2))  # a key the checker does not trust
    forged = bytearray(good)
    forged[-1] ^= 1  # the self-signature's last byte
    still_current = root_of(old_key, old)  # claims the retired key has no end
    early = cc.root_certificate(key, published.key_id, T0 - 5000, None)  # another window
    ee = cc.content_certificate(key, published.key_id, good, b"\x07" * 32, "", T0, YEAR)
    wire = [
        good,
        unknown,
        bytes(forged),
        still_current,
        early,
        ee,  # an end-entity is no root
        b"\x30" * (cc.MAX_CERT_BYTES + 1),
        b"not a certificate",
        b"",
        good_old,
        good,  # a duplicate is kept once
    ]
    assert cc.trusted_roots(wire, trusted) == [good, good_old]
    # A withdrawn key is unknown: its root goes with it.
    assert cc.trusted_roots(wire, IssuerKeySet([published])) == [good]
    assert cc.trusted_roots([], trusted) == []
    with pytest.raises(LicentiaError) as e:
        cc.trusted_roots([good] * (cc.MAX_ROOTS + 1), trusted)
    assert e.value.reason == Reason.TOO_LARGE


CREATED = {
    "action": "c2pa.created",
    "digitalSourceType": "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCreation",
}


def signed_png(signing: nacl.signing.SigningKey, chain: str) -> bytes:
    """A PNG with a C2PA manifest signed by ``signing`` under ``chain``."""
    signer = c2pa.Signer.from_callback(
        lambda data: signing.sign(bytes(data)).signature, c2pa.C2paSigningAlg.ED25519, chain
    )
    manifest = {
        "claim_generator_info": [{"name": "licentia-tests", "version": "1"}],
        "assertions": [{"label": "c2pa.actions", "data": {"actions": [CREATED]}}],
    }
    out = io.BytesIO()
    c2pa.Builder(manifest).sign(signer, "image/png", io.BytesIO(tiny_png()), out)
    return out.getvalue()


def c2pa_read(data: bytes, roots: list[bytes]) -> tuple[str, str]:
    """The C2PA reader's validation state and signer CN, with ``roots`` as its anchors."""
    settings = {
        "verify": {"verify_trust": True, "ocsp_fetch": False, "remote_manifest_fetch": False},
        "trust": {"trust_anchors": content.roots_pem(roots)},
    }
    context = c2pa.Context.builder().with_settings(c2pa.Settings.from_dict(settings)).build()
    reader = c2pa.Reader("image/png", io.BytesIO(data), context=context)
    manifest = reader.get_active_manifest()
    assert manifest is not None
    return str(reader.get_validation_state()), manifest["signature_info"]["common_name"]


def test_a_c2pa_reader_trusts_the_chain_under_its_root_and_after_the_key_retires() -> None:
    # C2PA checks the certificates at the time it reads: a window around today.
    key, published = issuer(1, PAST)
    root = root_of(key, published)
    advertiser = nacl.signing.SigningKey.generate()
    subject = bytes(advertiser.verify_key)
    ee = cc.content_certificate(key, published.key_id, root, subject, "Acme", PAST, 100 * YEAR)
    data = signed_png(advertiser, cc.chain_pem(ee, root))
    assert c2pa_read(data, [root]) == ("Trusted", PublicKey(subject).text)
    # The root the exchange publishes once the key retires (another window, other bytes)
    # still anchors what the key certified while it was current.
    retired = IssuerKey(published.public, published.not_before, PAST + YEAR)
    assert c2pa_read(data, [root_of(key, retired)])[0] == "Trusted"
    # Another exchange's root: the signature holds, nothing anchors it.
    assert c2pa_read(data, [root_of(*issuer(2, PAST))])[0] == "Valid"


def test_a_retired_keys_secret_mints_trusted_certificates_until_its_root_is_dropped() -> None:
    """The review's finding, reproduced: C2PA matches an anchor by signature, not by name
    nor window, so with a retired key's secret a thief mints a certificate today (its
    chain carries the key's root as it was while current) that a reader trusts under the
    retired root; naming another key as issuer changes nothing. A checker that passes
    ``now`` drops a retired root once every certificate the key issued has expired (its
    end plus twice the longest term): then the forgery is untrusted."""
    import time

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    today = int(time.time())
    key, current = issuer(1, PAST)
    new_key, new = issuer(2, PAST + YEAR)
    retired = IssuerKey(current.public, PAST, PAST + YEAR)
    trusted = IssuerKeySet([retired, new])
    published = [root_of(key, retired), root_of(new_key, new)]
    thief = nacl.signing.SigningKey.generate()
    minted = cc.content_certificate(
        key, current.key_id, root_of(key, current), bytes(thief.verify_key), "", today, YEAR
    )
    forged = signed_png(thief, cc.chain_pem(minted, root_of(key, current)))
    anchors = cc.trusted_roots(published, trusted)
    assert anchors == published
    assert c2pa_read(forged, anchors)[0] == "Trusted"  # the weakness: by signature alone
    # The certificate names the current key as its issuer: still trusted, by signature.
    cert = x509.load_der_x509_certificate(minted)
    renamed = cert_builder_like(cert).issuer_name(cc.root_name(new.key_id))
    private = Ed25519PrivateKey.from_private_bytes(bytes(key))
    misnamed = renamed.sign(private, None).public_bytes(serialization.Encoding.DER)
    chain = cc.chain_pem(misnamed, root_of(key, current))
    assert c2pa_read(signed_png(thief, chain), anchors)[0] == ("Trusted")

    # The bound: kept while a certificate the key issued may still be valid, dropped after.
    ends = cc.retired_root_ends(PAST + YEAR, YEAR)
    assert ends == PAST + 3 * YEAR
    assert cc.trusted_roots(published, trusted, now=ends - 1, max_term_seconds=YEAR) == published
    dropped = cc.trusted_roots(published, trusted, now=ends, max_term_seconds=YEAR)
    assert dropped == [published[1]]  # the current key's root never ends
    assert c2pa_read(forged, dropped)[0] == "Valid"  # untrusted: the checker's DENY
    assert content.read(forged, None, dropped).state == "valid_untrusted"
    # The default bound is the checkers' default longest term (365 days).
    assert cc.trusted_roots(published, trusted, now=today) == [published[1]]


def test_certificate_life_and_the_checkers_window_agree_by_construction() -> None:
    """Issue 22 (second review): certificates last twice the exchange's content term (its
    longest licence term, capped at a year) and checkers drop a retired key's root with the
    term the exchange publishes, so a leaked retired secret mints trusted certificates for
    no longer than the exchange's own certificates last, and no certificate outlives its
    root's window (``anchored`` refuses one that would)."""
    day = 86400
    assert cc.content_term(30 * day) == 30 * day
    assert cc.content_term(1000 * day) == YEAR  # capped: no certificate outlives the window
    assert cc.checker_term(30 * day) == 30 * day
    assert cc.checker_term(0) == cc.checker_term(1000 * day) == YEAR  # none sent, or too long
    # An exchange with a 30-day longest term: the root is dropped 60 days after the key's end.
    key, current = issuer(1, PAST)
    retired = IssuerKey(current.public, PAST, T0)
    new_key, new = issuer(2, T0)
    published = [root_of(key, retired), root_of(new_key, new)]
    trusted = IssuerKeySet([retired, new])
    term = 30 * day
    assert cc.root_ends(published[0], term) == T0 + 60 * day
    assert cc.root_ends(published[1], term) is None
    kept = cc.trusted_roots(published, trusted, now=T0 + 60 * day - 1, max_term_seconds=term)
    assert kept == published
    dropped = cc.trusted_roots(published, trusted, now=T0 + 60 * day, max_term_seconds=term)
    assert dropped == [published[1]]
    # A certificate issued just before the key retired, for 2 x the term: anchored; one that
    # would outlive its root's window (issued for longer than the term allows): not.
    mine = nacl.signing.SigningKey(b"\x07" * 32)

    def held(valid: int) -> credentials.ContentCertificate:
        der = cc.content_certificate(
            key, current.key_id, root_of(key, current), bytes(mine.verify_key), "", T0 - 1, valid
        )
        info = cc.describe(der)
        return credentials.ContentCertificate(
            der, published[0], current.key_id, info.subject_key, "", info.not_before, info.not_after
        )

    answer = licences_pb2.GetIssuerKeysResponse(
        keys=trusted.to_proto(), content_roots=published, content_term_seconds=term
    )
    assert credentials.anchored(held(2 * term), answer, T0)
    assert not credentials.anchored(held(2 * term + 2), answer, T0)
    # With no term published (an older exchange) the checkers' cap applies.
    answer.content_term_seconds = 0
    assert credentials.anchored(held(2 * term + 2), answer, T0)


def cert_builder_like(cert: x509.Certificate) -> x509.CertificateBuilder:
    """A builder holding every field of ``cert`` but its issuer name and signature."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(cert.subject)
        .public_key(cert.public_key())
        .serial_number(cert.serial_number)
        .not_valid_before(cert.not_valid_before_utc)
        .not_valid_after(cert.not_valid_after_utc)
    )
    for extension in cert.extensions:
        builder = builder.add_extension(extension.value, extension.critical)
    return builder


def test_check_chain_accepts_only_a_certificate_issued_under_its_root() -> None:
    key, published = issuer(1)
    root = root_of(key, published)
    ee = cc.content_certificate(key, published.key_id, root, b"\x07" * 32, "Acme", T0, YEAR)
    assert cc.check_chain(ee, root) == cc.describe(ee)
    other = root_of(*issuer(2))
    tampered = bytearray(ee)
    tampered[-1] ^= 1
    for bad_ee, bad_root in ((ee, other), (bytes(tampered), root), (root, root), (ee, ee)):
        with pytest.raises(LicentiaError) as e:
            cc.check_chain(bad_ee, bad_root)
        assert e.value.reason == Reason.MALFORMED


def test_known_answers_of_token_format_12_3() -> None:
    """The root of the vectors' issuer key (seed 01…01, window from 1799913600, no end) and
    the certificate of the licensee key (seed 03…03) as docs/token-format.md §12.3 gives
    them: another implementation that makes the same bytes agrees with every replica."""
    key = nacl.signing.SigningKey(b"\x01" * 32)
    key_id = PublicKey(bytes(key.verify_key)).key_id
    root = cc.root_certificate(key, key_id, 1799913600, None)
    assert hashlib.sha256(root).hexdigest() == (
        "66abc3c5b8c32cb460a840a9560bd61e6df2f5954403fd6f53ad88bf7cd4ff05"
    )
    licensee = bytes(nacl.signing.SigningKey(b"\x03" * 32).verify_key)
    ee = cc.content_certificate(key, key_id, root, licensee, "Acme Ads", 1800000000, 180 * 86400)
    assert hashlib.sha256(ee).hexdigest() == (
        "f715dbfd44fbc8d539e066e79fa8f59ba20d3533ef3887f90c4596f65df0a53c"
    )


def test_the_sdk_takes_only_a_certificate_for_its_own_key_under_the_root_sent() -> None:
    key, published = issuer(1)
    root = root_of(key, published)
    mine = PublicKey(b"\x07" * 32)
    ee = cc.content_certificate(key, published.key_id, root, mine.raw, "Acme", T0, YEAR)
    theirs = cc.content_certificate(key, published.key_id, root, b"\x08" * 32, "Acme", T0, YEAR)

    def answer(**changes: Any) -> registry_pb2.IssueContentCertificateResponse:
        fields: dict[str, Any] = {
            "certificate": ee,
            "root": root,
            "issuer_key_id": published.key_id,
            "not_after": T0 + YEAR,
        }
        fields.update(changes)
        return registry_pb2.IssueContentCertificateResponse(**fields)

    got = credentials.certificate_from(answer(), mine)
    assert (got.subject_key, got.organisation, got.not_after) == (mine.text, "Acme", T0 + YEAR)
    assert got.not_before == T0 - 100  # backdated, down to its root's start
    assert got.chain_pem == cc.chain_pem(ee, root)
    assert got.lasts(T0 + 10)
    assert not got.lasts(T0 + 10, until=T0 + YEAR)  # a licence that would outlive it
    assert not got.lasts(T0 + YEAR - 3600)  # within a day of its end
    assert not got.lasts(T0 - 101)
    for bad in (
        answer(certificate=theirs),
        answer(root=root_of(*issuer(2))),
        answer(issuer_key_id=b"\x00" * 8),
        answer(not_after=T0 + 1),
        answer(certificate=b"junk"),
        answer(certificate=b"\x30" * 5000),
    ):
        with pytest.raises(ExchangeError) as e:
            credentials.certificate_from(bad, mine)
        assert e.value.reason == Reason.MALFORMED


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=600), max_size=4), st.integers(0, 599), st.integers(0, 255))
def test_no_bytes_from_the_wire_crash_the_readers(junk: list[bytes], at: int, value: int) -> None:
    """Random bytes, and a real root with one byte set anywhere: dropped or kept, or a
    LicentiaError, never another exception."""
    key, published = issuer(1)
    root = bytearray(root_of(key, published))
    root[at % len(root)] = value
    trusted = IssuerKeySet([published])
    kept = cc.trusted_roots([*junk, bytes(root)], trusted)
    assert kept in ([], [bytes(root)])
    if kept:
        assert bytes(root) == root_of(key, published)  # only the root itself survives
    for der in [*junk, bytes(root)]:
        with contextlib.suppress(LicentiaError):
            cc.describe(der)
        with contextlib.suppress(LicentiaError):
            cc.check_chain(der, bytes(root))
