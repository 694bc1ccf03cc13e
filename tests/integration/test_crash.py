"""The crash test (issue 7): SIGKILL the exchange mid-flight, again and again, and lose nothing.

A real ``licentia-server`` process serves a mixed workload — holders approving requests
(issuance: escrow, log entry, status-list index), one holder's standing rule issuing at once
(the request and its licence in one change, retried with its idempotency key), holders
revoking (refund, revocation event, status bit, log entry), holders erasing their photo (every
live licence on it revoked in one change) and declaring it again, the operator crediting deposits,
holders withdrawing, a platform reporting uses (a per-use charge), holders adding and removing
device keys, advertisers adding a service key, licensing with it and removing it (mostly as
compromised: the licences bound to it are revoked in the same change) — from several client
threads, while an auditor thread collects signed checkpoints. At a random moment the process
is killed with SIGKILL, then restarted on the same data directory. After every crash
(``LICENTIA_CRASH_ROUNDS``, 12 by default; ``make crash`` runs 200) the test proves, from the
client's own record of what it was told:

1. every acknowledged operation is there — licences (with their token), revocations, deposits
   (credited once: re-sending the reference is a replay), withdrawals, use reports;
2. no unacknowledged operation is half-applied: read table by table from the SQLite file while
   the server is dead, each licence has its request, escrow posting, money row, assets, log
   entry and status index; each revocation its event, status bit, log entry and closed escrow
   with its refund; each use its report, count and charge — or none of them; a refused call
   left nothing behind;
3. the ledger balances to the cent: every posting sums to zero, every balance is the sum of its
   entries, ``Store.ledger_check()`` is empty, and the money inside the exchange is exactly the
   deposits minus the withdrawals that were applied;
4. the transparency log is consistent with every checkpoint handed out so far: each verifies
   under the pinned log key, the stored tree reproduces its root at its size, and the restarted
   exchange proves consistency from it to its current signed checkpoint; every licence's entry
   has an inclusion proof that verifies, and the stored subtree hashes are exactly the tree's;
5. the status list agrees with the licences table: the signed snapshot has exactly the bits of
   the revoked licences, and the revocation feed replays exactly the revocation events;
6. key sets are whole: every acknowledged change of a key set is stored (a refused one is not),
   each account's chain is contiguous and replays from its account id, its changes are in the
   log in the same order with the same bytes, ``account_keys`` is exactly the chain's last set
   (each key that left marked with the change that removed it and why), and every licence bound
   to a licensee key removed as compromised was revoked by that very change (cause
   LICENSEE_KEY_COMPROMISED, at its time; its revocation logged like any other).

The seed (``LICENTIA_CRASH_SEED`` to replay one) is in every failure message.
"""

from __future__ import annotations

import hashlib
import os
import random
import secrets
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TypeVar, cast

import grpc  # type: ignore[import-untyped]

from licentia import keyset, merkle, methods, sealed
from licentia.checkpoint import vkey
from licentia.clients import accounts
from licentia.clients.channel import ExchangeUnavailable
from licentia.clients.logcheck import LogClient, LogKey, prove_consistency
from licentia.errors import LicentiaError, Reason
from licentia.keys import IssuerKeySet, PrivateKey
from licentia.presentation import present
from licentia.scope import Scope
from licentia.services.app import DB_FILE, LOG_KEY_FILE, OPERATOR_KEY_FILE
from licentia.services.deps import Settings
from licentia.services.issuer import key_file
from licentia.services.model import Cause, RequestState
from licentia.services.store import SqliteStore
from licentia.status import StatusList, verify_snapshot
from licentia.token import LicenceClaims, StandingRule, parse_token
from licentia.v1 import (
    accounts_pb2,
    exchange_pb2,
    ledger_pb2,
    licences_pb2,
    records_pb2,
    registry_pb2,
    transparency_pb2,
    verification_pb2,
)

from .exchange_harness import (
    PHOTO_SHA,
    ExchangeError,
    Party,
    SignedChannel,
    ad_scope,
    add_standing_rule,
    approve_request,
    declare_photo,
    method_path,
    photo_use,
    register_advertiser,
    register_holder,
    register_platform,
    request_licence,
    secret_in,
)

T = TypeVar("T")


def progress(line: str) -> None:
    """A progress line on the terminal, past pytest's capture, when ``LICENTIA_PROGRESS`` is
    set (``make crash`` sets it: its rounds take minutes)."""
    if os.environ.get("LICENTIA_PROGRESS") and sys.__stderr__ is not None:
        print(line, file=sys.__stderr__, flush=True)


#: Crashes per run; ``make crash`` sets 200.
ROUNDS = int(os.environ.get("LICENTIA_CRASH_ROUNDS", "12"))
#: The workload's seed (a fresh one unless given); printed in every failure.
SEED = int(os.environ.get("LICENTIA_CRASH_SEED", "0")) or secrets.randbits(32)
#: Client threads, one holder each.
WORKERS = 4
#: Deadline of each unary call (generous: a loaded machine is slow, a dead server fails fast).
CALL_TIMEOUT = 15.0
#: Each licence: 30 days at the holder's 1.00 a day, plus up to 1000 uses at 0.10 each.
DAYS, MAX_USES, PER_USE = 30, 1000, 10
ESCROW = DAYS * 100 + MAX_USES * PER_USE
#: What each advertiser is credited before the first round.
OPENING_FUNDS = 100_000_000
#: Older checkpoints and licences re-proved over the wire after each crash, besides the
#: latest round's (all of them are checked against the stored tree every time).
SAMPLE = 10
#: Revocation events the feed is asked to replay after each crash (the latest ones).
FEED_TAIL = 200
PLATFORM_ID = "photoshare"
#: The worker whose holder has a standing rule: its requests are issued at once, no approval.
AUTO_WORKER = 0
AUTO = "RequestLicence (auto-approved)"
#: Why a use report may be refused: a revocation of the same licence committed between the
#: platform's check and the count (or before a retry).
USE_REFUSALS = frozenset({Reason.REVOKED, Reason.LICENCE_NOT_ACTIVE})
#: Tries of one key-set change: a change built on a set another change replaced first is
#: refused (KEY_SET_CONFLICT); the client reads the set again and builds it anew.
KEY_SET_TRIES = 5
#: The chance that an advertiser's service key is removed as compromised (else retired).
COMPROMISED_SHARE = 0.75
#: An advertiser's set this large loses a service key a kill left in it (a set has at most 16).
LEFTOVER_KEYS = 5

ACK, UNKNOWN, REFUSED = "acknowledged", "unknown", "refused"
_RANK = {REFUSED: 0, UNKNOWN: 1, ACK: 2}


def _merge(old: str | None, new: str) -> str:
    """What we know of an operation tried more than once: it is applied if any attempt was
    acknowledged, possibly applied if any attempt went unanswered, and refused otherwise."""
    return new if old is None or _RANK[new] > _RANK[old] else old


# -- what the clients were told -----------------------------------------------------------


@dataclass
class Issue:
    """One approval of an acknowledged request: the licence it issues (the token when
    acknowledged), and what a retry needs."""

    licence_id: bytes
    request_id: bytes
    claims: bytes
    holder_key: bytes
    round: int
    outcome: str
    token: str = ""


@dataclass
class AutoRequest:
    """A request the standing rule issues at once, sent with an idempotency key: when its
    answer was lost, the retry with the same key answers what was stored (or stores it)."""

    key: bytes
    advertiser: PrivateKey
    round: int
    outcome: str
    #: When it was asked: the retry sends the very same request (its term starts then).
    sent_at: int


@dataclass
class Erasure:
    """A holder erasing its photo: every licence it had live then must be revoked with it
    (``live``, known exactly: only this holder's own worker issues and revokes for it)."""

    holder_key: bytes
    live: frozenset[bytes]
    round: int
    outcome: str


@dataclass
class Deposit:
    """One payment the operator credits (its reference is its idempotency key)."""

    reference: str
    advertiser_key: bytes
    amount: int
    round: int
    outcome: str


@dataclass
class Withdrawal:
    """One payout of a holder (idempotent by its key)."""

    idempotency_key: bytes
    holder_key: bytes
    amount: int
    payout: str
    round: int
    outcome: str

    @property
    def stored_key(self) -> bytes:
        """The posting's idempotency column (see ``SqliteStore.withdraw``)."""
        return b"withdraw\x00" + self.holder_key + self.idempotency_key


@dataclass
class UseReport:
    """One use a platform reports; ``uses`` is the count the exchange acknowledged."""

    report_id: bytes
    licence_id: bytes
    token: str
    round: int
    outcome: str
    uses: int = 0


@dataclass
class KeyChange:
    """One signed change of an account's key set: it adds or removes ``key`` (removed as
    compromised or retired)."""

    account: bytes
    signed: bytes
    sequence: int
    key: bytes
    adding: bool
    compromised: bool
    round: int
    outcome: str


@dataclass
class Journal:
    """Every operation sent, across all rounds, and what its caller was told."""

    issues: dict[bytes, Issue] = field(default_factory=dict)
    #: Auto-approved requests whose answer was lost (the others are in ``issues``).
    auto: list[AutoRequest] = field(default_factory=list)
    erasures: list[Erasure] = field(default_factory=list)
    revocations: dict[bytes, tuple[int, str]] = field(default_factory=dict)
    deposits: dict[str, Deposit] = field(default_factory=dict)
    withdrawals: dict[bytes, Withdrawal] = field(default_factory=dict)
    #: By the report id as the exchange stores it (keyed with the platform).
    uses: dict[bytes, UseReport] = field(default_factory=dict)
    #: Every key-set change sent, in the order sent.
    key_changes: list[KeyChange] = field(default_factory=list)
    #: Every checkpoint handed out (verified on receipt): (size, root) -> round.
    checkpoints: dict[tuple[int, bytes], int] = field(default_factory=dict)
    #: Calls refused for a reason the workload never expects, or failing while the server ran.
    unexpected: list[str] = field(default_factory=list)
    #: Calls left unanswered (in flight when the server died), by method.
    in_flight: Counter[str] = field(default_factory=Counter)
    #: What the unanswered operations turned out to be after the restart: "<method> applied"
    #: or "<method> absent".
    resolved: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def summary(self) -> str:
        """Counts of operations by kind and outcome."""
        parts = []
        for name, outcomes in (
            ("issues", [x.outcome for x in self.issues.values()]),
            ("revocations", [o for _, o in self.revocations.values()]),
            ("erasures", [x.outcome for x in self.erasures]),
            ("deposits", [x.outcome for x in self.deposits.values()]),
            ("withdrawals", [x.outcome for x in self.withdrawals.values()]),
            ("uses", [x.outcome for x in self.uses.values()]),
            ("key changes", [x.outcome for x in self.key_changes]),
        ):
            c = Counter(outcomes)
            parts.append(f"{name} {c[ACK]}/{c[UNKNOWN]}/{c[REFUSED]}")
        caught = ", ".join(f"{k} {v}" for k, v in sorted(self.in_flight.items()))
        found = ", ".join(f"{k} {v}" for k, v in sorted(self.resolved.items()))
        return (
            "; ".join(parts)
            + f" (acknowledged/unknown/refused); {len(self.checkpoints)} checkpoints;"
            + f" calls in flight at a kill: {caught or 'none'}; after the restart: {found}"
        )


