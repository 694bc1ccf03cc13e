"""The PostgreSQL store's group commit of issuances (``PostgresStore._group``): a later change
of a batch that waits too long for a lock another transaction holds goes to the next batch,
and the batch commits without it instead of holding its own locks while it waits."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from licentia.services.store import postgres
from licentia.services.store._group import Change
from licentia.services.store.common import Conn
from licentia.services.store.postgres import PostgresStore

from ..pg_server import PgServer


@pytest.fixture
def url(pg_server: PgServer) -> str:
    return pg_server.create_database(template=pg_server.template)


@pytest.fixture
def store(url: str) -> Iterator[PostgresStore]:
    s = PostgresStore(url)
    yield s
    s.close()


def _counter(store: PostgresStore) -> int:
    return int(store._rows("SELECT value FROM counters WHERE name = 'log_index'")[0][0])


def test_a_change_blocked_by_another_replica_waits_for_the_next_batch(
    store: PostgresStore, url: str
) -> None:
    other = PostgresStore(url)  # another replica, holding one holder's lock for a while
    held, release = threading.Event(), threading.Event()

    def hold(c: Conn) -> None:
        other._hold(c, b"holder", b"X")
        held.set()
        release.wait(10)

    blocker = threading.Thread(target=lambda: other._transact(hold))
    blocker.start()
    try:
        assert held.wait(10)

        def append(account: bytes) -> Callable[[Conn], int]:
            def change(c: Conn) -> int:
                store._hold(c, b"holder", account)
                return store._next_log_index(c)

            return change

        first = Change(append(b"Y"), ())
        blocked = Change(append(b"X"), ())
        started = time.monotonic()
        again = store._run_batch([first, blocked])
        waited = time.monotonic() - started
        # The batch gave up on the blocked change after its lock wait, and committed the rest.
        assert again == [blocked]
        assert not blocked.done
        assert blocked.error is None
        assert first.done
        assert (first.value, first.error) == (0, None)
        assert postgres.BATCH_LOCK_WAIT_MS / 1000 <= waited < 5
        assert _counter(store) == 1  # the blocked change's log index was given back
    finally:
        release.set()
        blocker.join(10)
        other.close()
    # Run first in the next batch, it waits as any change does, and is made.
    assert store._run_batch([blocked]) == []
    assert blocked.done
    assert (blocked.value, blocked.error) == (1, None)
    assert _counter(store) == 2


def test_a_leader_interrupted_before_its_own_batch_leaves_its_change_to_no_one(
    store: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The leader's caller hears of the error; its change, still queued behind a full batch,
    must not be committed later by another leader."""
    waiting = [Change(lambda c: None, ()) for _ in range(postgres.MAX_BATCH)]
    store._queue.extend(waiting)  # a full batch ahead of the leader's own change

    def broken(batch: list[Change]) -> list[Change]:
        raise RuntimeError("interrupted")

    monkeypatch.setattr(store, "_run_batch", broken)
    ran: list[int] = []
    with pytest.raises(RuntimeError, match="interrupted"):
        store._group(lambda c: ran.append(1), ())
    assert store._queue == []  # its own change is gone with the error, not left to commit
    assert all(ch.done and ch.error is not None for ch in waiting)
    assert ran == []
