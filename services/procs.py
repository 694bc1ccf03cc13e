"""``licentia-server --processes N``: one port served by N processes.

The first process is the exchange, as with one process: the one store, every write, every
spent nonce. It binds the port with ``SO_REUSEPORT`` and also listens on a Unix socket in a
private (0700) temporary directory. It then starts N-1 worker processes
(``python -m licentia.services.worker``, :mod:`.worker`), which bind the same port (the
kernel spreads new connections over the N listeners) and:

- answer ``Verify`` and ``VerifyStream`` themselves, from memory, as a verify-only replica
  does (:mod:`.replica`'s pieces): the issuer keys and status list followed live from the
  first process's revocation feed over the Unix socket
  (:class:`licentia.transport.follow.StatusFollower`: fail closed with STATUS_STALE past
  three heartbeats), the platforms' keys from its ``ListPlatforms``;
- relay every other call to the first process byte for byte (:mod:`.forward`), and so a
  unary ``Verify`` of a counted licence (``max_uses``), whose uses only the store knows.

Replay: every process checks the request nonces and the presentation nonces of the calls it
answers against one table in shared memory (:mod:`.shared_nonces`): a nonce spent at one
process is refused by all of them. A relayed call's nonce is checked only by the first
process (the worker does not look at it), which also spends it durably as usual.

Lifetimes: each worker holds the read end of a pipe whose write end only the first process
holds; when that closes (the first process ended, even by SIGKILL) the worker exits at once.
A worker that dies is started again (after a pause that grows while they keep dying). The
port file is written, and ``listening on`` printed, once every worker is serving.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from licentia.methods import path
from licentia.v1 import verification_pb2

from .app import SERVICES
from .shared_nonces import SharedNonceTable

#: The services the first process must run for its workers to follow it: the revocation
#: feed and issuer keys (licences), the platforms (registry), and Verify itself.
NEEDED_SERVICES = ("verification", "licences", "registry")
VERIFY = path(verification_pb2, "Verify")
VERIFY_STREAM = path(verification_pb2, "VerifyStream")
#: The most processes ``--processes`` takes (a typo must not start thousands).
MAX_PROCESSES = 256
#: How long the first process waits for a worker to serve before it gives up starting.
READY_SECONDS = 60.0
#: The pause before a dead worker is started again, doubling while they keep dying.
RESTART_PAUSE = (0.5, 30.0)
#: A worker that served this long before dying is restarted after the shortest pause.
STABLE_SECONDS = 60.0
READY = b"ready\n"


def default_processes() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover (not Linux)
        return os.cpu_count() or 1


def process_count(requested: int, services: Sequence[str], *, replica: bool) -> int:
    """How many processes serve the port: ``requested`` (``--processes``), or for 0 one per
    core where workers can follow the first process (a ``replica``, ``--follower`` or
    ``--upstream``, runs alone); raises ``ValueError`` for a count that cannot work."""
    if not 0 <= requested <= MAX_PROCESSES:
        raise ValueError(f"--processes is 0 (one per core) to {MAX_PROCESSES}")
    why = None
    if replica:
        why = "a --follower or --upstream replica runs as one process (run several replicas)"
    elif not set(NEEDED_SERVICES) <= set(services):
        why = (
            "its workers follow the first process's revocation feed, keys and platforms and"
            f" serve Verify: --services must include {','.join(NEEDED_SERVICES)}"
        )
    if requested == 0:
        return 1 if why else default_processes()
    if requested > 1 and why:
        raise ValueError(f"--processes {requested} cannot work here: {why}")
    return requested


def check_port_free(address: str) -> None:
    """Raise ``OSError`` if ``address``'s port is taken. A port shared with ``SO_REUSEPORT``
    would let a second server on it join the first silently; a bind without it fails then."""
    host, _, port = address.rpartition(":")
    if int(port) == 0:
        return
    host = host.strip("[]")
    family, kind, proto, _, sockaddr = socket.getaddrinfo(host, int(port), 0, socket.SOCK_STREAM)[0]
    with socket.socket(family, kind, proto) as s:
        try:
            s.bind(sockaddr)
        except OSError as e:
            raise OSError(f"cannot listen on {address}: {e.strerror}") from None


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker is told (as JSON on its command line): nothing secret."""

    listen: str
    primary: str
    nonces_fd: int
    nonce_buckets: int
    tls_cert: str | None
    tls_key: str | None
    max_workers: int
    max_connections: int
    heartbeat_seconds: float
    max_term_seconds: int
    service_names: tuple[str, ...]
    index: int = 0


