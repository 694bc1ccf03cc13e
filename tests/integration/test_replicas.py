"""Two exchange replicas on one PostgreSQL database behave as one exchange: a licence issued
by one is served by the other; a revocation taken by one reaches the WatchRevocations
subscribers, the inline verifiers and the Verify RPC of the other, in sequence order and
without gaps, also across a resumption; the transparency log is one log; stopping one
replica abruptly mid-load loses no acknowledged operation while the other keeps serving;
both answer again within seconds of the database's return after an outage. And, on both
backends, a replica whose keys are not the exchange's (issue 16) refuses to start."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped]
import psycopg
import pytest

from licentia import merkle, methods
from licentia.clients.channel import SignedChannel
from licentia.errors import Reason
from licentia.keys import PrivateKey
from licentia.presentation import present
from licentia.services import app as app_module
from licentia.services.app import KEYS_DIR, LOG_KEY_FILE, OPERATOR_KEY_FILE
from licentia.services.errors import abort
from licentia.services.replica import PlatformDirectory, build_replica
from licentia.services.server import main as server_main
from licentia.services.store import open_store
from licentia.v1 import ledger_pb2, licences_pb2, records_pb2, registry_pb2, transparency_pb2

from ..pg_server import PgServer
from .exchange_harness import (
    FAST_RECONNECT,
    Exchange,
    ExchangeError,
    Party,
    fund,
    issue_licence,
    operator_party,
    photo_use,
    reasons,
    register_advertiser,
    register_holder,
    register_platform,
    registered,
    revoke_licence,
    secret_in,
    start_exchange,
    start_verifier,
    verify,
    wait_for,
)
from .log_harness import checkpoint, entries, log_call

AUDIENCE = "photoshare"
WATCH = methods.path(licences_pb2, "WatchRevocations")
#: How long a revocation may take to reach the other replica's subscribers in these tests
#: (the bench measures the real figure).
ARRIVAL = 2.0
#: How long the database stays away in the outage test: long enough for a reconnection
#: backoff that doubles from 1 s (psycopg_pool's own: tries at about 1, 3, 7 and 15 s) to
#: make its next try some 7 s after the database is back, past RECOVERY.
OUTAGE = 8.0
#: How soon after the database returns the replicas must answer correctly again.
RECOVERY = 5.0


@dataclass
class Cast:
    """Two replicas and the parties, registered at A; each party can also call B."""

    a: Exchange
    b: Exchange
    holder: Party
    adv: Party
    platform: Party

    def at_b(self, p: Party) -> Party:
        """The same party, calling replica B."""
        return Party(p.key, SignedChannel(self.b.channel(), p.key), self.b)


@pytest.fixture
def cast(tmp_path: Path, pg_server: PgServer) -> Iterator[Cast]:
    url = pg_server.create_database(pg_server.template)
    # Both replicas share the data directory's keys (issuer, operator, log), as replicas do.
    a = start_exchange(tmp_path / "data", db=url)
    b = start_exchange(tmp_path / "data", db=url)
    try:
        holder, adv, platform = registered(a, AUDIENCE)
        yield Cast(a, b, holder, adv, platform)
    finally:
        b.stop()
        a.stop()


@dataclass
class Watch:
    """A raw WatchRevocations subscriber on its own channel, read by a thread."""

    address: str
    after: int = 0
    events: list[int] = field(default_factory=list)
    indexes: list[int] = field(default_factory=list)
    heartbeats: list[tuple[int, int]] = field(default_factory=list)  # (events seen, sequence)
    snapshots: int = 0

    def __post_init__(self) -> None:
        self._channel = grpc.insecure_channel(self.address)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        feed = SignedChannel(self._channel, None).server_stream(
            WATCH,
            licences_pb2.WatchRevocationsRequest(after_sequence=self.after),
            licences_pb2.WatchRevocationsResponse,
        )
        try:
            for resp in feed:
                if resp.HasField("event"):
                    self.events.append(resp.event.sequence)
                    self.indexes.append(resp.event.status_index)
                elif resp.HasField("heartbeat"):
                    self.heartbeats.append((len(self.events), resp.heartbeat.sequence))
                else:
                    self.snapshots += 1
        except ExchangeError:
            return  # closed

    def close(self) -> None:
        """End the stream."""
        self._channel.close()
        self._thread.join(timeout=5)


def _get_licence(p: Party, licence_id: bytes) -> records_pb2.LicenceRecord:
    return p.call(
        licences_pb2,
        "GetLicence",
        licences_pb2.GetLicenceRequest(licence_id=licence_id),
        licences_pb2.GetLicenceResponse,
    ).licence


def test_a_licence_issued_at_a_is_served_by_b(cast: Cast) -> None:
    licence = issue_licence(cast.holder, cast.adv)
    at_b = _get_licence(cast.at_b(cast.adv), licence.licence_id)
    assert at_b.token == licence.token
    assert at_b.state == records_pb2.LICENCE_STATE_ACTIVE
    assert reasons(verify(cast.at_b(cast.platform), cast.adv, licence.token, photo_use())) == []


def test_a_revocation_at_a_reaches_the_subscribers_and_verifiers_of_b(cast: Cast) -> None:
    licence = issue_licence(cast.holder, cast.adv)
    watch = Watch(cast.b.address)
    verifier, raw = start_verifier(cast.b.address, AUDIENCE)
    try:
        wait_for(lambda: verifier.connected and len(watch.heartbeats) > 0, 5)
        use = photo_use()

        def decision() -> tuple[Reason, ...]:
            pres = present(cast.adv.key, licence.licence_id, AUDIENCE, use, int(time.time()))
            return verifier.check(licence.token, pres, use).reasons

        assert decision() == ()
        receipt = revoke_licence(cast.holder, licence.licence_id).receipt
        sequence = records_pb2.TerminationReceipt.FromString(receipt.receipt).sequence
        wait_for(lambda: watch.events == [sequence], ARRIVAL)
        wait_for(lambda: decision() == (Reason.REVOKED,), ARRIVAL)
        assert watch.indexes == [licence.status_index]
        # B's own view follows too: Verify, the snapshot's sequence, the heartbeats.
        platform_b = cast.at_b(cast.platform)
        assert reasons(verify(platform_b, cast.adv, licence.token, photo_use())) == [Reason.REVOKED]
        assert cast.b.app.deps.hub.snapshot().sequence == sequence
        wait_for(lambda: watch.heartbeats[-1][1] == sequence, ARRIVAL)
    finally:
        watch.close()
        verifier.close()
        raw.close()


def test_revocations_alternating_between_replicas_arrive_gapless_and_in_order(
    cast: Cast,
) -> None:
    n = 24
    licences = [issue_licence(cast.holder, cast.adv) for _ in range(n)]
    holder_b = cast.at_b(cast.holder)
    watches = [Watch(cast.a.address), Watch(cast.b.address)]
    try:
        wait_for(lambda: all(w.heartbeats for w in watches), 5)

        def revoke(who: Party, mine: list[records_pb2.LicenceRecord]) -> None:
            for lic in mine:
                revoke_licence(who, lic.licence_id)

        # Two writers at once, one per replica: their commits interleave.
        threads = [
            threading.Thread(target=revoke, args=(cast.holder, licences[0::2])),
            threading.Thread(target=revoke, args=(holder_b, licences[1::2])),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        for w in watches:
            wait_for(lambda w=w: len(w.events) >= n, 5)  # type: ignore[misc]
        time.sleep(0.3)  # anything more (a duplicate) would arrive by now
        for w in watches:
            assert w.events == list(range(1, n + 1))
            assert sorted(w.indexes) == sorted(lic.status_index for lic in licences)
            assert w.snapshots == 0
            # A heartbeat never announces a sequence before the events that lead to it.
            assert all(seq <= seen for seen, seq in w.heartbeats)
        for ex in (cast.a, cast.b):
            assert ex.app.deps.hub.sequence == n
            assert all(
                ex.app.deps.hub.check(lic.status_list, lic.status_index, 0) == Reason.REVOKED
                for lic in licences
            )
    finally:
        for w in watches:
            w.close()


def test_a_subscriber_of_b_that_resumes_misses_nothing(cast: Cast) -> None:
    licences = [issue_licence(cast.holder, cast.adv) for _ in range(8)]
    first = Watch(cast.b.address)
    try:
        wait_for(lambda: bool(first.heartbeats), 5)
        for lic in licences[:3]:
            revoke_licence(cast.holder, lic.licence_id)
        wait_for(lambda: len(first.events) == 3, ARRIVAL)
    finally:
        first.close()
    # Away: the others are revoked at A (and one at B) meanwhile.
    for lic in licences[3:7]:
        revoke_licence(cast.holder, lic.licence_id)
    revoke_licence(cast.at_b(cast.holder), licences[7].licence_id)
    again = Watch(cast.b.address, after=first.events[-1])
    try:
        wait_for(lambda: len(again.events) >= 5, ARRIVAL)
        time.sleep(0.2)
        assert first.events + again.events == list(range(1, 9))
        assert again.snapshots == 0
    finally:
        again.close()


def _platform_ids(p: Party) -> list[str]:
    listed = p.call(
        registry_pb2,
        "ListPlatforms",
        registry_pb2.ListPlatformsRequest(),
        registry_pb2.ListPlatformsResponse,
    )
    return [x.platform_id for x in listed.platforms]


def test_replicas_answer_within_seconds_of_the_database_returning(
    tmp_path: Path, pg_server: PgServer
) -> None:
    """The database goes away for twenty seconds and comes back: meanwhile a call that needs
    it fails fast with UNAVAILABLE (it does not hang), and within a few seconds of its return
    both replicas answer ListPlatforms and Verify correctly, and a revocation taken at A
    reaches B. (Before the fix: a pooled reconnection backoff growing to tens of seconds,
    and a read waiting 30 s for a pooled connection three times over.)"""
    url = pg_server.create_database(pg_server.template)
    a = start_exchange(tmp_path / "data", db=url)
    b = start_exchange(tmp_path / "data", db=url)
    stopped = False
    try:
        holder, adv, platform = registered(a, AUDIENCE)
        licences = [issue_licence(holder, adv) for _ in range(2)]

        platform_b = Party(platform.key, SignedChannel(b.channel(), platform.key), b)
        assert _platform_ids(platform_b) == [AUDIENCE]
        pg_server.stop_server()
        stopped = True
        t0 = time.monotonic()
        with pytest.raises(ExchangeError) as e:
            _platform_ids(platform_b)
        assert e.value.reason is Reason.UNAVAILABLE
        assert time.monotonic() - t0 < RECOVERY
        time.sleep(max(0.0, OUTAGE - (time.monotonic() - t0)))
        pg_server.start_server()
        stopped = False
        back = time.monotonic()

        def answers() -> bool:
            try:
                return (
                    _platform_ids(platform_b) == [AUDIENCE]
                    and reasons(verify(platform_b, adv, licences[0].token, photo_use())) == []
                    and _platform_ids(platform) == [AUDIENCE]
                )
            except ExchangeError:
                return False

        wait_for(answers, RECOVERY)
        receipt = revoke_licence(holder, licences[1].licence_id).receipt
        sequence = records_pb2.TerminationReceipt.FromString(receipt.receipt).sequence
        wait_for(lambda: b.app.deps.hub.sequence == sequence, ARRIVAL)
        assert reasons(verify(platform_b, adv, licences[1].token, photo_use())) == [Reason.REVOKED]
        assert time.monotonic() - back < RECOVERY + ARRIVAL
    finally:
        if stopped:
            pg_server.start_server()
        b.stop()
        a.stop()


class _Hung(grpc.GenericRpcHandler):  # type: ignore[misc]
    """An upstream that accepts every call and never answers (until released)."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def service(self, details: Any) -> Any:
        def hang(request: bytes, context: Any) -> bytes:
            self.release.wait(60)
            context.abort(grpc.StatusCode.UNAVAILABLE, "released")
            return b""

        return grpc.unary_unary_rpc_method_handler(hang)


