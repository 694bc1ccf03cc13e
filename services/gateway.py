"""The HTTP/JSON gateway: every RPC of every service over HTTP, from the service descriptors.

``licentia-server --http HOST:PORT`` serves, beside gRPC and in the same process:

- ``POST /v1/{package.Service}/{Method}`` for every method of every service the server runs
  (e.g. ``/v1/licentia.v1.RegistryService/GetTerms``): the body is the request message in
  the protobuf JSON mapping (unknown fields refused), the answer the response message in
  the same mapping with every field present (``MessageToDict``); a method with a response
  stream answers ``text/event-stream``, one ``data:`` line of JSON per message.
  A method that streams requests from the client (``VerifyStream``) is refused with 501:
  HTTP/1.1 JSON cannot carry it; use gRPC.
- ``GET /openapi.json``: the OpenAPI 3.1 document of all of it (:mod:`.openapi`);
- ``GET /healthz``: ``{"status": "SERVING"}``.

Nothing here is written per method: each call goes through the very pipeline gRPC's calls
take (:class:`.rpc.Endpoint`: size cap, the request signature over the exact body bytes
under the ``licentia.v1.http-request`` domain, the same nonce store, the strict parse, the
handler, the error mapping and the log line), with :data:`JSON` as its wire. A signed
method takes the four ``x-licentia-*`` headers (docs/http.md); a public one needs none.

A refusal is ``{"error": {"code": <gRPC code name>, "reason": <Reason name>, "message":
…}}`` with the HTTP status :func:`http_status` gives (Google's mapping of gRPC codes;
TOO_LARGE is 413). The ASGI server (uvicorn, running starlette) runs on its own thread and
event loop; handlers, which block, run on worker threads. The limits per client address
(connections, the time to a request head) are uvicorn's protocol's, in :mod:`.http_limits`.

Why one module of this size: it is one path, in order (the route, the body's limits, the
transcoding, the call, the answer or the event stream), and each step's limits are read
beside the others; the parts that stand alone (the OpenAPI document, the per-client
limits) are modules of their own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import anyio
import grpc  # type: ignore[import-untyped]
import uvicorn
from google.protobuf import json_format
from google.protobuf.message import Message
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from licentia import keys
from licentia.errors import LicentiaError, Reason

from . import errors, http_limits, openapi
from .rpc import BoundService, Endpoint, Wire, _Bound, check_message_size

#: A JSON body may be this many times the method's protobuf cap (base64 and field names
#: make JSON longer); the decoded message must still fit the cap itself.
JSON_SIZE_FACTOR = 4
#: How long :meth:`RunningGateway.stop` waits for the server's thread.
STOP_SECONDS = 10.0
#: Worker threads for unary calls (streams have their own, bounded by the stream limit).
UNARY_THREADS = 32
#: Worker threads for open response streams (each blocks one while it waits).
STREAM_THREADS = 256
#: Request bodies read at once. Each is held in memory up to its method's JSON cap
#: (``max_request_bytes`` x :data:`JSON_SIZE_FACTOR`: 256 KiB by default, about 4 MiB for
#: DeclareAsset) before its signature is checked, so this bounds what unauthenticated
#: clients can make the gateway hold: 32 x 4 MiB at most.
BODY_READS = 32
#: How long a request waits for one of the :data:`BODY_READS` turns before it is refused
#: (BUSY, 429).
BODY_WAIT_SECONDS = 5.0
#: How long a body may take to arrive once its read has begun: a slower one is refused
#: (BUSY, 429) and its turn given back.
BODY_SECONDS = 30.0
#: Of the :data:`BODY_READS` turns, how many the requests of one client address may hold
#: or wait for at once: one more from that address is refused at once (BUSY, 429), so a
#: few slow clients cannot keep everyone else's bodies waiting.
BODY_READS_PER_CLIENT = 4
#: How long a connection may take to send a complete request head (request line and
#: headers), from when it is opened or its previous answer was sent: a slower one is closed,
#: so idle or trickling connections cannot hold the gateway's connection slots.
HEAD_SECONDS = 5.0

#: HTTP status of each gRPC status code (google.rpc's mapping, as grpc-gateway uses).
HTTP_OF_CODE: dict[Any, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}


def http_status(reason: Reason) -> int:
    """The HTTP status of a refusal: its gRPC code's, but 413 for TOO_LARGE."""
    if reason is Reason.TOO_LARGE:
        return 413
    return HTTP_OF_CODE[errors.STATUS_OF[reason]]


