"""deploy/postgres-roles.sql against the tests' PostgreSQL: least privilege that works.

The owner role migrates (``licentia-server migrate``); the runtime role serves an exchange
(registrations, deposits, an issuance, a decline, a revocation, a reported use, a
withdrawal) and cannot create, drop, alter or truncate anything, nor rewrite or empty the
log, the money history or the list of applied migrations.
"""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest
from psycopg import errors as pg_errors

from licentia.services.deps import Settings
from licentia.services.server import main as server_main
from licentia.services.store._erasure import ERASED_WITH_ACCOUNT
from licentia.v1 import exchange_pb2, ledger_pb2, registry_pb2

from ..pg_server import PgServer
from .exchange_harness import (
    DAY,
    approve_request,
    declare_photo,
    issue_licence,
    photo_use,
    register_holder,
    registered,
    report_use,
    request_licence,
    revoke_licence,
    start_exchange,
)

ROLES = Path(__file__).resolve().parents[2] / "deploy" / "postgres-roles.sql"


def _as(url: str, role: str) -> str:
    return url.replace("postgresql://postgres@", f"postgresql://{role}@", 1)


def test_the_runtime_role_serves_an_exchange_and_cannot_change_the_schema(
    tmp_path: Path, pg_server: PgServer, capsys: pytest.CaptureFixture[str]
) -> None:
    url = pg_server.create_database()  # empty: the owner migrates it
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(ROLES.read_text())
        conn.execute(ROLES.read_text())  # it can be run again
    owner, app = _as(url, "licentia_owner"), _as(url, "licentia_app")

    # The runtime role cannot migrate an empty database; the owner can.
    assert server_main(["migrate", "--db", app, "--data-dir", str(tmp_path / "x")]) == 1
    assert "permission denied" in capsys.readouterr().err
    assert server_main(["migrate", "--db", owner, "--data-dir", str(tmp_path / "x")]) == 0
    assert "applied" in capsys.readouterr().out
    with psycopg.connect(url) as conn:
        schemas = {
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT schemaname FROM pg_tables WHERE tableowner = 'licentia_owner'"
            )
        }
    assert schemas == {"licentia"}

    # The grants follow the tables the owner's migrations made: run again after `migrate`.
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(ROLES.read_text())

    # The runtime role runs a day of the exchange: deposits, an issuance, a decline, a
    # revocation, a reported use paid per use, a holder's withdrawal.
    settings = Settings(heartbeat_seconds=0.5, payout_delay_seconds=0)
    ex = start_exchange(tmp_path / "data", db=app, settings=settings)
    try:
        holder, adv, platform = registered(ex)
        ex.fund(adv.key.public.raw, 5000)
        licence = issue_licence(holder, adv)
        assert revoke_licence(holder, licence.licence_id)
        declined = request_licence(adv, holder.key.public.raw).request
        holder.call(
            exchange_pb2,
            "DeclineRequest",
            exchange_pb2.DeclineRequestRequest(request_id=declined.request_id),
            exchange_pb2.DeclineRequestResponse,
        )
        per_use = request_licence(adv, holder.key.public.raw, price_per_use=500, max_uses=2)
        token = approve_request(holder, per_use.request).licence.token
        assert report_use(platform, adv, token, photo_use()).uses == 1
        holder.call(
            ledger_pb2,
            "AddPayoutDestination",
            ledger_pb2.AddPayoutDestinationRequest(reference="IBAN FR76 0001"),
            ledger_pb2.AddPayoutDestinationResponse,
        )
        paid = holder.call(
            ledger_pb2,
            "Withdraw",
            ledger_pb2.WithdrawRequest(
                amount_minor=100, payout_reference="IBAN FR76 0001", idempotency_key=b"w" * 16
            ),
            ledger_pb2.WithdrawResponse,
        )
        assert paid.line.posting_id > 0
        # Retention blanks finished licences' and requests' personal fields in place; a
        # holder deletes her account (her rows in ERASED_WITH_ACCOUNT go).
        swept = ex.app.deps.store.sweep_retention(int(time.time()) + 800 * DAY, 0, batch=100)
        assert swept.licences >= 1
        assert swept.requests >= 1
        leaving = ex.party()
        register_holder(leaving, handle="bob")
        declare_photo(leaving)
        request_licence(adv, leaving.key.public.raw)  # pending: it goes with her
        leaving.call(
            registry_pb2,
            "DeleteAccount",
            registry_pb2.DeleteAccountRequest(),
            registry_pb2.DeleteAccountResponse,
        )
        assert ex.app.deps.store.party(leaving.key.public.raw) is None
        assert ex.app.deps.store.ledger_check() == []
    finally:
        ex.stop()
    assert server_main(["check-ledger", "--db", app, "--data-dir", str(tmp_path / "x")]) == 0

    # ... and cannot change the schema or empty a table.
    with psycopg.connect(app, autocommit=True) as conn:
        for statement in (
            "DROP TABLE licences",
            "ALTER TABLE licences ADD COLUMN x INTEGER",
            "TRUNCATE licences",
            "CREATE TABLE mine (x INTEGER)",
            "CREATE TABLE public.mine (x INTEGER)",
            "DROP SCHEMA licentia CASCADE",
            # The log and the money history are appended to, never rewritten or emptied.
            "DELETE FROM licences",
            "UPDATE entries SET amount = amount",
            "DELETE FROM entries",
            "UPDATE postings SET kind = kind",
            "DELETE FROM postings",
            "DELETE FROM log_nodes",
            "DELETE FROM log_entries",
            "UPDATE log_entries SET entry = entry",
            "DELETE FROM revocations",
            # What has been migrated is the owner's to record.
            "INSERT INTO licentia_migrations (migration_set, name) VALUES ('licentia', 'x')",
            "DELETE FROM licentia_migrations",
            "UPDATE licentia_migrations SET name = name",
            # nor reset the postings' numbering.
            "SELECT setval(pg_get_serial_sequence('postings', 'id'), 1)",
        ):
            with pytest.raises(pg_errors.InsufficientPrivilege):
                conn.execute(statement)
        assert conn.execute("SELECT count(*) FROM licences").fetchone() == (2,)
        # Each table has exactly the privileges the script's list gives it.
        granted: dict[str, str] = dict(
            conn.execute(
                "SELECT table_name, string_agg(privilege_type, ',' ORDER BY privilege_type)"
                " FROM information_schema.role_table_grants WHERE grantee = 'licentia_app'"
                " GROUP BY table_name"
            ).fetchall()
        )
    assert granted["licentia_migrations"] == "SELECT"
    for table in ("entries", "postings", "log_nodes", "revocations", "log_entries"):
        assert granted[table] == "INSERT,SELECT", table
    assert granted["licences"] == "INSERT,SELECT,UPDATE"
    for table, _column in ERASED_WITH_ACCOUNT:
        assert "DELETE" in granted[table].split(","), table

    # A table a later migration adds: the app may read and append to it, no more, and the
    # script refuses to run until the table has its line in the list.
    with psycopg.connect(owner, autocommit=True) as conn:
        conn.execute("CREATE TABLE licentia.added_later (x INTEGER)")
    with psycopg.connect(app, autocommit=True) as conn:
        conn.execute("INSERT INTO added_later VALUES (1)")
        for statement in ("UPDATE added_later SET x = 2", "DELETE FROM added_later"):
            with pytest.raises(pg_errors.InsufficientPrivilege):
                conn.execute(statement)
    with (
        psycopg.connect(url, autocommit=True) as conn,
        pytest.raises(pg_errors.RaiseException, match=r"licentia\.added_later"),
    ):
        conn.execute(ROLES.read_text())
