"""Load: a mixed workload against a real ``licentia-server``, at a fixed concurrency for a
fixed time; fails on any error and on unbounded memory.

What runs. ``licentia-server`` in its own process on ``127.0.0.1:0`` over a fresh temporary
data directory (removed at the end, also on Ctrl-C or SIGTERM); holders with the example photo
and terms (and no standing rule: every licence is approved by hand), advertisers credited by the
operator, one registered platform with the embedded
:class:`~licentia.clients.verifier.Verifier` following the revocation stream. Then
``--concurrency`` workers (threads of this process) each run operations back to back for
``--seconds``, each picking the next kind at random (seeded by ``--seed``) with these weights,
among the kinds it can run at that moment:

=================  ======  ==================================================================
kind               weight  what it is (the client it uses)
=================  ======  ==================================================================
verify.embedded        40  the platform checks a presentation in-process (``Verifier.check``)
verify.rpc             20  the platform asks the exchange (``Verify``, a signed call)
report_use             10  the platform reports one use (``ReportUse``; 0.01 per use)
request                10  an advertiser asks a holder for a licence (the SDK's ``request_licence``)
approve                10  the holder signs the exact claims and approves (``ApproveRequest``)
statement               6  an advertiser reads its balance (``Advertiser.statement``)
revoke                  4  the holder revokes one of its licences (``RevokeLicence``)
=================  ======  ==================================================================

Verification dominates, as on a real exchange, where a licence is checked at every publication.
Request and approve have one weight, so requests do not pile up; revocation is rarer than
approval, so the live licences grow. Each worker owns the requests it made and the licences
they became (parties are shared: any worker's advertiser may ask any holder), so no two
operations race on one licence, and every operation has one expected outcome: the request
PENDING; the approval ISSUED with a token naming the request's licence; the revocation a
receipt for that licence; a use counted exactly once more than the worker had counted; a
statement whose available, escrowed and spent money adds up to what was deposited. A
verification of a live licence must ALLOW (the RPC also reports the uses counted so far); one
check in ten targets a licence the worker revoked and must DENY with REVOKED — through
``Verify`` at once, in-process once the verifier's sequence has reached the revocation's (the
receipt says which). Anything else is an **error**: a failed call (any gRPC error, including a
business refusal, which this workload never provokes), a wrong answer, an exception. So is a
server log line at level error, the server exiting during the load or with a non-zero status
after SIGTERM, and a verifier that has not caught up with the last revocation within 5 s of the
end.

Bounds. Time (``--seconds``, warm-up included), operations (``--max-ops``) and licences
(``--max-licences``: requests stop there, so the database stays bounded); every call has a
10 s deadline; loopback only.

Memory. The server's resident set (psutil on its PID; without psutil, Linux's ``/proc``) at the
start of the load, at the end of the warm-up (the first fifth of the time, 1 to 10 s) and at the
end, with its peak and its trend over the measured time. The check: after the warm-up the RSS
may grow by at most **24 MiB + 4 KiB per licence issued after the warm-up**. Why: an exchange
may grow with what it holds, never with the calls it answers. Each licence adds its token to the
verification engine's cache (about 2.4 KiB, at most 10,000 tokens) and rows to the database,
whose pages SQLite caches (at most 2 MiB per connection: one writer, one reader per server
thread); the fixed part covers those page caches filling, the nonces of the last minute or two
(the nonce stores forget a nonce once its window has passed) and the allocator. Measured on the
2-core machine this was written on: +12 to +16 MiB with about 1,400 to 1,600 licences in the
default 30 s (bound 30 MiB); +32 MiB with about 5,600 licences in 180 s (bound 46 MiB), most of
it in the first two minutes. Something kept per call shows above the bound in a default run from
about 2 KiB per call; a smaller leak needs a longer run (``--seconds 300``) and shows in
``rss_trend_mib``. The embedded verifier's caches are checked too: its token cache within its
bound, and its nonce store no larger than the checks it made.

Output: one JSON line per kind — ``kind``, ``ops``, ``ops_per_s``, ``p50_ms``, ``p99_ms``,
``errors`` — then one ``summary`` line (totals, ``rss_mib`` at start / warm / end / peak,
``rss_growth_mib`` against ``rss_bound_mib``, the verifier's caches, ``verdict``). ``ops``,
rates and latencies cover the time after the warm-up; ``errors`` covers the whole run, warm-up
included. Latency is the time of the operation alone, as its caller sees it: an advertiser's
presentation is signed before the platform's check is timed; a holder's approval includes the
holder's signature. This process (the clients, one GIL) and the server share the machine's
cores, so absolute figures depend on the machine and what else runs on it. Exit status: 0 if
the verdict is PASS, 1 if not, 2 when the server's memory cannot be read (no psutil, the
``bench`` extra, and no ``/proc``).

Run with ``make load`` or ``python bench/load.py [--seconds 30] [--concurrency 8] [--seed 1]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import grpc  # type: ignore[import-untyped]
from exchange_process import (
    AUDIENCE,
    DAY,
    TERM_DAYS,
    TERM_PRICE,
    USE,
    ExchangeProcess,
    call,
    deposit,
    operator_key,
    pairwise_approval,
    register_holder,
    register_platform,
)

from licentia.clients.advertiser import Advertiser, Offer, RequestState
from licentia.clients.channel import SignedChannel
from licentia.clients.verifier import Verifier
from licentia.errors import Reason
from licentia.keys import PrivateKey
from licentia.methods import path
from licentia.nonces import MemoryNonceStore
from licentia.token import UnverifiedLicence, parse_token
from licentia.v1 import exchange_pb2, licences_pb2, records_pb2, verification_pb2
from licentia.vocabulary import DataCategory, Medium, Purpose

#: The mix: each kind's weight among the kinds a worker can run at that moment.
MIX: tuple[tuple[str, int], ...] = (
    ("verify.embedded", 40),
    ("verify.rpc", 20),
    ("report_use", 10),
    ("request", 10),
    ("approve", 10),
    ("statement", 6),
    ("revoke", 4),
)
KINDS = tuple(kind for kind, _ in MIX)
#: Of the verifications, the share aimed at a licence the worker revoked (DENY REVOKED).
REVOKED_SHARE = 0.1
#: A worker revokes only while it keeps more live licences than this.
MIN_LIVE = 2
#: Revoked licences each worker keeps to check again (the most recent ones).
REVOKED_KEPT = 32
#: Uses each licence allows, and the price of each (minor units). A licence one use short of
#: the cap is retired (no longer checked or reported), so ``Verify`` keeps allowing.
MAX_USES = 1000
PRICE_PER_USE = 1
#: What the operator credits each advertiser: far beyond what ``--max-licences`` can cost.
FUNDS = 10**12
CALL_TIMEOUT = 10.0
#: Longest wait, after the load, for the verifier to apply the last revocation.
CATCH_UP_SECONDS = 5.0
#: Seconds between RSS samples of the server.
SAMPLE_SECONDS = 0.25
#: The memory bound after the warm-up (see the module's docstring): a fixed part, and an
#: allowance per licence issued after the warm-up.
RSS_GROWTH_FIXED_MIB = 24.0
RSS_GROWTH_PER_LICENCE_KIB = 4.0
#: Error messages kept to print (the count is exact).
ERROR_SAMPLES = 10
MIB = 1 << 20


class WrongOutcomeError(Exception):
    """An operation answered, but not what it must have answered."""


@dataclass(frozen=True)
class Holder:
    """A holder: its key, a channel signing with it, and each advertiser's offer naming it
    (by the advertiser's public key; the holders show their names, which is how each
    advertiser's search finds them)."""

    key: PrivateKey
    rpc: SignedChannel
    offers: dict[bytes, Offer] = field(default_factory=dict)


@dataclass(frozen=True)
class Pending:
    """A request waiting for its holder: the exact claims bytes the holder signs."""

    request_id: bytes
    claims: bytes
    holder: Holder
    advertiser: Advertiser


@dataclass
class Live:
    """A live licence and the uses counted so far."""

    licence_id: bytes
    token: str
    parsed: UnverifiedLicence
    holder: Holder
    advertiser: Advertiser
    uses: int = 0


@dataclass(frozen=True)
class Revoked:
    """A revoked licence and its revocation's sequence number on the feed."""

    token: str
    parsed: UnverifiedLicence
    advertiser: Advertiser
    sequence: int


@dataclass
class Tally:
    """One worker's figures for one kind: the latencies after the warm-up; the operations
    done and the errors over the whole run."""

    latencies_ms: list[float] = field(default_factory=list)
    done: int = 0
    errors: int = 0


class Budget:
    """The run's caps on operations and licences, shared by the workers."""

    def __init__(self, max_ops: int, max_licences: int) -> None:
        self.ops_left = max_ops
        self.licences_left = max_licences
        self.lock = threading.Lock()

    def take_op(self) -> bool:
        """One operation more, if the cap allows."""
        with self.lock:
            if self.ops_left <= 0:
                return False
            self.ops_left -= 1
            return True

    def take_licence(self) -> bool:
        """One request more (each becomes at most one licence), if the cap allows."""
        with self.lock:
            if self.licences_left <= 0:
                return False
            self.licences_left -= 1
            return True


@dataclass
class Shared:
    """What every worker uses: the parties, the platform, the verifier, the clock marks."""

    holders: list[Holder]
    advertisers: list[Advertiser]
    platform: SignedChannel
    verifier: Verifier
    budget: Budget
    stop: threading.Event
    #: Operations started at or after this (perf_counter) are measured.
    measured_from: float = 0.0


class Worker:
    """One closed loop of operations; owns its requests and licences."""

    def __init__(self, index: int, seed: int, shared: Shared) -> None:
        self.index = index
        self.rng = random.Random(f"{seed}/worker/{index}")
        self.s = shared
        self.pending: deque[Pending] = deque()
        self.live: list[Live] = []
        self.revoked: deque[Revoked] = deque(maxlen=REVOKED_KEPT)
        self.tallies = {kind: Tally() for kind in KINDS}
        self.error_samples: list[str] = []
        self.issued = 0
        self.revocations = 0
        self.last_sequence = 0
        self._ops: dict[str, Callable[[], float]] = {
            "verify.embedded": self.verify_embedded,
            "verify.rpc": self.verify_rpc,
            "report_use": self.report_use,
            "request": self.request,
            "approve": self.approve,
            "statement": self.statement,
            "revoke": self.revoke,
        }

    # -- the loop -------------------------------------------------------------------------
    def run(self) -> None:
        """Operations until the stop event or a cap."""
        while not self.s.stop.is_set() and self.s.budget.take_op():
            kind = self.choose()
            started = time.perf_counter()
            try:
                elapsed = self._ops[kind]()
            except Exception as e:  # noqa: BLE001 - every failure is counted, none stops the run
                self.tallies[kind].errors += 1
                if len(self.error_samples) < ERROR_SAMPLES:
                    self.error_samples.append(f"{kind}: {type(e).__name__}: {e!r}")
                continue
            tally = self.tallies[kind]
            tally.done += 1
            if started >= self.s.measured_from:
                tally.latencies_ms.append(elapsed * 1000)

    def choose(self) -> str:
        """The next kind: weighted among those this worker can run now. A request takes one
        licence of the budget; once none is left, the others share its weight."""
        can = {
            "verify.embedded": bool(self.live),
            "verify.rpc": bool(self.live),
            "report_use": bool(self.live),
            "request": True,
            "approve": bool(self.pending),
            "statement": True,
            "revoke": len(self.live) > MIN_LIVE,
        }
        while True:
            kinds = [k for k, _ in MIX if can[k]]
            kind = self.rng.choices(kinds, [w for k, w in MIX if can[k]])[0]
            if kind != "request" or self.s.budget.take_licence():
                return kind
            can["request"] = False

    @staticmethod
    def _timed(f: Callable[[], Any]) -> tuple[Any, float]:
        t0 = time.perf_counter()
        out = f()
        return out, time.perf_counter() - t0

    # -- the advertiser -------------------------------------------------------------------
    def request(self) -> float:
        """An advertiser asks a holder for the photo, 30 days, at the price: PENDING."""
        holder = self.rng.choice(self.s.holders)
        adv = self.rng.choice(self.s.advertisers)
        now = int(time.time())
        asked, elapsed = self._timed(
            lambda: adv.request_licence(
                holder.offers[adv.public_key.raw],
                holder.offers[adv.public_key.raw].assets_in(DataCategory.IMAGE)[:1],
                categories=[DataCategory.IMAGE],
                purposes=[Purpose.ADVERTISING],
                media=[Medium.ONLINE],
                territories=["FR"],
                not_after=now + TERM_DAYS * DAY,
                max_uses=MAX_USES,
                price=TERM_PRICE,
                price_per_use=PRICE_PER_USE,
            )
        )
        if asked.state is not RequestState.PENDING:
            raise WrongOutcomeError(f"request is {asked.state.name}, not PENDING")
        self.pending.append(Pending(asked.request_id, asked.claims, holder, adv))
        return float(elapsed)

    def statement(self) -> float:
        """An advertiser's balance: available + escrowed + spent is what was deposited."""
        adv = self.rng.choice(self.s.advertisers)
        st, elapsed = self._timed(lambda: adv.statement(page_size=10))
        if st.available + st.escrowed + st.spent != FUNDS:
            raise WrongOutcomeError(
                f"statement does not add up: {st.available} + {st.escrowed} + {st.spent} != {FUNDS}"
            )
        return float(elapsed)

    # -- the holder -----------------------------------------------------------------------
    def approve(self) -> float:
        """The holder signs the request's exact claims: ISSUED, with the licence's token."""
        p = self.pending.popleft()

        # Her pairwise key for the advertiser consents, as her wallet does (§1b).
        asked, bound = pairwise_approval(
            p.holder.key, p.advertiser.key.public.raw, p.request_id, p.claims
        )

        def go() -> Any:
            return call(
                p.holder.rpc,
                path(exchange_pb2, "ApproveRequest"),
                asked,
                exchange_pb2.ApproveRequestResponse,
            )

        resp, elapsed = self._timed(go)
        token = resp.licence.token
        parsed = parse_token(token)
        if resp.licence.licence_id != parsed.licence_id or not token:
            raise WrongOutcomeError("the approval's licence and token disagree")
        if parsed.claims_bytes != bound:
            raise WrongOutcomeError("the licence carries other claims than the holder signed")
        self.live.append(Live(parsed.licence_id, token, parsed, p.holder, p.advertiser))
        self.issued += 1
        return float(elapsed)

    def revoke(self) -> float:
        """The holder revokes one of the worker's live licences: a receipt for it."""
        lic = self.live.pop(self.rng.randrange(len(self.live)))
        resp, elapsed = self._timed(
            lambda: call(
                lic.holder.rpc,
                path(licences_pb2, "RevokeLicence"),
                licences_pb2.RevokeLicenceRequest(licence_id=lic.licence_id),
                licences_pb2.RevokeLicenceResponse,
            )
        )
        receipt = records_pb2.TerminationReceipt.FromString(resp.receipt.receipt)
        if receipt.licence_id != lic.licence_id or not receipt.sequence:
            raise WrongOutcomeError("the termination receipt is not for this licence")
        self.revoked.append(Revoked(lic.token, lic.parsed, lic.advertiser, receipt.sequence))
        self.revocations += 1
        self.last_sequence = max(self.last_sequence, receipt.sequence)
        return float(elapsed)

    # -- the platform ---------------------------------------------------------------------
    def _target(self, *, seen_by_verifier: bool) -> Live | Revoked:
        """A live licence, or (one time in ten, when there is one) a revoked one — for the
        embedded verifier only one whose revocation it has applied."""
        if self.revoked and self.rng.random() < REVOKED_SHARE:
            applied = self.s.verifier.sequence if seen_by_verifier else None
            known = [r for r in self.revoked if applied is None or r.sequence <= applied]
            if known:
                return self.rng.choice(known)
        return self.rng.choice(self.live)

    @staticmethod
    def _expect(target: Live | Revoked, allowed: bool, reasons: Iterator[Reason]) -> None:
        listed = list(reasons)
        if isinstance(target, Live):
            if not allowed:
                raise WrongOutcomeError(f"a live licence was denied: {[r.name for r in listed]}")
        elif allowed or Reason.REVOKED not in listed:
            raise WrongOutcomeError(
                f"a revoked licence was {'allowed' if allowed else 'denied'}"
                f" ({[r.name for r in listed]}), not DENY REVOKED"
            )

    def verify_embedded(self) -> float:
        """The platform's in-process check."""
        target = self._target(seen_by_verifier=True)
        pres = target.advertiser.present(target.parsed, AUDIENCE, USE)
        decision, elapsed = self._timed(lambda: self.s.verifier.check(target.token, pres, USE))
        self._expect(target, decision.allowed, iter(decision.reasons))
        return float(elapsed)

    def verify_rpc(self) -> float:
        """The platform asks the exchange (``Verify``); a live licence's uses must match."""
        target = self._target(seen_by_verifier=False)
        pres = target.advertiser.present(target.parsed, AUDIENCE, USE)
        request = verification_pb2.VerifyRequest(
            token=target.token, presentation=pres, use=USE.to_proto()
        )
        resp, elapsed = self._timed(
            lambda: call(
                self.s.platform,
                path(verification_pb2, "Verify"),
                request,
                verification_pb2.VerifyResponse,
            )
        )
        self._expect(target, resp.allowed, (Reason(int(r)) for r in resp.reasons))
        if isinstance(target, Live) and resp.uses != target.uses:
            raise WrongOutcomeError(f"Verify counts {resp.uses} uses, {target.uses} were made")
        return float(elapsed)

    def report_use(self) -> float:
        """The platform reports one use of a live licence: counted exactly once more."""
        lic = self.rng.choice(self.live)
        pres = lic.advertiser.present(lic.parsed, AUDIENCE, USE)
        request = verification_pb2.ReportUseRequest(
            report_id=self.rng.randbytes(16), token=lic.token, presentation=pres, use=USE.to_proto()
        )
        resp, elapsed = self._timed(
            lambda: call(
                self.s.platform,
                path(verification_pb2, "ReportUse"),
                request,
                verification_pb2.ReportUseResponse,
            )
        )
        if resp.licence_id != lic.licence_id or resp.uses != lic.uses + 1:
            raise WrongOutcomeError(f"use counted as {resp.uses}, expected {lic.uses + 1}")
        lic.uses += 1
        if lic.uses >= MAX_USES - 1:  # retired before Verify would deny USES_EXHAUSTED
            self.live.remove(lic)
        return float(elapsed)


# -- the run ---------------------------------------------------------------------------------


def percentile(sorted_ms: list[float], q: float) -> float | None:
    """The nearest-rank ``q``-quantile of sorted values (None for none)."""
    if not sorted_ms:
        return None
    rank = max(1, int(-(-q * len(sorted_ms) // 1)))  # ceil(q * n), at least 1
    return sorted_ms[min(rank, len(sorted_ms)) - 1]


class RssSampler:
    """The server's RSS every :data:`SAMPLE_SECONDS`, in a thread: the samples (perf_counter
    time, bytes) and the peak."""

    def __init__(self, process: Any) -> None:
        self.process = process
        self.peak = 0
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def rss(self) -> int:
        """The RSS now (bytes), counted in the peak; 0 once the server is gone (the run
        reports that as an error)."""
        try:
            value = int(self.process.memory_info().rss)
        except Exception:  # noqa: BLE001 - NoSuchProcess, ZombieProcess, OSError: gone
            return 0
        self.peak = max(self.peak, value)
        self.samples.append((time.perf_counter(), value))
        return value

    def trend(self, start: float, end: float, points: int = 10) -> list[float]:
        """The RSS (MiB) at ``points`` even steps from ``start`` to ``end``: the last sample
        taken at or before each step."""
        out: list[float] = []
        for i in range(points + 1):
            at = start + (end - start) * i / points
            before = [v for t, v in self.samples if t <= at]
            if before:
                out.append(round(before[-1] / MIB, 1))
        return out

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self.rss()

    def start(self) -> None:
        """Begin sampling."""
        self._thread.start()

    def close(self) -> None:
        """Stop sampling."""
        self._stop.set()
        self._thread.join(timeout=5)


def seeded_key(seed: int, role: str, index: int) -> PrivateKey:
    """A party's key, reproducible from the run's seed."""
    return PrivateKey.from_seed(random.Random(f"{seed}/{role}/{index}").randbytes(32))


def setup(
    address: str, data_dir: Path, channel: grpc.Channel, args: argparse.Namespace
) -> tuple[list[Holder], list[Advertiser], SignedChannel]:
    """Register the holders (with terms, no standing rule), the advertisers (funded) and the
    platform."""
    holders = []
    for i in range(max(2, args.concurrency)):
        key = seeded_key(args.seed, "holder", i)
        holder = Holder(key, SignedChannel(channel, key, timeout=CALL_TIMEOUT))
        register_holder(holder.rpc, f"loadholder{i}")
        holders.append(holder)
    operator = SignedChannel(channel, operator_key(data_dir), timeout=CALL_TIMEOUT)
    advertisers = []
    for i in range(max(2, args.concurrency // 2)):
        adv = Advertiser.connect(address, seeded_key(args.seed, "advertiser", i))
        advertisers.append(adv)
        adv.register(f"Load Ads {i}", "FR")
        deposit(operator, adv.public_key, FUNDS, f"load-{i}")
        by_name = {offer.display_name: offer for offer in adv.search(page_size=100)}
        for j, holder in enumerate(holders):
            holder.offers[adv.public_key.raw] = by_name[f"loadholder{j}"]
    platform_key = seeded_key(args.seed, "platform", 0)
    platform = SignedChannel(channel, platform_key, timeout=CALL_TIMEOUT)
    register_platform(platform)
    return holders, advertisers, platform


@dataclass
class Outcome:
    """What a run measured."""

    workers: list[Worker]
    measured_s: float
    rss: dict[str, float]
    #: Licences issued after the warm-up (the memory bound allows for each).
    issued_after_warm: int
    #: The RSS (MiB) at even steps over the measured time, and the server's threads.
    trend: list[float]
    server_threads: int
    verifier: dict[str, Any]
    errors: list[str]


class ProcProcess:
    """What the load reads of a process through Linux's ``/proc`` when psutil is missing:
    the two methods of ``psutil.Process`` it uses."""

    @dataclass(frozen=True)
    class MemoryInfo:
        """``rss`` in bytes, as psutil names it."""

        rss: int

    def __init__(self, pid: int) -> None:
        self.path = Path(f"/proc/{pid}")

    def memory_info(self) -> ProcProcess.MemoryInfo:
        """The resident set (``statm``'s second field, in pages)."""
        pages = int((self.path / "statm").read_text().split()[1])
        return self.MemoryInfo(pages * os.sysconf("SC_PAGE_SIZE"))

    def num_threads(self) -> int:
        """The threads (``Threads:`` in ``status``)."""
        for line in (self.path / "status").read_text().splitlines():
            if line.startswith("Threads:"):
                return int(line.split()[1])
        return 0


def process_probe() -> Callable[[int], Any] | None:
    """``psutil.Process`` (the bench extra), else :class:`ProcProcess` on Linux, else None."""
    try:
        import psutil  # noqa: PLC0415 - optional: the bench extra
    except ImportError:
        return ProcProcess if Path("/proc/self/statm").exists() else None
    return psutil.Process  # type: ignore[no-any-return]


def run(
    exchange: ExchangeProcess, args: argparse.Namespace, probe: Callable[[int], Any]
) -> Outcome:
    """Set up the parties, run the workers for the time, and take the figures."""
    channel = grpc.insecure_channel(exchange.address)
    verifier_channel = grpc.insecure_channel(
        exchange.address,
        options=[
            ("grpc.initial_reconnect_backoff_ms", 200),
            ("grpc.max_reconnect_backoff_ms", 1000),
        ],
    )
    advertisers: list[Advertiser] = []
    nonces = MemoryNonceStore()
    verifier = Verifier(verifier_channel, AUDIENCE, nonces=nonces)
    sampler = RssSampler(probe(exchange.pid))
    stop = threading.Event()
    threads: list[threading.Thread] = []
    errors: list[str] = []
    try:
        holders, advertisers, platform = setup(exchange.address, exchange.data_dir, channel, args)
        verifier.start(timeout=CALL_TIMEOUT)
        shared = Shared(
            holders, advertisers, platform, verifier, Budget(args.max_ops, args.max_licences), stop
        )
        workers = [Worker(i, args.seed, shared) for i in range(args.concurrency)]
        warmup = min(10.0, max(1.0, args.seconds / 5))
        rss = {"start": sampler.rss() / MIB}
        sampler.start()
        begin = time.perf_counter()
        shared.measured_from = begin + warmup
        threads = [
            threading.Thread(target=w.run, name=f"load-worker-{w.index}", daemon=True)
            for w in workers
        ]
        for t in threads:
            t.start()
        warm_taken = False
        issued_at_warm = 0
        deadline = begin + args.seconds
        while (now := time.perf_counter()) < deadline and any(t.is_alive() for t in threads):
            if not exchange.running:
                errors.append("the server exited during the load")
                break
            if not warm_taken and now >= shared.measured_from:
                rss["warm"] = sampler.rss() / MIB
                issued_at_warm = sum(w.issued for w in workers)
                warm_taken = True
            time.sleep(0.05)
        ended = time.perf_counter()
        stop.set()
        for t in threads:
            t.join(timeout=CALL_TIMEOUT + 5)
        if not warm_taken:  # the caps ended the run within the warm-up
            rss["warm"] = sampler.rss() / MIB
            issued_at_warm = sum(w.issued for w in workers)
        rss["end"] = sampler.rss() / MIB
        sampler.close()
        rss["peak"] = sampler.peak / MIB
        trend = sampler.trend(shared.measured_from, ended)
        server_threads = int(sampler.process.num_threads()) if exchange.running else 0
        last = max((w.last_sequence for w in workers), default=0)
        catch_up = time.monotonic() + CATCH_UP_SECONDS
        while verifier.sequence < last and time.monotonic() < catch_up:
            time.sleep(0.05)
        if verifier.sequence < last:
            errors.append(f"the verifier applied sequence {verifier.sequence}, not {last}")
        stats = verifier.stats
        cached, cache_size = stats.cached_tokens, stats.cache_size
        embedded = [w.tallies["verify.embedded"] for w in workers]
        checks = sum(t.done + t.errors for t in embedded)
        if cached > cache_size:
            errors.append(f"the verifier caches {cached} tokens, over its bound {cache_size}")
        if len(nonces) > min(nonces.max_entries, checks):
            errors.append(f"the verifier keeps {len(nonces)} nonces, more than its checks")
        info = {
            "cached_tokens": cached,
            "cache_size": cache_size,
            "nonces": len(nonces),
            "sequence": stats.sequence,
            "connected": stats.connected,
            "reconnects": stats.reconnects,
            "resyncs": stats.resyncs,
        }
        measured = max(ended - shared.measured_from, 1e-9)
        issued_after_warm = sum(w.issued for w in workers) - issued_at_warm
        return Outcome(
            workers, measured, rss, issued_after_warm, trend, server_threads, info, errors
        )
    finally:
        stop.set()
        sampler.close()
        verifier.close()
        for adv in advertisers:
            adv.close()
        channel.close()
        verifier_channel.close()


def report(
    outcome: Outcome, args: argparse.Namespace, server_log_errors: int, exit_status: int | None
) -> bool:
    """Print the lines; True if the verdict is PASS."""
    total_ops = total_errors = 0
    for kind in KINDS:
        latencies = sorted(x for w in outcome.workers for x in w.tallies[kind].latencies_ms)
        errors = sum(w.tallies[kind].errors for w in outcome.workers)
        total_ops += len(latencies)
        total_errors += errors
        p50, p99 = percentile(latencies, 0.50), percentile(latencies, 0.99)
        row = {
            "kind": kind,
            "ops": len(latencies),
            "ops_per_s": round(len(latencies) / outcome.measured_s, 1),
            "p50_ms": None if p50 is None else round(p50, 3),
            "p99_ms": None if p99 is None else round(p99, 3),
            "errors": errors,
        }
        print(json.dumps(row), flush=True)
    problems = list(outcome.errors)
    if server_log_errors:
        problems.append(f"{server_log_errors} error lines in the server's log")
    if exit_status != 0:
        problems.append(f"the server exited with status {exit_status} after SIGTERM")
    rss = outcome.rss
    growth = rss["end"] - rss["warm"]
    bound = RSS_GROWTH_FIXED_MIB + RSS_GROWTH_PER_LICENCE_KIB * outcome.issued_after_warm / 1024
    memory_ok = growth <= bound
    if total_errors:
        problems.append(f"{total_errors} operations failed")
    if not memory_ok:
        problems.append(f"the server grew {growth:.1f} MiB after the warm-up (bound {bound:.1f})")
    summary = {
        "kind": "summary",
        "seconds": args.seconds,
        "measured_s": round(outcome.measured_s, 2),
        "concurrency": args.concurrency,
        "seed": args.seed,
        "ops": total_ops,
        "ops_per_s": round(total_ops / outcome.measured_s, 1),
        "errors": total_errors + len(outcome.errors) + server_log_errors + int(exit_status != 0),
        "licences_issued": sum(w.issued for w in outcome.workers),
        "licences_revoked": sum(w.revocations for w in outcome.workers),
        "licences_after_warmup": outcome.issued_after_warm,
        "rss_mib": {k: round(v, 1) for k, v in rss.items()},
        "rss_trend_mib": outcome.trend,
        "rss_growth_mib": round(growth, 1),
        "rss_bound_mib": round(bound, 1),
        "memory_ok": memory_ok,
        "server_threads": outcome.server_threads,
        "verifier": outcome.verifier,
        "verdict": "PASS" if not problems else "FAIL: " + "; ".join(problems),
    }
    print(json.dumps(summary), flush=True)
    for w in outcome.workers:
        for sample in w.error_samples:
            print(f"load: worker {w.index}: {sample}", file=sys.stderr)
    return not problems


def count_error_lines(log: Path) -> int:
    """Lines of the server's JSON log at level error (a line that is not JSON counts too:
    the server writes nothing else on stderr unless it crashes)."""
    if not log.exists():
        return 0
    count = 0
    with log.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                doc = json.loads(line)
            except ValueError:
                count += 1
                continue
            if not isinstance(doc, dict) or doc.get("level") in ("error", "critical"):
                count += 1
    return count


def _interrupted(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM cleans up as Ctrl-C does


def main(argv: list[str] | None = None) -> int:
    """Run the load; 0 on PASS, 1 on FAIL, 2 on misuse or when memory cannot be read."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument(
        "--seconds", type=float, default=30.0, help="the load's length, warm-up included (30)"
    )
    ap.add_argument("--concurrency", type=int, default=8, help="workers running at once (8)")
    ap.add_argument(
        "--seed", type=int, default=1, help="seeds the parties' keys and the workers' choices (1)"
    )
    ap.add_argument(
        "--max-ops", type=int, default=1_000_000, help="stop after this many operations (1000000)"
    )
    ap.add_argument(
        "--max-licences", type=int, default=20_000, help="requests stop at this many (20000)"
    )
    args = ap.parse_args(argv)
    if args.seconds <= 0 or args.concurrency < 1 or args.max_ops < 1 or args.max_licences < 0:
        ap.error("--seconds, --concurrency and --max-ops must be positive, --max-licences >= 0")
    probe = process_probe()
    if probe is None:
        print(
            "load: cannot read the server's memory: install psutil (make load does)",
            file=sys.stderr,
        )
        return 2
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupted)
    try:
        with tempfile.TemporaryDirectory(prefix="licentia-load-") as tmp:
            log = Path(tmp) / "server.log"
            with ExchangeProcess(Path(tmp) / "data", heartbeat_seconds=1.0, log=log) as exchange:
                outcome = run(exchange, args, probe)
                status = exchange.stop()
            ok = report(outcome, args, count_error_lines(log), status)
    except KeyboardInterrupt:
        print("load: interrupted; the exchange is stopped and its data removed", file=sys.stderr)
        return 130
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
