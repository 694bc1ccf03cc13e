"""Benchmark of revocation fan-out: an exchange, verify-only replicas relaying its feed, and
thousands of ``WatchRevocations`` streams on them, all real processes.

Prints one JSON object per line, like the other benches: ``bench``, ``ops_per_s``, ``ratio``,
``target``, ``limit``, ``ok`` (and ``value`` / ``p99_ms``).

- ``revocation.fanout``: an exchange (``licentia-server`` in its own process) and ``--replicas``
  verify-only replicas (``licentia-server --services verification --upstream``, each its own
  process, relaying the exchange's signed feed: services/relay.py). ``--streams`` streams in
  all: ``--direct`` of them on the exchange itself, the rest spread evenly over the replicas.
  The subscribers are ``grpc.aio`` clients in ``--subscribers`` processes of their own
  (bench/fanout_subscribers.py; 100 streams share an HTTP/2 connection); they note each
  event's arrival on each stream and check nothing (a platform's verifier checks signatures
  in its own process). Revocations are made one at a time at the exchange; for each, the
  milliseconds from RevokeLicence's return to the event's arrival on the *last* stream of a
  tier (the exchange's streams; the replicas' streams, one tier). The row's value is the p99
  of that over the revocations for the replicas' tier (the exchange's tier beside it), with
  the count of arrivals missing (a stream that never got an event, or ended). Target: 50 ms
  through one tier, 0 missing.
  It also reports what each replica costs per stream: threads and resident memory (from
  /proc, before and after its streams opened), the bytes one event takes on each stream, and
  the CPU per message sent on one stream (received, for the subscribers).
- The floor (``floor_p99_ms``, ``floor_ratio`` = floor ÷ target, ``of_floor`` = floor ÷
  figure as bench/report.py has it for a latency, 1.0 at the floor; ``floor_tiers``): in the
  same run, after the replicas' phase, the same streams and subscriber processes on bare
  ``grpc.aio`` relays in the replicas' place (bench/fanout_floor.py: the exchange's feed read
  as bytes and pushed to every stream as it came; no follower, window, check or encoding per
  stream), measured the same way with as many revocations (of other licences): the least
  any relay on gRPC Python pays. ``--no-floor`` skips it; ``--floor-option`` tries a gRPC
  server option on the floor relays.

Both clocks are the machine's monotonic clock (one clock for every process of the run).

Run with ``python bench/bench_fanout.py``; ``--quick`` runs a hundred streams for a few
seconds (the tests use it). The machine's cores are shared by every process of the run.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped]
from exchange_process import (
    ExchangeProcess,
    add_standing_rule,
    call,
    deposit,
    find_offer,
    licence_request,
    operator_key,
    register_advertiser,
    register_holder,
)
from fanout_floor import FloorProcess
from fanout_subscribers import Subscribers
from report import emit

from licentia.clients.channel import SignedChannel
from licentia.keys import PrivateKey
from licentia.methods import path
from licentia.v1 import exchange_pb2, licences_pb2, records_pb2

#: revocation.fanout's target: p99 ms through one tier of replicas.
TARGET_MS = 50.0
REVOKE = path(licences_pb2, "RevokeLicence")
#: Revocations made before measuring (every stream must see them).
WARMUP = 2
#: Seconds the exchange waits between heartbeats (a replica relays each).
HEARTBEAT_SECONDS = 3.0
#: Counted for a revocation whose event reached no stream of a tier.
ARRIVAL_TIMEOUT = 5.0


@dataclass(frozen=True)
class Sizes:
    """How big a run is."""

    streams: int
    direct: int
    replicas: int
    subscribers: int
    revocations: int
    gap_s: float


FULL = Sizes(streams=2000, direct=400, replicas=4, subscribers=2, revocations=40, gap_s=1.0)
QUICK = Sizes(streams=100, direct=20, replicas=1, subscribers=1, revocations=4, gap_s=0.2)


# -- the run -------------------------------------------------------------------------------


def _cpu(pid: int) -> float:
    """A process's CPU seconds so far (user + system), from /proc (0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _proc(pid: int) -> tuple[int, int]:
    """A process's resident memory (KiB) and threads, from /proc (0, 0 elsewhere)."""
    rss = threads = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    except OSError:
        pass
    return rss, threads