def test_a_verify_only_replicas_calls_to_a_hung_upstream_end_at_their_deadline() -> None:
    """The calls a verify-only replica makes to its upstream (issuer keys, snapshot,
    ListPlatforms) each carry a deadline: an upstream that accepts them and never answers
    costs the replica that deadline, not a hung thread."""
    hung = _Hung()
    server = grpc.server(ThreadPoolExecutor(8), handlers=[hung])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        t0 = time.monotonic()
        with pytest.raises(ExchangeError) as e:
            PlatformDirectory(channel, timeout=0.5).load()
        assert e.value.reason is Reason.UNAVAILABLE
        assert time.monotonic() - t0 < 3
        t0 = time.monotonic()
        with pytest.raises(ExchangeError):
            build_replica(f"127.0.0.1:{port}", timeout=0.5)
        assert time.monotonic() - t0 < 3
    finally:
        hung.release.set()
        channel.close()
        server.stop(0)


class _Busy(grpc.GenericRpcHandler):  # type: ignore[misc]
    """An upstream that refuses every call as the exchange does: BUSY, in its ErrorInfo."""

    def service(self, details: Any) -> Any:
        def refuse(request: bytes, context: Any) -> bytes:
            abort(context, Reason.BUSY, "too many calls")

        return grpc.unary_unary_rpc_method_handler(refuse)


