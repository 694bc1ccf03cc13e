"""Content certificates: the exchange as the C2PA certificate authority of its advertisers.

C2PA Content Credentials are signed with an X.509 certificate chain. Licentia's chain has two
certificates (docs/token-format.md §12, "Content certificates"):

- a **root** per issuer key: self-signed by that key, fully determined by the key and its
  window (:func:`root_certificate`), so every replica of an exchange publishes the same bytes
  and a checker that already trusts the issuer keys trusts the roots with no new anchor: it
  keeps a root only if its self-signature verifies and its public key is an issuer key it
  trusts, with the same window (:func:`trusted_roots`);
- an **end-entity** certificate for an advertiser's own signing key, issued by the current
  issuer key (:func:`content_certificate`), whose subject CN is the key's text form
  (``ed25519:<base64url>``, :attr:`licentia.keys.PublicKey.text`): the C2PA reader reports
  that CN, and a checker compares it with the licence's licensee key.

Pure: no clock, no randomness, no I/O; times are unix seconds passed in. Every certificate read
from the wire is capped (:data:`MAX_CERT_BYTES`, and at most :data:`MAX_ROOTS` roots).
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import nacl.signing
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .errors import LicentiaError, Reason
from .keys import KEY_ID_BYTES, PUBLIC_KEY_BYTES, IssuerKeyResolver, IssuerKeySet, PublicKey
from .token import DEFAULT_MAX_TERM_SECONDS

__all__ = [
    "BACKDATE_SECONDS",
    "DOCUMENT_SIGNING",
    "MAX_CERT_BYTES",
    "MAX_ORGANISATION_CHARS",
    "MAX_ROOTS",
    "NO_END",
    "ROOT_ORGANISATION",
    "SERIAL_PREFIX",
    "CertificateInfo",
    "chain_pem",
    "check_chain",
    "checker_term",
    "content_certificate",
    "content_term",
    "describe",
    "retired_root_ends",
    "root_certificate",
    "root_ends",
    "root_name",
    "subject_key_text",
    "trusted_roots",
]

#: At most this many bytes in one certificate read from the wire (ours are about 400-600).
MAX_CERT_BYTES = 4096
#: The subject's O holds at most this many characters of the organisation's name (cut).
MAX_ORGANISATION_CHARS = 64
#: At most this many roots in one list: one per issuer key, so the key set's cap.
MAX_ROOTS = IssuerKeySet.MAX_KEYS
#: The notAfter of a root whose issuer key is still current: 9999-12-31 23:59:59 UTC, the
#: "no well-defined expiration" value of RFC 5280 §4.1.2.5.
NO_END = datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=datetime.UTC)
#: The O of every root's subject.
ROOT_ORGANISATION = "Licentia exchange"
#: An end-entity certificate is valid from this many seconds before it is issued (not before
#: its root), so that a signer or a reader whose clock lags the exchange's does not find it
#: "not yet valid" (C2PA refuses to sign with such a certificate).
BACKDATE_SECONDS = 300
#: Not a signature domain: hashed into an end-entity certificate's serial number.
SERIAL_PREFIX = b"licentia.v1.content-certificate-serial"
_CN_PREFIX = "Licentia exchange content root "
#: What cryptography raises for bytes that are not a certificate it can read (a field is
#: parsed when it is first read, so these may come from any access).
_PARSE_ERRORS = (ValueError, x509.InvalidVersion, UnsupportedAlgorithm)
#: The shortest DER a root could be (a 64-byte signature and more).
_CERT_MIN_BYTES = 128
#: id-kp-documentSigning (RFC 9336), one of the extended key usages C2PA accepts.
DOCUMENT_SIGNING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")


def _time(t: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(t, tz=datetime.UTC)


def _unix(t: datetime.datetime) -> int:
    return int(t.timestamp())


def _private(issuer: nacl.signing.SigningKey) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes(issuer))


def root_name(key_id: bytes) -> x509.Name:
    """The subject (and issuer) name of the root of the issuer key ``key_id``."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, _CN_PREFIX + key_id.hex()),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ROOT_ORGANISATION),
        ]
    )


