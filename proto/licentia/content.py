"""Content Credentials: the licence travels with the content (docs/token-format.md §12).

A licensed file — the asset itself, or a creative that uses it — carries a C2PA manifest
(Content Credentials) whose **Licentia assertion** (label :data:`ASSERTION_LABEL`) holds the
licence token and names the asset the content uses. The manifest's C2PA signature is made
by the licence's **licensee** with an end-entity certificate the exchange issued for that
key (``licentia.content_certs``): it binds this licence to these bytes (C2PA's hard
binding), and only the licensee can make it. It stands in for the presentation of §5: a
file is checked many times, by anyone, with no nonce.

Reading, signing and embedding go through the official C2PA bindings (``c2pa-python``);
this module parses no JUMBF and no manifest by hand. It does no I/O of its own: callers
pass bytes or an open binary stream, and the time as ``now``.

- :func:`embed` signs a file with a Licentia assertion;
- :func:`read` reads a file's manifest against the exchange's content roots and never
  raises for bad content (:class:`Reading` says what was found);
- :func:`check` decides a :class:`Reading` for a use, with a verification engine, as a
  platform would (:class:`~licentia.verify.Decision`); :func:`check_licence` makes its
  checks that hold whatever the use (a holder's wallet).
"""

from __future__ import annotations

import base64
import io
import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from threading import Lock
from typing import Any, BinaryIO, Literal, cast

import nacl.signing

from . import __version__
from .content_assertion import (
    ASSERTION_LABEL,
    ASSERTION_VERSION,
    COUNTED_MESSAGE,
    MAX_ASSERTION_BYTES,
    MAX_EXCHANGE_CHARS,
    LicenceAssertion,
    counted,
)
from .errors import LicentiaError, Reason
from .keys import PublicKey
from .scope import IntendedUse
from .verify import Decision, VerificationEngine
from .vocabulary import DataCategory, Medium, Purpose

__all__ = [
    "ASSERTION_LABEL",
    "ASSERTION_VERSION",
    "COUNTED_MESSAGE",
    "MAX_ASSERTION_BYTES",
    "MAX_EXCHANGE_CHARS",
    "MAX_FILE_BYTES",
    "LicenceAssertion",
    "Reading",
    "ReadingState",
    "check",
    "check_licence",
    "counted",
    "embed",
    "mime_of",
    "read",
    "roots_pem",
]

#: The most a checker reads of a file unless told otherwise (64 MiB).
MAX_FILE_BYTES = 64 * 1024 * 1024
#: Magic bytes of the formats the checkers accept, and their MIME types.
_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"WAVE", 8, "audio/wav"),
    (b"WEBP", 8, "image/webp"),
    (b"ftyp", 4, "video/mp4"),
)
#: The first action C2PA requires of a new manifest: the content was made (a composite).
_CREATED = {
    "action": "c2pa.created",
    "digitalSourceType": "http://cv.iptc.org/newscodes/digitalsourcetype/composite",
}
#: The C2PA failure codes that mean the manifest is not for these bytes.
_BINDING_FAILURES = (
    "assertion.dataHash.mismatch",
    "assertion.bmffHash.mismatch",
    "assertion.boxesHash.mismatch",
    "assertion.collectionHash.mismatch",
)


def mime_of(head: bytes) -> str:
    """The MIME type of a file from its first 16 bytes; ``LicentiaError`` MALFORMED when it
    is none of the formats the checkers read (JPEG, PNG, WAV, WebP, MP4)."""
    for magic, at, mime in _MAGIC:
        if head[at : at + len(magic)] == magic:
            if mime == "audio/wav" and head[:4] != b"RIFF":
                continue
            if mime == "image/webp" and head[:4] != b"RIFF":
                continue
            return mime
    raise LicentiaError(Reason.MALFORMED, "not a JPEG, PNG, WAV, WebP or MP4 file")


def _c2pa() -> Any:
    """The C2PA bindings, loaded on first use (a native library: importing the core stays
    cheap for the verifiers that never read a file)."""
    import c2pa  # noqa: PLC0415 - a native library, loaded only where a file is read

    return c2pa