# -- the server process -------------------------------------------------------------------


@dataclass
class Server:
    """A running ``licentia-server`` and where it logs."""

    proc: subprocess.Popen[bytes]
    address: str
    log: Path


def _spawn(data: Path, workdir: Path, n: int) -> Server:
    """Start ``licentia-server`` on ``data`` (a free loopback port) and wait until it serves."""
    port_file = workdir / "port"
    port_file.unlink(missing_ok=True)
    log = workdir / f"server-{n}.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "licentia.services.server",
                "--data-dir",
                str(data),
                "--listen",
                "127.0.0.1:0",
                "--port-file",
                str(port_file),
                "--payout-delay-hours",  # each holder's payout destination is usable at once
                "0",
            ],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    deadline = time.monotonic() + 60
    while not (port_file.exists() and port_file.read_text().strip()):
        if proc.poll() is not None:
            raise AssertionError(f"the server exited {proc.returncode}: {log.read_text()[-2000:]}")
        assert time.monotonic() < deadline, "the server did not start within 60 s"
        time.sleep(0.02)
    return Server(proc, f"127.0.0.1:{port_file.read_text().strip()}", log)


def _kill(server: Server) -> None:
    """SIGKILL: no drain, no clean close of anything."""
    if server.proc.poll() is None:
        server.proc.kill()
    server.proc.wait(timeout=30)


# -- the workload ---------------------------------------------------------------------------


@dataclass
class Parties:
    """The keys of everyone who takes part (they outlive every process)."""

    #: One per worker, and last the holder advertisers' service keys ask (``keys_holder``).
    holders: list[PrivateKey]
    advertisers: list[PrivateKey]
    platform: PrivateKey
    operator: PrivateKey
    #: The exchange's references' secret: how the advertisers name the holders they ask.
    secret: bytes | None = None

    @property
    def keys_holder(self) -> PrivateKey:
        """The holder whose licences bind service keys: it has no worker (none of its
        licences is revoked, erased or used but by a key's removal)."""
        return self.holders[WORKERS]


