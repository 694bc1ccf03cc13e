"""``licentia-verify``: check a licence token from the shell against the exchange.

Fetches the exchange's issuer keys and a signed status snapshot once, then checks the token
in-process for one intended use. Without ``--presentation`` it checks the licence itself
(signatures, time, status, scope and asset); with ``--presentation`` and ``--platform-id`` it
checks the licensee's proof of possession for that platform as well.

Prints ``ALLOW`` or ``DENY REASON, REASON`` (``--json``: one JSON document with ``verdict``,
``reasons``, ``licence_id`` in hex and ``not_after``). Exit status: 0 ALLOW, 1 DENY or a failed
operation (exchange unreachable, snapshot that does not verify), 2 misuse.
"""

from __future__ import annotations

import argparse
import enum
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import NoReturn, TypeVar

import grpc  # type: ignore[import-untyped]

from licentia.errors import LicentiaError
from licentia.nonces import MemoryNonceStore
from licentia.scope import IntendedUse
from licentia.status import StatusView
from licentia.verify import Decision, VerificationEngine
from licentia.vocabulary import DataCategory, Medium, Purpose

from ..channel import ExchangeError, SignedChannel
from .verifier import fetch_issuer_keys, fetch_status_snapshot

E = TypeVar("E", bound=enum.Enum)

PROG = "licentia-verify"
#: How old (seconds) the snapshot fetched for this one check may be.
STALENESS_SECONDS = 60
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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``licentia-verify``."""
    ap = argparse.ArgumentParser(
        prog=PROG,
        description="Check a licence token for one intended use against the exchange.",
    )
    ap.add_argument(
        "token", metavar="TOKEN", help='the licence token "lic2.…" or "lic1.…" ("-": stdin)'
    )
    ap.add_argument("--server", required=True, metavar="HOST:PORT", help="the exchange")
    ap.add_argument(
        "--tls-ca", type=Path, metavar="PEM", help="use TLS, checked against this CA file"
    )
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds per call (default 10)")
    use = ap.add_argument_group("the intended use")
    use.add_argument("--category", required=True, choices=sorted(CATEGORIES))
    use.add_argument("--purpose", required=True, choices=sorted(PURPOSES))
    use.add_argument("--medium", required=True, choices=sorted(MEDIA))
    use.add_argument("--territory", required=True, help="ISO 3166-1 alpha-2 code or group (FR, EU)")
    asset = use.add_mutually_exclusive_group(required=True)
    asset.add_argument("--asset", type=Path, metavar="FILE", help="the asset's bytes")
    asset.add_argument("--asset-sha256", metavar="HEX", help="the asset's SHA-256, in hex")
    pres = ap.add_argument_group("the licensee's presentation (both or neither)")
    pres.add_argument("--presentation", metavar="PRES", help='the presentation "lpr1.…"')
    pres.add_argument("--platform-id", metavar="ID", help="your platform's registered id")
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


def _channel(address: str, tls_ca: Path | None) -> grpc.Channel:
    options = [("grpc.max_receive_message_length", MAX_RECEIVE_BYTES)]
    if tls_ca is None:
        return grpc.insecure_channel(address, options=options)
    credentials = grpc.ssl_channel_credentials(root_certificates=tls_ca.read_bytes())
    return grpc.secure_channel(address, credentials, options=options)


def check_token(
    channel: grpc.Channel,
    token: str,
    use: IntendedUse,
    *,
    presentation: str | None = None,
    platform_id: str | None = None,
    timeout: float = 10.0,
) -> Decision:
    """Fetch the keys and a snapshot from the exchange once and check ``token`` for ``use``.

    With ``platform_id`` the presentation is checked too (an engine with that audience);
    without, the licence alone. Raises ``ExchangeError`` or ``LicentiaError`` when the
    exchange cannot be reached or what it sends does not verify; never for a bad token.
    """
    rpc = SignedChannel(channel, None, timeout=timeout)
    keys = fetch_issuer_keys(rpc)
    view = StatusView(fetch_status_snapshot(rpc, keys), STALENESS_SECONDS)
    nonces = MemoryNonceStore(1) if platform_id is not None else None
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


def main(argv: list[str] | None = None) -> int:
    """Run ``licentia-verify``; the exit status (0 ALLOW, 1 DENY or failure, 2 misuse)."""
    ap = build_parser()
    args = ap.parse_args(argv)
    if (args.presentation is None) != (args.platform_id is None):
        _misuse(ap, "--presentation and --platform-id go together")
    if args.platform_id is not None and not 0 < len(args.platform_id) <= 128:
        _misuse(ap, "--platform-id is 1 to 128 characters")
    if args.timeout <= 0:
        _misuse(ap, "--timeout must be positive")
    use = _intended_use(ap, args)
    from_stdin = args.token == "-"  # noqa: S105 (the stdin marker, not a secret)
    token = sys.stdin.read().strip() if from_stdin else args.token
    try:
        channel = _channel(args.server, args.tls_ca)
    except OSError as e:
        _misuse(ap, f"cannot read the CA file: {e.strerror}")
    try:
        decision = check_token(
            channel,
            token,
            use,
            presentation=args.presentation,
            platform_id=args.platform_id,
            timeout=args.timeout,
        )
    except ExchangeError as e:
        print(f"{PROG}: error: the exchange at {args.server}: {e.message}", file=sys.stderr)
        return 1
    except LicentiaError as e:
        print(f"{PROG}: error: the exchange sent {e.reason.name}: {e}", file=sys.stderr)
        return 1
    finally:
        channel.close()
    print(render(decision, args.json))
    return 0 if decision.allowed else 1


if __name__ == "__main__":
    sys.exit(main())
