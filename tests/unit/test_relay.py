"""The rules of a replica's relayed feed (services/relay.py), on both of its servers' paths:
what a subscriber resuming from a sequence is sent, the window, snapshots fetched at most once
per interval whatever the number of subscribers, and failing closed."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Callable, Iterator

import pytest

from licentia.errors import LicentiaError, Reason
from licentia.services.aio_runtime import pending_options
from licentia.services.relay import FeedRelay
from licentia.status import StatusSnapshot
from licentia.v1 import licences_pb2, status_pb2

Response = licences_pb2.WatchRevocationsResponse


class Upstream:
    """What the relay's ``fetch`` and ``fresh`` read: a snapshot at ``sequence``, counted."""

    def __init__(self) -> None:
        self.sequence = 0
        self.fetches = 0
        self.fresh = True
        self.down = False

    def fetch(self) -> tuple[bytes, StatusSnapshot]:
        if self.down:
            raise LicentiaError(Reason.UNAVAILABLE, "the upstream is away")
        self.fetches += 1
        return snapshot(self.sequence)


def snapshot(seq: int) -> tuple[bytes, StatusSnapshot]:
    signed = status_pb2.SignedStatusSnapshot(snapshot=seq.to_bytes(2, "big"), signature=b"s")
    return signed.SerializeToString(), StatusSnapshot(b"k" * 8, seq, 1, ())


def event(seq: int) -> Response:
    return Response(
        event=status_pb2.StatusEvent(sequence=seq, status_list=1, status_index=seq, revoked_at=1)
    )


def beat(seq: int) -> Response:
    return Response(heartbeat=status_pb2.StatusHeartbeat(sequence=seq, at=2))


def relay_at(up: Upstream, events: int, window: int = 3, tick: float = 0.05) -> FeedRelay:
    relay = FeedRelay(up.fetch, lambda: up.fresh, window=window, tick=tick)
    relay.adopted(*snapshot(0))
    for seq in range(1, events + 1):
        relay.applied(event(seq))
    up.sequence = events
    return relay


def describe(raw: bytes) -> str:
    """``e5`` (event 5), ``h3`` (heartbeat at 3), ``s4`` (snapshot at 4)."""
    msg = Response.FromString(raw)
    kind = msg.WhichOneof("message")
    if kind == "event":
        return f"e{msg.event.sequence}"
    if kind == "heartbeat":
        return f"h{msg.heartbeat.sequence}"
    return f"s{int.from_bytes(msg.snapshot.snapshot, 'big')}"


def first_sync(relay: FeedRelay, after: int, n: int) -> list[str]:
    feed: Iterator[Response] = relay.feed(after, lambda: True)
    return [describe(m.SerializeToString()) for m in itertools.islice(feed, n)]


def first_async(relay: FeedRelay, after: int, n: int) -> list[str]:
    async def take() -> list[str]:
        relay.attach(asyncio.get_running_loop())
        out = []
        async for raw in relay.afeed(after):
            out.append(describe(raw))
            if len(out) == n:
                break
        return out

    return asyncio.run(take())


First = Callable[[FeedRelay, int, int], list[str]]
PATHS = pytest.mark.parametrize("first", [first_sync, first_async], ids=["threads", "asyncio"])


@PATHS
def test_a_resume_within_the_window_gets_the_events_after_it_then_the_latest_heartbeat(
    first: First,
) -> None:
    up = Upstream()
    relay = relay_at(up, 5)  # the window holds 3, 4 and 5
    relay.applied(beat(5))
    assert first(relay, 2, 4) == ["e3", "e4", "e5", "h5"]
    assert first(relay, 5, 1) == ["h5"]
    assert up.fetches == 0


@PATHS
def test_a_resume_older_than_the_window_or_ahead_of_it_starts_from_a_snapshot(
    first: First,
) -> None:
    up = Upstream()
    relay = relay_at(up, 5)
    relay.applied(beat(5))
    assert first(relay, 1, 2) == ["s5", "h5"]
    up.sequence = 9  # the upstream is ahead of this replica, which does not catch up
    assert first(relay, 8, 1) == ["s5"]  # held, recent
    assert up.fetches == 1


