"""``licentia-audit`` against a real exchange: a clean log passes, later runs check only what
is new, and every way the exchange (or someone with its database) can cheat is flagged — a
rewritten entry, a rewritten history, a forged licence, a revocation the holder never asked
for.

Since token v2 every entry about an account is sealed to it: the public auditor checks the
form of a sealed entry and counts it, and can no longer see the licences, revocations and
key-set chains inside. What it still checks in full — the log's integrity, issuer-key
events, entries logged in clear (before v2, or forged so by the exchange) — is tested here
as before; a revocation the holder never asked for, logged sealed to her, is found by her
own audit (the auditor's holder mode, with her log key). A licensee checks that its token
is in the log with ``--token`` (and the advertiser SDK's ``check_logged``)."""

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
from licentia.clients.advertiser import Advertiser
from licentia.clients.auditor import AuditState, StateError
from licentia.clients.auditor.audit import Auditor
from licentia.clients.auditor.cli import main as audit_main
from licentia.clients.channel import SignedChannel
from licentia.clients.logcheck import Frontier, LogClient, LoggedKeys, LogKey
from licentia.encoding import b64url_encode
from licentia.keys import PrivateKey
from licentia.request import request_payload
from licentia.scope import Scope
from licentia.token import (
    TOKEN_PREFIX_V1,
    LogPromise,
    RuleCommitment,
    StandingRule,
    approve,
    issuance_message,
    issue,
    parse_token,
    sign_standing_rule,
)
from licentia.token import _signed_token as signed_token
from licentia.v1 import (
    exchange_pb2,
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
    photo_rule,
    register_advertiser,
    register_holder,
    request_licence,
)
from .log_harness import append, append_sealed, claims_for, issuer_key

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
    rule = photo_rule(holder.key.public, now)
    add_standing_rule(holder, rule)
    auto = request_licence(adv, holder.key.public.raw).licence.token
    assert isinstance(parse_token(auto).consent, RuleCommitment)
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
    # Three licences and a revocation, each sealed to its holder: seen, not read.
    assert report["checked"] == {
        "first_entry": 0,
        "end": size,
        "entries": size,
        "licences": 0,
        "revocations": 0,
        "key_events": 1,
        "key_set_changes": 0,
        "sealed": 4,
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
        "licences": 0,
        "revocations": 0,
        "key_events": 4,
        "key_set_changes": 0,
        "sealed": 2,
    }
    assert report["totals"] == {
        "entries": size + new,
        "licences": 0,
        "revocations": 0,
        "key_events": 5,
        "key_set_changes": 0,
        "sealed": 6,
    }

    # The human report says the same.
    argv = ["--server", ex.address, "--log-key", log_key(ex), "--state-dir", str(state)]
    assert audit_main(argv) == 0
    out = capsys.readouterr().out
    assert "checked now: no new entry" in out
    assert "6 sealed entries (their contents are for their accounts only)" in out
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
    perpetual_token = TOKEN_PREFIX_V1 + b64url_encode(env.SerializeToString(deterministic=True))

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
    # A v2 licence logged in clear (it names its holder to everyone), and sealed entries
    # of a bad form: a short tag, a box that is not whole blocks, a box too large.
    _, _, v2_token = licensed(ex, "dave")
    good = transparency_pb2.SealedEntry(tag=bytes(16), commitment=bytes(32), box=bytes(272))
    bad = [
        transparency_pb2.SealedEntry(tag=bytes(15), commitment=bytes(32), box=bytes(272)),
        transparency_pb2.SealedEntry(tag=bytes(16), commitment=bytes(32), box=bytes(300)),
        transparency_pb2.SealedEntry(tag=bytes(16), commitment=bytes(32), box=bytes(8208)),
    ]
    at += append(
        ex,
        transparency_pb2.LogEntry(licence=v2_token),
        *(transparency_pb2.LogEntry(sealed=e) for e in [*bad, good]),
    )
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
        ("licence_in_clear", at[7]),
        ("sealed_form", at[8]),
        ("sealed_form", at[9]),
        ("sealed_form", at[10]),
        ("licence_issuer_key", at[5]),  # found at the rotation that closed the window
    ]
    forged_id = parse_token(tokens[0]).licence_id.hex()
    assert report["problems"][0]["licence_id"] == forged_id
    assert "not approved by its holder" in report["problems"][0]["message"]
    assert "not in force" in report["problems"][5]["message"]
    assert "window closed" in report["problems"][-1]["message"]
    assert "tag of 15 bytes" in report["problems"][7]["message"]
    assert report["checked"]["licences"] == 8  # the ones in clear
    assert report["checked"]["sealed"] == 7  # alice's, dave's, bob's and four appended
    # The log itself is intact: the state moves on, and the problems stay on record.
    assert report["state_advanced"] is True
    code, report = audit(ex, tmp_path / "audit", capsys)
    assert code == 1
    assert report["problems"] == []
    assert [p["entry"] for p in report["earlier_problems"]] == [*at[:5], at[6], *at[7:11], at[5]]
    # A stricter maximum term flags every licence in clear of more than 7 days (the
    # perpetual one is flagged as such).
    code, report = audit(ex, tmp_path / "strict", capsys, "--max-term-days", "7")
    assert code == 1
    assert [k for k, _ in kinds(report)].count("licence_term") == 7


