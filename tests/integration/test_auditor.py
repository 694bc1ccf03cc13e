"""``licentia-audit`` against a real exchange: a clean log passes, later runs check only what
is new, and every way the exchange (or someone with its database) can cheat is flagged — a
rewritten entry, a rewritten history, a forged licence, a revocation the holder never asked
for."""

from __future__ import annotations

import json
import secrets
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, cast

import pytest

from licentia import keys, merkle, methods
from licentia.checkpoint import vkey
from licentia.clients.auditor import AuditState, StateError
from licentia.clients.auditor.cli import main as audit_main
from licentia.clients.logcheck import Frontier, LoggedKeys
from licentia.encoding import b64url_encode
from licentia.keys import PrivateKey
from licentia.request import request_payload
from licentia.scope import Scope
from licentia.token import (
    TOKEN_PREFIX,
    StandingConsent,
    StandingRule,
    approve,
    issuance_message,
    issue,
    parse_token,
    sign_standing_rule,
)
from licentia.v1 import (
    licence_pb2,
    licences_pb2,
    registry_pb2,
    transparency_pb2,
)
from licentia.vocabulary import DataCategory, Medium, Purpose

from .exchange_harness import (
    DAY,
    PHOTO_SHA,
    Exchange,
    Party,
    add_standing_rule,
    approve_request,
    register_advertiser,
    register_holder,
    request_licence,
)
from .log_harness import append, claims_for, issuer_key

ROOT = Path(__file__).resolve().parents[2]


# -- helpers ----------------------------------------------------------------------------------


def log_key(ex: Exchange) -> str:
    """The exchange's log verifier key, as its operator would publish it."""
    key = PrivateKey.from_seed((ex.data_dir / "log.key").read_bytes())
    return vkey(ex.app.deps.settings.log_origin, key.public)


def audit(
    ex: Exchange, state: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, dict[str, Any]]:
    """Run the auditor in-process with ``--json``: its exit status and report."""
    argv = ["--server", ex.address, "--log-key", log_key(ex), "--state-dir", str(state)]
    code = audit_main([*argv, "--json", *extra])
    return code, json.loads(capsys.readouterr().out)


def kinds(report: dict[str, Any]) -> list[tuple[str, int | None]]:
    """The report's problems as ``(kind, entry)``."""
    return [(p["kind"], p["entry"]) for p in report["problems"]]


def licensed(ex: Exchange, handle: str) -> tuple[Party, Party, str]:
    """A holder, an advertiser, and a licence the holder approved."""
    holder, adv = ex.party(), ex.party()
    register_holder(holder, handle)
    register_advertiser(adv)
    req = request_licence(adv, holder.key.public.raw).request
    return holder, adv, approve_request(holder, req).licence.token


def revoke(holder: Party, token: str) -> None:
    holder.call(
        licences_pb2,
        "RevokeLicence",
        licences_pb2.RevokeLicenceRequest(licence_id=parse_token(token).licence_id),
        licences_pb2.RevokeLicenceResponse,
    )


def log_size(ex: Exchange) -> int:
    return ex.app.deps.store.log_head()[0]


def signed_call(
    signer: PrivateKey, method: str, body: bytes, *, tamper: bool = False
) -> transparency_pb2.SignedCall:
    now, nonce = int(time.time()), secrets.token_bytes(16)
    sig = signer.sign(keys.REQUEST, request_payload(method, body, now, nonce))
    if tamper:
        sig = bytes([sig[0] ^ 1]) + sig[1:]
    return transparency_pb2.SignedCall(
        method=method, body=body, key=signer.public.raw, timestamp=now, nonce=nonce, signature=sig
    )


def revocation(licence_id: bytes, call: transparency_pb2.SignedCall | None) -> Any:
    rev = transparency_pb2.LoggedRevocation(
        licence_id=licence_id,
        revoked_at=int(time.time()),
        cause=licences_pb2.TERMINATION_CAUSE_REVOKED,
    )
    if call is not None:
        rev.request.CopyFrom(call)
    return transparency_pb2.LogEntry(revocation=rev)


REVOKE = methods.path(licences_pb2, "RevokeLicence")


# -- a clean log, and incremental runs --------------------------------------------------------


