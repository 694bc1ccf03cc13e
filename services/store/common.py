"""What the SQL stores share: every Store method, written once against a DB-API-like connection.

:class:`SqlStore` is composed of one part per thing the store holds, each its own module:
parties, assets, terms and rules (:mod:`._parties`), requests and issuance (:mod:`._requests`),
licences and their status (:mod:`._licences`), the ledger (:mod:`._ledger`) and its statements
(:mod:`._statements`), the public log (:mod:`._log`), the keys (:mod:`._keys`), the accounts'
key sets (:mod:`._accounts`) and retention and account erasure (:mod:`._erasure`), over the
plumbing they share (:mod:`._sql`). They hold the statements, the checks made inside each
transaction and the row ↔ model conversions, written with ``?`` placeholders in SQL that SQLite
and PostgreSQL both accept.
A backend (:mod:`.sqlite`, :mod:`.postgres`) supplies the plumbing: how a change runs in one
transaction (:meth:`SqlStore._transact`), how reads are made (:meth:`SqlStore._rows`,
:meth:`SqlStore._snapshot`), how the next log index and revocation sequence are taken, and
how concurrent writers are kept apart (:meth:`SqlStore._hold`: nothing in SQLite, whose one
writer runs changes one after another; engine locks in PostgreSQL, where several replicas
write at once).
"""

from __future__ import annotations

from collections.abc import Callable

from ._accounts import AccountsPart
from ._erasure import ErasurePart
from ._keys import KeysPart
from ._parties import PartiesPart
from ._requests import RequestsPart
from ._sql import INDEX_BLOCK, NONCE_SWEEP_SECONDS, Conn, Cursor, SqlBase, only_nonces
from ._statements import StatementsPart

__all__ = [
    "INDEX_BLOCK",
    "NONCE_SWEEP_SECONDS",
    "Conn",
    "Cursor",
    "SqlBase",
    "SqlStore",
    "only_nonces",
    "retried",
]

#: Told each time a backend runs a transaction again, with why (``"conflict"``: a deadlock
#: or serialization failure; ``"connection"``: a lost connection), or None: the metrics'
#: hook (``--metrics``, :mod:`licentia.services.metrics`).
retried: Callable[[str], None] | None = None


class SqlStore(PartiesPart, RequestsPart, StatementsPart, ErasurePart, KeysPart, AccountsPart):
    """The :class:`~.base.Store` methods over SQL, composed of its parts; a backend subclass
    supplies the plumbing (:class:`~._sql.SqlBase`)."""
