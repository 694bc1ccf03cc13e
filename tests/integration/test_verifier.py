"""The platform's inline verifier and ``licentia-verify`` against a real exchange: scope, live
revocation with no call per check, catch-up, key rotation, fail-closed when the exchange is
gone, resumption after a restart, and many threads at once. The attacks on it (a stolen
token, a replayed presentation, …) are in test_attacks.py."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped]
import pytest

from licentia import methods
from licentia.clients.channel import ExchangeUnavailable, SignedChannel
from licentia.clients.verifier import Verifier
from licentia.clients.verifier.cli import main as verify_main
from licentia.errors import Reason
from licentia.keys import PrivateKey
from licentia.presentation import present
from licentia.scope import IntendedUse
from licentia.services.app import build
from licentia.services.deps import Settings
from licentia.services.runtime import ServerSettings, start
from licentia.status import signed_heartbeat
from licentia.token import parse_token
from licentia.transport.follow import GET_ISSUER_KEYS, GET_STATUS_SNAPSHOT, WATCH_REVOCATIONS
from licentia.v1 import licences_pb2, records_pb2, status_pb2
from licentia.verify import Decision
from licentia.vocabulary import Purpose

from .exchange_harness import (
    PHOTO,
    PHOTO_SHA,
    Exchange,
    ManualClock,
    Party,
    issue_licence,
    photo_use,
    register_advertiser,
    register_holder,
    register_platform,
    registered,
    revoke_licence,
    start_exchange,
    start_verifier,
    wait_for,
)

AUDIENCE = "photoshare"


class CallCounter(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):  # type: ignore[misc]
    """Counts every call made over the channel it intercepts."""

    def __init__(self) -> None:
        self.unary: list[str] = []
        self.streams: list[str] = []

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        self.unary.append(details.method)
        return continuation(details, request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        self.streams.append(details.method)
        return continuation(details, request)


def serve(data_dir: Path, address: str = "127.0.0.1:0") -> Exchange:
    """An exchange on ``address`` (the harness always picks a free port; a restart on the same
    port needs this), heartbeats every 0.5 s."""
    log = logging.getLogger("licentia.test")
    app = build(data_dir, settings=Settings(heartbeat_seconds=0.5), log=log)
    try:
        server = start(
            ServerSettings(address=address, max_workers=64), app.handlers, app.service_names, log
        )
    except BaseException:
        app.close()
        raise
    return Exchange(data_dir, app, server)


@pytest.fixture
def cast(ex: Exchange) -> tuple[Party, Party]:
    """A registered holder (assets and terms) and advertiser; a platform registered too."""
    holder, adv, _ = registered(ex, AUDIENCE)
    return holder, adv


MakeVerifier = Callable[..., tuple[Verifier, CallCounter]]


@pytest.fixture
def make_verifier() -> Iterator[MakeVerifier]:
    """Started verifiers over counted channels; every one closed (and its channel) at the end."""
    made: list[tuple[Verifier, grpc.Channel]] = []

    def make(address: str, **kw: Any) -> tuple[Verifier, CallCounter]:
        counter = CallCounter()
        v, raw = start_verifier(address, AUDIENCE, interceptor=counter, **kw)
        made.append((v, raw))
        return v, counter

    try:
        yield make
    finally:
        for v, raw in made:
            v.close()
            raw.close()


def check(
    v: Verifier,
    licence: records_pb2.LicenceRecord,
    key: PrivateKey,
    use: IntendedUse | None = None,
) -> Decision:
    """A fresh presentation by ``key`` for ``use`` (default: the photo online in FR), checked."""
    use = use or photo_use()
    pres = present(key, licence.licence_id, AUDIENCE, use, int(time.time()))
    return v.check(licence.token, pres, use)


# -- the verifier ------------------------------------------------------------------------
def test_allows_in_scope_and_denies_out_of_scope_with_exact_reasons(
    ex: Exchange, cast: tuple[Party, Party], make_verifier: MakeVerifier
) -> None:
    holder, adv = cast
    licence = issue_licence(holder, adv)
    v, _ = make_verifier(ex.address)
    allowed = check(v, licence, adv.key)
    assert allowed.allowed, allowed
    assert str(allowed) == "ALLOW"
    assert allowed.licence is not None
    assert allowed.licence.licence_id == licence.licence_id
    assert check(v, licence, adv.key, photo_use(Purpose.POLITICAL_CAMPAIGN)).reasons == (
        Reason.OUT_OF_SCOPE_PURPOSE,
    )
    assert check(v, licence, adv.key, photo_use(where="US")).reasons == (
        Reason.OUT_OF_SCOPE_TERRITORY,
    )
    # Bad input is a DENY, never an exception.
    assert v.check("lic1.garbage", None, photo_use()).reasons == (Reason.MALFORMED,)
    assert v.check(licence.token, "nonsense", photo_use()).reasons == (Reason.MALFORMED,)
    assert v.check(licence.token, None, photo_use()).reasons == (Reason.WRONG_LICENSEE,)
    assert v.check(None, None, photo_use()).reasons == (Reason.MALFORMED,)  # type: ignore[arg-type]
    assert v.check(licence.token, None, None).reasons == (Reason.INVALID_USE,)  # type: ignore[arg-type]


def test_revocation_reaches_the_verifier_within_2s_with_no_call_per_check(
    ex: Exchange, cast: tuple[Party, Party], make_verifier: MakeVerifier
) -> None:
    holder, adv = cast
    licence = issue_licence(holder, adv)
    v, counter = make_verifier(ex.address)
    wait_for(lambda: v.connected, 3)
    assert check(v, licence, adv.key).allowed
    unary_before, streams_before = list(counter.unary), list(counter.streams)
    assert sorted(set(unary_before)) == [
        methods.path(licences_pb2, "GetIssuerKeys"),
        methods.path(licences_pb2, "GetStatusSnapshot"),
    ]
    assert streams_before == [methods.path(licences_pb2, "WatchRevocations")]

    revoke_licence(holder, licence.licence_id)
    t0 = time.monotonic()
    while True:
        decision = check(v, licence, adv.key)
        if decision.reasons == (Reason.REVOKED,):
            break
        assert decision.allowed, decision
        assert time.monotonic() - t0 < 2.0, "the revocation did not arrive within 2 s"
    for _ in range(200):
        assert check(v, licence, adv.key).reasons == (Reason.REVOKED,)
    # Every check was answered in-process: not one call beyond the start's.
    assert counter.unary == unary_before
    assert counter.streams == streams_before
    assert v.sequence == 1
    assert v.stats.fresh
    assert v.stats.reconnects == 0
    # One licence, checked hundreds of times: authenticated once, cached once.
    assert (v.stats.cached_tokens, v.stats.cache_size) == (1, 10_000)


def test_a_late_verifier_catches_up_from_the_snapshot(
    ex: Exchange, cast: tuple[Party, Party], make_verifier: MakeVerifier
) -> None:
    holder, adv = cast
    licences = [issue_licence(holder, adv) for _ in range(4)]
    for lic in licences[:3]:
        revoke_licence(holder, lic.licence_id)
    v, _ = make_verifier(ex.address)
    assert v.sequence == 3
    for lic in licences[:3]:
        assert check(v, lic, adv.key).reasons == (Reason.REVOKED,)
    assert check(v, licences[3], adv.key).allowed
    # And it follows from there.
    revoke_licence(holder, licences[3].licence_id)
    wait_for(lambda: check(v, licences[3], adv.key).reasons == (Reason.REVOKED,), 2)
    assert v.stats.sequence == 4


def test_rotated_issuer_keys_are_picked_up(
    ex: Exchange, cast: tuple[Party, Party], make_verifier: MakeVerifier
) -> None:
    holder, adv = cast
    old = issue_licence(holder, adv)
    v, _ = make_verifier(ex.address, key_refresh_min_interval=0.1)
    keyring = ex.app.deps.keyring
    old_id = keyring.current().public.key_id
    keyring.rotate(int(time.time()))
    wait_for(lambda: keyring.current().public.key_id != old_id, 3)
    new = issue_licence(holder, adv)
    first = check(v, new, adv.key)
    assert first.allowed or first.reasons == (Reason.UNKNOWN_ISSUER_KEY,)
    took = wait_for(lambda: check(v, new, adv.key).allowed, 3)
    assert took < 3
    assert v.stats.issuer_keys == 2
    assert v.stats.key_refreshes >= 1
    assert check(v, old, adv.key).allowed  # the retired key still verifies what it signed


def test_a_withdrawn_key_reaches_a_running_verifier_with_the_next_heartbeats(
    ex: Exchange, cast: tuple[Party, Party], make_verifier: MakeVerifier
) -> None:
    """Signed heartbeats carry the digest of the published issuer keys, so a verifier whose
    scheduled key refresh is minutes away learns of a withdrawn key within seconds. The key
    withdrawn here is a retired one: the heartbeats' own key does not change, only the set."""
    holder, adv = cast
    old = issue_licence(holder, adv)
    v, _ = make_verifier(ex.address, key_refresh_seconds=300, key_refresh_min_interval=0.2)
    keyring = ex.app.deps.keyring
    old_id = keyring.current().public.key_id
    keyring.rotate(int(time.time()))
    wait_for(lambda: v.stats.issuer_keys == 2, 5)  # the heartbeats name the new set
    assert check(v, old, adv.key).allowed  # a retired key still verifies what it signed
    refreshes = v.stats.key_refreshes
    time.sleep(1.5)  # three heartbeats naming the set the verifier holds: no refetch
    assert v.stats.key_refreshes == refreshes
    keyring.withdraw(old_id, int(time.time()))
    took = wait_for(lambda: check(v, old, adv.key).reasons == (Reason.UNKNOWN_ISSUER_KEY,), 5)
    assert took < 5
    assert v.stats.key_refreshes > refreshes
    assert v.stats.issuer_keys == 1


