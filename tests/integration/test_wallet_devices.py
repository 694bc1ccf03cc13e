"""licentia-wallet and the account's keys, through main(argv) against a real exchange: the
recovery phrase at init (never stored) and its key added at register, pairing a second
device, listing and removing devices (a stolen one: what it approved is reviewed and
revoked), and recovering on a new machine from the phrase; once as a real process, timed."""

from __future__ import annotations

import itertools
import json
import os
import re
import secrets
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from licentia import keyset, pairwise, phrase
from licentia.clients.holder import Holder
from licentia.clients.wallet import account as wallet_account
from licentia.clients.wallet import keystore
from licentia.token import parse_token

from .exchange_harness import Exchange, register_advertiser, request_licence
from .wallet_harness import PASS, Wallet, set_up

ENTROPY = bytes(range(16))
WORDS = phrase.new_phrase(ENTROPY)


def _wallet(tmp_path: Path, name: str, ex: Exchange, capsys: pytest.CaptureFixture[str]) -> Wallet:
    return Wallet(tmp_path / name, ex.address, capsys)


def _laptop(tmp_path: Path, ex: Exchange, capsys: pytest.CaptureFixture[str]) -> tuple[Wallet, str]:
    """Alice's first wallet, registered with her photo and terms; and her 12 words."""
    w = _wallet(tmp_path, "laptop", ex, capsys)
    words = w.json("init", "--yes")["recovery_phrase"]
    set_up(w, tmp_path)
    return w, words


def _key_set(w: Wallet, ex: Exchange) -> keyset.KeySet:
    with Holder(ex.channel(), keystore.open_wallet(w.path, PASS)) as h:
        return h.key_set().current


def _pair(laptop: Wallet, phone: Wallet) -> str:
    """Pair ``phone`` (a new wallet) to ``laptop``'s account; the phone's fingerprint."""
    code = laptop.json("devices", "add", "--no-wait")["code"]
    joined = phone.json("join", code, "--name", "phone")
    code_, out, err = laptop("devices", "approve", code, "--yes")
    assert code_ == 0, err
    assert joined["fingerprint"] in err  # the same fingerprint on both devices
    assert "Added phone" in out
    return str(joined["fingerprint"])


def _strings(doc: object) -> list[str]:
    """Every string value in a JSON document, at any depth (not the keys)."""
    if isinstance(doc, str):
        return [doc]
    if isinstance(doc, dict):
        return [s for v in doc.values() for s in _strings(v)]
    if isinstance(doc, list):
        return [s for v in doc for s in _strings(v)]
    return []


def test_init_shows_the_phrase_once_and_register_adds_its_key(
    tmp_path: Path, ex: Exchange, capsys: pytest.CaptureFixture[str]
) -> None:
    w = _wallet(tmp_path, "laptop", ex, capsys)
    code, out, err = w("init", "--yes")
    assert code == 0, err
    assert "write these 12 words on paper" in out.lower()
    assert "anyone with them can take over your account" in out.lower()
    words = re.findall(r"\d+\. (\w+)", out)
    assert len(words) == 12
    stored = w.path.read_text()
    assert "recovery_pending" in stored
    # Never stored: no value of the file is a word of the phrase or holds two of its words
    # in a row. (Keys such as "name", "salt" and "box" are BIP-39 words too: only values count.)
    values = _strings(json.loads(stored))
    pairs = [f"{a} {b}" for a, b in itertools.pairwise(words)]
    assert not [v for v in values if v in words or any(p in v for p in pairs)]
    set_up(w, tmp_path)
    paper = phrase.recovery_key_from_phrase(" ".join(words))
    current = _key_set(w, ex)
    recovery = current.recovery
    assert recovery is not None
    assert (recovery.public, recovery.name) == (paper.public.raw, "paper")
    assert "recovery_pending" not in w.path.read_text()
    # Registering again only retries a pending key: none is left, the handle is taken.
    assert w("register", "--handle", "alice")[0] == 1