def root_certificate(
    issuer: nacl.signing.SigningKey, key_id: bytes, not_before: int, not_after: int | None
) -> bytes:
    """The DER root certificate of an issuer key, self-signed by it.

    Deterministic (Ed25519 signatures are): the same key and window give the same bytes on
    every replica. Serial = the key id as an unsigned big-endian integer; validity =
    ``[not_before, not_after]`` of the key (``not_after`` None: :data:`NO_END`); extensions:
    BasicConstraints CA (critical, path length 0), KeyUsage keyCertSign + cRLSign (critical),
    SubjectKeyIdentifier.
    """
    private = _private(issuer)
    public = private.public_key()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    if len(key_id) != KEY_ID_BYTES or PublicKey(raw).key_id != key_id:
        raise LicentiaError(Reason.MALFORMED, "the key id is not the issuer key's")
    builder = _root_builder(public, key_id, not_before, not_after)
    return builder.sign(private, None).public_bytes(serialization.Encoding.DER)


def _root_builder(
    public: Ed25519PublicKey, key_id: bytes, not_before: int, not_after: int | None
) -> x509.CertificateBuilder:
    """Every field of a root but its signature (:func:`root_certificate`)."""
    name = root_name(key_id)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(int.from_bytes(key_id, "big") or 1)
        .not_valid_before(_time(not_before))
        .not_valid_after(NO_END if not_after is None else _time(not_after))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )


def content_certificate(
    issuer: nacl.signing.SigningKey,
    key_id: bytes,
    root_der: bytes,
    subject_key: bytes,
    organisation: str,
    now: int,
    valid_seconds: int,
) -> bytes:
    """A DER end-entity certificate for ``subject_key`` (32 raw bytes), issued by ``issuer``.

    C2PA's certificate profile: version 3, Ed25519; subject CN = the key's text form
    (``ed25519:…``), O = ``organisation`` when not empty (its first 64 characters);
    issuer = ``root_der``'s subject; validity from ``now`` less :data:`BACKDATE_SECONDS`
    (not before the root's notBefore) to ``now + valid_seconds``;
    BasicConstraints ca=False (critical); KeyUsage digitalSignature (critical);
    ExtendedKeyUsage id-kp-documentSigning + id-kp-emailProtection; SubjectKeyIdentifier;
    AuthorityKeyIdentifier = the root's key.

    The serial is derived, not random: the first 16 bytes of SHA-256(:data:`SERIAL_PREFIX`
    || 0x00 || key id || subject key || now), top bit cleared (a positive 127-bit number),
    so replicas agree and the core needs no randomness; Ed25519 signs the whole certificate
    (no hash-collision prefix to guard against, the reason random serials exist).
    """
    if len(subject_key) != PUBLIC_KEY_BYTES:
        raise LicentiaError(Reason.MALFORMED, "an Ed25519 public key is 32 bytes")
    if valid_seconds <= 0:
        raise LicentiaError(Reason.INVALID_REQUEST, "a certificate is valid for some time")
    root = _load(root_der)
    private = _private(issuer)
    if root.public_key() != private.public_key() or root.subject != root_name(key_id):
        raise LicentiaError(Reason.MALFORMED, "the root is not the issuer key's")
    subject_attrs = [
        x509.NameAttribute(NameOID.COMMON_NAME, PublicKey(subject_key).text),
    ]
    if organisation:
        # X.520's upper bound for an organisation name (RFC 5280 ub-organization-name).
        org = organisation[:MAX_ORGANISATION_CHARS]
        subject_attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    digest = hashlib.sha256(
        SERIAL_PREFIX + b"\x00" + key_id + subject_key + now.to_bytes(8, "big")
    ).digest()
    serial = int.from_bytes(digest[:16], "big") >> 1 or 1
    subject_public = Ed25519PublicKey.from_public_bytes(subject_key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(subject_attrs))
        .issuer_name(root.subject)
        .public_key(subject_public)
        .serial_number(serial)
        .not_valid_before(max(_time(now - BACKDATE_SECONDS), root.not_valid_before_utc))
        .not_valid_after(_time(now + valid_seconds))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([DOCUMENT_SIGNING, ExtendedKeyUsageOID.EMAIL_PROTECTION]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(subject_public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(private.public_key()),
            critical=False,
        )
    )
    return builder.sign(private, None).public_bytes(serialization.Encoding.DER)


def _load(der: bytes) -> x509.Certificate:
    """Parse one DER certificate (at most :data:`MAX_CERT_BYTES`; MALFORMED / TOO_LARGE)."""
    if len(der) > MAX_CERT_BYTES:
        raise LicentiaError(Reason.TOO_LARGE, f"a certificate is at most {MAX_CERT_BYTES} bytes")
    try:
        return x509.load_der_x509_certificate(der)
    except _PARSE_ERRORS:
        raise LicentiaError(Reason.MALFORMED, "not a DER X.509 certificate") from None


