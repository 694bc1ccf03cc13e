"""Growth benchmarks: each figure on a big store ÷ the same figure on an empty store, same run.

Prints one JSON object per line, like the other benches: ``bench``, ``ratio``, ``target``,
``limit``, ``ok``, and the two figures (``empty_ops_per_s``, ``big_ops_per_s``) with the
ratio of every round (``per_round``).

Two exchanges run in this process, each built and started as ``bench_server.py``'s (SQLite,
WAL, ``synchronous=FULL``, its own data directory, ``127.0.0.1:0``), with the same parties
registered through the RPCs: a holder under test with a standing rule, a second holder (the
statement's party, with a standing rule and 20 licences issued through it), 16 funded
advertisers. The *empty* exchange has nothing else. The *big* one is a copy of a store that
:mod:`seed` filled after that set-up: 1,000,000 licences, 100,000 of them live, over 1,000
other holders and 100 advertisers, the ended ones expired or (one in four) revoked, each
with its request, money, postings and log entries; each of the two holders also holds 1,000
live and 1,000 ended licences. The seeded store is kept under ``build/bench-data/``
(keyed by the migrations and the plan) and copied for each run; the seeding time is printed
(``seed_seconds``; ``seed_cached`` when it was reused).

Each round times small units on the two exchanges in turn (a statement, a cold start, or
a burst of 2 licences per advertiser: empty, big, big, empty …), and each figure's ratio is
the median over rounds of big ÷ empty, so that a change of the machine's load (it is shared)
hits both sides alike:

- ``rpc.issue.at_1m``: licences issued per second by 16 concurrent advertisers, each
  licence one auto-approved RequestLicence to the holder under test — ``rpc.issue`` of
  ``bench_server.py``. On the big store that holder starts with 1,000 live licences.
- ``statement.at_1m``: GetStatement calls per second (one caller, a page of 20 lines) by
  the statement's party: on the big store 2,020 licences (1,000 of them live) and their
  postings, on the empty one its 20 (each over after 2 s, so that both pages are full).
- ``verify.snapshot.at_1m``: cold starts per second of the platform's inline
  :class:`~licentia.clients.verifier.Verifier`: the issuer keys and the signed status
  snapshot fetched, verified and loaded into its view (``start``; the stream it then opens
  is closed outside the timing). On the big store the list has ~225,000 revoked bits.

Target: each ratio ≥ 0.9. ``--quick`` seeds a small store (10,000 licences, not cached)
and runs short rounds (the test suite uses it); ``--data DIR`` puts the cache elsewhere.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped]
from bench_server import MAX_WORKERS, Job, run_concurrently
from exchange_process import (
    deposit,
    find_offer,
    licence_request,
    operator_key,
    register_advertiser,
    register_holder,
)
from report import emit
from seed import DB_FILE, Plan, cached, seed

from licentia.clients.channel import SignedChannel
from licentia.clients.verifier import Verifier
from licentia.examples import typical_rule
from licentia.keys import PrivateKey
from licentia.methods import path
from licentia.request import sign_request
from licentia.services.app import App, build
from licentia.services.deps import Settings
from licentia.services.runtime import RunningServer, ServerSettings, start
from licentia.services.store.sqlite import SqliteStore
from licentia.token import sign_standing_rule
from licentia.v1 import exchange_pb2, ledger_pb2, licence_pb2

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "build" / "bench-data"
TARGET = 0.9
CALLERS = 16
#: Licences each advertiser asks at once in one unit of ``rpc.issue.at_1m``.
ISSUE_BURST = 2
#: Licences the statement's party gets through the RPCs, on both stores, each for
#: :data:`SHORT_TERM` seconds: once over, each has paid her, so that her statement has a
#: full page (:data:`STATEMENT_LICENCES` lines) on the empty store too.
STATEMENT_LICENCES = 20
SHORT_TERM = 2
REQUEST_LICENCE = path(exchange_pb2, "RequestLicence")
GET_STATEMENT = path(ledger_pb2, "GetStatement")
ISSUE_HOLDER, STATEMENT_HOLDER = 1, 3


def _key(seed: int) -> PrivateKey:
    return PrivateKey.from_seed(seed.to_bytes(32, "big"))


@dataclass(frozen=True)
class Sizes:
    """How much each round does, and the big store's plan."""

    rounds: int
    bursts: int  # per round and store: each advertiser asks ISSUE_BURST licences at once
    statements: int  # per round and store
    starts: int  # verifier cold starts per round and store
    plan: Plan


SUBJECTS = (_key(ISSUE_HOLDER).public.raw, _key(STATEMENT_HOLDER).public.raw)
FULL = Sizes(
    rounds=7,
    bursts=6,
    statements=100,
    starts=20,
    plan=Plan(
        licences=1_000_000,
        live=100_000,
        holders=1_000,
        advertisers=100,
        subjects=SUBJECTS,
        subject_live=1_000,
        subject_closed=1_000,
    ),
)
QUICK = Sizes(
    rounds=2,
    bursts=2,
    statements=8,
    starts=2,
    plan=Plan(
        licences=10_000,
        live=1_000,
        holders=20,
        advertisers=5,
        subjects=SUBJECTS,
        subject_live=200,
        subject_closed=200,
    ),
)