def test_fails_closed_when_the_exchange_is_gone_and_resumes_after_a_restart(
    tmp_path: Path, make_verifier: MakeVerifier
) -> None:
    data = tmp_path / "data"
    first = serve(data)
    first_running = True
    second: Exchange | None = None
    try:
        holder, adv, _ = registered(first, AUDIENCE)
        a, b, c = (issue_licence(holder, adv) for _ in range(3))
        revoke_licence(holder, a.licence_id)
        v, _ = make_verifier(first.address, staleness_seconds=2)
        wait_for(lambda: v.connected, 3)
        assert check(v, b, adv.key).allowed
        assert v.sequence == 1

        port = first.server.port
        first.stop()
        first_running = False
        # Fail closed: past the 2 s bound with no heartbeat, every live licence is STATUS_STALE;
        # a revoked one stays REVOKED.
        took = wait_for(lambda: check(v, b, adv.key).reasons == (Reason.STATUS_STALE,), 5)
        assert took >= 1.0
        assert check(v, a, adv.key).reasons == (Reason.REVOKED,)
        assert not v.connected
        assert not v.stats.fresh

        # The same data directory on the same port: the verifier reconnects and resumes from
        # its sequence number (no resync), and a revocation made after the restart reaches it.
        second = serve(data, f"127.0.0.1:{port}")
        wait_for(lambda: check(v, b, adv.key).allowed, 5)
        assert v.reconnects >= 1
        holder2 = Party(holder.key, SignedChannel(second.channel(), holder.key))
        revoke_licence(holder2, c.licence_id)
        wait_for(lambda: check(v, c, adv.key).reasons == (Reason.REVOKED,), 2)
        assert v.sequence == 2
        assert v.stats.resyncs == 0
        assert v.stats.last_error is not None
    finally:
        if first_running:
            first.stop()
        if second is not None:
            second.stop()


