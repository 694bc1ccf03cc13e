"""One exchange process: the store, the keys, the hub and the services it runs, wired."""

from __future__ import annotations

import logging
import os
import stat
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped]

from licentia.keys import PrivateKey, PublicKey
from licentia.v1 import (
    accounts_pb2,
    exchange_pb2,
    ledger_pb2,
    licences_pb2,
    registry_pb2,
    transparency_pb2,
    verification_pb2,
)

from . import refs, retention
from .accounts import AccountService
from .deps import Deps, Settings
from .exchange import ExchangeService
from .hub import RevocationHub
from .issuer import ExchangeKeyError, Keyring, key_file
from .ledger_service import LedgerService
from .licences import LicenceService
from .registry import RegistryService
from .rpc import Authenticator, Clock, Method, StreamLimit, SystemClock, service
from .shared_nonces import SharedNonceTable
from .store import Store, open_store
from .transparency import TransparencyService
from .verification import VerificationService

#: Service short names (the --services flag) -> (generated module, service name, servicer).
SERVICES: Mapping[str, tuple[Any, str, Callable[[Deps], Any]]] = {
    "registry": (registry_pb2, "RegistryService", RegistryService),
    "exchange": (exchange_pb2, "ExchangeService", ExchangeService),
    "licences": (licences_pb2, "LicenceService", LicenceService),
    "verification": (verification_pb2, "VerificationService", VerificationService),
    "ledger": (ledger_pb2, "LedgerService", LedgerService),
    "transparency": (transparency_pb2, "TransparencyService", TransparencyService),
    "accounts": (accounts_pb2, "AccountService", AccountService),
}
#: What a follower (read-only replica) serves; every other method answers NOT_SERVED.
FOLLOWER_METHODS = frozenset(
    {
        "Verify",
        "VerifyStream",
        "GetLicence",
        "ListLicences",
        "WatchRevocations",
        "GetStatusSnapshot",
        "GetIssuerKeys",
        "ListAccesses",
        "WatchLicenceEvents",
        "GetProfile",
        "ListAssets",
        "GetTerms",
        "ListPlatforms",
        "SearchOffers",
        "GetRequest",
        "ListInbox",
        "ListStandingRules",
        "ListPayoutDestinations",
        "GetCheckpoint",
        "GetEntries",
        "GetInclusionProof",
        "GetConsistencyProof",
        "GetKeySet",
        "GetPairing",
        "ListConsents",
    }
)
#: On a store other processes write to, the hub reads it at least this often (the safety
#: net under the store's notifications) and re-reads the issuer keys.
SAFETY_POLL_SECONDS = 1.0
#: A primary re-reads the issuer keys this often, so that `licentia-server rotate-key` or
#: `withdraw-key`, run against its store by another process, takes effect without a restart.
KEY_REFRESH_SECONDS = 2.0
DB_FILE = "licentia.db"
KEYS_DIR = "issuer-keys"
#: The exchange operator's key seed (0600), created on first start.
OPERATOR_KEY_FILE = "operator.key"
#: The key that signs the public log's checkpoints (0600), created on first start.
LOG_KEY_FILE = "log.key"
#: The exchange's own keys, which every replica must share: the name the store records each
#: under (:meth:`.store.Store.exchange_keys`), its file in the data directory, what it is.
SHARED_KEYS = (
    ("operator", OPERATOR_KEY_FILE, "operator key"),
    ("log", LOG_KEY_FILE, "log key"),
)


@dataclass
class App:
    """A built exchange: hand :attr:`handlers` to the gRPC server, :meth:`close` at the end."""

    deps: Deps
    handlers: list[grpc.GenericRpcHandler]
    service_names: list[str]
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def close(self) -> None:
        """End the streams and background work, then release the store."""
        self._stop.set()
        self.deps.hub.close()
        for t in self._threads:
            t.join(timeout=5)
        self.deps.store.close()


