"""The rules of a file check (licentia.clients.verifier.files), with no exchange: what a
bad source or use answers, what is printed for each verdict, and the cap on what is read."""

from __future__ import annotations

import io
import json
from typing import Any

from licentia.clients.verifier.files import FileCheck, check_file, read_capped, reason_line
from licentia.errors import Reason
from licentia.keys import IssuerKeySet
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


def test_what_is_printed_for_each_verdict() -> None:
    allow = FileCheck(Decision(True, ()), "trusted", b"\x01" * 16, "Acme Ads", "ed25519:k")
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
