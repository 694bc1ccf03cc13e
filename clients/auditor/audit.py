"""One audit run: verify the checkpoint, prove it extends the last one, check what is new.

:meth:`Auditor.run` never trusts the exchange: the checkpoint must be signed by the pinned
log key; it must extend the last trusted checkpoint (a consistency proof); the new entries
must hash, with the stored frontier, to exactly its root; and each entry is checked for what
it says (:mod:`licentia.clients.logcheck`). Only when the root matches does the state move on
to the new checkpoint; otherwise nothing but the checkpoint seen (and a proven fork) is
recorded, and the next run checks the same entries again.

Since token v2 every entry about an account is sealed to it (:mod:`licentia.sealed`): the
independent auditor checks such an entry's form and counts it, and can no longer see the
licences, revocations and key-set chains inside; issuer-key events, and every entry from
before v2, stay clear and are checked as before. The wallet's audit (``holder=``, with the
account's log key) finds and opens the holder's own sealed entries (:mod:`.holder`) and
checks each plaintext exactly as a clear entry.
"""

from __future__ import annotations

import base64
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, fields

from licentia.checkpoint import Checkpoint
from licentia.errors import LicentiaError
from licentia.v1 import records_pb2

from ..channel import ExchangeError, ExchangeUnavailable
from ..logcheck import (
    LogClient,
    LogKey,
    LogServeError,
    locate_divergence,
    prove_consistency,
)
from .entries import Counts, EntryChecker, Problem
from .holder import HolderLog
from .state import AuditState, StateError, StoredProblem, Totals

__all__ = ["AuditReport", "Auditor", "Counts", "Problem"]

#: At most this many intermediate roots are kept in a run to locate a rewritten entry.
MAX_ROOTS = 1 << 16
#: Problems of a run whose checkpoint is not trusted that still stay on record (a proven
#: fork). Problems in entries stay on record once their checkpoint is trusted; the others
#: (bad signature, root mismatch, entries not served) are found again by every run.
PERSISTENT = frozenset({"inconsistent_checkpoint"})


@dataclass
class AuditReport:
    """The outcome of one run (see :meth:`Auditor.run`)."""

    origin: str
    #: The checkpoint served this run, once its signature verified.
    checkpoint: Checkpoint | None = None
    #: The last trusted checkpoint before this run: ``(size, root)``.
    previous: tuple[int, bytes] | None = None
    #: The entries checked this run: ``[first, end)``.
    first: int = 0
    end: int = 0
    new: Counts = field(default_factory=Counts)
    totals: Counts = field(default_factory=Counts)
    problems: list[Problem] = field(default_factory=list)
    #: Problems on record from earlier runs.
    earlier: list[Problem] = field(default_factory=list)
    #: The key the exchange advertises, when it is not the pinned one (never trusted).
    advertised_key: str | None = None
    #: Whether the state moved on to :attr:`checkpoint`.
    advanced: bool = False
    #: The wallet's audit: the highest number of the holder's sealed entries found (in
    #: this run or before), ``None`` without her log key.
    sealed_found: int | None = None

    @property
    def ok(self) -> bool:
        """No problem, now or on record."""
        return not self.problems and not self.earlier

    def to_json(self) -> dict[str, object]:
        """The JSON document ``--json`` prints."""
        cp = self.checkpoint
        return {
            "ok": self.ok,
            "origin": self.origin,
            "checkpoint": None if cp is None else {"size": cp.size, "root": _b64(cp.root)},
            "previous_checkpoint": None
            if self.previous is None
            else {"size": self.previous[0], "root": _b64(self.previous[1])},
            "checked": {"first_entry": self.first, "end": self.end, **self.new.to_json()},
            "totals": self.totals.to_json(),
            "state_advanced": self.advanced,
            "problems": [p.to_json() for p in self.problems],
            "earlier_problems": [p.to_json() for p in self.earlier],
            "advertised_log_key": self.advertised_key,
            "sealed_entries_found": self.sealed_found,
        }


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


