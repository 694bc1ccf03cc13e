"""``licentia-server --processes 2``: one port, two processes, one exchange.

A real server process with one worker: Verify is answered by both processes; a write made
through any connection is seen through every one (a revocation within the feed's bound,
a counted licence's use by every Verify); a signed call replayed on any connection is
refused, whichever process gets it; a worker that dies is started again, and none outlives
the first process. Configurations that cannot work are refused before anything starts.
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc  # type: ignore[import-untyped]
import pytest

from licentia.errors import Reason
from licentia.keys import PrivateKey
from licentia.methods import path
from licentia.presentation import present
from licentia.request import sign_request
from licentia.services.runtime import client_channel
from licentia.services.server import main as server_main
from licentia.services.shared_nonces import SharedNonceTable
from licentia.token import parse_token
from licentia.v1 import ledger_pb2, licences_pb2, verification_pb2

from .exchange_harness import (
    ExchangeError,
    Party,
    ServerProcess,
    SignedChannel,
    fund,
    issue_licence,
    operator_party,
    photo_use,
    raw_unary,
    reasons,
    register_advertiser,
    register_holder,
    register_platform,
    report_use,
    revoke_licence,
    secret_in,
    server_process,
    verify,
    wait_for,
)

VERIFY = path(verification_pb2, "Verify")
VERIFY_STREAM = path(verification_pb2, "VerifyStream")
DEPOSIT = path(ledger_pb2, "Deposit")
#: Connections opened to the port: the kernel spreads them over the processes, so that all
#: of them landing on one process has odds of 2**-15.
CONNECTIONS = 16


def _worker_pids(server: ServerProcess) -> list[int]:
    return [int(str(d["pid"])) for d in server.lines() if d.get("event") == "procs.worker_started"]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with server_process(tmp_path, "--processes", "2", "--heartbeat-seconds", "0.5") as running:
        yield running


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"  # ended, not yet reaped by its new parent


def _connections(address: str, n: int) -> list[grpc.Channel]:
    """``n`` channels, each its own TCP connection (no subchannel shared between them)."""
    return [
        grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(n)
    ]


def test_two_processes_serve_one_exchange(server: ServerProcess) -> None:
    secret = secret_in(server.data)
    main_channel = client_channel(server.address)
    channels = _connections(server.address, CONNECTIONS)
    try:

        def party(channel: grpc.Channel, key: PrivateKey | None = None) -> Party:
            key = key or PrivateKey.generate()
            return Party(key, SignedChannel(channel, key), secret=secret)

        holder, adv, platform = party(main_channel), party(main_channel), party(main_channel)
        register_holder(holder)
        register_advertiser(adv)
        fund(operator_party(main_channel, server.data), adv.key.public.raw)
        register_platform(platform)
        token = issue_licence(holder, adv).token
        counted = issue_licence(holder, adv, max_uses=1).token
        platforms = [party(ch, platform.key) for ch in channels]

        # Verify answers ALLOW through every connection, from both processes.
        for p in platforms:
            assert verify(p, adv, token, photo_use()).allowed
        answered = {d.get("worker") for d in server.lines() if d.get("method") == VERIFY}
        assert answered == {None, 1}  # the first process and the worker

        # A platform registered a moment ago is known at once, and a key of no platform is
        # told NOT_OWNER, through every connection: a worker relays a caller it does not know.
        late = party(main_channel)
        register_platform(late, "lateplatform")
        for ch in channels:
            assert verify(party(ch, late.key), adv, token, photo_use(), "lateplatform").allowed
            with pytest.raises(ExchangeError) as refused:
                verify(party(ch, holder.key), adv, token, photo_use())
            assert refused.value.reason == Reason.NOT_OWNER
        # VerifyStream too: answered by either process, relayed (both ways) for a stranger.
        licence_id = parse_token(token).licence_id
        for ch in channels:
            for key, expected in ((platform.key, None), (holder.key, Reason.NOT_OWNER)):
                checks = [_check(adv, licence_id, token) for _ in range(2)]
                answers = SignedChannel(ch, key).stream_stream(
                    VERIFY_STREAM, checks, verification_pb2.VerifyResponse, timeout=10
                )
                if expected is None:
                    assert [a.allowed for a in answers] == [True, True]
                else:
                    with pytest.raises(ExchangeError) as refused:
                        list(answers)
                    assert refused.value.reason == expected

        # A signed call replayed on every other connection is refused by both processes:
        # a Verify (answered from memory) and a write relayed to the first process.
        pres = present(adv.key, licence_id, "photoshare", photo_use(), int(time.time()))
        body = verification_pb2.VerifyRequest(
            token=token, presentation=pres, use=photo_use().to_proto()
        ).SerializeToString()
        deposit = ledger_pb2.DepositRequest(
            advertiser_key=adv.key.public.raw, amount_minor=5, reference="replayed"
        ).SerializeToString()
        operator = operator_party(main_channel, server.data).key
        for key, method, payload in ((platform.key, VERIFY, body), (operator, DEPOSIT, deposit)):
            signed = sign_request(key, method, payload, int(time.time()))
            raw_unary(channels[0], method, payload, signed)
            for ch in channels[1:]:
                with pytest.raises(ExchangeError) as e:
                    raw_unary(ch, method, payload, signed)
                assert e.value.reason == Reason.REPLAYED_REQUEST, method

        # A counted licence's use, reported through one connection, is known to every Verify.
        report_use(platforms[1], adv, counted, photo_use())
        for p in platforms:
            assert reasons(verify(p, adv, counted, photo_use())) == [Reason.USES_EXHAUSTED]

        # A revocation through one connection reaches every process within the feed's bound.
        revoke_licence(party(channels[3], holder.key), licence_id)
        took = wait_for(
            lambda: all(
                reasons(verify(p, adv, token, photo_use())) == [Reason.REVOKED] for p in platforms
            ),
            3,
        )
        assert took < 3
        # A stream relayed to the first process (WatchRevocations) carries the revocation.
        for ch in channels[:4]:
            stream = party(ch).stream(
                licences_pb2,
                "WatchRevocations",
                licences_pb2.WatchRevocationsRequest(after_sequence=0),
                licences_pb2.WatchRevocationsResponse,
            )
            assert next(iter(stream)).WhichOneof("message") == "event"  # the one revocation

        # A worker that dies is started again, and serves.
        (worker,) = _worker_pids(server)
        os.kill(worker, signal.SIGKILL)
        wait_for(lambda: len(_worker_pids(server)) == 2, 30)
        restarted = _worker_pids(server)[-1]
        assert restarted != worker
        assert not _gone(restarted)
    finally:
        for ch in (main_channel, *channels):
            ch.close()
    fresh = _connections(server.address, CONNECTIONS)
    try:
        for ch in fresh:
            assert reasons(verify(party_of(ch, platform.key), adv, token, photo_use())) == [
                Reason.REVOKED
            ]
    finally:
        for ch in fresh:
            ch.close()
    assert any(d.get("pid") == restarted and d.get("method") == VERIFY for d in server.lines())

    # Killing the first process leaves no worker behind, nor its private socket.
    (started,) = [d for d in server.lines() if d.get("event") == "procs.started"]
    private = Path(str(started["socket"]).removeprefix("unix:")).parent
    assert private.is_dir()
    server.proc.kill()
    server.proc.wait(10)
    wait_for(lambda: _gone(restarted), 10)
    assert not private.exists()


def _check(adv: Party, licence_id: bytes, token: str) -> verification_pb2.VerifyRequest:
    """One check of ``token`` by the platform "photoshare", with a fresh presentation."""
    pres = present(adv.key, licence_id, "photoshare", photo_use(), int(time.time()))
    return verification_pb2.VerifyRequest(
        token=token, presentation=pres, use=photo_use().to_proto()
    )


def party_of(channel: grpc.Channel, key: PrivateKey) -> Party:
    return Party(key, SignedChannel(channel, key))


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--processes", "2", "--follower"], "--follower or --upstream"),
        (["--processes", "2", "--services", "verification,licences"], "must include"),
        (["--processes", "-1"], "--processes is 0 (one per core) to 256"),
        (["--processes", "257"], "--processes is 0 (one per core) to 256"),
    ],
)
def test_a_configuration_that_cannot_work_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], says: str
) -> None:
    assert server_main(["--data-dir", str(tmp_path / "d"), *args]) == 2
    assert says in capsys.readouterr().err
    assert not (tmp_path / "d").exists()  # refused before anything was made


def test_the_open_files_budget_counts_the_workers(tmp_path: Path) -> None:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))

    command = [sys.executable, "-m", "licentia.services.server", "--data-dir", str(tmp_path)]
    # 64 + 800 connections + 100 for the database fits in 1,024 for one process, not with
    # 60 workers' pipes and connections (4 each).
    proc = subprocess.run(
        [*command, "--max-connections", "800", "--processes", "61"],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=limit,
        check=False,
    )
    assert proc.returncode == 2
    assert "+ 240 for 60 workers)" in proc.stderr
    assert "only 1024" in proc.stderr


def test_a_port_in_use_is_refused_not_shared(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # would let a reuser join
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        code = server_main(
            ["--data-dir", str(tmp_path / "d"), "--processes", "2", "--listen", f"127.0.0.1:{port}"]
        )
    assert code == 2
    assert "cannot listen on" in capsys.readouterr().err


def test_the_shared_nonce_table_refuses_a_replay_seen_by_another_process() -> None:
    table = SharedNonceTable.create(buckets=1)  # 8 slots
    other = SharedNonceTable(os.dup(table.fd), 1)  # as a worker maps it
    try:
        requests, presentations = table.view(b"request"), other.view(b"presentation")
        assert requests.add_if_new(b"n1", 100, 10)
        assert not other.view(b"request").add_if_new(b"n1", 100, 10)  # seen elsewhere
        assert presentations.add_if_new(b"n1", 100, 10)  # another kind of nonce
        for i in range(6):
            assert requests.add_if_new(b"k%d" % i, 50, 10)
        assert not requests.add_if_new(b"full", 100, 10)  # full of live ones: fail closed
        assert requests.add_if_new(b"full", 100, 60)  # the k* expired at 50
        assert not requests.add_if_new(b"n1", 200, 60)  # still live
        assert requests.add_if_new(b"n1", 200, 100)  # expired: a new nonce again
    finally:
        table.close()
        other.close()