class Refused(Exception):  # noqa: N818 (a refusal, not a failure of ours)
    """A call refused by the pipeline: its reason and its message for people."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = errors.rich_status(reason, message).message

    def body(self) -> dict[str, Any]:
        """The JSON error body."""
        return {
            "error": {
                "code": errors.STATUS_OF[self.reason].name,
                "reason": self.reason.name,
                "message": self.message,
            }
        }

    def response(self) -> Response:
        """The HTTP answer."""
        return JSONResponse(self.body(), status_code=http_status(self.reason))


def _refuse(context: Any, reason: Reason, message: str) -> NoReturn:
    raise Refused(reason, message)


def _decode(m: _Bound, raw: bytes) -> Message:
    """One request message from a JSON body, strictly: an empty body is the empty message."""
    name = m.input_cls.DESCRIPTOR.name
    request = m.input_cls()
    if raw.strip():
        try:
            json_format.Parse(raw.decode("utf-8"), request, max_recursion_depth=32)
        except json_format.ParseError as e:
            raise LicentiaError(
                Reason.MALFORMED, f"the request is not a valid {name}: {e}"
            ) from None
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError, OverflowError):
            raise LicentiaError(Reason.MALFORMED, f"the request is not a valid {name}") from None
    check_message_size(m, request)
    return request


def _encode(response: Message) -> dict[str, Any]:
    out: dict[str, Any] = json_format.MessageToDict(
        response, always_print_fields_with_no_presence=True
    )
    return out


def _admitted(context: Any) -> None:
    context.admit()


#: The gateway's wire: JSON bodies signed under their own domain, refusals raised as
#: :class:`Refused`.
JSON = Wire(keys.HTTP_REQUEST, _decode, _encode, _refuse, JSON_SIZE_FACTOR, _admitted)


class GatewayContext:
    """What a handler may ask of its call, for an HTTP call (grpc's context's subset)."""

    def __init__(self, headers: Sequence[tuple[str, str]], peer: str) -> None:
        self._headers = tuple(headers)
        self._peer = peer
        self._lock = threading.Lock()
        self._ended = False
        self._callbacks: list[Callable[[], object]] = []
        self._on_admitted: Callable[[], object] | None = None

    def on_admitted(self, callback: Callable[[], object]) -> None:
        """Call ``callback`` (from the handler's thread) once the call is admitted."""
        self._on_admitted = callback

    def admit(self) -> None:
        """The pipeline admitted the call (a response stream's, before its handler runs)."""
        if self._on_admitted is not None:
            self._on_admitted()

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        """The request's headers, names in lower case."""
        return self._headers

    def peer(self) -> str:
        """The client's address (``ipv4:HOST:PORT`` as gRPC writes it)."""
        return self._peer

    def is_active(self) -> bool:
        """False once the client has gone or the gateway stops."""
        return not self._ended

    def add_callback(self, callback: Callable[[], object]) -> bool:
        """Run ``callback`` when the call ends; False if it has ended already."""
        with self._lock:
            if self._ended:
                return False
            self._callbacks.append(callback)
            return True

    def end(self) -> None:
        """The call is over: :meth:`is_active` turns False and the callbacks run."""
        with self._lock:
            if self._ended:
                return
            self._ended = True
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            try:
                callback()
            except Exception:
                logging.getLogger("licentia.gateway").warning("callback failed", exc_info=True)


def _json(doc: object) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


_END = object()


class _Gateway:
    """The ASGI application's state: the endpoints by path and the calls in flight."""

    def __init__(self, endpoints: Sequence[Endpoint], title: str) -> None:
        self.endpoints = {e.path: e for e in endpoints}
        self.document = _json(openapi.document(endpoints, title))
        self.live: set[GatewayContext] = set()
        self.unary_threads = anyio.CapacityLimiter(UNARY_THREADS)
        self.stream_threads = anyio.CapacityLimiter(STREAM_THREADS)
        self.body_reads = anyio.CapacityLimiter(BODY_READS)
        #: Body reads held or awaited, by client address.
        self.reads_by_client = http_limits.PerClient(BODY_READS_PER_CLIENT)
        self.app = Starlette(
            routes=[
                Route("/v1/{service}/{method}", self.call, methods=["POST"]),
                Route("/openapi.json", self.openapi, methods=["GET"]),
                Route("/healthz", self.health, methods=["GET"]),
            ]
        )

    def close(self) -> None:
        """End every call in flight (streams stop at once)."""
        for ctx in list(self.live):
            ctx.end()

    async def openapi(self, request: Request) -> Response:
        return Response(self.document, media_type="application/json")

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "SERVING"})

    async def call(self, request: Request) -> Response:
        path = f"/{request.path_params['service']}/{request.path_params['method']}"
        endpoint = self.endpoints.get(path)
        if endpoint is None:
            return Refused(Reason.NOT_FOUND, f"no method {path} here").response()
        if endpoint.descriptor.client_streaming:
            return Refused(
                Reason.NOT_SERVED,
                f"{path} streams requests from the client, which HTTP/JSON cannot carry: use gRPC",
            ).response()
        try:
            body = await self._body(request, endpoint.method.max_request_bytes * JSON_SIZE_FACTOR)
        except Refused as e:
            return e.response()
        except ClientDisconnect:
            # The client went before its body arrived: nobody to answer, nothing to report.
            logging.getLogger("licentia.gateway").info(
                "http.client_gone", extra={"path": path, "peer": _host(request)}
            )
            return Response(status_code=499)
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        client = request.client
        peer = f"ipv4:{client.host}:{client.port}" if client is not None else "unknown"
        ctx = GatewayContext(headers, peer)
        self.live.add(ctx)
        if endpoint.descriptor.server_streaming:
            return await self._stream(endpoint, body, ctx)
        try:
            doc = await anyio.to_thread.run_sync(
                endpoint.unary, body, ctx, JSON, limiter=self.unary_threads
            )
        except Refused as e:
            return e.response()
        finally:
            ctx.end()
            self.live.discard(ctx)
        return Response(_json(doc), media_type="application/json")

    async def _body(self, request: Request, cap: int) -> bytes:
        """The request's body, at most ``cap + 1`` bytes of it (the pipeline refuses more
        with TOO_LARGE), read before anything else is done for the call. A Content-Length
        over ``cap`` is refused at once (TOO_LARGE), before a byte is read; at most
        :data:`BODY_READS` bodies are read at once, each within :data:`BODY_SECONDS`
        (BUSY otherwise), and at most :data:`BODY_READS_PER_CLIENT` of those (held or
        awaited) for one client address (BUSY at once otherwise). A client that goes
        mid-body raises ``ClientDisconnect``; its turn is given back all the same."""
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise Refused(Reason.TOO_LARGE, f"a request may not exceed {cap} bytes")
        host = _host(request)
        if not self.reads_by_client.take(host):
            raise Refused(
                Reason.BUSY,
                f"this address already sends {self.reads_by_client.held(host)} requests"
                " at once: try again later",
            )
        try:
            turn = False
            with anyio.move_on_after(BODY_WAIT_SECONDS):
                await self.body_reads.acquire()
                turn = True
            if not turn:
                raise Refused(Reason.BUSY, "too many requests are being received: try again later")
            try:
                with anyio.move_on_after(BODY_SECONDS):
                    return await _read(request, cap)
                raise Refused(
                    Reason.BUSY, f"the request body did not arrive within {BODY_SECONDS:g} s"
                )
            finally:
                self.body_reads.release()
        finally:
            self.reads_by_client.give(host)

    async def _stream(self, endpoint: Endpoint, body: bytes, ctx: GatewayContext) -> Response:
        """Server-sent events: the status is sent once the call is admitted (a refusal
        before has its own status and JSON body); a refusal later is an ``error`` event."""
        loop = asyncio.get_running_loop()
        admitted: asyncio.Future[None] = loop.create_future()

        def settle() -> None:
            if not admitted.done():
                admitted.set_result(None)

        def admit() -> None:
            loop.call_soon_threadsafe(settle)

        ctx.on_admitted(admit)
        responses = endpoint.stream(body, ctx, JSON)
        lock = threading.Lock()

        def pull() -> Any:
            with lock:
                return next(responses, _END)

        def close() -> None:
            with lock:
                responses.close()  # type: ignore[attr-defined]

        def finish() -> None:
            ctx.end()
            self.live.discard(ctx)
            threading.Thread(target=close, name="licentia-http-close", daemon=True).start()

        async def next_item() -> Any:
            return await anyio.to_thread.run_sync(
                pull, limiter=self.stream_threads, abandon_on_cancel=True
            )

        first = asyncio.ensure_future(next_item())
        try:
            await asyncio.wait((first, admitted), return_when=asyncio.FIRST_COMPLETED)
            if first.done():
                first.result()  # a refusal before the handler ran: raised here
        except Refused as e:
            finish()
            return e.response()
        except BaseException:
            first.cancel()
            finish()
            raise

        async def events() -> AsyncIterator[bytes]:
            try:
                yield b": admitted\n\n"
                try:
                    item = await first
                except Refused as e:
                    yield b"event: error\ndata: " + _json(e.body()) + b"\n\n"
                    return
                while item is not _END:
                    yield b"data: " + _json(item) + b"\n\n"
                    try:
                        item = await next_item()
                    except Refused as e:
                        yield b"event: error\ndata: " + _json(e.body()) + b"\n\n"
                        return
            finally:
                finish()

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )


