"""A verify-only replica with no database (``licentia-server --upstream``): it follows an
exchange over the wire and answers Verify as the exchange does; and the public ListPlatforms
it learns the platforms' keys from."""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped]
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc  # type: ignore[import-untyped]

from licentia import methods
from licentia.clients.holder import Holder
from licentia.errors import Reason
from licentia.keys import PrivateKey
from licentia.presentation import present
from licentia.services.app import build
from licentia.services.deps import Settings
from licentia.services.refs import SECRET_NAME
from licentia.services.replica import build_replica
from licentia.services.runtime import ServerSettings, client_channel, start
from licentia.services.server import main as server_main
from licentia.token import _signed_token, approve, parse_token
from licentia.v1 import registry_pb2, verification_pb2
from licentia.vocabulary import Purpose

from .exchange_harness import (
    DAY,
    REPLICA_STALENESS,
    Exchange,
    ExchangeError,
    ManualClock,
    Party,
    Replica,
    SignedChannel,
    fund,
    issue_licence,
    needs_openssl,
    operator_party,
    photo_use,
    reasons,
    register_advertiser,
    register_holder,
    register_platform,
    registered,
    revoke_licence,
    self_signed_certificate,
    start_replica,
    verify,
    wait_for,
)

LOG = logging.getLogger("licentia.test")
#: The replica's fail-closed bound in these tests (the exchange beats every 0.5 s).
STALENESS = REPLICA_STALENESS


def serve_exchange(data_dir: Path, address: str = "127.0.0.1:0") -> Exchange:
    """An exchange on ``address`` (a restart on the same port needs it), beating every 0.5 s."""
    app = build(data_dir, settings=Settings(heartbeat_seconds=0.5), log=LOG)
    try:
        server = start(
            ServerSettings(address=address, max_workers=64), app.handlers, app.service_names, LOG
        )
    except BaseException:
        app.close()
        raise
    return Exchange(data_dir, app, server)


@dataclass
class World:
    """An exchange, its parties and a live licence, and a replica following it."""

    ex: Exchange
    replica: Replica
    holder: Party
    adv: Party
    platform: Party
    token: str

    def at_replica(self, p: Party) -> Party:
        """``p`` calling the replica with its own key."""
        return self.replica.party(p.key)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    ex = serve_exchange(tmp_path / "data")
    replica: Replica | None = None
    try:
        holder, adv, platform = registered(ex)
        token = issue_licence(holder, adv).token
        replica = start_replica(ex.address)
        yield World(ex, replica, holder, adv, platform, token)
    finally:
        if replica is not None:
            replica.stop()
        ex.stop()


def refusal(fn: Any) -> ExchangeError:
    """The ExchangeError ``fn`` fails with (the test fails if it does not)."""
    with pytest.raises(ExchangeError) as e:
        fn()
    return e.value


def test_the_replica_decides_as_the_exchange(world: World) -> None:
    w = world
    at_replica = w.at_replica(w.platform)
    uses = [
        photo_use(),  # in scope
        photo_use(Purpose.POLITICAL_CAMPAIGN),  # a purpose the licence does not grant
        photo_use(where="US"),  # outside its territory
    ]
    for use in uses:
        there = verify(w.platform, w.adv, w.token, use)
        here = verify(at_replica, w.adv, w.token, use)
        assert (here.allowed, reasons(here)) == (there.allowed, reasons(there)), use
        assert here.licence_id == there.licence_id == parse_token(w.token).licence_id
    assert verify(at_replica, w.adv, w.token, uses[0]).allowed
    assert not verify(at_replica, w.adv, w.token, uses[1]).allowed
    # A presentation for another platform, and a token that is not one.
    wrong = verify(at_replica, w.adv, w.token, photo_use(), audience="othershop")
    assert reasons(wrong) == reasons(verify(w.platform, w.adv, w.token, photo_use(), "othershop"))
    assert not wrong.allowed
    lid = parse_token(w.token).licence_id
    garbled = verify(at_replica, w.adv, w.token[:-4] + "AAAA", photo_use(), licence_id=lid)
    # A licence the exchange signed but never logged (no promise): refused here as there.
    claims = parse_token(w.token).claims
    signer = w.ex.app.deps.keyring.private(claims.issuer_key_id)
    assert signer is not None
    unlogged_claims = dataclasses.replace(claims, licence_id=bytes(16)).encode()
    consent = approve(w.holder.key, unlogged_claims)
    unlogged = _signed_token(signer, unlogged_claims, consent, None, v2=True)
    for who in (at_replica, w.platform):
        refused_here = verify(who, w.adv, unlogged, photo_use())
        assert (refused_here.allowed, reasons(refused_here)) == (False, [Reason.NOT_LOGGED])
    assert not garbled.allowed
    # VerifyStream answers each check in order, as Verify does.
    pres = [
        present(w.adv.key, parse_token(w.token).licence_id, "photoshare", u, int(time.time()))
        for u in uses[:2]
    ]
    answers = list(
        at_replica.rpc.stream_stream(
            methods.path(verification_pb2, "VerifyStream"),
            [
                verification_pb2.VerifyRequest(token=w.token, presentation=p, use=u.to_proto())
                for p, u in zip(pres, uses[:2], strict=True)
            ],
            verification_pb2.VerifyResponse,
            timeout=5,
        )
    )
    assert [a.allowed for a in answers] == [True, False]


