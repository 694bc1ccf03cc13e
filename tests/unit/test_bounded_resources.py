"""The server's worker threads and the SQLite store's read connections are bounded, and
what a burst started goes away when it is over."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from licentia.errors import LicentiaError, Reason
from licentia.services.runtime import ElasticExecutor
from licentia.services.store import sqlite as sqlite_store


def _until(predicate: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met"
        time.sleep(0.01)


def test_the_executor_runs_at_most_its_workers_and_idle_threads_end() -> None:
    pool = ElasticExecutor(3, idle_seconds=0.1, thread_name_prefix="t")
    release = threading.Event()
    running = []
    lock = threading.Lock()

    def work(i: int) -> int:
        with lock:
            running.append(i)
        release.wait(5)
        return i * 2

    futures = [pool.submit(work, i) for i in range(10)]
    _until(lambda: len(running) == 3)
    time.sleep(0.05)
    assert len(running) == 3  # the rest wait in order
    assert pool.threads == 3
    release.set()
    assert [f.result(timeout=5) for f in futures] == [i * 2 for i in range(10)]
    _until(lambda: pool.threads == 0, timeout=2)  # nothing to do: every thread ended
    assert pool.submit(lambda: "again").result(timeout=5) == "again"  # and starts anew
    pool.shutdown()
    with pytest.raises(RuntimeError):
        pool.submit(lambda: None)


def test_an_exception_reaches_the_future() -> None:
    pool = ElasticExecutor(1)
    future = pool.submit(lambda: 1 // 0)
    with pytest.raises(ZeroDivisionError):
        future.result(timeout=5)


def test_read_connections_are_pooled_and_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_store, "MAX_READERS", 2)
    monkeypatch.setattr(sqlite_store, "IDLE_READERS", 1)
    store = sqlite_store.SqliteStore(tmp_path / "licentia.db")
    inside, release = threading.Semaphore(0), threading.Event()
    most = 0

    def read() -> None:
        nonlocal most
        with store._snapshot() as c:  # a thread holds one connection while it reads
            most = max(most, store.open_readers)
            c.execute("SELECT 1").fetchall()
            store._rows("SELECT 1")  # a read inside a read uses the same connection
            inside.release()
            release.wait(5)

    threads = [threading.Thread(target=read) for _ in range(5)]
    for t in threads:
        t.start()
    assert inside.acquire(timeout=5)
    assert inside.acquire(timeout=5)
    assert not inside.acquire(timeout=0.2)  # the third waits for a free connection
    assert store.open_readers == 2
    release.set()
    for t in threads:
        t.join(5)
    assert most <= 2
    assert store.open_readers == 1  # one kept idle, the other closed
    store.close()
    assert store.open_readers == 0


def test_a_write_that_cannot_open_a_file_is_unavailable(tmp_path: Path) -> None:
    store = sqlite_store.SqliteStore(tmp_path / "licentia.db")

    def change(c: object) -> None:
        raise sqlite3.OperationalError("unable to open database file")  # as under EMFILE

    try:
        with pytest.raises(LicentiaError) as refused:
            store._transact(change)
        assert refused.value.reason == Reason.UNAVAILABLE
    finally:
        store.close()