def _raw_ed25519(cert: x509.Certificate) -> bytes | None:
    try:
        key = cert.public_key()
    except _PARSE_ERRORS:
        return None
    if not isinstance(key, Ed25519PublicKey):
        return None
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def content_term(max_term_seconds: int) -> int:
    """The term a content certificate's life is counted in for an exchange whose longest
    licence term is ``max_term_seconds``: that term, capped at
    :data:`~licentia.token.DEFAULT_MAX_TERM_SECONDS` (a certificate lasts twice it). The
    exchange publishes it (``GetIssuerKeysResponse.content_term_seconds``) and checkers drop
    a retired key's root with the same term (:func:`checker_term`), so both agree by
    construction (docs/token-format.md §12.3)."""
    return max(1, min(max_term_seconds, DEFAULT_MAX_TERM_SECONDS))


def checker_term(published: int) -> int:
    """The term a checker drops retired roots with, from the exchange's published
    ``content_term_seconds``: that value if it is in (0, DEFAULT_MAX_TERM_SECONDS], else
    (an older exchange that sends none, or a value over the cap) the cap, the longest any
    content certificate lasts."""
    if 0 < published <= DEFAULT_MAX_TERM_SECONDS:
        return published
    return DEFAULT_MAX_TERM_SECONDS


def retired_root_ends(not_after: int, max_term_seconds: int = DEFAULT_MAX_TERM_SECONDS) -> int:
    """When a retired key's root stops anchoring anything: ``not_after`` plus twice the
    content term (:func:`content_term`, at most DEFAULT_MAX_TERM_SECONDS). The exchange
    issues certificates valid for twice that term, only while the key is current, so every
    certificate a key issued has expired by then (and C2PA finds a file signed under an
    expired certificate untrusted); a root kept past it would only serve certificates
    minted later with a retired key's secret."""
    return not_after + 2 * checker_term(max_term_seconds)


def root_ends(root_der: bytes, max_term_seconds: int = DEFAULT_MAX_TERM_SECONDS) -> int | None:
    """When checkers drop ``root_der`` (a root :func:`trusted_roots` kept):
    :func:`retired_root_ends` of its key's end, or None for a current key's root."""
    end = x509.load_der_x509_certificate(root_der).not_valid_after_utc
    if end == NO_END:
        return None
    return retired_root_ends(_unix(end), max_term_seconds)


def _root_ok(der: bytes, issuer_keys: IssuerKeyResolver) -> bool:
    """True if ``der`` is, byte for byte, the root :func:`root_certificate` makes for a key
    ``issuer_keys`` resolves, for its published window. The expected bytes but the
    signature are rebuilt from the key and its window (with a placeholder key signing:
    Ed25519's signature is the last 64 bytes of the DER), so no other encoding of the same
    certificate is kept; then the signature must verify under the issuer key."""
    if not _CERT_MIN_BYTES <= len(der) <= MAX_CERT_BYTES:
        return False
    try:
        raw = _raw_ed25519(x509.load_der_x509_certificate(der))
    except _PARSE_ERRORS:
        return False
    if raw is None:
        return False
    key = issuer_keys.resolve(PublicKey(raw).key_id)
    if key is None or key.public.raw != raw:
        return False
    public = Ed25519PublicKey.from_public_bytes(raw)
    expected = _root_builder(public, key.key_id, key.not_before, key.not_after).sign(
        _placeholder(), None
    )
    shape = expected.public_bytes(serialization.Encoding.DER)
    if der[:-64] != shape[:-64]:
        return False
    try:
        public.verify(der[-64:], expected.tbs_certificate_bytes)
    except InvalidSignature:
        return False
    return True


def _placeholder() -> Ed25519PrivateKey:
    """A fixed key that signs the expected shape of a root (its signature is discarded)."""
    return Ed25519PrivateKey.from_private_bytes(b"\x00" * 32)


