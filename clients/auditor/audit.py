"""One audit run: verify the checkpoint, prove it extends the last one, check what is new.

:meth:`Auditor.run` never trusts the exchange: the checkpoint must be signed by the pinned
log key; it must extend the last trusted checkpoint (a consistency proof); the new entries
must hash, with the stored frontier, to exactly its root; and each entry is checked for what
it says (:mod:`licentia.clients.logcheck`). Only when the root matches does the state move on
to the new checkpoint; otherwise nothing but the checkpoint seen (and a proven fork) is
recorded, and the next run checks the same entries again.
"""

from __future__ import annotations

import base64
from collections.abc import Collection
from dataclasses import dataclass, field, fields

from licentia import keyset
from licentia.checkpoint import Checkpoint
from licentia.errors import LicentiaError
from licentia.token import parse_token
from licentia.v1 import accounts_pb2, transparency_pb2

from ..accounts import key_text, summarise
from ..channel import ExchangeError, ExchangeUnavailable
from ..logcheck import (
    Finding,
    LicenceFacts,
    LogClient,
    LoggedKeys,
    LogKey,
    LogServeError,
    check_account_erasure,
    check_licence,
    check_revocation,
    decode_entry,
    locate_divergence,
    prove_consistency,
)
from .state import AuditState, ChainState, StateError, StoredProblem, Totals

#: At most this many intermediate roots are kept in a run to locate a rewritten entry.
MAX_ROOTS = 1 << 16
#: Problems of a run whose checkpoint is not trusted that still stay on record (a proven
#: fork). Problems in entries stay on record once their checkpoint is trusted; the others
#: (bad signature, root mismatch, entries not served) are found again by every run.
PERSISTENT = frozenset({"inconsistent_checkpoint"})


@dataclass(frozen=True, slots=True)
class Problem:
    """A problem found: its ``kind``, a message, and the entry / licence it is about."""

    kind: str
    message: str
    index: int | None = None
    licence_id: bytes | None = None

    def to_json(self) -> dict[str, object]:
        """The JSON form (licence id in hex)."""
        return {
            "kind": self.kind,
            "entry": self.index,
            "licence_id": self.licence_id.hex() if self.licence_id else None,
            "message": self.message,
        }


