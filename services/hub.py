"""The revocation hub: the exchange's status list in memory, and the live feed to verifiers.

The store is the truth; the hub mirrors it. After a revocation commits, the servicer calls
:meth:`RevocationHub.publish`, which sets the bit and wakes every subscriber at once. A
replica that does not write (verify-only, on the same data directory) follows the store
by polling instead. Subscribers read what they missed from the store, so a slow or late
subscriber never skips an event; one too far behind starts from a signed snapshot.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from licentia.errors import Reason
from licentia.status import StatusList

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


class RevocationHub:
    """The status list of one exchange and its subscribers."""

    def __init__(self, store: Store, keyring: Keyring, clock: Callable[[], int]) -> None:
        self.store = store
        self.keyring = keyring
        self.clock = clock
        self._cond = threading.Condition()
        self._closed = False
        self._list = StatusList()
        self._sequence = 0
        self._recent: OrderedDict[int, RevocationEvent] = OrderedDict()
        #: When the list was last known to match the store (a follower's last poll).
        self.fresh_at = clock()
        #: A follower answers STATUS_STALE when its last poll is older than this.
        self.staleness_bound: int | None = None
        self.reload()

    @property
    def sequence(self) -> int:
        """The last sequence number applied."""
        return self._sequence

    def reload(self) -> None:
        """Rebuild the list from the store."""
        revoked, sequence = self.store.status()
        fresh = StatusList()
        for i in revoked:
            fresh.revoke(i)
        with self._cond:
            self._list = fresh
            self._sequence = sequence
            self.fresh_at = self.clock()

    def snapshot(self) -> Snapshot:
        """A signed snapshot of the list now."""
        with self._cond:
            data = self._list.snapshot(self.keyring.current(), self._sequence, self.clock())
            return Snapshot(data, self._sequence)

    def publish(self, events: Sequence[RevocationEvent]) -> None:
        """Apply committed events and wake every subscriber.

        Events may arrive out of order (two revocations commit as 5 then 6, and their
        threads publish 6 then 5): every bit is set whatever the order, and the sequence
        only moves forward. Everything up to the sequence is committed (the store numbers
        events inside its serialised write transactions), so a subscriber may read it.
        """
        if not events:
            return
        with self._cond:
            for ev in events:
                self._list.revoke(ev.status_index)
                if ev.sequence not in self._recent:
                    self._recent[ev.sequence] = ev
                    if len(self._recent) > RECENT:
                        self._recent.popitem(last=False)
                self._sequence = max(self._sequence, ev.sequence)
            self._cond.notify_all()

    def _after(self, seq: int) -> list[RevocationEvent]:
        """The next events after ``seq`` (from memory when it has them all, else the store)."""
        with self._cond:
            out: list[RevocationEvent] = []
            for n in range(seq + 1, min(self._sequence, seq + BATCH) + 1):
                ev = self._recent.get(n)
                if ev is None:
                    break
                out.append(ev)
            if out and out[-1].sequence == min(self._sequence, seq + BATCH):
                return out
        return self.store.events_after(seq, BATCH)

    def check(self, index: int, now: int) -> Reason | None:
        """``REVOKED``, ``STATUS_STALE`` (a follower that lost the store), or ``None``."""
        if self._list.is_revoked(index):
            return Reason.REVOKED
        if self.staleness_bound is not None and now - self.fresh_at > self.staleness_bound:
            return Reason.STATUS_STALE
        return None

    def poll(self) -> None:
        """Apply events committed by another process (a replica following the store)."""
        while True:
            events = self.store.events_after(self._sequence, BATCH)
            self.publish(events)
            if len(events) < BATCH:
                break
        self.fresh_at = self.clock()

    def close(self) -> None:
        """End every subscription."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def feed(
        self,
        after: int,
        heartbeat_seconds: float,
        active: Callable[[], bool],
        *,
        snapshots: bool = True,
    ) -> Iterator[FeedItem]:
        """What a subscriber that has seen up to ``after`` must receive, then live items.

        Starts with a snapshot when ``after`` is ahead of the list (another exchange's
        numbering) or too far behind; then every event in order; a heartbeat whenever
        nothing happens for ``heartbeat_seconds``. Ends when ``active()`` turns false or
        the hub closes. With ``snapshots=False`` (a subscriber that needs every event, such
        as a licensee following its own licences) it never starts from a snapshot: it
        reads every event it missed from the store, however far behind.
        """
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
            with self._cond:
                if self._closed:
                    return
                # Nothing to send: wait for news, or a heartbeat's time; if the events are
                # announced but not yet readable, look again soon rather than spin.
                self._cond.wait(heartbeat_seconds if seq >= self._sequence else 0.05)
                beat = Heartbeat(self._sequence, self.clock()) if seq >= self._sequence else None
            if beat is not None and not self._closed:
                yield beat
