"""The holder's key-set chain against the public log (the wallet's ``audit``).

The auditor (:mod:`.audit`, with ``holder=``) keeps the changes logged for her account, in log
order; :func:`check_holder_chain` compares them with what the exchange states (GetKeySet):

(a) the logged changes are exactly, byte for byte and in order, the chain the exchange
    states: a change it hides from her, or shows her but never logged, is a problem;
(b) the logged chain verifies from her account id (:func:`licentia.keyset.verify_chain`;
    the change that does not is named, with what it does);
(c) the exchange's current set is the one the logged chain ends with (a key it added in its
    database only is "a key which no logged change added");
(d) the key the wallet signs with is in that set.

Each logged change is also summarised (kind, keys added and removed, cause, time, signer),
for her to recognise one she did not make.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from licentia import keyset
from licentia.errors import LicentiaError
from licentia.v1 import accounts_pb2

from ..accounts import key_text, summarise

__all__ = ["KeySetAudit", "check_holder_chain"]


@dataclass
class KeySetAudit:
    """What the key-set check found: problems, lines to show, the changes as JSON."""

    account: bytes
    problems: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    changes: list[dict[str, object]] = field(default_factory=list)


def _when(at: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(at))


def check_holder_chain(
    signing_key: bytes,
    answer: accounts_pb2.GetKeySetResponse,
    logged: list[tuple[int, bytes]],
) -> KeySetAudit:
    """Check the holder's key set against the changes logged for her account (see the
    module notes); every change logged is also listed, for her to recognise."""
    account = answer.account
    out = KeySetAudit(account)
    changes = [accounts_pb2.SignedKeySetChange.FromString(raw) for _, raw in logged]
    # (a) The chain the exchange states is, byte for byte and in order, the one it logged.
    served = [c.SerializeToString(deterministic=True) for c in answer.changes]
    for n in range(1, max(len(served), len(logged)) + 1):
        if n > len(logged):
            out.problems.append(
                f"the exchange shows your key set's change #{n}, which is not in the public log"
            )
        elif n > len(served):
            out.problems.append(
                f"change #{n} of your key set (log entry {logged[n - 1][0]}) is hidden: the"
                " exchange does not show it to you"
            )
        elif served[n - 1] != logged[n - 1][1]:
            out.problems.append(
                f"change #{n} of your key set differs from the one in the public log"
                f" (entry {logged[n - 1][0]})"
            )
    # (b) The logged chain verifies from her account id.
    sets = [keyset.genesis(account)]
    broken = False
    try:
        sets = keyset.verify_chain(account, changes)
    except LicentiaError:
        broken = True
        for n, signed in enumerate(changes, start=1):
            try:
                sets.append(keyset.apply_change(sets[-1], signed))
            except LicentiaError as e:
                what = summarise(sets[-1], signed).words()
                out.problems.append(
                    f"change #{n} of your key set (log entry {logged[n - 1][0]}: {what}) is"
                    f" refused: {e}"
                )
                break
    if len(logged) > keyset.MAX_CHAIN:
        out.problems.append(f"your key set's chain in the log is longer than {keyset.MAX_CHAIN}")
    # What each logged change did, for her to recognise (information, not a verdict).
    if changes:
        out.lines.append(f"Your key set: {len(changes)} change(s) in the public log:")
    for n, signed in enumerate(changes, start=1):
        summary = summarise(sets[min(n, len(sets)) - 1], signed)
        out.lines.append(f"  #{n} {_when(summary.at)}: {summary.words()}")
        out.changes.append({"number": n, "entry": logged[n - 1][0], **summary.to_json()})
    if broken:
        return out
    current = sets[-1]
    # (c) The exchange's current set is the one the logged chain ends with.
    chained = {k.public: k.role for k in current.keys}
    stated = {k.public_key: k.role for k in answer.keys}
    for public, role in stated.items():
        if public not in chained:
            out.problems.append(
                f"the exchange's key set has {key_text(public)} which no logged change added"
            )
        elif role != chained[public]:
            out.problems.append(
                f"the exchange states another role for {key_text(public)} than the logged chain"
            )
    for public in chained:
        if public not in stated:
            out.problems.append(
                f"the exchange's key set lacks {key_text(public)}, which the logged chain has"
            )
    if answer.sequence != current.sequence:
        out.problems.append(
            f"the exchange says your key set is at change #{answer.sequence}; the public log"
            f" has {current.sequence}"
        )
    # (d) The key this wallet signs with is in that set.
    if current.key(signing_key) is None:
        out.problems.append(
            f"the key this wallet signs with ({key_text(signing_key)}) is not in your key set"
            " as the public log has it"
        )
    return out
