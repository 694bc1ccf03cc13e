"""Retention and account erasure against a real exchange: the sweep (on SQLite and
PostgreSQL), and ``licentia-wallet delete-account`` through ``main(argv)``."""

from __future__ import annotations

import base64
import json
import sys
import time
from pathlib import Path
from typing import Any, cast

import pytest

from licentia import sealed
from licentia.checkpoint import vkey
from licentia.clients.auditor.cli import main as audit_main
from licentia.clients.channel import SignedChannel
from licentia.clients.wallet import keystore
from licentia.erasure import verify_erasure_receipt
from licentia.errors import LicentiaError, Reason
from licentia.keys import IssuerKey, IssuerKeySet, PrivateKey, PublicKey
from licentia.services import retention, server
from licentia.services.deps import Settings
from licentia.v1 import exchange_pb2, licences_pb2, records_pb2, registry_pb2, transparency_pb2

from .exchange_harness import (
    DAY,
    FUNDS,
    Exchange,
    ExchangeError,
    Party,
    approve_request,
    photo_use,
    register_advertiser,
    register_holder,
    register_platform,
    report_use,
    request_licence,
    revoke_licence,
    start_exchange,
    wait_for,
)
from .log_harness import entries
from .wallet_harness import PASS, Wallet, set_up

KEEP = 90 * DAY


def _postings(ex: Exchange, licence_id: bytes) -> list[tuple[Any, ...]]:
    store: Any = ex.app.deps.store
    return [
        tuple(bytes(v) if isinstance(v, memoryview) else v for v in r)
        for r in store._rows(
            "SELECT p.id, p.kind, p.at, e.account_kind, e.account_key, e.amount FROM postings p"
            " JOIN entries e ON e.posting_id = p.id WHERE p.licence_id = ? ORDER BY p.id, 4, 6",
            (licence_id,),
        )
    ]


def _licence(p: Party, licence_id: bytes) -> Any:
    return p.call(
        licences_pb2,
        "GetLicence",
        licences_pb2.GetLicenceRequest(licence_id=licence_id),
        licences_pb2.GetLicenceResponse,
    ).licence


def _export(p: Party) -> registry_pb2.ExportDataResponse:
    return p.call(
        registry_pb2,
        "ExportData",
        registry_pb2.ExportDataRequest(),
        registry_pb2.ExportDataResponse,
    )


@pytest.mark.parametrize("ex", ["sqlite", "postgres"], indirect=True)
def test_retention_erases_finished_requests_and_licences_and_keeps_the_ledger(
    ex: Exchange,
) -> None:
    holder, adv = ex.party(), ex.party()
    register_holder(holder)
    register_advertiser(adv)
    key = holder.key.public.raw
    declined = request_licence(adv, key).request
    holder.call(
        exchange_pb2,
        "DeclineRequest",
        exchange_pb2.DeclineRequestRequest(request_id=declined.request_id, reason="not you"),
        exchange_pb2.DeclineRequestResponse,
    )
    pending = request_licence(adv, key, days=10).request  # expires unanswered
    revoked = approve_request(holder, request_licence(adv, key, days=10).request).licence
    revoke_licence(holder, revoked.licence_id)
    running = approve_request(holder, request_licence(adv, key, days=30).request).licence
    store = ex.app.deps.store
    ledger_before = _postings(ex, revoked.licence_id)
    assert ledger_before
    now = int(time.time())

    # Not yet: nothing has been finished for 90 days; the licence whose term ended
    # unsettled has its money closed (that is a money movement: its period starts now).
    first = retention.sweep(store, now + KEEP - 60, KEEP)
    assert (first.closed, first.licences, first.requests) == (1, 0, 0)
    later = now + KEEP + 60
    done = retention.sweep(store, later, KEEP, batch=1)  # bounded batches, one row each
    assert (done.closed, done.licences, done.requests) == (0, 1, 1)
    assert retention.sweep(store, later, KEEP).total == 0  # idempotent
    # The unanswered request expired 7 days after it was made: its period runs from then.
    assert retention.sweep(store, pending.expires_at + KEEP + 60, KEEP).requests == 1

    gone = _licence(holder, revoked.licence_id)
    assert gone.erased
    assert (gone.token, gone.consent_key, gone.licensee_device_key) == ("", b"", b"")
    assert (gone.licence_id, gone.holder_key, gone.licensee_key) == (
        revoked.licence_id,
        key,
        adv.key.public.raw,
    )
    assert (gone.issued_at, gone.not_after, gone.status_index) == (
        revoked.issued_at,
        revoked.not_after,
        revoked.status_index,
    )
    assert gone.state == records_pb2.LICENCE_STATE_REVOKED
    # The licence whose money moved at this sweep keeps everything until its own period.
    kept = _licence(adv, running.licence_id)
    assert not kept.erased
    assert kept.token == running.token
    export = _export(holder)
    by_id = {r.request_id: r for r in export.requests}
    for r in (by_id[declined.request_id], by_id[pending.request_id]):
        assert r.erased
        assert (r.claims, r.reason, r.message) == (b"", "", "")
    assert by_id[pending.request_id].state == records_pb2.REQUEST_STATE_EXPIRED
    assert not by_id[running.request_id].erased
    listed = {x.licence_id: x for x in export.licences}
    assert listed[revoked.licence_id].erased
    assert not listed[running.licence_id].erased
    assert _postings(ex, revoked.licence_id) == ledger_before
    # Her money is in her export too (the running licence's term, paid when it was closed).
    assert running.licence_id in {x.licence_id for x in export.ledger}
    assert store.ledger_check() == []

    assert retention.sweep(store, now + 2 * KEEP + 60, KEEP).licences == 1
    assert _licence(adv, running.licence_id).erased
    assert store.ledger_check() == []


