"""A worker process of ``licentia-server --processes N`` (:mod:`.procs` starts it).

It binds the first process's port (``SO_REUSEPORT``), answers ``Verify`` and ``VerifyStream``
from memory as a verify-only replica does (:mod:`.replica`'s pieces over the first process's
feed on its private Unix socket), and relays every other call there byte for byte
(:mod:`.forward`); it exits when the first process's end of its lifeline (stdin) closes.
``python -m licentia.services.worker SPEC`` is run by the first process only.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped]

from licentia.errors import LicentiaError
from licentia.request import parse_request_metadata
from licentia.token import MAX_TOKEN_CHARS, parse_token
from licentia.transport.follow import GrpcUpstream, StatusFollower
from licentia.v1 import verification_pb2

from . import metrics
from .app import SERVICES
from .deps import PLATFORM_CACHE_SECONDS, Settings
from .forward import Forwarder, method_kinds
from .procs import READY, VERIFY, VERIFY_STREAM, WorkerSpec
from .replica import PlatformDirectory, ReplicaVerificationService
from .rpc import (
    DEFAULT_MAX_REQUEST_BYTES,
    Authenticator,
    StreamLimit,
    SystemClock,
    json_logger,
    json_logging,
    json_native_stderr,
    service,
    stream_slots,
)
from .runtime import (
    FileBudget,
    ServerSettings,
    client_channel,
    ensure_file_limit,
    install_signal_handlers,
    start,
)
from .shared_nonces import SharedNonceTable

#: A worker reads the platforms again this often: a key removed from a platform's set is
#: refused by the workers within it (by the first process within a second).
PLATFORM_REFRESH_SECONDS = 5.0


class WorkerPlatforms(PlatformDirectory):
    """The platforms a worker knows (:class:`.replica.PlatformDirectory`), and whether it
    knows a caller: a call from a key it does not know is relayed to the first process."""

    def knows(self, metadata: Sequence[tuple[str, str | bytes]]) -> bool:
        """Whether the call's signing key is a platform here, reading the platforms again
        first for a key it does not know (at most once per ``min_interval``); True for a
        call whose signature metadata does not parse (answered here, and refused)."""
        try:
            key = parse_request_metadata(metadata).key.raw
        except LicentiaError:
            return True
        if key not in self._by_key:
            try:
                self._reload(rate_limited=True)
            except LicentiaError as e:
                self._log.warning("replica.platforms_load_failed", extra={"reason": e.reason.name})
        return key in self._by_key


def _router(
    local: grpc.GenericRpcHandler, forwarder: Forwarder, platforms: WorkerPlatforms
) -> grpc.GenericRpcHandler:
    """Verify and VerifyStream answered here, every other method of the exchange relayed;
    health and reflection left to the server. A Verify whose caller is not a platform known
    here (one registered a moment ago, or no platform: the first process tells which), or
    whose licence is counted, is relayed too: it is answered exactly as by one process."""
    verify_here = local.service(_Details(VERIFY))
    stream_here = local.service(_Details(VERIFY_STREAM))
    relay_verify, relay_stream = forwarder.handler(VERIFY), forwarder.handler(VERIFY_STREAM)

    def verify(request: bytes, context: grpc.ServicerContext) -> bytes:
        if _counted(request) or not platforms.knows(context.invocation_metadata()):
            return relay_verify.unary_unary(request, context)  # type: ignore[no-any-return]
        return verify_here.unary_unary(request, context)  # type: ignore[no-any-return]

    def verify_stream(requests: Iterator[bytes], context: grpc.ServicerContext) -> Any:
        if not platforms.knows(context.invocation_metadata()):
            return relay_stream.stream_stream(requests, context)
        return stream_here.stream_stream(requests, context)

    handlers = {
        VERIFY: grpc.unary_unary_rpc_method_handler(verify),
        VERIFY_STREAM: grpc.stream_stream_rpc_method_handler(verify_stream),
    }

    class Router(grpc.GenericRpcHandler):  # type: ignore[misc]
        def service(self, details: Any) -> grpc.RpcMethodHandler | None:
            return handlers.get(details.method) or forwarder.service(details)

    return Router()


@dataclass(frozen=True)
class _Details:
    """What a generic handler is asked with: the method's path."""

    method: str


#: Tokens :func:`_counted` remembers (cleared when full): parsing a token costs about a tenth
#: of a Verify, and platforms check the same licences again and again.
COUNTED_CACHE = 4096
#: A Verify request above this is refused as too large wherever it is answered (every
#: method's default cap, :class:`.rpc.Method`), so it is never parsed here.
MAX_VERIFY_REQUEST_BYTES = DEFAULT_MAX_REQUEST_BYTES
_counted_cache: dict[str, bool] = {}