def build(
    data_dir: Path,
    *,
    settings: Settings | None = None,
    services: Sequence[str] = tuple(SERVICES),
    follower: bool = False,
    clock: Clock | None = None,
    log: logging.Logger | None = None,
    poll_seconds: float = 0.1,
    max_streams: int = 200,
    keys_dir: Path | None = None,
    db: str = "",
    sweep_seconds: float = retention.SWEEP_SECONDS,
    shared_nonces: SharedNonceTable | None = None,
) -> App:
    """Open (or create) the exchange in ``data_dir`` and build the services asked for.

    A ``follower`` (a verify-only replica on the same data directory) never writes: it
    follows the store's revocations by polling every ``poll_seconds`` and answers
    STATUS_STALE if it cannot read them for three heartbeats. On a store that several
    processes write (PostgreSQL), every replica follows the others' revocations the same
    way, woken by the store's notifications, with a read at least every
    :data:`SAFETY_POLL_SECONDS` (:meth:`.hub.RevocationHub.follow`). At most ``max_streams``
    response streams are open at once (keep it below the server's worker threads).
    ``keys_dir`` holds the issuer keys' secret files (default: ``issuer-keys/`` in
    ``data_dir``). ``db`` names the store (:func:`.store.open_store`): empty for the SQLite
    file in ``data_dir``, or ``postgresql://…``; the data directory still holds the keys,
    which must be the exchange's: :func:`load_keys` raises :class:`.issuer.ExchangeKeyError`
    (a ValueError) when they are not, and nothing is served. A process that writes runs the
    retention sweep every ``sweep_seconds`` (:mod:`.retention`). With ``shared_nonces``
    (the first process of ``--processes N``), the request and presentation nonces seen in
    memory are those of every process of the server (:mod:`.shared_nonces`).
    """
    settings = settings or Settings()
    clock = clock or SystemClock()
    log = log or logging.getLogger("licentia.server")
    unknown = sorted(set(services) - set(SERVICES))
    if unknown or not services:
        raise ValueError(f"unknown services: {', '.join(unknown) or '(none)'}")
    private_directory(data_dir, create=not follower)
    store = open_store(db, data_dir / DB_FILE, read_only=follower)
    try:
        keyring, keys = load_keys(
            data_dir, store, keys_dir or data_dir / KEYS_DIR, clock, follower=follower
        )
        if not follower:  # made at the first start, kept in the store for every replica
            store.exchange_secret(refs.SECRET_NAME)
    except BaseException:
        store.close()
        raise
    hub = RevocationHub(store, keyring, clock.now)
    operator = keys["operator"]
    deps = Deps(
        store,
        keyring,
        hub,
        clock,
        settings,
        operator_key=operator.public.raw if operator is not None else None,
        log_key=keys["log"],
    )
    if shared_nonces is not None:
        deps.presentation_nonces = shared_nonces.view(b"presentation")
    seen = shared_nonces.view(b"request") if shared_nonces is not None else None
    # Every signed call spends its nonce in the store before it is answered, so the window
    # does not start at this process's start; a follower cannot write, so its does.
    auth = (
        Authenticator(seen, not_before=clock.now())
        if follower
        else Authenticator(seen, record=store.spend_nonces)
    )
    streams = StreamLimit(max_streams, settings.max_streams_per_client)
    app = App(deps, [], [])
    for name in services:
        module, service_name, servicer = SERVICES[name]
        methods: Mapping[str, Method] = servicer(deps).methods()
        if follower:
            methods = {k: m for k, m in methods.items() if k in FOLLOWER_METHODS}
        descriptor = module.DESCRIPTOR.services_by_name[service_name]
        app.handlers.append(service(descriptor, methods, auth, clock, log, streams))
        app.service_names.append(descriptor.full_name)
    if follower or store.shared():
        # Other processes write revocations: follow the store, woken by its notifications
        # where it has them, and answer STATUS_STALE when it cannot be read.
        hub.staleness_bound = max(3 * int(settings.heartbeat_seconds), 3)
        interval = max(poll_seconds, SAFETY_POLL_SECONDS) if store.shared() else poll_seconds
        t = threading.Thread(
            target=hub.follow,
            args=(app._stop, interval),
            kwargs={"on_poll": keyring.refresh, "log": log},
            name="licentia-follow",
            daemon=True,
        )
        t.start()
        app._threads.append(t)
    else:
        t = threading.Thread(
            target=_refresh_keys,
            args=(app._stop, keyring, KEY_REFRESH_SECONDS, log),
            name="licentia-keys",
            daemon=True,
        )
        t.start()
        app._threads.append(t)
    if not follower:
        t = threading.Thread(
            target=retention.run,
            args=(app._stop, store, clock.now, settings.retention_seconds, sweep_seconds, log),
            name="licentia-retention",
            daemon=True,
        )
        t.start()
        app._threads.append(t)
    return app


