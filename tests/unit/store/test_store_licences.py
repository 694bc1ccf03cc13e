"""The store contract, licences and their status: revocation, erasure, the status list,
uses and accesses (both backends)."""

from __future__ import annotations

import dataclasses
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import pytest

from licentia import sealed
from licentia.errors import Reason
from licentia.services.model import (
    Access,
    AssetRow,
    Cause,
)
from licentia.services.store import Store
from licentia.services.store._walwatch import WalVersion
from licentia.services.store.sqlite import SqliteStore
from licentia.status import MAX_STATUS_BITS
from licentia.v1 import transparency_pb2

from .harness import (
    DAY,
    LICENSEE,
    NOW,
    PRICE,
    THREADS,
    Opener,
    _claims,
    _concurrently,
    _d,
    _holder,
    _issued,
    _key,
    _raises,
    _reason,
    _request,
)


# -- revocation, erasure, the status list ----------------------------------------------------
def test_revocation_refunds_sets_the_bit_and_logs(store: Store) -> None:
    holder = _holder()
    lic = _issued(store, holder, 1)
    assert store.status(0)[1:] == ([], 0)
    call = transparency_pb2.SignedCall(method="Revoke", body=b"b", key=b"k", nonce=b"n")
    later = NOW + 9 * DAY  # a tenth of the 90-day term
    revoked, event = store.revoke(lic.licence_id, later, Cause.REVOKED, call.SerializeToString())
    assert revoked == dataclasses.replace(lic, revoked_at=later)
    assert (event.sequence, event.status_index, event.licence_id, event.cause) == (
        1,
        lic.status_index,
        lic.licence_id,
        Cause.REVOKED,
    )
    assert store.status(0)[1:] == ([(lic.status_list, lic.status_index)], 1)
    assert store.events_after(0, 10) == [event]
    assert store.events_after(1, 10) == []
    # Idempotent: the first revocation, nothing new.
    assert store.revoke(lic.licence_id, later + 5, Cause.ERASED) == (revoked, event)
    _raises(Reason.NOT_FOUND, lambda: store.revoke(b"\x00" * 16, later, Cause.REVOKED))
    entries = store.log_entries(0, 10)
    assert len(entries) == 2
    log_key, count = store.account_log(holder.public.raw)  # the issuance, the revocation
    assert count == 2
    sealed_entry = transparency_pb2.LogEntry.FromString(entries[1][1]).sealed
    logged = sealed.open_entry(log_key, 2, sealed_entry).revocation
    assert lic.licence_id not in entries[1][1]
    assert (logged.licence_id, logged.revoked_at, logged.request.method) == (
        lic.licence_id,
        later,
        "Revoke",
    )
    advertiser = store.party(LICENSEE.public.raw)
    h = store.party(holder.public.raw)
    assert advertiser is not None
    assert h is not None
    st = store.statement(advertiser, 0, 10)
    assert st.pending == 0
    assert st.available == PRICE - PRICE // 10  # the unused nine tenths came back
    assert store.statement(h, 0, 10).available == (PRICE // 10) * 9 // 10  # less the 10% fee


def test_revocation_sequences_are_gapless_across_replicas(opener: Opener) -> None:
    setup = opener()
    holder = _holder()
    licences = [_issued(setup, holder, i) for i in range(THREADS)]
    replicas = [opener() for _ in range(4)]
    errors = _concurrently(
        THREADS,
        lambda i: replicas[i % 4].revoke(licences[i].licence_id, NOW + i, Cause.REVOKED),
    )
    assert errors == [None] * THREADS
    events = setup.events_after(0, 99)
    assert [e.sequence for e in events] == list(range(1, THREADS + 1))
    assert {e.licence_id for e in events} == {lic.licence_id for lic in licences}
    assert setup.events_after(10, 3) == events[10:13]
    _, revoked, last = setup.status(0)
    slots = sorted((lic.status_list, lic.status_index) for lic in licences)
    assert (sorted(revoked), last) == (slots, THREADS)
    # Every revocation was logged once, after the issuances, indexes gapless.
    assert [i for i, _, _ in setup.log_entries(0, 99)] == list(range(2 * THREADS))
    assert setup.ledger_check() == []


def test_concurrent_revocations_of_one_licence_revoke_once(opener: Opener) -> None:
    setup = opener()
    lic = _issued(setup, _holder(), 1)
    replicas = [opener() for _ in range(8)]
    errors = _concurrently(8, lambda i: replicas[i].revoke(lic.licence_id, NOW + i, Cause.REVOKED))
    assert errors == [None] * 8
    assert len(setup.events_after(0, 99)) == 1
    assert setup.log_size() == 2
    assert setup.ledger_check() == []


def test_status_lists_are_sharded_by_expiry_epoch_and_have_no_ceiling(opener: Opener) -> None:
    """A licence goes to an open list of its not_after's epoch; a full list is followed by a
    new one: the licence after 2^26 of an epoch is index 0 of the next list, even when
    another replica reserves it. The live lists are those whose epoch has not ended."""
    store = opener()
    week = 7 * DAY
    end = NOW + 10 * week
    first_end = (end // week + 1) * week
    got = [store.reserve_status_slot(end, list_size=4) for _ in range(5)]
    assert got == [(1, 0), (1, 1), (1, 2), (1, 3), (2, 0)]
    assert store.reserve_status_slot(end + week, list_size=4) == (3, 0)  # the next epoch
    assert store.status_lists(1) == [(1, first_end), (2, first_end), (3, first_end + week)]
    assert store.status_lists(first_end + 1) == [(3, first_end + week)]
    later = NOW + 20 * week
    assert store.reserve_status_slot(later, list_size=MAX_STATUS_BITS) == (4, 0)
    cast(Any, store)._execute(
        "UPDATE status_lists SET used = ? WHERE list_id = 4", (MAX_STATUS_BITS - 1,)
    )
    other = opener()  # another replica, with no block of its own
    slots = [other.reserve_status_slot(later, list_size=MAX_STATUS_BITS) for _ in range(2)]
    assert slots == [(4, MAX_STATUS_BITS - 1), (5, 0)]
    # The epoch's length changed (--status-epoch-days): list 5, of epoch `later // week` too,
    # has room but ends before a licence of that epoch's new end: it gets a list of its own.
    longer = week + DAY
    assert store.reserve_status_slot(later // week * longer, epoch_seconds=longer) == (6, 0)


def test_erasure_deletes_assets_and_revokes_their_licences(store: Store) -> None:
    holder = _holder()
    h = holder.public.raw
    claims = _claims(holder, 1)
    for a in claims.assets:
        store.put_asset(AssetRow(h, a.sha256, a.category, "x", 0, False, NOW), b"bytes")
    lic = _issued(store, holder, 1)
    other = _issued(store, holder, 2, assets=claims.assets[1:])  # names the second asset only
    erased, events = store.erase_assets(h, [claims.assets[0].sha256], NOW + 10, b"")
    assert erased == 1
    assert [(e.licence_id, e.cause) for e in events] == [(lic.licence_id, Cause.ERASED)]
    assert [a.sha256 for a in store.assets(h)] == [claims.assets[1].sha256]
    live = store.licence(other.licence_id)
    assert live is not None
    assert live.revoked_at == 0
    erased, events = store.erase_assets(h, None, NOW + 20)  # everything left
    assert erased == 1
    assert [e.licence_id for e in events] == [other.licence_id]
    assert store.assets(h) == []
    assert [e.sequence for e in store.events_after(0, 9)] == [1, 2]


def test_a_key_reused_for_another_request_is_refused(store: Store) -> None:
    """One rule for every keyed change: the first request's digest is stored with its key;
    the same key with another digest is IDEMPOTENCY_KEY_REUSED and changes nothing, while
    the same key with the same digest replays the first answer."""
    holder = _holder()
    first = _request(store, _claims(holder, 1), key=b"k1", digest=_d("request one"))
    reused = _claims(holder, 2)
    _raises(
        Reason.IDEMPOTENCY_KEY_REUSED,
        lambda: _request(store, reused, key=b"k1", digest=_d("request two")),
    )
    _raises(
        Reason.IDEMPOTENCY_KEY_REUSED,
        lambda: store.request_by_key(LICENSEE.public.raw, b"k1", _d("request two")),
    )
    assert store.request(reused.licence_id) is None
    assert _request(store, _claims(holder, 3), key=b"k1", digest=_d("request one")) == first

    adv = LICENSEE.public.raw
    line, _, _ = store.deposit(adv, 500, "bank-9", NOW, digest=_d("deposit one"))
    # Even the same amount to the same account: the request is not the same one.
    _raises(
        Reason.IDEMPOTENCY_KEY_REUSED,
        lambda: store.deposit(adv, 500, "bank-9", NOW, digest=_d("deposit two")),
    )
    assert store.deposit(adv, 500, "bank-9", NOW + 1, digest=_d("deposit one"))[0] == line

    lic = _issued(store, holder, 4)
    platform = _key(60)
    assert store.record_use(b"r", lic.licence_id, platform, NOW, digest=_d("use one")) == (1, NOW)
    _raises(
        Reason.IDEMPOTENCY_KEY_REUSED,
        lambda: store.record_use(b"r", lic.licence_id, platform, NOW, digest=_d("use two")),
    )
    _raises(Reason.IDEMPOTENCY_KEY_REUSED, lambda: store.use_report(b"r", _d("use two")))
    assert store.licence_uses(lic.licence_id) == 1
    h = holder.public.raw
    store.settle(h, lic.not_after)
    store.add_payout_destination(h, "iban", NOW, NOW, limit=16)
    paid, balance, _ = store.withdraw(h, 100, "iban", b"w", NOW, digest=_d("payout one"))
    _raises(
        Reason.IDEMPOTENCY_KEY_REUSED,
        lambda: store.withdraw(h, 100, "iban", b"w", NOW, digest=_d("payout two")),
    )
    assert store.withdraw(h, 100, "iban", b"w", NOW, digest=_d("payout one")) == (
        paid,
        balance,
        True,
    )

    assert store.ledger_check() == []


# -- uses, accesses --------------------------------------------------------------------------
def test_use_counting(store: Store) -> None:
    lic = _issued(store, _holder(), 1)  # max_uses = 3
    platform = _key(60)
    assert store.licence_uses(lic.licence_id) == 0
    assert store.record_use(b"r1", lic.licence_id, platform, NOW + 1, digest=_d(b"r1")) == (
        1,
        NOW + 1,
    )
    assert store.record_use(b"r1", lic.licence_id, platform, NOW + 5, digest=_d(b"r1")) == (
        1,
        NOW + 1,
    )  # replay
    assert store.record_use(b"r2", lic.licence_id, platform, NOW + 2, digest=_d(b"r2")) == (
        2,
        NOW + 2,
    )
    assert store.record_use(b"r3", lic.licence_id, platform, NOW + 3, digest=_d(b"r3")) == (
        3,
        NOW + 3,
    )
    _raises(
        Reason.USES_EXHAUSTED,
        lambda: store.record_use(b"r4", lic.licence_id, platform, NOW, digest=_d(b"r4")),
    )
    _raises(
        Reason.NOT_FOUND,
        lambda: store.record_use(b"r5", b"\x00" * 16, platform, NOW, digest=_d(b"r5")),
    )
    other = _issued(store, _holder(), 2, not_before=NOW + 100 * DAY, not_after=NOW + 110 * DAY)
    _raises(
        Reason.IDEMPOTENCY_KEY_REUSED,
        lambda: store.record_use(b"r1", other.licence_id, platform, NOW, digest=_d(b"r1")),
    )
    assert store.use_report(b"r2", _d(b"r2")) == (lic.licence_id, 2, NOW + 2)
    assert store.use_report(b"r9", _d(b"r9")) is None
    stored = store.licence(lic.licence_id)
    assert stored is not None
    assert stored.uses == 3 == store.licence_uses(lic.licence_id)
    assert store.licence_uses(b"\x00" * 16) == 0


def test_use_counting_across_replicas(opener: Opener) -> None:
    setup = opener()
    lic = _issued(setup, _holder(), 1)  # max_uses = 3
    replicas = [opener() for _ in range(4)]
    errors = _concurrently(
        8,
        lambda i: replicas[i % 4].record_use(
            b"u%d" % i, lic.licence_id, _key(60), NOW + 1, digest=_d(b"u%d" % i)
        ),
    )
    reasons = [_reason(e) for e in errors]
    assert reasons.count(None) == 3
    assert reasons.count(Reason.USES_EXHAUSTED) == 5
    stored = setup.licence(lic.licence_id)
    assert stored is not None
    assert stored.uses == 3
    # The same report from several replicas at once counts once.
    lic2 = _issued(setup, _holder(3), 2)
    errors = _concurrently(
        8,
        lambda i: replicas[i % 4].record_use(
            b"same", lic2.licence_id, _key(60), NOW + 1, digest=_d(b"same")
        ),
    )
    assert errors == [None] * 8
    stored = setup.licence(lic2.licence_id)
    assert stored is not None
    assert stored.uses == 1
    assert setup.ledger_check() == []


def test_accesses(store: Store) -> None:
    h = _key(70)
    for i in range(3):
        store.record_access(Access(h, bytes([i]) * 32, b"l" * 16, _key(71), NOW + i))
    got = store.accesses(h, 2)
    assert [a.accessed_at for a in got] == [NOW + 2, NOW + 1]
    assert store.accesses(_key(72), 5) == []


def test_use_counts_follow_every_commit_of_any_replica_or_process(opener: Opener) -> None:
    """A count read again is the store's: after a use recorded by another replica and, on
    SQLite, by another process's own connection (the count is remembered only until the next
    commit of anyone)."""
    a, b = opener(), opener()
    lic = _issued(a, _holder(), 1)  # max_uses = 3
    assert a.licence_uses(lic.licence_id) == 0 == a.licence_uses(lic.licence_id)
    assert b.record_use(b"r1", lic.licence_id, _key(60), NOW + 1, digest=_d(b"r1")) == (1, NOW + 1)
    assert a.licence_uses(lic.licence_id) == 1
    assert a.record_use(b"r2", lic.licence_id, _key(60), NOW + 2, digest=_d(b"r2")) == (2, NOW + 2)
    assert a.licence_uses(lic.licence_id) == 2 == b.licence_uses(lic.licence_id)
    if not isinstance(a, SqliteStore):
        return
    # Remembered while nothing commits: no statement at all.
    a._rows = lambda *args: pytest.fail("read the database again")  # type: ignore[method-assign]
    assert a.licence_uses(lic.licence_id) == 2
    del a._rows
    # Another process writes the count itself (not through the store).
    script = (
        "import sqlite3, sys\n"
        "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "lid = bytes.fromhex(sys.argv[2])\n"
        "c.execute('UPDATE licences SET uses = 3 WHERE licence_id = ?', (lid,))\n"
    )
    subprocess.run([sys.executable, "-c", script, str(a.path), lic.licence_id.hex()], check=True)
    assert a.licence_uses(lic.licence_id) == 3 == b.licence_uses(lic.licence_id)


def test_the_wal_header_vouches_only_for_a_database_in_wal_mode(tmp_path: Path) -> None:
    assert WalVersion(tmp_path / "none.db").current() is None  # no -shm file
    path = tmp_path / "rollback.db"
    sqlite3.connect(path).execute("CREATE TABLE t (x)")
    assert WalVersion(path).current() is None
    wal = tmp_path / "wal.db"
    c = sqlite3.connect(wal, isolation_level=None)
    c.execute("PRAGMA journal_mode = WAL")
    c.execute("CREATE TABLE t (x)")
    watch = WalVersion(wal)
    before = watch.current()
    assert before is not None
    assert before == watch.current()
    c.execute("INSERT INTO t VALUES (1)")
    after = watch.current()
    assert after is not None
    assert after != before
    watch.close()
    assert watch.current() is None
    c.close()
