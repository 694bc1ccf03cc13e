"""Serving a verify-only replica with grpc.aio: a relayed revocation stream is a coroutine.

The sync gRPC server (:func:`.runtime.start`) gives every open stream a worker thread, and
every message it sends costs a few thread hand-offs: about a quarter of a millisecond of
CPU each on the machine of docs/performance.md, so a replica with a thousand subscribers
spends a quarter of a second on each revocation. A replica started as a process
(``licentia-server --upstream``) therefore runs on an asyncio server instead
(:func:`start_async`): ``WatchRevocations`` is served by :meth:`.relay.FeedRelay.afeed`, one
coroutine per stream on the server's event loop, each message encoded once for every
subscriber (:func:`feed_handler`); every other method runs as on the sync server, through
the same plumbing (:mod:`.rpc`), in the server's thread pool (grpc.aio's
``migration_thread_pool``). The server has the sync one's options, health service,
reflection, TLS and drain; :class:`.runtime.RunningServer` stops and awaits it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
from collections.abc import AsyncIterator, Sequence
from concurrent import futures
from typing import Any

import grpc  # type: ignore[import-untyped]
from google.protobuf.message import DecodeError
from grpc_status import rpc_status  # type: ignore[import-untyped]

from licentia.errors import LicentiaError, Reason
from licentia.methods import path
from licentia.v1 import licences_pb2

from . import errors
from .relay import FeedRelay
from .rpc import DEFAULT_MAX_REQUEST_BYTES, StreamLimit, client_of
from .runtime import ElasticExecutor, RunningServer, ServerSettings, equip, server_options

WATCH_REVOCATIONS = path(licences_pb2, "WatchRevocations")
#: The largest WatchRevocationsRequest accepted (every method's default cap).
MAX_REQUEST_BYTES = DEFAULT_MAX_REQUEST_BYTES


def pending_options(max_workers: int) -> list[tuple[str, int]]:
    """gRPC core's cap on calls it holds for the server before they reach a handler, raised
    to the streams a replica may hold (``max_workers``), twice over for the hard cap.

    Its defaults (1,000 soft, 3,000 hard: ``grpc.server.max_pending_requests`` and
    ``..._hard_limit``) stopped a grpc.aio server at ~2,350-2,450 open streams, whatever the
    clients' connections or processes: the calls past it never reached the handler. Raised,
    a bare grpc.aio server held 5,000 (docs/performance.md). The stream cap itself stays
    the ``--workers`` one (:class:`.rpc.StreamLimit`)."""
    return [
        ("grpc.server.max_pending_requests", max(1000, max_workers)),
        ("grpc.server.max_pending_requests_hard_limit", max(3000, 2 * max_workers)),
    ]


def _request(raw: bytes) -> licences_pb2.WatchRevocationsRequest:
    """Parse strictly, as the sync plumbing does: size, valid protobuf, no unknown fields."""
    if len(raw) > MAX_REQUEST_BYTES:
        raise LicentiaError(Reason.TOO_LARGE, f"a request may not exceed {MAX_REQUEST_BYTES} bytes")
    req = licences_pb2.WatchRevocationsRequest()
    try:
        req.ParseFromString(raw)
    except (DecodeError, RecursionError, ValueError):
        raise LicentiaError(
            Reason.MALFORMED, "the request is not a valid WatchRevocationsRequest"
        ) from None
    size = req.ByteSize()
    req.DiscardUnknownFields()
    if req.ByteSize() != size:
        raise LicentiaError(Reason.MALFORMED, "the request has fields unknown to it")
    return req


class _FeedHandler(grpc.GenericRpcHandler):  # type: ignore[misc]
    """``WatchRevocations`` as a coroutine per stream; the service's other methods as
    ``sync`` serves them."""

    def __init__(
        self,
        sync: grpc.GenericRpcHandler,
        relay: FeedRelay,
        streams: StreamLimit,
        log: logging.Logger,
    ) -> None:
        self._sync = sync
        self._relay = relay
        self._streams = streams
        self._log = log
        self._watch = grpc.unary_stream_rpc_method_handler(
            self.watch, request_deserializer=None, response_serializer=None
        )

    def service(self, details: Any) -> Any:
        """The handler of ``details.method``."""
        if details.method == WATCH_REVOCATIONS:
            return self._watch
        return self._sync.service(details)

    async def watch(self, raw: bytes, context: Any) -> AsyncIterator[bytes]:
        """One subscriber: admitted as the sync plumbing admits a stream (the shared cap,
        a strict parse), refusals mapped the same way, one log line at the end."""
        fields: dict[str, object] = {"method": WATCH_REVOCATIONS, "code": "OK"}
        fields["call_id"] = secrets.token_hex(8)
        started = time.monotonic()
        self._relay.attach(asyncio.get_running_loop())
        try:
            req = _request(raw)
            client = client_of(context)
            self._streams.acquire(client)
            try:
                async for item in self._relay.afeed(req.after_sequence):
                    yield item
            finally:
                self._streams.release(client)
        except LicentiaError as e:
            fields["code"] = errors.STATUS_OF[e.reason].name
            fields["reason"] = e.reason.name
            status = rpc_status.to_status(errors.rich_status(e.reason, str(e)))
            await context.abort(status.code, status.details, status.trailing_metadata)
        except asyncio.CancelledError:
            fields["code"] = "CANCELLED"
            raise
        finally:
            fields["ms"] = round((time.monotonic() - started) * 1000, 2)
            self._log.info("rpc", extra=fields)


def feed_handler(
    sync: grpc.GenericRpcHandler, relay: FeedRelay, streams: StreamLimit, log: logging.Logger
) -> grpc.GenericRpcHandler:
    """``LicenceService`` for :func:`start_async`: ``WatchRevocations`` from ``relay`` (a
    coroutine per stream, counted against ``streams``), the rest as ``sync`` serves them."""
    return _FeedHandler(sync, relay, streams, log)


class _Stopping:
    """What ``stop`` returns: ``wait()`` until the server has stopped and its loop ended
    (the loop ends with the server, before the stop's own future could be resolved)."""

    def __init__(self, done: threading.Event) -> None:
        self._done = done

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)