@dataclass
class Round:
    """One round: a server process, the parties' channels to it, and the live licences."""

    number: int
    journal: Journal
    channel: grpc.Channel
    parties: Parties
    log_key: LogKey
    #: Per holder, the live licences it may revoke: (licence id, token).
    live: list[list[tuple[bytes, str]]]
    #: Live licences a platform may report uses of: (licence id, token).
    usable: list[tuple[bytes, str]]
    stop: threading.Event = field(default_factory=threading.Event)
    killed: threading.Event = field(default_factory=threading.Event)
    acks: int = 0
    pool_lock: threading.Lock = field(default_factory=threading.Lock)
    #: Service keys an operation is using now (the others in a set are left over by a kill).
    busy_keys: set[bytes] = field(default_factory=set)

    def party(self, key: PrivateKey, account: bytes | None = None) -> Party:
        """``key`` (of ``account``, when another's) calling over this round's channel."""
        return Party(
            key,
            SignedChannel(self.channel, key, timeout=CALL_TIMEOUT),
            secret=self.parties.secret,
            account=account,
        )

    def log_client(self) -> LogClient:
        """The public log's calls (unsigned)."""
        return LogClient(SignedChannel(self.channel, None, timeout=CALL_TIMEOUT), CALL_TIMEOUT)

    def attempt(
        self, what: str, fn: Callable[[], T], allowed: frozenset[Reason] = frozenset()
    ) -> tuple[str, T | None]:
        """Run one call: ``(outcome, response)``. A refusal the workload does not expect,
        or a failure while the server was not being killed, is recorded as unexpected."""
        try:
            value = fn()
        except ExchangeError as e:
            unanswered = isinstance(e, ExchangeUnavailable) or e.reason == Reason.INTERNAL
            outcome = UNKNOWN if unanswered else REFUSED
            expected = (outcome == REFUSED and e.reason in allowed) or (
                e.code == grpc.StatusCode.DEADLINE_EXCEEDED
            )
            with self.journal.lock:
                if not expected and not self.killed.is_set():
                    self.journal.unexpected.append(f"round {self.number}: {what}: {e!r}")
                if outcome == UNKNOWN:
                    self.journal.in_flight[what] += 1
            return outcome, None
        with self.journal.lock:
            self.acks += 1
        return ACK, value

    # -- operations (each runs in a worker thread) -------------------------------------
    def issue(self, worker: int, rng: random.Random) -> None:
        """An advertiser asks for the holder's photo; the holder approves (issuance), or
        its standing rule did at once (``AUTO_WORKER``'s holder)."""
        holder = self.party(self.parties.holders[worker])
        adv = self.party(rng.choice(self.parties.advertisers))
        auto = worker == AUTO_WORKER
        key = rng.randbytes(16) if auto else b""
        sent_at = int(time.time())
        outcome, asked = self.attempt(
            AUTO if auto else "RequestLicence",
            lambda: request_licence(
                adv,
                holder.key.public.raw,
                days=DAYS,
                max_uses=MAX_USES,
                price_per_use=PER_USE,
                idempotency_key=key,
                now=sent_at,
            ),
        )
        if auto:
            self._auto_issued(worker, adv.key, key, sent_at, outcome, asked)
            return
        if asked is None:
            return
        request = asked.request
        licence_id = LicenceClaims.decode(request.claims).licence_id
        outcome, approved = self.attempt("ApproveRequest", lambda: approve_request(holder, request))
        token = approved.licence.token if approved is not None else ""
        with self.journal.lock:
            self.journal.issues[licence_id] = Issue(
                licence_id,
                request.request_id,
                request.claims,
                holder.key.public.raw,
                self.number,
                outcome,
                token,
            )
        if token:
            with self.pool_lock:
                self.live[worker].append((licence_id, token))
                self.usable.append((licence_id, token))

    def _auto_issued(
        self,
        worker: int,
        advertiser: PrivateKey,
        key: bytes,
        sent_at: int,
        outcome: str,
        asked: exchange_pb2.RequestLicenceResponse | None,
    ) -> None:
        """Record an auto-approved request: its licence, or the request to retry."""
        if asked is None:
            with self.journal.lock:
                self.journal.auto.append(
                    AutoRequest(key, advertiser, self.number, outcome, sent_at)
                )
            return
        if not asked.HasField("licence"):
            with self.journal.lock:
                self.journal.unexpected.append(f"round {self.number}: not auto-approved: {asked}")
            return
        licence = asked.licence
        with self.journal.lock:
            self.journal.issues[licence.licence_id] = Issue(
                licence.licence_id,
                asked.request.request_id,
                asked.request.claims,
                self.parties.holders[worker].public.raw,
                self.number,
                ACK,
                licence.token,
            )
        with self.pool_lock:
            self.live[worker].append((licence.licence_id, licence.token))
            self.usable.append((licence.licence_id, licence.token))

    def revoke(self, worker: int, rng: random.Random) -> None:
        """The holder revokes one of its live licences (or asks for one if it has none)."""
        with self.pool_lock:
            pool = self.live[worker]
            picked = pool.pop(rng.randrange(len(pool))) if pool else None
            if picked is not None and picked in self.usable:
                self.usable.remove(picked)
        if picked is None:
            self.issue(worker, rng)
            return
        licence_id = picked[0]
        holder = self.party(self.parties.holders[worker])
        outcome, _ = self.attempt(
            "RevokeLicence",
            lambda: holder.call(
                licences_pb2,
                "RevokeLicence",
                licences_pb2.RevokeLicenceRequest(licence_id=licence_id),
                licences_pb2.RevokeLicenceResponse,
            ),
        )
        with self.journal.lock:
            before = self.journal.revocations.get(licence_id)
            merged = _merge(before[1] if before else None, outcome)
            self.journal.revocations[licence_id] = (self.number, merged)

    def erase(self, worker: int, rng: random.Random) -> None:
        """The holder erases its photo (revoking every live licence on it), then declares
        it again so that advertisers can ask for it."""
        holder = self.party(self.parties.holders[worker])
        with self.pool_lock:
            live = frozenset(lid for lid, _ in self.live[worker])
        outcome, answer = self.attempt("EraseAssets", lambda: erase_photo(holder))
        with self.journal.lock:
            self.journal.erasures.append(Erasure(holder.key.public.raw, live, self.number, outcome))
            if answer is not None and set(answer.revoked_licence_ids) != live:
                self.journal.unexpected.append(
                    f"round {self.number}: erasure revoked {len(answer.revoked_licence_ids)}"
                    f" licences, {len(live)} were live"
                )
        if answer is None:
            return
        with self.pool_lock:
            self.live[worker].clear()
            self.usable[:] = [u for u in self.usable if u[0] not in live]
        self.attempt("DeclareAsset", lambda: declare_photo(holder))

    def report_use(self, worker: int, rng: random.Random) -> None:
        """The platform reports one use of a live licence (charged per use)."""
        with self.pool_lock:
            picked = rng.choice(self.usable) if self.usable else None
        if picked is None:
            self.issue(worker, rng)
            return
        licence_id, token = picked
        raw_id = rng.randbytes(16)
        stored = stored_report_id(self.parties.platform.public.raw, raw_id)
        outcome, answer = self.attempt(
            "ReportUse", lambda: send_use_report(self, raw_id, token), USE_REFUSALS
        )
        with self.journal.lock:
            self.journal.uses[stored] = UseReport(
                raw_id,
                licence_id,
                token,
                self.number,
                outcome,
                answer.uses if answer is not None else 0,
            )

    def deposit(self, worker: int, rng: random.Random) -> None:
        """The operator credits an advertiser a payment with a new reference."""
        adv = rng.choice(self.parties.advertisers).public.raw
        amount = rng.randint(1, 50_000)
        reference = f"wire-{self.number}-{worker}-{rng.getrandbits(64):016x}"
        outcome, answer = self.attempt(
            "Deposit", lambda: deposit(self.party(self.parties.operator), adv, amount, reference)
        )
        if answer is not None and (answer.replayed or answer.line.amount_minor != amount):
            with self.journal.lock:
                self.journal.unexpected.append(f"a first deposit {reference} answered {answer}")
        with self.journal.lock:
            self.journal.deposits[reference] = Deposit(reference, adv, amount, self.number, outcome)

    def withdraw(self, worker: int, rng: random.Random) -> None:
        """The holder pays a little of what it earned out to its bank."""
        holder_key = self.parties.holders[worker]
        w = Withdrawal(
            rng.randbytes(16),
            holder_key.public.raw,
            rng.randint(1, 40),
            f"iban-{worker}",  # the destination it added at the start
            self.number,
            UNKNOWN,
        )
        outcome, answer = self.attempt(
            "Withdraw",
            lambda: withdraw(self.party(holder_key), w),
            frozenset({Reason.INSUFFICIENT_FUNDS}),
        )
        if answer is not None and answer.replayed:
            with self.journal.lock:
                self.journal.unexpected.append(f"a first withdrawal answered {answer}")
        w.outcome = outcome
        with self.journal.lock:
            self.journal.withdrawals[w.stored_key] = w

    def watch_log(self) -> None:
        """An auditor fetches checkpoints while the others work; each is verified on
        receipt and kept: every later tree must extend it."""
        client = self.log_client()
        while not self.stop.is_set():
            _, served = self.attempt("GetCheckpoint", client.checkpoint)
            if served is not None:
                try:
                    cp = self.log_key.open(served.note)
                except Exception as e:  # noqa: BLE001 (reported, not raised, in a thread)
                    with self.journal.lock:
                        self.journal.unexpected.append(f"a checkpoint does not verify: {e!r}")
                else:
                    with self.journal.lock:
                        self.journal.checkpoints.setdefault((cp.size, cp.root), self.number)
            time.sleep(0.03)

    # -- key sets ------------------------------------------------------------------------
    def change_keys(
        self,
        owner: PrivateKey,
        build: Callable[[keyset.KeySet], tuple[accounts_pb2.SignedKeySetChange, KeyChange] | None],
    ) -> str | None:
        """Read ``owner``'s account's set, ``build`` a change on it and send it; refused as
        KEY_SET_CONFLICT (another change came first), read again and build again, as a client
        does. The last outcome (None: there was nothing to change, or the set was not read)."""
        party = self.party(owner)
        outcome: str | None = None
        for _ in range(KEY_SET_TRIES):
            _, answer = self.attempt("GetKeySet", lambda: get_key_set(party))
            if answer is None:
                return None
            built = build(accounts.verified(answer).current)
            if built is None:
                return None
            signed, record = built
            outcome, _ = self.attempt(
                "ChangeKeySet",
                partial(send_key_change, party, signed),
                frozenset({Reason.KEY_SET_CONFLICT}),
            )
            record.outcome = outcome
            with self.journal.lock:
                self.journal.key_changes.append(record)
            if outcome != REFUSED:
                return outcome
        return outcome

    def _record(
        self, owner: PrivateKey, signed: accounts_pb2.SignedKeySetChange, key: bytes, adding: bool
    ) -> tuple[accounts_pb2.SignedKeySetChange, KeyChange]:
        change = keyset.decode_change(signed).change
        record = KeyChange(
            owner.public.raw,
            signed.SerializeToString(deterministic=True),
            change.sequence,
            key,
            adding,
            change.cause == keyset.COMPROMISED,
            self.number,
            UNKNOWN,
        )
        return signed, record

    def holder_keys(self, worker: int, rng: random.Random) -> None:
        """The holder adds a device key, or with two already removes one (as compromised
        or as retired)."""
        holder = self.parties.holders[worker]
        seed = rng.randbytes(32)
        compromised = rng.random() < 0.5
        pick = rng.random()

        def build(
            current: keyset.KeySet,
        ) -> tuple[accounts_pb2.SignedKeySetChange, KeyChange] | None:
            devices = [k for k in current.keys if k.public != holder.public.raw]
            now = int(time.time())
            if len(devices) < 2:
                device = PrivateKey.from_seed(seed)
                if current.key(device.public.raw) is not None:
                    return None  # added already (the answer was lost)
                signed = accounts.add_key(current, holder, device, name="phone", at=now)
                return self._record(holder, signed, device.public.raw, True)
            gone = devices[int(pick * len(devices))].public
            signed = accounts.remove_key(current, holder, gone, compromised=compromised, at=now)
            return self._record(holder, signed, gone, False)

        self.change_keys(holder, build)

    def service_key(self, worker: int, rng: random.Random) -> None:
        """An advertiser adds a service key, asks the keys holder for licences signing with
        it (bound to it), the holder approves them, and the advertiser removes the key —
        mostly as compromised, which revokes them in the same change."""
        adv = rng.choice(self.parties.advertisers)
        service = PrivateKey.from_seed(rng.randbytes(32))
        count = rng.randint(1, 3)
        compromised = rng.random() < COMPROMISED_SHARE

        def leftover(
            current: keyset.KeySet,
        ) -> tuple[accounts_pb2.SignedKeySetChange, KeyChange] | None:
            """A service key an operation cut short by a kill left in the set (its licences,
            if any, approved since): removed before the set grows too large."""
            with self.pool_lock:
                busy = set(self.busy_keys)
            stale = [
                k.public
                for k in current.keys
                if k.public != adv.public.raw and k.public not in busy
            ]
            if len(current.keys) < LEFTOVER_KEYS or not stale:
                return None
            signed = accounts.remove_key(
                current, adv, stale[0], compromised=compromised, at=int(time.time())
            )
            return self._record(adv, signed, stale[0], False)

        if self.change_keys(adv, leftover) not in (None, ACK):
            return
        with self.pool_lock:
            self.busy_keys.add(service.public.raw)
        try:
            self._use_service_key(adv, service, count, compromised)
        finally:
            with self.pool_lock:
                self.busy_keys.discard(service.public.raw)

    def _use_service_key(
        self, adv: PrivateKey, service: PrivateKey, count: int, compromised: bool
    ) -> None:
        def add(current: keyset.KeySet) -> tuple[accounts_pb2.SignedKeySetChange, KeyChange]:
            signed = accounts.add_key(current, adv, service, name="ad server", at=int(time.time()))
            return self._record(adv, signed, service.public.raw, True)

        if self.change_keys(adv, add) != ACK:
            return
        holder = self.party(self.parties.keys_holder)
        signer = self.party(service, adv.public.raw)
        for _ in range(count):
            _, asked = self.attempt(
                "RequestLicence",
                lambda: request_licence(
                    signer,
                    holder.key.public.raw,
                    days=DAYS,
                    max_uses=MAX_USES,
                    price_per_use=PER_USE,
                ),
            )
            if asked is None:
                return
            request = asked.request
            licence_id = LicenceClaims.decode(request.claims).licence_id
            outcome, approved = self.attempt(
                "ApproveRequest", partial(approve_request, holder, request)
            )
            with self.journal.lock:
                self.journal.issues[licence_id] = Issue(
                    licence_id,
                    request.request_id,
                    request.claims,
                    holder.key.public.raw,
                    self.number,
                    outcome,
                    approved.licence.token if approved is not None else "",
                )
            if approved is None:
                return  # its retry after the restart approves it; the key stays

        def remove(
            current: keyset.KeySet,
        ) -> tuple[accounts_pb2.SignedKeySetChange, KeyChange] | None:
            if current.key(service.public.raw) is None:
                return None
            signed = accounts.remove_key(
                current, adv, service.public.raw, compromised=compromised, at=int(time.time())
            )
            return self._record(adv, signed, service.public.raw, False)

        self.change_keys(adv, remove)

    def work(self, worker: int, rng: random.Random) -> None:
        """A client thread: random operations until the round stops."""
        ops = (
            self.issue,
            self.revoke,
            self.erase,
            self.report_use,
            self.deposit,
            self.withdraw,
            self.holder_keys,
            self.service_key,
        )
        weights = (30, 15, 3, 30, 12, 13, 3, 3)
        while not self.stop.is_set():
            op = rng.choices(ops, weights)[0]
            try:
                op(worker, rng)
            except Exception as e:  # noqa: BLE001 (a bug of the test itself: reported)
                with self.journal.lock:
                    self.journal.unexpected.append(f"round {self.number}: {op.__name__}: {e!r}")
                return


def erase_photo(holder: Party) -> registry_pb2.EraseAssetsResponse:
    """The holder erases its photo: every licence live on it is revoked."""
    return holder.call(
        registry_pb2,
        "EraseAssets",
        registry_pb2.EraseAssetsRequest(sha256=[PHOTO_SHA]),
        registry_pb2.EraseAssetsResponse,
    )


def send_use_report(rnd: Round, report_id: bytes, token: str) -> verification_pb2.ReportUseResponse:
    """The platform reports one use of ``token``, with its licensee's fresh presentation."""
    parsed = parse_token(token)
    adv = next(k for k in rnd.parties.advertisers if k.public.raw == parsed.licensee_key)
    use = photo_use()
    pres = present(adv, parsed.licence_id, PLATFORM_ID, use, int(time.time()))
    return rnd.party(rnd.parties.platform).call(
        verification_pb2,
        "ReportUse",
        verification_pb2.ReportUseRequest(
            report_id=report_id, token=token, presentation=pres, use=use.to_proto()
        ),
        verification_pb2.ReportUseResponse,
    )


def get_key_set(party: Party) -> accounts_pb2.GetKeySetResponse:
    """The caller's account's key set and its chain."""
    return party.rpc.unary(
        accounts.GET_KEY_SET, accounts_pb2.GetKeySetRequest(), accounts_pb2.GetKeySetResponse
    )


def send_key_change(
    party: Party, signed: accounts_pb2.SignedKeySetChange
) -> accounts_pb2.ChangeKeySetResponse:
    """One signed change of the caller's account's key set."""
    return party.rpc.unary(
        accounts.CHANGE_KEY_SET,
        accounts_pb2.ChangeKeySetRequest(change=signed),
        accounts_pb2.ChangeKeySetResponse,
    )


