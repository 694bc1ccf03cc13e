"""``rpc.verify.processes``: Verify calls/s of ``licentia-server --processes N`` ÷ of one process.

Two real servers (``python -m licentia.services.server``, each on its own data directory with
one licence issued by a standing rule and one registered platform), one with
``--processes 1``, one with ``--processes N`` (default: the cores this process may use), are
started together and measured one after the other by the same load generator: ``--clients``
client processes (default: the cores), each with 8 threads on connections of their own (the
kernel spreads connections, not calls, over the server's processes), each sending pre-signed
Verify calls (a fresh presentation and a fresh request signature each, made before the timed
part) as fast as they are answered.
The rate is every call answered ÷ the time from the first call sent to the last answer, over
all client processes.

The goal is 0.8 × N on a machine with cores to spare for the load generator (the clients'
cores are not the server's). On a machine with fewer cores than N plus the clients' the
clients and the server's processes share the cores and the figure is reported, not a target:
the row says so (``target`` null, ``ok`` true). Every answer must be ALLOW (``denied`` 0:
a REPLAYED or STATUS_STALE here would be a bug), else the row fails.

Run with ``python bench/bench_processes.py``; ``--quick`` runs one short round each (the
project's tests run it so).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from queue import Empty
from typing import Any

import grpc  # type: ignore[import-untyped]
from exchange_process import (
    AUDIENCE,
    USE,
    ExchangeProcess,
    add_standing_rule,
    call,
    deposit,
    find_offer,
    licence_request,
    operator_key,
    register_advertiser,
    register_holder,
    register_platform,
)
from report import emit

from licentia.clients.channel import SignedChannel
from licentia.keys import PrivateKey
from licentia.methods import path
from licentia.presentation import present
from licentia.request import sign_request
from licentia.token import parse_token
from licentia.v1 import exchange_pb2, verification_pb2

VERIFY = path(verification_pb2, "Verify")
THREADS = 8
#: The goal, as a fraction of N, where the machine has cores to spare.
GOAL = 0.8
HOLDER, ADVERTISER, PLATFORM = (bytes([i]) * 32 for i in (1, 2, 3))


@dataclass(frozen=True)
class Load:
    """What one client process is told."""

    address: str
    token: str
    threads: int
    calls: int


def _client(commands: Any, ready: Any, results: Any) -> None:
    """One client process, for every round: take a :class:`Load`, sign every call, connect,
    say ready, wait for the go, send; until it is given None."""
    while (load := commands.get()) is not None:
        results.put(_round(load, commands, ready))


def _round(load: Load, commands: Any, ready: Any) -> tuple[int, int, float, float]:
    adv, platform = PrivateKey.from_seed(ADVERTISER), PrivateKey.from_seed(PLATFORM)
    licence_id = parse_token(load.token).licence_id
    use = USE.to_proto()
    jobs: list[list[tuple[bytes, Any]]] = []
    for _ in range(load.threads):
        mine = []
        for _ in range(load.calls):
            now = int(time.time())
            pres = present(adv, licence_id, AUDIENCE, USE, now)
            body = verification_pb2.VerifyRequest(
                token=load.token, presentation=pres, use=use
            ).SerializeToString()
            mine.append((body, sign_request(platform, VERIFY, body, now)))
        jobs.append(mine)
    channels = [
        grpc.insecure_channel(load.address, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(load.threads)
    ]
    for ch in channels:
        grpc.channel_ready_future(ch).result(timeout=30)
    denied = [0] * load.threads
    ends = [0.0] * load.threads

    def run(i: int) -> None:
        verify = channels[i].unary_unary(
            VERIFY,
            request_serializer=None,
            response_deserializer=verification_pb2.VerifyResponse.FromString,
        )
        for body, metadata in jobs[i]:
            if not verify(body, metadata=metadata, timeout=30).allowed:
                denied[i] += 1
        ends[i] = time.time()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(load.threads)]
    ready.put(os.getpid())
    assert commands.get() == "go"
    started = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for ch in channels:
        ch.close()
    return load.threads * load.calls, sum(denied), started, max(ends)


class Clients:
    """The load generator: ``count`` client processes, kept for every round."""

    def __init__(self, count: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.ready, self.results = ctx.Queue(), ctx.Queue()
        self.commands = [ctx.Queue() for _ in range(count)]
        self.procs = [
            ctx.Process(target=_client, args=(q, self.ready, self.results), daemon=True)
            for q in self.commands
        ]
        for p in self.procs:
            p.start()

    def drive(self, address: str, token: str, calls: int) -> tuple[float, int]:
        """Calls/s of every client's :data:`THREADS` threads sending ``calls`` calls each;
        and the calls not answered ALLOW."""
        for q in self.commands:
            q.put(Load(address, token, THREADS, calls))
        self._wait(self.ready, 120)
        for q in self.commands:
            q.put("go")
        done = self._wait(self.results, 300)
        total = sum(d[0] for d in done)
        seconds = max(d[3] for d in done) - min(d[2] for d in done)
        return total / seconds, sum(d[1] for d in done)

    def _wait(self, queue: Any, timeout: float) -> list[Any]:
        """One message from every client (``SystemExit`` if one died or the time ran out)."""
        got: list[Any] = []
        deadline = time.monotonic() + timeout
        while len(got) < len(self.procs):
            try:
                got.append(queue.get(timeout=0.5))
            except Empty:
                if not all(p.is_alive() for p in self.procs) or time.monotonic() > deadline:
                    raise SystemExit("a client process died or did not answer") from None
        return got

    def close(self) -> None:
        """End the client processes."""
        for q in self.commands:
            q.put(None)
        for p in self.procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()


def setup(address: str, data_dir: Path) -> str:
    """A holder with a standing rule, a funded advertiser, the platform; one licence's token."""
    channel = grpc.insecure_channel(address)
    try:
        holder, adv, platform = (PrivateKey.from_seed(s) for s in (HOLDER, ADVERTISER, PLATFORM))
        h, a, p = (SignedChannel(channel, k) for k in (holder, adv, platform))
        register_holder(h, "benchholder")
        add_standing_rule(h, holder)
        register_advertiser(a, "Bench Ads")
        deposit(SignedChannel(channel, operator_key(data_dir)), adv.public, 10**9, "bench")
        register_platform(p)
        resp = call(
            a,
            path(exchange_pb2, "RequestLicence"),
            licence_request(find_offer(a, "benchholder"), int(time.time())),
            exchange_pb2.RequestLicenceResponse,
        )
        return str(resp.licence.token)
    finally:
        channel.close()


