"""``licentia-verify``: check a licence token from the shell against the exchange.

Fetches the exchange's issuer keys and a signed status snapshot once, then checks the token
in-process for one intended use. Without ``--presentation`` it checks the licence itself
(signatures, time, status, scope and asset); with ``--presentation`` and ``--platform-id`` it
checks the licensee's proof of possession for that platform as well.

With a presentation, its nonce is recorded in a store file (``--nonce-store``, by default
``verify-nonces.sqlite`` under the user's data directory: ``$XDG_DATA_HOME/licentia`` or
``~/.local/share/licentia``; a ``postgresql://`` DSN shares one table with a platform's
instances), so the same presentation checked twice is DENY ``REPLAYED`` the second time, as a
platform's verifier answers.

With ``--file PATH`` (and no token) it checks a file's Content Credentials and the licence
they carry for the use the flags name (docs/token-format.md §12): ``ALLOW``, ``DENY`` with
each reason on a line of its own, or ``NO LICENCE``, then the licence and the signer's
organisation; at most ``--max-file-bytes`` of the file are read. Exit status as below (NO
LICENCE is 1).

Prints ``ALLOW`` or ``DENY REASON, REASON`` (``--json``: one JSON document with ``verdict``,
``reasons``, ``licence_id`` in hex and ``not_after``). Exit status: 0 ALLOW, 1 DENY (also when
what the exchange sent does not verify: fail closed), 2 misuse, 3 could not check: the
exchange could not be reached, or the nonce store could not be opened or answer (the line
printed is then ``DENY UNAVAILABLE``).

The connection is TLS, checked against the system's CA store (``--tls-ca``: against that
file); plain text only with ``--insecure``, or when ``--server`` is a loopback address
(``127.0.0.0/8``, ``::1``, ``localhost``).
"""

from __future__ import annotations

import argparse
import enum
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import NoReturn, TypeVar

import grpc  # type: ignore[import-untyped]

import licentia
from licentia.content import MAX_FILE_BYTES
from licentia.content_certs import trusted_roots
from licentia.errors import LicentiaError, Reason
from licentia.nonces import NonceStore
from licentia.scope import IntendedUse
from licentia.status import StatusView, verify_snapshot
from licentia.territory import is_territory as territory_known
from licentia.transport import tls
from licentia.transport.follow import GrpcUpstream
from licentia.verify import Decision, VerificationEngine
from licentia.vocabulary import DataCategory, Medium, Purpose

from ..channel import ExchangeError, SignedChannel
from .files import FileCheck, FileSource, check_file
from .nonces import describe_nonce_store, open_nonce_store
from .verifier import fetch_issuer_keys, fetch_status_snapshot

E = TypeVar("E", bound=enum.Enum)

PROG = "licentia-verify"
#: How old (seconds) the snapshot fetched for this one check may be.
STALENESS_SECONDS = 60
#: Exit statuses (2 is argparse's misuse).
EXIT_ALLOW, EXIT_DENY, EXIT_UNREACHABLE = 0, 1, 3
#: Largest message accepted from the exchange (a status snapshot of 64 Mi licences fits).
MAX_RECEIVE_BYTES = 16 * 1024 * 1024


def flag_name(member: enum.Enum) -> str:
    """An enum member as a flag value (``PERSONALISED_ADVERTISING``: personalised-advertising)."""
    return member.name.lower().replace("_", "-")


def _choices(kind: type[E]) -> dict[str, E]:
    return {flag_name(m): m for m in kind}


CATEGORIES = _choices(DataCategory)
PURPOSES = _choices(Purpose)
MEDIA = _choices(Medium)