def worker_spec(
    args: argparse.Namespace, port: int, private: PrivateSocket, nonces: SharedNonceTable
) -> WorkerSpec:
    """What each worker is told, from ``licentia-server serve``'s ``args``: the port the
    first process bound (``port``), its ``private`` socket and the ``nonces`` table."""
    return WorkerSpec(
        listen=f"{args.listen.rpartition(':')[0]}:{port}",
        primary=private.address,
        nonces_fd=nonces.fd,
        nonce_buckets=nonces.buckets,
        tls_cert=str(args.tls_cert) if args.tls_cert else None,
        tls_key=str(args.tls_key) if args.tls_key else None,
        max_workers=args.workers,
        max_connections=args.max_connections,
        heartbeat_seconds=args.heartbeat_seconds,
        max_term_seconds=args.max_term_days * 86400,
        service_names=tuple(
            m.DESCRIPTOR.services_by_name[name].full_name for m, name, _ in SERVICES.values()
        ),
    )


class PrivateSocket:
    """A Unix socket address in a new 0700 directory, removed by :meth:`close`."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="licentia-"))
        self.address = f"unix:{self.directory / 'primary.sock'}"

    def close(self) -> None:
        """Remove the directory and the socket."""
        shutil.rmtree(self.directory, ignore_errors=True)


class Workers:
    """The N-1 worker processes of the first process: started, watched, restarted, stopped."""

    def __init__(
        self, count: int, spec: WorkerSpec, log: logging.Logger, *, stderr: int | None = None
    ) -> None:
        self.count = count
        self.spec = spec
        self.log = log
        # Workers write their JSON lines to the stderr the server was given, even after
        # json_native_stderr has made descriptor 2 a pipe.
        self._stderr = os.dup(2 if stderr is None else stderr)
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._procs: dict[int, subprocess.Popen[bytes]] = {}
        self._ready = [threading.Event() for _ in range(count)]
        self._failed: list[str] = []
        self._threads: list[threading.Thread] = []
        #: Times a worker was started again after it died.

    @property
    def pids(self) -> list[int]:
        """The workers' process ids now."""
        with self._lock:
            return [p.pid for p in self._procs.values()]

    def start(self, timeout: float = READY_SECONDS) -> None:
        """Start every worker and wait until each serves; raises ``OSError`` (and stops
        them) if one ends first or does not serve within ``timeout``."""
        for i in range(self.count):
            t = threading.Thread(
                target=self._keep, args=(i,), name=f"licentia-worker-{i + 1}", daemon=True
            )
            t.start()
            self._threads.append(t)
        deadline = time.monotonic() + timeout
        for ready in self._ready:
            while not ready.wait(0.05):
                if self._failed or time.monotonic() > deadline:
                    self.stop(0)
                    why = self._failed[0] if self._failed else f"not serving after {timeout} s"
                    raise OSError(f"a worker process failed to start: {why}")

    def _spawn(self, i: int) -> subprocess.Popen[bytes]:
        spec = json.dumps(asdict(WorkerSpec(**{**asdict(self.spec), "index": i + 1})))
        return subprocess.Popen(  # noqa: S603 (this interpreter, our module, our spec)
            [sys.executable, "-m", "licentia.services.worker", spec],
            stdin=subprocess.PIPE,  # its end of the lifeline (see worker_main)
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            pass_fds=(self.spec.nonces_fd,),
            start_new_session=True,  # a terminal's Ctrl-C reaches the first process alone
        )

    def _keep(self, i: int) -> None:
        """Run worker ``i`` until :meth:`stop`, starting it again whenever it dies."""
        pause = RESTART_PAUSE[0]
        while not self._stopping.is_set():
            started = time.monotonic()
            proc = self._spawn(i)
            with self._lock:
                self._procs[i] = proc
            assert proc.stdout is not None
            line = proc.stdout.readline()  # READY, or EOF if it ended first
            if line == READY:
                self._ready[i].set()
                self.log.info("procs.worker_started", extra={"worker": i + 1, "pid": proc.pid})
            code = proc.wait()
            proc.stdout.close()
            if proc.stdin is not None:
                proc.stdin.close()
            if self._stopping.is_set():
                return
            if not self._ready[i].is_set():
                self._failed.append(f"worker {i + 1} exited with {code} (see its log line)")
                return
            self.log.warning(
                "procs.worker_exited", extra={"worker": i + 1, "pid": proc.pid, "code": code}
            )
            pause = RESTART_PAUSE[0] if time.monotonic() - started > STABLE_SECONDS else pause
            if self._stopping.wait(pause):
                return
            pause = min(pause * 2, RESTART_PAUSE[1])

    def stop(self, grace: float) -> None:
        """Drain the workers (SIGTERM: calls in flight finish within ``grace``), kill any
        left after it, and wait for them."""
        self._stopping.set()
        with self._lock:
            procs = list(self._procs.values())
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace + 2
        for p in procs:
            try:
                p.wait(max(deadline - time.monotonic(), 0))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for t in self._threads:
            t.join(timeout=5)
        if self._stderr >= 0:
            os.close(self._stderr)
            self._stderr = -1
