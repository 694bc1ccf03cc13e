"""``licentia-wallet check FILE``: does an ad she came across carry a licence in her name?

The file's Content Credentials are read (``licentia.content.read``, trusting the content
roots the exchange's issuer keys sign) and checked as every checker does, for any use
(``licentia.content.check_licence``: the credentials, the token authenticated under the
exchange's issuer keys, its promise copies, the signer the licensee, an uncounted licence,
the asset named by the claims, the term; the live status is the exchange's listing). The
licence is hers when its id is one of the licences issued in her name. She is told which
licence (short id, the advertiser, scope and term), whether it is still valid (active at the
exchange, the file's token exactly the one the exchange issued her, and every check holding;
each failure in plain words), and she is offered to revoke it on the spot: the passphrase
first, then y/N, as every confirmation (``--yes`` answers yes; without a terminal and without
``--yes`` the revoke command is shown instead). Revoking is offered only for a file the
licensee made under her licence and that every checker allows. A file that merely names her
licence (a token that does not verify or is not hers, copied into someone else's file, an
edited one) or that checkers refuse already fails every check; revoking would end the
advertiser's licensed use, not stop that file, so she is told so and shown the revoke
command, and ``--yes`` revokes nothing.
A licence the exchange does not list for her, whose token authenticates and names her (her
pairwise key for its licensee, or her account key), is "issued in your name but NOT listed by
the exchange" (token-format §3.7): she is told to keep the file and run the audit.
A file with no licence whose SHA-256 is one of her declared assets "uses your declared
<label> with no licence"; a licence that is not hers is said to be so, with no offer to
revoke.
"""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path
from typing import Any

from licentia import content, pairwise
from licentia.errors import LicentiaError, Reason
from licentia.token import RuleCommitment, StandingConsent, UnverifiedLicence, parse_token
from licentia.v1 import records_pb2
from licentia.verify import Decision, VerificationEngine

from ..verifier.files import FileCheck
from .commands import _advertiser, _labels, _my_licences, _organisations
from .render import _LSTATE, _dict, _out, _shown, describe_claims
from .session import OperationFailedError, Session, _confirm

__all__ = ["cmd_check"]

#: The verdicts of ``check`` (its JSON ``verdict``).
YOURS, NOT_YOURS, YOUR_ASSET, NO_LICENCE = "yours", "not_yours", "your_asset", "no_licence"
#: A licence in her name (its token authenticates and names her key) the exchange does not
#: list for her (token-format §3.7).
UNLISTED = "unlisted"
#: The reasons that say the file is not the licensee's own (its credentials or signer).
_NOT_THE_LICENSEES = {
    Reason.CONTENT_MODIFIED,
    Reason.CONTENT_CREDENTIAL_UNTRUSTED,
    Reason.CONTENT_SIGNER_NOT_LICENSEE,
}