def embed(
    source: bytes | BinaryIO,
    mime: str,
    assertion: LicenceAssertion,
    signing_key: nacl.signing.SigningKey,
    chain_pem: str,
    *,
    title: str = "",
) -> bytes:
    """``source`` with a C2PA manifest holding ``assertion``, signed by ``signing_key``
    under ``chain_pem`` (its end-entity certificate first, then the root).

    The manifest has the ``c2pa.actions`` assertion C2PA requires (``c2pa.created``), the
    Licentia assertion and C2PA's hard binding over the output's bytes; no thumbnail.
    Raises ``LicentiaError`` MALFORMED when the bindings refuse the input (an unsupported
    or broken file)."""
    c2pa = _c2pa()
    manifest = {
        "claim_generator_info": [{"name": "licentia", "version": __version__}],
        "title": title or "licensed content",
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": [_CREATED]}},
            {"label": ASSERTION_LABEL, "data": assertion.to_json()},
        ],
    }
    stream = io.BytesIO(source) if isinstance(source, bytes) else source

    def sign(data: bytes) -> bytes:
        return bytes(signing_key.sign(bytes(data)).signature)

    out = io.BytesIO()
    try:
        settings = c2pa.Settings.from_dict(_SIGN_SETTINGS)
        context = c2pa.Context.builder().with_settings(settings).build()
        signer = c2pa.Signer.from_callback(sign, c2pa.C2paSigningAlg.ED25519, chain_pem)
        with c2pa.Builder(manifest, context=context) as builder:
            builder.sign(signer, mime, stream, out)
    except c2pa.C2paError as e:
        raise LicentiaError(Reason.MALFORMED, f"the file could not be signed: {_short(e)}") from e
    return out.getvalue()


ReadingState = Literal["none", "trusted", "valid_untrusted", "invalid", "unreadable"]


@dataclass(frozen=True, slots=True)
class Reading:
    """What a file's Content Credentials say, before any licence is checked.

    ``state``: ``"none"`` (no manifest), ``"trusted"`` (signature and bindings hold and the
    certificate chains to a given root), ``"valid_untrusted"`` (they hold but no given root
    issued the certificate), ``"invalid"`` (a binding or the signature fails), or
    ``"unreadable"`` (not a supported file, malformed JUMBF, or over the size cap:
    ``reason`` says which). ``assertion`` is the Licentia assertion when the active
    manifest holds exactly one that parses (``assertion_error`` says why not, otherwise);
    ``signer`` and ``organisation`` are the signing certificate's subject CN and O.
    """

    state: ReadingState
    assertion: LicenceAssertion | None = None
    assertion_error: LicentiaError | None = None
    signer: str = ""
    organisation: str = ""
    failures: tuple[str, ...] = ()
    reason: Reason | None = None
    detail: str = ""

    @property
    def modified(self) -> bool:
        """True when the manifest is not for these bytes (edited after signing, or copied
        from another file)."""
        return any(code in _BINDING_FAILURES for code in self.failures)


def roots_pem(roots_der: Sequence[bytes]) -> str:
    """The certificates ``roots_der`` as concatenated PEM (C2PA's trust-anchor form)."""
    out = []
    for der in roots_der:
        b64 = base64.b64encode(der).decode()
        lines = "\n".join(b64[i : i + 64] for i in range(0, len(b64), 64))
        out.append(f"-----BEGIN CERTIFICATE-----\n{lines}\n-----END CERTIFICATE-----\n")
    return "".join(out)


def read(
    source: bytes | BinaryIO,
    mime: str | None,
    roots_der: Sequence[bytes],
    *,
    max_bytes: int = MAX_FILE_BYTES,
) -> Reading:
    """Read ``source``'s Content Credentials, trusting only the certificates
    ``roots_der`` (the exchange's content roots a checker accepted,
    ``licentia.content_certs.trusted_roots``). Never raises for bad content.

    ``mime`` ``None`` detects it from the first bytes. A stream is read from its current
    position; more than ``max_bytes`` is ``unreadable`` with TOO_LARGE, before the C2PA
    library sees a byte."""
    data = source if isinstance(source, bytes) else source.read(max_bytes + 1)
    if len(data) > max_bytes:
        return Reading(
            "unreadable", reason=Reason.TOO_LARGE, detail=f"the file is over {max_bytes} bytes"
        )
    try:
        kind = mime or mime_of(data[:16])
    except LicentiaError as e:
        return Reading("unreadable", reason=e.reason, detail=str(e))
    c2pa = _c2pa()
    try:
        context = _reader_context(c2pa, tuple(roots_der))
        reader = c2pa.Reader.try_create(kind, io.BytesIO(data), context=context)
        if reader is None:
            return Reading("none", detail="the file carries no Content Credentials")
        with reader:
            state = reader.get_validation_state() or ""
            results = reader.get_validation_results() or {}
            active = reader.get_active_manifest()
    except c2pa.C2paError as e:
        return Reading(
            "unreadable",
            reason=Reason.MALFORMED,
            detail=f"unreadable Content Credentials: {_short(e)}",
        )
    except (ValueError, TypeError, KeyError) as e:  # broken JSON from the bindings
        return Reading("unreadable", reason=Reason.MALFORMED, detail=_short(e))
    failures = _failure_codes(results)
    if not isinstance(active, dict):
        return Reading(
            "none",
            failures=failures,
            detail="the file's Content Credentials have no active manifest",
        )
    info = active.get("signature_info")
    signer = organisation = ""
    if isinstance(info, dict):
        signer = _text(info.get("common_name"))
        organisation = _text(info.get("issuer"))
    assertion, error = _licentia_assertion(active)
    if state == "Trusted" and not failures:
        kind_state: ReadingState = "trusted"
        detail = "Content Credentials trusted"
    elif state in ("Valid", "Trusted") and _only_untrusted(failures):
        kind_state = "valid_untrusted"
        detail = (
            "Content Credentials signed by a certificate not issued by an exchange this"
            " checker trusts"
        )
    else:
        kind_state = "invalid"
        detail = "Content Credentials do not verify: " + ", ".join(failures or ("invalid",))
    if "signingCredential.expired" in failures and _only_untrusted(failures):
        # The same codes for a forged certificate and an expired genuine one: vouch for
        # neither.
        detail = (
            "the signing certificate has expired, or was not issued by an exchange this"
            " checker trusts"
        )
    return Reading(kind_state, assertion, error, signer, organisation, failures, None, detail)