def default_nonce_store() -> Path:
    """Where ``licentia-verify`` remembers presentation nonces by default:
    ``$XDG_DATA_HOME/licentia/verify-nonces.sqlite`` (``~/.local/share`` without it)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "licentia" / "verify-nonces.sqlite"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``licentia-verify``."""
    ap = argparse.ArgumentParser(
        prog=PROG,
        description="Check a licence token for one intended use against the exchange.",
        epilog="Exit status: 0 ALLOW, 1 DENY, 2 misuse, 3 could not check (the exchange"
        " or the nonce store could not be reached).",
    )
    ap.add_argument("--version", action="version", version=f"{PROG} {licentia.__version__}")
    ap.add_argument(
        "token",
        metavar="TOKEN",
        nargs="?",
        help='the licence token "lic2.…" or "lic1.…" ("-": stdin); not with --file',
    )
    ap.add_argument(
        "--file",
        type=Path,
        metavar="PATH",
        help="check this file's Content Credentials and the licence it carries (JPEG, PNG,"
        " WAV, WebP, MP4) instead of a token: ALLOW, DENY with reasons, or NO LICENCE",
    )
    ap.add_argument(
        "--max-file-bytes",
        type=int,
        default=MAX_FILE_BYTES,
        metavar="N",
        help=f"with --file: read at most N bytes of it (default {MAX_FILE_BYTES});"
        " a larger file is DENY TOO_LARGE",
    )
    ap.add_argument("--server", required=True, metavar="HOST:PORT", help="the exchange")
    tls.add_arguments(ap, "read and change the answers")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds per call (default 10)")
    use = ap.add_argument_group("the intended use")
    use.add_argument(
        "--category",
        choices=sorted(CATEGORIES),
        help="required for a token; with --file: the licence's category for the asset",
    )
    use.add_argument("--purpose", required=True, choices=sorted(PURPOSES))
    use.add_argument("--medium", required=True, choices=sorted(MEDIA))
    use.add_argument("--territory", required=True, help="ISO 3166-1 alpha-2 code or group (FR, EU)")
    asset = use.add_mutually_exclusive_group()
    asset.add_argument(
        "--asset", type=Path, metavar="FILE", help="the asset's bytes (one of the two for a token)"
    )
    asset.add_argument("--asset-sha256", metavar="HEX", help="the asset's SHA-256, in hex")
    pres = ap.add_argument_group("the licensee's presentation (both or neither)")
    pres.add_argument("--presentation", metavar="PRES", help='the presentation "lpr1.…"')
    pres.add_argument("--platform-id", metavar="ID", help="your platform's registered id")
    pres.add_argument(
        "--nonce-store",
        metavar="PATH|DSN",
        help="where seen presentation nonces are kept: an SQLite file (default "
        f"{default_nonce_store()}) or a postgresql:// DSN shared with the platform",
    )
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    return ap


def _misuse(ap: argparse.ArgumentParser, message: str) -> NoReturn:
    ap.error(message)  # prints "licentia-verify: error: …" and exits 2


def _intended_use(ap: argparse.ArgumentParser, args: argparse.Namespace) -> IntendedUse:
    if args.asset is not None:
        try:
            digest = hashlib.sha256(args.asset.read_bytes()).digest()
        except OSError as e:
            _misuse(ap, f"cannot read the asset {str(args.asset)!r}: {e.strerror}")
    else:
        try:
            digest = bytes.fromhex(args.asset_sha256)
        except ValueError:
            _misuse(ap, "--asset-sha256 is 64 hex digits")
        if len(digest) != 32:
            _misuse(ap, "--asset-sha256 is 64 hex digits")
    try:
        return IntendedUse(
            CATEGORIES[args.category],
            PURPOSES[args.purpose],
            MEDIA[args.medium],
            args.territory.upper(),
            digest,
        )
    except LicentiaError:
        _misuse(ap, f"unknown territory {args.territory!r}")


