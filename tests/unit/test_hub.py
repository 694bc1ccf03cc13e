"""The revocation hub: out-of-order publication, feeds from memory and from the store."""

from __future__ import annotations

import itertools
import threading
import zlib
from pathlib import Path

import pytest

from licentia.errors import LicentiaError, Reason
from licentia.services.hub import Heartbeat, RevocationHub, Snapshot
from licentia.services.issuer import Keyring
from licentia.services.model import Cause, RevocationEvent
from licentia.services.store import SqliteStore
from licentia.status import (
    LIST_GRACE_SECONDS,
    StatusEvent,
    verify_event,
    verify_heartbeat,
    verify_snapshot,
)
from licentia.v1 import status_pb2

NOW = 1_800_000_000
DAY = 86_400


def _hub(tmp_path: Path) -> RevocationHub:
    store = SqliteStore(tmp_path / "db")
    keyring = Keyring(tmp_path / "keys", store, lambda: NOW)
    keyring.load(NOW)
    return RevocationHub(store, keyring, lambda: NOW)


def _ev(seq: int, index: int, status_list: int = 0) -> RevocationEvent:
    return RevocationEvent(
        seq, index, bytes([seq]) * 16, b"k" * 32, NOW, Cause.REVOKED, status_list
    )


def test_events_published_out_of_order_all_take_effect(tmp_path: Path) -> None:
    hub = _hub(tmp_path)
    hub.publish([_ev(2, 20)])
    hub.publish([_ev(1, 10)])  # the thread of the earlier commit published last
    assert hub.sequence == 2
    assert hub.check(0, 10, NOW) == Reason.REVOKED
    assert hub.check(0, 20, NOW) == Reason.REVOKED
    assert hub.check(0, 30, NOW) is None


def test_the_sequence_never_passes_a_missing_event(tmp_path: Path) -> None:
    """Event 2 published while 1 is nowhere to be read (another replica's, not yet read):
    its bit is set at once, but the sequence, heartbeats and snapshots stay at 0 until 1
    arrives; then each event is fed once, in order, however often it was published."""
    hub = _hub(tmp_path)
    hub.publish([_ev(2, 20)])
    assert hub.check(0, 20, NOW) == Reason.REVOKED
    assert hub.sequence == 0
    assert hub.snapshot().sequence == 0
    beat = next(hub.feed(0, 0.01, lambda: True))
    assert isinstance(beat, Heartbeat)
    assert beat.sequence == 0
    hub.publish([_ev(1, 10), _ev(2, 20)])
    hub.publish([_ev(1, 10)])
    assert hub.sequence == 2
    items = list(itertools.islice(hub.feed(0, 0.01, lambda: True), 3))
    assert [type(i).__name__ for i in items] == ["RevocationEvent", "RevocationEvent", "Heartbeat"]
    assert [i.sequence for i in items] == [1, 2, 2]


def test_a_feed_sends_every_event_in_order_then_heartbeats(tmp_path: Path) -> None:
    hub = _hub(tmp_path)
    hub.publish([_ev(3, 30), _ev(1, 10), _ev(2, 20)])
    items = list(itertools.islice(hub.feed(0, 0.01, lambda: True), 4))
    assert [getattr(i, "sequence", None) for i in items[:3]] == [1, 2, 3]
    assert isinstance(items[3], Heartbeat)
    assert items[3].sequence == 3


def test_a_subscriber_ahead_of_the_exchange_starts_from_a_snapshot(tmp_path: Path) -> None:
    hub = _hub(tmp_path)
    first = next(hub.feed(99, 0.01, lambda: True))
    assert isinstance(first, Snapshot)
    assert first.sequence == 0


def test_a_stale_follower_fails_closed(tmp_path: Path) -> None:
    hub = _hub(tmp_path)
    hub.staleness_bound = 10
    assert hub.check(0, 1, hub.fresh_at + 10) is None
    assert hub.check(0, 1, hub.fresh_at + 11) == Reason.STATUS_STALE


