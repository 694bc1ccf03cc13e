"""A big store, built quickly: licences bulk-inserted in the store's own format.

:func:`seed` writes ``Plan.licences`` licences into a SQLite store that an exchange has
already set up (its parties registered through the RPCs), the way that many issuances,
expiries and revocations would have left it, without going through the RPCs:

- each licence: its request (ISSUED, auto-approved), its row (built as a
  :class:`~licentia.services.model.LicenceRow` and written by the store's own
  ``_licence_values`` into the store's own ``_LIC`` columns, so a column added to the
  licence row is picked up here as it is by issuance), one asset row, its money row (the
  store's ``_money_values`` and ``_MONEY_INSERT``) and its escrow posting (the ledger's
  own :func:`~licentia.services.ledger.escrow`);
- an expired or revoked licence is closed by :func:`~licentia.services.ledger.close` at
  its end (accrual and refund postings), a revoked one has its revocation event (its
  status bit) and its log entry;
- the public log: one sealed entry per issuance and per revocation
  (:func:`licentia.sealed.seal` with each holder's log key and entry numbers, as
  ``_log_sealed`` does), appended after the entries already there, with every subtree hash
  it completes (:func:`licentia.merkle.completed_nodes`): later appends and proofs work;
- every balance is then recomputed from the entries, and each holder's pending total from
  her open licences' money (the ledger's invariant:
  :meth:`~licentia.services.store.common.SqlStore.ledger_check` holds), the status-index
  counter moved past the seeded indexes.

Every licence carries the same token text (a real typical licence): nothing the benches
time reads another licence's token, and signing a million distinct tokens would double
the seeding time. The licences of the two *subject* holders (the benches' holder under
test and the statement's party) are spread over the same advertisers as the others.

:func:`cached` keeps a seeded data directory under ``build/bench-data/``, keyed by the
store's migration list, the plan and :data:`VERSION`: a schema change or a new plan seeds
again; anything else reuses it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import secrets
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from licentia import merkle, sealed, status
from licentia.examples import typical_token_v2
from licentia.keys import PrivateKey
from licentia.services import ledger
from licentia.services.model import Cause, LicenceRow, Party, RequestState, Role
from licentia.services.store._log import SqlNodes
from licentia.services.store.sqlite import SqliteStore, migrations
from licentia.v1 import transparency_pb2

#: Bump when the seeded rows change shape (the cache is then rebuilt).
VERSION = 5
DAY = 86_400
#: Rows written per ``executemany`` batch.
CHUNK = 20_000
PRICE = 3_000
FEE_BPS = 1_000
MAX_USES = 10
#: The seeding connection's page cache, KiB.
CACHE_KIB = 3 * 1024 * 1024
DB_FILE = "licentia.db"


@dataclasses.dataclass(frozen=True)
class Plan:
    """What to seed. ``subjects``: the holders (keys) that each get ``subject_live`` live and
    ``subject_closed`` ended licences; the rest of ``licences`` (``live`` of them live) is
    spread over ``holders`` other holders and ``advertisers`` advertisers. An ended licence
    was revoked with a chance of one in ``revoked_every`` (drawn), else it expired."""

    licences: int
    live: int
    holders: int
    advertisers: int
    subjects: tuple[bytes, ...]
    subject_live: int
    subject_closed: int
    revoked_every: int = 4

    def key(self) -> str:
        """The cache key: the plan, the store's migrations, the seed's version."""
        names = [m.name for m in migrations._migrations]
        text = json.dumps(
            [
                VERSION,
                names,
                {**dataclasses.asdict(self), "subjects": [s.hex() for s in self.subjects]},
            ]
        )
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclasses.dataclass
class Seeded:
    """What :func:`seed` wrote."""

    licences: int
    live: int
    revoked: int
    log_entries: int
    seconds: float


class _Nodes:
    """The log's subtree hashes: those computed here, else the store's."""

    def __init__(self, stored: SqlNodes) -> None:
        self.stored = stored
        self.new: dict[tuple[int, int], bytes] = {}

    def get(self, level: int, index: int) -> bytes:
        """One node."""
        found = self.new.get((level, index))
        return found if found is not None else self.stored.get(level, index)

    def get_many(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """Several nodes."""
        return {k: self.get(*k) for k in keys}


class _Slots:
    """Status-list slots for the seeded licences, as the store hands them out: blocks of a
    list of the epoch of each licence's end (the store's own ``_reserve_block``, inside the
    seeding transaction), at the default list size and epoch."""

    def __init__(self, store: SqliteStore, c: Any) -> None:
        self.c = c
        self.reserve = store._reserve_block
        self.blocks: dict[int, list[int]] = {}

    def __call__(self, not_after: int) -> tuple[int, int]:
        """``(status list, status index)`` of a licence ending at ``not_after``."""
        epoch = not_after // status.DEFAULT_EPOCH_SECONDS
        block = self.blocks.get(epoch)
        if block is None or block[1] >= block[2]:
            block = self.blocks[epoch] = self.reserve(
                self.c, epoch, status.DEFAULT_LIST_SIZE, status.DEFAULT_EPOCH_SECONDS
            )
        block[1] += 1
        return block[0], block[1] - 1


def _party_key(kind: bytes, i: int) -> bytes:
    return PrivateKey.from_seed(hashlib.sha256(kind + i.to_bytes(4, "big")).digest()).public.raw


def _licences(plan: Plan, now: int, rng: random.Random) -> Iterator[tuple[bytes, bytes, str]]:
    """(holder, advertiser, state) for every licence: state 'live', 'expired' or 'revoked'."""
    holders = [_party_key(b"holder", i) for i in range(plan.holders)]
    advertisers = [_party_key(b"advertiser", i) for i in range(plan.advertisers)]
    rest = plan.licences - len(plan.subjects) * (plan.subject_live + plan.subject_closed)
    rest_live = plan.live - len(plan.subjects) * plan.subject_live
    if rest < 0 or rest_live < 0 or rest_live > rest:
        raise ValueError("the plan's subjects hold more than its licences")

    def end() -> str:  # revocations fall anywhere in the status list, as people make them
        return "revoked" if rng.randrange(plan.revoked_every) == 0 else "expired"

    for s in plan.subjects:
        for j in range(plan.subject_live + plan.subject_closed):
            yield s, advertisers[j % len(advertisers)], "live" if j < plan.subject_live else end()
    for i in range(rest):
        state = "live" if i * rest_live // rest != (i + 1) * rest_live // rest else end()
        yield (
            holders[rng.randrange(len(holders))],
            advertisers[rng.randrange(len(advertisers))],
            state,
        )


def register(store: SqliteStore, plan: Plan, now: int) -> None:
    """The other holders and the advertisers, registered through the store."""
    for i in range(plan.holders):
        store.add_party(
            Party(_party_key(b"holder", i), Role.HOLDER, f"seed{i}", f"Seed {i}", "FR", now)
        )
    for i in range(plan.advertisers):
        store.add_party(
            Party(_party_key(b"advertiser", i), Role.ADVERTISER, "", f"Adv {i}", "FR", now)
        )


def seed(store: SqliteStore, plan: Plan, *, now: int | None = None) -> Seeded:
    """Write ``plan``'s licences into ``store`` (closed by the caller afterwards)."""
    t0 = time.perf_counter()
    now = int(time.time()) if now is None else now
    rng = random.Random(20)
    register(store, plan, now)
    throwaway = PrivateKey.from_seed(bytes(32))
    token = typical_token_v2(throwaway, throwaway, throwaway, now)
    c: Any = store._db.conn  # the bench writes the store's own file, in one transaction
    # A page cache that holds the indexes being filled (random keys: licence ids): with
    # SQLite's default of 2 MiB, the transaction spills and rereads its pages tens of times.
    c.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    c.execute("BEGIN IMMEDIATE")
    slot = _Slots(store, c)
    log_next = int(c.execute("SELECT coalesce(max(idx) + 1, 0) FROM log_entries").fetchone()[0])
    sequence = int(c.execute("SELECT coalesce(max(sequence), 0) FROM revocations").fetchone()[0])
    posting_id = int(c.execute("SELECT coalesce(max(id), 0) FROM postings").fetchone()[0])
    logs: dict[bytes, list[Any]] = {
        bytes(r[0]): [bytes(r[1]), int(r[2])]
        for r in c.execute("SELECT account, log_key, entries FROM account_logs")
    }
    nodes = _Nodes(SqlNodes(c))
    rows: dict[str, list[tuple[Any, ...]]] = {}
    sql = {
        "requests": "INSERT INTO requests (request_id, state, advertiser_key, holder_key, claims,"
        " created_at, expires_at, updated_at, reason, failure, auto_approved, message, licence_id)"
        f" VALUES (?, {int(RequestState.ISSUED)}, ?, ?, x'', ?, ?, ?, '', '', 1, '', ?)",
        "licences": f"INSERT INTO licences ({store._LIC}) VALUES ({store._LIC_SLOTS})",
        "licence_assets": "INSERT INTO licence_assets VALUES (?, ?, ?)",
        "licence_money": store._MONEY_INSERT,
        "postings": "INSERT INTO postings (id, kind, licence_id, at, idempotency, reference)"
        " VALUES (?, ?, ?, ?, NULL, '')",
        "entries": "INSERT INTO entries VALUES (?, ?, ?, ?)",
        "revocations": f"INSERT INTO revocations ({store._EV})"
        f" VALUES ({', '.join('?' * len(store._EV.split(',')))})",
        "log_entries": "INSERT INTO log_entries VALUES (?, ?, ?, ?, ?)",
        "log_nodes": "INSERT INTO log_nodes VALUES (?, ?, ?)",
    }
    for name in sql:
        rows[name] = []

    def flush(force: bool = False) -> None:
        if not force and all(len(batch) < CHUNK for batch in rows.values()):
            return
        for name, batch in rows.items():  # in order: a posting before its entries
            if batch:
                c.executemany(sql[name], batch)
                batch.clear()

    def post(p: ledger.Posting | None) -> None:
        nonlocal posting_id
        if p is None:
            return
        posting_id += 1
        rows["postings"].append((posting_id, p.kind.value, p.licence_id, p.at))
        rows["entries"].extend(
            (posting_id, e.account.kind, e.account.key, e.amount) for e in p.entries
        )

    def log(
        account: bytes, entry: transparency_pb2.LogEntry, at: int, kind: str, lid: bytes
    ) -> None:
        nonlocal log_next
        state = logs.get(account)
        if state is None:
            state = logs[account] = [secrets.token_bytes(sealed.LOG_KEY_BYTES), 0]
        state[1] += 1
        data = sealed.seal(state[0], state[1], entry).SerializeToString(deterministic=True)
        rows["log_entries"].append((log_next, data, at, kind, lid))
        for level, i, h in merkle.completed_nodes(log_next, merkle.leaf_hash(data), nodes):
            nodes.new[(level, i)] = h
            rows["log_nodes"].append((level, i, h))
        log_next += 1

    spent: dict[bytes, int] = {}
    revoked: list[tuple[bytes, bytes, bytes, tuple[int, int], int]] = []
    live = 0
    for n, (holder, adv, state) in enumerate(_licences(plan, now, rng)):
        if state == "live":
            live += 1
            issued = now - rng.randrange(30 * DAY)
            not_after = issued + 365 * DAY
        else:
            issued = now - 400 * DAY + rng.randrange(300 * DAY)
            not_after = issued + 30 * DAY
        # Random ids (drawn here from the seed), as a store made before ids began with
        # their second has them: the worst case for the indexes they key.
        lid = hashlib.sha256(b"seed licence %d" % n).digest()[:16]
        rid = hashlib.sha256(b"seed request %d" % n).digest()[:16]
        status_list, status_index = slot(not_after)
        lic = LicenceRow(
            licence_id=lid,
            request_id=rid,
            token=token,
            holder_key=holder,
            licensee_key=adv,
            issued_at=issued,
            not_before=issued,
            not_after=not_after,
            status_index=0,
            max_uses=MAX_USES,
            uses=0,
            exclusive=False,
            asset_digests=hashlib.sha256(holder).digest(),
        )
        lic = dataclasses.replace(lic, status_list=status_list, status_index=status_index)
        money = ledger.LicenceMoney(
            lid, adv, holder, PRICE, 0, MAX_USES, FEE_BPS, issued, not_after
        )
        settled = ledger.Settled()
        spent[adv] = spent.get(adv, 0) + money.escrow_total
        post(ledger.escrow(money, issued))
        ended_at = 0
        if state != "live":
            ended_at = issued + 5 * DAY if state == "revoked" else not_after
            postings, settled = ledger.close(money, settled, ended_at)
            for p in postings:
                post(p)
        if state == "revoked":
            lic = dataclasses.replace(lic, revoked_at=ended_at)
            revoked.append((lid, holder, adv, (status_list, lic.status_index), ended_at))
        rows["requests"].append((rid, adv, holder, issued, issued, issued, lid))
        rows["licences"].append(store._licence_values(lic))
        rows["licence_assets"].append((lid, holder, lic.asset_digests))
        rows["licence_money"].append(store._money_values(money, settled))
        log(holder, transparency_pb2.LogEntry(licence=token), issued, "licence", lid)
        flush()
    events = [name.strip() for name in store._EV.split(",")]
    for lid, holder, adv, (status_list, index), at in revoked:
        sequence += 1
        event = {
            "sequence": sequence,
            "status_index": index,
            "licence_id": lid,
            "licensee_key": adv,
            "revoked_at": at,
            "cause": int(Cause.REVOKED),
            "status_list": status_list,
        }
        rows["revocations"].append(tuple(event[name] for name in events))
        entry = transparency_pb2.LogEntry(
            revocation=transparency_pb2.LoggedRevocation(
                licence_id=lid,
                revoked_at=at,
                cause=int(Cause.REVOKED),  # type: ignore[arg-type]
            )
        )
        log(holder, entry, at, "revocation", lid)
        flush()
    for adv, amount in spent.items():  # what the advertisers deposited to pay for them
        post(ledger.deposit(adv, amount, now - 401 * DAY))
    flush(force=True)
    c.executemany(
        "INSERT INTO account_logs (account, log_key, entries) VALUES (?, ?, ?)"
        " ON CONFLICT (account) DO UPDATE SET entries = excluded.entries",
        [(a, k, e) for a, (k, e) in logs.items()],
    )
    c.execute("DELETE FROM holder_pending")  # the store's own sum, as m016_growth made it
    c.execute(
        "INSERT INTO holder_pending (holder_key, pending) SELECT holder_key,"
        f" {store._PENDING_SUM} FROM licence_money WHERE closed = 0 GROUP BY holder_key"
    )
    c.execute("DELETE FROM balances")
    c.execute(
        "INSERT INTO balances SELECT account_kind, account_key, sum(amount) FROM entries"
        " GROUP BY account_kind, account_key"
    )
    c.execute("COMMIT")  # no ANALYZE: the exchange never runs one, its planner has no stats
    c.execute("PRAGMA cache_size = -2000")  # SQLite's default again
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return Seeded(plan.licences, live, len(revoked), log_next, time.perf_counter() - t0)


