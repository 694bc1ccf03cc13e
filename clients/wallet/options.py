"""The wallet's global flags, its exit statuses, and how it reports a failure.

Global flags (``--wallet``, ``--server``, ``--tls-ca``, ``--insecure``, ``--passphrase-file``,
``--json``, ``--version``) are accepted before the command or after it (``licentia-wallet
--json whoami`` and ``licentia-wallet whoami --json`` are the same). The top-level parser holds
their defaults; every command's parser declares them with ``default=SUPPRESS``, so a flag given
after the command overrides the one before it and a command never puts its default back over a
flag given before it.

Exit statuses: 0 done, 1 the operation failed (or the exchange refused it), 2 the command was
misused, 3 the exchange could not be reached, 130 interrupted (Ctrl-C). With ``--json`` every
failure is one JSON document on stderr: ``{"error": {"reason": …, "message": …}}``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import licentia
from licentia.errors import LicentiaError
from licentia.transport import tls

from ..channel import ExchangeError, ExchangeUnavailable
from . import keystore
from .render import _shown
from .session import (
    DEFAULT_SERVER,
    DEFAULT_WALLET,
    PROG,
    MisuseError,
    OperationFailedError,
    Session,
)

#: Exit statuses (README "licentia-wallet", docs/wallet-json.md).
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_MISUSE = 2
EXIT_UNREACHABLE = 3
EXIT_INTERRUPTED = 130


def version() -> str:
    """The release (``licentia.__version__``, which the distribution is built with)."""
    return licentia.__version__


class UsageError(Exception):
    """A command line argparse refused: reported by ``main`` (as JSON with ``--json``)."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser
        self.message = message


class WalletParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are raised, not printed, so that ``main`` reports
    them as the rest (a JSON document on stderr with ``--json``)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(self, message)


def add_global_flags(p: argparse.ArgumentParser, *, top: bool) -> None:
    """The global flags on ``p``: with their defaults on the top-level parser (``top``),
    with ``SUPPRESS`` on a command's parser (so it sets only what is given after it)."""

    def default(value: Any) -> Any:
        return value if top else argparse.SUPPRESS

    p.add_argument(
        "--wallet",
        type=Path,
        default=default(Path(os.environ.get("LICENTIA_WALLET", DEFAULT_WALLET))),
        help=f"the wallet file (default {DEFAULT_WALLET}) [LICENTIA_WALLET]",
    )
    p.add_argument(
        "--server",
        default=default(os.environ.get("LICENTIA_SERVER", DEFAULT_SERVER)),
        help=f"the exchange, host:port (default {DEFAULT_SERVER}) [LICENTIA_SERVER]",
    )
    p.add_argument(
        "--tls-ca",
        metavar="FILE",
        default=default(os.environ.get("LICENTIA_TLS_CA") or None),
        help="PEM certificate(s) to trust instead of the system's CA store [LICENTIA_TLS_CA]",
    )
    p.add_argument(
        "--insecure",
        action="store_true",
        default=default(False),
        help="talk to the exchange without TLS (a local exchange only: anyone on the way"
        " could read and change what it says)",
    )
    p.add_argument(
        "--passphrase-file",
        metavar="PATH|-",
        default=default(None),
        help="read the passphrase from the first line of PATH, or of stdin with '-'",
    )
    p.add_argument(
        "--json",
        action="store_true",
        default=default(False),
        help="print one JSON document (docs/wallet-json.md); errors as JSON on stderr",
    )
    p.add_argument("--version", action="version", version=f"{PROG} {version()}")


def report(args_json: bool, reason: str, message: str, hint: str | None = None) -> None:
    """Print a failure on stderr: ``licentia-wallet: error: …`` (and a hint), or with
    ``--json`` one document ``{"error": {"reason": …, "message": …}}`` (and ``hint``)."""
    if args_json:
        error: dict[str, str] = {"reason": reason, "message": message}
        if hint:
            error["hint"] = hint
        print(json.dumps({"error": error}), file=sys.stderr)
        return
    print(_shown(f"{PROG}: error: {message}"), file=sys.stderr)
    if hint:
        print(_shown(f"hint: {hint}"), file=sys.stderr)


#: What to do next, by the reason the exchange gave for a refusal.
HINTS = {
    "UNKNOWN_KEY": "register first: licentia-wallet register --handle NAME",
    "ALREADY_EXISTS": "that handle (or this key) is already registered",
    "KEY_REMOVED": "this device's key was removed from your account (from another device,"
    " or by 'recover'): it can no longer act; use a device you kept, or recover with your"
    " phrase: licentia-wallet recover",
    "ACCOUNT_ERASED": "this wallet's account was deleted at the exchange: its keys can do"
    " nothing any more; make a new wallet (licentia-wallet init) to start again",
    "BALANCE_OWED": "see your balance with 'licentia-wallet earnings', revoke your live"
    " licences ('licentia-wallet erase'), withdraw it all, then delete the account",
    "INTERNAL": "the exchange had a problem; try again later",
}


def run(s: Session) -> int:
    """Run the command; every failure ends as one message (or JSON document) and a status."""
    as_json = bool(s.args.json)
    try:
        s.args.fn(s)
    except KeyboardInterrupt:  # Ctrl-C, at a prompt or while waiting: no traceback
        if as_json:
            report(True, "INTERRUPTED", "interrupted")
        else:
            print(file=sys.stderr)  # end the prompt's line
        return EXIT_INTERRUPTED
    except EOFError:  # Ctrl-D (or the end of piped input) at a prompt
        report(as_json, "NO_ANSWER", "no answer (end of input): nothing was done")
        return EXIT_FAILED
    except MisuseError as e:
        report(as_json, "USAGE", str(e))
        return EXIT_MISUSE
    except OperationFailedError as e:
        report(as_json, "FAILED", str(e))
        return EXIT_FAILED
    except keystore.WalletError as e:
        report(as_json, "WALLET", str(e))
        return EXIT_FAILED
    except ExchangeUnavailable as e:
        report(as_json, e.reason.name, unreachable(s, e), _unreachable_hint(s, e))
        return EXIT_UNREACHABLE
    except ExchangeError as e:
        report(
            as_json,
            e.reason.name,
            f"the exchange refused: {e.reason.name}: {e}",
            HINTS.get(e.reason.name),
        )
        return EXIT_FAILED
    except LicentiaError as e:
        report(as_json, e.reason.name, f"{e.reason.name}: {e}")
        return EXIT_FAILED
    return EXIT_OK


def unreachable(s: Session, e: ExchangeError) -> str:
    """What the person reads when the exchange at --server could not be reached."""
    return f"could not reach the exchange at {s.args.server} ({e.message})"


def _unreachable_hint(s: Session, e: ExchangeError) -> str:
    if tls.tls_failed(e.message, insecure=s.args.insecure):
        return tls.TLS_HINT
    return "is the exchange running at --server (or LICENTIA_SERVER), and reachable from here?"