def test_a_verify_only_replica_keeps_the_reason_its_upstream_gives() -> None:
    """The replica maps its upstream's refusals with the transport's one mapper, as every
    client does: the server's ErrorInfo reason (BUSY, sent as RESOURCE_EXHAUSTED) reaches
    the caller, not a reason guessed from the status code."""
    server = grpc.server(ThreadPoolExecutor(4), handlers=[_Busy()])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        with pytest.raises(ExchangeError) as e:
            PlatformDirectory(channel, timeout=5).load()
        assert e.value.reason is Reason.BUSY
        assert e.value.code is grpc.StatusCode.RESOURCE_EXHAUSTED
        with pytest.raises(ExchangeError) as e:
            build_replica(f"127.0.0.1:{port}", timeout=5)
        assert e.value.reason is Reason.BUSY
    finally:
        channel.close()
        server.stop(0)


def _listeners(url: str, terminate: bool = False) -> int:
    """How many replicas' listening connections the database has (ending them if asked)."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND query LIKE 'LISTEN %'"
        ).fetchall()
        if terminate:
            for (pid,) in rows:
                conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    return len(rows)


def test_a_replica_whose_listening_connection_drops_reconnects_and_catches_up(
    cast: Cast,
) -> None:
    licences = [issue_licence(cast.holder, cast.adv) for _ in range(3)]
    url = cast.b.app.deps.store.url  # type: ignore[attr-defined]
    watch = Watch(cast.b.address)
    try:
        wait_for(lambda: bool(watch.heartbeats) and _listeners(url) == 2, 5)
        assert _listeners(url, terminate=True) == 2
        # Revoked while no one listens: the reconnected listener's catch-up read (or the
        # safety poll) brings it to B all the same.
        revoke_licence(cast.holder, licences[0].licence_id)
        wait_for(lambda: watch.events == [1], ARRIVAL)
        wait_for(lambda: _listeners(url) == 2, 5)  # both replicas listen again
        revoke_licence(cast.holder, licences[1].licence_id)
        revoke_licence(cast.at_b(cast.holder), licences[2].licence_id)
        wait_for(lambda: watch.events == [1, 2, 3], ARRIVAL)
        # A hears of B's revocation through its own listener: not necessarily before B's
        # subscriber does.
        wait_for(lambda: cast.a.app.deps.hub.sequence == 3, ARRIVAL)
    finally:
        watch.close()


def test_a_revocation_reaches_b_by_notification_not_by_the_safety_poll(
    tmp_path: Path, pg_server: PgServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the safety poll set to a minute, only PostgreSQL's notification can bring A's
    revocation to B's subscribers within the arrival bound (the other tests here would pass
    on the 1 s poll alone, with notifications broken)."""
    monkeypatch.setattr(app_module, "SAFETY_POLL_SECONDS", 60.0)
    url = pg_server.create_database(pg_server.template)
    a = start_exchange(tmp_path / "data", db=url)
    b = start_exchange(tmp_path / "data", db=url)
    watch = None
    try:
        holder, adv = a.party(), a.party()
        register_holder(holder)
        register_advertiser(adv)
        licence = issue_licence(holder, adv)
        watch = Watch(b.address)
        wait_for(lambda: bool(watch.heartbeats), 5)
        revoke_licence(holder, licence.licence_id)
        took = wait_for(lambda: watch.events == [1], ARRIVAL)
        assert took < 1.0
        assert b.app.deps.hub.sequence == 1
    finally:
        if watch is not None:
            watch.close()
        b.stop()
        a.stop()