def test_a_platform_clock_behind_the_exchange_never_keeps_an_expired_licence(
    tmp_path: Path, make_verifier: MakeVerifier, caplog: pytest.LogCaptureFixture
) -> None:
    """The exchange's time is past the licence's end; a platform's clock is not. Within the
    staleness bound (15 s behind) the verifier decides at the latest time the exchange signed:
    EXPIRED. Further behind than the bound (a day), it says so: CLOCK_SKEW, logged, and no
    ALLOW. (It allowed both before: it decided by its own clock.)"""
    clock = ManualClock()
    ex = start_exchange(tmp_path / "data", clock=clock)
    try:
        holder, adv, _ = registered(ex, AUDIENCE)
        lic = issue_licence(holder, adv, days=1)
        to_end = lic.not_after - int(time.time())
        clock.offset = to_end + 5  # the exchange's time: the licence ended 5 s ago
        use = photo_use()

        def at(v: Verifier, platform_now: int) -> Decision:
            pres = present(adv.key, lic.licence_id, AUDIENCE, use, platform_now)
            return v.check(lic.token, pres, use)

        # 15 s behind the exchange: its clock says the licence has 10 s left
        slow, _ = make_verifier(ex.address, clock=lambda: time.time() + to_end - 10)
        decision = at(slow, int(time.time()) + to_end - 10)
        assert decision.reasons == (Reason.EXPIRED,)
        with caplog.at_level(logging.WARNING):
            behind, _ = make_verifier(ex.address)  # its clock reads the licence's first day
            decision = at(behind, int(time.time()))
        assert not decision.allowed
        assert Reason.CLOCK_SKEW in decision.reasons
        assert any(r.getMessage() == "verifier.clock_skew" for r in caplog.records)
        assert behind.stats.fresh  # the feed is live: it is the clocks that disagree
    finally:
        ex.stop()


