"""The rules of the holder's audit of her sealed entries (clients/auditor/holder.py) and the
form check of a sealed entry (clients/logcheck.py), on entries and licences built here."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from licentia import keys, sealed
from licentia.clients.auditor.holder import HolderLog, check_rule_consent, hidden_entries
from licentia.clients.auditor.state import AuditState
from licentia.clients.logcheck import LicenceFacts, check_sealed_form
from licentia.keys import PrivateKey
from licentia.scope import Scope
from licentia.token import (
    Asset,
    LicenceClaims,
    LogPromise,
    PriceTerms,
    StandingConsent,
    StandingRule,
    commit_rule,
    issue,
    parse_token,
    salted_digest,
    sign_standing_rule,
)
from licentia.v1 import licence_pb2, records_pb2, transparency_pb2
from licentia.vocabulary import DataCategory, Medium, Purpose

NOW = 1_800_000_000
DAY = 86400
ME = PrivateKey.from_seed(b"\x41" * 32)
ISSUER = PrivateKey.from_seed(b"\x42" * 32)
ADV = PrivateKey.from_seed(b"\x43" * 32).public
PHOTO, OTHER = b"\x01" * 32, b"\x02" * 32
SALT = b"\x05" * 16
SCOPE = Scope.of([DataCategory.IMAGE], [Purpose.ADVERTISING], [Medium.ONLINE], ["FR"])


def _rule(signer: PrivateKey = ME, holder: PrivateKey = ME) -> records_pb2.StandingRuleRecord:
    rule = StandingRule(
        rule_id=b"\x07" * 16,
        holder=holder.public,
        scope=SCOPE,
        asset_sha256=frozenset({PHOTO}),
        not_before=NOW - DAY,
        not_after=NOW + 90 * DAY,
        max_term_seconds=30 * DAY,
        min_price_per_day_minor=100,
        currency="EUR",
    )
    consent = sign_standing_rule(holder, rule)
    if signer != holder:  # a rule naming her, signed by someone else
        data = consent.rule_bytes
        consent = StandingConsent(data, signer.sign(keys.STANDING_RULE, data))
    return records_pb2.StandingRuleRecord(
        consent=licence_pb2.StandingConsent(
            rule=consent.rule_bytes, holder_signature=consent.signature
        ),
        created_at=NOW - DAY,
    )


def _token(record: records_pb2.StandingRuleRecord, asset: bytes = PHOTO, days: int = 30) -> str:
    """A v2 licence issued under ``record``'s rule, on ``asset`` (salted)."""
    claims = LicenceClaims(
        licence_id=b"\x09" * 16,
        issuer_key_id=ISSUER.public.key_id,
        holder=None,
        licensee=ADV,
        assets=(Asset(DataCategory.IMAGE, salted_digest(SALT, asset)),),
        scope=SCOPE,
        issued_at=NOW,
        not_before=NOW,
        not_after=NOW + days * DAY,
        status_index=1,
        price=PriceTerms("EUR", days * 100),
        asset_salt=SALT,
    )
    consent = StandingConsent(record.consent.rule, record.consent.holder_signature)
    return issue(ISSUER, claims.encode(), commit_rule(consent), promise=LogPromise(3, NOW))


def _said(token: str, rules: list[records_pb2.StandingRuleRecord]) -> list[str]:
    return [f.message for f in check_rule_consent(parse_token(token), rules, {ME.public.raw})]


def test_a_rule_licence_opens_against_her_rules_and_must_fall_within_one() -> None:
    mine = _rule()
    other = PrivateKey.generate()
    assert _said(_token(mine), [_rule(signer=other, holder=other), mine]) == []
    # Another asset than the rule's, a term over its maximum: not covered.
    for token in (_token(mine, asset=OTHER), _token(mine, days=40)):
        assert _said(token, [mine]) == [
            "issued under a standing rule of yours that does not cover it"
        ]
    # Issued after she withdrew the rule.
    withdrawn = records_pb2.StandingRuleRecord()
    withdrawn.CopyFrom(mine)
    withdrawn.withdrawn_at = NOW - 1
    assert _said(_token(mine), [withdrawn]) == [
        "issued under a standing rule that was not in force"
    ]
    # A rule she is not the holder of, or whose signature is not the holder's; a rule the
    # exchange does not list to her.
    stranger = PrivateKey.generate()
    theirs = _rule(signer=stranger, holder=stranger)
    assert _said(_token(theirs), [theirs]) == ["issued under a standing rule you did not sign"]
    forged = _rule(signer=stranger)
    assert _said(_token(forged), [forged]) == ["issued under a standing rule you did not sign"]
    assert _said(_token(mine), []) == [
        "issued under a standing rule that is none of yours (its commitment opens to no rule"
        " you signed)"
    ]


