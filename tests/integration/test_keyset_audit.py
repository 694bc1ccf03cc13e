"""Key sets in the public log, against a real exchange: the wallet's audit and the independent
auditor check a holder's chain of key-set changes, and find a key the exchange added on its
own (issue 18, "Done when": "The audit finds a key the exchange added on its own").

The exchange misbehaves here as someone with its database (or its code) could: it plants a
key in the holder's account without any logged change, or it forges a change signed by a key
that is not hers and logs it. Both are caught; neither needs the holder to trust the
exchange, only her account id and the log key.

Since token v2 an account's key-set changes are sealed to it in the log: the wallet's audit
finds and opens them with the account's log key; the independent auditor counts them as
sealed entries and can no longer check the chain (it has nothing to flag there).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any, cast

import pytest

from licentia import keys, keyset
from licentia.checkpoint import vkey
from licentia.clients.auditor.cli import main as audit_main
from licentia.clients.channel import SignedChannel
from licentia.clients.holder import Holder
from licentia.clients.logcheck import REVOKE_METHOD
from licentia.clients.wallet import keystore
from licentia.keys import PrivateKey
from licentia.request import request_payload
from licentia.services.app import OPERATOR_KEY_FILE
from licentia.services.model import Cause
from licentia.v1 import accounts_pb2, licences_pb2, transparency_pb2
from licentia.vocabulary import DataCategory, Medium, Purpose

from .exchange_harness import (
    PHOTO,
    Exchange,
    Party,
    approve_request,
    register_advertiser,
    request_licence,
)
from .log_harness import append
from .wallet_harness import PASS, Wallet


def log_key(ex: Exchange) -> str:
    """The exchange's log verifier key, as its operator would publish it."""
    key = PrivateKey.from_seed((ex.data_dir / "log.key").read_bytes())
    return vkey(ex.app.deps.settings.log_origin, key.public)


@pytest.fixture
def alice(tmp_path: Path, ex: Exchange, capsys: pytest.CaptureFixture[str]) -> Wallet:
    """A registered holder's wallet with a recovery key and a phone added (two honest,
    logged changes)."""
    w = Wallet(tmp_path, ex.address, capsys)
    assert w("init", "--no-recovery")[0] == 0
    code, _, err = w("register", "--handle", "alice", "--name", "Alice")
    assert code == 0, err
    with Holder.connect(ex.address, _key(w)) as h:
        h.add_recovery_key(PrivateKey.generate(), "paper")
        h.add_device(PrivateKey.generate(), "phone")
    return w


def _key(w: Wallet) -> PrivateKey:
    return keystore.open_wallet(w.path, PASS)