class Exchange:
    """One exchange in this process over ``data_dir``, and the bench's parties on it."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        log = _quiet()
        self.app: App = build(data_dir, settings=Settings(), log=log)
        self.server: RunningServer | None = None
        try:
            self.server = start(
                ServerSettings(address="127.0.0.1:0", max_workers=MAX_WORKERS),
                self.app.handlers,
                self.app.service_names,
                log,
            )
        except BaseException:
            self.app.close()
            raise
        self.channel = grpc.insecure_channel(
            self.server.address, options=[("grpc.use_local_subchannel_pool", 1)]
        )
        self.request_mc = self.channel.unary_unary(
            REQUEST_LICENCE,
            request_serializer=None,
            response_deserializer=exchange_pb2.RequestLicenceResponse.FromString,
        )
        self.advertisers = [_key(100 + i) for i in range(CALLERS)]
        self.holder = SignedChannel(self.channel, _key(STATEMENT_HOLDER))
        self.refs: dict[bytes, Any] = {}

    def rpc(self, key: PrivateKey) -> SignedChannel:
        """A signed channel of ``key``."""
        return SignedChannel(self.channel, key)

    def register(self) -> None:
        """The parties (once per store): the two holders with their standing rules, the
        advertisers funded, and the statement party's first licences."""
        for seed_, handle in ((ISSUE_HOLDER, "growthholder"), (STATEMENT_HOLDER, "statements")):
            rpc = self.rpc(_key(seed_))
            register_holder(rpc, handle)
            _standing_rule(rpc, _key(seed_))
        operator = SignedChannel(self.channel, operator_key(self.data_dir))
        for i, adv in enumerate(self.advertisers):
            register_advertiser(self.rpc(adv), f"Growth {i}")
            deposit(operator, adv.public, 10**11, adv.public.text)
        refs = find_offer(self.rpc(self.advertisers[0]), "statements")
        for _ in range(STATEMENT_LICENCES):
            request = licence_request(refs, int(time.time()))
            request.not_after = request.not_before + SHORT_TERM  # over before the rounds
            resp = self.rpc(self.advertisers[0]).unary(
                REQUEST_LICENCE, request, exchange_pb2.RequestLicenceResponse
            )
            if not resp.HasField("licence"):
                raise RuntimeError("the standing rule did not issue the licence")

    def attach(self) -> None:
        """Each advertiser's references to the holder under test."""
        self.refs = {
            adv.public.raw: find_offer(self.rpc(adv), "growthholder") for adv in self.advertisers
        }

    def close(self) -> None:
        """Close the channel, stop the server, close the app."""
        try:
            self.channel.close()
        finally:
            try:
                if self.server is not None:
                    self.server.stop(0.5)
            finally:
                self.app.close()

    # -- the figures ------------------------------------------------------------------------
    def issue(self, calls: int) -> float:
        """Seconds for the advertisers to get ``calls`` licences each, all at once."""
        now = int(time.time())
        jobs: list[list[Job]] = []
        for adv in self.advertisers:
            body = licence_request(self.refs[adv.public.raw], now).SerializeToString(
                deterministic=True
            )
            jobs.append(
                [
                    (self.request_mc, body, sign_request(adv, REQUEST_LICENCE, body, now))
                    for _ in range(calls)
                ]
            )
        return calls * len(jobs) / run_concurrently(jobs, _issued).rate

    def statement(self) -> float:
        """Seconds for one GetStatement (a full page) by the statement's party."""
        t0 = time.perf_counter()
        st = self.holder.unary(
            GET_STATEMENT,
            ledger_pb2.GetStatementRequest(page_size=STATEMENT_LICENCES),
            ledger_pb2.GetStatementResponse,
        )
        spent = time.perf_counter() - t0
        if len(st.lines) != STATEMENT_LICENCES:
            raise RuntimeError(f"a statement of {len(st.lines)} lines, not a full page")
        return spent

    def cold_start(self) -> float:
        """Seconds for one inline verifier's start (keys and snapshot fetched, checked,
        loaded); the stream it opens is closed after, untimed."""
        verifier = Verifier(self.channel, "growthplatform")
        t0 = time.perf_counter()
        verifier.start()
        spent = time.perf_counter() - t0
        verifier.close()
        return spent


