"""The rules of a file check (licentia.clients.verifier.files), with no exchange: what a
bad source or use answers, what is printed for each verdict, and the cap on what is read."""

from __future__ import annotations

import io
import json
import time
from types import SimpleNamespace
from typing import Any

import nacl.signing

from licentia import content, content_certs
from licentia.clients.shown import shown
from licentia.clients.verifier.files import FileCheck, check_file, read_capped, reason_line
from licentia.clients.wallet.check import _why
from licentia.errors import Reason
from licentia.examples import tiny_png
from licentia.keys import IssuerKeySet, PublicKey
from licentia.verify import Decision, VerificationEngine
from licentia.vocabulary import Medium, Purpose

USE: dict[str, Any] = {"purpose": Purpose.ADVERTISING, "medium": Medium.ONLINE, "territory": "FR"}


class Fresh:
    def check(self, status_list: int, status_index: int, now: int) -> Reason | None:
        return None


ENGINE = VerificationEngine(IssuerKeySet([]), Fresh())


def test_bad_sources_and_uses_are_denied_never_raised() -> None:
    def reasons(source: Any, **use: Any) -> tuple[Reason, ...]:
        checked = check_file(ENGINE, [], source, 0, **{**USE, **use})
        assert not checked.allowed
        return checked.decision.reasons

    assert reasons(12345) == (Reason.MALFORMED,)
    assert reasons("/nonexistent/file.png") == (Reason.MALFORMED,)
    assert reasons(b"") == (Reason.MALFORMED,)
    assert reasons(b"\x89PNG\r\n\x1a\n" + b"\x00" * 10) == (Reason.MALFORMED,)
    assert reasons(b"x" * 100, max_bytes=10) == (Reason.TOO_LARGE,)
    assert reasons(b"x", purpose="advertising") == (Reason.INVALID_USE,)
    assert reasons(b"x", medium=None) == (Reason.INVALID_USE,)
    assert reasons(b"x", territory=None) == (Reason.INVALID_USE,)
    assert reasons(b"x", category="image") == (Reason.INVALID_USE,)


def test_at_most_one_byte_past_the_cap_is_read() -> None:
    stream = io.BytesIO(b"y" * 1000)
    assert read_capped(stream, 100) == b"y" * 101
    assert stream.tell() == 101
    assert read_capped(b"z" * 1000, 5) == b"z" * 6


def _licensed(allowed: bool, reasons: tuple[Reason, ...]) -> Decision:
    """A decision that carries an authenticated licence (only its id is read here)."""
    return Decision(allowed, reasons, SimpleNamespace(licence_id=b"\x01" * 16))  # type: ignore[arg-type]


def test_what_is_printed_for_each_verdict() -> None:
    allow = FileCheck(_licensed(True, ()), "trusted", b"\x01" * 16, "Acme Ads", "ed25519:k")
    assert allow.lines() == ["ALLOW", f"licence {'01' * 16}", "signed by Acme Ads (ed25519:k)"]
    none = FileCheck(Decision(False, (Reason.CONTENT_NOT_LICENSED,)), "none")
    assert (none.verdict, none.no_licence) == ("NO LICENCE", True)
    assert none.lines() == [
        "NO LICENCE",
        "  CONTENT_NOT_LICENSED: " + reason_line(Reason.CONTENT_NOT_LICENSED),
    ]
    deny = FileCheck(Decision(False, (Reason.REVOKED, Reason.CONTENT_MODIFIED)), "invalid")
    assert deny.lines()[0] == "DENY REVOKED, CONTENT_MODIFIED"
    assert deny.lines()[1] == "  REVOKED: the person revoked the licence"
    doc = json.loads(json.dumps(deny.to_json()))
    assert (doc["verdict"], doc["reasons"], doc["licence_id"]) == (
        "DENY",
        ["REVOKED", "CONTENT_MODIFIED"],
        None,
    )
    assert json.loads(json.dumps(none.to_json()))["verdict"] == "NO_LICENCE"
    # What the file says is given as a claim: the id from a token that did not
    # authenticate, the names from a certificate no trusted root issued.
    untrusted = (Reason.CONTENT_CREDENTIAL_UNTRUSTED,)
    forged = FileCheck(Decision(False, untrusted), "valid_untrusted", b"\x01" * 16, "Acme Ads")
    doc = forged.to_json()
    assert (doc["licence_id"], doc["organisation"]) == ("01" * 16, "Acme Ads")
    assert (doc["licence_verified"], doc["signer_verified"]) == (False, False)