def test_a_clean_log_passes_and_later_runs_check_only_what_is_new(
    ex: Exchange, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "audit"
    holder, adv, token = licensed(ex, "alice")
    # A licence issued under a standing rule, and one ended by erasure.
    now = int(time.time())
    rule = StandingRule(
        rule_id=secrets.token_bytes(16),
        holder=holder.key.public,
        scope=Scope.of([DataCategory.IMAGE], [Purpose.MARKETING], [Medium.ONLINE], ["EU"]),
        asset_sha256=frozenset({PHOTO_SHA}),
        not_before=now - DAY,
        not_after=now + 365 * DAY,
        max_term_seconds=60 * DAY,
        min_price_per_day_minor=100,
        currency="EUR",
    )
    add_standing_rule(holder, rule)
    auto = request_licence(adv, holder.key.public.raw).licence.token
    assert isinstance(parse_token(auto).consent, StandingConsent)
    bob, _, _ = licensed(ex, "bob")
    bob.call(
        registry_pb2,
        "EraseAssets",
        registry_pb2.EraseAssetsRequest(sha256=[PHOTO_SHA]),
        registry_pb2.EraseAssetsResponse,
    )
    size = log_size(ex)

    code, report = audit(ex, state, capsys)
    assert code == 0, report["problems"]
    assert report["ok"] is True
    assert report["checkpoint"]["size"] == size
    assert report["checked"] == {
        "first_entry": 0,
        "end": size,
        "entries": size,
        "licences": 3,
        "revocations": 1,
        "key_events": 1,
        "key_set_changes": 0,
    }
    assert report["state_advanced"] is True
    assert (state.stat().st_mode & 0o777) == 0o700

    # Nothing new: nothing checked again.
    code, report = audit(ex, state, capsys)
    assert code == 0
    assert report["checked"]["entries"] == 0
    assert report["previous_checkpoint"]["size"] == size
    assert report["totals"]["entries"] == size

    # A revocation of a licence seen in the earlier run; the key that signed it withdrawn
    # (what it signed stops verifying, but it was honest when logged) and replaced; a key
    # rotation; a new licence.
    revoke(holder, token)
    keyring = ex.app.deps.keyring
    keyring.withdraw(parse_token(token).issuer_key_id, ex.app.deps.clock.now())
    keyring.rotate(ex.app.deps.clock.now())
    licensed(ex, "carol")
    code, report = audit(ex, state, capsys)
    assert code == 0, report["problems"]
    new = log_size(ex) - size
    assert report["checked"] == {
        "first_entry": size,
        "end": size + new,
        "entries": new,
        "licences": 1,
        "revocations": 1,
        "key_events": 4,
        "key_set_changes": 0,
    }
    assert report["totals"] == {
        "entries": size + new,
        "licences": 4,
        "revocations": 2,
        "key_events": 5,
        "key_set_changes": 0,
    }

    # The human report says the same.
    argv = ["--server", ex.address, "--log-key", log_key(ex), "--state-dir", str(state)]
    assert audit_main(argv) == 0
    out = capsys.readouterr().out
    assert "checked now: no new entry" in out
    assert "Result: no problem found." in out


# -- the log rewritten -------------------------------------------------------------------------


def test_an_entry_rewritten_in_the_database_is_found_with_or_without_an_earlier_run(
    ex: Exchange, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seen = tmp_path / "seen"
    licensed(ex, "alice")
    assert audit(ex, seen, capsys)[0] == 0
    trusted = log_size(ex)
    licensed(ex, "bob")
    licensed(ex, "carol")
    target = trusted + 1
    forged = transparency_pb2.LogEntry(licence="lic1.rewritten").SerializeToString()
    db = sqlite3.connect(ex.data_dir / "licentia.db")
    db.execute("UPDATE log_entries SET entry = ? WHERE idx = ?", (forged, target))
    db.commit()
    db.close()

    for state in (seen, tmp_path / "fresh"):
        code, report = audit(ex, state, capsys)
        assert code == 1
        assert ("root_mismatch", target) in kinds(report)
        assert report["state_advanced"] is False
    # The trusted state did not move on: the next run finds it again.
    code, report = audit(ex, seen, capsys)
    assert code == 1
    assert report["previous_checkpoint"]["size"] == trusted
    assert ("root_mismatch", target) in kinds(report)


@pytest.mark.parametrize("how", ["truncated", "replaced"])
def test_history_rewritten_after_a_trusted_checkpoint_is_flagged(
    ex: Exchange, tmp_path: Path, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    state = tmp_path / "audit"
    licensed(ex, "alice")
    licensed(ex, "bob")
    assert audit(ex, state, capsys)[0] == 0
    size = log_size(ex)
    cut = size - 1  # bob's licence goes
    store = cast(Any, ex.app.deps.store)

    def rewrite(c: sqlite3.Connection) -> None:
        c.execute("DELETE FROM log_entries WHERE idx >= ?", (cut,))
        c.execute("DELETE FROM log_nodes WHERE ((idx + 1) << level) > ?", (cut,))

    store._transact(rewrite)
    if how == "replaced":  # another story in its place, and the log grows again
        _, _, token = licensed(ex, "carol")
        append(ex, transparency_pb2.LogEntry(licence=token))
        assert log_size(ex) > size
    # The exchange signs whatever its database now holds, with its own log key.
    code, report = audit(ex, state, capsys)
    assert code == 1
    assert kinds(report) == [("inconsistent_checkpoint", None)]
    assert report["state_advanced"] is False
    # It stays on record, and both signed checkpoints are kept as evidence.
    code, report = audit(ex, state, capsys)
    assert code == 1
    assert [p["kind"] for p in report["earlier_problems"]] == ["inconsistent_checkpoint"]
    db = sqlite3.connect(state / "audit.db")
    verdicts = [r[0] for r in db.execute("SELECT verdict FROM checkpoints ORDER BY seq")]
    db.close()
    assert verdicts == ["trusted", "inconsistent", "inconsistent"]


# -- what the entries say ----------------------------------------------------------------------


def test_licences_forged_or_against_the_rules_are_flagged_with_their_entry(
    ex: Exchange, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    holder, adv, _ = licensed(ex, "alice")
    h, a = holder.key.public.raw, adv.key.public.raw
    issuer = issuer_key(ex)

    forged = claims_for(issuer, h, a).encode()
    stranger = approve(PrivateKey.generate(), forged)  # consent by someone else
    too_long = claims_for(issuer, h, a, days=400).encode()
    rogue = PrivateKey.generate()  # an issuer key the log never published
    unknown = claims_for(rogue, h, a).encode()

    # A sensitive use under a standing rule the holder signed for a harmless scope.
    sensitive = claims_for(issuer, h, a, purpose=Purpose.POLITICAL_CAMPAIGN)
    rule = StandingRule(
        rule_id=secrets.token_bytes(16),
        holder=holder.key.public,
        scope=Scope.of([DataCategory.IMAGE], [Purpose.MARKETING], [Medium.ONLINE], ["EU"]),
        asset_sha256=frozenset({PHOTO_SHA}),
        not_before=sensitive.not_before - DAY,
        not_after=sensitive.not_after + DAY,
        max_term_seconds=60 * DAY,
        min_price_per_day_minor=1,
        currency="EUR",
    )
    standing = sign_standing_rule(holder.key, rule)

    # A perpetual licence: no end date (the core refuses to build one, so by hand).
    perpetual = claims_for(issuer, h, a).to_proto()
    perpetual.not_after = 0
    perpetual_bytes = perpetual.SerializeToString(deterministic=True)
    consent = approve(holder.key, perpetual_bytes)
    env = licence_pb2.SignedLicence(
        claims=perpetual_bytes,
        issuer_signature=issuer.sign(keys.ISSUANCE, issuance_message(perpetual_bytes, consent)),
        holder_signature=consent.signature,
    )
    perpetual_token = TOKEN_PREFIX + b64url_encode(env.SerializeToString(deterministic=True))

    # Stamped an hour ahead: its key's window closes (a rotation, below) before that.
    ahead = claims_for(issuer, h, a, issued_later=3600).encode()
    # Under a standing rule that only comes into force tomorrow.
    early = claims_for(issuer, h, a, days=10, starts_later=2 * DAY)
    later_rule = StandingRule(
        rule_id=secrets.token_bytes(16),
        holder=holder.key.public,
        scope=Scope.of([DataCategory.IMAGE], [Purpose.MARKETING], [Medium.ONLINE], ["EU"]),
        asset_sha256=frozenset({PHOTO_SHA}),
        not_before=early.issued_at + DAY,
        not_after=early.not_after,
        max_term_seconds=60 * DAY,
        min_price_per_day_minor=1,
        currency="EUR",
    )

    tokens = [
        issue(issuer, forged, stranger),
        issue(issuer, too_long, approve(holder.key, too_long)),
        issue(rogue, unknown, approve(holder.key, unknown)),
        issue(issuer, sensitive.encode(), standing),
        perpetual_token,
        issue(issuer, ahead, approve(holder.key, ahead)),
        issue(issuer, early.encode(), sign_standing_rule(holder.key, later_rule)),
    ]
    at = append(ex, *(transparency_pb2.LogEntry(licence=t) for t in tokens))
    ex.app.deps.keyring.rotate(ex.app.deps.clock.now())
    licensed(ex, "bob")  # an honest licence after them

    code, report = audit(ex, tmp_path / "audit", capsys)
    assert code == 1
    assert kinds(report) == [
        ("licence_consent", at[0]),
        ("licence_term", at[1]),
        ("licence_issuer_key", at[2]),
        ("standing_rule_sensitive", at[3]),
        ("licence_perpetual", at[4]),
        ("licence_consent", at[6]),
        ("licence_issuer_key", at[5]),  # found at the rotation that closed the window
    ]
    forged_id = parse_token(tokens[0]).licence_id.hex()
    assert report["problems"][0]["licence_id"] == forged_id
    assert "not approved by its holder" in report["problems"][0]["message"]
    assert "not in force" in report["problems"][5]["message"]
    assert "window closed" in report["problems"][6]["message"]
    assert report["checked"]["licences"] == 9
    # The log itself is intact: the state moves on, and the problems stay on record.
    assert report["state_advanced"] is True
    code, report = audit(ex, tmp_path / "audit", capsys)
    assert code == 1
    assert report["problems"] == []
    assert [p["entry"] for p in report["earlier_problems"]] == [*at[:5], at[6], at[5]]
    # A stricter maximum term flags every licence of more than 7 days (the perpetual one is
    # flagged as such).
    code, report = audit(ex, tmp_path / "strict", capsys, "--max-term-days", "7")
    assert code == 1
    assert [k for k, _ in kinds(report)].count("licence_term") == 8


def test_revocations_not_signed_by_the_holder_are_flagged(
    ex: Exchange, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    holder, adv, token = licensed(ex, "alice")
    licence_id = parse_token(token).licence_id
    body = licences_pb2.RevokeLicenceRequest(licence_id=licence_id).SerializeToString()
    other = licences_pb2.RevokeLicenceRequest(licence_id=bytes(16)).SerializeToString()
    at = append(
        ex,
        revocation(licence_id, signed_call(adv.key, REVOKE, body)),  # the licensee's call
        revocation(licence_id, signed_call(holder.key, REVOKE, body, tamper=True)),
        revocation(licence_id, None),  # no call at all
        revocation(licence_id, signed_call(holder.key, REVOKE, other)),  # another licence
        revocation(secrets.token_bytes(16), signed_call(holder.key, REVOKE, body)),
    )
    revoke(holder, token)  # the holder's own revocation, logged by the exchange
    code, report = audit(ex, tmp_path / "audit", capsys)
    assert code == 1
    assert kinds(report) == [
        ("revocation_signer", at[0]),
        ("revocation_signature", at[1]),
        ("revocation_duplicate", at[1]),
        ("revocation_signature", at[2]),
        ("revocation_duplicate", at[2]),
        ("revocation_call", at[3]),
        ("revocation_duplicate", at[3]),
        ("revocation_unknown_licence", at[4]),
        ("revocation_duplicate", at[4] + 1),
    ]
    assert report["checked"]["revocations"] == 6


# -- the command line ---------------------------------------------------------------------------


def test_the_log_key_is_required_and_checked(
    ex: Exchange, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    licensed(ex, "alice")
    base = ["--server", ex.address, "--state-dir", str(tmp_path / "audit")]
    with pytest.raises(SystemExit) as e:
        audit_main(base)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--log-key is required" in err
    assert log_key(ex) in err  # what the exchange claims, to compare

    with pytest.raises(SystemExit) as e:
        audit_main([*base, "--log-key", "not-a-key"])
    assert e.value.code == 2
    assert "NAME+ID+KEY" in capsys.readouterr().err

    # A well-formed key that is not the exchange's: the checkpoint does not verify.
    wrong = vkey(ex.app.deps.settings.log_origin, PrivateKey.generate().public)
    assert audit_main([*base, "--log-key", wrong]) == 1
    out = capsys.readouterr().out
    assert "checkpoint_signature" in out
    assert "--log-key is wrong" in out

    # The right key, from a file; then the state is pinned to it.
    key_file = tmp_path / "log.vkey"
    key_file.write_text(log_key(ex) + "\n")
    assert audit_main([*base, "--log-key", f"@{key_file}"]) == 0
    capsys.readouterr()
    assert audit_main([*base, "--log-key", wrong, "--json"]) == 2
    captured = capsys.readouterr()
    assert "use another --state-dir" in captured.err
    assert json.loads(captured.out)["ok"] is False


def test_an_unreachable_exchange_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = vkey("licentia.exchange/log", PrivateKey.generate().public)
    argv = ["--server", "127.0.0.1:1", "--log-key", key, "--state-dir", str(tmp_path / "a")]
    assert audit_main([*argv, "--timeout", "2"]) == 2
    assert "licentia-audit: error: the exchange at 127.0.0.1:1" in capsys.readouterr().err


def test_the_auditor_runs_as_a_program(ex: Exchange, tmp_path: Path) -> None:
    licensed(ex, "alice")
    argv = ["--server", ex.address, "--log-key", log_key(ex), "--state-dir", str(tmp_path / "a")]
    out = subprocess.run(
        [sys.executable, "-m", "licentia.clients.auditor.cli", *argv, "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["ok"] is True
    assert report["checked"]["licences"] == 1


# -- the reusable pieces, on their own -------------------------------------------------------


def test_the_frontier_recomputes_every_root_and_resumes_from_what_it_stores() -> None:
    data = [f"entry {i}".encode() for i in range(70)]
    frontier = Frontier()
    assert frontier.root() == merkle.EMPTY_ROOT
    for i, entry in enumerate(data):
        frontier.append(entry)
        assert frontier.root() == merkle.reference_root(data[: i + 1])
        assert len(frontier.nodes()) == bin(i + 1).count("1")  # only the right edge is kept
        resumed = Frontier.restore(frontier.size, frontier.nodes())
        assert resumed.root() == frontier.root()
    nodes = frontier.nodes()
    with pytest.raises(ValueError, match="frontier"):
        Frontier.restore(frontier.size + 1, nodes)
    with pytest.raises(ValueError, match="32-byte"):
        Frontier.restore(frontier.size, dict.fromkeys(nodes, b"short"))


def test_issuer_key_events_are_checked_in_log_order() -> None:
    key = PrivateKey.generate().public

    def event(**kw: Any) -> transparency_pb2.LoggedIssuerKey:
        fields = {"key_id": key.key_id, "public_key": key.raw, "not_before": 100, **kw}
        return transparency_pb2.LoggedIssuerKey(**fields)

    logged = LoggedKeys()
    assert logged.resolve(key.key_id) is None
    assert [f.message for f in logged.apply(event(withdrawn=True))[0]] == [
        "a withdrawal of a key never published"
    ]
    logged = LoggedKeys()
    assert logged.apply(event())[0] == []
    found = logged.resolve(key.key_id)
    assert found is not None
    assert found.not_after is None
    assert logged.apply(event(not_after=200))[0] == []  # retired
    assert logged.apply(event(not_after=300))[0][0].message == "a closed key window was changed"
    assert logged.apply(event(key_id=bytes(8)))[0][0].message.startswith("a key event whose")
    assert logged.apply(event(not_after=200, withdrawn=True))[0] == []
    assert logged.resolve(key.key_id) is None  # withdrawn: nothing it signs verifies
    assert logged.apply(event(not_after=200))[0][0].message == (
        "a withdrawn key was published again"
    )


def test_one_state_directory_serves_one_audit_at_a_time(tmp_path: Path) -> None:
    first = AuditState.open(tmp_path / "a")
    try:
        with pytest.raises(StateError, match="another audit"):
            AuditState.open(tmp_path / "a")
    finally:
        first.close()
    AuditState.open(tmp_path / "a").close()  # free again
    assert (tmp_path / "a" / "audit.db").stat().st_mode & 0o777 == 0o600