def _read(path: Path, max_bytes: int) -> bytes:
    try:
        with path.open("rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as e:
        raise OperationFailedError(f"cannot read {str(path)!r}: {e.strerror}") from None
    if len(data) > max_bytes:
        raise OperationFailedError(
            f"{str(path)!r} is over {max_bytes} bytes: a file this large is not checked"
        )
    return data


class _Listed:
    """The licence's live status as the exchange lists it for her (a
    :class:`~licentia.verify.StatusSource`): revoked when listed revoked, unconfirmed
    (STATUS_STALE) when not listed at all."""

    def __init__(self, record: records_pb2.LicenceRecord | None) -> None:
        self.record = record

    def check(self, status_list: int, status_index: int, now: int) -> Reason | None:
        if self.record is None:
            return Reason.STATUS_STALE
        if self.record.state == records_pb2.LICENCE_STATE_REVOKED:
            return Reason.REVOKED
        return None


def _why(reading: content.Reading, decision: Decision) -> list[str]:
    """Each reason of ``decision`` in plain words (as ``licentia-verify --file`` says it)."""
    said = FileCheck(decision, reading.state, failures=reading.failures)
    return [said.reason_line(r) for r in decision.reasons]


def _in_her_name(s: Session, parsed: UnverifiedLicence) -> bool:
    """True when the licence names her as its holder: her pairwise key for its licensee
    (token-format §1b), or her account key; or, issued under a standing rule (no holder key
    named), when its rule commitment opens to one of her standing rules."""
    if isinstance(parsed.consent, RuleCommitment):
        commitment = parsed.consent
        return any(
            commitment.opens_to(StandingConsent(r.consent.rule, r.consent.holder_signature))
            for r in s.holder.standing_rules()
        )
    if parsed.holder_key == s.key.public.raw:
        return True
    try:
        secret = s.holder_secret
    except OperationFailedError:  # a joined device still waiting for it
        return False
    return pairwise.pairwise_key(secret, parsed.licensee_key).public.raw == parsed.holder_key


def cmd_check(s: Session) -> None:
    """Check a file for a licence in your name; offer to revoke it."""
    path = Path(s.args.file)
    data = _read(path, content.MAX_FILE_BYTES)
    digest = hashlib.sha256(data).digest()
    reading = content.read(data, None, s.holder.content_roots())
    labels = _labels(s)
    a = reading.assertion
    doc: dict[str, Any] = {
        "file": {
            "sha256": digest.hex(),
            "state": reading.state,
            "detail": reading.detail,
            "organisation": reading.organisation,
            "signer": reading.signer,
            "signer_verified": reading.state == "trusted",
            "licence_id": None,
            "licence_verified": False,
        },
        "verdict": NO_LICENCE,
        "licence": None,
        "licensee_organisation": "",
        "valid": False,
        "credentials_ok": False,
        "reasons": [],
        "asset_label": labels.get(digest, ""),
        "revoked": None,
    }
    if a is None:
        label = labels.get(digest)
        if label is not None:
            doc["verdict"] = YOUR_ASSET
            text = f"This file uses your declared {label} with no licence."
        else:
            text = "This file carries no Licentia licence."
        if reading.assertion_error is not None:
            text += f" (Its Licentia assertion is unreadable: {reading.assertion_error}.)"
        _out(s.args, doc, text)
        return
    try:
        licence_id = parse_token(a.token).licence_id
    except LicentiaError as e:
        _out(s.args, doc, f"This file carries a licence that does not parse ({e.reason.name}).")
        return
    mine = {x.licence_id: x for x in _my_licences(s)}
    record = mine.get(licence_id)
    engine = VerificationEngine(s.holder.issuer_keys(), _Listed(record), cache_size=0)
    auth = engine.authenticated(a.token)  # the token alone: whatever the file's credentials
    decision = content.check_licence(reading, engine, int(time.time()))
    doc["file"].update(licence_id=licence_id.hex(), licence_verified=auth.licence is not None)
    doc["reasons"] = [r.name for r in decision.reasons]
    if record is None:
        if auth.licence is not None and _in_her_name(s, auth.licence.parsed):
            doc["verdict"] = UNLISTED
            doc["asset_label"] = _named(a, labels)
            _out(
                s.args,
                doc,
                f"This file carries licence {licence_id.hex()}, issued in your name but NOT"
                " listed by the exchange: keep this file; run `licentia-wallet audit`.",
            )
            return
        doc["verdict"] = NOT_YOURS
        label = _named(a, labels)
        doc["asset_label"] = label
        carries = "carries" if auth.licence is not None and reading.state == "trusted" else "names"
        text = f"This file {carries} licence {licence_id.hex()[:12]}, which is not in your name."
        if label:
            text += f" Yet it names your declared {label}."
        _out(s.args, doc, text)
        return
    _yours(s, doc, reading, record, labels, decision, auth)


def _named(assertion: content.LicenceAssertion, labels: dict[bytes, str]) -> str:
    """The label of her declared asset the assertion names (salted with its token's salt,
    token-format §12.1), or ""."""
    return next((label for d, label in labels.items() if assertion.names(d)), "")


def _yours(
    s: Session,
    doc: dict[str, Any],
    reading: content.Reading,
    record: records_pb2.LicenceRecord,
    labels: dict[bytes, str],
    decision: Decision,
    auth: Decision,
) -> None:
    """Report a licence in her name, then offer to revoke it while it is active and the
    file is the licensee's own under her licence (the token the exchange issued her) and
    every checker's use-independent checks hold."""
    organisation = _organisations(s).get(record.request_id, "")
    state = _LSTATE[record.state]
    a = reading.assertion
    assert a is not None
    # Her licence's own token, authenticated: any other bytes under her licence's id are
    # not the licence the exchange issued her (public text: no secret to time).
    genuine = auth.licence is not None and a.token == record.token
    why = _why(reading, decision)
    if not genuine:
        why.insert(0, "its token is not the one the exchange issued for your licence")
    own = genuine and not _NOT_THE_LICENSEES.intersection(decision.reasons)
    ok = genuine and decision.allowed
    active = state == "active"
    doc.update(
        verdict=YOURS,
        licence={**_dict(record)},
        licensee_organisation=organisation,
        valid=active and ok,
        credentials_ok=own,
    )
    doc["asset_label"] = _named(a, labels)
    claims = parse_token(record.token).claims
    who = _advertiser(organisation, record.licensee_key)
    verdict = "still valid" if active and ok else ("not valid" if active else "no longer valid")
    checks = (
        "the file's Content Credentials are intact and signed by the licensee, and its"
        " licence checks"
        if ok
        else "; ".join(why)
    )
    ending = f"Status:      {verdict}: {state} at the exchange; {checks}."
    carries = "carries" if own else "names"
    text = f"This file {carries} your licence {record.licence_id.hex()[:12]}.\n" + describe_claims(
        claims, who, labels, ending=ending
    )
    if not active:
        _out(s.args, doc, text)
        return
    if not ok:  # checkers refuse the file: revoking would not stop it (nothing is offered)
        lid, whose = record.licence_id.hex(), organisation or who
        made = (
            "was not made by the licensee of your licence"
            if not own
            else "fails the checks every checker makes of your licence"
        )
        _out(
            s.args,
            doc,
            text + f"\nThis file {made} {lid[:12]}: it"
            f" already fails every check; revoking would end {whose}'s licensed use, not stop"
            f" this file — revoke it with `licentia-wallet revoke {lid}` if you want that.",
        )
        return
    interactive = sys.stdin.isatty() and s.args.passphrase_file != "-"  # noqa: S105
    if not (s.args.yes or interactive):
        _out(s.args, doc, text + "\nRevoke it: licentia-wallet revoke " + record.licence_id.hex())
        return
    if not s.args.json:
        print(_shown(text), flush=True)
    try:
        _confirm(s, f"Revoke licence {record.licence_id.hex()[:12]} now?")
    except OperationFailedError:  # she answered no
        if s.args.json:
            _out(s.args, doc, "")
        else:
            print("Not revoked.")
        return
    done = s.holder.revoke(record.licence_id)
    doc.update(licence=_dict(done.licence), revoked=_dict(done.signed), valid=False)
    _out(
        s.args,
        doc,
        f"Revoked licence {record.licence_id.hex()} at once (receipt: event"
        f" {done.receipt.sequence}).",
    )