def test_a_revocation_at_the_exchange_reaches_the_replica(world: World) -> None:
    w = world
    at_replica = w.at_replica(w.platform)
    assert verify(at_replica, w.adv, w.token, photo_use()).allowed
    revoke_licence(w.holder, parse_token(w.token).licence_id)
    took = wait_for(
        lambda: reasons(verify(at_replica, w.adv, w.token, photo_use())) == [Reason.REVOKED], 3
    )
    assert took < 3
    assert w.replica.app.follower.sequence == 1


def test_a_platform_registered_after_the_replica_started_is_recognised(world: World) -> None:
    w = world
    late = w.ex.party()
    at_replica = w.at_replica(late)
    # Not yet registered: refused as the exchange refuses it.
    assert refusal(lambda: verify(at_replica, w.adv, w.token, photo_use())).reason == (
        Reason.UNKNOWN_KEY
    )
    register_platform(late, "lateshop")
    time.sleep(0.3)  # past the replica's reload interval (0.2 s in these tests)
    loads = w.replica.app.platforms.loads
    answer = verify(at_replica, w.adv, w.token, photo_use(), audience="lateshop")
    assert answer.allowed
    assert w.replica.app.platforms.loads == loads + 1  # recognised by a reload on the unknown key


def test_a_platforms_second_key_verifies_at_the_replica_until_it_is_removed(
    world: World,
) -> None:
    w = world
    second = PrivateKey.generate()
    with Holder(w.ex.channel(), w.platform.key) as account:
        account.add_device(second, "edge server")
        at_exchange = Party(second, SignedChannel(w.ex.channel(), second))
        at_replica = w.replica.party(second)
        assert verify(at_exchange, w.adv, w.token, photo_use()).allowed
        time.sleep(0.3)  # past the replica's reload interval (0.2 s in these tests)
        assert verify(at_replica, w.adv, w.token, photo_use()).allowed  # learnt by a reload
        account.remove_key(second.public.raw, compromised=True)
    assert refusal(lambda: verify(at_exchange, w.adv, w.token, photo_use())).reason == (
        Reason.KEY_REMOVED
    )
    w.replica.app.platforms.refresh()  # the scheduled refresh (every 60 s by default)
    assert refusal(lambda: verify(at_replica, w.adv, w.token, photo_use())).reason == (
        Reason.UNKNOWN_KEY
    )
    assert verify(w.at_replica(w.platform), w.adv, w.token, photo_use()).allowed


def test_keys_that_are_no_platform_are_refused(world: World) -> None:
    w = world
    stranger = PrivateKey.generate()
    for key, at_exchange in (
        (stranger, Party(stranger, SignedChannel(w.ex.channel(), stranger))),
        (None, Party(stranger, SignedChannel(w.ex.channel(), None))),
    ):
        there = refusal(lambda p=at_exchange: verify(p, w.adv, w.token, photo_use()))
        here = refusal(lambda k=key: verify(w.replica.party(k), w.adv, w.token, photo_use()))
        assert (here.reason, here.code) == (there.reason, there.code)
    # A registered holder is no platform: the exchange says NOT_OWNER; the replica, which
    # learns only the (public) platforms and never people's keys, says UNKNOWN_KEY.
    there = refusal(lambda: verify(w.holder, w.adv, w.token, photo_use()))
    assert there.reason == Reason.NOT_OWNER
    here = refusal(lambda: verify(w.at_replica(w.holder), w.adv, w.token, photo_use()))
    assert here.reason == Reason.UNKNOWN_KEY

    # A request signed an hour ago is refused before anything else, as at the exchange.
    def signed_an_hour_ago(address: str) -> Party:
        channel = grpc.insecure_channel(address)
        return Party(
            w.platform.key,
            SignedChannel(channel, w.platform.key, clock=lambda: int(time.time()) - 3600),
        )

    there = refusal(lambda: verify(signed_an_hour_ago(w.ex.address), w.adv, w.token, photo_use()))
    here = refusal(
        lambda: verify(signed_an_hour_ago(w.replica.server.address), w.adv, w.token, photo_use())
    )
    assert here.reason == there.reason == Reason.STALE_REQUEST


