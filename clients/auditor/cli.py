"""``licentia-audit``: check, independently, that an exchange keeps its public log honestly.

Needs only the exchange's address and its log key (the C2SP verifier key its operator
publishes). Downloads the log, recomputes its Merkle tree, checks that every checkpoint
extends the previous one, and checks every entry it can read: the issuer-key events, and the
entries logged in clear before token v2 (both signatures of each licence and the holder's
consent, the exchange's rules, the holder's signature on each revocation, key-set chains).
Since token v2 every entry about an account is sealed to that account: the auditor checks
its form and counts it, but cannot see the licence, revocation or key-set change inside
(only the account's own audit, ``licentia-wallet audit``, can). A state directory remembers
what was checked, so a later run checks only what is new.

``--token TOKEN`` instead checks one licence token (what a licensee or a platform holding it
does): the entry at the index it promises is in the signed log and commits to exactly that
token (:func:`~licentia.clients.logcheck.check_logged`).

Prints a report (``--json``: one JSON document). Exit status: 0 no problem, 1 a problem
(found now or on record from an earlier run), 2 misuse, or the exchange could not be
reached.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path
from typing import NoReturn

import grpc  # type: ignore[import-untyped]

import licentia
from licentia.errors import LicentiaError
from licentia.token import MAX_TOKEN_CHARS
from licentia.transport import tls

from ..channel import ExchangeError, SignedChannel
from ..logcheck import LogClient, LogKey, check_logged
from .audit import Auditor, AuditReport, Counts, Problem
from .state import AuditState, StateError

PROG = "licentia-audit"
DEFAULT_STATE_DIR = Path("licentia-audit-state")
#: Largest message accepted from the exchange (one entry is at most 256 KiB).
MAX_RECEIVE_BYTES = 1024 * 1024
#: Seconds to wait for the key the exchange advertises, for the hint when --log-key is missing.
HINT_TIMEOUT = 3.0

DESCRIPTION = """\
Check, on your own, that a Licentia exchange keeps its public log honestly.

The exchange writes every licence it issues, every revocation and every change of its
signing keys into a public, append-only log, and signs a "checkpoint" (a fingerprint of
the whole log). This tool downloads the log and checks that:

  - the checkpoint is signed by the exchange's log key (the one you give with --log-key);
  - the log was only ever added to: nothing earlier was changed or removed since the
    last run (the new checkpoint must extend the previous one);
  - the entries really are the ones the checkpoint fingerprints;
  - every change of the exchange's signing keys is consistent with the ones before.

