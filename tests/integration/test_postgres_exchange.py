"""The exchange end to end on the PostgreSQL store (``build(..., db="postgresql://…")``, as
``licentia-server --db`` does), on a real PostgreSQL server started by the tests
(``tests/conftest.py``): the store URLs, and replicas writing to one database. The
exchange-flow tests marked ``BOTH_STORES`` in test_exchange_flow.py run on it too."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from licentia import sealed
from licentia.clients import accounts
from licentia.clients.channel import SignedChannel
from licentia.clients.holder import Holder
from licentia.keys import PrivateKey
from licentia.services.store import open_store
from licentia.services.store.postgres import PostgresStore
from licentia.v1 import licences_pb2, records_pb2, transparency_pb2

from ..pg_server import PgServer
from .exchange_harness import (
    Exchange,
    ExchangeError,
    Party,
    approve_request,
    register_advertiser,
    register_holder,
    request_licence,
    start_exchange,
)


def test_open_store_takes_the_db_urls(tmp_path: Path, pg_server: PgServer) -> None:
    default = open_store("", tmp_path / "a.db")
    explicit = open_store(f"sqlite:///{tmp_path / 'b.db'}", tmp_path / "unused.db")
    pg = open_store(pg_server.create_database(pg_server.template), tmp_path / "unused.db")
    assert isinstance(pg, PostgresStore)
    for s in (default, explicit, pg):
        s.close()
    assert (tmp_path / "a.db").exists()
    assert (tmp_path / "b.db").exists()
    assert not (tmp_path / "unused.db").exists()
    with pytest.raises(ValueError, match="sqlite"):
        open_store("mysql://x", tmp_path / "a.db")


def test_two_replicas_on_one_database_issue_one_exclusive_licence(
    tmp_path: Path, pg_server: PgServer
) -> None:
    """Two exchange processes' worth of state (two apps, two servers, two pools) on one
    database: 16 approvals sent to both at once issue exactly one exclusive licence."""
    url = pg_server.create_database(pg_server.template)
    first = start_exchange(tmp_path / "data", db=url)
    # The second replica shares the data directory's keys (the issuer and operator keys).
    second = start_exchange(tmp_path / "data", db=url)
    try:
        holder = first.party()
        register_holder(holder)
        advertisers = [first.party() for _ in range(16)]  # 16 at once, as the issue asks
        for i, a in enumerate(advertisers):
            register_advertiser(a, f"Buyer {i}")
        pending = [
            request_licence(a, holder.key.public.raw, exclusive=True).request for a in advertisers
        ]
        on_second = Party(holder.key, SignedChannel(second.channel(), holder.key), second)
        outcomes: list[str] = []
        lock = threading.Lock()
        gate = threading.Barrier(len(pending))

        def approve(i: int) -> None:
            who = holder if i % 2 else on_second
            gate.wait()
            try:
                approve_request(who, pending[i])
                outcome = "ISSUED"
            except ExchangeError as e:
                outcome = e.reason.name
            with lock:
                outcomes.append(outcome)

        threads = [threading.Thread(target=approve, args=(i,)) for i in range(len(pending))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert outcomes.count("ISSUED") == 1
        assert sorted(set(outcomes)) == ["EXCLUSIVITY_CONFLICT", "ISSUED"]
        for replica in (holder, on_second):
            listed = replica.call(
                licences_pb2,
                "ListLicences",
                licences_pb2.ListLicencesRequest(),
                licences_pb2.ListLicencesResponse,
            ).licences
            assert len(listed) == 1
            assert listed[0].state == records_pb2.LICENCE_STATE_ACTIVE
        assert first.app.deps.store.ledger_check() == []
    finally:
        second.stop()
        first.stop()


def test_replicas_with_their_own_data_directories_starting_at_once_one_exchange_starts(
    tmp_path: Path, pg_server: PgServer
) -> None:
    """Four replicas, each with a new data directory of its own, start at the same moment on
    a new database: the first to record its keys is the exchange, every other one refuses
    to start, and the one issuer key published is the started replica's."""
    url = pg_server.create_database(pg_server.template)
    n = 4
    started: list[Exchange] = []
    refused: list[str] = []
    lock = threading.Lock()
    gate = threading.Barrier(n)

    def start(i: int) -> None:
        gate.wait()
        try:
            ex = start_exchange(tmp_path / f"data-{i}", db=url)
        except ValueError as e:
            with lock:
                refused.append(str(e))
        else:
            with lock:
                started.append(ex)

    threads = [threading.Thread(target=start, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    try:
        assert len(started) == 1
        assert len(refused) == n - 1, refused
        for r in refused:  # the record was there when it looked, or it lost the race to it
            assert "is not this exchange's" in r or "is missing" in r
            assert "operator" in r
        (winner,) = started
        (key,) = winner.app.deps.store.issuer_keys()
        assert (winner.data_dir / "issuer-keys" / f"{key.key_id.hex()}.key").exists()
        assert winner.app.deps.keyring.current().public.raw == key.public_key
        recorded = winner.app.deps.store.exchange_keys()
        assert recorded["operator"] == winner.app.deps.operator_key
    finally:
        for ex in started:
            ex.stop()


def test_two_replicas_changing_one_key_set_at_once_one_change_wins(
    tmp_path: Path, pg_server: PgServer
) -> None:
    """Eight devices of one account, half at each of two replicas on one database, each send a
    change built on the same set at once: exactly one is applied, the others are ABORTED with
    KEY_SET_CONFLICT, and the chain, the keys and the log agree."""
    url = pg_server.create_database(pg_server.template)
    first = start_exchange(tmp_path / "data", db=url)
    second = start_exchange(tmp_path / "data", db=url)
    try:
        owner = PrivateKey.generate()
        with Holder(first.channel(), owner) as me:
            me.register("racer")
            devices = [PrivateKey.generate() for _ in range(8)]
            for i, d in enumerate(devices):
                me.add_device(d, f"device {i}")
            base = me.key_set().current
        now = int(time.time())
        changes = [
            accounts.add_key(base, d, PrivateKey.generate(), name=f"new {i}", at=now)
            for i, d in enumerate(devices)
        ]
        outcomes: list[str] = []
        lock = threading.Lock()
        gate = threading.Barrier(len(changes))

        def send(i: int) -> None:
            ex = first if i % 2 else second
            with Holder(ex.channel(), devices[i]) as device:
                gate.wait()
                try:
                    device.change_key_set(changes[i])
                    outcome = "APPLIED"
                except ExchangeError as e:
                    outcome = e.reason.name
            with lock:
                outcomes.append(outcome)

        threads = [threading.Thread(target=send, args=(i,)) for i in range(len(changes))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert sorted(outcomes) == ["APPLIED"] + ["KEY_SET_CONFLICT"] * 7
        with Holder(second.channel(), owner) as me:
            after = me.key_set()
        assert after.current.sequence == base.sequence + 1
        assert len(after.current.keys) == len(base.keys) + 1
        store = first.app.deps.store
        log_key, count = store.account_log(owner.public.raw)
        window = sealed.TagWindow(log_key)
        logged = []
        for _, raw, _ in store.log_entries(0, store.log_size()):
            entry = transparency_pb2.LogEntry.FromString(raw)
            j = window.match(entry.sealed) if entry.HasField("sealed") else None
            if j is not None:
                logged.append(sealed.open_entry(log_key, j, entry.sealed).key_set_change)
        assert len(logged) == count  # numbered in log order, none missing
        assert logged == list(after.answer.changes)
    finally:
        second.stop()
        first.stop()