def stored_report_id(platform_key: bytes, report_id: bytes) -> bytes:
    """A use report's id as the exchange stores it (keyed with the platform's key)."""
    return hashlib.sha256(b"licentia.v1.report\x00" + platform_key + report_id).digest()[:16]


def deposit(
    operator: Party, advertiser_key: bytes, amount: int, reference: str
) -> ledger_pb2.DepositResponse:
    """The operator credits a payment (the reference makes it idempotent)."""
    return operator.call(
        ledger_pb2,
        "Deposit",
        ledger_pb2.DepositRequest(
            advertiser_key=advertiser_key, amount_minor=amount, reference=reference
        ),
        ledger_pb2.DepositResponse,
    )


def withdraw(holder: Party, w: Withdrawal) -> ledger_pb2.WithdrawResponse:
    """The holder's payout (the idempotency key makes it idempotent)."""
    return holder.call(
        ledger_pb2,
        "Withdraw",
        ledger_pb2.WithdrawRequest(
            amount_minor=w.amount, payout_reference=w.payout, idempotency_key=w.idempotency_key
        ),
        ledger_pb2.WithdrawResponse,
    )


# -- the stored state, read table by table while the server is dead ------------------------


@dataclass(frozen=True)
class Licence:
    """One row of ``licences``."""

    request_id: bytes
    token: str
    holder_key: bytes
    licensee_key: bytes
    status_index: int
    max_uses: int
    uses: int
    revoked_at: int
    status_list: int


@dataclass(frozen=True)
class Money:
    """One row of ``licence_money``."""

    advertiser_key: bytes
    holder_key: bytes
    price: int
    price_per_use: int
    max_uses: int
    time_earned: int
    uses_charged: int
    closed: bool

    @property
    def escrow_total(self) -> int:
        """What issuance set aside."""
        return self.price + self.price_per_use * self.max_uses


@dataclass(frozen=True)
class Posting:
    """One posting and its entries ``(account kind, account key, amount)``."""

    kind: str
    licence_id: bytes
    idempotency: bytes | None
    reference: str
    entries: tuple[tuple[str, bytes, int], ...]


@dataclass
class Stored:
    """Everything the crash test reads from the database, in one snapshot."""

    licences: dict[bytes, Licence]
    requests: dict[bytes, tuple[int, bytes]]
    assets: Counter[bytes]
    money: dict[bytes, Money]
    postings: list[Posting]
    balances: dict[tuple[str, bytes], int]
    log: list[tuple[int, bytes, str, bytes]]
    nodes: dict[tuple[int, int], bytes]
    #: (sequence, status index, licence id, revoked at, status list)
    revocations: list[tuple[int, int, bytes, int, int]]
    uses: dict[bytes, tuple[bytes, int]]
    #: Status list -> the indexes reserved in it (0 up to this).
    reserved: dict[int, int]
    #: Idempotency key -> request id, of requests sent with one.
    request_keys: dict[bytes, bytes]
    #: The licences revoked because their asset was erased.
    erased: set[bytes]
    #: The holders whose photo is declared.
    photos: set[bytes]
    #: Each account's key-set changes, by sequence: (sequence, the signed change's bytes).
    key_changes: dict[bytes, list[tuple[int, bytes]]]
    #: ``account_keys``: public key -> (account, role, added_seq, removed_seq, removed_at,
    #: cause).
    account_keys: dict[bytes, tuple[bytes, int, int, int, int, int]]
    #: The log's key-set entries: (index, entry, account), in log order.
    key_log: list[tuple[int, bytes, bytes]]
    #: Each licence's licensee key (the key its claims name: the presenting device).
    licensee_device: dict[bytes, bytes]
    #: Each revoked licence's cause.
    causes: dict[bytes, int]
    #: Entries whose posting does not exist.
    stray_entries: int = 0
    #: Each account's log key and the number of entries it says are about the account.
    account_logs: dict[bytes, tuple[bytes, int]] = field(default_factory=dict)
    #: The plaintext of each sealed entry, by log index, opened with its account's key.
    plain: dict[int, bytes] = field(default_factory=dict)
    #: What went wrong finding and opening the sealed entries.
    unsealing: list[str] = field(default_factory=list)

    def unseal(self) -> None:
        """Find each account's entries by its tags and open them: every sealed entry must
        belong to exactly one account, and each account's count must be what it found."""
        for account, (log_key, count) in self.account_logs.items():
            window = sealed.TagWindow(log_key)
            for idx, entry, _, _ in self.log:
                e = transparency_pb2.LogEntry.FromString(entry)
                j = window.match(e.sealed) if e.HasField("sealed") else None
                if j is None:
                    continue
                if idx in self.plain:
                    self.unsealing.append(f"log entry {idx} opens for two accounts")
                self.plain[idx] = sealed.plaintext_of(sealed.open_entry(log_key, j, e.sealed))
            if window.found != count:
                h = account.hex()[:12]
                self.unsealing.append(f"account {h}: {window.found} entries found, {count} counted")
        for idx, _entry, kind, _ in self.log:
            if kind != "issuer_key" and idx not in self.plain:
                self.unsealing.append(f"log entry {idx} ({kind}) is not sealed to an account")

    def entry(self, idx: int, raw: bytes) -> bytes:
        """What the log's entry ``idx`` says: its plaintext if sealed, else itself."""
        return self.plain.get(idx, raw)

    @classmethod
    def read(cls, db: Path) -> Stored:
        """Open the file read-only (it writes and checkpoints nothing: the restarted server
        recovers the WAL itself) and read it all, in one snapshot."""
        c = sqlite3.connect(db.resolve().as_uri() + "?mode=ro", uri=True, isolation_level=None)
        try:
            c.execute("BEGIN")
            entries: dict[int, list[tuple[str, bytes, int]]] = {}
            for pid, kind, key, amount in c.execute(
                "SELECT posting_id, account_kind, account_key, amount FROM entries ORDER BY rowid"
            ):
                entries.setdefault(pid, []).append((kind, bytes(key), amount))
            out = cls(
                licences={
                    bytes(r[0]): Licence(bytes(r[1]), r[2], bytes(r[3]), bytes(r[4]), *r[5:])
                    for r in c.execute(
                        "SELECT licence_id, request_id, token, holder_key, licensee_key,"
                        " status_index, max_uses, uses, revoked_at, status_list FROM licences"
                    )
                },
                requests={
                    bytes(r[0]): (r[1], bytes(r[2]))
                    for r in c.execute("SELECT request_id, state, licence_id FROM requests")
                },
                assets=Counter(
                    bytes(r[0]) for r in c.execute("SELECT licence_id FROM licence_assets")
                ),
                money={
                    bytes(r[0]): Money(
                        bytes(r[1]), bytes(r[2]), r[3], r[4], r[5], r[6], r[7], bool(r[8])
                    )
                    for r in c.execute(
                        "SELECT licence_id, advertiser_key, holder_key, price, price_per_use,"
                        " max_uses, time_earned, uses_charged, closed FROM licence_money"
                    )
                },
                postings=[
                    Posting(
                        r[1],
                        bytes(r[2]),
                        None if r[3] is None else bytes(r[3]),
                        r[4],
                        tuple(entries.pop(r[0], [])),
                    )
                    for r in c.execute(
                        "SELECT id, kind, licence_id, idempotency, reference FROM postings"
                        " ORDER BY id"
                    )
                ],
                balances={
                    (r[0], bytes(r[1])): r[2]
                    for r in c.execute("SELECT account_kind, account_key, balance FROM balances")
                },
                log=[
                    (r[0], bytes(r[1]), r[2], bytes(r[3]))
                    for r in c.execute(
                        "SELECT idx, entry, kind, licence_id FROM log_entries ORDER BY idx"
                    )
                ],
                nodes={
                    (r[0], r[1]): bytes(r[2])
                    for r in c.execute("SELECT level, idx, hash FROM log_nodes")
                },
                revocations=[
                    (r[0], r[1], bytes(r[2]), r[3], r[4])
                    for r in c.execute(
                        "SELECT sequence, status_index, licence_id, revoked_at, status_list"
                        " FROM revocations ORDER BY sequence"
                    )
                ],
                uses={
                    bytes(r[0]): (bytes(r[1]), r[2])
                    for r in c.execute("SELECT report_id, licence_id, uses_after FROM use_reports")
                },
                reserved=dict(c.execute("SELECT list_id, used FROM status_lists").fetchall()),
                request_keys={
                    bytes(r[0]): bytes(r[1])
                    for r in c.execute("SELECT idempotency_key, request_id FROM request_keys")
                },
                erased={
                    bytes(r[0])
                    for r in c.execute(
                        "SELECT licence_id FROM revocations WHERE cause = ?", (int(Cause.ERASED),)
                    )
                },
                photos={
                    bytes(r[0])
                    for r in c.execute(
                        "SELECT holder_key FROM assets WHERE sha256 = ?", (PHOTO_SHA,)
                    )
                },
                key_changes=_key_changes(c),
                account_keys={
                    bytes(r[0]): (bytes(r[1]), *r[2:])
                    for r in c.execute(
                        "SELECT public_key, account, role, added_seq, removed_seq, removed_at,"
                        " cause FROM account_keys"
                    )
                },
                key_log=[
                    (r[0], bytes(r[1]), bytes(r[2]))
                    for r in c.execute(
                        "SELECT idx, entry, licence_id FROM log_entries WHERE kind = 'key_set'"
                        " ORDER BY idx"
                    )
                ],
                licensee_device={
                    bytes(r[0]): bytes(r[1])
                    for r in c.execute("SELECT licence_id, licensee_device FROM licences")
                },
                causes={
                    bytes(r[0]): r[1]
                    for r in c.execute("SELECT licence_id, cause FROM revocations")
                },
            )
            out.stray_entries = sum(len(x) for x in entries.values())
            out.account_logs = {
                bytes(r[0]): (bytes(r[1]), r[2])
                for r in c.execute("SELECT account, log_key, entries FROM account_logs")
            }
            out.unseal()
            c.execute("COMMIT")
            return out
        finally:
            c.close()

    def key_change(self, account: bytes, signed: bytes) -> bool:
        """Whether ``account``'s chain has the change ``signed`` (its exact bytes)."""
        return any(b == signed for _, b in self.key_changes.get(account, []))

    def revoked(self) -> set[bytes]:
        """The licences whose row says revoked."""
        return {lid for lid, x in self.licences.items() if x.revoked_at}