def trusted_roots(
    roots_der: Iterable[bytes],
    issuer_keys: IssuerKeyResolver,
    *,
    now: int | None = None,
    max_term_seconds: int = DEFAULT_MAX_TERM_SECONDS,
) -> list[bytes]:
    """The roots of ``roots_der`` a checker may give its C2PA reader as trust anchors.

    Given ``now``, the root of a key retired long enough ago that every certificate it
    issued has expired (``now`` >= :func:`retired_root_ends`, with the exchange's published
    content term, clamped by :func:`checker_term`) is dropped too: C2PA matches an anchor
    by signature and ignores its validity, so a retired key's root would otherwise anchor
    certificates minted with its secret after its retirement for ever (docs/token-format.md §12.3).

    A root is kept only if it parses (at most :data:`MAX_CERT_BYTES`), its public key is an
    Ed25519 key that ``issuer_keys`` resolves (same resolver as the licence verifier's: a
    withdrawn key is unknown), it is byte for byte the certificate :func:`root_certificate`
    makes for that key's published window but for the signature (so its name, CA flag and
    validity are those, a root still claiming a retired key is current is dropped, and no
    other encoding of it passes), and its self-signature verifies. Others are
    dropped; more than :data:`MAX_ROOTS` is refused (TOO_LARGE). Duplicates are kept once.
    """
    kept: list[bytes] = []
    for n, der in enumerate(roots_der, start=1):
        if n > MAX_ROOTS:
            raise LicentiaError(Reason.TOO_LARGE, f"at most {MAX_ROOTS} content roots")
        if der not in kept and _root_ok(der, issuer_keys):
            if now is not None and _expired(der, now, max_term_seconds):
                continue
            kept.append(der)
    return kept


def _expired(root_der: bytes, now: int, max_term_seconds: int) -> bool:
    """True if ``root_der`` (a root :func:`_root_ok` accepted) is a retired key's whose
    certificates have all expired at ``now``."""
    ends = root_ends(root_der, max_term_seconds)
    return ends is not None and now >= ends


def _pem(der: bytes) -> str:
    return _load(der).public_bytes(serialization.Encoding.PEM).decode("ascii")


def chain_pem(ee_der: bytes, root_der: bytes) -> str:
    """The PEM chain C2PA signers take: the end-entity certificate first, then the root."""
    return _pem(ee_der) + _pem(root_der)


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    """What a client needs to know of an end-entity certificate."""

    subject_key: str
    organisation: str
    not_before: int
    not_after: int
    issuer_key_id: bytes


def describe(ee_der: bytes) -> CertificateInfo:
    """Read an end-entity certificate made by :func:`content_certificate` (MALFORMED if not,
    TOO_LARGE over :data:`MAX_CERT_BYTES`)."""
    cert = _load(ee_der)
    try:
        return _describe(cert)
    except _PARSE_ERRORS:  # a field that does not parse (cryptography parses them when read)
        raise _not_ours() from None


def _not_ours() -> LicentiaError:
    return LicentiaError(Reason.MALFORMED, "not a Licentia content certificate")


def _describe(cert: x509.Certificate) -> CertificateInfo:
    raw = _raw_ed25519(cert)
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    orgs = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    issuer_cn = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    if raw is None or len(cns) != 1 or len(issuer_cn) != 1 or len(orgs) > 1:
        raise _not_ours()
    text = PublicKey(raw).text
    issuer_text = str(issuer_cn[0].value)
    if cns[0].value != text or not issuer_text.startswith(_CN_PREFIX):
        raise _not_ours()
    key_id = bytes.fromhex(issuer_text[len(_CN_PREFIX) :])  # ValueError: not ours
    if len(key_id) != KEY_ID_BYTES:
        raise _not_ours()
    return CertificateInfo(
        subject_key=text,
        organisation=str(orgs[0].value) if orgs else "",
        not_before=_unix(cert.not_valid_before_utc),
        not_after=_unix(cert.not_valid_after_utc),
        issuer_key_id=key_id,
    )


def check_chain(ee_der: bytes, root_der: bytes) -> CertificateInfo:
    """:func:`describe` ``ee_der`` once it is checked to be issued under ``root_der``: the
    root is self-signed by its Ed25519 key, the end-entity names it as issuer, for the same
    key id, and carries its signature. Whether the root is trusted is the checker's question
    (:func:`trusted_roots`). MALFORMED / TOO_LARGE otherwise."""
    info = describe(ee_der)
    ee, root = _load(ee_der), _load(root_der)
    try:
        raw = _raw_ed25519(root)
        if raw is None or PublicKey(raw).key_id != info.issuer_key_id:
            raise LicentiaError(Reason.MALFORMED, "the certificate is not issued under this root")
        if ee.issuer != root.subject or root.issuer != root.subject:
            raise LicentiaError(Reason.MALFORMED, "the certificate is not issued under this root")
        public = Ed25519PublicKey.from_public_bytes(raw)
        public.verify(root.signature, root.tbs_certificate_bytes)
        public.verify(ee.signature, ee.tbs_certificate_bytes)
    except (InvalidSignature, *_PARSE_ERRORS):
        raise LicentiaError(Reason.MALFORMED, "the certificate chain does not verify") from None
    return info


def subject_key_text(ee_der: bytes) -> str:
    """The signing key an end-entity certificate names (its CN, ``ed25519:<base64url>``)."""
    return describe(ee_der).subject_key
