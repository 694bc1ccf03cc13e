"""Content Credentials for the advertiser SDK: its content certificate, shared by both flavours.

The exchange issues the advertiser a C2PA certificate for its own key
(``IssueContentCertificate``, docs/token-format.md §12); the SDK keeps it while it lasts and
signs creatives with it (:func:`creative`, :func:`sign`), never with a counted licence
(:func:`refuse_counted`: a file carries no licence that counts or prices its uses,
token-format §12.2). The clients make the calls; the
only I/O here is reading and writing the files they name (:func:`read_file`,
:func:`write_file`).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import grpc  # type: ignore[import-untyped]
import nacl.signing

from licentia import content, content_certs
from licentia.errors import LicentiaError, Reason
from licentia.keys import IssuerKeySet, PrivateKey, PublicKey
from licentia.methods import path
from licentia.token import UnverifiedLicence, parse_token
from licentia.v1 import licences_pb2, registry_pb2

from ..channel import ExchangeError

__all__ = [
    "ISSUE_CONTENT_CERTIFICATE",
    "RENEW_BEFORE_SECONDS",
    "ContentCertificate",
    "Creative",
    "anchored",
    "certificate_from",
    "creative",
    "read_file",
    "refuse_counted",
    "sign",
    "unanchored",
    "write_file",
]

ISSUE_CONTENT_CERTIFICATE = path(registry_pb2, "IssueContentCertificate")
#: A kept certificate is renewed when it would end within this many seconds.
RENEW_BEFORE_SECONDS = 86400


@dataclass(frozen=True, slots=True)
class ContentCertificate:
    """The advertiser's content certificate and the root of the issuer key that issued it
    (both DER), as the exchange issued them."""

    certificate: bytes
    root: bytes
    issuer_key_id: bytes
    #: The key the certificate names (``ed25519:…``, its subject CN): this advertiser's.
    subject_key: str
    organisation: str
    not_before: int
    not_after: int

    @property
    def chain_pem(self) -> str:
        """The PEM chain a C2PA signer takes: the certificate, then the root."""
        return content_certs.chain_pem(self.certificate, self.root)

    def lasts(self, now: int, until: int | None = None) -> bool:
        """True if the certificate is valid now and past ``until`` (default: another
        :data:`RENEW_BEFORE_SECONDS`)."""
        end = max(now + RENEW_BEFORE_SECONDS, until or 0)
        return self.not_before <= now and self.not_after > end


def _unreadable(why: str) -> ExchangeError:
    return ExchangeError(
        Reason.MALFORMED,
        grpc.StatusCode.DATA_LOSS,
        f"the exchange sent a content certificate this SDK cannot use: {why}",
    )


def certificate_from(
    resp: registry_pb2.IssueContentCertificateResponse, key: PublicKey
) -> ContentCertificate:
    """Read the exchange's answer: :class:`ExchangeError` MALFORMED unless the certificate
    names ``key`` and is issued under the root that comes with it
    (:func:`licentia.content_certs.check_chain`), under the size caps. Whether that root is
    the exchange's is for checkers to say, against the issuer keys they trust."""
    try:
        info = content_certs.check_chain(resp.certificate, resp.root)
    except LicentiaError as e:
        raise _unreadable(str(e)) from None
    if (
        info.subject_key != key.text
        or info.issuer_key_id != resp.issuer_key_id
        or info.not_after != resp.not_after
    ):
        raise _unreadable("the content certificate is not for this key")
    return ContentCertificate(
        certificate=bytes(resp.certificate),
        root=bytes(resp.root),
        issuer_key_id=bytes(resp.issuer_key_id),
        subject_key=info.subject_key,
        organisation=info.organisation,
        not_before=info.not_before,
        not_after=info.not_after,
    )


def anchored(
    certificate: ContentCertificate, published: licences_pb2.GetIssuerKeysResponse, now: int
) -> bool:
    """True if ``certificate`` is issued under a content root that ``published`` (the
    exchange's ``GetIssuerKeys`` answer) carries and a checker keeps at ``now``
    (:func:`licentia.content_certs.trusted_roots`, as the checkers call it): a file signed
    under it is then trusted. False once its issuer key is withdrawn (its root is no longer
    published), or its root dropped, or the certificate ends after its root would be dropped
    (with the published content term), or the answer does not parse."""
    try:
        keys = IssuerKeySet.from_proto(published.keys)
        roots = list(published.content_roots)[: content_certs.MAX_ROOTS + 1]
        term = published.content_term_seconds
        trusted = content_certs.trusted_roots(roots, keys, now=now, max_term_seconds=term)
    except LicentiaError:
        return False
    for root in trusted:
        try:  # by signature, as C2PA matches an anchor: a retired key's root has its name
            content_certs.check_chain(certificate.certificate, root)
        except LicentiaError:
            continue
        ends = content_certs.root_ends(root, term)
        # a certificate that outlives its root's window would turn files untrusted while
        # their licence is still valid
        return ends is None or certificate.not_after <= ends
    return False


