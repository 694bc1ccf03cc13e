"""The store is split by what it holds: each part a small module implementing its own part
of the Store protocol, all composed into SqlStore over the one transaction they share."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from licentia.services.store import (
    _accounts,
    _erasure,
    _keys,
    _licences,
    _log,
    _parties,
    _requests,
    _statements,
    base,
)
from licentia.services.store._sql import SqlBase
from licentia.services.store.common import SqlStore

STORE = Path(__file__).resolve().parents[2] / "services" / "store"
PARTS = [
    (base.PartiesStore, _parties.PartiesPart),
    (base.RequestsStore, _requests.RequestsPart),
    (base.LicencesStore, _licences.LicencesPart),
    (base.LedgerStore, _statements.StatementsPart),  # the ledger's part and its statements
    (base.LogStore, _log.LogPart),
    (base.KeysStore, _keys.KeysPart),
    (base.AccountsStore, _accounts.AccountsPart),  # declared in base_accounts.py
    (base.ErasureStore, _erasure.ErasurePart),  # declared in base_erasure.py
]


def _methods(cls: type) -> set[str]:
    return {n for n, _ in inspect.getmembers(cls, inspect.isfunction) if not n.startswith("_")}


@pytest.mark.parametrize(("protocol", "part"), PARTS)
def test_each_part_implements_its_part_of_the_protocol(protocol: type, part: type) -> None:
    assert _methods(protocol) <= _methods(part)
    assert issubclass(part, SqlBase)
    assert issubclass(SqlStore, part)


def test_the_parts_make_the_whole_store() -> None:
    backends = {"close", "pending_migrations"}  # each backend's own
    assert _methods(base.Store) - backends <= _methods(SqlStore)
    assert _methods(base.Store) == set().union(*(_methods(p) for p, _ in PARTS)) | {
        "spend_nonces",
        *backends,
    }


def test_no_part_of_the_store_is_over_500_lines() -> None:
    """The backends (sqlite.py, postgres.py: migrations and connection handling) excepted."""
    for path in STORE.glob("*.py"):
        if path.name not in {"sqlite.py", "postgres.py"}:
            assert len(path.read_text().splitlines()) <= 500, path.name
