"""The store contract, each backend's own start: reopening, migrating, crashing."""

from __future__ import annotations

from licentia.services.model import (
    Cause,
)
from licentia.services.store.postgres import PostgresStore, migrate

from ...pg_server import PgServer
from .harness import (
    NOW,
    Opener,
    _concurrently,
    _holder,
    _issued,
)


# -- the backends' own start ---------------------------------------------------------------
def test_reopening_keeps_everything(opener: Opener) -> None:
    store = opener()
    lic = _issued(store, _holder(), 1)
    store.close()
    again = opener()  # migrations already applied: nothing re-run, nothing lost
    assert again.licence(lic.licence_id) == lic
    assert again.log_size() == 1


def test_replicas_starting_together_migrate_once(pg_server: PgServer) -> None:
    url = pg_server.create_database()  # empty: no migration applied yet
    applied: list[list[str]] = [[] for _ in range(6)]

    def start(i: int) -> None:
        applied[i] = migrate(url)

    assert _concurrently(6, start) == [None] * 6
    names = [n for a in applied for n in a]
    assert sorted(names) == [
        "m001_initial",
        "m002_live_exclusive_index",
        "m003_ledger",
        "m004_log",
        "m005_spent_nonces",
        "m006_exchange_keys",
        "m007_idempotency_digests",
        "m008_payout_destinations",
        "m009_accounts",
        "m010_account_logs",
        "m011_pseudonyms",
        "m012_offer_refs",
        "m013_erasure",
        "m015_pg_issue",
    ]
    store = PostgresStore(url)
    _issued(store, _holder(), 1)
    assert store.ledger_check() == []
    store.close()


def test_acknowledged_changes_survive_a_server_crash(pg_server: PgServer) -> None:
    """What a PostgreSQL store acknowledged is on disk: the server is stopped as by a power
    cut right after, and everything is there when it comes back."""
    url = pg_server.create_database(pg_server.template)
    store = PostgresStore(url)
    lic = _issued(store, _holder(), 1)
    store.revoke(lic.licence_id, NOW + 1, Cause.REVOKED)
    store.close()
    pg_server.crash_and_restart()
    again = PostgresStore(url)
    stored = again.licence(lic.licence_id)
    assert stored is not None
    assert stored.revoked_at == NOW + 1
    assert again.status()[1] == 1
    assert again.log_size() == 2
    assert again.ledger_check() == []
    again.close()