def _licences(address: str, data_dir: Path, count: int) -> tuple[SignedChannel, list[bytes]]:
    """A holder with a standing rule, a funded advertiser, ``count`` licences issued to it;
    the holder's channel (she revokes) and the licence ids."""
    channel = grpc.insecure_channel(address)
    holder, adv = PrivateKey.from_seed(b"\x01" * 32), PrivateKey.from_seed(b"\x02" * 32)
    h, a = SignedChannel(channel, holder), SignedChannel(channel, adv)
    register_holder(h, "fanoutholder")
    add_standing_rule(h, holder)
    register_advertiser(a, "Fan-out Ads")
    deposit(SignedChannel(channel, operator_key(data_dir)), adv.public, 10**11, "fanout")
    refs = find_offer(a, "fanoutholder")

    def issue(_: int) -> bytes:
        resp = call(
            a,
            path(exchange_pb2, "RequestLicence"),
            licence_request(refs, int(time.time())),
            exchange_pb2.RequestLicenceResponse,
        )
        return bytes(resp.licence.licence_id)

    with ThreadPoolExecutor(4) as pool:
        return h, list(pool.map(issue, range(count)))


def _workers(streams: int) -> str:
    """``--workers`` for a server holding ``streams`` streams: streams may take all but 32
    slots (each a thread on the exchange's sync server; a coroutine on a replica's), and
    one address (every subscriber here is on loopback) at most half of those."""
    return str(max(2 * streams + 64, 256))


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _p99(values: list[float]) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[98]


@dataclass
class Phase:
    """What one phase of a run saw: the subscribers' results, when each measured
    revocation returned (by sequence), CPU seconds by role, how many streams opened, and how
    long it took."""

    seen: list[dict[str, Any]]
    returned: dict[int, float]
    cpu: dict[str, list[float]]
    opened: int
    spent: float


def _phase(
    sizes: Sizes,
    exchange: ExchangeProcess,
    holder: SignedChannel,
    ids: list[bytes],
    relays: list[tuple[str, int]],
    on_ready: Any = None,
) -> Phase:
    """Open the streams (``sizes.direct`` on the exchange, the rest on ``relays``, each an
    address and its pid) in ``sizes.subscribers`` processes, revoke ``ids`` one at a time
    (the first ``WARMUP`` unmeasured), and collect the arrivals."""
    per_replica = _split(sizes.streams - sizes.direct, len(relays))
    shares: list[list[tuple[str, str, int]]] = [[] for _ in range(sizes.subscribers)]
    for tier, address, n in [
        ("exchange", exchange.address, sizes.direct),
        *(("replicas", a, n) for (a, _), n in zip(relays, per_replica, strict=True)),
    ]:
        for share, k in zip(shares, _split(n, sizes.subscribers), strict=True):
            if k:
                share.append((tier, address, k))
    subscribers = [Subscribers(share) for share in shares]
    try:
        opened = sum(s.ready() for s in subscribers)
        time.sleep(0.5)
        if on_ready is not None:
            on_ready()
        pids = {
            "exchange": [exchange.pid],
            "replicas": [pid for _, pid in relays],
            "subscribers": [s.popen.pid for s in subscribers],
        }
        cpu_from = {role: [_cpu(p) for p in ps] for role, ps in pids.items()}
        began = time.monotonic()
        returned: dict[int, float] = {}
        for i, licence_id in enumerate(ids):
            resp = holder.unary(
                REVOKE,
                licences_pb2.RevokeLicenceRequest(licence_id=licence_id),
                licences_pb2.RevokeLicenceResponse,
            )
            t = time.monotonic()
            seq = records_pb2.TerminationReceipt.FromString(resp.receipt.receipt).sequence
            if i >= WARMUP:
                returned[seq] = t
            time.sleep(sizes.gap_s)
        time.sleep(1.5)  # the last events arrive
        spent = time.monotonic() - began
        cpu = {
            role: [_cpu(p) - c for p, c in zip(ps, cpu_from[role], strict=True)]
            for role, ps in pids.items()
        }
        seen = [s.results() for s in subscribers]
    finally:
        for s in subscribers:
            s.kill()
    return Phase(seen, returned, cpu, opened, spent)


