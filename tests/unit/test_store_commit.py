"""The store's group commit: changes that share a transaction stand or fall alone, and none is
acknowledged before its transaction has committed."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from licentia.errors import LicentiaError, Reason
from licentia.services.model import Party, Role
from licentia.services.store import SqliteStore
from licentia.services.store import sqlite as store_sqlite
from licentia.services.store._group import Change, GroupCommit
from licentia.services.store.base import SpentNonce

from .store.harness import _concurrently

NOW = 1_800_000_000
THREADS = 16


def _party(i: int) -> Party:
    return Party(i.to_bytes(32, "big"), Role.ADVERTISER, f"adv{i}", f"Advertiser {i}", "FR", NOW)


def test_changes_batched_together_fail_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SqliteStore(tmp_path / "db")
    batches: list[int] = []
    real = store_sqlite.SqliteStore._commit

    def counting(self: SqliteStore, batch: list[object]) -> None:
        batches.append(len(batch))
        real(self, batch)  # type: ignore[arg-type]

    monkeypatch.setattr(store_sqlite.SqliteStore, "_commit", counting)
    for i in range(0, THREADS, 2):  # every even party exists already
        store.add_party(_party(i))
    # Odd parties are new; even ones collide with their earlier registration.
    errors = _concurrently(THREADS, lambda i: store.add_party(_party(i)))
    for i, e in enumerate(errors):
        if i % 2:
            assert e is None
        else:
            assert isinstance(e, LicentiaError)
            assert e.reason == Reason.ALREADY_EXISTS
    for i in range(THREADS):
        assert store.party(_party(i).key) == _party(i)
    assert sum(batches) == THREADS + THREADS // 2
    store.close()
    reopened = SqliteStore(tmp_path / "db")  # everything acknowledged is on disk
    assert all(reopened.party(_party(i).key) is not None for i in range(THREADS))
    reopened.close()


def test_a_failed_commit_fails_every_change_in_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SqliteStore(tmp_path / "db")
    real_execute = sqlite3.Connection.execute

    class Failing(sqlite3.Connection):
        def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
            if sql == "COMMIT":
                raise sqlite3.OperationalError("disk I/O error")
            return real_execute(self, sql, *args)  # type: ignore[arg-type]

    # A writer connection whose COMMIT fails, as on a full or broken disk.
    failing = sqlite3.connect(
        str(tmp_path / "db"), factory=Failing, check_same_thread=False, isolation_level=None
    )
    monkeypatch.setattr(store._db, "conn", failing)
    errors = _concurrently(4, lambda i: store.add_party(_party(i)))
    assert all(isinstance(e, sqlite3.OperationalError) for e in errors)
    assert all(store.party(_party(i).key) is None for i in range(4))
    failing.close()
    store.close()


def test_a_change_made_inside_a_change_joins_its_transaction(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "db")

    def outer(c: sqlite3.Connection) -> int:
        store.add_party(_party(1))  # nested: runs in this transaction, not a new one
        raise LicentiaError(Reason.INVALID_REQUEST, "changed my mind")

    with pytest.raises(LicentiaError):
        store._transact(outer)
    assert store.party(_party(1).key) is None  # rolled back with the outer change
    store.close()


def test_status_slots_are_never_handed_out_twice(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "db")
    got: list[tuple[int, int]] = []
    lock = threading.Lock()

    def take(_: int) -> None:
        for _ in range(50):
            slot = store.reserve_status_slot(2_000_000_000, list_size=100)
            with lock:
                got.append(slot)

    assert not any(_concurrently(8, take))
    store.close()
    again = SqliteStore(tmp_path / "db")  # a restart continues after the reserved block
    after = again.reserve_status_slot(2_000_000_000, list_size=100)
    again.close()
    assert len(set(got)) == len(got) == 400
    assert after > max(got)
    assert all(0 <= i < 100 for _, i in got)


def test_a_read_only_store_refuses_every_change(tmp_path: Path) -> None:
    SqliteStore(tmp_path / "db").close()
    replica = SqliteStore(tmp_path / "db", read_only=True)
    with pytest.raises(LicentiaError) as e:
        replica.add_party(_party(1))
    assert e.value.reason == Reason.NOT_SERVED
    replica.close()


def test_changes_that_wait_for_a_commit_share_the_next_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SqliteStore(tmp_path / "db")
    store.add_party(_party(2))
    batches: list[int] = []
    real = store_sqlite.SqliteStore._commit

    def counting(self: SqliteStore, batch: list[object]) -> None:
        batches.append(len(batch))
        real(self, batch)  # type: ignore[arg-type]

    monkeypatch.setattr(store_sqlite.SqliteStore, "_commit", counting)

    def slow(c: sqlite3.Connection) -> None:  # leads a commit until three more have queued
        for _ in range(3000):
            with store._cond:
                if len(store._queue) == 3:
                    return
            threading.Event().wait(0.001)
        raise AssertionError("the other changes never queued")

    leader = threading.Thread(target=store._transact, args=(slow,))
    leader.start()
    while not store._leading:
        threading.Event().wait(0.001)
    errors = _concurrently(3, lambda i: store.add_party(_party(i + 1)))
    leader.join(10)
    assert batches == [1, 3]
    assert errors[0] is None
    assert errors[2] is None
    assert isinstance(errors[1], LicentiaError)
    assert errors[1].reason == Reason.ALREADY_EXISTS
    assert store.party(_party(1).key) is not None
    assert store.party(_party(3).key) is not None
    store.close()


def _nonce(key: bytes = b"n1", expires_at: int = NOW + 61, now: int = NOW) -> SpentNonce:
    return SpentNonce(key, expires_at, now, Reason.REPLAYED_REQUEST)


def _spent(store: SqliteStore) -> list[tuple[bytes, int]]:
    return [(bytes(k), int(e)) for k, e in store._rows("SELECT * FROM spent_nonces ORDER BY key")]


def test_a_change_records_its_calls_nonce_and_a_replay_after_a_restart_changes_nothing(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "x.db")
    store.add_party(_party(1), nonces=(_nonce(),))
    store.close()
    store = SqliteStore(tmp_path / "x.db")  # a new process: no memory of the call
    with pytest.raises(LicentiaError) as e:
        store.add_party(_party(2), nonces=(_nonce(),))
    assert e.value.reason is Reason.REPLAYED_REQUEST
    assert store.party(_party(2).key) is None
    assert _spent(store) == [(b"n1", NOW + 61)]


def test_a_call_records_its_nonce_once_however_many_changes_it_makes(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "x.db")
    nonce = _nonce()
    store.add_party(_party(1), nonces=(nonce,))
    assert nonce.recorded
    store.add_party(
        _party(2), nonces=(nonce,)
    )  # the call's second change is not a replay of its first
    assert store.party(_party(2).key) is not None


def test_a_refused_change_spends_no_nonce(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "x.db")
    store.add_party(_party(1))
    nonce = _nonce()
    with pytest.raises(LicentiaError):
        store.add_party(_party(1), nonces=(nonce,))  # ALREADY_EXISTS: rolled back, nonce and all
    assert not nonce.recorded
    assert _spent(store) == []
    store.add_party(_party(2), nonces=(nonce,))
    assert nonce.recorded


def test_an_expired_nonce_may_be_spent_again_and_old_ones_are_swept(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "x.db")
    store.add_party(_party(1), nonces=(_nonce(b"old", NOW + 61),))
    later = NOW + 100  # past the first nonce's life
    # The same key, spent anew:
    store.add_party(_party(2), nonces=(_nonce(b"old", later + 61, later),))
    assert _spent(store) == [(b"old", later + 61)]
    store._swept_at = -float(store_sqlite.NONCE_SWEEP_SECONDS)  # the sweep is due
    store.add_party(_party(3), nonces=(_nonce(b"new", later + 300, later + 200),))
    assert _spent(store) == [(b"new", later + 300)]


def test_a_change_put_back_for_the_next_batch_waits_for_it_when_its_leader_is_done() -> None:
    # A backend's commit may return changes of its batch to run first in the next one (a
    # PostgreSQL batch's change that waited too long for a lock). When the leader's own
    # change was done in that batch, the ones put back still wait in the queue, not done
    # and not failed, and the next leader commits them.
    group = GroupCommit()
    group._init_group()
    waiting, leader, later = (Change(lambda c: None, ()) for _ in range(3))
    group._queue.append(waiting)  # its caller waits for a leader

    def commit(batch: list[Change]) -> list[Change]:
        put_back = [ch for ch in batch if ch is waiting and not ch.value]
        for ch in batch:
            if ch not in put_back:
                ch.value, ch.done = ("made", ch.value or 1), True
        if put_back:
            waiting.value = "again"
        return put_back

    group._in_group(leader, commit, 8, "abandoned")
    assert (leader.done, leader.error) == (True, None)
    assert (waiting.done, waiting.error, group._queue) == (False, None, [waiting])
    group._in_group(later, commit, 8, "abandoned")
    assert (waiting.done, waiting.error, waiting.value) == (True, None, ("made", "again"))
    assert (later.done, group._queue) == (True, [])
