"""deploy/postgres-roles.sql against the tests' PostgreSQL: least privilege that works.

The owner role migrates (``licentia-server migrate``); the runtime role serves an exchange
(registrations, a deposit, an issuance, a revocation) and cannot create, drop, alter or
truncate anything.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from psycopg import errors as pg_errors

from licentia.services.server import main as server_main

from ..pg_server import PgServer
from .exchange_harness import issue_licence, registered, revoke_licence, start_exchange

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

    # The runtime role runs the exchange: an issuance and a revocation.
    ex = start_exchange(tmp_path / "data", db=app)
    try:
        holder, adv, _platform = registered(ex)
        licence = issue_licence(holder, adv)
        assert revoke_licence(holder, licence.licence_id)
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
        ):
            with pytest.raises(pg_errors.InsufficientPrivilege):
                conn.execute(statement)
        assert conn.execute("SELECT count(*) FROM licences").fetchone() == (1,)
