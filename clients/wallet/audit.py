"""``licentia-wallet audit``: the independent auditor's run, for the licences in your name.

The log itself is checked by :class:`~licentia.clients.auditor.audit.Auditor` (the same code
as ``licentia-audit``), limited to the holder's entries. Since token v2 those are sealed to
her account: the wallet asks for the account's log key (GetLogKey, which also states how
many entries are about her) and the auditor finds her entries by their tags, opens them and
checks each as a clear entry (both signatures and her consent, a standing-rule licence
opened against her own rules, ListStandingRules; her revocations; her key-set changes).

The wallet adds what only the holder can check: she found at least as many entries as the
exchange counts (fewer: entries hidden from the log), each licence the exchange lists for her
is in the log (a v2 licence at the index it promises, in an entry of hers committing to its
exact token; an inclusion proof) with its revocation, and her account's key set: the changes
logged for her account, in log order, are exactly the chain the exchange states
(GetKeySet), that chain verifies from her account id, the exchange's current set is the one
it ends with, and the key this wallet signs with is in it. Each logged change is shown (its
kind, the keys it added and removed, its cause and time) so that she can recognise one she
did not make.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from pathlib import Path

from licentia import merkle, pairwise, sealed
from licentia.checkpoint import Checkpoint
from licentia.errors import LicentiaError
from licentia.token import DEFAULT_MAX_TERM_SECONDS, parse_token
from licentia.v1 import accounts_pb2, records_pb2

from .. import logcheck
from ..accounts import key_text, verified
from ..auditor.audit import Auditor, Problem
from ..auditor.holder import hidden_entries
from ..auditor.keysets import KeySetAudit, check_holder_chain
from ..auditor.state import AuditState, StateError
from ..channel import ExchangeError
from .render import _out
from .session import OperationFailedError, Session, _read_first_line


def cmd_audit(s: Session) -> None:
    """Check the exchange's public log for everything in your name.

    Keeps, next to the wallet (``<wallet>.audit/``, the auditor's state), the last
    checkpoint it trusted; checks that the new one extends it (nothing rewritten), reads only
    the new entries, recomputes the tree, finds your own (sealed) entries with your
    account's log key, checks every licence in your name was approved by you (or by a
    standing rule you signed) and every revocation of yours was signed by you, that none of
    your entries is missing, then checks that each licence the exchange lists for you is in
    the log (inclusion proof) with its revocation. Exit 1 on a problem.
    """
    try:
        state = AuditState.open(s.wallet.with_name(s.wallet.name + ".audit"))
    except StateError as e:
        raise OperationFailedError(str(e)) from None
    try:
        _audit(s, state)
    finally:
        state.close()


def _audit(s: Session, state: AuditState) -> None:
    log = s.holder.log()
    given = s.args.log_key
    if given and given.startswith("@"):
        given = _read_first_line(Path(given[1:])).strip()
    pinned = state.log_key()
    notes: list[str] = []
    if given and pinned and given != pinned:
        raise OperationFailedError("this wallet already trusts another log key")
    log_key_text = given or pinned
    if not log_key_text:
        log_key_text = log.checkpoint().advertised_key
        notes.append(f"Trusting the exchange's log key on first use: {log_key_text}")
    try:
        log_key = logcheck.LogKey.parse(log_key_text)
    except LicentiaError as e:
        raise OperationFailedError(f"the log's checkpoint is not signed by its key: {e}") from None
    try:
        answer = s.holder.key_set_answer()
    except ExchangeError as e:
        raise OperationFailedError(f"the exchange does not serve your key set: {e}") from None
    account = answer.account
    if len(account) != 32:
        raise OperationFailedError("the exchange's answer names no account for your key set")
    try:
        # Before the checkpoint: every entry counted here is in the tree read after it.
        stated = s.holder.log_key()
        rules = s.holder.standing_rules()
    except ExchangeError as e:
        raise OperationFailedError(f"the exchange does not serve your log key: {e}") from None
    if len(stated.log_key) != sealed.LOG_KEY_BYTES:
        raise OperationFailedError("the exchange's answer holds no log key for your account")
    # The key her entries were found with is pinned: under another one, the entries sealed
    # under the first (and a count to match) could be hidden from every later audit.
    digest = hashlib.sha256(stated.log_key).digest()
    pinned_key = state.account_log_key()
    if pinned_key is not None and not hmac.compare_digest(pinned_key, digest):
        raise OperationFailedError(
            "the exchange now gives another log key for your account than the one your"
            " earlier audits found your entries with: entries sealed under that one could be"
            " hidden from you; keep this report as evidence"
        )
    state.pin_account_log_key(digest)
    listed = s.holder.licences()  # before the checkpoint: each must be in the tree it signs
    auditor = Auditor(
        log,
        log_key,
        state,
        DEFAULT_MAX_TERM_SECONDS,
        holder=_devices(s, answer) | _pseudonyms(s, listed),
        account=account,
        sealed_key=stated.log_key,
        rules=rules,
    )
    report = auditor.run()
    checkpoint = report.checkpoint
    if checkpoint is None:
        why = "; ".join(p.message for p in report.problems)
        raise OperationFailedError(f"the log's checkpoint is not signed by its key: {why}")
    problems = [_said(p) for p in report.earlier + report.problems]
    chain = KeySetAudit(account)
    found = state.sealed_found()
    if report.advanced:
        problems += hidden_entries(found, stated.entries)
        problems += _listed_licences(listed, state, log, checkpoint)
        chain = check_holder_chain(s.key.public.raw, answer, state.logged_changes(account))
        problems += chain.problems
    _audit_report(
        s,
        problems,
        notes,
        {
            "log_size": checkpoint.size,
            "entries_checked": report.new.entries,
            "your_licences": report.totals.licences,
            "your_revocations": report.totals.revocations,
            "your_entries_found": found,
            "your_entries_stated": stated.entries,
        },
        {"key_set": {"account": key_text(account), "changes": chain.changes}},
        chain.lines,
    )


def _devices(s: Session, answer: accounts_pb2.GetKeySetResponse) -> set[bytes]:
    """Every device key the account's chain ever had (each consents in the holder's name),
    and this wallet's; only this wallet's when the chain does not verify (the key-set check
    then says why)."""
    try:
        found = verified(answer)
    except LicentiaError:
        return {s.key.public.raw}
    return {k.public for keys in found.sets for k in keys.keys if k.is_device} | {s.key.public.raw}


def _pseudonyms(s: Session, listed: Iterable[records_pb2.LicenceRecord]) -> set[bytes]:
    """The holder's pairwise keys (token-format §1b) for every licensee account she knows of:
    those of the licences ``listed`` for her and of the requests she was sent. A licence
    under one of them needs that key's consent, which the exchange cannot forge."""
    try:
        secret = s.holder_secret
    except OperationFailedError:  # a joined device still waiting for it
        return set()
    licensees = {x.licensee_key for x in listed}
    licensees |= {r.advertiser_key for r in s.holder.inbox(True)}
    return {pairwise.pairwise_key(secret, a).public.raw for a in licensees if len(a) == 32}