def check_token(
    channel: grpc.Channel,
    token: str,
    use: IntendedUse,
    *,
    presentation: str | None = None,
    platform_id: str | None = None,
    timeout: float = 10.0,
    nonces: NonceStore | None = None,
) -> Decision:
    """Fetch the keys and a snapshot from the exchange once and check ``token`` for ``use``.

    With ``platform_id`` the presentation is checked too (an engine with that audience),
    its nonce recorded in ``nonces`` (a replay is DENY ``REPLAYED``); without, the licence
    alone. Raises ``ExchangeError`` or ``LicentiaError`` when the
    exchange cannot be reached or what it sends does not verify; never for a bad token.
    """
    rpc = SignedChannel(channel, None, timeout=timeout)
    keys = fetch_issuer_keys(rpc)
    view = StatusView(fetch_status_snapshot(rpc, keys), STALENESS_SECONDS)
    if platform_id is None:
        nonces = None
    elif nonces is None:
        raise ValueError("a presentation is checked against a nonce store")
    engine = VerificationEngine(keys, view, audience=platform_id, nonces=nonces)
    return engine.verify(token, use, int(time.time()), presentation=presentation)


def render(decision: Decision, as_json: bool) -> str:
    """The line (or JSON document) printed for ``decision``."""
    if not as_json:
        return str(decision)
    licence = decision.licence
    return json.dumps(
        {
            "verdict": decision.verdict,
            "reasons": [r.name for r in decision.reasons],
            "licence_id": licence.licence_id.hex() if licence is not None else None,
            "not_after": licence.parsed.not_after if licence is not None else None,
        }
    )


def _channel(ap: argparse.ArgumentParser, args: argparse.Namespace) -> grpc.Channel:
    """The channel to ``--server`` under the TLS flags (a bad flag is misuse, exit 2)."""
    try:
        return tls.from_flags(
            args.server,
            args.tls_ca,
            args.insecure,
            options=[("grpc.max_receive_message_length", MAX_RECEIVE_BYTES)],
        )
    except ValueError as e:
        _misuse(ap, str(e))


def _failed(args: argparse.Namespace, e: ExchangeError | LicentiaError) -> int:
    """Say why the exchange could not be asked (exit 3), or what it sent that does not
    verify (exit 1: nothing it sent is trusted)."""
    if isinstance(e, ExchangeError):
        print(
            f"{PROG}: error: could not reach the exchange at {args.server}: {e.message}",
            file=sys.stderr,
        )
        if tls.tls_failed(e.message, insecure=args.insecure):
            print(f"{PROG}: {tls.TLS_HINT}", file=sys.stderr)
        return EXIT_UNREACHABLE
    print(f"{PROG}: error: the exchange sent {e.reason.name}: {e}", file=sys.stderr)
    return EXIT_DENY


def main(argv: list[str] | None = None) -> int:
    """Run ``licentia-verify``; the exit status (0 ALLOW, 1 DENY, 2 misuse, 3 could not
    check: the exchange or the nonce store could not be reached)."""
    ap = build_parser()
    args = ap.parse_args(argv)
    if args.file is not None:
        return _main_file(ap, args)
    if args.token is None:
        _misuse(ap, "a TOKEN, or --file PATH")
    if args.category is None:
        _misuse(ap, "the following arguments are required: --category")
    if args.asset is None and args.asset_sha256 is None:
        _misuse(ap, "one of the arguments --asset --asset-sha256 is required")
    if (args.presentation is None) != (args.platform_id is None):
        _misuse(ap, "--presentation and --platform-id go together")
    if args.platform_id is not None and not 0 < len(args.platform_id) <= 128:
        _misuse(ap, "--platform-id is 1 to 128 characters")
    if args.timeout <= 0:
        _misuse(ap, "--timeout must be positive")
    use = _intended_use(ap, args)
    from_stdin = args.token == "-"  # noqa: S105 (the stdin marker, not a secret)
    token = sys.stdin.read().strip() if from_stdin else args.token
    channel = _channel(ap, args)
    store = None
    where = args.nonce_store or default_nonce_store()
    try:
        if args.platform_id is not None:
            try:
                store = open_nonce_store(where)
            except Exception as e:  # noqa: BLE001 - sqlite3/psycopg/OS errors alike
                print(
                    f"{PROG}: error: cannot open the nonce store {describe_nonce_store(where)}:"
                    f" {e}",
                    file=sys.stderr,
                )
                return EXIT_UNREACHABLE
        decision = check_token(
            channel,
            token,
            use,
            presentation=args.presentation,
            platform_id=args.platform_id,
            timeout=args.timeout,
            nonces=store,
        )
    except (ExchangeError, LicentiaError) as e:
        return _failed(args, e)
    finally:
        channel.close()
        if store is not None:
            store.close()
    print(render(decision, args.json))
    if Reason.UNAVAILABLE in decision.reasons:  # the nonce store could not answer
        print(
            f"{PROG}: error: the nonce store {where} could not answer: the presentation was"
            " not checked; try again",
            file=sys.stderr,
        )
        return EXIT_UNREACHABLE
    return EXIT_ALLOW if decision.allowed else EXIT_DENY