def _host(request: Request) -> str:
    """The client's address (no port): what the per-client limits count by."""
    return request.client.host if request.client is not None else ""


async def _read(request: Request, cap: int) -> bytes:
    """The body, read up to ``cap + 1`` bytes: no more is read (the pipeline refuses
    anything above ``cap`` with TOO_LARGE before looking at it)."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk[: cap + 1 - len(body)]
        if len(body) > cap:
            break
    return bytes(body)


def endpoints_of(handlers: Sequence[Any]) -> list[Endpoint]:
    """Every method of the services among ``handlers`` (those built by :func:`.rpc.service`)."""
    return [e for h in handlers if isinstance(h, BoundService) for e in h.endpoints]


class RunningGateway:
    """A started gateway: its bound address and port, and how to stop it."""

    def __init__(
        self,
        server: uvicorn.Server,
        gateway: _Gateway,
        thread: threading.Thread,
        address: str,
        port: int,
        log: logging.Logger,
    ) -> None:
        self._server = server
        self._gateway = gateway
        self._thread = thread
        self.address = address
        self.port = port
        self._log = log

    def stop(self) -> None:
        """End the calls in flight, close the listener and wait for the server's thread
        (again: nothing more)."""
        if self._server.should_exit:
            return
        self._gateway.close()
        self._server.should_exit = True
        self._thread.join(STOP_SECONDS)
        self._log.info("http.stopped", extra={"address": self.address})


def start_gateway(
    address: str,
    handlers: Sequence[Any],
    log: logging.Logger,
    *,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    max_connections: int = 512,
    max_connections_per_client: int | None = None,
    head_seconds: float | None = None,
    title: str = "Licentia exchange",
) -> RunningGateway:
    """Serve the methods of ``handlers`` (the gRPC server's, :func:`endpoints_of`) over
    HTTP/JSON on ``address`` (``HOST:PORT``, port 0 for any free one), TLS with
    ``tls_cert`` and ``tls_key``. At most ``max_connections`` connections are served at
    once, at most ``max_connections_per_client`` (default: half of them) from one client
    address, and each must send a request head within ``head_seconds`` (default
    :data:`HEAD_SECONDS`). Raises ``OSError`` if it cannot bind or start."""
    per_client = max_connections_per_client or max(1, max_connections // 2)
    protocol = http_limits.protocol(per_client, head_seconds or HEAD_SECONDS)
    host, _, port_text = address.rpartition(":")
    host = host.strip("[]")
    sock = socket.create_server(
        (host, int(port_text)), family=socket.AF_INET6 if ":" in host else socket.AF_INET
    )
    gateway = _Gateway(endpoints_of(handlers), title)
    config = uvicorn.Config(
        gateway.app,
        log_config=None,
        access_log=False,
        lifespan="off",
        server_header=False,
        limit_concurrency=max_connections,
        http=protocol,
        timeout_graceful_shutdown=2,
        ssl_certfile=str(tls_cert) if tls_cert else None,
        ssl_keyfile=str(tls_key) if tls_key else None,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="licentia-http", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + STOP_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise OSError(f"the HTTP gateway could not start on {address}")
        time.sleep(0.01)
    port = int(sock.getsockname()[1])
    bound = f"{address.rpartition(':')[0]}:{port}"
    log.info("http.started", extra={"address": bound, "tls": tls_cert is not None})
    return RunningGateway(server, gateway, thread, bound, port, log)