def _counted(request: bytes) -> bool:
    """Whether a Verify request's token names a counted licence (``max_uses``): only the
    store knows its uses. Anything that does not parse is answered here (and refused)."""
    if len(request) > MAX_VERIFY_REQUEST_BYTES:  # refused here as too large, unparsed
        return False
    req = verification_pb2.VerifyRequest()
    try:
        req.ParseFromString(request)
    except Exception:  # noqa: BLE001 (not parsed: refused here, with the reason)
        return False
    token = req.token
    if len(token) > MAX_TOKEN_CHARS:  # refused here; never remembered (callers choose it)
        return False
    seen = _counted_cache.get(token)
    if seen is None:
        try:
            seen = parse_token(token).max_uses > 0
        except Exception:  # noqa: BLE001 (not parsed: refused here, with the reason)
            return False  # only tokens that parse are remembered
        if len(_counted_cache) >= COUNTED_CACHE:
            _counted_cache.clear()
        _counted_cache[token] = seen
    return seen


def _lifeline(log: logging.Logger, private: Path) -> None:
    """Exit at once when the first process's end of the pipe on stdin closes, removing its
    private socket's directory (``private``) if it could not (it was killed)."""
    while os.read(0, 1):
        pass
    log.warning("procs.primary_gone")
    shutil.rmtree(private, ignore_errors=True)
    os._exit(0)


def worker_main(spec: WorkerSpec) -> int:
    """Serve as one worker: Verify here, the rest relayed; returns the exit status."""
    json_logging()
    log = json_logger("licentia.server")
    metrics.from_environment()  # the first process's --metrics: counts go to its directory
    pid = os.getpid()

    class _Pid(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            record.pid = pid
            record.worker = spec.index
            return True

    for h in log.handlers:
        h.addFilter(_Pid())
    private = Path(spec.primary.removeprefix("unix:")).parent
    threading.Thread(
        target=_lifeline, args=(log, private), name="licentia-lifeline", daemon=True
    ).start()
    try:
        ensure_file_limit(FileBudget(spec.max_connections, 0))
    except ValueError as e:
        log.error("procs.worker_failed", extra={"error": str(e)})
        return 2
    table = SharedNonceTable(spec.nonces_fd, spec.nonce_buckets)
    clock = SystemClock()
    channel = client_channel(spec.primary)
    follower = StatusFollower(
        GrpcUpstream(channel),
        staleness_seconds=max(3 * int(spec.heartbeat_seconds), 3),
        clock=clock.now,
        backoff=(0.05, 1.0),
        log=log,
        name="worker",
    )
    platforms = WorkerPlatforms(channel, min_interval=PLATFORM_CACHE_SECONDS, log=log)
    try:
        follower.start(10)
        platforms.load()
    except LicentiaError as e:
        follower.close()
        log.error("procs.worker_failed", extra={"error": str(e)})
        return 1
    servicer = ReplicaVerificationService(
        follower,
        platforms,
        clock,
        Settings(max_term_seconds=spec.max_term_seconds),
        "the first process",
    )
    servicer.engine.nonces = table.view(b"presentation")
    descriptor = verification_pb2.DESCRIPTOR.services_by_name["VerificationService"]
    local = service(
        descriptor,
        {k: m for k, m in servicer.methods().items() if k in ("Verify", "VerifyStream")},
        Authenticator(nonces=table.view(b"request")),
        clock,
        log,
        StreamLimit(stream_slots(spec.max_workers)),
    )
    kinds = method_kinds(
        module.DESCRIPTOR.services_by_name[name] for module, name, _ in SERVICES.values()
    )
    stop = threading.Event()

    def refresh_platforms() -> None:
        while not stop.wait(PLATFORM_REFRESH_SECONDS):
            platforms.refresh()

    threading.Thread(target=refresh_platforms, name="licentia-platforms", daemon=True).start()
    try:
        server = start(
            ServerSettings(
                address=spec.listen,
                tls_cert=Path(spec.tls_cert) if spec.tls_cert else None,
                tls_key=Path(spec.tls_key) if spec.tls_key else None,
                max_workers=spec.max_workers,
                max_connections=spec.max_connections,
                reuse_port=True,
            ),
            [_router(local, Forwarder(channel, kinds), platforms)],
            spec.service_names,
            log,
        )
    except (ValueError, OSError) as e:
        follower.close()
        log.error("procs.worker_failed", extra={"error": str(e)})
        return 1
    install_signal_handlers(server, log)
    json_native_stderr()  # as in the first process: what native code writes, as JSON lines
    os.write(1, READY)
    null = os.open(os.devnull, os.O_WRONLY)  # nothing reads the pipe from here on
    os.dup2(null, 1)
    os.close(null)
    try:
        server.wait()
    finally:
        stop.set()
        follower.close()
        channel.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m licentia.services.worker SPEC``: a worker (started by the first process)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("a worker of licentia-server --processes: not to be run by hand", file=sys.stderr)
        return 2
    raw: dict[str, Any] = json.loads(args[0])
    raw["service_names"] = tuple(raw["service_names"])
    return worker_main(WorkerSpec(**raw))


if __name__ == "__main__":
    sys.exit(main())