Since token v2 the log names nobody: every licence, revocation and key-set change is
"sealed" to the account it is about, and only that account (its wallet's audit) can read
it. This tool checks the form of each sealed entry and counts them. In entries logged in
clear (before token v2) it still checks that:

  - every licence carries the exchange's signature AND its holder's consent (a licence
    the exchange signed without the person's approval is a forgery), lasts no longer than
    --max-term-days, has an end date, and no sensitive use (political campaign, AI
    training, opinions) was approved automatically by a standing rule;
  - every revocation was asked for by the licence's holder, with their own signature.

What was checked is remembered in --state-dir, so the next run only checks what is new.

With --token TOKEN (or @FILE) it checks one licence token instead, as its licensee or a
platform holding it would: the entry the token promises is in the signed log and commits
to exactly this token (no state directory is used).
"""

EPILOG = """\
where to get the log key:
  The log key looks like  licentia.exchange/log+1a2b3c4d+AV3n...  and is published by
  the exchange's operator (website, documentation, contract). Get it from there, not
  from the exchange itself: a dishonest exchange could present a key of its own. If you
  run without --log-key, the tool shows what the exchange claims, to compare.

exit status:
  0  no problem found (now or in an earlier run with the same --state-dir); with
     --token: the token is in the log
  1  a problem was found: each is listed with the log entry it concerns; with --token:
     the token is not in the log as it promises
  2  the command was misused, or the exchange could not be reached
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``licentia-audit``."""
    ap = argparse.ArgumentParser(
        prog=PROG,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--version", action="version", version=f"{PROG} {licentia.__version__}")
    ap.add_argument("--server", required=True, metavar="HOST:PORT", help="the exchange's address")
    ap.add_argument(
        "--log-key",
        metavar="VKEY",
        help="the exchange's log key, NAME+ID+KEY, as its operator publishes it"
        " (or @FILE to read it from a file); required",
    )
    ap.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        metavar="DIR",
        help=f"where to remember what was checked (default ./{DEFAULT_STATE_DIR}); one"
        " directory per exchange",
    )
    tls.add_arguments(ap, "change what the audit reads")
    ap.add_argument(
        "--max-term-days",
        type=int,
        default=365,
        metavar="N",
        help="the longest licence the exchange promises to issue, in days (default 365)",
    )
    ap.add_argument(
        "--timeout", type=float, default=30.0, help="seconds per call to the exchange (default 30)"
    )
    ap.add_argument(
        "--token",
        metavar="TOKEN",
        help="check only that this licence token (lic1./lic2.…, or @FILE) is in the log, at"
        " the entry it promises",
    )
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    return ap


def _misuse(ap: argparse.ArgumentParser, message: str) -> NoReturn:
    ap.error(message)  # prints "licentia-audit: error: …" and exits 2


def _read_log_key(ap: argparse.ArgumentParser, text: str) -> LogKey:
    if text.startswith("@"):
        try:
            with Path(text[1:]).open(encoding="utf-8") as f:
                text = f.read(4096)
        except (OSError, UnicodeDecodeError) as e:
            _misuse(ap, f"cannot read the log key file {text[1:]!r}: {e}")
    try:
        return LogKey.parse(text)
    except LicentiaError as e:
        _misuse(ap, f"--log-key is not a log key of the form NAME+ID+KEY ({e})")


def _advertised_key(channel: grpc.Channel) -> str | None:
    """What the exchange claims its log key is (for a hint only), or None."""
    try:
        served = LogClient(SignedChannel(channel, None, timeout=HINT_TIMEOUT), HINT_TIMEOUT)
        return served.checkpoint().advertised_key or None
    except ExchangeError:
        return None


def _unreachable(args: argparse.Namespace, e: ExchangeError) -> int:
    """The exchange could not be reached (exit 2), with what to do when TLS failed."""
    hint = f"; {tls.TLS_HINT}" if tls.tls_failed(e.message, insecure=args.insecure) else ""
    return _fail(f"the exchange at {args.server}: {e.message}{hint}", args.json)


def _fail(message: str, as_json: bool) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    if as_json:
        print(json.dumps({"ok": False, "error": message}))
    return 2


def _where(p: Problem) -> str:
    parts = []
    if p.index is not None:
        parts.append(f"entry {p.index}")
    if p.licence_id is not None:
        parts.append(f"licence {p.licence_id.hex()}")
    return f" at {', '.join(parts)}" if parts else ""


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _summary(c: Counts) -> str:
    return (
        f"{_count(c.licences, 'licence', 'licences')},"
        f" {_count(c.revocations, 'revocation', 'revocations')},"
        f" {_count(c.key_events, 'issuer-key event', 'issuer-key events')},"
        f" {_count(c.key_set_changes, 'key-set change', 'key-set changes')} in clear;"
        f" {_count(c.sealed, 'sealed entry', 'sealed entries')} (their contents are for"
        " their accounts only)"
    )


def render(report: AuditReport, server: str) -> str:
    """The human report."""
    lines = [f"Audit of the log {report.origin!r} at {server}"]
    cp = report.checkpoint
    if cp is not None:
        root = base64.b64encode(cp.root).decode("ascii")
        lines.append(f"  checkpoint: {cp.size} entries, root {root} (signature valid)")
    if report.previous is not None:
        lines.append(f"  previous trusted checkpoint: {report.previous[0]} entries")
    n = report.new
    if cp is None:
        lines.append("  nothing checked: the checkpoint is not trusted")
    elif n.entries:
        lines.append(
            f"  checked now: {_count(n.entries, 'entry', 'entries')}"
            f" ({report.first}..{report.first + n.entries - 1}): {_summary(n)}"
        )
    else:
        lines.append("  checked now: no new entry")
    if cp is not None and not report.advanced and n.entries:
        lines.append("  (not trusted: the state directory was left as it was)")
    t = report.totals
    lines.append(f"  checked in all: {_count(t.entries, 'entry', 'entries')}: {_summary(t)}")
    for p in report.problems:
        lines.append(f"PROBLEM{_where(p)}: {p.kind}: {p.message}")
    for p in report.earlier:
        lines.append(f"PROBLEM (found in an earlier run){_where(p)}: {p.kind}: {p.message}")
    if report.ok:
        lines.append("Result: no problem found.")
    else:
        count = len(report.problems) + len(report.earlier)
        lines.append(f"Result: {count} problem{'s' if count != 1 else ''}.")
    return "\n".join(lines)


def _read_token(ap: argparse.ArgumentParser, text: str) -> str:
    if text.startswith("@"):
        try:
            with Path(text[1:]).open(encoding="utf-8") as f:
                text = f.read(MAX_TOKEN_CHARS + 2)
        except (OSError, UnicodeDecodeError) as e:
            _misuse(ap, f"cannot read the token file {text[1:]!r}: {e}")
    return text.strip()


def check_token(client: LogClient, log_key: LogKey, token: str, as_json: bool) -> int:
    """``--token``: whether ``token`` is in the log at the entry it promises; prints the
    result and returns the exit status (0 logged, 1 not)."""
    found = check_logged(token, client, log_key)
    if as_json:
        cp = found.checkpoint
        doc = {
            "ok": found.ok,
            "entry": found.index,
            "checkpoint": None if cp is None else {"size": cp.size, "root": _b64(cp.root)},
            "problems": [{"kind": f.kind, "message": f.message} for f in found.findings],
        }
        print(json.dumps(doc))
    elif found.ok:
        size = found.checkpoint.size if found.checkpoint is not None else 0
        print(
            f"The token is in the log: entry {found.index} of the checkpoint of {size} entries"
            " signed by the log key commits to exactly this token."
        )
    else:
        for f in found.findings:
            print(f"PROBLEM: {f.kind}: {f.message}")
        print("Result: the token is not in the log as it promises.")
    return 0 if found.ok else 1


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def main(argv: list[str] | None = None) -> int:
    """Run ``licentia-audit``; the exit status (0 clean, 1 problems, 2 misuse/unreachable)."""
    ap = build_parser()
    args = ap.parse_args(argv)
    if args.max_term_days < 1:
        _misuse(ap, "--max-term-days must be at least 1")
    if args.timeout <= 0:
        _misuse(ap, "--timeout must be positive")
    try:
        channel = tls.from_flags(
            args.server,
            args.tls_ca,
            args.insecure,
            options=[("grpc.max_receive_message_length", MAX_RECEIVE_BYTES)],
        )
    except ValueError as e:
        _misuse(ap, str(e))
    try:
        if args.log_key is None:
            advertised = _advertised_key(channel)
            claim = (
                f" The exchange at {args.server} claims its key is {advertised} — compare it"
                " with the one its operator publishes before using it."
                if advertised
                else ""
            )
            _misuse(
                ap,
                "--log-key is required: the audit trusts nothing the exchange says about"
                " itself, so it needs the log key from a source you trust (the operator's"
                f" website or documentation).{claim}",
            )
        log_key = _read_log_key(ap, args.log_key)
        if args.token is not None:
            token = _read_token(ap, args.token)
            client = LogClient(SignedChannel(channel, None, timeout=args.timeout), args.timeout)
            try:
                return check_token(client, log_key, token, args.json)
            except ExchangeError as e:
                return _unreachable(args, e)
        try:
            state = AuditState.open(args.state_dir)
        except StateError as e:
            return _fail(str(e), args.json)
        try:
            client = LogClient(SignedChannel(channel, None, timeout=args.timeout), args.timeout)
            report = Auditor(client, log_key, state, args.max_term_days * 86400).run()
        except StateError as e:
            return _fail(str(e), args.json)
        except ExchangeError as e:
            return _unreachable(args, e)
        finally:
            state.close()
    finally:
        channel.close()
    print(json.dumps(report.to_json()) if args.json else render(report, args.server))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