def test_her_entries_are_found_in_order_and_each_gap_or_bad_box_is_said() -> None:
    key = b"\x11" * 32
    licence = transparency_pb2.LogEntry(licence="lic2.x")
    one, two, four = (sealed.seal(key, j, licence).sealed for j in (1, 2, 4))
    someone = sealed.seal(b"\x12" * 32, 1, licence).sealed
    junk = transparency_pb2.SealedEntry(
        tag=sealed.tag(key, 5), commitment=bytes(32), box=bytes(272)
    )
    mine = HolderLog(key)
    assert mine.open(10, one) == ([], licence)
    assert mine.open(11, someone) == ([], None)
    found, clear = mine.open(12, one)  # her entry #1 again: a number used twice
    assert (clear, [f.kind for f in found]) == (None, ["sealed_repeat"])
    assert mine.open(13, two) == ([], licence)
    found, clear = mine.open(14, four)
    assert clear == licence
    assert [f.kind for f in found] == ["sealed_gap"]
    assert "your entry #3 is not in the log" in found[0].message
    found, clear = mine.open(15, junk)
    assert (clear, [f.kind for f in found]) == (None, ["sealed_unopened"])
    assert (mine.found, mine.opened) == (5, 3)
    # The number the log skipped, appended later, is flagged too (not silently dropped).
    found, clear = mine.open(16, sealed.seal(key, 3, licence).sealed)
    assert (clear, [f.kind for f in found]) == (None, ["sealed_repeat"])
    # A later run goes on from where this one stopped, and still knows her earlier tags.
    later = HolderLog(key, 5)
    assert later.open(17, sealed.seal(key, 6, licence).sealed) == ([], licence)
    assert [f.kind for f in later.open(18, two)[0]] == ["sealed_repeat"]
    assert hidden_entries(5, 5) == []
    assert hidden_entries(4, 5) == [
        "the exchange counts 5 log entries about you, but the public log holds only 4: 1 of"
        " them are hidden from the log"
    ]


def test_a_sealed_entry_has_one_form() -> None:
    good = transparency_pb2.SealedEntry(tag=bytes(16), commitment=bytes(32), box=bytes(272))
    assert check_sealed_form(good) == []
    assert check_sealed_form(sealed.seal(b"\x11" * 32, 1, transparency_pb2.LogEntry()).sealed) == []
    for tag, commitment, box in [
        (15, 32, 272),
        (16, 31, 272),
        (16, 32, 16),
        (16, 32, 271),
        (16, 32, sealed.MAX_BOX_BYTES + 256),
    ]:
        bad = transparency_pb2.SealedEntry(
            tag=bytes(tag), commitment=bytes(commitment), box=bytes(box)
        )
        assert [f.kind for f in check_sealed_form(bad)] == ["sealed_form"], (tag, commitment, box)


@pytest.mark.parametrize("committed", [True, False])
def test_an_audit_state_of_version_2_is_brought_to_3_in_place(
    tmp_path: Path, committed: bool
) -> None:
    """A state made before token v2 (no asset salt per licence; its version on record, or
    not yet when its first run never committed) keeps its progress; the licences it stores
    from then on keep their salt, and the holder's entry number too."""
    state = AuditState.open(tmp_path)
    state.close()
    db = sqlite3.connect(tmp_path / "audit.db")
    db.execute("ALTER TABLE licences DROP COLUMN asset_salt")
    if committed:
        db.execute("INSERT OR REPLACE INTO meta VALUES ('version', 2)")
    db.commit()
    db.close()
    state = AuditState.open(tmp_path)
    try:
        facts = LicenceFacts.of(parse_token(_token(_rule())))
        assert facts.asset_salt == SALT
        state.add_licence(facts, 3)
        state.save_sealed_found(4)
        state.commit()
        assert state.licence(facts.licence_id) == (facts, 3, None)
        assert facts.names_asset(PHOTO)
        assert not facts.names_asset(salted_digest(SALT, PHOTO))
        assert state.sealed_found() == 4
    finally:
        state.close()
    AuditState.open(tmp_path).close()  # version 3 now: opens as is