def test_events_and_heartbeats_are_signed_once_for_every_feed_and_again_after_a_rotation(
    tmp_path: Path,
) -> None:
    now = [NOW]
    store = SqliteStore(tmp_path / "db")
    keyring = Keyring(tmp_path / "keys", store, lambda: now[0])
    keyring.load(NOW)
    hub = RevocationHub(store, keyring, lambda: now[0])
    first = hub.signed_event(_ev(1, 10))
    assert verify_event(first, keyring.key_set) == StatusEvent(1, 0, 10, NOW)
    assert hub.signed_event(_ev(1, 10)) is first  # every subscriber gets the same message
    beat = hub.signed_heartbeat(Heartbeat(1, NOW))
    assert verify_heartbeat(beat, keyring.key_set) == (1, NOW, keyring.key_set.digest())
    assert hub.signed_heartbeat(Heartbeat(1, NOW)) is beat
    keyring.rotate(NOW)  # the new key signs from the next second
    now[0] = NOW + 2
    again = hub.signed_event(_ev(1, 10))
    assert again.issuer_key_id != first.issuer_key_id
    assert verify_event(again, keyring.key_set) == StatusEvent(1, 0, 10, NOW)
    rebeat = hub.signed_heartbeat(Heartbeat(1, NOW + 2))
    assert rebeat.issuer_key_id == again.issuer_key_id
    assert rebeat.key_set_sha256 == keyring.key_set.digest() != beat.key_set_sha256


def test_a_rotation_never_invalidates_what_the_old_key_signed_this_second(
    tmp_path: Path,
) -> None:
    """Found by a flaky rotation test: a key rotated in at the second its predecessor had
    just stamped a licence with ended the predecessor's window at that very second."""
    store = SqliteStore(tmp_path / "db")
    now = [NOW]
    keyring = Keyring(tmp_path / "keys", store, lambda: now[0])
    keyring.load(NOW)
    old = keyring.current(NOW + 5)
    keyring.rotate(NOW + 5)  # in the same second as a licence stamped NOW + 5
    published = keyring.key_set.resolve(old.public.key_id)
    assert published is not None
    assert published.may_sign_at(NOW + 5)
    assert keyring.current(NOW + 5).public == old.public  # it signs until the second is over
    assert keyring.current(NOW + 6).public != old.public


def _following(tmp_path: Path, now: list[int], bound: int = 10) -> RevocationHub:
    """A hub following a store that others write to (a replica), on the clock ``now[0]``."""
    store = SqliteStore(tmp_path / "db")
    keyring = Keyring(tmp_path / "keys", store, lambda: now[0])
    keyring.load(NOW)
    hub = RevocationHub(store, keyring, lambda: now[0])
    hub.staleness_bound = bound
    return hub


def test_a_followers_heartbeats_and_snapshots_are_stamped_with_its_last_read(
    tmp_path: Path,
) -> None:
    """A heartbeat promises every revocation up to its time: a follower that last read the
    store at NOW may not stamp NOW + 8, whatever its clock says."""
    now = [NOW]
    hub = _following(tmp_path, now)
    now[0] = NOW + 8  # no read since NOW (the database is unreachable, say)
    beat = next(hub.feed(0, 0.01, lambda: True))
    assert isinstance(beat, Heartbeat)
    assert beat.at == NOW
    assert verify_heartbeat(hub.signed_heartbeat(beat), hub.keyring.key_set).at == NOW
    snap = status_pb2.SignedStatusSnapshot.FromString(hub.snapshot().signed)
    assert verify_snapshot(snap.SerializeToString(), hub.keyring.key_set).taken_at == NOW
    hub.poll()  # the store is read again: complete as of the read
    assert next(hub.feed(0, 0.01, lambda: True)).at == NOW + 8  # type: ignore[union-attr]


def test_a_stale_follower_ends_its_feeds_and_refuses_snapshots(tmp_path: Path) -> None:
    """Past its bound a follower cannot say what it misses: no heartbeat, no snapshot, and
    the feeds already open end with STATUS_STALE (a subscriber reconnects elsewhere)."""
    now = [NOW]
    hub = _following(tmp_path, now)
    live = hub.feed(0, 0.01, lambda: True)
    assert next(live).at == NOW  # type: ignore[union-attr]
    now[0] = NOW + 11
    with pytest.raises(LicentiaError) as ended:
        next(live)
    assert ended.value.reason is Reason.STATUS_STALE
    with pytest.raises(LicentiaError) as refused:
        next(hub.feed(0, 0.01, lambda: True))
    assert refused.value.reason is Reason.STATUS_STALE
    with pytest.raises(LicentiaError) as no_snapshot:
        hub.snapshot()
    assert no_snapshot.value.reason is Reason.STATUS_STALE
    hub.poll()  # the store is back: fresh again
    assert next(hub.feed(0, 0.01, lambda: True)).at == NOW + 11  # type: ignore[union-attr]


