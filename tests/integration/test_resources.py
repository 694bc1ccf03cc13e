"""Resources are bounded by the configuration, not by what clients do (issue 16, item 1).

Each test runs ``licentia-server`` as a real process on 127.0.0.1:0 and counts its open files
(``/proc/PID/fd``) and threads (``/proc/PID/task``).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped]
import pytest

from licentia.errors import Reason
from licentia.keys import PrivateKey
from licentia.services.deps import Settings
from licentia.services.runtime import FileBudget
from licentia.services.store import SqliteStore
from licentia.services.store.sqlite import IDLE_READERS
from licentia.v1 import exchange_pb2, licences_pb2, records_pb2

from .exchange_harness import (
    FUNDS,
    ExchangeError,
    Party,
    SignedChannel,
    fund,
    issue_licence,
    method_path,
    operator_party,
    register_advertiser,
    register_holder,
    request_licence,
    secret_in,
    start_exchange,
    wait_for,
)

pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")

WATCH = method_path(licences_pb2, "WatchRevocations")
#: A channel with a connection of its own (channels to one address otherwise share one).
OWN_CONNECTION = ("grpc.use_local_subchannel_pool", 1)
#: ``after_sequence`` past any list: the stream starts with a snapshot, then waits.
FAR_AHEAD = 2**64 - 1


@dataclass
class Process:
    """A running ``licentia-server`` and where it listens."""

    proc: subprocess.Popen[str]
    address: str
    data_dir: Path

    def files(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def threads(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/task"))

    def store_files(self) -> int:
        """The open files that are the store's (its database and WAL, each read connection
        holding its own)."""
        d = f"/proc/{self.proc.pid}/fd"
        here = str(self.data_dir)
        return sum(1 for f in os.listdir(d) if _link(f"{d}/{f}").startswith(here))


def _link(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:  # closed meanwhile
        return ""


def _limit(files: int) -> Callable[[], None]:
    def lower() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (files, files))

    return lower


def _server_command(data_dir: Path, *flags: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "licentia.services.server",
        "--data-dir",
        str(data_dir),
        "--listen",
        "127.0.0.1:0",
        *flags,
    ]


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Process]]:
    """Start a server process with flags (and a lowered open-files limit, ``files=N``)."""
    started: list[subprocess.Popen[str]] = []

    def start(*flags: str, files: int | None = None) -> Process:
        data_dir = tmp_path / f"data{len(started)}"
        port_file = tmp_path / f"port{len(started)}"
        proc = subprocess.Popen(
            _server_command(data_dir, "--port-file", str(port_file), *flags),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
            preexec_fn=None if files is None else _limit(files),  # noqa: PLW1509
        )
        started.append(proc)
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            assert proc.poll() is None, f"the server exited with {proc.returncode}"
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        return Process(proc, f"127.0.0.1:{port_file.read_text().strip()}", data_dir)

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _parties(server: Process) -> tuple[Party, Party, list[grpc.Channel]]:
    """A registered holder and a funded advertiser, each on its own channel."""
    channels = [grpc.insecure_channel(server.address) for _ in range(3)]
    holder_key, adv_key = PrivateKey.generate(), PrivateKey.generate()
    holder = Party(holder_key, SignedChannel(channels[0], holder_key))
    adv = Party(adv_key, SignedChannel(channels[1], adv_key), secret=secret_in(server.data_dir))
    register_holder(holder)
    register_advertiser(adv, funds=0)
    fund(operator_party(channels[2], server.data_dir), adv_key.public.raw, FUNDS)
    return holder, adv, channels


def _open_streams(address: str, n: int) -> tuple[list[Any], list[grpc.Channel], list[str]]:
    """``n`` unsigned WatchRevocations streams, each on a channel (a connection) of its own:
    the calls, the channels, and how each began (``"open"``: its snapshot came; otherwise
    the status code it was refused with)."""
    calls, channels, outcomes = [], [], []
    body = licences_pb2.WatchRevocationsRequest(after_sequence=FAR_AHEAD).SerializeToString()
    for _ in range(n):
        ch = grpc.insecure_channel(address, options=[OWN_CONNECTION])
        channels.append(ch)
        call = ch.unary_stream(WATCH, request_serializer=None, response_deserializer=None)(
            body, timeout=60
        )
        calls.append(call)
    for call in calls:
        try:
            next(call)
            outcomes.append("open")
        except grpc.RpcError as e:
            outcomes.append(e.code().name)
    return calls, channels, outcomes


def _close(calls: list[Any], channels: list[grpc.Channel]) -> None:
    for call in calls:
        call.cancel()
    for ch in channels:
        ch.close()


def test_a_stream_flood_leaves_nothing_behind_and_issuance_works(
    spawn: Callable[..., Process],
) -> None:
    # 64 workers: at most 32 streams, 16 of them from one address (this one); heartbeats
    # every 60 s, so a cancelled stream that waited for its next heartbeat would hold its
    # slot and its thread for a minute. The
    # process may open 300 files; the flood has 150 connections (up to 100 are taken).
    server = spawn(
        "--workers", "64", "--heartbeat-seconds", "60", "--max-connections", "100", files=300
    )
    holder, adv, channels = _parties(server)
    try:
        issue_licence(holder, adv)
        time.sleep(1)  # the warm-up's idle workers end
        files, threads = server.files(), server.threads()
        store_files = server.store_files()
        assert store_files >= 2  # the writer: the database and its WAL

        calls, flood, outcomes = _open_streams(server.address, 150)
        assert outcomes.count("open") == 16  # the stream cap, half of it per client
        assert set(outcomes) == {"open", "RESOURCE_EXHAUSTED", "UNAVAILABLE"}
        # 100 connections at most, one of them the parties': the rest are not accepted.
        assert outcomes.count("UNAVAILABLE") == 51
        assert files + 90 <= server.files() < 300  # the flood holds ~100; never at the limit
        issue_licence(holder, adv)  # the exchange serves during the flood
        _close(calls, flood)

        # The store keeps up to IDLE_READERS read connections open once a burst of reads
        # (the flood's feeds start by reading the store) has opened them: a bounded pool,
        # not a leak. Every other file, the connections first, must be given back.
        idle = 2 * IDLE_READERS  # a read connection holds the database and its WAL

        def settled() -> bool:
            others = server.files() - server.store_files()
            return (
                others <= files - store_files + 4
                and server.store_files() <= store_files + idle
                and server.threads() <= threads + 4
            )

        took = wait_for(settled, timeout=5)
        assert took < 1.0, f"took {took:.2f} s: {server.files()} files, {server.threads()} threads"

        # Every slot is free again: this address's share of them opens. (A cancelled
        # stream's slot is given back by its handler as it ends, which can come a moment
        # after its connection's files are closed: a slot still held shows as a refusal
        # here, and the next try, a moment later, must open all 16. A slot never given back
        # fails every try.)
        def share_opens() -> bool:
            calls, again, outcomes = _open_streams(server.address, 17)
            _close(calls, again)
            if outcomes == ["open"] * 16 + ["RESOURCE_EXHAUSTED"]:
                return True
            time.sleep(0.2)  # this try's own streams give their slots back too
            return False

        wait_for(share_opens, timeout=5)
        issue_licence(holder, adv)
    finally:
        for ch in channels:
            ch.close()


def test_a_configuration_that_cannot_fit_the_open_files_limit_refuses_to_start(
    tmp_path: Path,
) -> None:
    proc = subprocess.run(
        _server_command(tmp_path / "data", "--max-connections", "2000"),
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=_limit(1024),
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("licentia-server: error: this configuration needs up to")
    assert "only 1024" in proc.stderr
    assert "--max-connections" in proc.stderr
    assert not (tmp_path / "data").exists()  # refused before it created anything


@pytest.mark.parametrize(
    ("flag", "says"),
    [("--http", "for the HTTP gateway's connections"), ("--metrics", "for the metrics server")],
)
def test_the_open_files_budget_counts_the_gateway_and_the_metrics_server(
    tmp_path: Path, flag: str, says: str
) -> None:
    """A limit that holds gRPC's connections and the database but not the gateway's
    connections (or the metrics server's files) too: refused with --http (--metrics)."""
    limit = FileBudget(512, SqliteStore.open_files(256)).needed  # gRPC's alone, exactly

    def check(*flags: str) -> subprocess.CompletedProcess[str]:
        command = _server_command(tmp_path / "data", "--processes", "1", *flags)
        return subprocess.run(
            [*command[:3], "check-config", *command[3:]],
            capture_output=True,
            text=True,
            timeout=60,
            preexec_fn=_limit(limit),
            check=False,
        )

    fits = check()
    assert fits.returncode == 0, fits.stderr
    proc = check(flag, "127.0.0.1:0")
    assert proc.returncode == 1
    assert proc.stderr.startswith("licentia-server: error: this configuration needs up to")
    assert says in proc.stderr
    assert f"only {limit}" in proc.stderr


def test_the_soft_open_files_limit_is_raised_when_the_hard_one_allows(tmp_path: Path) -> None:
    def low_soft() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 4096))

    port_file = tmp_path / "port"
    proc = subprocess.Popen(
        _server_command(tmp_path / "data", "--port-file", str(port_file)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=low_soft,  # noqa: PLW1509
    )
    try:
        wait_for(lambda: port_file.exists() and bool(port_file.read_text().strip()), 30)
        limits = Path(f"/proc/{proc.pid}/limits").read_text()
        line = next(x for x in limits.splitlines() if x.startswith("Max open files"))
        soft, hard = (int(v) for v in line.split()[3:5])
        assert hard == 4096
        assert soft > 256  # 64 + 512 connections + the database's files
    finally:
        proc.kill()
        proc.wait()


#: Run in a process of its own: a store whose process has no file descriptor left answers
#: reads UNAVAILABLE (never an internal error) and reads again once descriptors are free.
_OUT_OF_FILES = """
import errno, os, sys
from licentia.errors import LicentiaError
from licentia.services.store import SqliteStore

store = SqliteStore(sys.argv[1])
held = []
try:
    while True:
        held.append(os.open(os.devnull, os.O_RDONLY))
except OSError as e:
    assert e.errno == errno.EMFILE
try:
    store.status(0)
except LicentiaError as e:
    print("refused", e.reason.name)
for fd in held:
    os.close(fd)
print("after", store.status(0)[2])
"""


def test_a_store_out_of_file_descriptors_is_unavailable_and_recovers(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _OUT_OF_FILES, str(tmp_path / "licentia.db")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["refused UNAVAILABLE", "after 0"]


def test_a_cancelled_watch_request_gives_its_stream_slot_back_at_once(tmp_path: Path) -> None:
    """WatchRequest waits a second between looks at its request; a watcher whose client goes
    away must not hold its stream slot for that second (it did: BUSY for the next watcher)."""
    ex = start_exchange(
        tmp_path / "data",
        max_streams=2,
        settings=Settings(heartbeat_seconds=0.5, max_streams_per_client=2),  # all from here
    )
    try:
        holder, adv = ex.party(), ex.party()
        register_holder(holder)
        register_advertiser(adv)
        pending = request_licence(adv, holder.key.public.raw).request
        watch = method_path(exchange_pb2, "WatchRequest")
        body = exchange_pb2.WatchRequestRequest(request_id=pending.request_id)

        def watcher() -> tuple[grpc.Channel, Iterator[Any]]:
            channel = ex.channel()
            updates = SignedChannel(channel, adv.key).server_stream(
                watch, body, exchange_pb2.WatchRequestResponse, timeout=10
            )
            return channel, updates

        (first, updates), (_, others) = watcher(), watcher()
        assert next(updates).request.state == records_pb2.REQUEST_STATE_PENDING
        assert next(others).request.state == records_pb2.REQUEST_STATE_PENDING
        with pytest.raises(ExchangeError) as busy:
            next(watcher()[1])
        assert busy.value.reason is Reason.BUSY
        first.close()  # the first watcher goes away
        time.sleep(0.2)
        assert next(watcher()[1]).request.state == records_pb2.REQUEST_STATE_PENDING
    finally:
        ex.stop()
