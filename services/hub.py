"""The revocation hub: the exchange's status lists in memory, and the live feed to verifiers.

The store is the truth; the hub mirrors it. After a revocation commits, the servicer calls
:meth:`RevocationHub.publish`, which sets the bit and wakes every subscriber at once. A
replica that does not write (verify-only, on the same data directory) follows the store
by polling instead, and so does every replica of a store other processes write to (on
PostgreSQL, woken by the store's notifications: :meth:`RevocationHub.follow`).
Subscribers read what they missed from the store, so a slow or late subscriber never
skips an event; one too far behind starts from a signed snapshot.

The hub's sequence only moves through consecutive numbers: an event that arrives ahead of
a missing one (another replica's revocation not yet read, or two local ones published out
of order) sets its bit at once but waits, with the sequence, until the missing ones are
read from the store. Whatever the hub announces (to feeds, in heartbeats, in snapshots) is
thus a gapless prefix of the store's events, and no subscriber is sent one twice.

The hub holds the live status lists only (docs/token-format.md §7): at a reload it reads the
lists not yet ended and their revocations, and a snapshot names every live list, read from
the store when it is taken (a list with no revocation too), so that a verifier can tell a
dropped list (an id below the snapshot's highest that it does not carry) from a new one.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from licentia.errors import LicentiaError, Reason
from licentia.status import (
    LIST_GRACE_SECONDS,
    MAX_SNAPSHOT_BYTES,
    MAX_STATUS_LISTS,
    StatusEvent,
    StatusListBits,
    StatusLists,
    signed_heartbeat,
    signed_snapshot,
)
from licentia.v1 import status_pb2

from .issuer import Keyring
from .model import RevocationEvent
from .store import Store

#: A subscriber further behind than this many events restarts from a snapshot.
MAX_CATCH_UP = 10_000
#: Events read from the store per batch.
BATCH = 500
#: Recent events kept in memory, so that a live fan-out reads no database.
RECENT = 4096


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A signed snapshot (serialized ``SignedStatusSnapshot``) and its sequence number."""

    signed: bytes
    sequence: int


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Nothing new: the list stood at ``sequence`` at ``at``."""

    sequence: int
    at: int


FeedItem = Snapshot | RevocationEvent | Heartbeat

logger = logging.getLogger("licentia.hub")


class RevocationHub:
    """The status list of one exchange and its subscribers."""

    def __init__(self, store: Store, keyring: Keyring, clock: Callable[[], int]) -> None:
        self.store = store
        self.keyring = keyring
        self.clock = clock
        self._lock = threading.Lock()
        self._closed = False
        #: One event per live subscriber: set to wake it (news, close, or its call ending).
        self._wakers: set[threading.Event] = set()
        self._lists = StatusLists()
        self._sequence = 0
        self._recent: OrderedDict[int, RevocationEvent] = OrderedDict()
        #: Events ahead of a missing one: their bits are set, their sequence not yet reached.
        self._pending: dict[int, RevocationEvent] = {}
        #: When the list was last known to match the store (a follower's last poll).
        self.fresh_at = clock()
        #: A follower answers STATUS_STALE when its last poll is older than this.
        self.staleness_bound: int | None = None
        #: Events as signed for the feeds (each signed once, then sent to every subscriber),
        #: and the last heartbeat signed (subscribers beating in the same second share it).
        self._signed: OrderedDict[int, status_pb2.StatusEvent] = OrderedDict()
        self._signed_lock = threading.Lock()
        self._beat: status_pb2.StatusHeartbeat | None = None
        #: Snapshots are built outside the lock that revocations take (compressing every
        #: live list takes long): each list's compressed bits are kept until its bits change,
        #: and the last signed snapshot is served again within a second at the same sequence.
        self._packed: dict[int, tuple[bytes, bytes]] = {}
        self._last_snapshot: tuple[int, int, bytes] | None = None
        self._snapshot_lock = threading.Lock()
        self.reload()

    @property
    def sequence(self) -> int:
        """The last sequence number applied."""
        return self._sequence

    def reload(self) -> None:
        """Rebuild the live lists from the store (complete as of the time the read began)."""
        began = self.clock()
        lists, revoked, sequence = self.store.status(began - LIST_GRACE_SECONDS)
        fresh = StatusLists()
        for list_id, expires_at in lists:
            fresh.declare(list_id, expires_at)
        for list_id, index in revoked:
            fresh.revoke(list_id, index)
        with self._lock:
            for ev in self._pending.values():  # committed after the read: keep their bits
                fresh.revoke(ev.status_list, ev.status_index)
            self._lists = fresh
            self._sequence = sequence
            self._pending = {k: v for k, v in self._pending.items() if k > sequence}
            self._advance()
            self.fresh_at = began

    def as_of(self, now: int) -> int:
        """The exchange time up to which the list holds every revocation, at ``now``.

        A process that takes every revocation itself (one exchange on its own store) is
        complete at every moment: ``now``. A follower of a store that others write to
        (a replica, a ``--follower``) is complete only as of its last read of the store.
        Heartbeats and snapshots are stamped with this time, never a later one: a heartbeat
        promises that the sender had seen every revocation up to its time, so a verifier
        following a replica that lost its database is never fresher than the replica.
        """
        if self.staleness_bound is None:
            return now
        return min(now, self.fresh_at)

    def stale(self, now: int) -> bool:
        """True when this follower has not read the store within its staleness bound."""
        return self.staleness_bound is not None and now - self.fresh_at > self.staleness_bound

    def _refuse_if_stale(self, now: int) -> None:
        if self.stale(now):
            raise LicentiaError(
                Reason.STATUS_STALE,
                f"this replica's view of the revocations is stale (last read of the store "
                f"{now - self.fresh_at} s ago): try another replica, or later",
            )

    def snapshot(self) -> Snapshot:
        """A signed snapshot of the live lists, stamped with :meth:`as_of`; ``LicentiaError``
        STATUS_STALE from a follower whose view is stale (it could not say what it misses).

        The live lists are read from the store first (ids are committed in increasing order,
        so the read is every list up to its highest id). A list the hub learnt of from an
        event before that read and that the read does not return has ended: it is
        forgotten; one learnt of after it is read again. With the store away, the lists in
        memory are signed if each one's end is known (the lists created since are newer than
        all of them: a verifier takes them as new), else the snapshot is UNAVAILABLE."""
        now = self.clock()
        self._refuse_if_stale(now)
        at = self.as_of(now)
        with self._lock:
            sequence = self._sequence
        with self._snapshot_lock:
            reused = self._reusable(sequence, at)
        if reused is not None:  # a subscriber in the same second: no store read, no copy
            return Snapshot(reused, sequence)
        for _ in range(3):
            with self._lock:
                unknown = set(self._lists.undeclared())
            try:
                live = self.store.status_lists(at - LIST_GRACE_SECONDS)
            except Exception:  # the store is away: sign what memory holds, if complete
                logger.warning("hub.snapshot_lists_unread", exc_info=True)
                live, unknown = [], set()
            with self._lock:
                for list_id, expires_at in live:
                    self._lists.declare(list_id, expires_at)
                self._lists.forget(unknown.difference(i for i, _ in live))
                self._lists.drop_ended(at)
                if not self._lists.undeclared():
                    # Only copied under the lock: a revocation waiting for it would leave
                    # Verify answering ALLOW for a licence already revoked in the store.
                    frozen, sequence = self._lists.freeze(at), self._sequence
                    break
        else:
            raise LicentiaError(Reason.UNAVAILABLE, "the status lists could not be read; retry")
        return Snapshot(self._sign_snapshot(frozen, sequence, at), sequence)

    def _reusable(self, sequence: int, at: int) -> bytes | None:
        """The last snapshot, if it was signed at ``sequence`` within the second before
        ``at`` (under ``_snapshot_lock``)."""
        last = self._last_snapshot
        if last is not None and last[0] == sequence and 0 <= at - last[1] < 1:
            return last[2]
        return None

    def _sign_snapshot(self, frozen: list[StatusListBits], sequence: int, at: int) -> bytes:
        """The signed snapshot of ``frozen``, compressing only the lists whose bits changed
        since the last one (and the last one itself again within a second, at the same
        sequence)."""
        with self._snapshot_lock:
            reused = self._reusable(sequence, at)
            if reused is not None:
                return reused
            if len(frozen) > MAX_STATUS_LISTS:  # verifiers will refuse it
                logger.error("hub.too_many_lists lists=%d", len(frozen))
            packed = {x.list_id: self._packed.get(x.list_id) for x in frozen}

            def pack(x: StatusListBits) -> bytes:
                kept = packed[x.list_id]
                if kept is None or kept[0] != x.bits:
                    kept = packed[x.list_id] = (x.bits, zlib.compress(x.bits, 9))
                return kept[1]

            data = signed_snapshot(frozen, self.keyring.current(), sequence, at, pack)
            self._packed = {i: p for i, p in packed.items() if p is not None}
            if len(data) > MAX_SNAPSHOT_BYTES:  # verifiers will refuse it: say so loudly
                logger.error("hub.snapshot_too_large bytes=%d", len(data))
            self._last_snapshot = (sequence, at, data)
            return data

    def signed_event(self, ev: RevocationEvent) -> status_pb2.StatusEvent:
        """``ev`` as the feeds send it: signed by the current issuer key. Signed once and
        reused by every subscriber (Ed25519 is deterministic: every replica sharing the key
        sends the same bytes); signed again after the key rotates."""
        key = self.keyring.current()
        key_id = key.public.key_id
        with self._signed_lock:
            msg = self._signed.get(ev.sequence)
        if (
            msg is not None
            and msg.issuer_key_id == key_id
            and (msg.status_list, msg.status_index, msg.revoked_at)
            == (ev.status_list, ev.status_index, ev.revoked_at)
        ):
            return msg
        msg = StatusEvent(ev.sequence, ev.status_list, ev.status_index, ev.revoked_at).signed(key)
        with self._signed_lock:
            self._signed[ev.sequence] = msg
            if len(self._signed) > RECENT:
                self._signed.popitem(last=False)
        return msg

    def signed_heartbeat(self, beat: Heartbeat) -> status_pb2.StatusHeartbeat:
        """``beat`` as the feeds send it: signed by the issuer key valid at its time, with
        the digest of the published keys (a verifier that trusts another set refetches it)."""
        key = self.keyring.current(beat.at)
        digest = self.keyring.key_set.digest()
        last = self._beat
        if last is not None and (
            last.sequence,
            last.at,
            last.issuer_key_id,
            last.key_set_sha256,
        ) == (beat.sequence, beat.at, key.public.key_id, digest):
            return last
        msg = signed_heartbeat(key, beat.sequence, beat.at, digest)
        self._beat = msg
        return msg

    def publish(self, events: Sequence[RevocationEvent]) -> None:
        """Apply committed events and wake every subscriber.

        Events may arrive out of order (two revocations commit as 5 then 6, and their
        threads publish 6 then 5; or 7 is published here while 6, committed by another
        replica, is not yet read): every bit is set at once, whatever the order, but the
        sequence only moves through consecutive numbers. When an event is ahead of a
        missing one, the missing ones are read from the store (they are committed: the
        store commits events in sequence order), so the sequence catches up at once.
        """
        if self._apply(events):
            self._fill()

    def _apply(self, events: Sequence[RevocationEvent]) -> bool:
        """Set the events' bits, move the sequence over every consecutive one, wake the
        subscribers; whether some event still waits for a missing one."""
        if not events:
            return bool(self._pending)
        with self._lock:
            for ev in events:
                # Committed: Verify denies it at once (an event of a dropped list sets nothing).
                self._lists.revoke(ev.status_list, ev.status_index)
                if ev.sequence > self._sequence:
                    self._pending[ev.sequence] = ev
            self._advance()
            self._wake_all()
            return bool(self._pending)

    def _wake_all(self) -> None:
        """Wake every subscriber (hold ``_lock``)."""
        for wake in self._wakers:
            wake.set()

    def _advance(self) -> None:
        """Move the sequence over the pending events that follow it (hold ``_lock``)."""
        while (ev := self._pending.pop(self._sequence + 1, None)) is not None:
            self._recent[ev.sequence] = ev
            if len(self._recent) > RECENT:
                self._recent.popitem(last=False)
            self._sequence = ev.sequence

    def _read(self, after: int) -> list[RevocationEvent]:
        """The store's next events after ``after`` (one batch). Their numbers start at
        ``after + 1``: the store numbers events without gaps and commits them in order. If
        it ever did not, the events past the hole wait as pending, never skipping it."""
        events = self.store.events_after(after, BATCH)
        if events and events[0].sequence > after + 1:
            logger.warning("hub.sequence_gap after=%d next=%d", after, events[0].sequence)
        return events

    def _fill(self) -> None:
        """Read the events missing before the pending ones (one batch) from the store."""
        try:
            events = self._read(self._sequence)
        except Exception:  # the follower's next poll tries again
            logger.warning("hub.fill_failed", exc_info=True)
            return
        self._apply(events)

    def _after(self, seq: int) -> list[RevocationEvent]:
        """The next events after ``seq`` (from memory when it has them all, else the store)."""
        with self._lock:
            out: list[RevocationEvent] = []
            for n in range(seq + 1, min(self._sequence, seq + BATCH) + 1):
                ev = self._recent.get(n)
                if ev is None:
                    break
                out.append(ev)
            limit = self._sequence
            if out and out[-1].sequence == min(limit, seq + BATCH):
                return out
        # Only what the hub has reached, and only consecutive numbers: never past a gap.
        out = []
        for ev in self.store.events_after(seq, BATCH):
            if ev.sequence != seq + len(out) + 1 or ev.sequence > limit:
                break
            out.append(ev)
        return out

    def check(self, status_list: int, status_index: int, now: int) -> Reason | None:
        """``REVOKED``, ``STATUS_LIST_DROPPED``, ``STATUS_STALE`` (a follower that lost the
        store), or ``None``."""
        reason = self._lists.lookup(status_list, status_index, now)
        if reason is not None:
            return reason
        if self.stale(now):
            return Reason.STATUS_STALE
        return None

    def poll(self) -> None:
        """Apply events committed by another process (a replica following the store), in
        order from the hub's sequence; raises what the store raised (nothing applied is
        lost: the next poll goes on from the sequence reached). The list is then complete
        as of the time the read began."""
        began = self.clock()
        while True:
            before = self._sequence
            events = self._read(before)
            self._apply(events)
            if len(events) < BATCH or self._sequence == before:
                break
        self.fresh_at = max(self.fresh_at, began)

    def follow(
        self,
        stop: threading.Event,
        interval: float,
        *,
        on_poll: Callable[[], None] | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        """Follow the store until ``stop`` is set (a replica's follower thread).

        Reads the store's new events whenever :meth:`~.store.Store.wait_for_events` says
        another process committed one (PostgreSQL's notifications), and at least every
        ``interval`` seconds whatever it says (the safety net; the only way on SQLite).
        ``on_poll`` runs after each timed read (re-reading the issuer keys, say). A failed
        read is logged and tried again at the next turn."""
        log = log or logger
        last = -float(interval)
        while not stop.is_set():
            try:
                news = self.store.wait_for_events(self._sequence, min(interval, 0.25))
            except Exception:
                log.warning("replica.wait_failed", exc_info=True)
                news = False
                stop.wait(min(interval, 0.25))
            if stop.is_set():
                return
            timed = time.monotonic() - last >= interval
            if not (news or timed):
                continue
            try:
                self.poll()
                if timed:
                    last = time.monotonic()
                    if on_poll is not None:
                        on_poll()
            except Exception:
                log.warning("replica.poll_failed", exc_info=True)

    def close(self) -> None:
        """End every subscription."""
        with self._lock:
            self._closed = True
            self._wake_all()

    def feed(
        self,
        after: int,
        heartbeat_seconds: float,
        active: Callable[[], bool],
        *,
        snapshots: bool = True,
        wake: threading.Event | None = None,
    ) -> Iterator[FeedItem]:
        """What a subscriber that has seen up to ``after`` must receive, then live items.

        Starts with a snapshot when ``after`` is ahead of the list (another exchange's
        numbering) or too far behind; then every event in order; a heartbeat whenever
        nothing happens for ``heartbeat_seconds``. Ends when ``active()`` turns false or
        the hub closes. ``wake``, when given, is set by the caller when ``active()`` turns
        false (grpc's ``add_callback``), so that a cancelled subscriber ends at once rather
        than at its next heartbeat. With ``snapshots=False`` (a subscriber that needs every
        event, such as a licensee following its own licences) it never starts from a
        snapshot: it reads every event it missed from the store, however far behind.

        Heartbeats are stamped :meth:`as_of`. A follower whose view of the store goes stale
        sends none: it ends the feed with ``LicentiaError`` STATUS_STALE (at the start, or at
        the first heartbeat due after its bound passed), so that a subscriber fails closed
        and reconnects, perhaps to a replica that can read the store.
        """
        wake = wake or threading.Event()
        with self._lock:
            self._wakers.add(wake)
        try:
            yield from self._feed(after, heartbeat_seconds, active, snapshots, wake)
        finally:
            with self._lock:
                self._wakers.discard(wake)

    def _feed(
        self,
        after: int,
        heartbeat_seconds: float,
        active: Callable[[], bool],
        snapshots: bool,
        wake: threading.Event,
    ) -> Iterator[FeedItem]:
        self._refuse_if_stale(self.clock())
        if after > self._sequence:  # resumed from a replica ahead of this one? catch up
            self._fill()
        seq = min(after, self._sequence) if not snapshots else after
        if snapshots and (after > self._sequence or self._sequence - after > MAX_CATCH_UP):
            snap = self.snapshot()
            yield snap
            seq = snap.sequence
        while active() and not self._closed:
            batch = self._after(seq) if seq < self._sequence else []
            if batch:
                for ev in batch:
                    yield ev
                    seq = ev.sequence
                continue
            with self._lock:
                if self._closed:
                    return
                # Nothing to send: wait for news, or a heartbeat's time; if the events are
                # announced but not yet readable, look again soon rather than spin. (Cleared
                # under the lock, then `active` looked at: news or an end that comes after
                # this still sets the event, and the wait returns at once.)
                wake.clear()
                idle = seq >= self._sequence
            if not active():
                return
            wake.wait(heartbeat_seconds if idle else 0.05)
            if not active():
                return
            with self._lock:
                now = self.clock()
                beat = Heartbeat(self._sequence, self.as_of(now)) if seq >= self._sequence else None
            if beat is not None and not self._closed:
                self._refuse_if_stale(now)
                yield beat
