"""``licentia-wallet check FILE``: does an ad she came across carry a licence in her name?

The file's Content Credentials are read (``licentia.content.read``, trusting the content
roots the exchange's issuer keys sign); the Licentia licence they carry is hers when its id
is one of the licences issued in her name. She is told which licence (short id, the
advertiser, scope and term), whether it is still valid (its live state at the exchange, and
whether the file's credentials are intact and signed by the licensee), and she is offered to
revoke it on the spot: the passphrase first, then y/N, as every confirmation (``--yes``
answers yes; without a terminal and without ``--yes`` the revoke command is shown instead).
Revoking is offered only for a file the licensee made: credentials intact, trusted and
signed by the licence's licensee. A file that merely names her licence (its token copied
into someone else's file, or an edited one) already fails every check; revoking would end
the advertiser's licensed use, not stop that file, so she is told so and shown the revoke
command, and ``--yes`` revokes nothing.
A file with no licence whose SHA-256 is one of her declared assets "uses your declared
<label> with no licence"; a licence that is not hers is said to be so, with no offer to
revoke.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

from licentia import content
from licentia.encoding import b64url_encode
from licentia.errors import LicentiaError
from licentia.token import parse_token
from licentia.v1 import records_pb2

from .commands import _advertiser, _labels, _my_licences, _organisations
from .render import _LSTATE, _dict, _out, _shown, describe_claims
from .session import OperationFailedError, Session, _confirm

__all__ = ["cmd_check"]

#: The verdicts of ``check`` (its JSON ``verdict``).
YOURS, NOT_YOURS, YOUR_ASSET, NO_LICENCE = "yours", "not_yours", "your_asset", "no_licence"


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


def _credentials(reading: content.Reading, licensee_key: bytes | None) -> tuple[bool, str]:
    """Whether the file's credentials hold for its licence, and a line saying so."""
    if reading.modified:
        return False, "the file was changed after it was signed (or the manifest was copied)"
    if "signingCredential.expired" in reading.failures:
        return False, "the signing certificate has expired"
    if reading.state != "trusted":
        return False, "its Content Credentials do not verify against this exchange"
    if licensee_key is not None and reading.signer != "ed25519:" + b64url_encode(licensee_key):
        return False, "it was signed by someone other than the licensee"
    return True, "its Content Credentials are intact and signed by the licensee"


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
        },
        "verdict": NO_LICENCE,
        "licence": None,
        "licensee_organisation": "",
        "valid": False,
        "credentials_ok": False,
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
    if record is None:
        doc["verdict"] = NOT_YOURS
        label = _named(a, labels)
        doc["asset_label"] = label
        carries = "carries" if _credentials(reading, None)[0] else "names"
        text = f"This file {carries} licence {licence_id.hex()[:12]}, which is not in your name."
        if label:
            text += f" Yet it names your declared {label}."
        _out(s.args, doc, text)
        return
    _yours(s, doc, reading, record, labels)


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
) -> None:
    """Report a licence in her name, then offer to revoke it while it is active and the
    file is the licensee's own (credentials intact, trusted, signed by the licensee)."""
    organisation = _organisations(s).get(record.request_id, "")
    state = _LSTATE[record.state]
    ok, credentials = _credentials(reading, record.licensee_key)
    active = state == "active"
    doc.update(
        verdict=YOURS,
        licence={**_dict(record)},
        licensee_organisation=organisation,
        valid=active and ok,
        credentials_ok=ok,
    )
    assert reading.assertion is not None
    doc["asset_label"] = _named(reading.assertion, labels)
    claims = parse_token(record.token).claims
    who = _advertiser(organisation, record.licensee_key)
    verdict = "still valid" if active and ok else ("not valid" if active else "no longer valid")
    ending = f"Status:      {verdict}: {state} at the exchange; {credentials}."
    carries = "carries" if ok else "names"
    text = f"This file {carries} your licence {record.licence_id.hex()[:12]}.\n" + describe_claims(
        claims, who, labels, ending=ending
    )
    if not active:
        _out(s.args, doc, text)
        return
    if not ok:  # not the licensee's file: revoking would not stop it (nothing is offered)
        lid, whose = record.licence_id.hex(), organisation or who
        _out(
            s.args,
            doc,
            text + f"\nThis file was not made by the licensee of your licence {lid[:12]}: it"
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