class _LoopServer:
    """A grpc.aio server running on an event loop in a thread of its own, stopped and
    awaited as :class:`.runtime.RunningServer` stops and awaits a sync server."""

    def __init__(self, loop: asyncio.AbstractEventLoop, server: Any, done: threading.Event) -> None:
        self._loop = loop
        self._server = server
        self._done = done

    def stop(self, grace: float | None) -> _Stopping:
        if not self._done.is_set():
            asyncio.run_coroutine_threadsafe(self._server.stop(grace), self._loop)
        return _Stopping(self._done)

    def wait_for_termination(self, timeout: float | None = None) -> bool:
        """True if ``timeout`` ran out first (the sync server's answer)."""
        return not self._done.wait(timeout)


def start_async(
    settings: ServerSettings,
    handlers: Sequence[grpc.GenericRpcHandler],
    service_names: Sequence[str],
    log: logging.Logger,
) -> RunningServer:
    """:func:`.runtime.start` on a grpc.aio server (its event loop in a thread of its own;
    sync handlers in a pool of at most ``settings.max_workers`` threads); raises ``OSError``
    if it cannot bind."""
    loop = asyncio.new_event_loop()
    started: futures.Future[tuple[Any, Any, int]] = futures.Future()
    done = threading.Event()

    async def serve() -> None:
        server = grpc.aio.server(
            migration_thread_pool=ElasticExecutor(
                settings.max_workers, thread_name_prefix="licentia-rpc"
            ),
            options=[*server_options(settings), *pending_options(settings.max_workers)],
        )
        health_servicer, port = equip(server, settings, handlers, service_names)
        await server.start()
        started.set_result((server, health_servicer, port))
        await server.wait_for_termination()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(serve())
            pending = asyncio.all_tasks(loop)  # the stop itself, the server's own tasks
            if pending:
                loop.run_until_complete(asyncio.wait(pending, timeout=settings.grace_seconds))
        except BaseException as e:  # noqa: BLE001 - handed to the caller of start_async
            if not started.done():
                started.set_exception(e)
        finally:
            done.set()
            loop.close()

    threading.Thread(target=run, name="licentia-aio", daemon=True).start()
    server, health_servicer, port = started.result()
    address = f"{settings.address.rpartition(':')[0]}:{port}"
    tls = settings.tls_cert is not None and settings.tls_key is not None
    log.info(
        "server.started",
        extra={"address": address, "tls": tls, "services": list(service_names), "asyncio": True},
    )
    return RunningServer(
        _LoopServer(loop, server, done), health_servicer, address, port, settings.grace_seconds, log
    )