def _tiers(sizes: Sizes, phase: Phase) -> dict[str, Any]:
    """Each tier's figures: the p50/p99/max over revocations of the ms to its last stream."""
    counts = {"exchange": sizes.direct, "replicas": sizes.streams - sizes.direct}
    tiers: dict[str, Any] = {}
    for tier, streams in counts.items():
        if not streams:
            continue
        last: list[float] = []
        every: list[float] = []
        missing = 0
        for seq, t0 in phase.returned.items():
            times = [t for s in phase.seen for t in s["arrivals"].get(tier, {}).get(str(seq), [])]
            missing += streams - len(times)
            if times:
                late = [max(0.0, (t - t0) * 1000) for t in times]
                every.extend(late)
                last.append(max(late))
            else:
                last.append(ARRIVAL_TIMEOUT * 1000)
        tiers[tier] = {
            "streams": streams,
            "p99_ms": round(_p99(last), 2),
            "p50_ms": round(statistics.median(last), 2),
            "max_ms": round(max(last), 2),
            "p99_every_stream_ms": round(_p99(every), 2) if every else None,
            "missing": missing,
            "ended": sum(s["ended"].get(tier, 0) for s in phase.seen),
        }
    return tiers


def _per_message_us(sizes: Sizes, phase: Phase, role: str, streams: list[int]) -> float:
    """Mean CPU µs per message sent on one stream by each process of ``role`` (every
    relayed message counts: the events and the heartbeats sent meanwhile)."""
    messages = len(phase.returned) + WARMUP + phase.spent / HEARTBEAT_SECONDS
    per = [c / (messages * max(n, 1)) * 1e6 for c, n in zip(phase.cpu[role], streams, strict=True)]
    return round(statistics.mean(per), 1)