def _main_file(ap: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """``licentia-verify --file PATH``: 0 ALLOW, 1 DENY or NO LICENCE, 2 misuse, 3 could
    not check."""
    if args.token is not None:
        _misuse(ap, "--file checks the licence the file carries: give no TOKEN")
    if args.asset is not None or args.asset_sha256 is not None:
        _misuse(ap, "--file names its asset itself: no --asset or --asset-sha256")
    if args.presentation is not None or args.platform_id is not None:
        _misuse(ap, "--file takes no --presentation: the file's signature stands for it")
    if not 0 < args.max_file_bytes <= MAX_FILE_BYTES:
        _misuse(ap, f"--max-file-bytes is 1 to {MAX_FILE_BYTES}")
    if args.timeout <= 0:
        _misuse(ap, "--timeout must be positive")
    if not args.file.is_file():
        _misuse(ap, f"cannot read the file {str(args.file)!r}: not a file")
    territory = args.territory.upper()
    if not territory_known(territory):
        _misuse(ap, f"unknown territory {args.territory!r}")
    channel = _channel(ap, args)
    try:
        checked = check_file_once(
            channel,
            args.file,
            purpose=PURPOSES[args.purpose],
            medium=MEDIA[args.medium],
            territory=territory,
            category=CATEGORIES[args.category] if args.category else None,
            max_bytes=args.max_file_bytes,
            timeout=args.timeout,
        )
    except (ExchangeError, LicentiaError) as e:
        return _failed(args, e)
    finally:
        channel.close()
    if args.json:
        print(json.dumps(checked.to_json()))
    else:
        print("\n".join(checked.lines()))
    return EXIT_ALLOW if checked.allowed else EXIT_DENY


def check_file_once(
    channel: grpc.Channel,
    source: FileSource,
    *,
    purpose: Purpose,
    medium: Medium,
    territory: str,
    category: DataCategory | None = None,
    max_bytes: int = MAX_FILE_BYTES,
    timeout: float = 10.0,
) -> FileCheck:
    """Fetch the keys, content roots and a snapshot from the exchange once and check the
    file ``source`` for a use (:func:`licentia.clients.verifier.files.check_file`). Raises
    ``ExchangeError`` or ``LicentiaError`` when the exchange cannot be reached or what it
    sends does not verify; never for a bad file."""
    upstream = GrpcUpstream(channel, timeout=timeout)
    keys = upstream.issuer_keys()
    now = int(time.time())
    term = upstream.content_term_seconds
    roots = trusted_roots(upstream.content_roots, keys, now=now, max_term_seconds=term)
    view = StatusView(verify_snapshot(upstream.status_snapshot(), keys), STALENESS_SECONDS)
    engine = VerificationEngine(keys, view)
    return check_file(
        engine,
        roots,
        source,
        now,
        purpose=purpose,
        medium=medium,
        territory=territory,
        category=category,
        max_bytes=max_bytes,
    )


if __name__ == "__main__":
    sys.exit(main())