def test_the_log_read_at_b_is_the_log_written_at_a(cast: Cast) -> None:
    licence = issue_licence(cast.holder, cast.adv)
    at_a = checkpoint(cast.a)
    revoke_licence(cast.holder, licence.licence_id)
    issue_licence(cast.holder, cast.adv)
    at_b = checkpoint(cast.b)
    assert at_b.size == at_a.size + 2
    proof = log_call(
        cast.b,
        "GetConsistencyProof",
        transparency_pb2.GetConsistencyProofRequest(old_size=at_a.size, new_size=at_b.size),
        transparency_pb2.GetConsistencyProofResponse,
    )
    assert merkle.verify_consistency(at_a.size, at_b.size, at_a.root, at_b.root, proof.proof)
    read_at_b = entries(cast.b, 0, at_b.size)
    assert [e.SerializeToString(deterministic=True) for e in read_at_b] == [
        e.SerializeToString(deterministic=True) for e in entries(cast.a, 0, at_b.size)
    ]
    # The issuance, the revocation and the issuance: sealed to the holder, as written at A.
    assert all(e.HasField("sealed") for e in read_at_b[at_a.size - 1 :])
    assert checkpoint(cast.a).root == at_b.root


def test_stopping_replica_a_mid_load_loses_no_acknowledged_revocation(cast: Cast) -> None:
    licences = [issue_licence(cast.holder, cast.adv) for _ in range(40)]
    watch = Watch(cast.b.address)
    acked: list[tuple[bytes, int]] = []
    failed: list[BaseException] = []
    try:
        wait_for(lambda: bool(watch.heartbeats), 5)

        def load() -> None:
            for lic in licences:
                try:
                    resp = revoke_licence(cast.holder, lic.licence_id)
                except ExchangeError as e:  # A is gone: not acknowledged
                    failed.append(e)
                    return
                seq = records_pb2.TerminationReceipt.FromString(resp.receipt.receipt).sequence
                acked.append((lic.licence_id, seq))

        t = threading.Thread(target=load)
        t.start()
        wait_for(lambda: len(acked) >= 10, 10)
        # Replica A dies: no grace for the calls in flight, its streams and store closed.
        cast.a.server.stop(0)
        cast.a.app.close()
        t.join(timeout=30)
        assert failed, "the load should have hit the stopped replica"
        assert 10 <= len(acked) < len(licences)
        # Every acknowledged revocation is at B: in its store, its feed, its Verify.
        holder_b = cast.at_b(cast.holder)
        for licence_id, _ in acked:
            assert _get_licence(holder_b, licence_id).state == records_pb2.LICENCE_STATE_REVOKED
        platform_b = cast.at_b(cast.platform)
        for lic in licences[: len(acked)]:
            assert reasons(verify(platform_b, cast.adv, lic.token, photo_use())) == [Reason.REVOKED]
        wait_for(lambda: len(watch.events) >= len(acked), ARRIVAL)
        assert watch.events[: len(acked)] == [seq for _, seq in acked]
        # B keeps serving: it revokes the rest and issues new licences.
        rest = licences[len(acked) :]
        for lic in rest:
            revoke_licence(holder_b, lic.licence_id)
        wait_for(lambda: len(watch.events) == len(licences), ARRIVAL)
        assert watch.events == list(range(1, len(licences) + 1))
        fresh = issue_licence(holder_b, cast.at_b(cast.adv))
        assert _get_licence(holder_b, fresh.licence_id).state == records_pb2.LICENCE_STATE_ACTIVE
        assert cast.b.app.deps.store.ledger_check() == []
    finally:
        watch.close()