def test_snapshots_are_fetched_once_whatever_the_number_asking() -> None:
    up = Upstream()
    relay = relay_at(up, 5)  # the snapshot held (at 0) is older than the window (after 2)
    got: list[int] = []
    threads = [
        threading.Thread(target=lambda: got.append(relay.snapshot().sequence)) for _ in range(20)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == [5] * 20
    assert up.fetches == 1
    relay.snapshot_max_age = 0  # past its age, the next subscriber has it fetched again
    up.sequence = 6
    relay.applied(event(6))
    assert relay.snapshot().sequence == 6
    assert up.fetches == 2
    # The upstream away: the one held serves while the window still follows it ...
    up.down = True
    assert relay.snapshot().sequence == 6
    # ... and not once the window has moved past it.
    for seq in range(7, 11):
        relay.applied(event(seq))
    with pytest.raises(LicentiaError) as e:
        relay.snapshot()
    assert e.value.reason is Reason.UNAVAILABLE


def test_the_window_restarts_after_a_snapshot_the_follower_adopts() -> None:
    up = Upstream()
    relay = relay_at(up, 3, window=10)
    up.sequence = 8
    relay.adopted(*snapshot(8))  # the follower resynchronised past a gap
    assert relay.sequence == 8
    assert first_sync(relay, 2, 1) == ["s8"]  # behind it: the snapshot, never a gap
    relay.applied(event(10))  # not the next: ignored (the follower applies them in order)
    relay.applied(event(9))
    assert first_sync(relay, 8, 1) == ["e9"]


@PATHS
def test_a_stale_replica_refuses_streams_and_ends_those_open(first: First) -> None:
    up = Upstream()
    relay = relay_at(up, 2)
    up.fresh = False
    with pytest.raises(LicentiaError) as refused:
        first(relay, 2, 1)
    assert refused.value.reason is Reason.STATUS_STALE
    with pytest.raises(LicentiaError) as snap:
        relay.snapshot()
    assert snap.value.reason is Reason.STATUS_STALE
    up.fresh = True
    feed = relay.feed(1, lambda: True)
    assert describe(next(feed).SerializeToString()) == "e2"
    up.fresh = False  # a tick without news, stale: the stream ends
    with pytest.raises(LicentiaError) as ended:
        next(feed)
    assert ended.value.reason is Reason.STATUS_STALE


@PATHS
def test_a_stale_replica_ends_its_streams_even_while_heartbeats_keep_coming(
    first: First,
) -> None:
    """The follower passes on every heartbeat it verified, also one too old to make its view
    fresh: news is not freshness, and a stream ends once the replica is stale however much
    arrives (so its subscribers go to another replica)."""
    up = Upstream()
    relay = relay_at(up, 2)
    relay.applied(beat(2))
    stop = threading.Event()

    def beating() -> None:
        while not stop.wait(0.01):
            relay.applied(beat(2))

    beater = threading.Thread(target=beating, daemon=True)
    beater.start()
    try:
        threading.Timer(0.1, lambda: setattr(up, "fresh", False)).start()
        with pytest.raises(LicentiaError) as ended:
            first(relay, 2, 1000)
        assert ended.value.reason is Reason.STATUS_STALE
    finally:
        stop.set()
        beater.join(2)


def test_a_replicas_server_holds_as_many_pending_calls_as_it_may_hold_streams() -> None:
    # gRPC core's defaults (1,000 / 3,000) stopped a replica at ~2,400 streams: the cap on
    # calls not yet handled follows --workers, and never drops below those defaults.
    assert dict(pending_options(10_064)) == {
        "grpc.server.max_pending_requests": 10_064,
        "grpc.server.max_pending_requests_hard_limit": 20_128,
    }
    assert dict(pending_options(256)) == {
        "grpc.server.max_pending_requests": 1000,
        "grpc.server.max_pending_requests_hard_limit": 3000,
    }