def cached(
    root: Path, plan: Plan, prepare: Callable[[Path], None], log: Callable[[str], None]
) -> tuple[Path, dict[str, Any]]:
    """A seeded data directory for ``plan`` under ``root`` (made if missing): ``prepare``
    sets up a fresh exchange in a directory (its parties, through the RPCs), then
    :func:`seed` fills its store. Returns the directory and what the seeding reported
    (``cached``: True when it was already there)."""
    where = root / f"growth-{plan.key()}"
    meta = where / "seed.json"
    if meta.exists():
        return where / "data", {**json.loads(meta.read_text()), "cached": True}
    if where.exists():
        shutil.rmtree(where)
    work = root / f"growth-{plan.key()}.partial"
    if work.exists():
        shutil.rmtree(work)
    data = work / "data"
    data.mkdir(parents=True)
    log(f"seeding {plan.licences:,} licences into {where} (once; kept for later runs)")
    t0 = time.perf_counter()
    prepare(data)
    store = SqliteStore(data / DB_FILE)
    try:
        done = seed(store, plan)
    finally:
        store.close()
    report = {**dataclasses.asdict(done), "total_seconds": round(time.perf_counter() - t0, 1)}
    (work / "seed.json").write_text(json.dumps(report))
    work.rename(where)
    return where / "data", {**report, "cached": False}