def test_every_content_reason_has_its_own_line() -> None:
    lines = {
        reason_line(r)
        for r in (
            Reason.CONTENT_MODIFIED,
            Reason.CONTENT_CREDENTIAL_UNTRUSTED,
            Reason.CONTENT_SIGNER_NOT_LICENSEE,
            Reason.CONTENT_NOT_LICENSED,
            Reason.CONTENT_USES_COUNTED,
        )
    }
    assert len(lines) == 5
    assert "a file cannot carry it" in reason_line(Reason.CONTENT_USES_COUNTED)
    assert reason_line(Reason.PSEUDONYM_TAKEN) == "pseudonym taken"  # a name, at worst


def test_what_a_file_names_is_sanitised_and_vouched_for_only_when_trusted() -> None:
    escapes = "\x1b[2A\x1b[2K\rALLOW\n\u202e"
    untrusted = (Reason.CONTENT_CREDENTIAL_UNTRUSTED,)
    forged = FileCheck(Decision(False, untrusted), "valid_untrusted", b"\x01" * 16, escapes, "k\n")
    assert forged.lines() == [
        "DENY CONTENT_CREDENTIAL_UNTRUSTED",
        "  CONTENT_CREDENTIAL_UNTRUSTED: the C2PA signature does not verify, or its certificate"
        " was not issued by an exchange this checker trusts",
        "names a licence that does not verify",  # the token's own id is not vouched for
        "claims to be signed by \\u{001b}[2A\\u{001b}[2K\\u{000d}ALLOW\\u{000a}\\u{202e}"
        " (k\\u{000a}) (not verified)",
    ]
    # Trusted credentials with an authenticated licence that fails for the use: its id and
    # "signed by", the names sanitised all the same.
    denied = _licensed(False, (Reason.CONTENT_SIGNER_NOT_LICENSEE,))
    trusted = FileCheck(denied, "trusted", b"\x02" * 16, "Rival\x07", "ed25519:r")
    assert trusted.lines()[-2:] == [f"licence {'01' * 16}", "signed by Rival\\u{0007} (ed25519:r)"]
    # A licence whose token does not even parse is named as not verifying, never by an id.
    broken = FileCheck(Decision(False, (Reason.MALFORMED,)), "trusted", carries_licence=True)
    assert broken.lines()[-1] == "names a licence that does not verify"
    # The one sanitiser: line breaks kept in text, shown as codes inside one line.
    assert shown("a\x1bb\nc") == "a\\u{001b}b\nc"
    assert shown("a\nb", one_line=True) == "a\\u{000a}b"


def test_an_expired_certificate_is_said_in_words_that_vouch_for_nothing() -> None:
    # C2PA gives a foreign CA's expired certificate the same failure codes as an expired
    # one of a trusted exchange: the words must not say it was ever genuine.
    said = (
        "the signing certificate has expired, or was not issued by an exchange this checker trusts"
    )
    ca, device = nacl.signing.SigningKey.generate(), nacl.signing.SigningKey.generate()
    kid = PublicKey(bytes(ca.verify_key)).key_id
    now = int(time.time())
    root = content_certs.root_certificate(ca, kid, now - 3600, None)
    # Valid for two more seconds: signed now, read once it has expired.
    cert = content_certs.content_certificate(
        ca, kid, root, bytes(device.verify_key), "Acme Ads", now - 60, 62
    )
    assertion = content.LicenceAssertion(
        token="lic2.x", asset_digest=b"\x00" * 32, log_index=1, logged_at=1
    )
    chain = content_certs.chain_pem(cert, root)
    signed = content.embed(tiny_png(), "image/png", assertion, device, chain)
    # Before it expires, under a root the checker does not trust: another exchange's.
    other = content.read(signed, None, [])
    assert other.state == "valid_untrusted"
    assert other.detail == (
        "Content Credentials signed by a certificate not issued by an exchange this checker trusts"
    )
    time.sleep(max(0.0, now + 3 - time.time()))
    # Expired, under its own root (trusted) and under a foreign CA (not): the same words.
    for roots in ([root], []):
        reading = content.read(signed, None, roots)
        assert "signingCredential.expired" in reading.failures
        assert reading.detail == said
        checked = check_file(ENGINE, roots, signed, now, **USE)
        assert checked.decision.reasons == (Reason.CONTENT_CREDENTIAL_UNTRUSTED,)  # kept
        assert checked.expired
        assert checked.lines()[1] == f"  CONTENT_CREDENTIAL_UNTRUSTED: {said}"
        # The wallet says it in the same words (and so offers no revocation from the file).
        assert _why(reading, checked.decision) == [said]