@dataclass
class Counts:
    """What a range of entries held."""

    entries: int = 0
    licences: int = 0
    revocations: int = 0
    key_events: int = 0
    key_set_changes: int = 0

    def to_json(self) -> dict[str, int]:
        """The JSON form."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


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
    ) -> None:
        self.client = client
        self.log_key = log_key
        self.state = state
        self.max_term_seconds = max_term_seconds
        self.holder: frozenset[bytes] | None = (
            None if holder is None else frozenset([holder] if isinstance(holder, bytes) else holder)
        )
        self.account = account or (holder if isinstance(holder, bytes) else None)

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
        checker = _EntryChecker(
            state, keys, self.max_term_seconds, report, self.holder, self.account
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


class _EntryChecker:
    """Checks entries one by one, in log order, against what came before them."""

    def __init__(
        self,
        state: AuditState,
        keys: LoggedKeys,
        max_term_seconds: int,
        report: AuditReport,
        holder: frozenset[bytes] | None = None,
        account: bytes | None = None,
    ) -> None:
        self.state = state
        self.holder = holder
        self.account = account
        self.keys = keys
        self.max_term_seconds = max_term_seconds
        self.report = report
        self.counts = Counts()

    def _flag(self, findings: list[Finding], index: int, licence_id: bytes | None) -> None:
        self.report.problems.extend(Problem(f.kind, f.message, index, licence_id) for f in findings)

    def check(self, index: int, data: bytes) -> None:
        """Check entry ``index`` (its exact bytes)."""
        self.counts.entries += 1
        try:
            entry = decode_entry(data)
        except LicentiaError as e:
            self._flag([Finding("entry_unreadable", f"an unreadable entry ({e})")], index, None)
            return
        kind = entry.WhichOneof("kind")
        if kind == "licence":
            self._licence(index, entry.licence)
        elif kind == "revocation":
            self._revocation(index, entry.revocation)
        elif kind == "key_set_change":
            self._key_set_change(index, entry.key_set_change)
        elif kind == "account_erasure":
            self._flag(check_account_erasure(entry.account_erasure), index, None)
        else:
            self._key_event(index, entry.issuer_key)

    def _key_set_change(self, index: int, signed: accounts_pb2.SignedKeySetChange) -> None:
        account = _account_of(signed)
        if account is None:
            self._flag(
                [Finding("key_set_chain", "a key-set change that names no account")], index, None
            )
            return
        if self.holder is not None and account == self.account:
            # The wallet's audit: keep her changes as logged; the wallet checks the chain
            # whole against the one the exchange states. Other accounts' chains are checked
            # as the auditor does: a licence of hers revoked because its licensee's key was
            # compromised is checked against the licensee's chain.
            self.counts.key_set_changes += 1
            chain = self.state.key_set(account)
            number = chain.changes + 1
            if number <= keyset.MAX_CHAIN + 1:
                self.state.add_logged_change(
                    account, number, index, signed.SerializeToString(deterministic=True)
                )
            self.state.save_key_set(ChainState(chain.current, number, chain.broken_entry))
            return
        if self.holder is None:
            self.counts.key_set_changes += 1
        chain = self.state.key_set(account)
        number = chain.changes + 1
        if chain.broken_entry is not None:
            # Flagged once, where it broke: what follows cannot be checked against it.
            self.state.save_key_set(ChainState(chain.current, number, chain.broken_entry))
            return
        try:
            after = keyset.apply_change(chain.current, signed)
        except LicentiaError as e:
            what = summarise(chain.current, signed).words()
            self._flag(
                [
                    Finding(
                        "key_set_chain",
                        f"change #{number} of account {key_text(account)} ({what}) breaks its"
                        f" chain: {e}; its later changes are not checked",
                    )
                ],
                index,
                None,
            )
            self.state.save_key_set(ChainState(chain.current, number, index))
            return
        self.state.save_key_set(ChainState(after, number))
        self.state.add_key_owners(account, [k.public for k in after.keys])

    def _licence(self, index: int, token: str) -> None:
        if self.holder is not None and _holder_of(token) not in self.holder:
            return  # another holder's licence: not this audit's
        self.counts.licences += 1
        facts, findings = check_licence(token, self.keys, self.max_term_seconds)
        licence_id = facts.licence_id if facts is not None else None
        self._flag(findings, index, licence_id)
        if facts is None:
            return
        seen = self.state.licence(facts.licence_id)
        if seen is not None:
            self._flag(
                [
                    Finding(
                        "licence_duplicate", f"the licence id was already logged at entry {seen[1]}"
                    )
                ],
                index,
                licence_id,
            )
            return
        self.state.add_licence(facts, index)

    def _revocation(self, index: int, rev: transparency_pb2.LoggedRevocation) -> None:
        licence_id = rev.licence_id if len(rev.licence_id) == 16 else None
        seen = self.state.licence(licence_id) if licence_id is not None else None
        if self.holder is not None and seen is None:
            return  # not one of the holder's licences (only hers are remembered)
        self.counts.revocations += 1
        facts: LicenceFacts | None = seen[0] if seen is not None else None
        findings = check_revocation(rev, facts, self._same_account)
        if seen is not None and seen[2] is not None:
            findings.append(
                Finding(
                    "revocation_duplicate", f"the licence was already revoked at entry {seen[2]}"
                )
            )
        self._flag(findings, index, licence_id)
        if licence_id is not None and seen is not None:
            self.state.mark_revoked(licence_id, index)

    def _same_account(self, a: bytes, b: bytes) -> bool:
        """Whether two keys are of one account: the holder's own keys in the wallet's audit,
        the logged chains' keys in the auditor's."""
        if self.holder is not None and a in self.holder and b in self.holder:
            return True
        return self.state.same_account(a, b)

    def _key_event(self, index: int, event: transparency_pb2.LoggedIssuerKey) -> None:
        self.counts.key_events += 1
        before = self.keys.get(event.key_id)
        findings, _ = self.keys.apply(event)
        self._flag(findings, index, None)
        record = self.keys.get(event.key_id)
        # A window closed by this event: a licence its key signed stamped at or after the
        # end was issued outside it (the window was still open when it was logged).
        if before is not None and record is not None and record.not_after != before.not_after:
            for licence_id, entry, issued_at in self.state.licences_issued_from(
                record.key_id, record.not_after
            ):
                self._flag(
                    [
                        Finding(
                            "licence_issuer_key",
                            f"issued at {issued_at} with an issuer key whose window closed at"
                            f" {record.not_after} (entry {index})",
                        )
                    ],
                    entry,
                    licence_id,
                )


def _account_of(signed: accounts_pb2.SignedKeySetChange) -> bytes | None:
    """The account a key-set change names (read leniently), or ``None``."""
    change = accounts_pb2.KeySetChange()
    try:
        change.ParseFromString(signed.change)
    except Exception:  # noqa: BLE001 - any unreadable change names no account
        return None
    return change.account if len(change.account) == 32 else None


def _holder_of(token: str) -> bytes:
    """The holder a licence token names (unverified), or ``b""`` when it does not parse."""
    try:
        return parse_token(token).holder_key
    except LicentiaError:
        return b""