def _auditor(ex: Exchange, state: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """The independent auditor's report (``--json``), with its exit status."""
    capsys.readouterr()
    argv = ["--server", ex.address, "--log-key", log_key(ex), "--state-dir", str(state)]
    code = audit_main([*argv, "--json"])
    report = json.loads(capsys.readouterr().out)
    report["exit"] = code
    return cast(dict[str, Any], report)


def _wallet_audit(w: Wallet) -> tuple[int, str, dict[str, Any]]:
    """The wallet's audit: its exit status, its text, and its ``--json`` document."""
    code, out, _ = w("audit")
    again, doc, _ = w("audit", "--json")
    assert again == code
    return code, out, json.loads(doc)


def test_an_honest_chain_passes_both_audits_and_each_change_is_shown(
    alice: Wallet, ex: Exchange, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, doc = _wallet_audit(alice)
    assert code == 0, out
    assert "Your key set: 2 change(s) in the public log:" in out
    assert "#1 " in out
    assert "ADD_KEY adds recovery key ed25519:" in out
    assert '"paper"' in out
    assert "ADD_KEY adds device key ed25519:" in out
    assert '"phone"' in out
    assert doc["problems"] == []
    assert [c["kind"] for c in doc["key_set"]["changes"]] == ["ADD_KEY", "ADD_KEY"]
    assert doc["key_set"]["changes"][1]["added"][0]["name"] == "phone"

    report = _auditor(ex, tmp_path / "auditor", capsys)
    assert report["exit"] == 0, report["problems"]
    assert (report["checked"]["key_set_changes"], report["checked"]["sealed"]) == (0, 2)

    # A third change, checked by the next runs from where the last ones stopped.
    with Holder.connect(ex.address, _key(alice)) as h:
        phone = next(k for k in h.key_set().current.keys if k.name == "phone")
        h.remove_key(phone.public, compromised=True)
    code, out, doc = _wallet_audit(alice)
    assert code == 0, out
    assert "REMOVE_KEY removes device key" in out
    assert "(compromised)" in out
    report = _auditor(ex, tmp_path / "auditor", capsys)
    assert report["exit"] == 0, report["problems"]
    assert report["checked"]["sealed"] == 1
    assert report["totals"]["sealed"] == 3


def test_a_key_the_exchange_plants_in_its_database_is_found_by_the_wallet(
    alice: Wallet,
    ex: Exchange,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The exchange adds a key to Alice's account in its database only, bypassing the rules:
    a row in ``account_keys`` (so the key authenticates calls as her: shown below) and no
    change, logged or stored. GetKeySet states the set from the last stored change, so a
    store that lies must also answer GetKeySet with the key: the store's ``key_set`` is
    wrapped (on this store object only) to add it to the current set — exactly what the
    holder would be served by an exchange whose database has the key. The log is untouched,
    so the independent auditor has nothing to see; the wallet, comparing the set the
    exchange states with the chain in the log, finds the key no logged change added."""
    store = cast(Any, ex.app.deps.store)
    account = _key(alice).public.raw
    planted = PrivateKey.generate()
    now = int(time.time())

    def plant(c: Any) -> None:
        c.execute(
            "INSERT INTO account_keys (public_key, account, role, name, added_seq, added_at,"
            " removed_seq, removed_at, cause) VALUES (?, ?, ?, ?, 2, ?, 0, 0, 0)",
            (planted.public.raw, account, int(keyset.DEVICE), "support", now),
        )

    store._transact(plant)
    honest = store.key_set

    def key_set(who: bytes) -> Any:
        state = honest(who)
        if who != account:
            return state
        extra = keyset.AccountKey(planted.public.raw, keyset.DEVICE, "support")
        current = dataclasses.replace(state.current, keys=(*state.current.keys, extra))
        return dataclasses.replace(state, current=current)

    monkeypatch.setattr(store, "key_set", key_set)
    with Holder.connect(ex.address, planted) as as_alice:  # the planted key signs as her
        assert as_alice.key_set_answer().account == account

    code, out, doc = _wallet_audit(alice)
    assert code == 1
    said = f"the exchange's key set has {planted.public.text} which no logged change added"
    assert said in out
    assert said in doc["problems"]
    assert _auditor(ex, tmp_path / "auditor", capsys)["exit"] == 0  # the log is honest


def test_a_change_the_exchange_forges_and_logs_fails_her_audit(
    alice: Wallet, ex: Exchange, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The exchange forges Alice's change #3, adding a key of its own, signed with its
    operator key (not a key of her set), and stores and logs it as the store does for a
    real change (the store's own ``_log_sealed`` inside ``_transact``, bypassing only the
    check). GetKeySet then serves it as part of her chain; the wallet's audit refuses change
    #3. Logged so, the independent auditor sees a sealed entry and cannot tell; logged in
    clear, it refuses it too (its chain does not start from her account's genesis)."""
    store = cast(Any, ex.app.deps.store)
    account = _key(alice).public.raw
    exchange_key = PrivateKey.from_seed((ex.data_dir / OPERATOR_KEY_FILE).read_bytes())
    planted = PrivateKey.generate()
    current = store.key_set(account).current
    joining = keyset.AccountKey(planted.public.raw, keyset.DEVICE, "support").to_proto(
        keyset.possession_proof(planted, account)
    )
    now = int(time.time())
    forged = keyset.make_change(
        current,
        exchange_key,
        keyset.ADD_KEY,
        [*(k.to_proto() for k in current.keys), joining],
        at=now,
    )

    def forge(c: Any) -> int:
        c.execute(
            "INSERT INTO key_set_changes (account, sequence, change, at) VALUES (?, 3, ?, ?)",
            (account, forged.SerializeToString(deterministic=True), now),
        )
        c.execute(
            "INSERT INTO account_keys (public_key, account, role, name, added_seq, added_at,"
            " removed_seq, removed_at, cause) VALUES (?, ?, ?, ?, 3, ?, 0, 0, 0)",
            (planted.public.raw, account, int(keyset.DEVICE), "support", now),
        )
        entry = transparency_pb2.LogEntry(key_set_change=forged)
        return int(store._log_sealed(c, account, entry, now, "key_set", account))

    index = store._transact(forge)

    code, out, doc = _wallet_audit(alice)
    assert code == 1
    assert f"change #3 of your key set (log entry {index}: ADD_KEY adds device key" in out
    assert f"signed by {exchange_key.public.text}) is refused" in out
    assert "not signed by a key of the set it replaces" in out
    assert any(p.startswith("change #3 of your key set") for p in doc["problems"])

    report = _auditor(ex, tmp_path / "auditor", capsys)
    assert (report["exit"], report["checked"]["sealed"]) == (0, 3)
    (at,) = append(ex, transparency_pb2.LogEntry(key_set_change=forged))
    report = _auditor(ex, tmp_path / "auditor", capsys)
    assert report["exit"] == 1
    (problem,) = report["problems"]
    assert (problem["kind"], problem["entry"]) == ("key_set_chain", at)
    assert problem["message"].startswith(f"change #1 of account {planted_account(account)}")
    assert "the set is at #0" in problem["message"]  # its own changes #1, #2 are sealed


def planted_account(account: bytes) -> str:
    """An account id as the reports write it."""
    from licentia.keys import PublicKey

    return PublicKey(account).text


def test_a_logged_change_the_exchange_hides_from_the_holder_fails_her_audit(
    alice: Wallet, ex: Exchange, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The exchange answers GetKeySet as if her last (logged) change had not happened: a
    chain and a set that agree with each other, so the set verifies, but the log has one
    change more (a key added behind her back would be hidden this way)."""
    store = cast(Any, ex.app.deps.store)
    account = _key(alice).public.raw
    honest = store.key_set

    def key_set(who: bytes) -> Any:
        state = honest(who)
        if who != account:
            return state
        changes = state.changes[:-1]
        signed = [accounts_pb2.SignedKeySetChange.FromString(c) for c in changes]
        current = keyset.verify_chain(account, signed)[-1]
        return dataclasses.replace(state, current=current, changes=changes)

    monkeypatch.setattr(store, "key_set", key_set)
    code, out, doc = _wallet_audit(alice)
    assert code == 1
    assert "change #2 of your key set (log entry" in out
    assert "is hidden: the exchange does not show it to you" in out
    assert any("is hidden" in p for p in doc["problems"])


def test_revocations_by_another_device_or_a_compromised_licensee_key_pass_both_audits(
    alice: Wallet, ex: Exchange, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A licence consented on one device and revoked from another is revoked by its holder; a
    licence revoked because its licensee's key was removed as compromised carries that
    account's signed ChangeKeySet. Both audits accept them; a revocation whose call is signed
    by another account is flagged by her audit (the independent auditor cannot see it)."""
    adv = ex.party()
    register_advertiser(adv)
    service = PrivateKey.generate()
    with Holder(ex.channel(), adv.key) as adv_account:
        adv_account.add_device(service, "ad server")
    bound = Party(service, SignedChannel(ex.channel(), service), ex)
    phone = PrivateKey.generate()
    with Holder.connect(ex.address, _key(alice)) as laptop:
        laptop.declare_asset(DataCategory.IMAGE, PHOTO, "portrait", upload=True)
        laptop.set_terms(
            categories=[DataCategory.IMAGE],
            purposes=[Purpose.ADVERTISING],
            media=[Medium.ONLINE],
            territories=["FR"],
            price_per_day=100,
        )
        laptop.add_device(phone, "second phone")
        with Holder(ex.channel(), phone, account=laptop.account) as on_phone:
            first = on_phone.approve(_pending(on_phone, request_licence(adv, laptop.account)))
            on_phone.approve(_pending(on_phone, request_licence(bound, laptop.account)))
        laptop.revoke(first.licence_id)  # consented on the phone, revoked from the laptop
    with Holder(ex.channel(), adv.key) as adv_account:
        assert adv_account.remove_key(service.public.raw, compromised=True).licences_revoked == 1
    code, out, doc = _wallet_audit(alice)
    assert code == 0, out
    assert doc["problems"] == []
    report = _auditor(ex, tmp_path / "auditor", capsys)
    assert report["exit"] == 0, report["problems"]
    assert report["checked"]["revocations"] == 0  # sealed to their holder

    # A revocation logged with a call signed by a key of no account of hers is flagged.
    store = ex.app.deps.store
    third = approve_request(
        Party(phone, SignedChannel(ex.channel(), phone), ex),
        _pending_raw(phone, ex, request_licence(adv, alice_account(alice))),
    ).licence
    stranger = PrivateKey.generate()
    forged = transparency_pb2.SignedCall(
        method=REVOKE_METHOD,
        body=licences_pb2.RevokeLicenceRequest(licence_id=third.licence_id).SerializeToString(),
        key=stranger.public.raw,
        timestamp=int(time.time()),
        nonce=b"\x01" * 16,
    )
    forged.signature = stranger.sign(
        keys.REQUEST, request_payload(forged.method, forged.body, forged.timestamp, forged.nonce)
    )
    store.revoke(third.licence_id, int(time.time()), Cause.REVOKED, forged.SerializeToString())
    assert _auditor(ex, tmp_path / "auditor", capsys)["exit"] == 0  # it cannot see it
    code, out, doc = _wallet_audit(alice)
    assert code == 1, out
    assert "signed by someone other than the holder" in out


def alice_account(w: Wallet) -> bytes:
    return keystore.info(w.path).account


def _pending(h: Holder, asked: Any) -> Any:
    return next(r for r in h.inbox() if r.request_id == asked.request.request_id)


def _pending_raw(device: PrivateKey, ex: Exchange, asked: Any) -> Any:
    with Holder(ex.channel(), device) as h:
        return _pending(h, asked)