def _server_process(data_dir: Path, db: str, name: str) -> tuple[subprocess.Popen[bytes], str]:
    """``licentia-server --db`` in its own process; it and its address once it listens."""
    port_file = data_dir.parent / f"{name}.port"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "licentia.services.server",
            "--data-dir",
            str(data_dir),
            "--db",
            db,
            "--listen",
            "127.0.0.1:0",
            "--port-file",
            str(port_file),
            "--heartbeat-seconds",
            "0.5",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ},
    )
    deadline = time.monotonic() + 30
    while not (port_file.exists() and port_file.read_text().strip()):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the server process did not start")
        time.sleep(0.05)
    return proc, f"127.0.0.1:{port_file.read_text().strip()}"


def test_sigkill_of_one_server_process_mid_load_loses_nothing_acknowledged(
    tmp_path: Path, pg_server: PgServer
) -> None:
    """Two real ``licentia-server`` processes on one database: revocations made at A reach
    B's subscribers and inline verifier; A is SIGKILLed while revoking; everything it
    acknowledged is at B, and B takes over."""
    url = pg_server.create_database(pg_server.template)
    data = tmp_path / "data"
    procs: list[subprocess.Popen[bytes]] = []
    channels: list[grpc.Channel] = []
    try:
        proc_a, address_a = _server_process(data, url, "a")
        procs.append(proc_a)
        proc_b, address_b = _server_process(data, url, "b")  # after A made the keys
        procs.append(proc_b)

        def party(address: str, key: PrivateKey) -> Party:
            ch = grpc.insecure_channel(address, options=list(FAST_RECONNECT))
            channels.append(ch)
            return Party(key, SignedChannel(ch, key))

        keys = [PrivateKey.generate() for _ in range(3)]
        holder, adv, platform = (party(address_a, k) for k in keys)
        holder_b, adv_b, platform_b = (party(address_b, k) for k in keys)
        register_holder(holder)
        register_advertiser(adv)
        register_platform(platform, AUDIENCE)
        operator_channel = grpc.insecure_channel(address_a)
        channels.append(operator_channel)
        fund(operator_party(operator_channel, data), adv.key.public.raw)
        adv.secret = secret_in(data, url)
        licences = [issue_licence(holder, adv) for _ in range(30)]
        watch = Watch(address_b)
        verifier, raw = start_verifier(address_b, AUDIENCE)
        try:
            wait_for(lambda: verifier.connected and bool(watch.heartbeats), 5)
            acked: list[int] = []

            def load() -> None:
                for lic in licences:
                    try:
                        resp = revoke_licence(holder, lic.licence_id)
                    except ExchangeError:
                        return  # A is gone: not acknowledged
                    receipt = records_pb2.TerminationReceipt.FromString(resp.receipt.receipt)
                    acked.append(receipt.sequence)

            t = threading.Thread(target=load)
            t.start()
            wait_for(lambda: len(acked) >= 8, 10)
            proc_a.send_signal(signal.SIGKILL)
            proc_a.wait(timeout=10)
            t.join(timeout=30)
            n = len(acked)
            assert 8 <= n < len(licences)
            assert acked == list(range(1, n + 1))
            wait_for(lambda: len(watch.events) >= n, ARRIVAL)
            assert watch.events[:n] == acked
            use = photo_use()
            for lic in licences[:n]:
                pres = present(adv.key, lic.licence_id, AUDIENCE, use, int(time.time()))
                assert verifier.check(lic.token, pres, use).reasons == (Reason.REVOKED,)
                assert reasons(verify(platform_b, adv_b, lic.token, use)) == [Reason.REVOKED]
            for lic in licences[n:]:
                revoke_licence(holder_b, lic.licence_id)
            wait_for(lambda: len(watch.events) == len(licences), ARRIVAL)
            assert watch.events == list(range(1, len(licences) + 1))
            assert _get_licence(holder_b, licences[-1].licence_id).state == (
                records_pb2.LICENCE_STATE_REVOKED
            )
        finally:
            watch.close()
            verifier.close()
            raw.close()
    finally:
        for ch in channels:
            ch.close()
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