def _key_changes(c: sqlite3.Connection) -> dict[bytes, list[tuple[int, bytes]]]:
    out: dict[bytes, list[tuple[int, bytes]]] = {}
    for account, seq, change in c.execute(
        "SELECT account, sequence, change FROM key_set_changes ORDER BY account, sequence"
    ):
        out.setdefault(bytes(account), []).append((seq, bytes(change)))
    return out


#: The log's ``kind`` column of each kind of entry (the entry's oneof field otherwise).
_LOG_KIND = {"key_set": "key_set_change"}


def check_key_sets(s: Stored, journal: Journal) -> list[str]:
    """Key sets whole: each chain contiguous, replayable and in the log (same bytes, same
    order); ``account_keys`` exactly the chain's sets; the licences bound to a licensee key
    removed as compromised revoked by its removal; the journal's changes there or not."""
    problems: list[str] = []
    p = problems.append
    logged: dict[bytes, list[bytes]] = {}
    for idx, entry, account in s.key_log:
        logged.setdefault(account, []).append(s.entry(idx, entry))
    compromised: dict[bytes, int] = {}  # key -> when it was removed as compromised
    by_account: dict[bytes, dict[bytes, tuple[int, int, int, int, int]]] = {}
    for public, (account, *row) in s.account_keys.items():
        by_account.setdefault(account, {})[public] = cast("tuple[int, int, int, int, int]", row)
    for account in set(s.key_changes) | set(logged):
        h = account.hex()[:16]
        chain = s.key_changes.get(account, [])
        if [seq for seq, _ in chain] != list(range(1, len(chain) + 1)):
            p(f"account {h}: key-set sequences {[seq for seq, _ in chain]}, not 1..n")
            continue
        signed = [accounts_pb2.SignedKeySetChange.FromString(b) for _, b in chain]
        want = [
            transparency_pb2.LogEntry(key_set_change=x).SerializeToString(deterministic=True)
            for x in signed
        ]
        if logged.get(account, []) != want:
            p(
                f"account {h}: {len(chain)} key-set changes, {len(logged.get(account, []))}"
                " log entries, or not the same bytes in the same order"
            )
        try:
            sets = keyset.verify_chain(account, signed)
        except LicentiaError as e:
            p(f"account {h}: its stored chain does not replay: {e!r}")
            continue
        rows = by_account.get(account, {})
        current = {k.public for k in sets[-1].keys}
        if {k for k, r in rows.items() if not r[2]} != current:
            p(f"account {h}: account_keys' current keys are not the chain's last set")
        for n in range(1, len(sets)):
            cause = keyset.decode_change(signed[n - 1]).change.cause
            before = {k.public for k in sets[n - 1].keys}
            after = {k.public for k in sets[n].keys}
            for k in after - before:
                if k not in rows or rows[k][1] != n:
                    p(f"account {h}: key {k.hex()[:16]} added by change {n}: {rows.get(k)}")
            for k in before - after:
                r = rows.get(k)
                if r is None or (r[2], r[4]) != (n, cause):
                    p(f"account {h}: key {k.hex()[:16]} removed by change {n}: {r}")
                elif cause == keyset.COMPROMISED:
                    compromised[k] = r[3]
    # A licensee key removed as compromised: its live licences revoked by that change.
    for lid, device in s.licensee_device.items():
        x = s.licences[lid]
        by_key = s.causes.get(lid) == Cause.LICENSEE_KEY_COMPROMISED
        if device in compromised:
            at = compromised[device]
            if not x.revoked_at or x.revoked_at > at or (by_key and x.revoked_at != at):
                p(f"licence {lid.hex()}: bound to a key removed at {at}, revoked at {x.revoked_at}")
        elif by_key:
            p(f"licence {lid.hex()}: revoked as its licensee key's, a key never compromised")
    # The journal: an acknowledged change is stored, a refused one is not — unless the same
    # change was sent by another caller too (two workers removing the same left-over key on
    # the same set in the same second sign the very same bytes: one applies, one conflicts).
    sent = {kc.signed for kc in journal.key_changes if kc.outcome != REFUSED}
    for kc in journal.key_changes:
        there = s.key_change(kc.account, kc.signed)
        if kc.outcome == ACK and not there:
            p(f"acknowledged key-set change {kc.sequence} (round {kc.round}) is lost")
        if kc.outcome == REFUSED and there and kc.signed not in sent:
            p(f"refused key-set change {kc.sequence} (round {kc.round}) was applied")
    return problems