def test_a_replayed_presentation_is_refused(world: World) -> None:
    w = world
    at_replica = w.at_replica(w.platform)
    use = photo_use()
    pres = present(w.adv.key, parse_token(w.token).licence_id, "photoshare", use, int(time.time()))
    req = verification_pb2.VerifyRequest(token=w.token, presentation=pres, use=use.to_proto())
    path = methods.path(verification_pb2, "Verify")
    first = at_replica.rpc.unary(path, req, verification_pb2.VerifyResponse)
    again = at_replica.rpc.unary(path, req, verification_pb2.VerifyResponse)
    assert first.allowed
    assert reasons(again) == [Reason.REPLAYED]


def test_report_use_is_not_served_and_names_the_upstream(world: World) -> None:
    w = world
    e = refusal(
        lambda: w.at_replica(w.platform).call(
            verification_pb2,
            "ReportUse",
            verification_pb2.ReportUseRequest(report_id=b"\x01" * 16, token=w.token),
            verification_pb2.ReportUseResponse,
        )
    )
    assert e.reason == Reason.NOT_SERVED
    assert w.ex.address in e.message
    # Nor are declared assets known there (the exchange's store holds them).
    digests = refusal(
        lambda: w.at_replica(w.platform).call(
            verification_pb2,
            "CheckAssetDigests",
            verification_pb2.CheckAssetDigestsRequest(sha256=[b"\x01" * 32]),
            verification_pb2.CheckAssetDigestsResponse,
        )
    )
    assert (digests.reason, w.ex.address in digests.message) == (Reason.NOT_SERVED, True)
    # Nothing else is served there but health (and reflection).
    other = refusal(
        lambda: w.at_replica(w.platform).call(
            registry_pb2,
            "ListPlatforms",
            registry_pb2.ListPlatformsRequest(),
            registry_pb2.ListPlatformsResponse,
        )
    )
    assert other.reason == Reason.NOT_SERVED
    with grpc.insecure_channel(w.replica.server.address) as ch:
        health = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert health.status == health_pb2.HealthCheckResponse.SERVING


def test_a_replica_whose_clock_runs_behind_its_upstream_never_keeps_an_expired_licence(
    tmp_path: Path,
) -> None:
    """The exchange's time is 5 s past the licence's end. A replica whose clock is 15 s behind
    (within its bound) decides at the latest time the exchange signed: EXPIRED; one a day
    behind says CLOCK_SKEW. Neither allows it (both did, deciding by their own clock)."""
    clock = ManualClock()
    app = build(tmp_path / "data", settings=Settings(heartbeat_seconds=0.5), log=LOG, clock=clock)
    ex = Exchange(
        tmp_path / "data",
        app,
        start(ServerSettings(address="127.0.0.1:0"), app.handlers, app.service_names, LOG),
    )
    replicas: list[Replica] = []
    try:
        holder, adv, platform = registered(ex)
        lic = issue_licence(holder, adv, days=1)
        to_end = lic.not_after - int(time.time())
        clock.offset = to_end + 5
        use = photo_use()

        def at_replica(behind: int, staleness: int) -> list[Reason]:
            replica_clock = ManualClock()
            replica_clock.offset = to_end + 5 - behind
            replica = start_replica(ex.address, clock=replica_clock, staleness_seconds=staleness)
            replicas.append(replica)
            channel = grpc.insecure_channel(replica.server.address)
            signer = SignedChannel(channel, platform.key, clock=replica_clock.now)
            pres = present(adv.key, lic.licence_id, "photoshare", use, replica_clock.now())
            return reasons(
                Party(platform.key, signer).call(
                    verification_pb2,
                    "Verify",
                    verification_pb2.VerifyRequest(
                        token=lic.token, presentation=pres, use=use.to_proto()
                    ),
                    verification_pb2.VerifyResponse,
                )
            )

        assert at_replica(behind=15, staleness=30) == [Reason.EXPIRED]
        day_behind = at_replica(behind=DAY, staleness=30)
        assert Reason.CLOCK_SKEW in day_behind
    finally:
        for r in replicas:
            r.stop()
        ex.stop()