def interleaved(
    units: int, per_unit: float, one: Callable[[Exchange], float], a: Exchange, b: Exchange
) -> tuple[float, float]:
    """Operations per second on ``a`` and on ``b``, one unit (``per_unit`` operations) on
    each in turn, the first of each pair alternating: a change of the machine's load hits
    both sides alike."""
    spent = {id(a): 0.0, id(b): 0.0}
    for i in range(units):
        for ex in (a, b) if i % 2 == 0 else (b, a):
            spent[id(ex)] += one(ex)
    return units * per_unit / spent[id(a)], units * per_unit / spent[id(b)]


def _standing_rule(rpc: SignedChannel, holder: PrivateKey) -> None:
    """``exchange_process.add_standing_rule``, with a rule id of the holder's own (two
    holders here)."""
    rule = dataclasses.replace(
        typical_rule(holder, int(time.time())), rule_id=holder.public.raw[:16]
    )
    consent = sign_standing_rule(holder, rule)
    rpc.unary(
        path(exchange_pb2, "AddStandingRule"),
        exchange_pb2.AddStandingRuleRequest(
            consent=licence_pb2.StandingConsent(
                rule=consent.rule_bytes, holder_signature=consent.signature
            )
        ),
        exchange_pb2.AddStandingRuleResponse,
    )


def _issued(response: Any) -> None:
    if not response.HasField("licence"):
        raise RuntimeError("a benchmark request was not auto-approved")


def _quiet() -> logging.Logger:
    log = logging.getLogger("licentia.bench")
    log.setLevel(logging.WARNING)
    return log


def prepare(data_dir: Path) -> None:
    """Set up a fresh exchange in ``data_dir``: its parties, through the RPCs."""
    ex = Exchange(data_dir)
    try:
        ex.register()
    finally:
        ex.close()


def seeded_copy(sizes: Sizes, cache: Path | None, into: Path) -> tuple[Path, dict[str, Any]]:
    """A copy of the seeded data directory (seeded first if not cached; with ``cache`` None,
    seeded straight into ``into``)."""
    if cache is None:
        data = into / "big"
        data.mkdir()
        t0 = time.perf_counter()
        prepare(data)
        store = SqliteStore(data / DB_FILE)
        try:
            done = seed(store, sizes.plan)
        finally:
            store.close()
        return data, {
            "seconds": done.seconds,
            "total_seconds": time.perf_counter() - t0,
            "cached": False,
        }
    source, report = cached(cache, sizes.plan, prepare, _say)
    data = into / "big"
    shutil.copytree(source, data)
    return data, report


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit 1 if a target is missed."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a small store, not cached; short rounds")
    ap.add_argument("--data", type=Path, default=CACHE, help="where the seeded store is kept")
    args = ap.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    with tempfile.TemporaryDirectory(prefix="licentia-growth-") as tmp:
        empty_dir = Path(tmp) / "empty"
        empty_dir.mkdir()
        empty = Exchange(empty_dir)
        big: Exchange | None = None
        try:
            empty.register()
            registered = time.time()
            big_dir, report = seeded_copy(sizes, None if args.quick else args.data, Path(tmp))
            # The statement's licences are over (a full page) before the first round.
            time.sleep(max(0.0, registered + SHORT_TERM + 1 - time.time()))
            big = Exchange(big_dir)
            for ex in (empty, big):
                ex.attach()
                ex.statement()  # the first statement settles what earned since the seeding
                ex.cold_start()
                ex.issue(1)
            burst = ISSUE_BURST * CALLERS
            figures: dict[str, tuple[int, float, Callable[[Exchange], float]]] = {
                "statement.at_1m": (sizes.statements, 1, Exchange.statement),
                "verify.snapshot.at_1m": (sizes.starts, 1, Exchange.cold_start),
                "rpc.issue.at_1m": (sizes.bursts, burst, lambda ex: ex.issue(ISSUE_BURST)),
            }
            rates: dict[str, list[tuple[float, float]]] = {name: [] for name in figures}
            for _ in range(sizes.rounds):
                for name, (units, per_unit, one) in figures.items():
                    rates[name].append(interleaved(units, per_unit, one, empty, big))
        finally:
            try:
                empty.close()
            finally:
                if big is not None:
                    big.close()
    plan = sizes.plan
    rows = []
    for name, pairs in rates.items():
        ratios = [b / e for e, b in pairs]
        ratio = statistics.median(ratios)
        rows.append(
            {
                "bench": name,
                "ratio": round(ratio, 3),
                "target": TARGET,
                "limit": "the same figure on an empty store, same run",
                "empty_ops_per_s": round(statistics.median(e for e, _ in pairs), 1),
                "big_ops_per_s": round(statistics.median(b for _, b in pairs), 1),
                "per_round": [round(r, 3) for r in ratios],
                "licences": plan.licences,
                "live": plan.live,
                "holder_live": plan.subject_live,
                "seed_seconds": round(report["total_seconds"], 1),
                "seed_cached": report["cached"],
                "ok": ratio >= TARGET,
            }
        )
    return emit(rows)


if __name__ == "__main__":
    sys.exit(main())