def load_keys(
    data_dir: Path, store: Store, keys_dir: Path, clock: Clock, *, follower: bool = False
) -> tuple[Keyring, dict[str, PrivateKey | None]]:
    """The exchange's keys for a process on ``store``: its issuer keyring, and its operator
    and log keys by name (:data:`SHARED_KEYS`; None only for a follower without the file).

    Every replica of an exchange must hold the exchange's keys, never its own: the store
    records the public operator and log keys the first time an exchange starts on it (on a
    store that predates the record, the first start after the upgrade), and every later
    start checks its key files against that record. A difference, a missing file, or no
    secret for the issuer key the store publishes as current raises
    :class:`.issuer.ExchangeKeyError`, naming the key and what to do, before anything is
    written or served. Key files are created only on a new store (no issuer key published
    and no key recorded). A follower (read-only) creates and records nothing; the key files
    it has must still be the exchange's.
    """
    recorded = store.exchange_keys()
    keyring = Keyring(keys_dir, store, clock.now)
    keyring.load(clock.now(), create=False)
    fresh = len(keyring.key_set) == 0  # no issuer key published yet: a new exchange
    keys = {
        name: _shared_key(
            data_dir / file,
            what,
            recorded.get(name),
            create=fresh and not follower and name not in recorded,
            required=not follower and (name in recorded or not fresh),
        )
        for name, file, what in SHARED_KEYS
    }
    if follower:
        return keyring, keys
    if not fresh:
        _check_issuer_secrets(keyring, clock.now())
    if any(name not in recorded for name, _, _ in SHARED_KEYS):
        # The first start on this store (or the first since the record exists): record
        # these keys, unless another replica starting at the same moment recorded its own.
        publics = {name: key.public.raw for name, key in keys.items() if key is not None}
        recorded = store.record_exchange_keys(publics, clock.now())
        for name, file, what in SHARED_KEYS:
            _shared_key(data_dir / file, what, recorded.get(name), create=False, required=True)
    if fresh:  # the first issuer key, made after the record: a replica refused makes none
        keyring.load(clock.now(), create=True)
        _check_issuer_secrets(keyring, clock.now())
    return keyring, keys


def check_key_files(data_dir: Path, store: Store) -> None:
    """Raise :class:`.issuer.ExchangeKeyError` when the data directory's operator or log key
    is missing or differs from the store's record (the key commands' check before they
    publish or withdraw an issuer key: a wrong data directory changes nothing)."""
    recorded = store.exchange_keys()
    for name, file, what in SHARED_KEYS:
        if name in recorded:
            _shared_key(data_dir / file, what, recorded[name], create=False, required=True)


def _shared_key(
    path: Path, what: str, recorded: bytes | None, *, create: bool, required: bool
) -> PrivateKey | None:
    """The key in ``path`` (created if ``create`` and absent), checked against the public
    key the store records for it (``recorded``, if any)."""
    key = key_file(path, create=create)
    copy = (
        f"copy the exchange's key files ({OPERATOR_KEY_FILE}, {LOG_KEY_FILE} and {KEYS_DIR}/)"
        f" from the data directory of a replica of this exchange into {path.parent}"
    )
    if key is None:
        if not required:
            return None
        if recorded is not None:
            raise ExchangeKeyError(
                f"{path} is missing, but the store records this exchange's {what}"
                f" ({PublicKey(recorded).text}): a replica runs with the exchange's own keys"
                f" and never makes its own; {copy}"
            )
        raise ExchangeKeyError(
            f"{path} is missing, but the store already holds an exchange (its issuer keys are"
            f" published): a replica runs with the exchange's own keys and never makes its"
            f" own; {copy}"
        )
    if recorded is not None and key.public.raw != recorded:
        raise ExchangeKeyError(
            f"the {what} in {path} ({key.public.text}) is not this exchange's: the store"
            f" records {PublicKey(recorded).text}; this data directory belongs to another"
            f" exchange. Start with --db pointing at that exchange's store, or {copy}"
        )
    return key


def _check_issuer_secrets(keyring: Keyring, now: int) -> None:
    """Refuse to start without the secret of the issuer key the store publishes as current
    (it would answer every issuance with UNAVAILABLE, "no secret for the current issuer key")."""
    missing = keyring.missing_secrets(now)
    if missing:
        names = ", ".join(f"{key_id.hex()}.key" for key_id in missing)
        raise ExchangeKeyError(
            f"{keyring.keys_dir} has no secret for the issuer key the store publishes as this"
            f" exchange's current one ({names}): copy the exchange's issuer key files there"
            " from the data directory of a replica of this exchange (or point --issuer-keys"
            " at them)"
        )


def private_directory(path: Path, *, create: bool = True) -> None:
    """Make the data directory ``path`` the exchange's alone, or refuse it (``ValueError``).

    A missing directory is created 0700 (``create``), whatever the umask. An existing one
    owned by another account, or one that others may write to (they could plant or swap the
    database or a key), is refused; one that others may only read is tightened to 0700."""
    if create and not path.exists():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(path, 0o700)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ValueError(f"the data directory {path} does not exist") from None
    if not stat.S_ISDIR(st.st_mode):
        raise ValueError(f"the data directory {path} is not a directory")
    if st.st_uid != os.geteuid():
        raise ValueError(f"the data directory {path} belongs to another account")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ValueError(
            f"the data directory {path} may be written by others (mode"
            f" {stat.S_IMODE(st.st_mode):04o}): make it 0700 (chmod 700) and check its files"
        )
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)


def _refresh_keys(
    stop: threading.Event, keyring: Keyring, every: float, log: logging.Logger
) -> None:
    """Re-read the published issuer keys every ``every`` seconds until ``stop`` is set."""
    while not stop.wait(every):
        try:
            keyring.refresh()
        except Exception:
            log.warning("keys.refresh_failed", exc_info=True)