def check(
    reading: Reading,
    engine: VerificationEngine,
    now: int,
    *,
    purpose: Purpose,
    medium: Medium,
    territory: str,
    category: DataCategory | None = None,
) -> Decision:
    """Decide a file from its :class:`Reading`, for a use, as a platform would (§12).

    ``category`` defaults to the category the licence gives the asset the file names.
    DENY ``CONTENT_NOT_LICENSED`` for a file without a Licentia assertion,
    ``CONTENT_MODIFIED`` for a manifest that is not for these bytes,
    ``CONTENT_CREDENTIAL_UNTRUSTED`` for a signature that fails or a certificate no trusted
    root issued, ``CONTENT_SIGNER_NOT_LICENSEE`` for a signer that is not the licence's
    licensee, the reading's own reason for an unreadable file, and otherwise the licence's
    reasons (signatures, log promise, term, live status, scope) for the use. Never raises."""
    try:  # §8 step 0: the checker's use first, alone (its asset is the file's, below)
        IntendedUse(category or DataCategory.NAME, purpose, medium, territory, bytes(32))
    except LicentiaError as e:
        return Decision(False, (e.reason,))
    auth, reasons = _licence(reading, engine)
    if not auth.allowed or auth.licence is None:
        return auth
    a, parsed = cast(LicenceAssertion, reading.assertion), auth.licence.parsed
    licensed = parsed.asset_categories.get(a.asset_digest)  # salted, as the claims name it
    use = IntendedUse(
        category if category is not None else licensed or DataCategory.NAME,
        purpose,
        medium,
        territory,
        a.asset_digest,
    )
    decision = engine.decide(auth, use, now, content=True)
    if reasons:
        return Decision(False, tuple(reasons) + decision.reasons, auth.licence)
    return decision


def check_licence(reading: Reading, engine: VerificationEngine, now: int) -> Decision:
    """The checks of §12.4 that hold whatever the use: the file's Content Credentials
    (steps 1 and 2), the token authenticated, its promise copies, the signer the licensee,
    an uncounted licence, the asset the file names one the claims name (ASSET_MISMATCH
    otherwise), the term and the live status at ``now`` as ``engine`` knows it.

    What a holder's wallet checks of a file in her name (``licentia-wallet check``): no
    checker's use (scope) applies. :func:`check` makes the same checks, then the use's.
    Never raises."""
    auth, reasons = _licence(reading, engine)
    if not auth.allowed or auth.licence is None:
        return auth
    a = cast(LicenceAssertion, reading.assertion)
    decision = engine.decide(auth, None, now, content=True)
    if a.asset_digest not in auth.licence.parsed.asset_categories:
        reasons.append(Reason.ASSET_MISMATCH)
    if reasons or not decision.allowed:
        return Decision(False, tuple(reasons) + decision.reasons, auth.licence)
    return decision