def server_cpu(pid: int) -> float:
    """CPU seconds used so far by the server process ``pid`` and its workers (children)."""
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        pids += [int(c) for c in (task / "children").read_text().split()]
    ticks = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit 1 if the goal is missed where it is a target."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="one short round each")
    ap.add_argument("--processes", type=int, default=cores(), help="N (default: the cores)")
    ap.add_argument(
        "--clients", type=int, default=cores(), help="client processes (default: the cores)"
    )
    args = ap.parse_args(argv)
    rounds, calls, warm = (1, 30, 0) if args.quick else (3, 600, 60)
    rates: dict[int, list[float]] = {1: [], args.processes: []}
    cpu_us: dict[int, list[float]] = {1: [], args.processes: []}
    calls_made = args.clients * THREADS * calls
    denied = 0
    clients = Clients(args.clients)
    with tempfile.TemporaryDirectory(prefix="licentia-bench-") as tmp:
        # Both servers start at once (each on its own data directory), and are measured
        # one after the other by the same client processes.
        servers = {
            n: ExchangeProcess(Path(tmp) / f"data-{n}", heartbeat_seconds=1.0, processes=n)
            for n in rates
        }
        try:
            with ThreadPoolExecutor(len(servers)) as pool:
                list(pool.map(ExchangeProcess.start, servers.values()))
            for n, measured in rates.items():
                server = servers[n]
                token = setup(server.address, server.data_dir)
                if warm:
                    clients.drive(server.address, token, warm)
                for _ in range(rounds):
                    cpu = server_cpu(server.pid)
                    rate, bad = clients.drive(server.address, token, calls)
                    measured.append(rate)
                    cpu_us[n].append((server_cpu(server.pid) - cpu) / calls_made * 1e6)
                    denied += bad
        finally:
            for server in servers.values():
                server.stop()
            clients.close()
    one, many = statistics.median(rates[1]), statistics.median(rates[args.processes])
    ratio = many / one
    spare = cores() >= args.processes + args.clients
    target = round(GOAL * args.processes, 3) if spare else None
    row = {
        "bench": "rpc.verify.processes",
        "ops_per_s": round(many),
        "ratio": round(ratio, 3),
        "target": target,
        "limit": (
            f"Verify calls/s with --processes 1 ({round(one)}/s), same load: {args.clients}"
            f" client processes x {THREADS} connections"
        ),
        "processes": args.processes,
        "cores": cores(),
        "clients": args.clients,
        "note": (
            None
            if spare
            else f"reported, not a target: {cores()} cores for {args.processes} server"
            f" processes and {args.clients} client processes"
        ),
        # The server's CPU (every process of it) per call: where it stays level, the
        # processes add throughput as cores are added.
        "server_cpu_us_per_call_1": round(statistics.median(cpu_us[1])),
        "server_cpu_us_per_call_n": round(statistics.median(cpu_us[args.processes])),
        "per_round_1": [round(r) for r in rates[1]],
        "per_round_n": [round(r) for r in rates[args.processes]],
        "denied": denied,
        "ok": denied == 0 and (target is None or ratio >= target),
    }
    code = emit([row])  # without a target (no spare cores) the line is reported...
    return code or (1 if denied else 0)  # ...but a refused Verify fails the bench


if __name__ == "__main__":
    sys.exit(main())