# -- a replica's keys are the exchange's, or it does not start ------------------------------
@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new store of each backend, named as ``--db`` takes it."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared' / 'licentia.db'}"
    server: PgServer = request.getfixturevalue("pg_server")
    return server.create_database(server.template)


def _available(p: Party) -> int:
    return p.call(
        ledger_pb2,
        "GetStatement",
        ledger_pb2.GetStatementRequest(),
        ledger_pb2.GetStatementResponse,
    ).available_minor


def _copy_keys(source: Path, target: Path, *names: str) -> None:
    """Copy the named key files (or the issuer-keys directory) from one data dir to another."""
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        if (source / name).is_dir():
            shutil.copytree(source / name, target / name)
        else:
            shutil.copy2(source / name, target / name)


def test_a_replica_with_a_fresh_data_directory_refuses_to_start_and_credits_nothing(
    tmp_path: Path, db: str
) -> None:
    """Issue 16: a second replica given a new --data-dir on the exchange's store made its own
    operator and log keys, had no issuer key, and credited a deposit signed with its own
    operator key. Now it refuses to start, naming the key, and nothing is credited, signed,
    published or recorded by it."""
    a = start_exchange(tmp_path / "a", db=db)
    try:
        adv = a.party()
        register_advertiser(adv, funds=0)
        store = a.app.deps.store
        issuer_keys = store.issuer_keys()
        size = checkpoint(a).size
        try:
            b = start_exchange(tmp_path / "b", db=db)
        except ValueError as e:  # refused: it never served
            refusal = str(e)
        else:  # what issue 16 saw: the replica credits with its own new operator key
            try:
                b.fund(adv.key.public.raw, 50_000, "issue-16")
            finally:
                b.stop()
            refusal = ""
        assert _available(adv) == 0
        assert f"{tmp_path / 'b' / OPERATOR_KEY_FILE} is missing" in refusal
        assert "operator key" in refusal
        assert "copy the exchange's key files" in refusal
        assert store.issuer_keys() == issuer_keys
        assert checkpoint(a).size == size
        # It left no key of its own behind to be adopted later.
        assert not (tmp_path / "b" / OPERATOR_KEY_FILE).exists()
        assert not (tmp_path / "b" / LOG_KEY_FILE).exists()
        # The exchange's operator credits as before.
        assert a.fund(adv.key.public.raw, 50_000) == 50_000
    finally:
        a.stop()


