"""``licentia-server``: run the exchange, administer its issuer keys, credit balances.

Every flag has an environment variable (shown in ``--help``); a flag wins over its variable.
Logs are JSON lines on stderr. ``serve`` prints ``listening on HOST:PORT`` on stdout once
the port is bound (and writes the port to ``--port-file`` when given), and drains calls in
flight on SIGTERM or SIGINT.

Why one module of this size: it is the exchange's command line, each subcommand's flags
beside the checks that refuse a bad value and the wiring that uses it, so that no flag is
added without its check; what a subcommand builds lives elsewhere (``app``, ``replica``,
``procs``, ``runtime``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import grpc  # type: ignore[import-untyped]

import licentia
from licentia.checkpoint import vkey
from licentia.errors import LicentiaError
from licentia.keys import PublicKey
from licentia.methods import path
from licentia.request import sign_request
from licentia.token import is_currency
from licentia.transport import tls
from licentia.v1 import ledger_pb2

from . import config, ledger, metrics
from .aio_runtime import start_async
from .app import (
    DB_FILE,
    KEYS_DIR,
    LOG_KEY_FILE,
    OPERATOR_KEY_FILE,
    SERVICES,
    App,
    build,
    check_key_files,
    private_directory,
)
from .deps import DEFAULT_MAX_ASSET_BYTES, DEFAULT_MAX_UPLOADS, Settings
from .digest_quota import DEFAULT_ASSET_DIGEST_QUOTA
from .gateway import RunningGateway, start_gateway
from .issuer import ExchangeKeyError, Keyring, key_file
from .procs import PrivateSocket, Workers, check_port_free, process_count, worker_spec
from .replica import DEFAULT_STALENESS_SECONDS, ReplicaApp, build_replica
from .rpc import (
    UNARY_RESERVE,
    SystemClock,
    json_logger,
    json_logging,
    json_native_stderr,
    stream_slots,
)
from .runtime import (
    FILES_PER_WORKER,
    FileBudget,
    RunningServer,
    ServerSettings,
    check_address,
    ensure_file_limit,
    install_signal_handlers,
    start,
)
from .shared_nonces import SharedNonceTable
from .store import POSTGRES_SCHEMES, SqliteStore, open_store

PROG = "licentia-server"
DEFAULT_LISTEN = "127.0.0.1:7700"
#: Open files a PostgreSQL store may hold: its pool's connections (16 at most) and the one
#: that listens for the other replicas' notifications, with room to spare.
POSTGRES_FILES = 24
#: The longest payout delay the flag takes: a year.
MAX_PAYOUT_DELAY_HOURS = 365 * 24
#: The longest retention period --retention-days takes (100 years).
MAX_RETENTION_DAYS = 36500


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    ap.add_argument("--version", action="version", version=f"{PROG} {licentia.__version__}")
    sub = ap.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="run the exchange (the default command)")
    _data_dir(serve)
    serve.add_argument(
        "--listen",
        default=_env("LICENTIA_LISTEN", DEFAULT_LISTEN),
        help="host:port to listen on, port 0 for any free one [LICENTIA_LISTEN]",
    )
    serve.add_argument(
        "--http",
        default=_env("LICENTIA_HTTP", ""),
        help="host:port for the HTTP/JSON gateway (every RPC, OpenAPI at /openapi.json; port 0"
        " for any free one); none by default [LICENTIA_HTTP]",
    )
    serve.add_argument(
        "--tls-cert",
        type=Path,
        default=os.environ.get("LICENTIA_TLS_CERT"),
        help="PEM certificate: serve TLS on every channel [LICENTIA_TLS_CERT]",
    )
    serve.add_argument(
        "--tls-key",
        type=Path,
        default=os.environ.get("LICENTIA_TLS_KEY"),
        help="PEM private key of the certificate [LICENTIA_TLS_KEY]",
    )
    serve.add_argument(
        "--max-term-days",
        type=int,
        default=int(_env("LICENTIA_MAX_TERM_DAYS", "365")),
        help="longest licence term issued, in days (default 365) [LICENTIA_MAX_TERM_DAYS]",
    )
    serve.add_argument(
        "--heartbeat-seconds",
        type=float,
        default=float(_env("LICENTIA_HEARTBEAT_SECONDS", "5")),
        help="seconds between heartbeats on the revocation streams [LICENTIA_HEARTBEAT_SECONDS]",
    )
    serve.add_argument(
        "--services",
        default=_env("LICENTIA_SERVICES", ",".join(SERVICES)),
        help=f"comma-separated services to run, of {', '.join(SERVICES)} (default all)"
        " [LICENTIA_SERVICES]",
    )
    serve.add_argument(
        "--follower",
        action="store_true",
        default=_env("LICENTIA_FOLLOWER", "") in ("1", "true", "yes"),
        help="a read-only replica of the exchange on the same data directory, e.g."
        " --services verification,licences --follower [LICENTIA_FOLLOWER]",
    )
    serve.add_argument(
        "--upstream",
        default=_env("LICENTIA_UPSTREAM", ""),
        help="HOST:PORT of an exchange to follow: a verify-only replica with no database"
        " (only with --services verification) [LICENTIA_UPSTREAM]",
    )
    serve.add_argument(
        "--upstream-tls-ca",
        type=Path,
        default=os.environ.get("LICENTIA_UPSTREAM_TLS_CA"),
        help="PEM CA certificate(s): reach the upstream over TLS [LICENTIA_UPSTREAM_TLS_CA]",
    )
    serve.add_argument(
        "--upstream-staleness-seconds",
        type=int,
        default=int(_env("LICENTIA_UPSTREAM_STALENESS_SECONDS", str(DEFAULT_STALENESS_SECONDS))),
        help="a replica answers STATUS_STALE when it has heard nothing from its upstream for"
        f" this long (default {DEFAULT_STALENESS_SECONDS}) [LICENTIA_UPSTREAM_STALENESS_SECONDS]",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=int(_env("LICENTIA_WORKERS", "256")),
        help="worker threads (default 256); open streams may take all but 32 of them"
        " [LICENTIA_WORKERS]",
    )
    serve.add_argument(
        "--max-connections",
        type=int,
        default=int(_env("LICENTIA_MAX_CONNECTIONS", "512")),
        help="incoming connections open at once (default 512); each holds an open file"
        " [LICENTIA_MAX_CONNECTIONS]",
    )
    serve.add_argument(
        "--processes",
        type=int,
        default=int(_env("LICENTIA_PROCESSES", "0")),
        help="processes serving the port (default 0: one per core; 1 with --follower,"
        " --upstream or --services without verification,licences,registry): the first is"
        " the exchange, the others answer Verify themselves and relay every other call to it"
        " [LICENTIA_PROCESSES]",
    )
    serve.add_argument(
        "--port-file",
        type=Path,
        default=os.environ.get("LICENTIA_PORT_FILE"),
        help="write the bound port to this file [LICENTIA_PORT_FILE]",
    )
    serve.add_argument(
        "--metrics",
        default=_env("LICENTIA_METRICS", ""),
        help="HOST:PORT to serve Prometheus metrics on (/metrics; port 0 for any free one,"
        " printed as 'metrics on HOST:PORT'); default none [LICENTIA_METRICS]",
    )
    serve.add_argument(
        "--currency",
        default=_env("LICENTIA_CURRENCY", "EUR"),
        help="the exchange's one currency, ISO 4217 (default EUR) [LICENTIA_CURRENCY]",
    )
    serve.add_argument(
        "--fee-bps",
        type=int,
        default=int(_env("LICENTIA_FEE_BPS", "1000")),
        help="the exchange's fee on what holders earn, in basis points, 0-5000 (default 1000"
        " = 10%%) [LICENTIA_FEE_BPS]",
    )
    serve.add_argument(
        "--payout-delay-hours",
        type=float,
        default=float(_env("LICENTIA_PAYOUT_DELAY_HOURS", "72")),
        help="how long after a holder adds a payout destination it becomes usable, in hours"
        " (a decimal number, 0 for at once; default 72): the time she has to cancel one she"
        " did not add [LICENTIA_PAYOUT_DELAY_HOURS]",
    )
    serve.add_argument(
        "--retention-days",
        type=float,
        default=float(_env("LICENTIA_RETENTION_DAYS", "90")),
        help="how long after its last money movement a finished request or licence keeps its"
        " personal fields, in days (a decimal number, 0 to 36500; default 90)"
        " [LICENTIA_RETENTION_DAYS]",
    )
    serve.add_argument(
        "--status-list-size",
        type=int,
        default=int(_env("LICENTIA_STATUS_LIST_SIZE", "1048576")),
        help="licences in one status list, 1 to 2^26 (default 2^20) [LICENTIA_STATUS_LIST_SIZE]",
    )
    serve.add_argument(
        "--max-asset-bytes",
        type=int,
        default=int(_env("LICENTIA_MAX_ASSET_BYTES", str(DEFAULT_MAX_ASSET_BYTES))),
        help="the largest asset (a photo, a voice sample) the exchange stores, in bytes;"
        " larger ones are uploaded in chunks (default 52428800 = 50 MiB, at most 512 MiB)"
        " [LICENTIA_MAX_ASSET_BYTES]",
    )
    serve.add_argument(
        "--max-uploads",
        type=int,
        default=int(_env("LICENTIA_MAX_UPLOADS", str(DEFAULT_MAX_UPLOADS))),
        help="uploads (UploadAsset) in progress at once, 1 to 64, and at most 2 per holder;"
        " more are refused with BUSY. Each holds a worker thread and up to --max-asset-bytes"
        " of memory until it ends (default 4) [LICENTIA_MAX_UPLOADS]",
    )
    serve.add_argument(
        "--asset-digest-quota",
        type=int,
        default=int(_env("LICENTIA_ASSET_DIGEST_QUOTA", str(DEFAULT_ASSET_DIGEST_QUOTA))),
        help="digests one platform may ask CheckAssetDigests about per UTC day, counted in"
        " each server process's memory; more are refused with BUSY (default 100000)"
        " [LICENTIA_ASSET_DIGEST_QUOTA]",
    )
    serve.add_argument(
        "--status-epoch-days",
        type=int,
        default=int(_env("LICENTIA_STATUS_EPOCH_DAYS", "7")),
        help="days in a status list's expiry epoch (default 7) [LICENTIA_STATUS_EPOCH_DAYS]",
    )
    deposit = sub.add_parser(
        "deposit",
        help="credit an advertiser's balance with an external payment (signed with the"
        " operator key; the same reference twice credits once)",
    )
    deposit.add_argument("advertiser", help="the advertiser's key, ed25519:...")
    deposit.add_argument("amount", type=int, help="the amount in minor units (cents)")
    deposit.add_argument("reference", help="the external payment's reference")
    deposit.add_argument(
        "--connect",
        default=_env("LICENTIA_CONNECT", DEFAULT_LISTEN),
        help=f"the exchange's host:port (default {DEFAULT_LISTEN}) [LICENTIA_CONNECT]",
    )
    deposit.add_argument(
        "--tls-ca",
        type=Path,
        default=os.environ.get("LICENTIA_TLS_CA"),
        metavar="PEM",
        help="PEM certificate(s) to trust instead of the system's CA store (a private CA)"
        " [LICENTIA_TLS_CA]",
    )
    deposit.add_argument(
        "--insecure",
        action="store_true",
        help="talk to the exchange without TLS (a local exchange only: anyone on the way"
        " could read the call and change its answer); a loopback --connect needs no flag",
    )
    _data_dir(deposit)
    log_key = sub.add_parser(
        "log-key",
        help="print the public log's verifier key (give it to auditors: licentia-audit --log-key)",
    )
    _data_dir(log_key)
    rotate = sub.add_parser(
        "rotate-key",
        help="start a new issuer key; the old one stays published so its licences verify",
    )
    _data_dir(rotate)
    withdraw = sub.add_parser(
        "withdraw-key",
        help="withdraw a compromised issuer key: every licence it signed stops verifying",
    )
    withdraw.add_argument("key_id", help="the key id in hex (16 digits), as GetIssuerKeys shows")
    _data_dir(withdraw)
    check = sub.add_parser(
        "check-config",
        help="print the settings serve would run with (flags, environment, --config file;"
        " secrets redacted) and exit 0, or the errors and exit 1",
    )
    for action in serve._actions:  # serve's flags, whoever adds them
        if action.option_strings and action.dest != "help":
            check._add_action(action)
    ledger_check = sub.add_parser(
        "check-ledger",
        help="check the ledger's invariants (postings sum to zero, balances match their"
        " entries, ...): exit 0 when they hold, 1 naming what is wrong",
    )
    _data_dir(ledger_check)
    migrate = sub.add_parser(
        "migrate",
        help="create or upgrade the store's tables and exit (run by the database owner;"
        " serve then needs only a role with DML rights, deploy/postgres-roles.sql)",
    )
    _data_dir(migrate)
    return ap


def _data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir",
        type=Path,
        default=Path(_env("LICENTIA_DATA_DIR", "licentia-data")),
        help="where the database lives (default ./licentia-data) [LICENTIA_DATA_DIR]",
    )
    p.add_argument(
        "--db",
        default=_env("LICENTIA_DB", ""),
        help="the store: sqlite:///PATH, or postgresql://USER@HOST/DB for an exchange on"
        " several replicas (default: DATA_DIR's SQLite file) [LICENTIA_DB]",
    )
    p.add_argument(
        "--issuer-keys",
        type=Path,
        default=os.environ.get("LICENTIA_ISSUER_KEYS"),
        help="directory of the issuer keys' secret files, created 0700 with 0600 files on"
        " first start (default DATA_DIR/issuer-keys) [LICENTIA_ISSUER_KEYS]",
    )
    p.add_argument(
        "--config",
        type=Path,
        default=os.environ.get(config.CONFIG_ENV),
        help="a TOML file of settings, keys named as the flags (docs/operations.md);"
        " the environment and the flags win over it [LICENTIA_CONFIG]",
    )


DEPOSIT = path(ledger_pb2, "Deposit")


def _deposit(args: argparse.Namespace) -> int:
    """``licentia-server deposit``: one signed Deposit call with the operator key."""
    try:
        advertiser = PublicKey.from_text(args.advertiser)
    except LicentiaError as e:
        print(f"{PROG}: error: the advertiser key: {e}", file=sys.stderr)
        return 2
    if args.amount <= 0:
        print(f"{PROG}: error: the amount is a positive number of minor units", file=sys.stderr)
        return 2
    key = key_file(args.data_dir / OPERATOR_KEY_FILE, create=False)
    if key is None:
        print(
            f"{PROG}: error: no operator key in {args.data_dir} (the server creates it on"
            " first start)",
            file=sys.stderr,
        )
        return 2
    body = ledger_pb2.DepositRequest(
        advertiser_key=advertiser.raw, amount_minor=args.amount, reference=args.reference
    ).SerializeToString()
    # TLS unless --insecure or a loopback --connect, as every client (licentia.transport.tls).
    try:
        channel = tls.from_flags(args.connect, args.tls_ca, args.insecure)
    except ValueError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    try:
        call = channel.unary_unary(
            DEPOSIT,
            request_serializer=None,
            response_deserializer=ledger_pb2.DepositResponse.FromString,
        )
        out = call(body, metadata=sign_request(key, DEPOSIT, body, SystemClock().now()), timeout=10)
    except grpc.RpcError as e:
        plain = args.insecure or (args.tls_ca is None and tls.is_loopback(args.connect))
        if e.code() == grpc.StatusCode.UNAVAILABLE and tls.tls_failed(
            str(e.details()), insecure=plain
        ):
            print(
                f"{PROG}: error: could not reach the exchange at {args.connect}: {tls.TLS_HINT}",
                file=sys.stderr,
            )
            return 3
        if e.code() == grpc.StatusCode.UNAVAILABLE:
            print(
                f"{PROG}: error: could not reach the exchange at {args.connect}: is it"
                " running, and is that its address? (--connect HOST:PORT names another)",
                file=sys.stderr,
            )
            return 3
        print(f"{PROG}: error: {e.code().name}: {e.details()}", file=sys.stderr)
        return 1
    finally:
        channel.close()
    verb = "already credited" if out.replayed else "credited"
    print(
        f"{verb} {out.line.amount_minor} (reference {out.line.reference!r});"
        f" balance {out.balance_minor}"
    )
    return 0


def _check_ledger(args: argparse.Namespace) -> int:
    """``licentia-server check-ledger``: :meth:`~.store.base.Store.ledger_check`, read only."""
    db_file = args.data_dir / DB_FILE
    if not args.db and not db_file.exists():
        print(f"{PROG}: error: no database in {args.data_dir}", file=sys.stderr)
        return 2
    try:
        store = open_store(args.db, db_file, read_only=True)
    except (LicentiaError, OSError, ValueError) as e:
        print(f"{PROG}: error: cannot open the store: {e}", file=sys.stderr)
        return 2
    try:
        pending = store.pending_migrations()
        if pending:  # read only, so not migrated here: its older tables cannot be checked
            print(
                f"{PROG}: error: the store lacks {len(pending)} of this version's migrations"
                f" ({', '.join(pending)}): run `{PROG} migrate` (or start the exchange) first",
                file=sys.stderr,
            )
            return 2
        problems = store.ledger_check()
    except LicentiaError as e:  # e.g. PostgreSQL unreachable: 2, as 1 means inconsistent
        print(f"{PROG}: error: cannot check the ledger: {e}", file=sys.stderr)
        return 2
    finally:
        store.close()
    for problem in problems:
        print(f"ledger: {problem}")
    if problems:
        print(f"the ledger is NOT consistent: {len(problems)} problem(s)")
        return 1
    print("the ledger is consistent: every posting sums to zero, every balance matches its")
    print("entries, no internal account is negative, holders' pending sums match")
    return 0


def _migrate(args: argparse.Namespace) -> int:
    """``licentia-server migrate``: create or upgrade the store's tables, then exit."""
    applied: list[str] = []
    try:
        if args.db.startswith(POSTGRES_SCHEMES):
            import psycopg  # noqa: PLC0415 (psycopg only when used)

            from .store.postgres import migrate  # noqa: PLC0415

            try:
                applied = migrate(args.db)
            except psycopg.Error as e:
                raise ValueError(f"cannot migrate the database: {e}".strip()) from e
        else:
            private_directory(args.data_dir, create=True)
            open_store(args.db, args.data_dir / DB_FILE).close()
            print(f"the SQLite store {args.db or args.data_dir / DB_FILE} is up to date")
            return 0
    except (LicentiaError, OSError, ValueError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    print(f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else ""))
    return 0


