"""One exchange process: the store, the keys, the hub and the services it runs, wired."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped]

from licentia.v1 import (
    exchange_pb2,
    ledger_pb2,
    licences_pb2,
    registry_pb2,
    transparency_pb2,
    verification_pb2,
)

from .deps import Deps, Settings
from .exchange import ExchangeService
from .hub import RevocationHub
from .issuer import Keyring, key_file
from .ledger_service import LedgerService
from .licences import LicenceService
from .registry import RegistryService
from .rpc import Authenticator, Clock, Method, StreamLimit, SystemClock, service
from .store import open_store
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
        "GetCheckpoint",
        "GetEntries",
        "GetInclusionProof",
        "GetConsistencyProof",
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
    file in ``data_dir``, or ``postgresql://…``; the data directory still holds the keys.
    """
    settings = settings or Settings()
    clock = clock or SystemClock()
    log = log or logging.getLogger("licentia.server")
    unknown = sorted(set(services) - set(SERVICES))
    if unknown or not services:
        raise ValueError(f"unknown services: {', '.join(unknown) or '(none)'}")
    store = open_store(db, data_dir / DB_FILE, read_only=follower)
    keyring = Keyring(keys_dir or data_dir / KEYS_DIR, store, clock.now)
    keyring.load(clock.now(), create=not follower)
    hub = RevocationHub(store, keyring, clock.now)
    operator = key_file(data_dir / OPERATOR_KEY_FILE, create=not follower)
    deps = Deps(
        store,
        keyring,
        hub,
        clock,
        settings,
        operator_key=operator.public.raw if operator is not None else None,
        log_key=key_file(data_dir / LOG_KEY_FILE, create=not follower),
    )
    # Every signed call spends its nonce in the store before it is answered, so the window
    # does not start at this process's start; a follower cannot write, so its does.
    auth = (
        Authenticator(not_before=clock.now())
        if follower
        else Authenticator(record=store.spend_nonces)
    )
    streams = StreamLimit(max_streams)
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
    return app


def _refresh_keys(
    stop: threading.Event, keyring: Keyring, every: float, log: logging.Logger
) -> None:
    """Re-read the published issuer keys every ``every`` seconds until ``stop`` is set."""
    while not stop.wait(every):
        try:
            keyring.refresh()
        except Exception:
            log.warning("keys.refresh_failed", exc_info=True)