def test_a_fast_exchange_clock_does_not_keep_a_verifier_fresh(
    tmp_path: Path, make_verifier: MakeVerifier
) -> None:
    """The exchange's clock runs 100 s ahead: its snapshot's ``taken_at``, its heartbeats'
    ``at`` and its events' ``revoked_at`` are in the verifier's future. (Found by fuzzing the
    status feed: a future time kept the view fresh, and checks allowed, long past the bound.)
    The clocks disagree by more than the 2 s bound: the verifier says so (CLOCK_SKEW), a
    revoked licence is still REVOKED, and nothing is allowed, before or after the exchange
    goes away."""
    clock = ManualClock()
    clock.offset = 100
    ex = start_exchange(tmp_path / "data", clock=clock)
    try:
        holder, adv, platform = (
            Party(key, SignedChannel(ex.channel(), key, clock=clock.now), ex)
            for key in (PrivateKey.generate() for _ in range(3))
        )
        register_holder(holder)
        register_advertiser(adv)
        register_platform(platform, AUDIENCE)
        a, b = issue_licence(holder, adv), issue_licence(holder, adv)
        v, _ = make_verifier(ex.address, staleness_seconds=2)
        wait_for(lambda: v.connected, 3)
        revoke_licence(holder, a.licence_id)
        wait_for(lambda: check(v, a, adv.key).reasons == (Reason.REVOKED,), 3)
        assert Reason.CLOCK_SKEW in check(v, b, adv.key).reasons
        assert v.stats.fresh_at <= time.time()
    finally:
        ex.stop()
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        decision = check(v, b, adv.key)
        assert not decision.allowed
        assert Reason.CLOCK_SKEW in decision.reasons
        time.sleep(0.2)