def test_an_exchange_that_takes_every_revocation_itself_is_complete_now(tmp_path: Path) -> None:
    now = [NOW]
    hub = _following(tmp_path, now)
    hub.staleness_bound = None  # it follows nobody: its list is the store's at every moment
    now[0] = NOW + 1000
    beat = next(hub.feed(0, 0.01, lambda: True))
    assert beat.at == NOW + 1000  # type: ignore[union-attr]


def test_snapshots_carry_the_live_lists_and_the_hub_drops_ended_ones(tmp_path: Path) -> None:
    """Every live list is in a snapshot, one with no revocation too; a list whose epoch has
    ended (and its grace day) is left out and answers STATUS_LIST_DROPPED; an event of a
    list the hub learnt of only from the event, ended by the snapshot's time, is forgotten
    rather than keeping the snapshot from being taken."""
    now = [NOW]
    store = SqliteStore(tmp_path / "db")
    keyring = Keyring(tmp_path / "keys", store, lambda: now[0])
    keyring.load(NOW)
    hub = RevocationHub(store, keyring, lambda: now[0])  # read before any list existed
    short = store.reserve_status_slot(NOW + DAY, epoch_seconds=DAY)
    empty = store.reserve_status_slot(NOW + 3 * DAY, epoch_seconds=DAY)
    long = store.reserve_status_slot(NOW + 30 * DAY, epoch_seconds=DAY)
    assert [short[0], empty[0], long[0]] == [1, 2, 3]
    hub.publish([_ev(1, short[1], short[0]), _ev(2, long[1], long[0])])
    lists = verify_snapshot(hub.snapshot().signed, keyring.key_set).lists
    assert [x.list_id for x in lists] == [1, 2, 3]
    assert hub.check(*short, NOW) == hub.check(*long, NOW) == Reason.REVOKED
    now[0] = (NOW // DAY + 3) * DAY + LIST_GRACE_SECONDS  # list 1's epoch ended a day ago
    snap = verify_snapshot(hub.snapshot().signed, keyring.key_set)
    assert [x.list_id for x in snap.lists] == [2, 3]
    assert hub.check(*short, now[0]) == Reason.STATUS_LIST_DROPPED
    assert hub.check(4, 0, now[0]) is None  # newer than every list: nothing revoked in it
    late = RevocationHub(store, keyring, lambda: now[0])
    late._lists.top = -1  # as if it had read the store before any list existed
    late.publish([_ev(3, 0, 1)])  # list 1, ended: known from this event only
    assert [x.list_id for x in verify_snapshot(late.snapshot().signed, keyring.key_set).lists] == [
        2,
        3,
    ]


def test_a_revocation_takes_effect_while_a_snapshot_is_being_compressed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Building a snapshot compresses every live list, which takes long on a big exchange;
    it is done outside the lock revocations take, so Verify denies a revoked licence at
    once even then. The next snapshot reuses each unchanged list's compressed bits."""
    hub = _hub(tmp_path)
    slot = hub.store.reserve_status_slot(NOW + DAY)
    hub.publish([_ev(1, slot[1], slot[0])])
    inside, release = threading.Event(), threading.Event()
    packed: list[int] = []
    compress = zlib.compress

    def slow(data: bytes, level: int = -1) -> bytes:
        packed.append(len(data))
        inside.set()
        assert release.wait(5)
        return compress(data, level)

    monkeypatch.setattr(zlib, "compress", slow)  # the one the hub calls
    snapshots: list[Snapshot] = []
    taker = threading.Thread(target=lambda: snapshots.append(hub.snapshot()))
    taker.start()
    assert inside.wait(5)
    done = threading.Thread(target=hub.publish, args=([_ev(2, slot[1] + 1, slot[0])],))
    done.start()
    done.join(2)
    assert not done.is_alive()  # the revocation did not wait for the compression
    assert hub.check(slot[0], slot[1] + 1, NOW) == Reason.REVOKED
    release.set()
    taker.join(5)
    assert verify_snapshot(snapshots[0].signed, hub.keyring.key_set).sequence == 1
    packed.clear()
    second = verify_snapshot(hub.snapshot().signed, hub.keyring.key_set)
    assert second.sequence == 2
    assert len(packed) == 1  # the list changed: packed again
    hub.snapshot()  # the same second, the same sequence: the signed snapshot again
    assert len(packed) == 1