def holder_audit(ex: Exchange, holder: Party, state: Path) -> Any:
    """The holder's audit (the auditor's holder mode, as the wallet runs it) with her log
    key and standing rules: its report."""
    account = holder.key.public.raw
    log_key_, _ = ex.app.deps.store.account_log(account)
    rules = holder.call(
        exchange_pb2,
        "ListStandingRules",
        exchange_pb2.ListStandingRulesRequest(),
        exchange_pb2.ListStandingRulesResponse,
    ).rules
    opened = AuditState.open(state)
    try:
        client = LogClient(SignedChannel(ex.channel(), None))
        return Auditor(
            client,
            LogKey.parse(log_key(ex)),
            opened,
            365 * DAY,
            holder=account,
            sealed_key=log_key_,
            rules=rules,
        ).run()
    finally:
        opened.close()


def test_revocations_not_signed_by_the_holder_are_flagged_by_her_audit(
    ex: Exchange, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Revocations of Alice's licence, logged sealed to her as the store logs them: the
    public auditor only counts them; her audit opens them and flags each one she did not
    sign (and a revocation of a licence that is not hers)."""
    holder, adv, token = licensed(ex, "alice")
    licence_id = parse_token(token).licence_id
    body = licences_pb2.RevokeLicenceRequest(licence_id=licence_id).SerializeToString()
    other = licences_pb2.RevokeLicenceRequest(licence_id=bytes(16)).SerializeToString()
    at = append_sealed(
        ex,
        holder.key.public.raw,
        revocation(licence_id, signed_call(adv.key, REVOKE, body)),  # the licensee's call
        revocation(licence_id, signed_call(holder.key, REVOKE, body, tamper=True)),
        revocation(licence_id, None),  # no call at all
        revocation(licence_id, signed_call(holder.key, REVOKE, other)),  # another licence
        revocation(secrets.token_bytes(16), signed_call(holder.key, REVOKE, body)),
    )
    revoke(holder, token)  # the holder's own revocation, logged by the exchange
    code, public = audit(ex, tmp_path / "audit", capsys)
    assert (code, public["checked"]["revocations"], public["checked"]["sealed"]) == (0, 0, 7)
    report = holder_audit(ex, holder, tmp_path / "hers")
    assert [(p.kind, p.index) for p in report.problems] == [
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
    assert (report.new.licences, report.new.revocations, report.sealed_found) == (1, 6, 7)


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
    assert (report["checked"]["licences"], report["checked"]["sealed"]) == (0, 1)


def test_a_licensee_checks_that_its_token_is_in_the_log(
    ex: Exchange, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``licentia-audit --token`` and the advertiser SDK's ``check_logged``: an honest token
    is in the log at the entry it promises; a token whose promise names another entry is
    not; a v2 token with no promise is NOT_LOGGED (what a misbehaving exchange would sign)."""
    _, adv, token = licensed(ex, "alice")
    licensed(ex, "bob")
    u = parse_token(token)
    assert u.promise is not None
    issuer = issuer_key(ex)
    elsewhere = issue(
        issuer,
        u.claims_bytes,
        u.consent,
        promise=LogPromise(u.promise.index + 1, u.promise.logged_at),  # bob's entry
    )
    unlogged = signed_token(issuer, u.claims_bytes, u.consent, None, v2=True)
    base = ["--server", ex.address, "--log-key", log_key(ex), "--json"]
    cases = [(token, 0, []), (elsewhere, 1, ["not_logged"]), (unlogged, 1, ["not_logged"])]
    for text, exit_code, problems in cases:
        assert audit_main([*base, "--token", text]) == exit_code
        doc = json.loads(capsys.readouterr().out)
        assert [p["kind"] for p in doc["problems"]] == problems
    assert doc["entry"] is None  # no promise: no entry to look at
    token_file = tmp_path / "token.txt"
    token_file.write_text(token + "\n")
    assert audit_main([*base[:-1], "--token", f"@{token_file}"]) == 0
    assert f"entry {u.promise.index} of the checkpoint" in capsys.readouterr().out
    # The same check from the advertiser SDK; the key must be the log's.
    with Advertiser(ex.channel(), adv.key) as sdk:
        assert sdk.check_logged(token, log_key(ex)).ok
        record = sdk.licence(u.licence_id)
        found = sdk.check_logged(record, LogKey.parse(log_key(ex)))
        assert (found.ok, found.index) == (True, u.promise.index)
        assert not sdk.check_logged(elsewhere, log_key(ex)).ok
        wrong = vkey(ex.app.deps.settings.log_origin, PrivateKey.generate().public)
        assert [f.kind for f in sdk.check_logged(token, wrong).findings] == ["checkpoint_signature"]


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
