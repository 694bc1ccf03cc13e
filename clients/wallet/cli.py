# PYTHON_ARGCOMPLETE_OK
"""licentia-wallet: your key, your data, your licences — from the command line.

Every licence to use your name, photo, voice or story needs your consent, given with a key
that only you hold. This tool keeps that key in an encrypted file (``init``), tells the
exchange what you offer (``register``, ``assets``, ``terms``) and what of you offers show
(``profile``), shows you what advertisers ask for (``inbox``), and lets you approve, decline,
and revoke at any moment, even from an ad you came across (``check FILE``). Your account can
have several devices (``devices``, ``join``) and a recovery phrase on paper that takes it back
on a new machine (``recover``).

Exit status: 0 done, 1 the operation failed, 2 the command was misused, 3 the exchange could
not be reached, 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

import argcomplete
from argcomplete.shell_integration import shellcode

from licentia.vocabulary import DataCategory, Medium, Purpose

from .account import cmd_init, cmd_join, cmd_recover, cmd_recovery_add, cmd_register
from .audit import cmd_audit
from .check import cmd_check
from .commands import (
    cmd_accesses,
    cmd_approve,
    cmd_assets_add,
    cmd_assets_list,
    cmd_decline,
    cmd_earnings,
    cmd_erase,
    cmd_export,
    cmd_inbox,
    cmd_licences,
    cmd_opt_in,
    cmd_opt_out,
    cmd_revoke,
    cmd_show,
    cmd_terms_set,
    cmd_terms_show,
    cmd_whoami,
    cmd_withdraw,
)
from .deletion import cmd_delete_account
from .devices import (
    cmd_devices_add,
    cmd_devices_approve,
    cmd_devices_list,
    cmd_devices_remove,
    cmd_devices_revoke_consents,
    since_time,
)
from .options import (
    EXIT_MISUSE,
    UsageError,
    WalletParser,
    add_global_flags,
    report,
    run,
)
from .payouts import cmd_payouts_add, cmd_payouts_cancel, cmd_payouts_list
from .profile import cmd_profile_set, cmd_profile_show, cmd_status
from .render import (
    _enum,
    _enums,
    _hexes,
    _minor,
    _name,
    _shown,
    describe_claims,
)
from .rules import cmd_rules_add, cmd_rules_list, cmd_rules_withdraw
from .session import (
    PROG,
    OperationFailedError,
    Session,
)


def parser() -> argparse.ArgumentParser:
    """The command line, with help for every command."""
    common = WalletParser(add_help=False)
    add_global_flags(common, top=False)
    ap = WalletParser(
        prog=PROG,
        description=__doc__.split("\n\n")[1],
        epilog="Global flags go before or after the command. " + __doc__.split("\n\n")[2],
    )
    add_global_flags(ap, top=True)
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, fn: Callable[[Session], None], help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_, parents=[common])
        p.set_defaults(fn=fn)
        return p

    p = add(
        "init",
        cmd_init,
        "create your wallet: a new key, encrypted with your passphrase, and your recovery"
        " phrase (12 words for paper, shown once, never stored)",
    )
    p.add_argument(
        "--force", action="store_true", help="replace an existing wallet (its key is lost)"
    )
    p.add_argument(
        "--yes",
        action="store_true",
        help="do not ask to type words of the phrase back (scripts: add --json to capture it)",
    )
    p.add_argument(
        "--no-recovery",
        action="store_true",
        help="no recovery phrase: losing this device then loses the account",
    )
    add("whoami", cmd_whoami, "print your public key")
    add("status", cmd_status, "your key, your account, and whether you have opted out")
    p = add("register", cmd_register, "register at the exchange as a person who offers data")
    p.add_argument("--handle", required=True, help="a pseudonym: 3-32 of a-z 0-9 - _")
    p.add_argument("--name", help="a display name (optional; not shown unless --show-name)")
    p.add_argument(
        "--show-name",
        action="store_true",
        help="show the display name to advertisers in your offers (default: offers name nobody)",
    )
    profile = add("profile", lambda s: None, "what the exchange shows of you, and to whom")
    psub = profile.add_subparsers(dest="profile_command", required=True, metavar="ACTION")
    p = psub.add_parser("show", help="your handle and display name", parents=[common])
    p.set_defaults(fn=cmd_profile_show)
    p = psub.add_parser(
        "set", help="change your display name, or whether offers show it", parents=[common]
    )
    p.set_defaults(fn=cmd_profile_set)
    name = p.add_mutually_exclusive_group()
    name.add_argument("--name", help="a new display name")
    name.add_argument("--no-name", action="store_true", help="clear the display name")
    shown = p.add_mutually_exclusive_group()
    shown.add_argument(
        "--show-name",
        dest="show",
        action="store_const",
        const=True,
        help="show the display name to advertisers in your offers",
    )
    shown.add_argument(
        "--hide-name",
        dest="show",
        action="store_const",
        const=False,
        help="offers show no name (the default)",
    )
    _account_commands(sub, add, common)
    assets = add("assets", lambda s: None, "declare and list the data you offer")
    asub = assets.add_subparsers(dest="assets_command", required=True, metavar="ACTION")
    p = asub.add_parser("add", help="declare a file (photo, voice sample, ...)", parents=[common])
    p.set_defaults(fn=cmd_assets_add)
    p.add_argument("file", help="the file")
    p.add_argument(
        "--category",
        required=True,
        type=lambda t: _enum(DataCategory, t),
        help="what it is: " + ", ".join(_name(c) for c in DataCategory),
    )
    p.add_argument("--label", help="a label for you (default: the file name)")
    p.add_argument(
        "--upload",
        action="store_true",
        help="store the bytes at the exchange, where licensees fetch them (each fetch is logged)",
    )
    p = asub.add_parser("list", help="list your assets", parents=[common])
    p.set_defaults(fn=cmd_assets_list)
    terms = add("terms", lambda s: None, "set and show what you offer, and at what price")
    tsub = terms.add_subparsers(dest="terms_command", required=True, metavar="ACTION")
    p = tsub.add_parser("set", help="set your terms, from flags or a TOML file", parents=[common])
    p.set_defaults(fn=cmd_terms_set)
    p.add_argument("--file", help="a TOML file with the same names as the flags (e.g. max_days)")
    p.add_argument("--categories", type=_enums(DataCategory), help="e.g. image,voice,name")
    p.add_argument("--purposes", type=_enums(Purpose), help="allowed, e.g. advertising,research")
    p.add_argument("--refuse", type=_enums(Purpose), help="never, e.g. political-campaign")
    p.add_argument("--media", type=_enums(Medium), help="e.g. online,social,print")
    p.add_argument(
        "--territories",
        type=lambda t: [x for x in t.split(",") if x],
        help="country codes or EU, EEA, WORLD",
    )
    p.add_argument("--price-per-day", type=_minor, help="e.g. 1.50 (in --currency)")
    p.add_argument("--currency", help="ISO 4217 code (default EUR)")
    p.add_argument("--max-days", type=int, help="the longest licence you grant (default 365)")
    p.add_argument(
        "--exclusive-multiplier",
        type=float,
        help="offer exclusivity at this multiple of the price, e.g. 3",
    )
    p = tsub.add_parser("show", help="show your terms", parents=[common])
    p.set_defaults(fn=cmd_terms_show)
    add("opt-out", cmd_opt_out, "object: stop every new request at once")
    add("opt-in", cmd_opt_in, "accept new requests again")
    add("inbox", cmd_inbox, "read the requests waiting for you, in plain words").add_argument(
        "--all", action="store_true", help="also the requests already answered"
    )
    p = add("approve", cmd_approve, "approve a request: sign its licence after reading it")
    p.add_argument("id", help="the request id from 'inbox' (or its first 6+ digits)")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p = add("decline", cmd_decline, "decline a request")
    p.add_argument("id", help="the request id from 'inbox' (or its first 6+ digits)")
    p.add_argument("--reason", help="a reason for the advertiser (optional)")
    add("licences", cmd_licences, "list every licence issued in your name")
    add("show", cmd_show, "show one licence in plain words").add_argument(
        "id", help="the licence id (or its first 6+ digits)"
    )
    add("revoke", cmd_revoke, "revoke a licence now; no reason needed").add_argument(
        "id", help="the licence id (or its first 6+ digits)"
    )
    p = add(
        "check",
        cmd_check,
        "check a file (an ad you came across): does it carry a licence in your name, is it"
        " still valid; offers to revoke it on the spot",
    )
    p.add_argument("file", metavar="FILE", help="a JPEG, PNG, WAV, WebP or MP4 file")
    p.add_argument(
        "--yes", action="store_true", help="revoke the licence it carries without asking"
    )
    add("accesses", cmd_accesses, "who fetched which of your assets")
    p = add("audit", cmd_audit, "check the public log: every licence in your name is yours")
    p.add_argument(
        "--log-key",
        help="the exchange's log key (licentia-server log-key prints it), or @FILE;"
        " without it, the key the exchange shows is trusted on first use",
    )
    add(
        "earnings", cmd_earnings, "what you have earned and can withdraw, and every payment"
    ).add_argument("--limit", type=int, default=50, help="payments shown (default 50)")
    p = add("withdraw", cmd_withdraw, "move money you have earned to your bank")
    p.add_argument("amount", type=_minor, help="e.g. 12.50")
    p.add_argument(
        "--to",
        required=True,
        help="one of your confirmed payout destinations, e.g. your IBAN ('payouts add' first)",
    )
    p.add_argument(
        "--idempotency-key",
        help="repeat the key a failed attempt printed, so a retry pays once (32 hex digits)",
    )
    payouts = add(
        "payouts",
        lambda s: None,
        "where your earnings may go: a new destination is usable only after the exchange's"
        " delay (72 hours by default), so a thief cannot empty your account at once",
    )
    psub = payouts.add_subparsers(dest="payouts_command", required=True, metavar="ACTION")
    p = psub.add_parser(
        "add",
        help="add a payout destination (e.g. your IBAN): pending until the delay has passed",
        parents=[common],
    )
    p.set_defaults(fn=cmd_payouts_add)
    p.add_argument("reference", help="the payout reference, e.g. your IBAN")
    p = psub.add_parser("list", help="your payout destinations and their state", parents=[common])
    p.set_defaults(fn=cmd_payouts_list)
    p = psub.add_parser(
        "cancel",
        help="cancel a payout destination (one you did not add, or no longer use)",
        parents=[common],
    )
    p.set_defaults(fn=cmd_payouts_cancel)
    p.add_argument("reference", help="the payout reference, as 'payouts list' shows it")
    add("export", cmd_export, "everything the exchange holds about you, as JSON").add_argument(
        "--output", help="write it to this file instead of the screen"
    )
    rules = add("rules", lambda s: None, "standing rules: approve matching requests for you")
    rsub = rules.add_subparsers(dest="rules_command", required=True, metavar="ACTION")
    p = rsub.add_parser(
        "add",
        help="sign a rule: requests entirely within it are approved without asking you"
        " (never political campaigns, AI training or opinions)",
        parents=[common],
    )
    p.set_defaults(fn=cmd_rules_add)
    p.add_argument("--categories", type=_enums(DataCategory), required=True, help="e.g. image")
    p.add_argument("--purposes", type=_enums(Purpose), required=True, help="e.g. advertising")
    p.add_argument("--media", type=_enums(Medium), required=True, help="e.g. online,social")
    p.add_argument(
        "--territories",
        type=lambda t: [x.strip().upper() for x in t.split(",") if x.strip()],
        required=True,
        help="country codes or EU, EEA, WORLD",
    )
    p.add_argument(
        "--min-price-per-day", type=_minor, required=True, help="e.g. 2.00 (in --currency)"
    )
    p.add_argument("--currency", default="EUR", help="ISO 4217 code (default EUR)")
    p.add_argument(
        "--max-term-days", type=int, default=30, help="longest licence it approves (default 30)"
    )
    p.add_argument("--days", type=int, default=90, help="how long the rule lasts (default 90)")
    p.add_argument("--max-uses", type=int, default=0, help="require at most this many uses")
    p.add_argument("--allow-exclusive", action="store_true", help="also exclusive licences")
    p.add_argument(
        "--sha256",
        action="append",
        default=[],
        type=_hexes,
        help="only these assets (default: all yours in the categories)",
    )
    p.add_argument(
        "--licensee", action="append", default=[], help="only this advertiser key (ed25519:…)"
    )
    p = rsub.add_parser("list", help="your standing rules", parents=[common])
    p.set_defaults(fn=cmd_rules_list)
    p = rsub.add_parser("withdraw", help="withdraw a standing rule", parents=[common])
    p.set_defaults(fn=cmd_rules_withdraw)
    p.add_argument("id", help="the rule id (or its first 6+ digits)")
    p = add("erase", cmd_erase, "erase your assets and revoke every live licence on them")
    p.add_argument("--sha256", action="append", default=[], type=_hexes, help="only this asset")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p = add(
        "delete-account",
        cmd_delete_account,
        "delete your account at the exchange for good (revokes every live licence; refused"
        " while money is owed to you: withdraw it first), save its signed receipt, then"
        " remove this wallet",
    )
    p.add_argument("--yes", action="store_true", help="do not ask you to type your handle")
    p.add_argument(
        "--receipt", help="save the receipt here (default: erasure-receipt.json by the wallet)"
    )
    p = add("completion", cmd_completion, "print shell completion code: eval it in your shell")
    p.add_argument("shell", choices=["bash", "zsh", "fish", "tcsh"], help="your shell")
    return ap


def _account_commands(
    sub: Any,
    add: Callable[[str, Callable[[Session], None], str], argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    """``recovery``, ``join``, ``recover`` and ``devices``: the account's keys."""
    recovery = add("recovery", lambda s: None, "your account's recovery key (the paper phrase)")
    rsub = recovery.add_subparsers(dest="recovery_command", required=True, metavar="ACTION")
    p = rsub.add_parser(
        "add",
        help="add the recovery key 'init' made (if 'register' could not), or make a new"
        " phrase for an account without one",
        parents=[common],
    )
    p.set_defaults(fn=cmd_recovery_add)
    p.add_argument("--yes", action="store_true", help="do not ask to type words back")
    p = add(
        "join",
        cmd_join,
        "on a new device: a new wallet whose key joins your account by the code that"
        " 'devices add' shows on your other device",
    )
    p.add_argument("code", help="the pairing code")
    p.add_argument("--name", required=True, help="a name for this device, e.g. phone")
    p.add_argument("--force", action="store_true", help="replace an existing wallet file")
    p = add(
        "recover",
        cmd_recover,
        "on a new machine: recover your account with your 12 words; every old device is"
        " removed (as compromised unless --retired) and this one is added",
    )
    p.add_argument(
        "--phrase-file",
        metavar="PATH|-",
        help="read the 12 words from PATH, or stdin with '-' (default: asked, hidden)",
    )
    p.add_argument("--handle", help="refuse unless the phrase is for the account of this handle")
    p.add_argument("--name", help="a name for this device (default: the computer's name)")
    p.add_argument(
        "--retired",
        action="store_true",
        help="the old devices were lost, not stolen: what they signed stays valid",
    )
    p.add_argument(
        "--new-phrase",
        action="store_true",
        help="the phrase may have been seen: replace the recovery key with a new phrase"
        " (shown once, typed back) in the same change; the old phrase stops working",
    )
    p.add_argument(
        "--yes", action="store_true", help="with --new-phrase: do not ask to type words back"
    )
    p.add_argument("--force", action="store_true", help="replace an existing wallet file")
    devices = add("devices", lambda s: None, "the devices (keys) of your account")
    dsub = devices.add_subparsers(dest="devices_command", required=True, metavar="ACTION")
    p = dsub.add_parser("list", help="your account's keys, and the removed ones", parents=[common])
    p.set_defaults(fn=cmd_devices_list)
    p = dsub.add_parser(
        "add",
        help="add a device: show a pairing code, wait for 'join' on the new device, compare"
        " fingerprints, approve",
        parents=[common],
    )
    p.set_defaults(fn=cmd_devices_add)
    p.add_argument("--no-wait", action="store_true", help="print the code and return")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p = dsub.add_parser("approve", help="add the device that joined with CODE", parents=[common])
    p.set_defaults(fn=cmd_devices_approve)
    p.add_argument("code", help="the pairing code")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    since_help = (
        "only what it consented to since TIME (ISO date or date-time, UTC unless given, or"
        " Unix seconds); default: since the key was added, because the exchange cannot know"
        " when a device was stolen: the list is shown before anything is revoked"
    )
    p = dsub.add_parser(
        "remove",
        help="remove a device key: as --compromised (it stops at once; then review what it"
        " consented to) or as --retired (what it signed stays valid)",
        parents=[common],
    )
    p.set_defaults(fn=cmd_devices_remove)
    p.add_argument("key", help="its fingerprint (or first 4+ characters) or ed25519:… key")
    cause = p.add_mutually_exclusive_group()
    cause.add_argument("--compromised", action="store_true", help="lost or stolen")
    cause.add_argument("--retired", action="store_true", help="no longer used, safely")
    p.add_argument("--since", type=since_time, metavar="TIME", help=since_help)
    p.add_argument(
        "--revoke",
        action="store_true",
        help="with --compromised: revoke its licences and withdraw its rules (after confirmation)",
    )
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p = dsub.add_parser(
        "revoke-consents",
        help="review, then revoke, what a key (a removed one too) consented to that is still"
        " in force",
        parents=[common],
    )
    p.set_defaults(fn=cmd_devices_revoke_consents)
    p.add_argument("key", help="its fingerprint (or first 4+ characters) or ed25519:… key")
    p.add_argument("--since", type=since_time, metavar="TIME", help=since_help)
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``licentia-wallet``; returns the exit status (0 done, 1 failed, 2 misuse, 3 the
    exchange could not be reached, 130 interrupted)."""
    ap = parser()
    argcomplete.autocomplete(ap)  # answers the shell's completion request, if it is one
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = ap.parse_args(argv)
    except UsageError as e:
        if "--json" in argv:
            report(True, "USAGE", e.message)
        else:
            e.parser.print_usage(sys.stderr)
            print(_shown(f"{e.parser.prog}: error: {e.message}"), file=sys.stderr)
        return EXIT_MISUSE
    except SystemExit as e:  # --help, --version
        return int(e.code or 0)
    session = Session(args)
    try:
        return run(session)
    finally:
        session.close()


def cmd_completion(s: Session) -> None:
    """Print the shell code that completes licentia-wallet's commands and flags."""
    print(shellcode([PROG], shell=s.args.shell), end="")


__all__ = [
    "OperationFailedError",
    "Session",
    "cmd_approve",
    "cmd_inbox",
    "describe_claims",
    "main",
    "parser",
]


if __name__ == "__main__":
    sys.exit(main())