def test_the_replica_fails_closed_without_its_upstream_and_recovers(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first: Exchange | None = serve_exchange(data)
    assert first is not None
    second: Exchange | None = None
    replica: Replica | None = None
    try:
        holder, adv, platform = registered(first)
        token = issue_licence(holder, adv).token
        revoked = issue_licence(holder, adv).token
        revoke_licence(holder, parse_token(revoked).licence_id)
        later = issue_licence(holder, adv).token
        replica = start_replica(first.address)
        at_replica = replica.party(platform.key)
        assert verify(at_replica, adv, token, photo_use()).allowed

        port = first.server.port
        first.stop()
        first = None
        took = wait_for(
            lambda: reasons(verify(at_replica, adv, token, photo_use())) == [Reason.STATUS_STALE],
            STALENESS + 3,
        )
        assert took >= 1.0
        assert Reason.REVOKED in reasons(verify(at_replica, adv, revoked, photo_use()))

        # Back on the same port: the replica resumes from its sequence, and a revocation
        # made after the restart reaches it.
        second = serve_exchange(data, f"127.0.0.1:{port}")
        wait_for(lambda: verify(at_replica, adv, token, photo_use()).allowed, 5)
        holder2 = Party(holder.key, SignedChannel(second.channel(), holder.key))
        revoke_licence(holder2, parse_token(later).licence_id)
        wait_for(
            lambda: reasons(verify(at_replica, adv, later, photo_use())) == [Reason.REVOKED], 3
        )
        assert replica.app.follower.reconnects >= 1
        assert replica.app.follower.resyncs == 0
    finally:
        if replica is not None:
            replica.stop()
        for ex in (first, second):
            if ex is not None:
                ex.stop()


def test_list_platforms_pages_through_every_platform_once(tmp_path: Path) -> None:
    ex = serve_exchange(tmp_path / "data")
    try:
        ids = [f"shop{i:02d}" for i in range(7)]
        keys = {}
        for pid in reversed(ids):
            p = ex.party()
            register_platform(p, pid)
            keys[pid] = p.key.public.raw
        holder = ex.party()
        register_holder(holder)
        register_advertiser(ex.party())
        anonymous = Party(PrivateKey.generate(), SignedChannel(ex.channel(), None))
        seen: list[registry_pb2.PlatformEntry] = []
        token, pages = "", 0
        while True:
            page = anonymous.call(
                registry_pb2,
                "ListPlatforms",
                registry_pb2.ListPlatformsRequest(page_size=3, page_token=token),
                registry_pb2.ListPlatformsResponse,
            )
            pages += 1
            assert len(page.platforms) <= 3
            seen.extend(page.platforms)
            token = page.next_page_token
            if not token:
                break
        assert pages == 3
        assert [p.platform_id for p in seen] == ids  # only platforms, by id, each once
        assert {p.platform_id: p.key for p in seen} == keys
        assert all(p.registered_at > 0 for p in seen)
        assert all(list(p.device_keys) == [p.key] for p in seen)  # one key each, its own
        # The default page holds them all; an exact fit has no next page.
        whole = anonymous.call(
            registry_pb2,
            "ListPlatforms",
            registry_pb2.ListPlatformsRequest(page_size=7),
            registry_pb2.ListPlatformsResponse,
        )
        assert len(whole.platforms) == 7
        assert not whole.next_page_token
        capped = refusal(
            lambda: anonymous.call(
                registry_pb2,
                "ListPlatforms",
                registry_pb2.ListPlatformsRequest(page_size=1001),
                registry_pb2.ListPlatformsResponse,
            )
        )
        assert capped.reason == Reason.INVALID_REQUEST
    finally:
        ex.stop()


def test_the_replica_holds_at_most_its_cap_of_platforms(world: World) -> None:
    w = world
    for i in range(3):
        register_platform(w.ex.party(), f"extra{i}")
    directory = w.replica.app.platforms
    directory.max_platforms = 2
    directory.load()
    assert len(directory) == 2
    directory.max_platforms = 10
    directory.load()
    assert len(directory) == 4


def test_upstream_is_only_for_a_verification_replica(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "replica-data"
    for extra in (
        [],  # every service by default
        ["--services", "verification,licences"],
        ["--services", "registry"],
        ["--services", "verification", "--follower"],
        ["--services", "verification", "--db", "sqlite:///x.db"],
    ):
        argv = ["--upstream", "127.0.0.1:1", "--data-dir", str(data), *extra]
        assert server_main(argv) == 2, extra
        err = capsys.readouterr().err
        assert err.startswith("licentia-server: error:"), err
        assert "--upstream" in err
    assert not data.exists()


def test_a_replica_process_serves_verify_with_no_database(tmp_path: Path) -> None:
    ex = serve_exchange(tmp_path / "data")
    proc: subprocess.Popen[str] | None = None
    try:
        holder, adv, platform = registered(ex)
        token = issue_licence(holder, adv).token
        replica_data = tmp_path / "replica-data"
        replica_data.mkdir()
        port_file = tmp_path / "port"
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "licentia.services.server",
                "--services",
                "verification",
                "--upstream",
                ex.address,
                "--data-dir",
                str(replica_data),
                "--listen",
                "127.0.0.1:0",
                "--port-file",
                str(port_file),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
            env={k: v for k, v in os.environ.items() if not k.startswith("LICENTIA_")},
        )
        deadline = time.monotonic() + 20
        while not (port_file.exists() and port_file.read_text().strip()):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline
            time.sleep(0.05)
        address = f"127.0.0.1:{port_file.read_text().strip()}"
        at_replica = Party(
            platform.key, SignedChannel(grpc.insecure_channel(address), platform.key)
        )
        assert verify(at_replica, adv, token, photo_use()).allowed
        revoke_licence(holder, parse_token(token).licence_id)
        wait_for(
            lambda: reasons(verify(at_replica, adv, token, photo_use())) == [Reason.REVOKED], 3
        )
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, err
        assert f"listening on {address}" in out
        # No database, no keys, nothing written: not in its data directory, not beside it.
        assert list(replica_data.iterdir()) == []
        assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "port", "replica-data"]
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=5)
        ex.stop()


