"""Content Credentials for the advertiser SDK: its content certificate, shared by both flavours.

The exchange issues the advertiser a C2PA certificate for its own key
(``IssueContentCertificate``, docs/token-format.md §12); the SDK keeps it while it lasts and
signs creatives with it. Everything here is pure: the clients make the calls.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc  # type: ignore[import-untyped]

from licentia import content_certs
from licentia.errors import LicentiaError, Reason
from licentia.keys import PublicKey
from licentia.methods import path
from licentia.v1 import registry_pb2

from ..channel import ExchangeError

__all__ = [
    "ISSUE_CONTENT_CERTIFICATE",
    "RENEW_BEFORE_SECONDS",
    "ContentCertificate",
    "certificate_from",
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