def _check_replica(args: argparse.Namespace, services: Sequence[str]) -> None:
    """Refuse what a verify-only replica (``--upstream``) cannot be: it has no database."""
    if list(services) != ["verification"]:
        raise ValueError(
            "--upstream runs a verify-only replica with no database: it serves only"
            " --services verification"
        )
    if args.follower or args.db or args.issuer_keys:
        raise ValueError("--upstream opens no database: not with --follower, --db or --issuer-keys")
    if args.upstream_staleness_seconds < 1:
        raise ValueError("--upstream-staleness-seconds must be >= 1")


def _database_files(args: argparse.Namespace) -> int:
    """The most files the store this server opens may hold (none for a verify-only replica)."""
    if args.upstream:
        return 0
    if args.db.startswith(POSTGRES_SCHEMES):
        return POSTGRES_FILES
    return SqliteStore.open_files(args.workers)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``licentia-server``; returns the exit status.

    Runs under umask 077: whatever it writes (database, keys, port file) is the operator's
    alone. The umask it found is restored on return (for callers in the same process)."""
    umask = os.umask(0o077)
    try:
        return _main(argv)
    finally:
        os.umask(umask)


def _main(argv: Sequence[str] | None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or (
        args_list[0].startswith("-") and args_list[0] not in ("-h", "--help", "--version")
    ):
        args_list.insert(0, "serve")
    ap = _parser()
    args = ap.parse_args(args_list)
    bad = 1 if args.command == "check-config" else 2
    from_file: dict[str, object] = {}
    if getattr(args, "config", None) is not None:
        try:
            table = config.read(args.config)
            from_file = config.apply(ap, args.command, table, str(args.config))
        except config.ConfigError as e:
            for line in str(e).splitlines():
                print(f"{PROG}: error: {line}", file=sys.stderr)
            return bad
        args = ap.parse_args(args_list)
    log = json_logger("licentia.server")
    if args.command == "check-ledger":
        return _check_ledger(args)
    if args.command == "migrate":
        return _migrate(args)
    if args.command == "withdraw-key":
        try:
            key_id = bytes.fromhex(args.key_id)
        except ValueError:
            print(f"{PROG}: error: a key id is 16 hex digits", file=sys.stderr)
            return 2
        store = open_store(args.db, args.data_dir / DB_FILE)
        try:
            try:
                check_key_files(args.data_dir, store)
            except ExchangeKeyError as e:
                print(f"{PROG}: error: {e}", file=sys.stderr)
                return 2
            keyring = Keyring(
                args.issuer_keys or args.data_dir / KEYS_DIR, store, SystemClock().now
            )
            keyring.load(SystemClock().now(), create=False)
            try:
                new = keyring.withdraw(key_id, SystemClock().now())
            except LicentiaError as e:
                print(f"{PROG}: error: {e}", file=sys.stderr)
                return 1
        finally:
            store.close()
        print(
            f"withdrew issuer key {key_id.hex()}; a running exchange on this store stops using"
            " it within 2 s"
        )
        if new is not None:
            print(f"new issuer key {new.key_id.hex()} ({new.text})")
        return 0
    if args.command == "deposit":
        return _deposit(args)
    if args.command == "log-key":
        signer = key_file(args.data_dir / LOG_KEY_FILE, create=False)
        if signer is None:
            print(
                f"{PROG}: error: no log key in {args.data_dir} (start the server once)",
                file=sys.stderr,
            )
            return 2
        print(vkey(Settings().log_origin, signer.public))
        return 0
    if args.command == "rotate-key":
        store = open_store(args.db, args.data_dir / DB_FILE)
        try:
            try:
                check_key_files(args.data_dir, store)
            except ExchangeKeyError as e:
                print(f"{PROG}: error: {e}", file=sys.stderr)
                return 2
            keyring = Keyring(
                args.issuer_keys or args.data_dir / KEYS_DIR, store, SystemClock().now
            )
            keyring.load(SystemClock().now())
            retiring = [k.key_id.hex() for k in keyring.key_set if k.not_after is None]
            key = keyring.rotate(SystemClock().now())
        finally:
            store.close()
        print(
            f"new issuer key {key.key_id.hex()} ({key.text}); a running exchange on this store"
            " uses it within 2 s: copy the key file to every other replica's issuer-keys directory"
        )
        for old in retiring:
            print(
                f"retired issuer key {old}: its content root is kept in {old}.root; destroy its"
                f" secret {old}.key on every replica (docs/operations.md, Issuer keys)"
            )
        return 0
    services = [s.strip() for s in args.services.split(",") if s.strip()]
    if (
        args.max_term_days < 1
        or args.heartbeat_seconds <= 0
        or args.workers <= UNARY_RESERVE
        or args.max_connections < 1
    ):
        print(
            f"{PROG}: error: --max-term-days must be >= 1, --heartbeat-seconds > 0,"
            f" --workers >= {UNARY_RESERVE + 1}, --max-connections >= 1",
            file=sys.stderr,
        )
        return bad
    try:
        check_address(args.listen, "--listen")
        if args.http:
            check_address(args.http, "--http")
            if args.upstream:
                raise ValueError("--http is not served by a verify-only replica (--upstream)")
        if args.metrics:
            check_address(args.metrics, "--metrics")
        if args.upstream:
            check_address(args.upstream, "--upstream")
        if not 0 <= args.fee_bps <= ledger.MAX_FEE_BPS:
            raise ValueError(f"--fee-bps is 0 to {ledger.MAX_FEE_BPS}: the holder earns more")
        if not is_currency(args.currency):
            raise ValueError("--currency is a 3-letter ISO 4217 code, e.g. EUR")
        if not 0 <= args.payout_delay_hours <= MAX_PAYOUT_DELAY_HOURS:  # NaN fails too
            raise ValueError(f"--payout-delay-hours is 0 to {MAX_PAYOUT_DELAY_HOURS}")
        if not 0 <= args.retention_days <= MAX_RETENTION_DAYS:  # NaN fails too
            raise ValueError(f"--retention-days is 0 to {MAX_RETENTION_DAYS}")
        settings = Settings(
            max_term_seconds=args.max_term_days * 86400,
            heartbeat_seconds=args.heartbeat_seconds,
            currency=args.currency,
            fee_bps=args.fee_bps,
            payout_delay_seconds=round(args.payout_delay_hours * 3600),
            retention_seconds=round(args.retention_days * 86400),
            status_list_size=args.status_list_size,
            status_epoch_seconds=args.status_epoch_days * 86400,
            max_asset_bytes=args.max_asset_bytes,
            max_uploads=args.max_uploads,
            asset_digest_quota=args.asset_digest_quota,
        )
        if args.upstream:
            _check_replica(args, services)
        processes = process_count(
            args.processes, services, replica=bool(args.follower or args.upstream)
        )
        ensure_file_limit(
            FileBudget(
                args.max_connections,
                _database_files(args),
                workers=processes - 1,
                # The gateway takes as many connections as gRPC (in the first process).
                http_connections=args.max_connections if args.http and not args.upstream else 0,
                metrics=bool(args.metrics),
            )
        )
        if processes > 1 and args.command != "check-config":
            check_port_free(args.listen)
    except (ValueError, OSError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return bad
    if args.command == "check-config":
        unreadable = [
            f"--{flag.replace('_', '-')} {path}: cannot be read"
            for flag in ("tls_cert", "tls_key", "upstream_tls_ca")
            if (path := getattr(args, flag)) is not None and not os.access(path, os.R_OK)
        ]
        for line in unreadable:
            print(f"{PROG}: error: {line}", file=sys.stderr)
        if unreadable:
            return 1
        subs = config.subcommands(ap)
        print(config.render(config.resolve(subs["check-config"], args, args_list, from_file)))
        return 0
    scrape: metrics.MetricsServer | None = None
    if args.metrics:  # before the workers start: they inherit its directory
        try:
            scrape = metrics.enable(args.metrics)
        except OSError as e:
            print(f"{PROG}: error: --metrics {args.metrics}: {e}", file=sys.stderr)
            return 2
        print(f"metrics on {scrape.address}", flush=True)
    json_logging()  # from here on, every line on stderr is one JSON object
    try:
        return _serve(args, settings, services, processes, log, scrape)
    finally:
        if scrape is not None:
            scrape.close()


def _serve(
    args: argparse.Namespace,
    settings: Settings,
    services: list[str],
    processes: int,
    log: logging.Logger,
    scrape: metrics.MetricsServer | None,
) -> int:
    """Build the exchange (or replica) of ``args`` and serve it until it is stopped."""
    nonces = SharedNonceTable.create() if processes > 1 else None
    if args.upstream:
        try:
            app: App | ReplicaApp = build_replica(
                args.upstream,
                tls_ca=args.upstream_tls_ca.read_bytes() if args.upstream_tls_ca else None,
                settings=settings,
                log=log,
                max_streams=stream_slots(args.workers),
                staleness_seconds=args.upstream_staleness_seconds,
            )
        except OSError as e:
            print(f"{PROG}: error: {e}", file=sys.stderr)
            return 2
        except LicentiaError as e:
            print(f"{PROG}: error: upstream {args.upstream}: {e}", file=sys.stderr)
            return 1
    else:
        try:
            app = build(
                args.data_dir,
                settings=settings,
                services=services,
                follower=args.follower,
                log=log,
                max_streams=stream_slots(args.workers),
                keys_dir=args.issuer_keys,
                db=args.db,
                shared_nonces=nonces,
            )
        except (ValueError, OSError) as e:
            print(f"{PROG}: error: {e}", file=sys.stderr)
            return 2
        if scrape is not None:
            scrape.watch(metrics.instrument(scrape.observer, app.deps.store, app.deps.hub))
    private = PrivateSocket() if processes > 1 else None
    workers: Workers | None = None
    server: RunningServer | None = None
    gateway: RunningGateway | None = None
    try:
        server_settings = ServerSettings(
            address=args.listen,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            max_workers=args.workers,
            # The workers' connections on the private socket count too.
            max_connections=args.max_connections + FILES_PER_WORKER * (processes - 1),
            reuse_port=processes > 1,
            local_address=private.address if private else None,
        )
        if isinstance(app, ReplicaApp):  # its relayed streams are coroutines, not threads
            server = start_async(server_settings, app.aio_handlers, app.service_names, log)
        else:
            server = start(server_settings, app.handlers, app.service_names, log)
            if args.http:  # in this (the first) process only, beside gRPC
                gateway = start_gateway(
                    args.http,
                    app.handlers,
                    log,
                    tls_cert=args.tls_cert,
                    tls_key=args.tls_key,
                    max_connections=args.max_connections,
                )
        if private is not None and nonces is not None:
            workers = Workers(processes - 1, worker_spec(args, server.port, private, nonces), log)
            workers.start()
            if scrape is not None:
                scrape.watch(worker_pids=lambda: workers.pids if workers is not None else [])
            log.info(
                "procs.started",
                extra={"processes": processes, "workers": workers.pids, "socket": private.address},
            )
    except (ValueError, OSError) as e:
        if gateway is not None:
            gateway.stop()
        if server is not None:
            server.stop(0)
        app.close()
        if private is not None:
            private.close()
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    json_native_stderr()  # gRPC's C core writes to stderr itself: JSON lines as well
    if args.port_file:
        args.port_file.write_text(f"{server.port}\n")
    if gateway is not None:
        print(f"http listening on {gateway.address}", flush=True)
    print(f"listening on {server.address}", flush=True)

    def before(grace: float) -> None:
        if gateway is not None:  # no new HTTP call while gRPC drains
            gateway.stop()
        if workers is not None:
            workers.stop(grace)

    install_signal_handlers(server, log, before)
    try:
        server.wait()
    finally:
        if gateway is not None:
            gateway.stop()
        if workers is not None:
            workers.stop(0)
        app.close()
        if private is not None:
            private.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