def run(
    sizes: Sizes, tmp: Path, floor: bool = True, floor_options: Sequence[str] = ()
) -> dict[str, Any]:
    """One run: the replicas' phase, then (``floor``) the same streams on floor relays
    (bench/fanout_floor.py) in their place; the figures."""
    on_replicas = sizes.streams - sizes.direct
    per_replica = _split(on_replicas, sizes.replicas)
    exchange = ExchangeProcess(
        tmp / "exchange",
        heartbeat_seconds=HEARTBEAT_SECONDS,
        extra_args=["--workers", _workers(sizes.direct + sizes.replicas)],
    )
    replicas: list[ExchangeProcess] = []
    floors: list[FloorProcess] = []
    measured = WARMUP + sizes.revocations
    after: list[tuple[int, int]] = []
    try:
        exchange.start()
        holder, ids = _licences(exchange.address, exchange.data_dir, measured * (1 + floor))
        for i, n in enumerate(per_replica):
            r = ExchangeProcess(
                tmp / f"replica{i}",
                extra_args=[
                    "--services",
                    "verification",
                    "--upstream",
                    exchange.address,
                    "--workers",
                    _workers(n),
                ],
            )
            (tmp / f"replica{i}").mkdir()
            replicas.append(r)
            r.start()
        before = [_proc(r.pid) for r in replicas]

        def note() -> None:
            after.extend(_proc(r.pid) for r in replicas)

        relayed = _phase(
            sizes, exchange, holder, ids[:measured], [(r.address, r.pid) for r in replicas], note
        )
        for r in replicas:
            r.stop()
        replicas = []
        floored: Phase | None = None
        if floor:
            floors = [FloorProcess(exchange.address, floor_options) for _ in per_replica]
            floored = _phase(
                sizes, exchange, holder, ids[measured:], [(f.address, f.pid) for f in floors]
            )
    finally:
        for f in floors:
            f.kill()
        for r in replicas:
            r.stop()
        exchange.stop()

    why: dict[str, int] = defaultdict(int)
    for result in relayed.seen:
        for k, v in result["why"].items():
            why[k] += v
    rss = [(a[0] - b[0]) / max(n, 1) for a, b, n in zip(after, before, per_replica, strict=True)]
    threads = [
        (a[1] - b[1]) / max(n, 1) for a, b, n in zip(after, before, per_replica, strict=True)
    ]
    messages = measured + relayed.spent / HEARTBEAT_SECONDS
    subs = _split(sizes.streams, sizes.subscribers)
    out: dict[str, Any] = {
        "opened": relayed.opened,
        "tiers": _tiers(sizes, relayed),
        "replica_rss_kib": [a[0] for a in after],
        "replica_threads": [a[1] for a in after],
        "kib_per_stream": round(statistics.mean(rss), 1),
        "threads_per_stream": round(statistics.mean(threads), 2),
        "event_bytes": max(s["event_bytes"] for s in relayed.seen),
        "cpu_us_per_message": _per_message_us(sizes, relayed, "replicas", per_replica),
        "subscriber_cpu_us_per_message": _per_message_us(sizes, relayed, "subscribers", subs),
        "ended_why": dict(why),
        "cpu_ms_per_message_to_all": {
            role: round(sum(c) / messages * 1000, 1) for role, c in relayed.cpu.items()
        },
    }
    if floored is not None:
        out["floor"] = {
            "opened": floored.opened,
            "tiers": _tiers(sizes, floored),
            "cpu_us_per_message": _per_message_us(sizes, floored, "replicas", per_replica),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit 1 if the target is missed."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument(
        "--quick", action="store_true", help="a hundred streams on one replica, a few seconds"
    )
    ap.add_argument("--streams", type=int, help="streams in all")
    ap.add_argument("--direct", type=int, help="of which on the exchange itself")
    ap.add_argument("--replicas", type=int, help="verify-only replicas")
    ap.add_argument("--subscribers", type=int, help="subscriber processes")
    ap.add_argument("--revocations", type=int, help="revocations measured")
    ap.add_argument("--no-floor", action="store_true", help="skip the floor relays' phase")
    ap.add_argument(
        "--floor-option",
        action="append",
        default=[],
        metavar="NAME=INT",
        help="a gRPC server option of the floor relays (to try one)",
    )
    args = ap.parse_args(argv)
    base = QUICK if args.quick else FULL
    sizes = Sizes(
        streams=args.streams or base.streams,
        direct=base.direct if args.direct is None else args.direct,
        replicas=args.replicas or base.replicas,
        subscribers=args.subscribers or base.subscribers,
        revocations=args.revocations or base.revocations,
        gap_s=base.gap_s,
    )
    if not 0 <= sizes.direct < sizes.streams:
        ap.error("--direct is 0 to --streams - 1: some streams are on the replicas")
    with tempfile.TemporaryDirectory(prefix="licentia-bench-") as tmp:
        figures = run(sizes, Path(tmp), not args.no_floor, args.floor_option)
    tiers = figures["tiers"]
    relayed = tiers["replicas"]
    missing = sum(t["missing"] for t in tiers.values())
    p99 = relayed["p99_ms"]
    row = {
        "bench": "revocation.fanout",
        "ops_per_s": None,
        "value": p99,
        "p99_ms": p99,
        "ratio": round(p99 / TARGET_MS, 3) if p99 > 0 else 0.001,
        "target": TARGET_MS,
        "limit": (
            f"ms from RevokeLicence's return to the event on the last of {relayed['streams']}"
            f" streams on {sizes.replicas} verify-only replicas (one tier), p99 over"
            f" {sizes.revocations} revocations one at a time; {sizes.direct} more streams on"
            " the exchange itself"
        ),
        "streams": sizes.streams,
        "opened": figures["opened"],
        "replicas": sizes.replicas,
        "missing": missing,
        "tiers": tiers,
        "replica_kib_per_stream": figures["kib_per_stream"],
        "replica_threads_per_stream": figures["threads_per_stream"],
        "event_bytes": figures["event_bytes"],
        "replica_cpu_us_per_message": figures["cpu_us_per_message"],
        "cpu_ms_per_message_to_all": figures["cpu_ms_per_message_to_all"],
        "subscriber_cpu_us_per_message": figures["subscriber_cpu_us_per_message"],
        "ended_why": figures["ended_why"],
        "replica_rss_kib": figures["replica_rss_kib"],
        "cpus": os.cpu_count(),
        "ok": p99 <= TARGET_MS and missing == 0 and figures["opened"] == sizes.streams,
    }
    if "floor" in figures:
        floor = figures["floor"]
        fp99 = floor["tiers"]["replicas"]["p99_ms"]
        row["floor_p99_ms"] = fp99
        row["floor_ratio"] = round(fp99 / TARGET_MS, 3) if fp99 > 0 else 0.001
        # As bench/report.py's share for a latency: floor ÷ figure (1.0 at the floor, less
        # is further from it).
        row["of_floor"] = round(row["floor_ratio"] / row["ratio"], 3)
        row["floor"] = (
            "the same streams and subscriber processes on bare grpc.aio relays in the"
            " replicas' place (bench/fanout_floor.py: the exchange's feed read as bytes and"
            " pushed as they came; no follower, window or check), same run"
        )
        row["floor_tiers"] = floor["tiers"]
        row["floor_opened"] = floor["opened"]
        row["floor_cpu_us_per_message"] = floor["cpu_us_per_message"]
    assert math.isfinite(row["ratio"])
    return emit([row])


if __name__ == "__main__":
    sys.exit(main())
