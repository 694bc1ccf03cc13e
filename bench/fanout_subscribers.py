"""The subscribers of ``revocation.fanout`` (bench/bench_fanout.py): a process of
``grpc.aio`` clients holding many ``WatchRevocations`` streams, noting each event's arrival.

Not a benchmark itself. ``python bench/fanout_subscribers.py TARGETS`` (TARGETS a JSON list of
``[tier, address, count]``) opens the streams, prints ``{"ready": N}`` once each has its first
message, notes every event's arrival on every stream by the machine's monotonic clock until its
stdin closes, then prints what it saw. It checks nothing (a platform's verifier checks
signatures in its own process). The same code measures the replicas and the floor relays.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections import defaultdict
from typing import IO, Any

import grpc  # type: ignore[import-untyped]

from licentia.methods import path
from licentia.v1 import licences_pb2

WATCH = path(licences_pb2, "WatchRevocations")
#: Streams one HTTP/2 connection of a subscriber carries.
STREAMS_PER_CONNECTION = 100
#: Longest wait for every stream to be open.
READY_TIMEOUT = 120.0


async def _subscribe(targets: list[tuple[str, str, int]], out: IO[str]) -> None:
    """Open ``count`` streams on each ``(tier, address, count)``; say ``ready`` once each has
    its first message, then note every event's arrival until stdin closes; print them."""
    arrivals: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    ended: dict[str, int] = defaultdict(int)
    why: dict[str, int] = defaultdict(int)
    event_bytes = 0
    total = sum(count for _, _, count in targets)
    opened = 0
    ready = asyncio.Event()
    body = licences_pb2.WatchRevocationsRequest(after_sequence=0).SerializeToString()
    channels: list[grpc.aio.Channel] = []

    async def stream(tier: str, channel: grpc.aio.Channel) -> None:
        nonlocal opened, event_bytes
        first = True
        call = channel.unary_stream(WATCH, request_serializer=None, response_deserializer=None)
        try:
            async for raw in call(body):
                t = time.monotonic()
                if first:
                    first = False
                    opened += 1
                    if opened == total:
                        ready.set()
                msg = licences_pb2.WatchRevocationsResponse.FromString(raw)
                if msg.HasField("event"):
                    arrivals[tier][msg.event.sequence].append(t)
                    event_bytes = len(raw)
        except grpc.aio.AioRpcError as e:
            ended[tier] += 1
            why[f"{e.code().name}: {e.details()}"[:120]] += 1

    tasks = []
    for tier, address, count in targets:
        for i in range(count):
            if i % STREAMS_PER_CONNECTION == 0:
                channels.append(
                    grpc.aio.insecure_channel(
                        address, options=[("grpc.use_local_subchannel_pool", 1)]
                    )
                )
            tasks.append(asyncio.create_task(stream(tier, channels[-1])))
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(ready.wait(), READY_TIMEOUT)
        print(json.dumps({"ready": opened}), file=out, flush=True)
    except TimeoutError:
        print(json.dumps({"ready": opened, "failed": True}), file=out, flush=True)
    await loop.run_in_executor(None, sys.stdin.read)  # until the bench closes it
    for task in tasks:
        task.cancel()
    for ch in channels:
        await ch.close()
    result = {
        "opened": opened,
        "ended": dict(ended),
        "why": dict(why),
        "event_bytes": event_bytes,
        "arrivals": {
            tier: {str(s): ts for s, ts in seqs.items()} for tier, seqs in arrivals.items()
        },
    }
    print(json.dumps(result), file=out, flush=True)


class Subscribers:
    """A subscriber process (this script with ``--subscribe``)."""

    def __init__(self, targets: list[tuple[str, str, int]]) -> None:
        self.targets = targets
        self.popen = subprocess.Popen(
            [sys.executable, __file__, json.dumps(targets)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def ready(self) -> int:
        """Wait for its streams; how many opened (SystemExit if it failed)."""
        assert self.popen.stdout is not None
        line = self.popen.stdout.readline()
        if not line:
            raise SystemExit("a subscriber process ended before its streams opened")
        said = json.loads(line)
        return int(said["ready"])

    def results(self) -> dict[str, Any]:
        """Close its stdin and read what it saw."""
        assert self.popen.stdin is not None
        assert self.popen.stdout is not None
        self.popen.stdin.close()
        line = self.popen.stdout.readline()
        self.popen.wait(timeout=30)
        return dict(json.loads(line))

    def kill(self) -> None:
        """End it if it still runs."""
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()


def main(argv: list[str] | None = None) -> int:
    """Run a subscriber process (see the module)."""
    args = sys.argv[1:] if argv is None else argv
    targets = [(str(t), str(a), int(n)) for t, a, n in json.loads(args[0])]
    asyncio.run(_subscribe(targets, sys.stdout))
    return 0


if __name__ == "__main__":
    sys.exit(main())
