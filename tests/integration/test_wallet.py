"""licentia-wallet through main(argv) against a real exchange, and a few times as a process."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from .exchange_harness import (
    PHOTO,
    Exchange,
    photo_use,
    register_advertiser,
    register_platform,
    report_use,
    request_licence,
)
from .wallet_harness import PASS, Wallet, set_up


@pytest.fixture
def wallet(tmp_path: Path, ex: Exchange, capsys: pytest.CaptureFixture[str]) -> Wallet:
    w = Wallet(tmp_path, ex.address, capsys)
    code, out, err = w("init", "--yes")
    assert code == 0, err
    assert "Your public key: ed25519:" in out
    return w


@pytest.fixture
def instant_wallet(
    tmp_path: Path, instant_ex: Exchange, capsys: pytest.CaptureFixture[str]
) -> Wallet:
    """A wallet on an exchange with no payout delay (a destination is usable at once)."""
    w = Wallet(tmp_path, instant_ex.address, capsys)
    code, _, err = w("init", "--yes")
    assert code == 0, err
    return w


def _holder_key(w: Wallet) -> bytes:
    from licentia.keys import PublicKey

    doc = w.json("whoami")
    assert isinstance(doc, dict)
    return PublicKey.from_text(doc["public_key"]).raw


def test_the_wallet_file_is_private_and_never_overwritten(wallet: Wallet) -> None:
    assert stat.S_IMODE(os.stat(wallet.path).st_mode) == 0o600
    code, _, err = wallet("init")
    assert code == 1
    assert "use --force" in err
    before = wallet.json("whoami")
    assert wallet("init", "--force", "--yes")[0] == 0
    assert wallet.json("whoami") != before
    assert stat.S_IMODE(os.stat(wallet.path).st_mode) == 0o600


def test_wrong_passphrase_and_readable_wallet_are_clear_errors(wallet: Wallet) -> None:
    wallet.pass_file.write_text("not the passphrase\n")
    code, _, err = wallet("licences")
    assert code == 1
    assert "licentia-wallet: error: wrong passphrase" in err
    os.chmod(wallet.path, 0o644)
    code, _, err = wallet("licences")
    assert code == 1
    assert "chmod 600" in err


def test_misuse_exits_2(wallet: Wallet) -> None:
    assert wallet()[0] == 2
    assert wallet("assets", "add", "x", "--category", "smell")[0] == 2
    assert wallet("frobnicate")[0] == 2
    assert wallet("erase", "--sha256", "not-hex")[0] == 2


def test_erasing_without_a_terminal_needs_yes_and_changes_nothing(
    wallet: Wallet, tmp_path: Path
) -> None:
    set_up(wallet, tmp_path)
    code, _, err = wallet("erase")
    assert code == 1
    assert "confirm with --yes" in err
    assert "me.png" in wallet("assets", "list")[1]
    code, _, err = wallet("revoke", "00" * 16)
    assert code == 1
    assert "no licence 0000" in err


def test_the_holders_whole_story(wallet: Wallet, ex: Exchange, tmp_path: Path) -> None:
    set_up(wallet, tmp_path)
    terms = wallet.json("terms", "show")
    assert isinstance(terms, dict)
    assert terms["price_per_day_minor"] == 100
    adv = ex.party()
    register_advertiser(adv)
    holder_key = _holder_key(wallet)
    first = request_licence(adv, holder_key).request
    second = request_licence(adv, holder_key).request

    code, out, _ = wallet("inbox")
    assert code == 0
    for words in (
        "Acme Ads",
        "image (me.png)",
        "advertising",
        "FR",
        "online",
        "30 days",
        "30.00 EUR",
    ):
        assert words in out, words

    # Ids begin with the second they were made (docs/token-format.md §3.1): the second's 8
    # digits and more name one of two requests made in the same second.
    code, out, err = wallet("approve", first.request_id.hex()[:16], "--yes")
    assert code == 0, err
    assert "Approved. Licence" in out
    hint = re.search(r"revoke it any time with 'licentia-wallet revoke ([0-9a-f]+)'", out)
    assert hint is not None
    assert len(hint.group(1)) == 12  # the second and 2 random bytes, not the second alone
    assert "Who:         Acme Ads" in err  # the claims are shown before signing
    code, out, _ = wallet("decline", second.request_id.hex(), "--reason", "not this one")
    assert code == 0
    assert wallet("inbox")[1].strip() == "No request is waiting for you."

    licences = wallet.json("licences")
    assert isinstance(licences, list)
    assert [x["state"] for x in licences] == ["LICENCE_STATE_ACTIVE"]
    lid = licences[0]["licence_id"]
    assert lid.startswith(hint.group(1))
    code, out, _ = wallet("show", hint.group(1))
    assert code == 0
    assert "active" in out

    # The advertiser fetches the photo; the holder sees it.
    from licentia.v1 import licences_pb2

    adv.call(
        licences_pb2,
        "FetchAsset",
        licences_pb2.FetchAssetRequest(
            licence_id=bytes.fromhex(lid),
            sha256=hashlib.sha256(PHOTO).digest(),
        ),
        licences_pb2.FetchAssetResponse,
    )
    code, out, _ = wallet("accesses")
    assert "me.png" in out

    code, out, _ = wallet("revoke", lid)
    assert code == 0
    assert "Revoked licence" in out
    assert "Receipt: event 1" in out
    after = wallet.json("licences")
    assert isinstance(after, list)
    assert [x["state"] for x in after] == ["LICENCE_STATE_REVOKED"]

    export_file = tmp_path / "export.json"
    assert wallet("export", "--output", str(export_file))[0] == 0
    exported = json.loads(export_file.read_text())
    assert export_file.stat().st_mode & 0o777 == 0o600  # personal data: hers alone
    assert exported["profile"]["handle"] == "alice"
    assert len(exported["licences"]) == 1
    assert len(exported["requests"]) == 2

    code, out, _ = wallet("erase", "--yes")
    assert code == 0
    assert "Erased 1 asset(s)" in out
    assert wallet("assets", "list")[1].strip() == "No assets yet."


def test_terms_from_a_toml_file_and_objection(wallet: Wallet, ex: Exchange, tmp_path: Path) -> None:
    assert wallet("register", "--handle", "bob")[0] == 0
    toml = tmp_path / "terms.toml"
    toml.write_text(
        'categories = ["voice"]\npurposes = ["research-and-development"]\n'
        'media = ["podcast"]\nterritories = ["WORLD"]\nprice_per_day = "0.25"\n'
        "max_days = 30\nexclusive_multiplier = 2.5\n"
    )
    code, out, err = wallet("terms", "set", "--file", str(toml))
    assert code == 0, err
    assert "offered, at x2.5 the price" in out
    code, _, err = wallet("terms", "set", "--categories", "image")
    assert code == 1
    assert "terms need" in err
    assert "opted out" in wallet("opt-out")[1]
    adv = ex.party()
    register_advertiser(adv)
    from .exchange_harness import ExchangeError

    with pytest.raises(ExchangeError) as e:
        request_licence(adv, _holder_key(wallet))
    assert e.value.reason.name == "OPTED_OUT"
    assert "opted in" in wallet("opt-in")[1]


def test_an_unregistered_holder_gets_a_hint(wallet: Wallet) -> None:
    code, _, err = wallet("licences")
    assert code == 1
    assert "UNKNOWN_KEY" in err
    assert "hint: register first" in err


def test_as_a_real_process_with_the_passphrase_on_stdin(tmp_path: Path, ex: Exchange) -> None:
    env = {**os.environ, "LICENTIA_WALLET": str(tmp_path / "w.json"), "LICENTIA_SERVER": ex.address}
    cmd = [sys.executable, "-m", "licentia.clients.wallet.cli", "--insecure"]
    init = subprocess.run(
        [*cmd, "init", "--yes", "--passphrase-file", "-"],
        input=PASS + "\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert init.returncode == 0, init.stderr
    reg = subprocess.run(
        [*cmd, "register", "--handle", "carol", "--passphrase-file", "-", "--json"],
        input=PASS + "\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert reg.returncode == 0, reg.stderr
    assert json.loads(reg.stdout)["handle"] == "carol"
    wrong = subprocess.run(
        [*cmd, "licences", "--passphrase-file", "-"],
        input="wrong wrong wrong\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert wrong.returncode == 1
    assert wrong.stderr.startswith("licentia-wallet: error: wrong passphrase")
    no_tty = subprocess.run(
        [*cmd, "licences"], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert no_tty.returncode == 1
    assert "--passphrase-file" in no_tty.stderr


def test_every_command_is_in_the_readme() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    from licentia.clients.wallet.cli import parser

    ap = parser()
    sub = next(a for a in ap._actions if a.dest == "command")
    for name in sub.choices:  # type: ignore[union-attr]
        assert f"licentia-wallet {name}" in readme, name


def test_an_unreachable_exchange_is_said_plainly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    w = Wallet(tmp_path, f"127.0.0.1:{port}", capsys)
    assert w("init", "--yes")[0] == 0
    code, _, err = w("licences")
    assert code == 3  # documented: the exchange could not be reached
    assert err.startswith(
        f"licentia-wallet: error: could not reach the exchange at 127.0.0.1:{port} ("
    )
    assert "the exchange refused" not in err
    assert "hint: is the exchange running" in err
    code, _, err = w("licences", "--json")
    assert code == 3
    error = json.loads(err)["error"]
    assert error["reason"] == "UNAVAILABLE"
    assert error["message"].startswith(f"could not reach the exchange at 127.0.0.1:{port}")


def test_standing_rules_approve_matching_requests_and_never_sensitive_ones(
    wallet: Wallet, ex: Exchange, tmp_path: Path
) -> None:
    set_up(wallet, tmp_path)
    code, out, err = wallet(
        "rules",
        "add",
        "--categories",
        "image",
        "--purposes",
        "advertising",
        "--media",
        "online",
        "--territories",
        "FR",
        "--min-price-per-day",
        "1.00",
        "--max-term-days",
        "60",
    )
    assert code == 0, err
    assert "Signed standing rule" in out
    code, _, err = wallet(
        "rules",
        "add",
        "--categories",
        "image",
        "--purposes",
        "political-campaign",
        "--media",
        "online",
        "--territories",
        "FR",
        "--min-price-per-day",
        "1.00",
    )
    assert code == 1
    assert "never approved automatically" in err
    adv = ex.party()
    register_advertiser(adv)
    within = request_licence(adv, _holder_key(wallet))
    assert within.licence.token  # issued at once, without asking
    assert within.request.auto_approved
    longer = request_licence(adv, _holder_key(wallet), days=61)
    assert not longer.licence.token  # outside the rule: asked
    rules = wallet.json("rules", "list")
    assert len(rules) == 1
    assert rules[0]["withdrawn_at"] == 0  # in force
    rule = rules[0]["rule"]  # the rule itself, not its bytes in hex
    assert rule["scope"]["territories"] == ["FR"]
    assert rule["max_term_seconds"] == 60 * 86400
    assert rule["min_price_per_day_minor"] == 100
    assert rule["holder_key"].startswith("ed25519:")
    listing = wallet("rules", "list")[1]
    assert "in force" in listing
    rule_id = listing.split()[0]
    code, out, _ = wallet("rules", "withdraw", rule_id[:8])
    assert code == 0
    assert f"Withdrew standing rule {rule_id}" in out
    assert "withdrawn" in wallet("rules", "list")[1]
    asked = request_licence(adv, _holder_key(wallet))
    assert not asked.licence.token  # the rule no longer answers for her


def test_earnings_grow_with_each_use_and_can_be_withdrawn_once(
    instant_wallet: Wallet, instant_ex: Exchange, tmp_path: Path
) -> None:
    wallet, ex = instant_wallet, instant_ex
    set_up(wallet, tmp_path)
    adv, platform = ex.party(), ex.party()
    register_advertiser(adv)
    register_platform(platform)
    asked = request_licence(adv, _holder_key(wallet), max_uses=5, price_per_use=200).request
    code, out, _ = wallet("inbox")
    assert "plus 2.00 EUR for each use (you receive 1.80 EUR)" in out
    code, out, err = wallet("approve", asked.request_id.hex(), "--yes")
    assert code == 0, err
    token = wallet.json("licences")[0]["token"]
    nothing = wallet.json("earnings")
    assert int(nothing.get("total_minor", 0)) < 2  # a few seconds of a 30-day licence
    for _ in range(2):
        report_use(platform, adv, token, photo_use())
    doc = wallet.json("earnings")
    earned = int(doc["total_minor"])
    assert earned >= 360  # two uses at 1.80 after the fee, plus seconds of the term price
    assert int(doc["available_minor"]) == earned
    assert [x["kind"] for x in doc["lines"]][:2] == ["POSTING_KIND_USE"] * 2
    code, out, _ = wallet("earnings")
    assert code == 0
    assert "Available to withdraw: 3.6" in out
    assert "(exchange fee 0.20 EUR)" in out

    # To a payout reference never added: refused, saying how to add it.
    code, _, err = wallet("withdraw", "3.60", "--to", "FR76 0000")
    assert code == 1
    assert "PAYOUT_DESTINATION_UNKNOWN" in err
    assert "licentia-wallet payouts add FR76 0000" in err
    code, out, err = wallet("payouts", "add", "FR76 0000")
    assert code == 0, err
    assert out.startswith("FR76 0000 is a payout destination, usable since")  # no delay here
    # More than is available: refused, nothing paid, and the retry key is printed.
    code, _, err = wallet("withdraw", "1000.00", "--to", "FR76 0000")
    assert code == 1
    assert "INSUFFICIENT_FUNDS" in err
    assert "--idempotency-key" in err
    key = "ab" * 16
    code, out, err = wallet("withdraw", "3.60", "--to", "FR76 0000", "--idempotency-key", key)
    assert code == 0, err
    assert out.startswith("Withdrew 3.60 to FR76 0000.")
    code, out, err = wallet("withdraw", "3.60", "--to", "FR76 0000", "--idempotency-key", key)
    assert code == 0, err
    assert out.startswith("Already withdrew 3.60")  # the retry paid nothing more
    after = wallet.json("earnings")
    assert int(after.get("available_minor", 0)) == earned - 360
    assert [x["kind"] for x in after["lines"]].count("POSTING_KIND_WITHDRAWAL") == 1
    code, _, err = wallet("withdraw", "1.00", "--to", "x", "--idempotency-key", "abc")
    assert code == 1
    assert "32 hex digits" in err
    assert ex.app.deps.store.ledger_check() == []


def test_audit_finds_every_licence_in_your_name_and_flags_one_you_never_approved(
    wallet: Wallet, ex: Exchange, tmp_path: Path
) -> None:
    """The wallet's audit reads the holder's sealed entries with her log key. It flags a
    rewritten entry, a listed licence whose promised entry is not hers, entries the exchange
    counts but the log lacks, a gap in her numbering, an entry of hers that does not open,
    and licences logged in her name that she never approved (nor any rule of hers)."""
    import dataclasses
    import time

    from licentia import sealed
    from licentia.checkpoint import vkey
    from licentia.keys import PrivateKey
    from licentia.token import (
        Asset,
        LogPromise,
        RuleCommitment,
        approve,
        issue,
        new_asset_salt,
        parse_token,
        salted_digest,
    )
    from licentia.v1 import transparency_pb2
    from licentia.vocabulary import DataCategory

    from .exchange_harness import PHOTO_SHA
    from .log_harness import append, append_sealed, claims_for, issuer_key

    set_up(wallet, tmp_path)
    adv = ex.party()
    register_advertiser(adv)
    me = _holder_key(wallet)
    asked = request_licence(adv, me).request
    assert wallet("approve", asked.request_id.hex(), "--yes")[0] == 0
    lid = wallet.json("licences")[0]["licence_id"]
    assert wallet("revoke", lid)[0] == 0

    code, out, err = wallet("audit")
    assert code == 0, err
    assert "Trusting the exchange's log key on first use" in out
    assert "In your name: 1 licence(s), 1 revoked" in out
    assert "Entries about you (sealed, read with your log key): 3 found;" in out
    again = wallet.json("audit")
    assert (again["entries_checked"], again["your_licences"], again["problems"]) == (0, 1, [])
    n = again["your_entries_found"]  # her licence, its revocation, her recovery key
    assert n == again["your_entries_stated"] == 3

    # The exchange rewrites the holder's licence entry behind its back: the inclusion
    # proof of that licence no longer holds.
    db = sqlite3.connect(ex.data_dir / "licentia.db")
    (row,) = db.execute("SELECT idx, entry FROM log_entries WHERE kind = 'licence'").fetchall()
    rewritten = transparency_pb2.LogEntry(licence="lic1.rewritten").SerializeToString()
    db.execute("UPDATE log_entries SET entry = ? WHERE idx = ?", (rewritten, row[0]))
    db.commit()
    code, out, _ = wallet("audit")
    assert code == 1
    assert "does not verify" in out
    db.execute("UPDATE log_entries SET entry = ? WHERE idx = ?", (row[1], row[0]))
    db.commit()
    assert wallet("audit")[0] == 0  # restored: nothing else is wrong

    # The exchange lists her licence with a token promising another entry.
    (token,) = db.execute("SELECT token FROM licences").fetchone()
    u = parse_token(token)
    assert u.promise is not None
    other = LogPromise(u.promise.index - 1, u.promise.logged_at)
    moved = issue(issuer_key(ex), u.claims_bytes, u.consent, promise=other)
    db.execute("UPDATE licences SET token = ?", (moved,))
    db.commit()
    code, out, _ = wallet("audit")
    assert code == 1
    assert f"it promises entry {other.index}, which holds no entry of yours" in out
    db.execute("UPDATE licences SET token = ?", (token,))
    # It counts an entry about her that it never logged.
    db.execute("UPDATE account_logs SET entries = entries + 1 WHERE account = ?", (me,))
    db.commit()
    db.close()
    code, out, _ = wallet("audit")
    assert code == 1
    assert f"counts {n + 1} log entries about you, but the public log holds only {n}" in out

    # Licences in the holder's name that she never approved, sealed to her: one approved by
    # a key not hers (after the number it skipped: a gap), one under a standing rule that
    # is none of hers; and an entry with her next tag that does not open.
    issuer = issuer_key(ex)
    claims = claims_for(issuer, me, adv.key.public.raw).encode()
    forged = issue(issuer, claims, approve(PrivateKey.generate(), claims))
    salt = new_asset_salt()
    ruled = dataclasses.replace(
        claims_for(issuer, me, adv.key.public.raw),
        holder=None,
        asset_salt=salt,
        assets=(Asset(DataCategory.IMAGE, salted_digest(salt, PHOTO_SHA)),),
    )
    size = ex.app.deps.store.log_head()[0]
    by_rule = issue(
        issuer,
        ruled.encode(),
        RuleCommitment(bytes(16), bytes(32)),
        promise=LogPromise(size + 1, int(time.time())),
    )
    log_key, count = ex.app.deps.store.account_log(me)
    junk = transparency_pb2.SealedEntry(
        tag=sealed.tag(log_key, count + 3), commitment=bytes(32), box=bytes(272)
    )
    at = append_sealed(
        ex,
        me,
        transparency_pb2.LogEntry(licence=forged),
        transparency_pb2.LogEntry(licence=by_rule),
    )
    (junk_at,) = append(ex, transparency_pb2.LogEntry(sealed=junk))
    code, out, err = wallet("audit")
    assert code == 1
    assert f"licence at entry {at[0]}" in out
    assert "you never approved it" in out
    assert (
        f"entry {at[0]}: your log entry #{n + 2} is at entry {at[0]}, but your entry #{n + 1}"
        in out
    )
    assert f"licence at entry {at[1]}: issued under a standing rule that is none of yours" in out
    assert f"entry {junk_at}: your log entry #{n + 4} does not open under your key" in out
    assert "problem(s) in the public log" in err

    # Another log key than the one pinned is refused.
    other_key = vkey("licentia.exchange/log", PrivateKey.generate().public)
    code, _, err = wallet("audit", "--log-key", other_key)
    assert code == 1
    assert "already trusts another log key" in err
    # The exchange swaps her account's log key (with a count to match what it now shows):
    # entries sealed under the old one would be hidden from every later audit. Refused.
    db = sqlite3.connect(ex.data_dir / "licentia.db")
    db.execute(
        "UPDATE account_logs SET log_key = ?, entries = 0 WHERE account = ?", (bytes(32), me)
    )
    db.commit()
    db.close()
    code, _, err = wallet("audit")
    assert code == 1
    assert "another log key for your account than the one your earlier audits" in err


def test_payout_destinations_wait_out_the_delay_and_the_holder_is_told(
    wallet: Wallet, ex: Exchange, tmp_path: Path
) -> None:
    set_up(wallet, tmp_path)
    assert wallet("payouts", "list")[1].startswith("No payout destination")
    code, out, err = wallet("payouts", "add", "FR76 1111")
    assert code == 0, err
    assert out.startswith("Added payout destination FR76 1111: pending, usable from")
    assert "licentia-wallet payouts cancel FR76 1111" in out
    added = wallet.json("payouts", "add", "FR76 1111")  # again: the same one, unchanged
    assert added["state"] == "PAYOUT_DESTINATION_STATE_PENDING"
    assert int(added["usable_at"]) - int(added["added_at"]) == 72 * 3600
    (listed,) = wallet.json("payouts", "list")
    assert listed == added
    # Her inbox tells her, in words and in JSON.
    code, out, _ = wallet("inbox")
    assert "a payout destination FR76 1111 was added at" in out
    assert "`licentia-wallet payouts cancel FR76 1111` if you did not add it" in out
    doc = wallet.json("inbox")
    assert doc["requests"] == []
    (notice,) = doc["notices"]
    assert notice["kind"] == "NOTICE_KIND_PAYOUT_DESTINATION_ADDED"
    assert notice["subject"] == "FR76 1111"
    # Her earnings show it pending, with the time it becomes usable.
    code, out, _ = wallet("earnings")
    assert "Payout destinations:" in out
    assert "FR76 1111  pending: usable from" in out
    assert wallet.json("earnings")["payout_destinations"] == [added]
    # A withdrawal to it is refused, saying when it becomes usable and how to cancel it.
    code, _, err = wallet("withdraw", "0.01", "--to", "FR76 1111")
    assert code == 1
    assert "PAYOUT_DESTINATION_PENDING" in err
    assert "becomes usable at" in err
    assert "licentia-wallet payouts cancel FR76 1111" in err
    # She did not add it: she cancels it, and it is gone from her inbox.
    code, out, err = wallet("payouts", "cancel", "FR76 1111")
    assert code == 0, err
    assert out.startswith("Cancelled payout destination FR76 1111")
    (gone,) = wallet.json("payouts", "list")
    assert gone["state"] == "PAYOUT_DESTINATION_STATE_CANCELLED"
    assert wallet.json("inbox")["notices"] == []
    code, _, err = wallet("withdraw", "0.01", "--to", "FR76 1111")
    assert code == 1
    assert "PAYOUT_DESTINATION_UNKNOWN" in err
    code, _, err = wallet("payouts", "cancel", "FR76 1111")
    assert code == 1
    assert "FR76 1111 is not one of your payout destinations" in err
    assert wallet("payouts", "add", "")[0] == 1  # the exchange refuses an empty reference
    assert ex.app.deps.store.ledger_check() == []