def test_the_confirmation_names_the_wrong_position_and_asks_again(
    tmp_path: Path,
    ex: Exchange,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fixed = types.SimpleNamespace(token_bytes=lambda n: ENTROPY, SystemRandom=secrets.SystemRandom)
    monkeypatch.setattr(wallet_account, "secrets", fixed)
    monkeypatch.setattr(wallet_account, "_terminal", lambda s: True)
    asked: list[int] = []

    def answer(prompt: str) -> str:
        position = int(re.findall(r"\d+", prompt)[0])
        asked.append(position)
        first_try = len(asked) == 1
        return (
            "zoo"
            if first_try and WORDS.split()[position - 1] != "zoo"
            else WORDS.split()[position - 1][:4]
        )

    monkeypatch.setattr(wallet_account, "_ask", answer)
    w = _wallet(tmp_path, "laptop", ex, capsys)
    code, _, err = w("init")
    assert code == 0, err
    assert f"Not the word written at position {asked[0]}" in err
    assert asked[3:] == [asked[0]]  # only the wrong one is asked again
    assert w.path.exists()

    monkeypatch.setattr(wallet_account, "_ask", lambda prompt: "zoo")
    other = _wallet(tmp_path, "other", ex, capsys)
    code, _, err = other("init")
    assert code == 1
    assert "nothing was created" in err
    assert not other.path.exists()
    # Without a terminal the words cannot be checked: scripts say --yes.
    monkeypatch.setattr(wallet_account, "_terminal", lambda s: False)
    code, _, err = other("init")
    assert code == 1
    assert "--yes" in err
    code, _, err = other("init", "--no-recovery")  # no phrase: nothing to check
    assert code == 0
    assert "lose the account" in err


def test_a_paired_device_approves_in_the_holders_name_and_both_list_it(
    tmp_path: Path, ex: Exchange, capsys: pytest.CaptureFixture[str]
) -> None:
    laptop, _ = _laptop(tmp_path, ex, capsys)
    phone = _wallet(tmp_path, "phone", ex, capsys)
    fp = _pair(laptop, phone)
    code, out, _ = laptop("devices", "list")
    assert code == 0
    assert "<- this device" in out
    assert fp in out
    assert "paper" in out
    assert "phone" in out
    listed = phone.json("devices", "list")
    assert [(k["name"], k["role"], k["this_device"]) for k in listed["keys"]] == [
        ("", "device", False),
        ("paper", "recovery", False),
        ("phone", "device", True),
    ]
    assert listed["removed"] == []
    assert keystore.info(phone.path).account == keystore.info(laptop.path).public.raw
    whoami = phone.json("whoami")
    assert whoami["account"] == laptop.json("whoami")["public_key"] != whoami["public_key"]

    adv = ex.party()
    register_advertiser(adv)
    asked = request_licence(adv, keystore.info(laptop.path).public.raw).request
    code, out, err = phone("approve", asked.request_id.hex(), "--yes")
    assert code == 0, err
    on_laptop = laptop.json("licences")
    on_phone = phone.json("licences")
    assert [x["licence_id"] for x in on_laptop] == [x["licence_id"] for x in on_phone]
    assert len(on_phone) == 1
    # The laptop's audit counts the licence its phone approved as the holder's.
    for device in (laptop, phone):
        audited = device.json("audit")
        assert (audited["your_licences"], audited["problems"]) == (1, [])


def test_devices_add_waits_for_the_new_device_then_adds_it(
    tmp_path: Path,
    ex: Exchange,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from licentia.clients import party
    from licentia.keys import PrivateKey

    laptop, _ = _laptop(tmp_path, ex, capsys)
    codes: list[str] = []
    start = party.PartyClient.start_pairing

    def recorded(self: party.PartyClient):  # type: ignore[no-untyped-def]
        started = start(self)
        codes.append(started.code)
        return started

    tablet = PrivateKey.generate()

    def pause() -> None:  # the new device joins while the laptop waits
        with Holder(ex.channel(), tablet) as h:
            h.join_pairing(codes[0], "tablet")

    monkeypatch.setattr(party.PartyClient, "start_pairing", recorded)
    monkeypatch.setattr("licentia.clients.wallet.devices._pause", pause)
    code, out, err = laptop("devices", "add", "--yes")
    assert code == 0, err
    assert codes[0] in err
    assert "Added tablet" in out
    assert tablet.public.raw in {k.public for k in _key_set(laptop, ex).keys}


def test_a_stolen_device_is_removed_and_what_it_approved_revoked(
    tmp_path: Path, ex: Exchange, capsys: pytest.CaptureFixture[str]
) -> None:
    laptop, _ = _laptop(tmp_path, ex, capsys)
    phone = _wallet(tmp_path, "phone", ex, capsys)
    fp = _pair(laptop, phone)
    adv = ex.party()
    register_advertiser(adv)
    account = keystore.info(laptop.path).public.raw
    by_phone = request_licence(adv, account).request
    by_laptop = request_licence(adv, account).request
    assert phone("approve", by_phone.request_id.hex(), "--yes")[0] == 0
    assert laptop("approve", by_laptop.request_id.hex(), "--yes")[0] == 0
    rule = phone.json(
        "rules",
        "add",
        "--categories",
        "image",
        "--purposes",
        "marketing",
        "--media",
        "online",
        "--territories",
        "FR",
        "--min-price-per-day",
        "5.00",
    )
    phone_lid, phone_token = next(
        (x["licence_id"], x["token"])
        for x in laptop.json("licences")
        if x["request_id"] == by_phone.request_id.hex()
    )
    # The phone consented under the holder's pseudonym for the advertiser, not its own key:
    # what it approved is still found by its key below (the exchange records the device).
    named = parse_token(phone_token).holder_key
    assert named not in (keystore.info(phone.path).public.raw, account)

    # Under --yes the cause must be said (misuse: 2); nothing was removed.
    assert laptop("devices", "remove", fp, "--yes")[0] == 2
    assert laptop("devices", "remove", fp, "--retired", "--revoke", "--yes")[0] == 2
    code, _, err = laptop("devices", "remove", "ed25519:" + "A" * 43, "--retired", "--yes")
    assert code == 1
    done = laptop.json("devices", "remove", fp[:5], "--compromised", "--revoke", "--yes")
    assert done["cause"] == "compromised"
    assert [x["licence_id"] for x in done["licences"]] == [phone_lid]
    assert len(done["rules"]) == 1
    assert done["revoked"] is True
    states = {x["licence_id"]: x["state"] for x in laptop.json("licences")}
    assert states[phone_lid] == "LICENCE_STATE_REVOKED"
    assert sorted(states.values()) == ["LICENCE_STATE_ACTIVE", "LICENCE_STATE_REVOKED"]
    rules = laptop.json("rules", "list")
    assert [bool(r.get("withdrawn_at")) for r in rules] == [True]
    assert rule
    # The phone is out: its next command says so plainly.
    code, _, err = phone("licences")
    assert code == 1
    assert "KEY_REMOVED" in err
    assert "was removed from your account" in err
    listed = laptop.json("devices", "list")
    assert [(r["name"], r["cause"]) for r in listed["removed"]] == [("phone", "compromised")]


def test_recover_on_a_new_machine_then_revoke_what_the_old_laptop_approved(
    tmp_path: Path, ex: Exchange, capsys: pytest.CaptureFixture[str]
) -> None:
    laptop, words = _laptop(tmp_path, ex, capsys)
    adv = ex.party()
    register_advertiser(adv)
    account = keystore.info(laptop.path).public.raw
    asked = request_licence(adv, account).request
    assert laptop("approve", asked.request_id.hex(), "--yes")[0] == 0
    sequence = _key_set(laptop, ex).sequence

    new = _wallet(tmp_path, "new", ex, capsys)
    phrase_file = tmp_path / "words.txt"
    # A mistyped word: its position is named and nothing reaches the exchange.
    typo = words.split()
    typo[4] = typo[4][:-1] + ("x" if typo[4][-1] != "x" else "y") + "qq"
    phrase_file.write_text(" ".join(typo) + "\n")
    code, _, err = new("recover", "--phrase-file", str(phrase_file))
    assert code == 1
    assert "word 5" in err
    assert "nothing was sent" in err
    assert not new.path.exists()
    # A valid phrase of no account.
    phrase_file.write_text(phrase.new_phrase(secrets.token_bytes(16)))
    code, _, err = new("recover", "--phrase-file", str(phrase_file))
    assert code == 1
    assert "belongs to no account on this exchange" in err
    # Alice's phrase, but the wrong handle.
    phrase_file.write_text(words.upper() + "\n")
    code, _, err = new("recover", "--phrase-file", str(phrase_file), "--handle", "bob")
    assert code == 1
    assert "this phrase is for another account (handle alice), not bob" in err
    assert _key_set(laptop, ex).sequence == sequence  # no change was sent
    assert not new.path.exists()

    done = new.json(
        "recover", "--phrase-file", str(phrase_file), "--handle", "alice", "--name", "new laptop"
    )
    assert done["cause"] == "compromised"
    (gone,) = done["removed"]
    assert keystore.info(new.path).account == account
    code, _, err = laptop("licences")
    assert code == 1
    assert "KEY_REMOVED" in err
    assert len(new.json("licences")) == 1
    # Later: what the old laptop approved, reviewed then revoked (a removed key).
    assert new("devices", "revoke-consents", gone["fingerprint"], "--since", "yesterday")[0] == 2
    code, out, _ = new("devices", "revoke-consents", gone["fingerprint"], "--since", "2100-01-01")
    assert code == 0
    assert "consented to nothing still in force since 2100-01-01" in out
    code, out, err = new("devices", "revoke-consents", gone["fingerprint"], "--yes")
    assert code == 0, err
    assert "Who:         Acme Ads" in err  # the list, shown before revoking
    assert "Revoked 1 licence(s)" in out
    assert [x["state"] for x in new.json("licences")] == ["LICENCE_STATE_REVOKED"]
    listed = new.json("devices", "list")
    assert [(k["name"], k["this_device"]) for k in listed["keys"]] == [
        ("new laptop", True),
        ("paper", False),
    ]


def test_recover_as_a_real_process_takes_well_under_a_minute(
    tmp_path: Path, ex: Exchange, capsys: pytest.CaptureFixture[str]
) -> None:
    _, words = _laptop(tmp_path, ex, capsys)
    phrase_file = tmp_path / "words.txt"
    phrase_file.write_text(words + "\n")
    env = {
        **os.environ,
        "LICENTIA_WALLET": str(tmp_path / "new.json"),
        "LICENTIA_SERVER": ex.address,
    }
    began = time.monotonic()
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "licentia.clients.wallet.cli",
            "--insecure",
            "recover",
            "--phrase-file",
            str(phrase_file),
            "--retired",
            "--passphrase-file",
            "-",
            "--json",
        ],
        input=PASS + "\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    took = time.monotonic() - began
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["cause"] == "retired"
    assert took < 20, took


def test_a_wallet_file_from_before_accounts_still_opens_as_its_own_account(
    tmp_path: Path, ex: Exchange, capsys: pytest.CaptureFixture[str]
) -> None:
    w = _wallet(tmp_path, "old", ex, capsys)
    assert w("init", "--no-recovery")[0] == 0
    # As an older wallet wrote it: its box holds the seed alone (no holder secret), and no
    # account.
    device = keystore.open_wallet(w.path, PASS)
    keystore.create(w.path, PASS, force=True, key=device)
    doc = json.loads(w.path.read_text())
    del doc["account"]
    w.path.write_text(json.dumps(doc))
    info = keystore.info(w.path)
    assert info.account == info.public.raw
    assert info.pending is None
    assert keystore.unlock(w.path, PASS).holder_secret is None
    set_up(w, tmp_path, "olga")
    assert w.json("devices", "list")["keys"][0]["this_device"] is True
    # Its holder secret comes from its device seed; it approves with that secret's key for
    # the advertiser.
    adv = ex.party()
    register_advertiser(adv)
    asked = request_licence(adv, device.public.raw).request
    assert w("approve", asked.request_id.hex(), "--yes")[0] == 0
    (issued,) = w.json("licences")
    secret = pairwise.holder_secret_from_device_seed(device.seed)
    expected = pairwise.pairwise_key(secret, adv.key.public.raw).public
    assert parse_token(issued["token"]).claims.holder == expected


def test_a_recovery_key_that_could_not_be_added_is_added_by_a_retry(
    tmp_path: Path,
    ex: Exchange,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import grpc  # type: ignore[import-untyped]

    from licentia.clients import party
    from licentia.clients.channel import ExchangeError
    from licentia.errors import Reason

    def down(self: party.PartyClient, change: object) -> None:
        raise ExchangeError(Reason.UNAVAILABLE, grpc.StatusCode.UNAVAILABLE, "the exchange is down")

    w = _wallet(tmp_path, "laptop", ex, capsys)
    words = w.json("init", "--yes")["recovery_phrase"]
    with monkeypatch.context() as m:
        m.setattr(party.PartyClient, "change_key_set", down)
        code, _, err = w("register", "--handle", "alice")
    assert code == 1
    assert "Registered as alice" in err
    assert "could not be added" in err
    assert "licentia-wallet recovery add" in err
    assert keystore.info(w.path).pending is not None
    assert _key_set(w, ex).recovery is None
    code, out, err = w("register", "--handle", "alice")  # a retry adds only the key
    assert code == 0, err
    assert "added your recovery key" in out
    recovery = _key_set(w, ex).recovery
    assert recovery is not None
    assert recovery.public == phrase.recovery_key_from_phrase(words).public.raw
    code, _, err = w("recovery", "add")
    assert code == 1
    assert "has a recovery key already" in err

    # A wallet made without a phrase gets one later.
    bare = _wallet(tmp_path, "bare", ex, capsys)
    assert bare("init", "--no-recovery")[0] == 0
    assert bare("register", "--handle", "bob")[0] == 0
    added = bare.json("recovery", "add", "--yes")
    paper = phrase.recovery_key_from_phrase(added["recovery_phrase"])
    recovery = _key_set(bare, ex).recovery
    assert recovery is not None
    assert recovery.public == paper.public.raw


def test_recover_asks_the_phrase_hidden_and_names_a_mistyped_word(
    tmp_path: Path,
    ex: Exchange,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import getpass
    import io

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    laptop, words = _laptop(tmp_path, ex, capsys)
    sequence = _key_set(laptop, ex).sequence
    asked: list[str] = []
    typed = words.split()
    typed[7] = "zzzz"

    def hidden(prompt: str = "") -> str:
        asked.append(prompt)
        return " ".join(typed)

    monkeypatch.setattr(getpass, "getpass", hidden)
    monkeypatch.setattr(sys, "stdin", Terminal())
    new = _wallet(tmp_path, "new", ex, capsys)
    code, _, err = new("recover")
    assert code == 1
    assert asked == ["Your 12 words (not shown as you type): "]
    assert "word 8" in err
    assert _key_set(laptop, ex).sequence == sequence
    typed[7] = words.split()[7]
    code, out, err = new("recover", "--handle", "alice")
    assert code == 0, err
    assert "Recovered your account" in out


def test_recover_with_a_new_phrase_retires_the_old_one(
    tmp_path: Path, ex: Exchange, capsys: pytest.CaptureFixture[str]
) -> None:
    _, words = _laptop(tmp_path, ex, capsys)
    phrase_file = tmp_path / "words.txt"
    phrase_file.write_text(words)
    new = _wallet(tmp_path, "new", ex, capsys)
    done = new.json("recover", "--phrase-file", str(phrase_file), "--new-phrase", "--yes")
    fresh = done["recovery_phrase"]
    assert fresh != words
    recovery = _key_set(new, ex).recovery
    assert recovery is not None
    assert recovery.public == phrase.recovery_key_from_phrase(fresh).public.raw
    again = _wallet(tmp_path, "again", ex, capsys)
    code, _, err = again("recover", "--phrase-file", str(phrase_file))  # the old phrase
    assert code == 1
    assert "belongs to no account on this exchange (any more" in err
    phrase_file.write_text(fresh)
    assert again.json("recover", "--phrase-file", str(phrase_file))["cause"] == "compromised"
