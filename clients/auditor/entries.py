"""Checking the log's entries one by one, in log order (the body of :class:`.audit.Auditor`).

:class:`EntryChecker` reads each entry against what came before it (the issuer keys, the
licences and key-set chains remembered in the :class:`.state.AuditState`): a clear entry
(from before token v2, or opened from the holder's own sealed entry) for what it says, a
sealed one for its form, an issuer-key event for what it changes.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import dataclass, fields, replace

from licentia import keyset
from licentia.errors import LicentiaError
from licentia.token import Approval, RuleCommitment, UnverifiedLicence, parse_token
from licentia.v1 import accounts_pb2, records_pb2, transparency_pb2

from ..accounts import key_text, summarise
from ..logcheck import (
    Finding,
    LicenceFacts,
    LoggedKeys,
    check_account_erasure,
    check_licence,
    check_revocation,
    check_sealed_form,
    decode_entry,
)
from .holder import HolderLog, check_rule_consent
from .state import AuditState, ChainState

__all__ = ["Counts", "EntryChecker", "Problem"]


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
    #: Sealed entries (each about one account, whose contents only it can read): counted
    #: and checked for their form.
    sealed: int = 0

    def to_json(self) -> dict[str, int]:
        """The JSON form."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


class EntryChecker:
    """Checks entries one by one, in log order, against what came before them."""

    def __init__(
        self,
        state: AuditState,
        keys: LoggedKeys,
        max_term_seconds: int,
        problems: list[Problem],
        holder: Container[bytes] | None = None,
        account: bytes | None = None,
        mine: HolderLog | None = None,
        rules: Sequence[records_pb2.StandingRuleRecord] = (),
    ) -> None:
        self.state = state
        self.mine = mine
        self.rules = rules
        self.holder = holder
        self.account = account
        self.keys = keys
        self.max_term_seconds = max_term_seconds
        self.problems = problems
        self.counts = Counts()

    def _flag(self, findings: list[Finding], index: int, licence_id: bytes | None) -> None:
        self.problems.extend(Problem(f.kind, f.message, index, licence_id) for f in findings)

    def check(self, index: int, data: bytes) -> None:
        """Check entry ``index`` (its exact bytes)."""
        self.counts.entries += 1
        try:
            entry = decode_entry(data)
        except LicentiaError as e:
            self._flag([Finding("entry_unreadable", f"an unreadable entry ({e})")], index, None)
            return
        kind = entry.WhichOneof("kind")
        if kind == "sealed":
            self._sealed(index, entry.sealed)
        elif kind == "issuer_key":
            self._key_event(index, entry.issuer_key)
        else:
            self._clear(index, entry)

    def _clear(self, index: int, entry: transparency_pb2.LogEntry, own: bool = False) -> None:
        """A clear entry about an account: logged so before v2, or opened from one of the
        holder's sealed entries (``own``)."""
        kind = entry.WhichOneof("kind")
        if kind == "licence":
            self._licence(index, entry.licence, own)
        elif kind == "revocation":
            self._revocation(index, entry.revocation, own)
        elif kind == "account_erasure":
            self._flag(check_account_erasure(entry.account_erasure), index, None)
        else:
            self._key_set_change(index, entry.key_set_change, own)

    def _sealed(self, index: int, entry: transparency_pb2.SealedEntry) -> None:
        self.counts.sealed += 1
        findings = check_sealed_form(entry)
        if findings or self.mine is None:
            self._flag(findings, index, None)
            return
        findings, clear = self.mine.open(index, entry)
        self._flag(findings, index, None)
        if clear is not None:
            self._clear(index, clear, own=True)

    def _key_set_change(
        self, index: int, signed: accounts_pb2.SignedKeySetChange, own: bool = False
    ) -> None:
        account = _account_of(signed)
        if account is None:
            self._flag(
                [Finding("key_set_chain", "a key-set change that names no account")], index, None
            )
            return
        if own and account != self.account:
            self._flag(
                [Finding("key_set_chain", "a key-set change of another account, sealed to yours")],
                index,
                None,
            )
            return
        if self.holder is not None and account == self.account:
            # The wallet's audit: keep her changes as logged; the wallet checks the chain
            # whole against the one the exchange states. Other accounts' chains are checked
            # as the auditor does: a licence of hers revoked because its licensee's key was
            # compromised is checked against the licensee's chain (when logged in clear,
            # before v2: since then another account's chain is sealed to it).
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

    def _licence(self, index: int, token: str, own: bool = False) -> None:
        if self.holder is not None and not own and _holder_of(token) not in self.holder:
            return  # another holder's licence: not this audit's
        self.counts.licences += 1
        facts, findings = check_licence(token, self.keys, self.max_term_seconds)
        licence_id = facts.licence_id if facts is not None else None
        if facts is not None:
            u = parse_token(token)
            if own:
                findings += self._own_licence(index, u, findings)
                # Hers by the log key: a revocation is checked against her account's keys
                # (a v2 licence names a pairwise key, or none under a standing rule).
                facts = replace(facts, holder=self.account or facts.holder)
            elif u.version == 2:
                findings.append(
                    Finding(
                        "licence_in_clear",
                        "a v2 licence logged in clear: it shows its holder's licence to everyone",
                    )
                )
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

    def _own_licence(self, index: int, u: UnverifiedLicence, found: list[Finding]) -> list[Finding]:
        """What only the holder checks of a licence opened from her sealed entry: she (or a
        rule of hers) consented, and the licence promises the entry it is in."""
        out: list[Finding] = []
        consented = not any(f.kind == "licence_consent" for f in found)
        if isinstance(u.consent, Approval) and consented and u.holder_key not in self.holder_keys:
            out.append(
                Finding(
                    "licence_consent",
                    "approved by a key that is not one of yours",
                )
            )
        elif isinstance(u.consent, RuleCommitment):
            out += check_rule_consent(u, self.rules, self.holder_keys)
        if u.promise is not None and u.promise.index != index:
            out.append(
                Finding(
                    "licence_promise",
                    f"the licence promises log entry {u.promise.index}, but it is at {index}",
                )
            )
        return out

    @property
    def holder_keys(self) -> Container[bytes]:
        """The keys that consent and revoke in the holder's name (none outside her audit)."""
        return self.holder if self.holder is not None else frozenset()

    def _revocation(
        self, index: int, rev: transparency_pb2.LoggedRevocation, own: bool = False
    ) -> None:
        licence_id = rev.licence_id if len(rev.licence_id) == 16 else None
        seen = self.state.licence(licence_id) if licence_id is not None else None
        if self.holder is not None and seen is None and not own:
            return  # not one of the holder's licences (only hers are remembered)
        self.counts.revocations += 1
        facts: LicenceFacts | None = seen[0] if seen is not None else None
        findings = check_revocation(rev, facts, self._own_signer if own else self._same_account)
        if seen is not None and seen[2] is not None:
            findings.append(
                Finding(
                    "revocation_duplicate", f"the licence was already revoked at entry {seen[2]}"
                )
            )
        self._flag(findings, index, licence_id)
        if licence_id is not None and seen is not None:
            self.state.mark_revoked(licence_id, index)

    def _own_signer(self, a: bytes, b: bytes) -> bool:
        """For a revocation sealed to the holder: whether ``a`` signed for ``b``. Her own
        revocations (``b`` her account) must be signed by a key of hers. A revocation
        because the licensee's key was compromised is signed by the licensee's account,
        whose key-set chain is sealed to it: the holder checks the call (a change removing
        that key as compromised) but cannot tell whose key signed it."""
        if b == self.account:
            return a in self.holder_keys
        return True

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
