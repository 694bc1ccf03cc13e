"""Running a gRPC server: settings, health, reflection, TLS, and a graceful drain."""

from __future__ import annotations

import collections
import logging
import resource
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, ParamSpec, TypeVar

import grpc  # type: ignore[import-untyped]
from grpc_health.v1 import health, health_pb2, health_pb2_grpc  # type: ignore[import-untyped]

from . import reflection

#: Largest message a client channel accepts (responses such as an export or an asset).
CLIENT_MAX_RECEIVE_BYTES = 16 * 1024 * 1024
#: A worker thread that has had nothing to do for this long ends (a burst's threads go away).
WORKER_IDLE_SECONDS = 0.25
#: Open files the server needs whatever its configuration: standard streams, gRPC's polling
#: and wake-up descriptors, the listening sockets, the database writer, key files, logs.
BASE_FILES = 64
#: Open files one incoming connection holds (its socket).
FILES_PER_CONNECTION = 1
#: Open files the first process of ``--processes N`` holds per worker process: the pipes
#: to it and its connection on the private socket, with one to spare.
FILES_PER_WORKER = 4
#: Open files the metrics server (``--metrics``) holds whatever the number of processes: its
#: listening socket, the scrapes being answered (one thread and socket each) and files
#: read while it sums the processes' metrics.
METRICS_FILES = 16
#: Open files ``--metrics`` holds per process: its metric files (one per kind of metric,
#: kept open and mapped), read by the first process at each scrape too.
METRICS_FILES_PER_PROCESS = 8
#: How long a thread may hold the GIL while another waits for it (CPython's default: 5 ms).
#: A call's handler releases the GIL for each Ed25519 check and each SQLite statement and must
#: take it back to go on; with dozens of handler and gRPC threads, each such return waited up
#: to 5 ms behind whichever thread ran Python meanwhile, while the C work of others (signature
#: checks on the second core) sat idle. At 0.5 ms the server answered more calls of every kind
#: on a quiet 2-core machine (echo most) and Verify's and RequestLicence's share of the echo
#: rose on a loaded one (docs/performance.md, issue 20); a server process sets it at start.
SWITCH_INTERVAL_SECONDS = 0.0005
_P = ParamSpec("_P")
_T = TypeVar("_T")
_KEEPALIVE = (
    ("grpc.keepalive_time_ms", 60_000),  # ping an idle connection every minute
    ("grpc.keepalive_timeout_ms", 20_000),  # and drop it when the ping is not answered
)


