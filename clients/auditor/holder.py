"""The holder's own entries in a log that names nobody (the wallet's audit; token v2).

Since token v2 every log entry about an account — a licence issued to its holder, a
revocation, a change of its key set — is sealed to the account (:mod:`licentia.sealed`):
only whoever holds the account's log key (AccountService.GetLogKey) can find and read it.
:class:`HolderLog` finds the holder's entries as the auditor reads the log, in one pass, with
a :class:`licentia.sealed.TagWindow` that goes on across runs from the highest entry number
found, and opens each; the auditor then checks the plaintext exactly as it checks a clear
entry. What only the holder can tell is flagged here:

- ``sealed_gap``: her entries are numbered 1, 2, 3, … in log order; a number the log skipped
  is an entry the exchange numbered but did not append (or appended out of order);
- ``sealed_unopened``: an entry with her tag that does not open under her key, or whose
  plaintext does not match its commitment;
- ``sealed_repeat``: the tag of a number the log already passed (an entry numbered twice,
  whose box key would then seal two entries, or a skipped number appended later);
- ``licence_consent`` (:func:`check_rule_consent`): a v2 licence issued under a standing
  rule carries only a salted commitment to the rule; it must open to one of her own rules
  (ListStandingRules), signed by one of her keys, in force when the licence was issued, and
  the claims must fall within it (their salted asset digests matched against the rule's
  plain ones).

How many entries the exchange says are about her (GetLogKey) is compared with how many the
audit found by the wallet (:func:`hidden_entries`): fewer found means the log she was shown
lacks some.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Container, Sequence

from licentia import sealed
from licentia.errors import LicentiaError
from licentia.token import (
    Asset,
    LicenceClaims,
    RuleCommitment,
    StandingConsent,
    StandingRule,
    UnverifiedLicence,
    salted_digest,
    verified_rule,
)
from licentia.v1 import records_pb2, transparency_pb2

from ..logcheck import Finding

__all__ = ["HolderLog", "check_rule_consent", "hidden_entries"]


class HolderLog:
    """The holder's sealed entries, found and opened as the log is read in order.

    ``log_key`` is her account's log key; ``found`` the highest entry number an earlier run
    found (the audit state keeps it with the trusted checkpoint).
    """

    def __init__(self, log_key: bytes, found: int = 0) -> None:
        self.log_key = log_key
        self.window = sealed.TagWindow(log_key, found)
        #: Entries of hers opened in this run.
        self.opened = 0
        #: The tags of every number up to ``found``: one seen again is a second entry under
        #: a number already in the log (its box key reused), or one the log skipped
        #: appended later; the window no longer looks for either.
        self._past = {sealed.tag(log_key, j): j for j in range(1, found + 1)}

    @property
    def found(self) -> int:
        """The highest number of her entries found so far."""
        return self.window.found

    def open(
        self, index: int, entry: transparency_pb2.SealedEntry
    ) -> tuple[list[Finding], transparency_pb2.LogEntry | None]:
        """The problems with log entry ``index`` and, when it is one of hers and opens, its
        clear entry; ``([], None)`` for anyone else's entry."""
        before = self.window.found
        again = self._past.get(bytes(entry.tag))
        if again is not None:
            return [
                Finding(
                    "sealed_repeat",
                    f"entry {index} carries the tag of your log entry #{again}, a number the log"
                    " already passed: an entry under a number used twice, or appended out of"
                    " order",
                )
            ], None
        j = self.window.match(entry)
        if j is None:
            return [], None
        for k in range(before + 1, j + 1):
            self._past[sealed.tag(self.log_key, k)] = k
        out: list[Finding] = []
        if j != before + 1:
            missing = f"#{before + 1}" if j == before + 2 else f"#{before + 1} to #{j - 1}"
            out.append(
                Finding(
                    "sealed_gap",
                    f"your log entry #{j} is at entry {index}, but your entry {missing} is not in"
                    " the log before it (numbered by the exchange, never appended)",
                )
            )
        try:
            clear = sealed.open_entry(self.log_key, j, entry)
        except LicentiaError as e:
            out.append(
                Finding(
                    "sealed_unopened", f"your log entry #{j} does not open under your key ({e})"
                )
            )
            return out, None
        self.opened += 1
        return out, clear


def hidden_entries(found: int, stated: int) -> list[str]:
    """The problem, if any, when the audit found ``found`` of the holder's entries and the
    exchange states ``stated`` (GetLogKey, asked before the checkpoint was read)."""
    if found >= stated:
        return []
    return [
        f"the exchange counts {stated} log entries about you, but the public log holds only"
        f" {found}: {stated - found} of them are hidden from the log"
    ]


def _rule_of(
    commitment: RuleCommitment, rules: Sequence[records_pb2.StandingRuleRecord]
) -> tuple[StandingConsent, records_pb2.StandingRuleRecord] | None:
    for record in rules:
        consent = StandingConsent(record.consent.rule, record.consent.holder_signature)
        if commitment.opens_to(consent):
            return consent, record
    return None


def check_rule_consent(
    u: UnverifiedLicence,
    rules: Sequence[records_pb2.StandingRuleRecord],
    own_keys: Container[bytes],
) -> list[Finding]:
    """Every problem with the consent of a v2 licence issued under a standing rule (its
    consent a :class:`~licentia.token.RuleCommitment`), as its holder checks it with her own
    ``rules`` (in force and withdrawn) and the keys of her account (``own_keys``).

    The commitment must open to one of her rules; the rule must be signed by the key it
    names, one of hers; it must have been in force (and not withdrawn) at issue; and the
    claims must fall within it (:meth:`licentia.token.StandingRule.permits`, the claims'
    salted asset digests matched with the rule's plain ones)."""
    commitment = u.consent
    if not isinstance(commitment, RuleCommitment):
        return []
    found = _rule_of(commitment, rules)
    if found is None:
        return [
            Finding(
                "licence_consent",
                "issued under a standing rule that is none of yours (its commitment opens to"
                " no rule you signed)",
            )
        ]
    consent, record = found
    try:
        rule = verified_rule(StandingRule.decode(consent.rule_bytes).holder.raw, consent)
    except LicentiaError:
        rule = None
    if rule is None or rule.holder.raw not in own_keys:
        return [Finding("licence_consent", "issued under a standing rule you did not sign")]
    out: list[Finding] = []
    withdrawn = record.withdrawn_at
    if not rule.not_before <= u.issued_at < rule.not_after or (
        withdrawn and u.issued_at > withdrawn
    ):
        out.append(Finding("licence_consent", "issued under a standing rule that was not in force"))
    claims = LicenceClaims.decode(u.claims_bytes)
    plain = {salted_digest(u.asset_salt, d): d for d in rule.asset_sha256}
    assets = tuple(Asset(a.category, plain.get(a.sha256, a.sha256)) for a in claims.assets)
    try:
        as_plain = dataclasses.replace(
            claims, holder=rule.holder, assets=assets, asset_salt=b"", status_list=0
        )
    except LicentiaError:  # two salted digests of one plain asset: not within any rule
        as_plain = None
    if as_plain is None or rule.permits(as_plain):
        out.append(
            Finding(
                "licence_consent", "issued under a standing rule of yours that does not cover it"
            )
        )
    return out