def _licence(reading: Reading, engine: VerificationEngine) -> tuple[Decision, list[Reason]]:
    """§12.4 steps 1 and 2 and the use-independent reasons of step 3 (promise copies,
    signer, counted): a DENY decision at the first failure of steps 1-2; otherwise the
    token's ALLOW authentication and the reasons step 3 found so far."""
    if reading.state == "unreadable":
        return Decision(False, (reading.reason or Reason.MALFORMED,)), []
    if reading.state == "none" or (reading.assertion is None and reading.assertion_error is None):
        # No manifest, or one with no Licentia assertion (a camera's): no licence, whatever
        # the rest of the manifest says.
        return Decision(False, (Reason.CONTENT_NOT_LICENSED,)), []
    if reading.modified:
        return Decision(False, (Reason.CONTENT_MODIFIED,)), []
    if reading.state != "trusted":
        return Decision(False, (Reason.CONTENT_CREDENTIAL_UNTRUSTED,)), []
    if reading.assertion is None:
        return Decision(False, (cast(LicentiaError, reading.assertion_error).reason,)), []
    a = reading.assertion
    auth = engine.authenticated(a.token)
    if not auth.allowed or auth.licence is None:
        return auth, []
    parsed = auth.licence.parsed
    reasons: list[Reason] = []
    promise = parsed.promise
    if promise is None or (promise.index, promise.logged_at) != (a.log_index, a.logged_at):
        reasons.append(Reason.MALFORMED)
    if reading.signer != PublicKey(parsed.licensee_key).text:
        reasons.append(Reason.CONTENT_SIGNER_NOT_LICENSEE)
    if counted(parsed):
        reasons.append(Reason.CONTENT_USES_COUNTED)
    return auth, reasons


_SIGN_SETTINGS: dict[str, Any] = {
    "builder": {"thumbnail": {"enabled": False}},
    "verify": {"ocsp_fetch": False, "remote_manifest_fetch": False},
}


#: Reader contexts by (process, roots): building one parses the trust anchors, most of a
#: small file's check (bench ``verify.file``). The C2PA library shares a context between
#: readers itself (its process-wide default); a child process builds its own.
_CONTEXTS: OrderedDict[tuple[int, tuple[bytes, ...]], Any] = OrderedDict()
_CONTEXTS_MAX = 8
_CONTEXTS_LOCK = Lock()


def _reader_context(c2pa: Any, roots_der: tuple[bytes, ...]) -> Any:
    """The reader context that trusts exactly ``roots_der`` (cached, at most 8 kept)."""
    key = (os.getpid(), roots_der)
    with _CONTEXTS_LOCK:
        context = _CONTEXTS.get(key)
        if context is not None:
            _CONTEXTS.move_to_end(key)
            return context
    settings = c2pa.Settings.from_dict(_read_settings(roots_der))
    context = c2pa.Context.builder().with_settings(settings).build()
    with _CONTEXTS_LOCK:
        _CONTEXTS[key] = context
        while len(_CONTEXTS) > _CONTEXTS_MAX:
            _CONTEXTS.popitem(last=False)
    return context


def _read_settings(roots_der: Sequence[bytes]) -> dict[str, Any]:
    """Reader settings: trust only ``roots_der``, fetch nothing from the network."""
    verify = {"verify_trust": True, "ocsp_fetch": False, "remote_manifest_fetch": False}
    settings: dict[str, Any] = {"verify": verify}
    if roots_der:
        settings["trust"] = {"trust_anchors": roots_pem(roots_der)}
    return settings


def _licentia_assertion(
    active: dict[str, Any],
) -> tuple[LicenceAssertion | None, LicentiaError | None]:
    """The active manifest's one Licentia assertion, or why there is none."""
    found = [
        a
        for a in active.get("assertions") or ()
        if isinstance(a, dict) and a.get("label") == ASSERTION_LABEL
    ]
    if not found:
        return None, None
    if len(found) > 1:
        return None, LicentiaError(Reason.MALFORMED, "more than one Licentia assertion")
    try:
        return LicenceAssertion.from_json(found[0].get("data")), None
    except LicentiaError as e:
        return None, e


def _failure_codes(results: object) -> tuple[str, ...]:
    """The failure codes of the active manifest in C2PA's validation results."""
    if not isinstance(results, dict):
        return ()
    active = results.get("activeManifest")
    failures = active.get("failure") if isinstance(active, dict) else None
    codes = []
    for f in failures or ():
        if isinstance(f, dict) and isinstance(f.get("code"), str):
            codes.append(f["code"][:128])
    return tuple(codes[:64])


def _only_untrusted(failures: tuple[str, ...]) -> bool:
    """True when the only failures are about the signer's trust, not the bytes."""
    return all(code.startswith("signingCredential.") for code in failures)


def _text(value: object) -> str:
    return value[:512] if isinstance(value, str) else ""


def _short(e: BaseException) -> str:
    return str(e).splitlines()[0][:200] if str(e) else type(e).__name__
