"""A verify-only replica's revocation feed: the exchange's signed feed, relayed.

A replica (``licentia-server --services verification --upstream HOST:PORT``) follows the
exchange's ``WatchRevocations`` with a :class:`~licentia.transport.follow.StatusFollower`,
which tells a :class:`FeedRelay` every snapshot, event and heartbeat it accepted (verified
against the exchange's issuer keys, events in sequence). The relay serves them to the
replica's own subscribers — platforms' inline verifiers, other replicas — as
``WatchRevocations``, ``GetStatusSnapshot`` and ``GetIssuerKeys`` (:class:`RelayLicenceService`),
so that thousands of platforms follow a few replicas rather than the exchange itself.

The replica holds no issuer key and signs nothing: every event, heartbeat and snapshot it
sends is the exchange's, passed on as it came (the signed bytes untouched), and its
subscribers check the exchange's signatures exactly as they do at the exchange. A replica
that altered or invented an item would be refused by every subscriber; one that withholds
items leaves its subscribers failing closed once their own bound passes.

- **Resume.** The relay keeps the last ``window`` events (4096 by default). A subscriber
  resuming from a sequence within the window gets every event after it; one older than the
  window, or ahead of the replica for longer than a tick (another replica's view), first gets
  a signed snapshot of the exchange's, as the exchange answers a gap, then the events after
  it. Snapshots are fetched from the upstream at most once every ``snapshot_max_age``
  seconds whatever the number of subscribers (the snapshots the follower itself adopts are
  kept too).
- **Heartbeats.** Each heartbeat the follower accepted is sent once to every subscriber that
  has every event up to its sequence; a new subscriber gets the latest at once.
- **Failing closed.** Past its upstream staleness bound (nothing accepted from the upstream
  for that long, by the follower's view), the replica's streams end with STATUS_STALE, new
  ones and ``GetStatusSnapshot`` are refused STATUS_STALE, as the exchange's ``--follower``
  does when it loses its store (:class:`licentia.services.hub.RevocationHub`): a subscriber
  fails closed and reconnects, perhaps to another replica.

On the sync gRPC server each open stream holds a worker thread (``--workers``) and a piece
of news wakes every subscriber through its own event, as the hub's do. On the asyncio
server (a replica process: :mod:`.aio_runtime`) a stream is a coroutine: news wakes them all
through one shared event, and one shared timer (a tick) wakes them to look at the replica's
freshness when there is none.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass

from licentia.errors import LicentiaError, Reason
from licentia.status import StatusSnapshot
from licentia.v1 import licences_pb2, status_pb2

from .licences import _ended
from .rpc import Call, Method

#: Events a replica keeps for subscribers that resume.
RELAY_WINDOW = 4096
#: A snapshot fetched from the upstream is served for this many seconds.
SNAPSHOT_MAX_AGE = 2.0
#: Seconds an idle subscriber waits before it looks at the replica's freshness again.
TICK = 1.0

Response = licences_pb2.WatchRevocationsResponse


@dataclass(frozen=True, slots=True)
class HeldSnapshot:
    """A signed snapshot of the exchange (serialized ``SignedStatusSnapshot``, as it came)."""

    sequence: int
    signed: bytes
    #: ``time.monotonic()`` when the replica got it.
    got_at: float

    def message(self) -> Response:
        """It as a ``WatchRevocationsResponse`` (its signed bytes untouched)."""
        return Response(snapshot=status_pb2.SignedStatusSnapshot.FromString(self.signed))


@dataclass(frozen=True, slots=True)
class Item:
    """A relayed event or heartbeat: the message, and its bytes (encoded once for every
    subscriber of an asyncio server)."""

    msg: Response
    raw: bytes


@dataclass(frozen=True, slots=True)
class _Next:
    """What a subscriber at some position sends next (see :meth:`FeedRelay._next`)."""

    behind: bool
    batch: list[Item]
    beat: Item | None
    beats: int
    news: asyncio.Event


class FeedRelay:
    """The feed a follower accepted, for the replica's subscribers (see the module).

    A :class:`~licentia.transport.follow.FeedObserver`: give it to the follower. ``fetch``
    returns a verified snapshot of the upstream now (its signed bytes and what they say);
    ``fresh`` tells whether the follower's view is within its staleness bound. Subscribers
    are served by :meth:`feed` (a thread each: the sync gRPC server) or :meth:`afeed` (a
    coroutine each: an asyncio gRPC server, after :meth:`attach`).
    """

    def __init__(
        self,
        fetch: Callable[[], tuple[bytes, StatusSnapshot]],
        fresh: Callable[[], bool],
        *,
        window: int = RELAY_WINDOW,
        snapshot_max_age: float = SNAPSHOT_MAX_AGE,
        tick: float = TICK,
    ) -> None:
        if window < 1:
            raise ValueError("the relay window holds at least one event")
        self.fetch = fetch
        self.fresh = fresh
        self.window = window
        self.snapshot_max_age = snapshot_max_age
        self.tick = tick
        self._lock = threading.Lock()
        self._fetch_lock = threading.Lock()
        self._wakers: set[threading.Event] = set()
        #: The events after ``_base`` up to ``_sequence``, by sequence number.
        self._events: dict[int, Item] = {}
        self._base = 0
        self._sequence = 0
        self._beat: Item | None = None
        self._beats = 0
        self._snapshot: HeldSnapshot | None = None
        self._closed = False
        #: The event loop of the asyncio subscribers, and the event they wait on (replaced
        #: at each piece of news, once set).
        self._loop: asyncio.AbstractEventLoop | None = None
        self._news = asyncio.Event()
        self._async_subscribers = 0
        self._ticking: asyncio.AbstractEventLoop | None = None
        #: The issuer keys as the upstream last published them (``GetIssuerKeys``' answer).
        self.keys: licences_pb2.GetIssuerKeysResponse | None = None
        #: Snapshots fetched from the upstream for subscribers.
        self.snapshot_fetches = 0

    @property
    def sequence(self) -> int:
        """The last event relayed."""
        return self._sequence

    @property
    def subscribers(self) -> int:
        """Streams open now."""
        return len(self._wakers) + self._async_subscribers

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Serve :meth:`afeed` subscribers on ``loop`` (an asyncio server's)."""
        self._loop = loop
        if self._ticking is not loop:
            self._ticking = loop
            loop.call_later(self.tick, self._tick, loop)

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        """Every ``tick``, wake the asyncio subscribers to look at the replica's freshness:
        one timer for all of them, rather than one per stream per wait (on ``loop``)."""
        if self._closed or self._ticking is not loop:
            return
        with self._lock:
            news, self._news = self._news, asyncio.Event()
        news.set()
        loop.call_later(self.tick, self._tick, loop)

    # -- what the follower accepted (FeedObserver) --------------------------------------
    def keep_keys(self, keys: licences_pb2.GetIssuerKeysResponse) -> None:
        """The upstream's issuer keys, as it published them (relayed by ``GetIssuerKeys``)."""
        self.keys = keys

    def adopted(self, signed: bytes, snapshot: StatusSnapshot) -> None:
        """The follower's view was (re)built from ``snapshot``: a jump forward restarts the
        window after it (subscribers behind it are sent the snapshot)."""
        with self._lock:
            self._snapshot = HeldSnapshot(snapshot.sequence, signed, time.monotonic())
            if snapshot.sequence != self._sequence:
                self._events.clear()
                self._base = self._sequence = snapshot.sequence
            self._wake_all()

    def applied(self, msg: Response) -> None:
        """The follower applied the next event, or a heartbeat."""
        kind = msg.WhichOneof("message")
        if kind not in ("event", "heartbeat"):
            return
        item = Item(msg, msg.SerializeToString())
        with self._lock:
            if kind == "event":
                seq = msg.event.sequence
                if seq != self._sequence + 1:  # the follower applies them in order
                    return
                self._events[seq] = item
                self._sequence = seq
                while len(self._events) > self.window:
                    self._base += 1
                    del self._events[self._base]
            else:
                self._beat = item
                self._beats += 1
            self._wake_all()

    def _wake_all(self) -> None:
        """Wake every subscriber (hold ``_lock``)."""
        for wake in self._wakers:
            wake.set()
        if self._loop is not None and self._async_subscribers:
            news, self._news = self._news, asyncio.Event()
            try:
                self._loop.call_soon_threadsafe(news.set)
            except RuntimeError:  # the server's loop has ended: its streams with it
                self._loop = None

    def close(self) -> None:
        """End every stream."""
        with self._lock:
            self._closed = True
            self._wake_all()

    # -- what subscribers get ------------------------------------------------------------
    def _refuse_if_stale(self) -> None:
        if not self.fresh():
            raise LicentiaError(
                Reason.STATUS_STALE,
                "this replica's view of the revocations is stale (nothing from its upstream"
                " within its bound): try another replica, or later",
            )

    def snapshot(self) -> HeldSnapshot:
        """A signed snapshot of the exchange for a subscriber: the one held if it is recent
        and the window follows it, else one fetched from the upstream now (one fetch at a
        time, shared: at most one every ``snapshot_max_age`` seconds). STATUS_STALE when the
        replica is stale; the upstream's refusal when none is held and none can be fetched."""
        self._refuse_if_stale()

        def usable(held: HeldSnapshot | None) -> HeldSnapshot | None:
            if held is None or held.sequence < self._base:
                return None
            return held if time.monotonic() - held.got_at <= self.snapshot_max_age else None

        with self._lock:
            held = usable(self._snapshot)
        if held is not None:
            return held
        with self._fetch_lock:
            with self._lock:  # another subscriber may have fetched one while this one waited
                held = usable(self._snapshot)
            if held is not None:
                return held
            try:
                signed, snap = self.fetch()
            except LicentiaError:
                with self._lock:
                    kept = self._snapshot
                if kept is None or kept.sequence < self._base:
                    raise
                return kept  # the upstream is busy or briefly away, and the replica fresh
            self.snapshot_fetches += 1
            fetched = HeldSnapshot(snap.sequence, signed, time.monotonic())
            with self._lock:
                if self._snapshot is None or fetched.sequence >= self._snapshot.sequence:
                    self._snapshot = fetched
            return fetched

    def _start(self, after: int) -> bool:
        """Whether a subscriber resuming from ``after`` must start from a snapshot: it is
        older than the window, or ahead of this replica."""
        with self._lock:
            return after > self._sequence or after < self._base

    def _next(self, pos: int, beats_sent: int, wake: threading.Event | None) -> _Next:
        """What a subscriber that has every event up to ``pos`` and ``beats_sent`` heartbeats
        sends next; ``wake`` (or the returned ``news``) is armed for what comes after."""
        with self._lock:
            if wake is not None:
                wake.clear()
            behind = pos < self._base
            batch = [] if behind else [self._events[s] for s in range(pos + 1, self._sequence + 1)]
            beat = self._beat if self._beats != beats_sent else None
            return _Next(behind, batch, beat, self._beats, self._news)

    def feed(
        self, after: int, active: Callable[[], bool], wake: threading.Event | None = None
    ) -> Iterator[Response]:
        """What a subscriber that has seen up to ``after`` must receive, then live items,
        until ``active()`` turns false (``wake`` is set then, to end at once), the relay
        closes, or the replica goes stale (``LicentiaError`` STATUS_STALE)."""
        wake = wake or threading.Event()
        with self._lock:
            self._wakers.add(wake)
        try:
            yield from self._feed(after, active, wake)
        finally:
            with self._lock:
                self._wakers.discard(wake)

    def _feed(
        self, after: int, active: Callable[[], bool], wake: threading.Event
    ) -> Iterator[Response]:
        self._refuse_if_stale()
        pos = after
        deadline = time.monotonic() + self.tick
        # Ahead of this replica (a snapshot fetched a moment ago, another replica's view):
        # the follower is likely a message behind; wait for it, a little.
        while pos > self._sequence and active() and not self._closed:
            with self._lock:
                wake.clear()
                ahead = pos > self._sequence
            left = deadline - time.monotonic()
            if not ahead or left <= 0:
                break
            wake.wait(left)
        if self._start(pos):
            snap = self.snapshot()
            yield snap.message()
            pos = snap.sequence
        beats_sent = 0
        while active() and not self._closed:
            step = self._next(pos, beats_sent, wake)
            if step.behind:  # the window moved past this subscriber: a snapshot, then on
                pos = self._caught_up(snap := self.snapshot())
                yield snap.message()
                continue
            for item in step.batch:
                yield item.msg
            if step.batch:
                pos = step.batch[-1].msg.event.sequence
            if step.beat is not None and step.beat.msg.heartbeat.sequence <= pos:
                yield step.beat.msg
                beats_sent = step.beats
            # ``wake`` was cleared as the batch was read: news since then has set it. Every
            # pass looks at the replica's freshness: news is not freshness (a heartbeat the
            # follower verified may be too old to refresh its view).
            wake.wait(self.tick)
            self._refuse_if_stale()

    def _caught_up(self, snap: HeldSnapshot) -> int:
        """The position after ``snap``, sent to a subscriber the window moved past."""
        if snap.sequence < self._base:
            raise LicentiaError(Reason.UNAVAILABLE, "the upstream's snapshot is older")
        return snap.sequence

    async def afeed(self, after: int) -> AsyncIterator[bytes]:
        """:meth:`feed` for an asyncio server (after :meth:`attach`): the bytes of each
        message, until the call is cancelled, the relay closes, or the replica goes stale
        (looked at on each tick of the relay's shared timer). Snapshots are fetched in the
        loop's default executor."""
        loop = asyncio.get_running_loop()
        with self._lock:
            self._async_subscribers += 1
        try:
            self._refuse_if_stale()
            pos = after
            if pos > self._sequence:  # ahead of this replica: wait for it, a little
                try:
                    async with asyncio.timeout(self.tick):
                        while pos > self._sequence and not self._closed:
                            await self._next(pos, 0, None).news.wait()
                except TimeoutError:
                    pass
            if self._start(pos):
                snap = await loop.run_in_executor(None, self.snapshot)
                yield snap.message().SerializeToString()
                pos = snap.sequence
            beats_sent = 0
            while not self._closed:
                step = self._next(pos, beats_sent, None)
                if step.behind:
                    snap = await loop.run_in_executor(None, self.snapshot)
                    pos = self._caught_up(snap)
                    yield snap.message().SerializeToString()
                    continue
                for item in step.batch:
                    yield item.raw
                if step.batch:
                    pos = step.batch[-1].msg.event.sequence
                if step.beat is not None and step.beat.msg.heartbeat.sequence <= pos:
                    yield step.beat.raw
                    beats_sent = step.beats
                if not step.news.is_set():  # nothing since the batch was read
                    await step.news.wait()  # news, or the shared tick (after attach)
                # Every pass looks at the replica's freshness: news is not freshness (a
                # heartbeat the follower verified may be too old to refresh its view).
                self._refuse_if_stale()
        finally:
            with self._lock:
                self._async_subscribers -= 1