def check_tables(s: Stored, journal: Journal) -> tuple[list[str], merkle.MemoryNodes]:
    """Every all-or-nothing rule of the stored state, and the journal against it; the
    problems found, and the log's tree recomputed from its entries."""
    problems: list[str] = []
    p = problems.append
    by_licence: dict[tuple[str, bytes], list[Posting]] = {}
    for post in s.postings:
        by_licence.setdefault((post.kind, post.licence_id), []).append(post)
    log_of: dict[tuple[str, bytes], list[tuple[int, bytes]]] = {}
    problems += s.unsealing
    for idx, entry, kind, lid in s.log:
        log_of.setdefault((kind, lid), []).append((idx, s.entry(idx, entry)))
    events = {lid: (seq, (lst, index), at) for seq, index, lid, at, lst in s.revocations}
    uses_of = Counter(lid for lid, _ in s.uses.values())
    uses_after: dict[bytes, set[int]] = {}
    for lid, after in s.uses.values():
        uses_after.setdefault(lid, set()).add(after)

    # Issuance: the licence, its request, money, escrow, assets, log entry and index, together.
    for lid, x in s.licences.items():
        h = lid.hex()
        tok = parse_token(x.token)
        if (tok.licence_id, tok.status_list, tok.status_index) != (
            lid,
            x.status_list,
            x.status_index,
        ):
            p(f"licence {h}: its row does not match its token")
        if s.requests.get(x.request_id) != (RequestState.ISSUED, lid):
            p(f"licence {h}: its request is {s.requests.get(x.request_id)}, not issued")
        if not 0 <= x.status_index < s.reserved.get(x.status_list, 0):
            p(f"licence {h}: status index {x.status_index} was never reserved")
        if s.assets[lid] != len(tok.asset_categories):
            p(f"licence {h}: {s.assets[lid]} asset rows for {len(tok.asset_categories)} assets")
        m = s.money.get(lid)
        if m is None or (m.advertiser_key, m.holder_key) != (x.licensee_key, x.holder_key):
            p(f"licence {h}: no money row for it")
            continue
        escrows = by_licence.get(("ESCROW", lid), [])
        want_escrow = (("advertiser", x.licensee_key, -m.escrow_total), ("escrow", lid, ESCROW))
        if m.escrow_total != ESCROW or [e.entries for e in escrows] != [want_escrow]:
            p(f"licence {h}: escrow postings {[e.entries for e in escrows]}")
        entry = transparency_pb2.LogEntry(licence=x.token).SerializeToString(deterministic=True)
        if [e for _, e in log_of.get(("licence", lid), [])] != [entry]:
            p(f"licence {h}: {len(log_of.get(('licence', lid), []))} log entries, not its one")
        # Revocation: the row's time, the event, the log entry, the closed escrow and refund.
        revoked_logs = log_of.get(("revocation", lid), [])
        refunds = by_licence.get(("REFUND", lid), [])
        left = m.escrow_total - m.time_earned - m.uses_charged * m.price_per_use
        escrow_balance = s.balances.get(("escrow", lid), 0)
        if x.revoked_at:
            ev = events.get(lid)
            if ev is None or ev[1:] != ((x.status_list, x.status_index), x.revoked_at):
                p(f"licence {h}: revoked, its revocation event is {ev}")
            if len(revoked_logs) != 1:
                p(f"licence {h}: revoked, {len(revoked_logs)} revocation log entries")
            else:
                logged = transparency_pb2.LogEntry.FromString(revoked_logs[0][1]).revocation
                if (logged.licence_id, logged.revoked_at) != (lid, x.revoked_at):
                    p(f"licence {h}: its revocation entry says {logged}")
            if not m.closed or escrow_balance != 0:
                p(f"licence {h}: revoked, escrow closed={m.closed} holding {escrow_balance}")
            if [r.entries for r in refunds] != (
                [(("escrow", lid, -left), ("advertiser", x.licensee_key, left))] if left else []
            ):
                p(f"licence {h}: revoked, {left} left, refunds {[r.entries for r in refunds]}")
        elif lid in events or revoked_logs or m.closed or refunds:
            p(
                f"licence {h}: live, yet event/log/closed/refund {lid in events}/"
                f"{len(revoked_logs)}/{m.closed}/{len(refunds)}"
            )
        elif escrow_balance != left:
            p(f"licence {h}: its escrow holds {escrow_balance}, {left} expected")
        # Uses: each counted once, charged once.
        charged = by_licence.get(("USE", lid), [])
        if not x.uses == uses_of[lid] == m.uses_charged == len(charged):
            p(
                f"licence {h}: uses {x.uses}, reports {uses_of[lid]}, charged {m.uses_charged},"
                f" USE postings {len(charged)}"
            )
        if uses_after.get(lid, set()) != set(range(1, x.uses + 1)):
            p(f"licence {h}: use reports counted {sorted(uses_after.get(lid, set()))}")
        accrued = sum(
            -a
            for post in by_licence.get(("ACCRUAL", lid), [])
            for k, _, a in post.entries
            if k == "escrow"
        )
        if accrued != m.time_earned:
            p(f"licence {h}: accruals moved {accrued}, its money row says {m.time_earned}")

    # Nothing of a licence that is not there (an issuance or a revocation half-applied).
    for rid, (state, lid) in s.requests.items():
        if state == RequestState.ISSUED and lid not in s.licences:
            p(f"request {rid.hex()} is issued, its licence {lid.hex()} is missing")
    orphans = (
        set(s.money)
        | set(s.assets)
        | {post.licence_id for post in s.postings if post.licence_id}
        | {lid for _, _, kind, lid in s.log if kind in ("licence", "revocation")}
        | set(events)
        | {lid for lid, _ in s.uses.values()}
    ) - set(s.licences)
    if orphans:
        p(f"rows of licences that do not exist: {sorted(x.hex() for x in orphans)}")
    if [seq for seq, *_ in s.revocations] != list(range(1, len(s.revocations) + 1)):
        p("revocation sequence numbers are not 1..n")

    # The ledger: each posting balances, each balance is its entries, money is conserved.
    if s.stray_entries:
        p(f"{s.stray_entries} ledger entries belong to no posting")
    derived: Counter[tuple[str, bytes]] = Counter()
    for post in s.postings:
        if sum(a for *_, a in post.entries) != 0 or not post.entries:
            p(f"posting {post} does not balance")
        for kind, key, amount in post.entries:
            derived[(kind, key)] += amount
    for account in set(derived) | set(s.balances):
        if derived[account] != s.balances.get(account, 0):
            p(
                f"balance of {account[0]} {account[1].hex()} is {s.balances.get(account)},"
                f" its entries sum to {derived[account]}"
            )
        if account[0] != "external" and s.balances.get(account, 0) < 0:
            p(f"{account[0]} {account[1].hex()} is negative")
    deposited = withdrawn = 0
    present_deposits: set[str] = set()
    present_withdrawals: set[bytes] = set()
    for post in s.postings:
        if post.kind == "DEPOSIT":
            d = journal.deposits.get(post.reference)
            want = (
                None
                if d is None
                else (
                    b"deposit\x00" + d.reference.encode(),
                    (("external", b"", -d.amount), ("advertiser", d.advertiser_key, d.amount)),
                )
            )
            if d is None or (post.idempotency, post.entries) != want:
                p(f"deposit {post.reference!r} is not one the operator sent: {post}")
                continue
            present_deposits.add(d.reference)
            deposited += d.amount
        elif post.kind == "WITHDRAWAL":
            w = journal.withdrawals.get(post.idempotency or b"")
            if w is None or (post.reference, post.entries) != (
                w.payout,
                (("holder", w.holder_key, -w.amount), ("external", b"", w.amount)),
            ):
                p(f"withdrawal {post} is not one a holder asked for")
                continue
            present_withdrawals.add(w.stored_key)
            withdrawn += w.amount
    if len(present_deposits) != sum(post.kind == "DEPOSIT" for post in s.postings):
        p("a deposit reference was credited twice")
    internal = sum(v for (kind, _), v in s.balances.items() if kind != "external")
    external = s.balances.get(("external", b""), 0)
    if not internal == -external == deposited - withdrawn:
        p(
            f"the exchange holds {internal}, external says {-external}; the deposits applied"
            f" less the withdrawals applied are {deposited - withdrawn}"
        )

    # The journal: acknowledged means there, refused means absent.
    for lid, issue in journal.issues.items():
        there = s.licences.get(lid)
        if issue.outcome == ACK and (there is None or there.token != issue.token):
            p(f"acknowledged licence {lid.hex()} (round {issue.round}) is lost or changed")
        if issue.outcome == REFUSED and there is not None:
            p(f"refused licence {lid.hex()} (round {issue.round}) was issued")
        # Its request was acknowledged: it is there, issued with it or still pending.
        state = s.requests.get(issue.request_id, (0, b""))[0]
        if state != (RequestState.ISSUED if there else RequestState.PENDING):
            p(
                f"request {issue.request_id.hex()} (licence stored: {there is not None}) is in"
                f" state {state}"
            )
    # An erasure revokes every licence its holder had live, in one change: all, or none.
    for er in journal.erasures:
        revoked = {lid for lid in er.live if lid in s.erased}
        if revoked != er.live and (er.outcome == ACK or revoked):
            p(
                f"an erasure ({er.outcome}, round {er.round}) revoked {len(revoked)} of the"
                f" {len(er.live)} licences live then"
            )
    by_erasure = set().union(*(er.live for er in journal.erasures))
    if s.erased - by_erasure:
        p(f"licences revoked by an erasure that was not live then: {len(s.erased - by_erasure)}")
    # An auto-approved request whose answer was lost: stored with its licence, or not at all.
    lost_answers: set[bytes] = set()
    for a in journal.auto:
        lost = s.request_keys.get(a.key)
        if a.outcome != UNKNOWN or lost is None:
            continue
        lost_answers.add(lost)
        state, lid = s.requests.get(lost, (0, b""))
        if state != RequestState.ISSUED or lid not in s.licences:
            p(f"auto-approved request {lost.hex()} (answer lost) is in state {state}, unissued")
    unknown_licences = {
        lid
        for lid in set(s.licences) - set(journal.issues)
        if s.licences[lid].request_id not in lost_answers
    }
    if unknown_licences:
        p(f"licences nobody approved: {sorted(x.hex() for x in unknown_licences)}")
    for lid, (rnd, outcome) in journal.revocations.items():
        there = s.licences.get(lid)
        if outcome == ACK and (there is None or not there.revoked_at):
            p(f"acknowledged revocation of {lid.hex()} (round {rnd}) is lost")
        if outcome == REFUSED and there is not None and there.revoked_at:
            p(f"refused revocation of {lid.hex()} (round {rnd}) was applied")
    for rid, u in journal.uses.items():
        seen = s.uses.get(rid)
        if u.outcome == ACK and seen != (u.licence_id, u.uses):
            p(f"acknowledged use {rid.hex()} (round {u.round}, use {u.uses}) is {seen}")
        if u.outcome == REFUSED and seen is not None:
            p(f"refused use report {rid.hex()} (round {u.round}) was counted")
    if set(s.uses) - set(journal.uses):
        p("use reports no platform sent")
    for ref, d in journal.deposits.items():
        if (d.outcome == ACK) > (ref in present_deposits):
            p(f"acknowledged deposit {ref} (round {d.round}) is lost")
        if d.outcome == REFUSED and ref in present_deposits:
            p(f"refused deposit {ref} (round {d.round}) was credited")
    for key, w in journal.withdrawals.items():
        if (w.outcome == ACK) > (key in present_withdrawals):
            p(f"acknowledged withdrawal {w.payout} (round {w.round}) is lost")
        if w.outcome == REFUSED and key in present_withdrawals:
            p(f"refused withdrawal {w.payout} (round {w.round}) was paid")

    # The log: contiguous, its stored subtree hashes exactly the tree of its entries, and
    # every checkpoint handed out a prefix of it.
    if [idx for idx, *_ in s.log] != list(range(len(s.log))):
        p("log indexes are not 0..n-1")
    tree = merkle.MemoryNodes.from_entries(entry for _, entry, _, _ in s.log)
    recomputed = {(level, index): digest for level, index, digest in _all_nodes(tree, len(s.log))}
    if recomputed != s.nodes:
        p(f"{len(s.nodes)} stored log nodes, {len(recomputed)} in the tree; or hashes differ")
    for idx, entry, kind, _ in s.log:
        parsed = transparency_pb2.LogEntry.FromString(s.entry(idx, entry)).WhichOneof("kind")
        if parsed != _LOG_KIND.get(kind, kind):
            p(f"log entry {idx} is a {parsed}, filed as {kind}")
    for (size, root), rnd in journal.checkpoints.items():
        if size > len(s.log) or merkle.root(size, tree) != root:
            p(f"checkpoint of size {size} (round {rnd}) is not a prefix of the stored log")
    problems += check_key_sets(s, journal)
    return problems, tree


def _all_nodes(tree: merkle.MemoryNodes, size: int) -> Iterator[tuple[int, int, bytes]]:
    """Every complete aligned subtree of a tree of ``size`` leaves."""
    level = 0
    while size >> level:
        for index in range(size >> level):
            yield level, index, tree.get(level, index)
        level += 1


# -- after the restart: what the exchange answers ------------------------------------------


def check_served(
    rnd: Round, s: Stored, tree: merkle.MemoryNodes, rng: random.Random, data: Path
) -> list[str]:
    """The restarted exchange against the stored state and the journal; problems found."""
    problems: list[str] = []
    p = problems.append
    journal = rnd.journal
    # The log: the same key, a checkpoint of the stored tree, consistent with every earlier one.
    log_key = key_file(data / LOG_KEY_FILE, create=False)
    if log_key is None or vkey(Settings().log_origin, log_key.public) != rnd.log_key.text:
        p("the log key changed across the restart")
    client = rnd.log_client()
    served = client.checkpoint()
    if served.advertised_key != rnd.log_key.text:
        p(f"the exchange now advertises log key {served.advertised_key}")
    now = rnd.log_key.open(served.note)
    if (now.size, now.root) != (len(s.log), merkle.root(len(s.log), tree)):
        p(f"the checkpoint after the restart is of size {now.size}, the stored log {len(s.log)}")
    handed = sorted(journal.checkpoints.items(), key=lambda kv: kv[0][0])
    latest = [cp for cp, r in handed if r >= rnd.number - 1]
    older = [cp for cp, r in handed if r < rnd.number - 1]
    for size, root in latest + rng.sample(older, min(SAMPLE, len(older))):
        ok, why = prove_consistency(client, size, root, now)
        if not ok:
            p(f"checkpoint of size {size}: {why}")
    # Inclusion: the licences of the last round, and a sample of the others.
    recent = [lid for lid, x in journal.issues.items() if x.round >= rnd.number - 1]
    others = sorted(set(s.licences) - set(recent))
    index_of = {lid: idx for idx, _, kind, lid in s.log if kind == "licence"}
    for lid in [x for x in recent if x in s.licences] + rng.sample(
        others, min(SAMPLE, len(others))
    ):
        proof = client.inclusion_proof(lid, now.size)
        token = s.licences[lid].token
        promise = parse_token(token).promise
        logged = transparency_pb2.LogEntry.FromString(proof.entry)
        # What the licensee checks: the entry at the promised index commits to its token.
        if (
            promise is None
            or proof.index != index_of.get(lid)
            or proof.index != promise.index
            or logged.sealed.commitment != sealed.licence_commitment(token)
            or not merkle.verify_inclusion(
                proof.entry, proof.index, now.size, proof.proof, now.root
            )
        ):
            p(f"licence {lid.hex()}: its inclusion proof does not verify")
    # The status list: the signed snapshot and the feed say exactly what the tables say.
    platform = rnd.party(rnd.parties.platform)
    issuer_keys = IssuerKeySet.from_proto(
        platform.call(
            licences_pb2,
            "GetIssuerKeys",
            licences_pb2.GetIssuerKeysRequest(),
            licences_pb2.GetIssuerKeysResponse,
        ).keys
    )
    snap = verify_snapshot(
        platform.call(
            licences_pb2,
            "GetStatusSnapshot",
            licences_pb2.GetStatusSnapshotRequest(),
            licences_pb2.GetStatusSnapshotResponse,
        ).snapshot.SerializeToString(deterministic=True),
        issuer_keys,
    )
    revoked_indexes = {
        (s.licences[lid].status_list, s.licences[lid].status_index) for lid in s.revoked()
    }
    set_bits = {
        (x.list_id, i)
        for x in snap.lists
        for i in range(x.bit_length)
        if StatusList(x.bits, x.bit_length).is_revoked(i)
    }
    if set_bits != revoked_indexes or snap.sequence != len(s.revocations):
        p(
            f"the status snapshot (sequence {snap.sequence}) sets {len(set_bits)} bits,"
            f" {len(revoked_indexes)} licences are revoked ({len(s.revocations)} events)"
        )
    if s.revocations:
        # The feed replays the last events (a late subscriber's catch-up) in order.
        tail = s.revocations[-FEED_TAIL:]
        feed = cast(
            "Generator[licences_pb2.WatchRevocationsResponse, None, None]",
            platform.rpc.server_stream(
                method_path(licences_pb2, "WatchRevocations"),
                licences_pb2.WatchRevocationsRequest(after_sequence=tail[0][0] - 1),
                licences_pb2.WatchRevocationsResponse,
                60.0,
            ),
        )
        got: list[tuple[int, int, int]] = []
        try:
            for msg in feed:
                if msg.HasField("event"):
                    got.append((msg.event.sequence, msg.event.status_list, msg.event.status_index))
                if len(got) == len(tail) or msg.HasField("heartbeat"):
                    break
        finally:
            feed.close()
        if got != [(seq, lst, index) for seq, index, _, _, lst in tail]:
            p(f"the revocation feed replays {got[:3]}..., the events are {tail[:3]}...")
    # The acknowledged licences and revocations of the round, as their holders see them.
    holders = {k.public.raw: k for k in rnd.parties.holders}
    for lid, issue in journal.issues.items():
        if issue.round != rnd.number or issue.outcome != ACK:
            continue
        got_lic = (
            rnd.party(holders[issue.holder_key])
            .call(
                licences_pb2,
                "GetLicence",
                licences_pb2.GetLicenceRequest(licence_id=lid),
                licences_pb2.GetLicenceResponse,
            )
            .licence
        )
        revoked_ack = journal.revocations.get(lid, (0, REFUSED))[1] == ACK
        if got_lic.token != issue.token or (revoked_ack and not got_lic.revoked_at):
            p(f"licence {lid.hex()} is served as {got_lic}")
    # The store's own audit of the ledger.
    store = SqliteStore(data / DB_FILE, read_only=True)
    try:
        problems += [f"ledger_check: {x}" for x in store.ledger_check()]
    finally:
        store.close()
    return problems