def _log_key(ex: Exchange) -> str:
    key = PrivateKey.from_seed((ex.data_dir / "log.key").read_bytes())
    return vkey(ex.app.deps.settings.log_origin, key.public)


def _holder_party(ex: Exchange, w: Wallet) -> Party:
    key = keystore.open_wallet(w.path, PASS)
    return Party(key, SignedChannel(ex.channel(), key), ex)


def test_delete_account_revokes_erases_refuses_her_keys_and_signs_a_receipt(
    instant_ex: Exchange,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ex = instant_ex
    wallet = Wallet(tmp_path, ex.address, capsys)
    assert wallet("init", "--yes")[0] == 0
    set_up(wallet, tmp_path)
    she = _holder_party(ex, wallet)
    key = she.key.public.raw
    adv, platform = ex.party(), ex.party()
    register_advertiser(adv)
    register_platform(platform)
    store = ex.app.deps.store
    used = approve_request(she, request_licence(adv, key, max_uses=2, price_per_use=500).request)
    later = request_licence(adv, key, now=int(time.time()) + DAY).request  # not started yet
    assert wallet("approve", later.request_id.hex(), "--yes")[0] == 0
    later_row = store.request(later.request_id)
    assert later_row is not None
    later_id = later_row.licence_id
    request_licence(adv, key, days=5)  # left pending
    code, _, err = wallet(
        "rules", "add", "--categories", "image", "--purposes", "marketing", "--media",
        "online", "--territories", "EU", "--min-price-per-day", "1.00",
    )  # fmt: skip
    assert code == 0, err
    assert wallet("payouts", "add", "FR76 0001")[0] == 0
    report_use(platform, adv, used.licence.token, photo_use())  # she earns 4.50

    def unchanged() -> None:
        assert wallet.path.exists()
        assert len(store.assets(key)) == 1
        assert store.terms(key) is not None
        assert [x.revoked_at for x in store.licences_of(key, before_issued=1 << 62, limit=9)] == [
            0,
            0,
        ]

    # Not confirmed: refused, nothing changed (no terminal here, and no --yes).
    code, _, err = wallet("delete-account")
    assert code == 1
    assert "confirm with --yes" in err
    unchanged()
    # On a terminal she must type her handle: anything else deletes nothing.
    with monkeypatch.context() as m:
        m.setattr(sys.stdin, "isatty", lambda: True)
        m.setattr("builtins.input", lambda prompt: "alicia")
        code, _, err = wallet("delete-account")
    assert code == 1
    assert "the handle typed is not yours: nothing was deleted" in err
    unchanged()
    # Money owed to her: refused with the amount and what to do, nothing changed.
    code, _, err = wallet("delete-account", "--yes")
    assert code == 1
    assert "BALANCE_OWED: 450 minor units are owed" in err
    assert "withdraw it all" in err
    unchanged()

    assert wallet("withdraw", "4.50", "--to", "FR76 0001")[0] == 0
    store = ex.app.deps.store
    log_key, _ = store.account_log(key)  # what her audit would use: erased with her account
    receipt_file = tmp_path / "receipt.json"
    code, out, err = wallet("delete-account", "--yes", "--receipt", str(receipt_file))
    assert code == 0, err
    assert "revoked 2 licence(s), erased 1 asset(s)" in out
    assert not wallet.path.exists()  # removed only once the exchange confirmed

    # The receipt verifies against the exchange's issuer keys, over its exact bytes.
    doc = json.loads(receipt_file.read_text())
    signed = registry_pb2.SignedErasureReceipt.FromString(
        base64.b64decode(doc["signed_receipt_base64"])
    )
    issuers = IssuerKeySet(
        IssuerKey(PublicKey(k.public_key), k.not_before, k.not_after or None)
        for k in store.issuer_keys()
    )
    receipt = verify_erasure_receipt(signed, issuers, key)
    assert set(receipt.revoked_licence_ids) == {used.licence.licence_id, later_id}
    assert "parties" in receipt.erased
    assert receipt.assets_erased == 1
    tampered = registry_pb2.SignedErasureReceipt()
    tampered.CopyFrom(signed)
    tampered.receipt = signed.receipt[:-1] + bytes([signed.receipt[-1] ^ 1])
    with pytest.raises(LicentiaError) as bad:
        verify_erasure_receipt(tampered, issuers, key)
    assert bad.value.reason == Reason.BAD_SIGNATURE

    # Everything about her is gone but the ledger; the advertiser got back what she had not
    # earned (the unstarted licence whole, the second use of the first).
    assert store.party(key) is None
    assert store.key_owner(key) is None
    assert (store.assets(key), store.terms(key), store.rules(key)) == ([], None, [])
    assert store.payout_destinations(key) == []
    assert store.requests_for_holder(key, include_answered=True, limit=9) == []
    mine = store.licences_of(key, before_issued=1 << 62, limit=9)
    assert all(x.revoked_at and not x.token for x in mine)
    adv_after = store.statement(store.party(adv.key.public.raw), 0, 1)  # type: ignore[arg-type]
    assert (adv_after.available, adv_after.pending) == (FUNDS - 500, 0)
    assert store.ledger_check() == []
    for lid in (used.licence.licence_id, later_id):
        assert _licence(adv, lid).erased  # the advertiser still sees what is left

    # Her keys are refused, clearly: a second deletion, any call, a new registration.
    for name, req, resp in (
        ("DeleteAccount", registry_pb2.DeleteAccountRequest(), registry_pb2.DeleteAccountResponse),
        ("GetProfile", registry_pb2.GetProfileRequest(), registry_pb2.GetProfileResponse),
        (
            "RegisterHolder",
            registry_pb2.RegisterHolderRequest(handle="alice2"),
            registry_pb2.RegisterHolderResponse,
        ),
    ):
        with pytest.raises(ExchangeError) as refused:
            she.call(registry_pb2, name, req, resp)
        assert refused.value.reason == Reason.ACCOUNT_ERASED, name

    # The log says so, sealed to her account: the erasure and its revocations carry her
    # signed call (opened here with the key the exchange held); the exchange no longer
    # holds that key, so nobody can open them again; an independent audit of the whole log
    # finds nothing wrong.
    window = sealed.TagWindow(log_key)
    logged = []
    for raw in (r for _, r, _ in store.log_entries(0, store.log_size())):
        entry = transparency_pb2.LogEntry.FromString(raw)
        j = window.match(entry.sealed) if entry.HasField("sealed") else None
        if j is not None:
            logged.append(sealed.open_entry(log_key, j, entry.sealed))
    assert not any(e.HasField("account_erasure") for e in entries(ex))  # none in clear
    assert cast(Any, store)._rows("SELECT 1 FROM account_logs WHERE account = ?", (key,)) == []
    erasures = [e for e in logged if e.WhichOneof("kind") == "account_erasure"]
    assert [e.account_erasure.request.key for e in erasures] == [key]
    assert [
        e.revocation.licence_id
        for e in logged
        if e.WhichOneof("kind") == "revocation"
        and e.revocation.cause == licences_pb2.TERMINATION_CAUSE_ERASED
    ] == list(receipt.revoked_licence_ids)
    assert isinstance(erasures[0], transparency_pb2.LogEntry)
    capsys.readouterr()
    argv = ["--server", ex.address, "--log-key", _log_key(ex), "--state-dir", str(tmp_path / "a")]
    assert audit_main([*argv, "--json"]) == 0, capsys.readouterr().out


def test_the_server_sweeps_on_its_own_and_the_flag_is_checked(tmp_path: Path) -> None:
    assert server._parser().parse_args(["serve"]).retention_days == 90
    for bad in ("-1", "nan", "40000"):
        code = server.main(["--retention-days", bad, "--data-dir", str(tmp_path / "d")])
        assert code == 2, bad
    ex = start_exchange(
        tmp_path / "data",
        settings=Settings(heartbeat_seconds=0.5, retention_seconds=0),
        sweep_seconds=0.1,
    )
    try:
        holder, adv = ex.party(), ex.party()
        register_holder(holder)
        register_advertiser(adv)
        asked = request_licence(adv, holder.key.public.raw).request
        holder.call(
            exchange_pb2,
            "DeclineRequest",
            exchange_pb2.DeclineRequestRequest(request_id=asked.request_id, reason="no"),
            exchange_pb2.DeclineRequestResponse,
        )

        def erased() -> bool:
            row = ex.app.deps.store.request(asked.request_id)
            return row is not None and row.claims == b""

        wait_for(erased, 10)
    finally:
        ex.stop()