def _said(p: Problem) -> str:
    """A problem the auditor found, in the wallet's words."""
    if p.index is None:
        return p.message
    if p.kind == "licence_consent":
        return f"licence at entry {p.index}: {p.message} (you never approved it)"
    if p.kind.startswith(("licence", "revocation")):
        return f"{p.kind.split('_')[0]} at entry {p.index}: {p.message}"
    return f"entry {p.index}: {p.message}"


def _listed_licences(
    licences: Iterable[records_pb2.LicenceRecord],
    state: AuditState,
    log: logcheck.LogClient,
    checkpoint: Checkpoint,
) -> list[str]:
    """Each licence the exchange lists for the holder is in the log, with its revocation: a
    v2 licence at the index it promises, in an entry of hers (found by her audit) that
    commits to its exact token; a v1 licence in clear. Each is proved included in the
    audited ``checkpoint``."""
    problems = []
    size, root = checkpoint.size, checkpoint.root
    for x in licences:
        lid = x.licence_id.hex()
        seen = state.licence(x.licence_id)
        try:
            promise = parse_token(x.token).promise
        except LicentiaError:
            problems.append(f"the exchange lists licence {lid} with a token that does not parse")
            continue
        if seen is None or (promise is not None and promise.index != seen[1]):
            where = "" if promise is None else f": it promises entry {promise.index},"
            problems.append(
                f"licence {lid} is not in the public log{where}"
                + (" which holds no entry of yours for it" if where else "")
            )
            continue
        try:
            proof = log.inclusion_proof(x.licence_id, size, index=seen[1])
        except ExchangeError as e:
            problems.append(f"no inclusion proof for licence {lid}: {e}")
            continue
        included = merkle.verify_inclusion(proof.entry, seen[1], size, list(proof.proof), root)
        if not included or not _logs_token(proof.entry, x.token):
            problems.append(f"the inclusion proof of licence {lid} does not verify")
        if x.revoked_at and seen[2] is None:
            problems.append(f"the revocation of licence {lid} is missing from the log")
    return problems


def _logs_token(data: bytes, token: str) -> bool:
    """Whether the entry ``data`` logs exactly ``token`` (in clear, or sealed: its
    commitment)."""
    try:
        entry = logcheck.decode_entry(data)
    except LicentiaError:
        return False
    if entry.WhichOneof("kind") == "sealed":
        return entry.sealed.commitment == sealed.licence_commitment(token)
    return entry.WhichOneof("kind") == "licence" and entry.licence == token


def _audit_report(
    s: Session,
    problems: list[str],
    notes: list[str],
    figures: dict[str, int] | None = None,
    extra: dict[str, object] | None = None,
    details: list[str] | None = None,
) -> None:
    """Print the audit's report; raise (exit 1) when it found a problem."""
    figures = figures or {}
    lines = list(notes)
    if "log_size" in figures:
        lines.append(
            f"The public log has {figures['log_size']} entries;"
            f" {figures['entries_checked']} new ones checked."
        )
    if "your_entries_found" in figures:
        lines.append(
            f"Entries about you (sealed, read with your log key): {figures['your_entries_found']}"
            f" found; the exchange counts {figures['your_entries_stated']}."
        )
    if problems:
        lines.append(f"{len(problems)} problem(s) found:")
        lines.extend(f"  - {p}" for p in problems)
    else:
        lines.append(
            f"In your name: {figures['your_licences']} licence(s),"
            f" {figures['your_revocations']} revoked; each approved by you and in the log."
        )
    lines.extend(details or [])
    _out(s.args, {**figures, **(extra or {}), "problems": problems}, "\n".join(lines))
    if problems:
        raise OperationFailedError(f"{len(problems)} problem(s) in the public log")


__all__ = ["cmd_audit"]