@pytest.mark.parametrize(
    ("foreign", "named"),
    [
        (OPERATOR_KEY_FILE, "the operator key in"),
        (LOG_KEY_FILE, "the log key in"),
    ],
)
def test_a_replica_whose_key_file_differs_from_the_stores_record_refuses_to_start(
    tmp_path: Path, db: str, foreign: str, named: str
) -> None:
    a = start_exchange(tmp_path / "a", db=db)
    try:
        adv = a.party()
        register_advertiser(adv, funds=0)
        b_dir = tmp_path / "b"
        _copy_keys(tmp_path / "a", b_dir, OPERATOR_KEY_FILE, LOG_KEY_FILE, KEYS_DIR)
        (b_dir / foreign).unlink()
        other = PrivateKey.generate()
        (b_dir / foreign).write_bytes(other.seed)
        (b_dir / foreign).chmod(0o600)
        with pytest.raises(ValueError, match="not this exchange's") as e:
            start_exchange(b_dir, db=db)
        assert named in str(e.value)
        assert other.public.text in str(e.value)  # the key it holds, and the recorded one
        assert a.app.deps.store.exchange_keys()[foreign.removesuffix(".key")] != other.public.raw
        # A deposit signed with that foreign key, sent to the exchange, is refused too.
        if foreign == OPERATOR_KEY_FILE:
            impostor = Party(other, SignedChannel(a.channel(), other), a)
            with pytest.raises(ExchangeError) as refused:
                fund(impostor, adv.key.public.raw, 50_000)
            assert refused.value.reason is Reason.NOT_OWNER
        assert _available(adv) == 0
        # With the exchange's own files it starts, and serves what A wrote.
        (b_dir / foreign).unlink()
        _copy_keys(tmp_path / "a", b_dir, foreign)
        b = start_exchange(b_dir, db=db)
        b.stop()
    finally:
        a.stop()


def test_a_replica_without_the_current_issuer_keys_secret_refuses_to_start(
    tmp_path: Path, db: str
) -> None:
    a = start_exchange(tmp_path / "a", db=db)
    try:
        b_dir = tmp_path / "b"
        _copy_keys(tmp_path / "a", b_dir, OPERATOR_KEY_FILE, LOG_KEY_FILE)
        (current,) = a.app.deps.store.issuer_keys()
        with pytest.raises(ValueError, match="no secret for the issuer key") as e:
            start_exchange(b_dir, db=db)
        assert f"{current.key_id.hex()}.key" in str(e.value)
        assert str(b_dir / KEYS_DIR) in str(e.value)
        assert a.app.deps.store.issuer_keys() == [current]  # it published no key of its own
    finally:
        a.stop()