class RelayLicenceService:
    """``LicenceService`` at a verify-only replica: the public calls a verifier follows
    (``WatchRevocations``, ``GetStatusSnapshot``, ``GetIssuerKeys``), relayed from the
    upstream; every other method is NOT_SERVED."""

    def __init__(self, relay: FeedRelay) -> None:
        self.relay = relay

    def methods(self) -> Mapping[str, Method]:
        """The handlers, by method name."""
        return {
            "WatchRevocations": Method(self.watch_revocations, signed=False),
            "GetStatusSnapshot": Method(self.get_status_snapshot, signed=False),
            "GetIssuerKeys": Method(self.get_issuer_keys, signed=False),
        }

    def watch_revocations(
        self, req: licences_pb2.WatchRevocationsRequest, call: Call
    ) -> Iterator[Response]:
        """The exchange's events after ``after_sequence``, then live, with its heartbeats."""
        yield from self.relay.feed(req.after_sequence, call.context.is_active, _ended(call))

    def get_status_snapshot(
        self, req: licences_pb2.GetStatusSnapshotRequest, call: Call
    ) -> licences_pb2.GetStatusSnapshotResponse:
        """A recent signed snapshot of the exchange's (STATUS_STALE if the replica is)."""
        snap = self.relay.snapshot()
        return licences_pb2.GetStatusSnapshotResponse(
            snapshot=status_pb2.SignedStatusSnapshot.FromString(snap.signed)
        )

    def get_issuer_keys(
        self, req: licences_pb2.GetIssuerKeysRequest, call: Call
    ) -> licences_pb2.GetIssuerKeysResponse:
        """The exchange's issuer keys, as the replica last fetched them."""
        if self.relay.keys is None:
            raise LicentiaError(Reason.UNAVAILABLE, "the replica has no issuer keys yet")
        return self.relay.keys
