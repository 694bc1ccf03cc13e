"""The floor of ``revocation.fanout``: the least any relay on gRPC Python pays per stream.

Not a benchmark itself: bench_fanout.py runs one of these processes in place of each
verify-only replica, in the same run, with the same streams and subscriber processes, and
prints the same figure for it (``floor``, ``floor_ratio``, ``of_floor``).

A floor relay is a bare ``grpc.aio`` server: it reads the exchange's ``WatchRevocations`` as
raw bytes on one stream (nothing parsed, no signature checked, no follower, no window, no
staleness bound) and pushes each message's bytes, as they came, to every stream open on it
(a generic handler with no serializer: nothing encoded per stream). Each stream first gets
the last message held, so that the subscriber sees it open. What remains is gRPC's own cost
of a message on a stream (a loop turn, a write, a completion) and the hop from the exchange:
any relay on gRPC Python pays at least that.

``python bench/fanout_floor.py UPSTREAM [--option NAME=INT ...]`` prints ``{"port": N}`` once
it listens and its upstream stream is open, then serves until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc  # type: ignore[import-untyped]

from licentia.methods import path
from licentia.v1 import licences_pb2

WATCH = path(licences_pb2, "WatchRevocations")


class FloorRelay:
    """The messages read from the upstream, and an event set at each new one."""

    def __init__(self) -> None:
        self.items: list[bytes] = []
        self.news = asyncio.Event()

    def push(self, raw: bytes) -> None:
        """A new message for every stream."""
        self.items.append(raw)
        news, self.news = self.news, asyncio.Event()
        news.set()

    async def stream(self, request: bytes, context: Any) -> AsyncIterator[bytes]:
        """One subscriber: the last message held, then every new one, bytes as they came."""
        pos = max(len(self.items) - 1, 0)
        while True:
            if pos == len(self.items):
                await self.news.wait()
            for raw in self.items[pos:]:
                yield raw
            pos = len(self.items)


async def follow(upstream: str, relay: FloorRelay, first: asyncio.Event) -> None:
    """Read the upstream's feed as bytes into ``relay``."""
    body = licences_pb2.WatchRevocationsRequest(after_sequence=0).SerializeToString()
    async with grpc.aio.insecure_channel(upstream) as channel:
        call = channel.unary_stream(WATCH, request_serializer=None, response_deserializer=None)
        async for raw in call(body):
            relay.push(raw)
            first.set()


async def serve(upstream: str, options: list[tuple[str, int]]) -> None:
    """Listen on a free loopback port, follow ``upstream``, say the port, serve."""
    relay = FloorRelay()
    server = grpc.aio.server(options=options)
    handler = grpc.method_handlers_generic_handler(
        WATCH.split("/")[1],
        {
            WATCH.split("/")[2]: grpc.unary_stream_rpc_method_handler(
                relay.stream, request_deserializer=None, response_serializer=None
            )
        },
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    first = asyncio.Event()
    following = asyncio.create_task(follow(upstream, relay, first))
    await first.wait()
    print(json.dumps({"port": port}), flush=True)
    await following  # ends only if the upstream does
    await server.stop(None)


class FloorProcess:
    """A floor relay (bench/fanout_floor.py) following ``upstream``, in a process of its own."""

    def __init__(self, upstream: str, options: Sequence[str] = ()) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, __file__, upstream, *(f"--option={o}" for o in options)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.popen.stdout is not None
        line = self.popen.stdout.readline()
        if not line:
            raise SystemExit("a floor relay ended before it listened")
        self.address = f"127.0.0.1:{json.loads(line)['port']}"
        self.pid = self.popen.pid

    def kill(self) -> None:
        """End it."""
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()


def main(argv: list[str] | None = None) -> int:
    """Run a floor relay (see the module)."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("upstream")
    ap.add_argument("--option", action="append", default=[], help="a server option NAME=INT")
    args = ap.parse_args(argv)
    options = [(k, int(v)) for k, _, v in (o.partition("=") for o in args.option)]
    asyncio.run(serve(args.upstream, options))
    return 0


if __name__ == "__main__":
    sys.exit(main())