def test_a_store_without_the_record_adopts_the_keys_of_the_first_start_after_the_upgrade(
    tmp_path: Path, db: str
) -> None:
    """A store written before the record existed: the next start records its key files; a
    start after that with other keys is refused, and one with none as well."""
    a = start_exchange(tmp_path / "a", db=db)
    operator = a.app.deps.operator_key
    a.stop()
    store = open_store(db, tmp_path / "unused.db")
    try:
        store._execute("DELETE FROM exchange_keys")  # type: ignore[attr-defined]
        assert store.exchange_keys() == {}
    finally:
        store.close()
    # A fresh data directory is not adopted: the store already holds an exchange.
    with pytest.raises(ValueError, match="already holds an exchange"):
        start_exchange(tmp_path / "fresh", db=db)
    again = start_exchange(tmp_path / "a", db=db)
    try:
        assert again.app.deps.store.exchange_keys()["operator"] == operator
    finally:
        again.stop()
    _copy_keys(tmp_path / "a", tmp_path / "c", LOG_KEY_FILE, KEYS_DIR)
    (tmp_path / "c" / OPERATOR_KEY_FILE).write_bytes(PrivateKey.generate().seed)
    (tmp_path / "c" / OPERATOR_KEY_FILE).chmod(0o600)
    with pytest.raises(ValueError, match="not this exchange's"):
        start_exchange(tmp_path / "c", db=db)


def test_licentia_server_says_why_it_refuses_and_the_key_commands_refuse_too(
    tmp_path: Path, db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``licentia-server`` on the exchange's store with another data directory exits 2 with
    the reason on stderr; ``rotate-key`` and ``withdraw-key`` from such a directory change
    nothing (a rotation there would publish a key no replica holds)."""
    a = start_exchange(tmp_path / "a", db=db)
    try:
        keys = a.app.deps.store.issuer_keys()
        wrong = tmp_path / "wrong"
        wrong.mkdir()
        (wrong / OPERATOR_KEY_FILE).write_bytes(PrivateKey.generate().seed)
        (wrong / OPERATOR_KEY_FILE).chmod(0o600)
        base = ["--data-dir", str(wrong), "--db", db]
        assert server_main([*base, "--listen", "127.0.0.1:0"]) == 2
        err = capsys.readouterr().err
        assert "licentia-server: error: the operator key in" in err
        assert "is not this exchange's" in err
        assert server_main(["rotate-key", *base]) == 2
        assert "is not this exchange's" in capsys.readouterr().err
        assert server_main(["withdraw-key", *base, keys[0].key_id.hex()]) == 2
        assert "is not this exchange's" in capsys.readouterr().err
        assert a.app.deps.store.issuer_keys() == keys
        assert not (wrong / KEYS_DIR).exists()
    finally:
        a.stop()


def test_a_follower_with_a_foreign_log_key_refuses_to_start_and_one_without_keys_starts(
    tmp_path: Path, db: str
) -> None:
    """A follower (read-only) makes and records no key; a key file it has must still be the
    exchange's (it would sign checkpoints with it)."""
    a = start_exchange(tmp_path / "a", db=db)
    try:
        foreign = tmp_path / "foreign"
        foreign.mkdir()
        (foreign / LOG_KEY_FILE).write_bytes(PrivateKey.generate().seed)
        (foreign / LOG_KEY_FILE).chmod(0o600)
        with pytest.raises(ValueError, match=r"the log key in .* is not this exchange's"):
            start_exchange(foreign, db=db, follower=True)
        (tmp_path / "bare").mkdir(mode=0o700)  # a follower creates nothing, not even this
        bare = start_exchange(tmp_path / "bare", db=db, follower=True)
        try:
            assert bare.app.deps.operator_key is None
            assert bare.app.deps.log_key is None
            assert not (tmp_path / "bare" / LOG_KEY_FILE).exists()
        finally:
            bare.stop()
    finally:
        a.stop()