@dataclass
class ServerSettings:
    """How to run the server.

    ``address`` is ``host:port`` (port 0 picks a free one). TLS is used when both
    ``tls_cert`` and ``tls_key`` (PEM files) are given. ``max_receive_bytes`` bounds any
    incoming message before the per-method caps apply; ``grace_seconds`` is how long a
    stop lets calls in flight finish.
    """

    address: str = "127.0.0.1:0"
    tls_cert: Path | None = None
    tls_key: Path | None = None
    max_workers: int = 32
    max_connections: int = 512
    max_receive_bytes: int = 2 * 1024 * 1024
    max_send_bytes: int = CLIENT_MAX_RECEIVE_BYTES
    grace_seconds: float = 5.0
    #: Share the port with the other processes of ``--processes N`` (``SO_REUSEPORT``).
    reuse_port: bool = False
    #: A second, private address to listen on without TLS (``unix:PATH``: the first
    #: process's socket for its workers), or None.
    local_address: str | None = None

    def __post_init__(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("TLS needs both a certificate and a key")
        check_address(self.address, "the listen address")
        if self.max_workers < 1 or self.max_connections < 1:
            raise ValueError("max_workers and max_connections must be positive")


def check_address(address: str, what: str) -> None:
    """Raise ``ValueError`` unless ``address`` is ``HOST:PORT`` with a port of 0 to 65535
    (``[v6]:PORT`` for an IPv6 address): gRPC would take a bare host for port 443."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(
            f"{what} must be HOST:PORT, with the port (0 for any free one): {address!r}"
        )


class ElasticExecutor(futures.Executor):
    """Runs submitted calls on at most ``max_workers`` threads, started when work arrives
    and no thread is free; a thread idle for ``idle_seconds`` ends. (The standard
    ``ThreadPoolExecutor`` keeps every thread it ever started: after a burst of calls the
    process would hold hundreds of idle threads for good.) Work beyond ``max_workers``
    waits in order for a free thread."""

    def __init__(
        self,
        max_workers: int,
        idle_seconds: float = WORKER_IDLE_SECONDS,
        thread_name_prefix: str = "worker",
    ) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be positive")
        self.max_workers = max_workers
        self.idle_seconds = idle_seconds
        self._prefix = thread_name_prefix
        self._cond = threading.Condition(threading.Lock())
        self._work: collections.deque[tuple[futures.Future[Any], Callable[[], Any]]] = (
            collections.deque()
        )
        self._threads = 0
        self._idle = 0
        self._started = 0
        self._shutdown = False

    @property
    def threads(self) -> int:
        """The worker threads alive now."""
        return self._threads

    def submit(
        self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs
    ) -> futures.Future[_T]:
        """Schedule ``fn(*args, **kwargs)``; its future."""
        future: futures.Future[_T] = futures.Future()
        with self._cond:
            if self._shutdown:
                raise RuntimeError("cannot schedule new work after shutdown")
            self._work.append((future, lambda: fn(*args, **kwargs)))
            if self._idle >= len(self._work):
                self._cond.notify()
            elif self._threads < self.max_workers:
                self._threads += 1
                self._started += 1
                name = f"{self._prefix}_{self._started}"
                threading.Thread(target=self._run, name=name, daemon=True).start()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Refuse new work; idle threads end at once, busy ones after their work."""
        with self._cond:
            self._shutdown = True
            if cancel_futures:
                while self._work:
                    self._work.popleft()[0].cancel()
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._work:
                    if self._shutdown:
                        self._threads -= 1
                        return
                    self._idle += 1
                    woken = self._cond.wait(self.idle_seconds)
                    self._idle -= 1
                    if not woken and not self._work:
                        self._threads -= 1
                        return
                future, work = self._work.popleft()
            if future.set_running_or_notify_cancel():
                try:
                    result = work()
                except BaseException as e:  # noqa: BLE001 (handed to the future)
                    future.set_exception(e)
                else:
                    future.set_result(result)
            del future, work  # hold nothing of a finished call while idle


@dataclass(frozen=True)
class FileBudget:
    """The open files a configuration may need at most, against ``RLIMIT_NOFILE``."""

    connections: int
    database: int
    #: The worker processes this (first) process starts and watches.
    workers: int = 0
    #: The HTTP gateway's connections (``--http``; 0 without it).
    http_connections: int = 0
    #: Whether the metrics server runs (``--metrics``).
    metrics: bool = False

    @property
    def metrics_files(self) -> int:
        """The open files ``--metrics`` takes (0 without it)."""
        if not self.metrics:
            return 0
        return METRICS_FILES + METRICS_FILES_PER_PROCESS * (self.workers + 1)

    @property
    def needed(self) -> int:
        """The most open files the server may hold."""
        return (
            BASE_FILES
            + self.connections * FILES_PER_CONNECTION
            + self.database
            + self.workers * FILES_PER_WORKER
            + self.http_connections * FILES_PER_CONNECTION
            + self.metrics_files
        )

    def describe(self) -> str:
        """The sum, in words."""
        plural = "s" if self.workers != 1 else ""
        parts = [
            f"{BASE_FILES} base",
            f"{self.connections} connections",
            f"{self.database} for the database",
        ]
        if self.workers:
            parts.append(f"{self.workers * FILES_PER_WORKER} for {self.workers} worker{plural}")
        if self.http_connections:
            parts.append(f"{self.http_connections} for the HTTP gateway's connections")
        if self.metrics:
            parts.append(f"{self.metrics_files} for the metrics server")
        return f"{self.needed} open files ({' + '.join(parts)})"


def ensure_file_limit(budget: FileBudget) -> int:
    """Make sure the process may open ``budget.needed`` files: raise the soft
    ``RLIMIT_NOFILE`` up to the hard limit when it is lower; returns the soft limit then in
    force. Raises ``ValueError``, saying what to change, when even the hard limit is lower."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = budget.needed
    if soft != resource.RLIM_INFINITY and soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            raise ValueError(
                f"this configuration needs up to {budget.describe()}, but this process may open"
                f" only {hard} (ulimit -n): lower --max-connections or --workers, or raise the"
                " limit"
            )
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
        soft = need
    return soft


class RunningServer:
    """A started server: its bound port and address, and how to stop it."""

    def __init__(
        self,
        server: grpc.Server,
        health_servicer: health.HealthServicer,
        address: str,
        port: int,
        grace_seconds: float,
        log: logging.Logger,
    ) -> None:
        self._server = server
        self._health = health_servicer
        self.address = address
        self.port = port
        self.grace_seconds = grace_seconds
        self._log = log

    def stop(self, grace: float | None = None) -> None:
        """Drain: report NOT_SERVING, refuse new calls, let calls in flight finish for
        ``grace`` seconds (default: the settings'), cancel the rest; returns when stopped."""
        grace = self.grace_seconds if grace is None else grace
        self._health.enter_graceful_shutdown()
        self._log.info("server.stopping", extra={"address": self.address, "grace_s": grace})
        self._server.stop(grace).wait()
        self._log.info("server.stopped", extra={"address": self.address})

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the server has stopped (or ``timeout``); True once it has."""
        # grpc answers whether the timeout ran out (True) rather than whether it stopped.
        return not self._server.wait_for_termination(timeout)


def server_options(settings: ServerSettings) -> list[tuple[str, Any]]:
    """The gRPC options of a server run with ``settings`` (sync or asyncio)."""
    return [
        ("grpc.max_allowed_incoming_connections", settings.max_connections),
        ("grpc.max_receive_message_length", settings.max_receive_bytes),
        ("grpc.max_send_message_length", settings.max_send_bytes),
        *_KEEPALIVE,
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", 30_000),
        # A port in use is an error, not a shared listener, unless this is one of the
        # processes of --processes N (the first checked that the port was free).
        ("grpc.so_reuseport", 1 if settings.reuse_port else 0),
    ]


def equip(
    server: Any,
    settings: ServerSettings,
    handlers: Sequence[grpc.GenericRpcHandler],
    service_names: Sequence[str],
) -> tuple[health.HealthServicer, int]:
    """Give ``server`` (sync or grpc.aio: the same calls) ``handlers``, the standard health
    service (SERVING for "" and each of ``service_names``) and server reflection, and bind
    ``settings.address`` (TLS when a certificate is set); ``(health servicer, port)``.
    Raises ``OSError`` if it cannot bind."""
    server.add_generic_rpc_handlers(tuple(handlers))
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", *service_names):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable(server, (*service_names, health.SERVICE_NAME))
    try:
        if settings.tls_cert is not None and settings.tls_key is not None:
            pair = (settings.tls_key.read_bytes(), settings.tls_cert.read_bytes())
            port = server.add_secure_port(settings.address, grpc.ssl_server_credentials([pair]))
        else:
            port = server.add_insecure_port(settings.address)
    except RuntimeError as e:  # grpc reports a failed bind this way
        raise OSError(f"cannot listen on {settings.address}") from e
    return health_servicer, int(port)


def start(
    settings: ServerSettings,
    handlers: Sequence[grpc.GenericRpcHandler],
    service_names: Sequence[str],
    log: logging.Logger,
) -> RunningServer:
    """Start a server with ``handlers``, the standard health service (SERVING for "" and
    each of ``service_names``) and server reflection (``grpc.reflection.v1`` and ``v1alpha``,
    :mod:`.reflection`); raises ``OSError`` if it cannot bind. Sets the process's GIL switch
    interval to :data:`SWITCH_INTERVAL_SECONDS` (the process is a server's)."""
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    server = grpc.server(
        ElasticExecutor(settings.max_workers, thread_name_prefix="licentia-rpc"),
        options=server_options(settings),
    )
    health_servicer, port = equip(server, settings, handlers, service_names)
    tls = settings.tls_cert is not None and settings.tls_key is not None
    if settings.local_address is not None:
        try:
            server.add_insecure_port(settings.local_address)
        except RuntimeError as e:
            raise OSError(f"cannot listen on {settings.local_address}") from e
    server.start()
    address = f"{settings.address.rpartition(':')[0]}:{port}"
    log.info(
        "server.started", extra={"address": address, "tls": tls, "services": list(service_names)}
    )
    return RunningServer(server, health_servicer, address, port, settings.grace_seconds, log)


def install_signal_handlers(
    server: RunningServer,
    log: logging.Logger,
    before: Callable[[float], None] | None = None,
) -> None:
    """On SIGTERM or SIGINT, drain ``server`` (:meth:`RunningServer.stop`) in a thread; a
    second signal stops it at once. ``before(grace)``, if given, runs first (the workers of
    ``--processes N`` drain while the first process still serves their calls in flight).
    Call from the main thread."""
    signals = 0

    def drain(name: str, grace: float) -> None:
        log.info("server.signal", extra={"signal": name, "grace_s": grace})
        if before is not None:
            before(grace)
        server.stop(grace)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal signals
        signals += 1
        grace = server.grace_seconds if signals == 1 else 0.0
        args = (signal.Signals(signum).name, grace)
        threading.Thread(target=drain, args=args, name="licentia-drain").start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def client_channel(address: str, tls_ca: bytes | None = None) -> grpc.Channel:
    """A channel to ``address``: TLS checked against ``tls_ca`` (PEM) when given."""
    options = [("grpc.max_receive_message_length", CLIENT_MAX_RECEIVE_BYTES), *_KEEPALIVE]
    if tls_ca is None:
        return grpc.insecure_channel(address, options=options)
    credentials = grpc.ssl_channel_credentials(root_certificates=tls_ca)
    return grpc.secure_channel(address, credentials, options=options)