def test_many_threads_check_at_once(
    ex: Exchange, cast: tuple[Party, Party], make_verifier: MakeVerifier
) -> None:
    holder, adv = cast
    licences = [issue_licence(holder, adv) for _ in range(4)]
    v, counter = make_verifier(ex.address)
    calls = len(counter.unary)
    use = photo_use()
    now = int(time.time())
    threads_n, per_thread = 8, 200
    work = [
        [
            (lic.token, present(adv.key, lic.licence_id, AUDIENCE, use, now))
            for lic in (licences[(t + i) % len(licences)] for i in range(per_thread))
        ]
        for t in range(threads_n)
    ]
    gate = threading.Barrier(threads_n)
    results: list[list[Decision]] = [[] for _ in range(threads_n)]

    def run(t: int) -> None:
        gate.wait()
        results[t] = [v.check(token, pres, use) for token, pres in work[t]]

    threads = [threading.Thread(target=run, args=(t,)) for t in range(threads_n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=30)
    assert all(not th.is_alive() for th in threads)
    flat = [d for r in results for d in r]
    assert len(flat) == threads_n * per_thread
    assert all(d.allowed for d in flat), {d.reasons for d in flat if not d.allowed}
    assert len(counter.unary) == calls


def test_a_verifier_that_cannot_start_raises_and_an_unstarted_one_fails_closed() -> None:
    channel = grpc.insecure_channel("127.0.0.1:1")
    try:
        v = Verifier(channel, AUDIENCE)
        assert v.check("lic1.x", None, photo_use()).reasons == (Reason.STATUS_STALE,)
        with pytest.raises(ExchangeUnavailable):
            v.start(timeout=2)
        v.close()
        with pytest.raises(ValueError, match="platform_id"):
            Verifier(channel, "")
    finally:
        channel.close()


# -- licentia-verify ---------------------------------------------------------------------
def cli_args(ex: Exchange, token: str, *extra: str, purpose: str = "advertising") -> list[str]:
    """``licentia-verify`` arguments for the photo online in France."""
    return [
        "--server",
        ex.address,
        token,
        "--category",
        "image",
        "--purpose",
        purpose,
        "--medium",
        "online",
        "--territory",
        "FR",
        *extra,
    ]


def test_cli_allow_deny_and_json(
    ex: Exchange,
    cast: tuple[Party, Party],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    holder, adv = cast
    licence = issue_licence(holder, adv)
    digest = ["--asset-sha256", PHOTO_SHA.hex()]
    assert verify_main(cli_args(ex, licence.token, *digest)) == 0
    assert capsys.readouterr().out == "ALLOW\n"

    photo = tmp_path / "photo.png"
    photo.write_bytes(PHOTO)
    argv = cli_args(ex, licence.token, "--asset", str(photo), purpose="political-campaign")
    assert verify_main(argv) == 1
    assert capsys.readouterr().out == "DENY OUT_OF_SCOPE_PURPOSE\n"

    argv = cli_args(ex, licence.token, *digest, "--territory", "US", purpose="direct-marketing")
    assert verify_main([*argv, "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc == {
        "verdict": "DENY",
        "reasons": ["OUT_OF_SCOPE_PURPOSE", "OUT_OF_SCOPE_TERRITORY"],
        "licence_id": licence.licence_id.hex(),
        "not_after": licence.not_after,
    }

    use = photo_use(Purpose.PERSONALISED_ADVERTISING)
    pres = present(adv.key, licence.licence_id, AUDIENCE, use, int(time.time()))
    store = ["--nonce-store", str(tmp_path / "nonces.sqlite")]
    argv = cli_args(ex, licence.token, *digest, *store, purpose="personalised-advertising")
    assert verify_main([*argv, "--presentation", pres, "--platform-id", AUDIENCE]) == 0
    assert capsys.readouterr().out == "ALLOW\n"
    # The same presentation again, from a new process's point of view: remembered in the file.
    assert verify_main([*argv, "--presentation", pres, "--platform-id", AUDIENCE]) == 1
    assert capsys.readouterr().out == "DENY REPLAYED\n"
    assert (tmp_path / "nonces.sqlite").stat().st_mode & 0o077 == 0
    thief = present(PrivateKey.generate(), licence.licence_id, AUDIENCE, use, int(time.time()))
    assert verify_main([*argv, "--presentation", thief, "--platform-id", AUDIENCE]) == 1
    assert capsys.readouterr().out == "DENY WRONG_LICENSEE\n"

    revoke_licence(holder, licence.licence_id)
    assert verify_main([*argv, "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["reasons"] == ["REVOKED"]


@pytest.mark.parametrize(
    "change",
    [
        ["--purpose", "no-such-purpose"],
        ["--asset-sha256", "zz"],
        ["--territory", "XX"],
        ["--presentation", "lpr1.x"],  # without --platform-id
        ["--asset", "/nonexistent/photo.png", "--asset-sha256", "00" * 32],
    ],
)
def test_cli_misuse_exits_2(
    change: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = [
        "--server",
        "127.0.0.1:1",
        "lic1.x",
        "--category",
        "image",
        "--purpose",
        "advertising",
        "--medium",
        "online",
        "--territory",
        "FR",
    ]
    if "--asset" not in change:
        argv += ["--asset-sha256", "00" * 32]
    with pytest.raises(SystemExit) as e:
        verify_main([*argv, *change])
    assert e.value.code == 2
    assert "licentia-verify: error: " in capsys.readouterr().err


def test_cli_unreachable_exchange_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "--server",
        "127.0.0.1:1",
        "lic1.x",
        "--category",
        "image",
        "--purpose",
        "advertising",
        "--medium",
        "online",
        "--territory",
        "FR",
        "--asset-sha256",
        "00" * 32,
        "--timeout",
        "2",
    ]
    assert verify_main(argv) == 3
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(
        "licentia-verify: error: could not reach the exchange at 127.0.0.1:1"
    )


def test_cli_nonce_store_that_cannot_be_opened_exits_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A presentation is never checked without a place to remember it (fail closed)."""
    argv = [
        "--server",
        "127.0.0.1:1",
        "lic1.x",
        "--category",
        "image",
        "--purpose",
        "advertising",
        "--medium",
        "online",
        "--territory",
        "FR",
        "--asset-sha256",
        "00" * 32,
        "--presentation",
        "lpr1.x",
        "--platform-id",
        AUDIENCE,
        "--nonce-store",
        str(tmp_path),  # a directory, not a database file
    ]
    assert verify_main(argv) == 3
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(
        f"licentia-verify: error: cannot open the nonce store {tmp_path}"
    )
    # A PostgreSQL store that cannot be opened is named without its password.
    dsn = "postgresql://platform:s3cret-pw@127.0.0.1:1/nonces?connect_timeout=2"
    assert verify_main([*argv[:-1], dsn]) == 3
    err = capsys.readouterr().err
    assert err.startswith("licentia-verify: error: cannot open the nonce store PostgreSQL (")
    assert "s3cret-pw" not in err


def test_cli_as_a_real_process(ex: Exchange, cast: tuple[Party, Party]) -> None:
    holder, adv = cast
    licence = issue_licence(holder, adv)
    argv = cli_args(ex, licence.token, "--asset-sha256", PHOTO_SHA.hex())
    done = subprocess.run(
        [sys.executable, "-m", "licentia.clients.verifier.cli", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "ALLOW\n", "")
    done = subprocess.run(
        [sys.executable, "-m", "licentia.clients.verifier.cli", *argv[:-1], "nothex"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "licentia-verify: error: --asset-sha256" in done.stderr


# -- a network attacker on the revocation feed -----------------------------------------
Forge = Callable[[int], Iterator[licences_pb2.WatchRevocationsResponse]]


class FeedInTheMiddle:
    """A network attacker between a verifier and the exchange: the issuer keys and the
    snapshots pass through untouched, and the revocation stream is the attacker's own
    (``forge(after_sequence)`` yields what the verifier is sent)."""

    def __init__(self, upstream: str, forge: Forge) -> None:
        self.up = grpc.insecure_channel(upstream)
        service, _, _ = WATCH_REVOCATIONS.strip("/").partition("/")

        def relay(method: str) -> Any:
            mc = self.up.unary_unary(method, request_serializer=None, response_deserializer=None)
            return grpc.unary_unary_rpc_method_handler(
                lambda req, ctx: mc(req, timeout=5),
                request_deserializer=None,
                response_serializer=None,
            )

        def watch(req: bytes, ctx: grpc.ServicerContext) -> Iterator[bytes]:
            after = licences_pb2.WatchRevocationsRequest.FromString(req).after_sequence
            for item in forge(after):
                if not ctx.is_active():
                    return
                yield item.SerializeToString()

        handler = grpc.method_handlers_generic_handler(
            service,
            {
                "GetIssuerKeys": relay(GET_ISSUER_KEYS),
                "GetStatusSnapshot": relay(GET_STATUS_SNAPSHOT),
                "WatchRevocations": grpc.unary_stream_rpc_method_handler(
                    watch, request_deserializer=None, response_serializer=None
                ),
            },
        )
        self.server = grpc.server(ThreadPoolExecutor(8))
        self.server.add_generic_rpc_handlers((handler,))
        self.address = f"127.0.0.1:{self.server.add_insecure_port('127.0.0.1:0')}"
        self.server.start()

    def close(self) -> None:
        self.server.stop(0)
        self.up.close()


def heartbeats(sign: Callable[[int, int], status_pb2.StatusHeartbeat]) -> Forge:
    """Heartbeats every 0.1 s saying nothing changed, each ``sign(sequence, now)``."""

    def forge(after: int) -> Iterator[licences_pb2.WatchRevocationsResponse]:
        while True:
            yield licences_pb2.WatchRevocationsResponse(heartbeat=sign(after, int(time.time())))
            time.sleep(0.1)

    return forge


def _forged_by_another_key(sequence: int, at: int) -> status_pb2.StatusHeartbeat:
    beat = signed_heartbeat(PrivateKey.generate(), sequence, at, bytes(32))
    beat.issuer_key_id = b"\x00" * 8  # whatever id it claims, its signature is not the issuer's
    return beat


@pytest.mark.parametrize(
    "sign",
    [
        lambda seq, at: status_pb2.StatusHeartbeat(sequence=seq, at=at, key_set_sha256=bytes(32)),
        _forged_by_another_key,
    ],
    ids=["unsigned", "signed-by-another-key"],
)
def test_forged_heartbeats_do_not_keep_a_verifier_fresh(
    ex: Exchange,
    cast: tuple[Party, Party],
    make_verifier: MakeVerifier,
    sign: Callable[[int, int], status_pb2.StatusHeartbeat],
) -> None:
    """An attacker who drops the revocation stream and sends heartbeats of its own would keep
    a verifier "fresh" for ever, and a revoked licence allowed. Heartbeats are signed by the
    issuer, so the verifier fails closed after its bound as if the stream were cut."""
    holder, adv = cast
    licence = issue_licence(holder, adv)
    mitm = FeedInTheMiddle(ex.address, heartbeats(sign))
    try:
        v, _ = make_verifier(mitm.address, staleness_seconds=2)
        assert check(v, licence, adv.key).allowed  # fresh from the genuine snapshot
        took = wait_for(lambda: check(v, licence, adv.key).reasons == (Reason.STATUS_STALE,), 6)
        assert took < 4
        assert v.stats.last_error is not None
        assert v.stats.last_error.split(":")[0] in {"BAD_SIGNATURE", "UNKNOWN_ISSUER_KEY"}
    finally:
        mitm.close()


def test_a_forged_revocation_event_is_not_applied(
    ex: Exchange, cast: tuple[Party, Party], make_verifier: MakeVerifier
) -> None:
    """An attacker cannot revoke a licence at a verifier (nor skip the sequence numbers of
    real revocations) with an event the issuer did not sign."""
    holder, adv = cast
    licence = issue_licence(holder, adv)
    index = parse_token(licence.token).status_index
    sent = threading.Event()

    def forge(after: int) -> Iterator[licences_pb2.WatchRevocationsResponse]:
        event = status_pb2.StatusEvent(sequence=after + 1, status_index=index, revoked_at=1)
        yield licences_pb2.WatchRevocationsResponse(event=event)
        sent.set()
        time.sleep(5)

    mitm = FeedInTheMiddle(ex.address, forge)
    try:
        v, _ = make_verifier(mitm.address, staleness_seconds=30)
        assert sent.wait(3)
        wait_for(lambda: v.stats.last_error is not None, 3)
        assert check(v, licence, adv.key).allowed
        assert v.stats.sequence == 0
    finally:
        mitm.close()