def retry_unanswered(rnd: Round, s: Stored) -> list[str]:
    """Clients retry, on the restarted exchange, what the round's crash left unanswered (and
    the operator re-sends every payment): what was applied answers as a replay of itself,
    what was not applies now. The journal learns the outcome; problems found are returned."""
    problems: list[str] = []
    p = problems.append
    journal, number = rnd.journal, rnd.number
    holders = {k.public.raw: k for k in rnd.parties.holders}

    def resolve(what: str, outcome: str, applied: bool) -> None:
        if outcome == UNKNOWN:
            journal.resolved[f"{what} {'applied' if applied else 'absent'}"] += 1

    present = {post.reference for post in s.postings if post.kind == "DEPOSIT"}
    operator = rnd.party(rnd.parties.operator)
    for d in [d for d in journal.deposits.values() if d.round == number]:
        again = deposit(operator, d.advertiser_key, d.amount, d.reference)
        if again.replayed != (d.reference in present) or again.line.amount_minor != d.amount:
            p(
                f"deposit {d.reference} ({d.outcome}, stored: {d.reference in present}) re-sent:"
                f" replayed={again.replayed}"
            )
        resolve("Deposit", d.outcome, d.reference in present)
        d.outcome = ACK
    paid = {post.idempotency for post in s.postings if post.kind == "WITHDRAWAL"}
    for w in [w for w in journal.withdrawals.values() if w.round == number]:
        if w.outcome == REFUSED:
            continue
        was_paid = w.stored_key in paid
        resolve("Withdraw", w.outcome, was_paid)
        try:
            again_w = withdraw(rnd.party(holders[w.holder_key]), w)
        except ExchangeError as e:
            # Not paid before, and the balance no longer covers it: still nothing paid.
            if was_paid or e.reason != Reason.INSUFFICIENT_FUNDS:
                p(f"withdrawal {w.payout} ({w.outcome}, stored: {was_paid}) re-sent: {e!r}")
            w.outcome = REFUSED
            continue
        if again_w.replayed != was_paid:
            p(
                f"withdrawal {w.payout} ({w.outcome}, stored: {was_paid}) re-sent:"
                f" replayed={again_w.replayed}"
            )
        w.outcome = ACK
    photoless = {k for k in holders if k not in s.photos}
    for er in [x for x in journal.erasures if x.round == number and x.outcome == UNKNOWN]:
        applied = any(lid in s.erased for lid in er.live) or er.holder_key not in s.photos
        resolve("EraseAssets", er.outcome, applied)
        erased = erase_photo(rnd.party(holders[er.holder_key]))
        # Applied before: nothing is left to erase or revoke; absent: all of it now.
        want = set() if applied else set(er.live)
        if set(erased.revoked_licence_ids) != want:
            p(f"erasure re-sent (applied: {applied}): revoked {len(erased.revoked_licence_ids)}")
        er.outcome = ACK
        photoless.add(er.holder_key)  # erased by now, either way
    for k in photoless:
        declare_photo(rnd.party(holders[k]))
    auto_holder = rnd.parties.holders[AUTO_WORKER]
    for a in [a for a in journal.auto if a.round == number and a.outcome == UNKNOWN]:
        stored_rid = s.request_keys.get(a.key)
        resolve(AUTO, a.outcome, stored_rid is not None)
        reply = request_licence(
            rnd.party(a.advertiser),
            auto_holder.public.raw,
            days=DAYS,
            max_uses=MAX_USES,
            price_per_use=PER_USE,
            idempotency_key=a.key,
            now=a.sent_at,
        )
        if not reply.HasField("licence"):
            p(f"auto-approved request re-sent: no licence in {reply}")
            continue
        rid, lid = reply.request.request_id, reply.licence.licence_id
        if stored_rid is not None and (rid, lid) != (stored_rid, s.requests[stored_rid][1]):
            p(f"auto-approved request {stored_rid.hex()} re-sent: answered {rid.hex()}")
            continue
        journal.issues[lid] = Issue(
            lid,
            rid,
            reply.request.claims,
            auto_holder.public.raw,
            number,
            ACK,
            reply.licence.token,
        )
        a.outcome = ACK
    for issue in [x for x in journal.issues.values() if x.round == number and x.outcome == UNKNOWN]:
        holder = rnd.party(holders[issue.holder_key])
        request = records_pb2.LicenceRequest(request_id=issue.request_id, claims=issue.claims)
        there = s.licences.get(issue.licence_id)
        resolve("ApproveRequest", issue.outcome, there is not None)
        try:
            issue.token = approve_request(holder, request).licence.token
        except ExchangeError as e:
            # Issued before the crash: the request is no longer pending.
            if there is None or e.reason != Reason.REQUEST_NOT_PENDING:
                p(
                    f"approval of {issue.licence_id.hex()} (stored: {there is not None}) re-sent:"
                    f" {e!r}"
                )
                continue
            issue.token = there.token
        else:
            if there is not None:
                p(f"licence {issue.licence_id.hex()} was issued twice")
        issue.outcome = ACK
    for lid, (rnd_of, outcome) in list(journal.revocations.items()):
        if rnd_of != number or outcome != UNKNOWN:
            continue
        lic = s.licences.get(lid)
        if lic is None:
            p(f"licence {lid.hex()}, revoked in round {rnd_of}, is lost")
            continue
        resolve("RevokeLicence", outcome, bool(lic.revoked_at))
        answer = rnd.party(holders[lic.holder_key]).call(
            licences_pb2,
            "RevokeLicence",
            licences_pb2.RevokeLicenceRequest(licence_id=lid),
            licences_pb2.RevokeLicenceResponse,
        )
        # A revocation that was applied answers with its first time; one that was not, now.
        revoked_at = answer.licence.revoked_at
        if not revoked_at or (lic.revoked_at and revoked_at != lic.revoked_at):
            p(
                f"revocation of {lid.hex()} re-sent: revoked at {revoked_at},"
                f" stored {lic.revoked_at}"
            )
        journal.revocations[lid] = (rnd_of, ACK)
    for rid, u in journal.uses.items():
        if u.round != number or u.outcome != UNKNOWN:
            continue
        seen = s.uses.get(rid)
        resolve("ReportUse", u.outcome, seen is not None)
        try:
            u.uses = send_use_report(rnd, u.report_id, u.token).uses
        except ExchangeError as e:
            if seen is not None or e.reason not in USE_REFUSALS:
                p(f"use report {rid.hex()} (stored: {seen}) re-sent: {e!r}")
            u.outcome = REFUSED
            continue
        if seen is not None and seen[1] != u.uses:
            p(f"use report {rid.hex()} counted as use {seen[1]}, its retry says {u.uses}")
        u.outcome = ACK
    problems += retry_key_changes(rnd, s)
    return problems