class Auditor:
    """Audits one exchange's log with a state directory (see the module notes).

    ``max_term_seconds`` is the longest licence term the exchange promises. With ``holder``
    (a holder's raw public key, or every device key her account ever had: the wallet's
    audit) only the licences those keys consented to, and the revocations of those, are
    checked, counted and remembered; the log's integrity and its issuer-key events are
    checked in full either way.

    Every account's key-set changes are checked as a chain, in log order and across runs
    (:func:`licentia.keyset.apply_change` from the account's genesis, one change at a time,
    as :func:`licentia.keyset.verify_chain` does): a change that does not chain or verify is
    a ``key_set_chain`` problem. With ``holder``, only the changes of ``account`` (the
    holder's account id; ``holder`` by default, when it is one key) are kept, as logged,
    for the wallet to check against the chain the exchange states
    (:meth:`AuditState.logged_changes`).

    A sealed entry is checked for its form only (:func:`~..logcheck.check_sealed_form`) and
    counted, unless ``sealed_key`` (the holder's account's log key, GetLogKey) finds it to be
    one of the holder's (:class:`.holder.HolderLog`): it is then opened and its plaintext
    checked as a clear entry of hers, and a licence issued under a standing rule is opened
    against ``rules`` (her standing rules, ListStandingRules). The keys of
    ``holder`` are the ones that may consent and revoke in her name: a licence opened from
    her entries approved by any other key is a ``licence_consent`` problem (so a caller
    whose holder signs with per-licensee keys passes those keys too).
    """

    def __init__(
        self,
        client: LogClient,
        log_key: LogKey,
        state: AuditState,
        max_term_seconds: int,
        *,
        holder: bytes | Collection[bytes] | None = None,
        account: bytes | None = None,
        sealed_key: bytes | None = None,
        rules: Sequence[records_pb2.StandingRuleRecord] = (),
    ) -> None:
        self.client = client
        self.log_key = log_key
        self.state = state
        self.max_term_seconds = max_term_seconds
        self.holder: frozenset[bytes] | None = (
            None if holder is None else frozenset([holder] if isinstance(holder, bytes) else holder)
        )
        self.account = account or (holder if isinstance(holder, bytes) else None)
        self.sealed_key = sealed_key
        self.rules = rules

    def run(self) -> AuditReport:
        """Audit what is new since the last run; the report.

        Raises :class:`StateError` for a state of another log, and
        :class:`~licentia.clients.channel.ExchangeError` when the exchange cannot be
        reached or refuses to serve its checkpoint (the state is then left as it was).
        """
        state = self.state
        pinned = state.log_key()
        if pinned is not None and pinned != self.log_key.text:
            raise StateError(
                f"this state directory audits the log with the key {pinned!r}, not the one"
                " given: use another --state-dir for another log"
            )
        report = AuditReport(self.log_key.origin)
        report.earlier = [
            Problem(p.kind, p.message, p.entry, p.licence_id) for p in state.problems()
        ]
        trusted = state.trusted()
        before = state.totals()
        report.totals = Counts(**{f.name: getattr(before, f.name) for f in fields(Totals)})
        if trusted is not None:
            report.previous = (trusted.size, trusted.root)
            report.first = report.end = trusted.size

        served = self.client.checkpoint()
        if served.advertised_key and served.advertised_key != self.log_key.text:
            report.advertised_key = served.advertised_key
        try:
            cp = self.log_key.open(served.note)
        except LicentiaError as e:
            hint = (
                f"; the exchange advertises the key {served.advertised_key!r}: if that is"
                " the one its operator publishes, --log-key is wrong"
                if report.advertised_key
                else ""
            )
            report.problems.append(
                Problem(
                    "checkpoint_signature",
                    f"the checkpoint is not validly signed by the log key ({e}){hint}",
                )
            )
            state.record_checkpoint(None, None, served.note[:65536], "bad_signature")
            state.commit()
            return report
        report.checkpoint = cp

        if trusted is not None:
            ok, why = prove_consistency(self.client, trusted.size, trusted.root, cp)
            if not ok:
                report.problems.append(
                    Problem(
                        "inconsistent_checkpoint",
                        f"the log's history was rewritten: the checkpoint of {cp.size} entries"
                        f" does not extend the one of {trusted.size} trusted before ({why});"
                        " both signed notes are kept in the state directory",
                    )
                )
                self._finish(report, cp, served.note, "inconsistent")
                return report

        self._check_entries(report, cp, served.note)
        return report

    def _check_entries(self, report: AuditReport, cp: Checkpoint, note: str) -> None:
        state = self.state
        frontier = state.frontier()
        keys = state.issuer_keys()
        start = frontier.size
        stride = max(1, (cp.size - start) // MAX_ROOTS)
        roots = [(start, frontier.root())]
        mine = None if self.sealed_key is None else HolderLog(self.sealed_key, state.sealed_found())
        checker = EntryChecker(
            state,
            keys,
            self.max_term_seconds,
            report.problems,
            self.holder,
            self.account,
            mine,
            self.rules,
        )
        try:
            for e in self.client.entries(start, cp.size):
                frontier.append(e.data)
                checker.check(e.index, e.data)
                if (frontier.size - start) % stride == 0 and frontier.size < cp.size:
                    roots.append((frontier.size, frontier.root()))
        except ExchangeUnavailable:
            state.rollback()
            raise
        except (LogServeError, ExchangeError) as e:
            message = e.message if isinstance(e, ExchangeError) else str(e)
            report.problems.append(
                Problem(
                    "log_unserved",
                    f"the exchange does not serve the entries its checkpoint commits to: {message}",
                )
            )
            self._finish(report, cp, note, "unserved")
            return
        report.end = frontier.size
        report.new = checker.counts
        if mine is not None:
            report.sealed_found = mine.found
        if frontier.root() != cp.root:
            good, bad = locate_divergence(self.client, roots, cp)
            if bad == good + 1:
                where, index = f"entry {good} is not the one the exchange committed to", good
            else:
                where, index = f"an entry in {good}..{bad - 1} was changed", None
            report.problems.insert(  # first: what it means for the rest
                0,
                Problem(
                    "root_mismatch",
                    f"the entries served do not hash to the signed root of {cp.size} entries:"
                    f" {where} (the log was rewritten behind the exchange's back, or the"
                    " exchange serves other entries than it signed)",
                    index,
                ),
            )
            self._finish(report, cp, note, "root_mismatch")
            return
        totals = Totals(
            *(
                getattr(report.totals, f.name) + getattr(checker.counts, f.name)
                for f in fields(Totals)
            )
        )
        state.save_issuer_keys(keys.records())
        if mine is not None:
            state.save_sealed_found(mine.found)
        state.save_progress(self.log_key.text, cp.size, cp.root, note, frontier, totals)
        state.add_problems(
            StoredProblem(p.kind, p.message, p.index, p.licence_id) for p in report.problems
        )
        state.record_checkpoint(cp.size, cp.root, note, "trusted")
        state.commit()
        report.totals = Counts(**{f.name: getattr(totals, f.name) for f in fields(Totals)})
        report.advanced = True

    def _finish(self, report: AuditReport, cp: Checkpoint, note: str, verdict: str) -> None:
        """End a run whose checkpoint is not trusted: forget its entries, keep the evidence."""
        state = self.state
        state.rollback()
        state.record_checkpoint(cp.size, cp.root, note, verdict)
        state.add_problems(
            StoredProblem(p.kind, p.message, p.index, p.licence_id)
            for p in report.problems
            if p.kind in PERSISTENT
        )
        state.commit()
