"""Checking a file: its Content Credentials, then its licence, for one use (§12).

:func:`check_file` reads a file (bytes, a path or an open binary stream, never more than
``max_bytes``) with :func:`licentia.content.read` against the exchange's content roots a
checker trusts, decides it with :func:`licentia.content.check` on a verification engine, and
returns a :class:`FileCheck`: the decision and what a person needs to read it (the Reading's
state, the licence, the signer's organisation, "no licence"). It never raises for bad input:
a file that cannot be opened, a broken file, a wrong use are DENY with a reason.

It is what :meth:`licentia.clients.verifier.Verifier.check_file`, ``licentia-verify
--file`` and the platform SDK's ``check_upload`` share.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

from licentia import content
from licentia.content import MAX_FILE_BYTES, Reading, ReadingState
from licentia.errors import Reason
from licentia.token import parse_token
from licentia.verify import Decision, VerificationEngine
from licentia.vocabulary import DataCategory, Medium, Purpose

from ..shown import shown

__all__ = [
    "EXPIRED_CREDENTIAL",
    "MAX_FILE_BYTES",
    "FileCheck",
    "FileSource",
    "check_file",
    "read_capped",
    "reason_line",
]

#: What a file check reads: the bytes, a path, or an open binary stream (read from its
#: current position).
FileSource = bytes | str | os.PathLike[str] | BinaryIO

#: C2PA's failure code for a signing certificate past its validity (the reading is not
#: trusted: ``CONTENT_CREDENTIAL_UNTRUSTED``, said as an expired certificate).
EXPIRED_CREDENTIAL = "signingCredential.expired"

#: One line per reason a file check gives, for people.
_LINES: dict[Reason, str] = {
    Reason.CONTENT_MODIFIED: "the file's Content Credentials are not for these bytes (edited"
    " after signing, or copied from another file)",
    Reason.CONTENT_CREDENTIAL_UNTRUSTED: "the C2PA signature does not verify, or its"
    " certificate was not issued by an exchange this checker trusts",
    Reason.CONTENT_SIGNER_NOT_LICENSEE: "the file was signed by someone other than the"
    " licence's licensee",
    Reason.CONTENT_NOT_LICENSED: "the file carries no Licentia licence",
    Reason.CONTENT_USES_COUNTED: "the licence counts or prices each use: a file cannot carry"
    " it (it is presented to each platform instead)",
    Reason.MALFORMED: "the file or its licence is malformed or unreadable",
    Reason.TOO_LARGE: "the file is over the size this check reads",
    Reason.REVOKED: "the person revoked the licence",
    Reason.EXPIRED: "the licence's term has ended",
    Reason.NOT_YET_VALID: "the licence's term has not begun",
    Reason.STATUS_STALE: "the revocation status could not be confirmed as current",
    Reason.STATUS_LIST_DROPPED: "the licence's status list was dropped (the licence ended)",
    Reason.CLOCK_SKEW: "this machine's clock disagrees with the exchange's",
    Reason.BAD_SIGNATURE: "the exchange's signature on the licence does not verify",
    Reason.BAD_CONSENT: "the person's consent signature does not verify",
    Reason.UNKNOWN_ISSUER_KEY: "the licence was signed by a key this exchange does not publish",
    Reason.ISSUER_KEY_NOT_VALID: "the exchange's key was not valid when the licence was signed",
    Reason.NOT_LOGGED: "the licence carries no promise of the transparency log",
    Reason.ASSET_MISMATCH: "the licence does not name the asset the file uses",
    Reason.OUT_OF_SCOPE_CATEGORY: "the licence does not cover this kind of data",
    Reason.OUT_OF_SCOPE_PURPOSE: "the licence does not cover this purpose",
    Reason.OUT_OF_SCOPE_MEDIUM: "the licence does not cover this medium",
    Reason.OUT_OF_SCOPE_TERRITORY: "the licence does not cover this territory",
    Reason.USES_EXHAUSTED: "the licence's uses are all spent",
    Reason.INVALID_USE: "the use named is not valid",
    Reason.INVALID_TERM: "the licence's term is not valid",
    Reason.INTERNAL: "the check failed; nothing was allowed",
}


def reason_line(reason: Reason) -> str:
    """One line for people about ``reason`` (as a file check gives it)."""
    return _LINES.get(reason, reason.name.lower().replace("_", " "))


@dataclass(frozen=True, slots=True)
class FileCheck:
    """A file checked for one use.

    ``decision`` is ALLOW or DENY with every reason; ``state`` the Content Credentials'
    (:class:`licentia.content.Reading`: ``none``, ``trusted``, ``valid_untrusted``,
    ``invalid``, ``unreadable``); ``licence_id`` the licence the file carries (when its token
    parses); ``organisation`` and ``signer`` the signing certificate's subject O and CN;
    ``asset_digest`` the asset the assertion names, salted as the licence names it (§12.1);
    ``sha256`` the SHA-256 of the file's bytes (empty when they were not all read: over the
    cap, or not readable); ``detail`` one line about the credentials; ``token`` the
    licence's text as the file carries it;
    ``failures`` C2PA's failure codes for the credentials (``signingCredential.expired``, …).

    Every text here but the decision came from the file: ``organisation``, ``signer`` and
    ``detail`` are what the file's certificate and manifest say, vouched for only when
    ``state`` is ``trusted``; :meth:`lines` prints them sanitised and says so.
    """

    decision: Decision
    state: ReadingState
    licence_id: bytes | None = None
    organisation: str = ""
    signer: str = ""
    asset_digest: bytes | None = None
    sha256: bytes = b""
    detail: str = ""
    token: str = ""
    #: True when the file's manifest holds a Licentia assertion, even one that does not
    #: parse (a licence that fails is DENY, never "no licence").
    carries_licence: bool = False
    failures: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        """True for ALLOW."""
        return self.decision.allowed

    @property
    def no_licence(self) -> bool:
        """True when the file carries no Licentia licence at all (CONTENT_NOT_LICENSED)."""
        return self.decision.reasons == (Reason.CONTENT_NOT_LICENSED,)

    @property
    def expired(self) -> bool:
        """True when the signing certificate has expired (C2PA's
        ``signingCredential.expired``)."""
        return EXPIRED_CREDENTIAL in self.failures

    def reason_line(self, reason: Reason) -> str:
        """One line for people about ``reason`` in this check (an untrusted credential
        whose certificate C2PA reports expired is said to be expired or not issued by a
        trusted exchange: C2PA gives a forged certificate past its dates the same codes)."""
        if reason is Reason.CONTENT_CREDENTIAL_UNTRUSTED and self.expired:
            return (
                "the signing certificate has expired, or was not issued by an exchange this"
                " checker trusts"
            )
        return reason_line(reason)

    @property
    def verdict(self) -> str:
        """``ALLOW``, ``NO LICENCE`` or ``DENY``."""
        if self.decision.allowed:
            return "ALLOW"
        return "NO LICENCE" if self.no_licence else "DENY"

    def lines(self) -> list[str]:
        """What ``licentia-verify --file`` prints: the verdict (and reasons), one line per
        reason, then the licence and the signer when the file names them.

        Nothing from the file is trusted on its word: what it names is sanitised (control
        and format characters and line breaks shown as codes,
        :func:`licentia.clients.shown.shown`), so a certificate's name cannot rewrite the
        verdict on a terminal; the licence's id is printed only when the decision carries
        the licence authenticated ("names a licence that does not verify" otherwise); and
        "signed by" only for trusted credentials, "claims to be signed by … (not verified)"
        for any other."""
        head = self.verdict
        if self.verdict == "DENY":
            head += " " + ", ".join(r.name for r in self.decision.reasons)
        out = [head]
        if not self.decision.allowed:
            out += [f"  {r.name}: {self.reason_line(r)}" for r in self.decision.reasons]
        if self.decision.licence is not None:
            out.append(f"licence {self.decision.licence.licence_id.hex()}")
        elif self.licence_id is not None or self.carries_licence:
            out.append("names a licence that does not verify")
        if self.organisation or self.signer:
            who = shown(self.organisation, one_line=True) or "(no organisation named)"
            who += f" ({shown(self.signer, one_line=True)})" if self.signer else ""
            if self.state == "trusted":
                out.append(f"signed by {who}")
            else:
                out.append(f"claims to be signed by {who} (not verified)")
        return out

    def to_json(self) -> dict[str, Any]:
        """The JSON form (``licentia-verify --file --json``).

        ``licence_id`` is what the file's token says; ``licence_verified`` is true only when
        that token authenticated under the checker's issuer keys. ``organisation`` and
        ``signer`` are what the file's certificate says; ``signer_verified`` is true only
        when the Content Credentials are trusted (``state`` ``trusted``)."""
        licence = self.decision.licence
        return {
            "verdict": "NO_LICENCE" if self.no_licence else self.decision.verdict,
            "reasons": [r.name for r in self.decision.reasons],
            "state": self.state,
            "licence_id": self.licence_id.hex() if self.licence_id is not None else None,
            "licence_verified": licence is not None,
            "not_after": licence.parsed.not_after if licence is not None else None,
            "organisation": self.organisation,
            "signer": self.signer,
            "signer_verified": self.state == "trusted",
            "asset_digest": self.asset_digest.hex() if self.asset_digest is not None else None,
            "sha256": self.sha256.hex(),
        }


def read_capped(source: FileSource, max_bytes: int) -> bytes:
    """At most ``max_bytes + 1`` bytes of ``source`` (one more tells it is over the cap).
    Raises ``OSError`` for a path that cannot be read, ``TypeError`` for a source of
    another type."""
    if isinstance(source, bytes):
        return source[: max_bytes + 1]
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as f:
            return f.read(max_bytes + 1)
    if hasattr(source, "read"):
        data = source.read(max_bytes + 1)
        if not isinstance(data, bytes):
            raise TypeError("a stream of bytes")
        return data
    raise TypeError("bytes, a path or a binary stream")


def check_file(
    engine: VerificationEngine,
    roots_der: Sequence[bytes],
    source: FileSource,
    now: int,
    *,
    purpose: Purpose,
    medium: Medium,
    territory: str,
    category: DataCategory | None = None,
    max_bytes: int = MAX_FILE_BYTES,
) -> FileCheck:
    """Check the file ``source`` for a use on ``engine``, trusting ``roots_der`` (the
    content roots the checker's issuer keys sign). Never raises for bad input: an
    unreadable path, a broken file, a bad use are DENY with a reason."""
    if not isinstance(purpose, Purpose) or not isinstance(medium, Medium):
        return FileCheck(Decision(False, (Reason.INVALID_USE,)), "unreadable")
    if category is not None and not isinstance(category, DataCategory):
        return FileCheck(Decision(False, (Reason.INVALID_USE,)), "unreadable")
    if not isinstance(territory, str):
        return FileCheck(Decision(False, (Reason.INVALID_USE,)), "unreadable")
    try:
        data = read_capped(source, max(0, max_bytes))
    except (OSError, TypeError, ValueError) as e:
        detail = f"the file could not be read: {getattr(e, 'strerror', None) or e}"
        return FileCheck(Decision(False, (Reason.MALFORMED,)), "unreadable", detail=detail)
    whole = len(data) <= max_bytes
    reading = content.read(data, None, roots_der, max_bytes=max_bytes)
    decision = content.check(
        reading,
        engine,
        now,
        purpose=purpose,
        medium=medium,
        territory=territory,
        category=category,
    )
    return _result(decision, reading, hashlib.sha256(data).digest() if whole else b"")


def _result(decision: Decision, reading: Reading, sha256: bytes) -> FileCheck:
    a = reading.assertion
    licence_id = decision.licence.licence_id if decision.licence is not None else None
    if licence_id is None and a is not None:
        try:
            licence_id = parse_token(a.token).licence_id
        except Exception:  # noqa: BLE001 - a token that does not parse names no licence
            licence_id = None
    return FileCheck(
        decision,
        reading.state,
        licence_id,
        reading.organisation,
        reading.signer,
        a.asset_digest if a is not None else None,
        sha256,
        reading.detail,
        a.token if a is not None else "",
        a is not None or reading.assertion_error is not None,
        reading.failures,
    )