@needs_openssl
def test_a_replica_follows_its_upstream_over_tls_and_only_a_trusted_one(tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path / "exchange")
    stranger, _ = self_signed_certificate(tmp_path / "stranger")
    app = build(tmp_path / "data", settings=Settings(heartbeat_seconds=0.5), log=LOG)
    server = start(
        ServerSettings(address="127.0.0.1:0", max_workers=64, tls_cert=cert, tls_key=key),
        app.handlers,
        app.service_names,
        LOG,
    )
    upstream = f"localhost:{server.port}"
    tls = client_channel(upstream, tls_ca=cert.read_bytes())
    replica: Replica | None = None
    try:
        holder, adv, platform = (
            Party(k, SignedChannel(tls, k)) for k in (PrivateKey.generate() for _ in range(3))
        )
        adv.secret = app.deps.store.exchange_secret(SECRET_NAME)  # its offer references
        register_holder(holder)
        register_advertiser(adv)
        fund(operator_party(tls, tmp_path / "data"), adv.key.public.raw)
        register_platform(platform)
        licence = issue_licence(holder, adv)
        # A replica that does not trust the exchange's certificate, or speaks plaintext to
        # it, does not start.
        for tls_ca in (stranger.read_bytes(), None):
            with pytest.raises(ExchangeError):
                build_replica(upstream, tls_ca=tls_ca, log=LOG, timeout=2.0)
        replica = start_replica(upstream, tls_ca=cert.read_bytes())
        at_replica = replica.party(platform.key)
        assert verify(at_replica, adv, licence.token, photo_use()).allowed
        revoke_licence(holder, licence.licence_id)
        wait_for(
            lambda: (
                reasons(verify(at_replica, adv, licence.token, photo_use())) == [Reason.REVOKED]
            ),
            3,
        )
    finally:
        if replica is not None:
            replica.stop()
        tls.close()
        server.stop(0)
        app.close()


def test_a_replica_accepts_a_call_stamped_before_it_started(world: World) -> None:
    """A platform whose clock lags a few seconds is not refused after the replica (re)starts:
    the replica serves only Verify, whose window does not start at its start."""
    lagging = SignedChannel(
        grpc.insecure_channel(world.replica.server.address),
        world.platform.key,
        clock=lambda: int(time.time()) - 5,
    )
    answer = verify(Party(world.platform.key, lagging), world.adv, world.token, photo_use())
    assert answer.allowed