def unanchored() -> ExchangeError:
    """The error for a certificate just issued that no published root anchors: every file
    signed under it would be untrusted, so none is signed."""
    return ExchangeError(
        Reason.CONTENT_CREDENTIAL_UNTRUSTED,
        grpc.StatusCode.FAILED_PRECONDITION,
        "the exchange's content certificate is not under a content root it publishes:"
        " checkers would not trust a file signed with it (is its issuer key held here?)",
    )


@dataclass(frozen=True, slots=True)
class Creative:
    """What signing a file with a licence needs, checked before any call: the assertion,
    the file's MIME type, and until when the certificate must last (the licence's end)."""

    assertion: content.LicenceAssertion
    mime: str
    valid_until: int


def refuse_counted(token: str) -> UnverifiedLicence:
    """The parsed ``token``, if a file may carry it: ``LicentiaError`` CONTENT_USES_COUNTED
    (with :data:`licentia.content.COUNTED_MESSAGE`) for a licence that counts its uses
    (``max_uses``) or prices each one (token-format §12.2: once published, a file travels
    where nobody counts or reports its uses; present such a licence to each platform
    instead), MALFORMED for a token that does not parse."""
    parsed = parse_token(token)
    if content.counted(parsed):
        raise LicentiaError(Reason.CONTENT_USES_COUNTED, content.COUNTED_MESSAGE)
    return parsed


def creative(
    data: bytes, token: str, asset_sha256: bytes, key: PublicKey, exchange: str = ""
) -> Creative:
    """Check that ``data`` can carry ``token``'s Licentia assertion, signed by ``key``:
    a format C2PA embeds in (MALFORMED), at most :data:`licentia.content.MAX_FILE_BYTES`
    (TOO_LARGE), a v2 licence with its log promise (NOT_LOGGED) whose licensee is ``key``
    (WRONG_LICENSEE: a checker compares the signer with it), that neither counts nor prices
    its uses (CONTENT_USES_COUNTED, :func:`refuse_counted`) and that names ``asset_sha256``,
    the asset's plain SHA-256 (ASSET_MISMATCH; the assertion names it salted, §12.1).
    Raises ``LicentiaError``."""
    if len(data) > content.MAX_FILE_BYTES:
        raise LicentiaError(Reason.TOO_LARGE, "the file is over the checkers' 64 MiB cap")
    mime = content.mime_of(data[:16])
    parsed = parse_token(token)
    if parsed.licensee_key != key.raw:
        raise LicentiaError(
            Reason.WRONG_LICENSEE, "the licence is another key's: only its licensee signs"
        )
    refuse_counted(token)
    assertion = content.LicenceAssertion.for_token(token, asset_sha256, exchange)
    return Creative(assertion, mime, parsed.not_after)


def sign(data: bytes, made: Creative, key: PrivateKey, certificate: ContentCertificate) -> bytes:
    """``data`` with Content Credentials: a C2PA manifest holding ``made``'s Licentia
    assertion, signed by ``key`` under ``certificate``'s chain (:func:`licentia.content.embed`)."""
    signing = nacl.signing.SigningKey(key.seed)
    return content.embed(data, made.mime, made.assertion, signing, certificate.chain_pem)


def read_file(path: str | os.PathLike[str]) -> bytes:
    """A file to sign, at most :data:`licentia.content.MAX_FILE_BYTES` (TOO_LARGE, read no
    further)."""
    with open(path, "rb") as f:
        data = f.read(content.MAX_FILE_BYTES + 1)
    if len(data) > content.MAX_FILE_BYTES:
        raise LicentiaError(Reason.TOO_LARGE, "the file is over the checkers' 64 MiB cap")
    return data


def write_file(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` all or nothing (a temporary file beside it, then renamed
    into place): a failure never leaves half a file. Returns the path."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    try:
        tmp.write_bytes(data)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return target
