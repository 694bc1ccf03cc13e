"""Status lists without a ceiling (docs/token-format.md §7), end to end: an exchange whose
lists hold 4 licences issues past several lists' ends, in two expiry epochs; revocations in
several lists reach Verify, an inline verifier and a verify-only replica; once the first
epoch has ended, a cold-started verifier's snapshot no longer carries its lists, and a
licence naming one is DENY STATUS_LIST_DROPPED."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from licentia.errors import Reason
from licentia.presentation import present
from licentia.services import server
from licentia.services.app import build
from licentia.services.deps import Settings
from licentia.services.runtime import ServerSettings, start
from licentia.status import LIST_GRACE_SECONDS, verify_snapshot
from licentia.token import parse_token
from licentia.v1 import licences_pb2, verification_pb2

from .exchange_harness import (
    Exchange,
    ExchangeError,
    ManualClock,
    Party,
    SignedChannel,
    approve_request,
    issue_licence,
    photo_use,
    reasons,
    registered,
    request_licence,
    revoke_licence,
    start_replica,
    start_verifier,
    verify,
    wait_for,
)

LOG = logging.getLogger("licentia.test")


def _verify_at(ex: Exchange, platform: Party, adv: Party, token: str, now: int) -> list[Reason]:
    """Verify at the exchange, signed and presented at the exchange's time ``now``."""
    caller = Party(platform.key, SignedChannel(ex.channel(), platform.key, clock=lambda: now))
    lid = parse_token(token).licence_id
    resp = caller.call(
        verification_pb2,
        "Verify",
        verification_pb2.VerifyRequest(
            token=token,
            presentation=present(adv.key, lid, "photoshare", photo_use(), now),
            use=photo_use().to_proto(),
        ),
        verification_pb2.VerifyResponse,
    )
    return reasons(resp)


def test_lists_of_four_in_two_epochs_revoke_everywhere_and_ended_lists_are_dropped(
    tmp_path: Path,
) -> None:
    clock = ManualClock()
    settings = Settings(heartbeat_seconds=0.5, status_list_size=4)  # 7-day epochs
    app = build(tmp_path / "data", settings=settings, log=LOG, clock=clock)
    ex = Exchange(
        tmp_path / "data",
        app,
        start(ServerSettings(address="127.0.0.1:0"), app.handlers, app.service_names, LOG),
        clock=clock,
    )
    try:
        holder, adv, platform = registered(ex)
        short = [issue_licence(holder, adv, days=3).token for _ in range(6)]
        long = [issue_licence(holder, adv, days=40).token for _ in range(5)]
        slots = [(parse_token(t).status_list, parse_token(t).status_index) for t in short + long]
        assert len(set(slots)) == 11
        assert all(0 <= i < 4 for _, i in slots)  # never past a list's end
        lists = sorted({lst for lst, _ in slots})
        assert len(lists) == 4  # 6 + 5 licences in lists of 4, by epoch: 4 + 2, 4 + 1
        assert {parse_token(t).status_list for t in short}.isdisjoint(
            parse_token(t).status_list for t in long
        )
        revoked = [short[0], short[5], long[0], long[4]]  # one in each list
        assert len({parse_token(t).status_list for t in revoked}) == 4

        verifier, channel = start_verifier(ex.address, "photoshare")
        replica = start_replica(ex.address)
        try:
            for t in revoked:
                revoke_licence(holder, parse_token(t).licence_id)
            wait_for(lambda: verifier.sequence == 4 == replica.app.follower.sequence, 5)
            at_replica = replica.party(platform.key)
            for t in short + long:
                want = [Reason.REVOKED] if t in revoked else []
                assert reasons(verify(platform, adv, t, photo_use())) == want
                assert reasons(verify(at_replica, adv, t, photo_use())) == want
                lid = parse_token(t).licence_id
                pres = present(adv.key, lid, "photoshare", photo_use(), clock.now())
                assert list(verifier.check(t, pres, photo_use()).reasons) == want
        finally:
            replica.stop()
            verifier.close()
            channel.close()

        # The first epoch ends, and a day's grace after it its lists are dropped.
        first = {parse_token(t).status_list for t in short}
        snap = verify_snapshot(
            ex.app.deps.hub.snapshot().signed, ex.app.deps.keyring.key_set
        )  # taken now: every list
        assert [x.list_id for x in snap.lists] == lists
        ends = max(x.expires_at for x in snap.lists if x.list_id in first)
        clock.offset = ends + LIST_GRACE_SECONDS + 60 - int(clock.now() - clock.offset)
        now = clock.now()
        cold, channel = start_verifier(ex.address, "photoshare", clock=clock.now)
        try:
            held = cold._follower.status
            assert held is not None
            assert held.view.list_ids == [lst for lst in lists if lst not in first]
            for t in short + long:
                lid = parse_token(t).licence_id
                pres = present(adv.key, lid, "photoshare", photo_use(), now)
                got = set(cold.check(t, pres, photo_use()).reasons)
                there = set(_verify_at(ex, platform, adv, t, now))
                if t in short:  # ended, in a dropped list: both say so, fail closed
                    assert got == there == {Reason.EXPIRED, Reason.STATUS_LIST_DROPPED}
                else:
                    assert got == there == ({Reason.REVOKED} if t in revoked else set())
        finally:
            cold.close()
            channel.close()
        raw = ex.party().call(
            licences_pb2,
            "GetStatusSnapshot",
            licences_pb2.GetStatusSnapshotRequest(),
            licences_pb2.GetStatusSnapshotResponse,
        )
        keys = ex.app.deps.keyring.key_set
        served = verify_snapshot(raw.snapshot.SerializeToString(deterministic=True), keys)
        assert [x.list_id for x in served.lists] == [lst for lst in lists if lst not in first]
    finally:
        ex.stop()


def test_the_status_list_flags_are_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = server._parser().parse_args(["serve", "--status-list-size", "4"])
    assert (args.status_list_size, args.status_epoch_days) == (4, 7)
    for flag, bad in (
        ("--status-list-size", "0"),
        ("--status-list-size", str((1 << 26) + 1)),
        ("--status-epoch-days", "0"),
        ("--status-epoch-days", "3651"),
    ):
        assert server.main([flag, bad, "--data-dir", str(tmp_path / "d")]) == 2, bad
        assert flag in capsys.readouterr().err
    assert not (tmp_path / "d").exists()  # refused before anything was made


def test_a_request_drafted_in_the_legacy_list_is_not_issued_past_that_lists_end(
    ex: Exchange, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request drafted before the lists were sharded names list 0, which ended with the
    last licence issued before (m014). Approved afterwards, its licence would outlive its
    list, and every verifier would answer STATUS_LIST_DROPPED once the list ended: it is
    refused at approval instead (the advertiser asks again), and nothing is issued."""
    holder, adv, _ = registered(ex)
    store = ex.app.deps.store
    monkeypatch.setattr(store, "reserve_status_slot", lambda *a, **kw: (0, 7))
    old = request_licence(adv, holder.key.public.raw, days=30).request
    monkeypatch.undo()
    with pytest.raises(ExchangeError) as e:
        approve_request(holder, old)
    assert e.value.reason == Reason.STATUS_LIST_DROPPED
    assert "ask again" in str(e.value)
    assert store.licences_of(holder.key.public.raw, before_issued=2**62, limit=10) == []
    assert parse_token(issue_licence(holder, adv, days=30).token).status_list > 0  # asks again