def retry_key_changes(rnd: Round, s: Stored) -> list[str]:
    """A key-set change left unanswered was applied (its bytes are in the chain) or not; a
    removal that was not is sent again, built on the set read now (a compromised key must
    go). Each account's chain served now is the stored one, and replays."""
    problems: list[str] = []
    owners = {k.public.raw: k for k in (*rnd.parties.holders, *rnd.parties.advertisers)}
    for kc in [x for x in rnd.journal.key_changes if x.round == rnd.number]:
        if kc.outcome != UNKNOWN:
            continue
        applied = s.key_change(kc.account, kc.signed)
        rnd.journal.resolved[f"ChangeKeySet {'applied' if applied else 'absent'}"] += 1
        kc.outcome = ACK if applied else REFUSED  # absent: never sent again as such
        if applied or kc.adding:
            continue
        owner = owners[kc.account]
        current = accounts.verified(get_key_set(rnd.party(owner))).current
        if current.key(kc.key) is None:
            continue
        signed = accounts.remove_key(
            current, owner, kc.key, compromised=kc.compromised, at=int(time.time())
        )
        send_key_change(rnd.party(owner), signed)
        again = keyset.decode_change(signed).change
        if signed.SerializeToString(deterministic=True) == kc.signed:
            kc.outcome = ACK  # the very same change (the same set, the same second)
            continue
        rnd.journal.key_changes.append(
            KeyChange(
                kc.account,
                signed.SerializeToString(deterministic=True),
                again.sequence,
                kc.key,
                False,
                kc.compromised,
                rnd.number,
                ACK,
            )
        )
    for account in sorted({kc.account for kc in rnd.journal.key_changes}):
        answer = get_key_set(rnd.party(owners[account]))
        served = accounts.verified(answer)
        stored = s.key_changes.get(account, [])
        if answer.account != account or served.current.sequence < len(stored):
            problems.append(
                f"account {account.hex()[:16]}: served at sequence {served.current.sequence},"
                f" {len(stored)} changes stored"
            )
    return problems


# -- the test ---------------------------------------------------------------------------------


def _register(address: str, parties: Parties, journal: Journal) -> None:
    """Register everyone and credit the advertisers (before the first crash)."""
    with grpc.insecure_channel(address) as ch:

        def party(k: PrivateKey) -> Party:
            return Party(k, SignedChannel(ch, k, timeout=CALL_TIMEOUT))

        for i, h in enumerate(parties.holders):
            register_holder(party(h), f"holder{i}")
            party(h).call(
                ledger_pb2,
                "AddPayoutDestination",
                ledger_pb2.AddPayoutDestinationRequest(reference=f"iban-{i}"),
                ledger_pb2.AddPayoutDestinationResponse,
            )
        _add_standing_rule(party(parties.holders[AUTO_WORKER]))
        register_platform(party(parties.platform), PLATFORM_ID)
        operator = party(parties.operator)
        for i, a in enumerate(parties.advertisers):
            register_advertiser(party(a), f"Advertiser {i}", funds=0)
            ref = f"opening-{i}"
            deposit(operator, a.public.raw, OPENING_FUNDS, ref)
            journal.deposits[ref] = Deposit(ref, a.public.raw, OPENING_FUNDS, 0, ACK)


def _add_standing_rule(holder: Party) -> None:
    """The holder auto-approves what the workload asks of it: its photo, online in France
    for advertising, at its price or more, for up to a year."""
    now = int(time.time())
    rule = StandingRule(
        rule_id=secrets.token_bytes(16),
        holder=holder.key.public,
        scope=Scope.from_proto(ad_scope()),
        asset_sha256=frozenset({PHOTO_SHA}),
        not_before=now - 86400,
        not_after=now + 365 * 86400,
        max_term_seconds=365 * 86400,
        min_price_per_day_minor=100,
        currency="EUR",
    )
    add_standing_rule(holder, rule)


def _run_round(
    number: int,
    server: Server,
    parties: Parties,
    journal: Journal,
    s: Stored,
    key: LogKey,
    rng: random.Random,
) -> Round:
    """Run the workload against ``server`` and kill it at a random moment."""
    channel = grpc.insecure_channel(server.address)
    live: list[list[tuple[bytes, str]]] = [[] for _ in parties.holders]
    holder_index = {k.public.raw: i for i, k in enumerate(parties.holders)}
    for lid, x in s.licences.items():
        if not x.revoked_at:
            live[holder_index[x.holder_key]].append((lid, x.token))
    # The keys holder's licences are used by none (they bind service keys: see service_key).
    usable = [t for pool in live[:WORKERS] for t in pool]
    rnd = Round(number, journal, channel, parties, key, live, usable)
    threads = [
        threading.Thread(target=rnd.work, args=(i, random.Random(rng.getrandbits(64))))
        for i in range(WORKERS)
    ]
    threads.append(threading.Thread(target=rnd.watch_log))
    for t in threads:
        t.start()
    # Kill at a random moment once the work is under way (the first acknowledgement).
    deadline = time.monotonic() + 60
    while rnd.acks == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(rng.uniform(0.0, 1.0))
    rnd.killed.set()
    rnd.stop.set()
    _kill(server)
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a client thread did not stop"
    channel.close()
    return rnd


def test_sigkill_at_random_moments_loses_nothing_and_half_applies_nothing(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    where = f"[seed {SEED}: replay with LICENTIA_CRASH_SEED={SEED}]"
    print(where)  # shown with any failure, an unforeseen exception too
    data = tmp_path / "data"
    journal = Journal()
    started = time.monotonic()
    server = _spawn(data, tmp_path, 0)
    try:
        operator = key_file(data / OPERATOR_KEY_FILE, create=False)
        log_signer = key_file(data / LOG_KEY_FILE, create=False)
        assert operator is not None
        assert log_signer is not None
        parties = Parties(
            holders=[PrivateKey.from_seed(rng.randbytes(32)) for _ in range(WORKERS + 1)],
            advertisers=[PrivateKey.from_seed(rng.randbytes(32)) for _ in range(2)],
            platform=PrivateKey.from_seed(rng.randbytes(32)),
            operator=operator,
            secret=secret_in(data),
        )
        log_key = LogKey.parse(vkey(Settings().log_origin, log_signer.public))
        _register(server.address, parties, journal)
        stored = Stored.read(data / DB_FILE)
        for number in range(1, ROUNDS + 1):
            rnd = _run_round(number, server, parties, journal, stored, log_key, rng)
            context = f"{where} round {number}: {journal.summary()}"
            progress(f"crash round {number}/{ROUNDS}: {journal.summary()}")
            assert not journal.unexpected, f"{context}\n" + "\n".join(journal.unexpected)
            stored = Stored.read(data / DB_FILE)
            problems, tree = check_tables(stored, journal)
            assert not problems, f"{context}; the dead server's tables:\n" + "\n".join(problems)
            server = _spawn(data, tmp_path, number)
            rnd.channel = grpc.insecure_channel(server.address)  # the clients reconnect
            try:
                problems = check_served(rnd, stored, tree, rng, data)
                problems += retry_unanswered(rnd, stored)
            except LicentiaError as e:  # a call refused, a signature that does not verify
                problems = [f"checking the restarted server: {e!r}"]
            finally:
                rnd.channel.close()
            assert not problems, f"{context}; the restarted server ({server.log}):\n" + "\n".join(
                problems
            )
            stored = Stored.read(data / DB_FILE)  # with the retries
        problems, _ = check_tables(stored, journal)
        assert not problems, f"{where} after the last retries:\n" + "\n".join(problems)
        print(
            f"{where} {ROUNDS} crashes in {time.monotonic() - started:.1f} s: {journal.summary()}"
        )
        # The workload did what it claims: every kind of operation was acknowledged...
        counts = f"{where} {journal.summary()}"
        assert any(x.outcome == ACK for x in journal.issues.values()), counts
        auto_key = parties.holders[AUTO_WORKER].public.raw
        assert any(x.holder_key == auto_key for x in journal.issues.values()), counts
        assert any(o == ACK for _, o in journal.revocations.values()), counts
        assert any(x.outcome == ACK and x.live for x in journal.erasures), counts
        assert any(x.outcome == ACK for x in journal.uses.values()), counts
        assert any(x.outcome == ACK and x.round for x in journal.deposits.values()), counts
        assert any(x.outcome == ACK for x in journal.withdrawals.values()), counts
        assert any(x.outcome == ACK and x.adding for x in journal.key_changes), counts
        assert any(x.outcome == ACK and not x.adding for x in journal.key_changes), counts
        # A service key removed as compromised revoked the licences bound to it.
        by_key = Cause.LICENSEE_KEY_COMPROMISED
        assert ROUNDS < 5 or by_key in stored.causes.values(), counts
        # ... and the crashes caught changes in flight (nearly every kill does).
        writes = (
            "ApproveRequest",
            AUTO,
            "RevokeLicence",
            "EraseAssets",
            "ReportUse",
            "Deposit",
            "Withdraw",
        )
        assert ROUNDS < 5 or any(journal.in_flight[w] for w in writes), counts
    finally:
        _kill(server)


#: Kills during a first start per run (``LICENTIA_STARTUP_CRASH_ROUNDS``).
STARTUP_ROUNDS = int(os.environ.get("LICENTIA_STARTUP_CRASH_ROUNDS", "5"))


def test_sigkill_during_a_first_start_never_stops_the_next_one(tmp_path: Path) -> None:
    """A first start creates the keys and the database and runs every migration. Killed at
    a random moment of it (late in the start, where those happen), the exchange must start
    again on what it left, with keys that are whole and a database that is usable."""
    rng = random.Random(SEED)
    where = f"[seed {SEED}: replay with LICENTIA_CRASH_SEED={SEED}]"
    t0 = time.monotonic()
    _kill(_spawn(tmp_path / "timing", tmp_path, 0))
    start_seconds = time.monotonic() - t0
    for number in range(1, STARTUP_ROUNDS + 1):
        progress(f"startup crash round {number}/{STARTUP_ROUNDS}")
        data = tmp_path / f"data-{number}"
        port_file = tmp_path / "port"
        port_file.unlink(missing_ok=True)
        proc = subprocess.Popen(
            [sys.executable, "-m", "licentia.services.server", "--data-dir", str(data),
             "--listen", "127.0.0.1:0", "--port-file", str(port_file)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(rng.uniform(0.6, 1.05) * start_seconds)
        proc.kill()
        proc.wait(timeout=30)
        server = _spawn(data, tmp_path, number)  # fails the test if it cannot start
        try:
            channel = grpc.insecure_channel(server.address)
            try:
                holder = PrivateKey.from_seed(rng.randbytes(32))
                profile = (
                    SignedChannel(channel, holder)
                    .unary(
                        methods.path(registry_pb2, "RegisterHolder"),
                        registry_pb2.RegisterHolderRequest(
                            handle=f"holder-{number}", display_name="H"
                        ),
                        registry_pb2.RegisterHolderResponse,
                    )
                    .profile
                )
                assert profile.key == holder.public.raw, where
            finally:
                channel.close()
            for name in (OPERATOR_KEY_FILE, LOG_KEY_FILE):
                assert len((data / name).read_bytes()) == 32, f"{where} {name}"
        finally:
            _kill(server)
