"""gRPC method handlers that authenticate the exact request bytes received.

Every method is registered with ``request_deserializer=None``, so its behaviour receives the
raw request bytes. For each call, in this order:

1. the size of the bytes against the method's cap (TOO_LARGE): a cheap refusal before any
   hashing or signature check, and a refused call does not burn its nonce;
2. for a signed method, the request signature over those very bytes
   (:func:`licentia.request.parse_request_metadata` and :func:`~licentia.request.verify_request`:
   BAD_REQUEST_SIGNATURE, STALE_REQUEST, REPLAYED_REQUEST);
3. the parse of the bytes into the method's input message, strictly: invalid protobuf and
   fields this server does not know are both MALFORMED;
4. the handler, with the parsed request and a :class:`Call`.

A client stream (``stream`` requests) is authenticated as a whole: its signature covers the
method and the empty body ``b""``, sent once in the call's metadata, and each incoming
message is then size-capped and parsed strictly as in steps 1 and 3 (a refusal ends the
call). A method marked ``signed_over_first`` (UploadAsset) is signed over its *first*
message's exact bytes instead: that header commits to what follows (an upload's size and
SHA-256), and is read and verified before any other message is. Whether the caller's key
is registered, and whether it owns what it touches, is the handler's business (UNKNOWN_KEY,
NOT_OWNER).

The same pipeline serves the HTTP/JSON gateway (:mod:`.gateway`): each method of a service
is an :class:`Endpoint` whose calls take a :class:`Wire`, the transport's way to carry them
(the request signature's domain, how the body is decoded, the response encoded and a
refusal sent). gRPC's is :data:`GRPC`; :class:`BoundService` is both the gRPC handler set
of a service and its endpoints.

Handlers refuse by raising :class:`licentia.errors.LicentiaError`; the call then ends with the
reason's status code and ErrorInfo (:mod:`.errors`). Any other exception is logged here with
the call id and its traceback, and the client sees INTERNAL with a generic message. Each
call writes one JSON log line (:func:`json_logger`) with the method, the status code, the
duration, the call id and the caller's public key: never request bytes, tokens, signatures
or secrets.

Why one module of this size: it is the one path every call takes, in order (size, signature,
nonce, parse, handler, error mapping, log line), and each step hands its state (the
authenticator, the stream limit, the call) to the next.
"""

from __future__ import annotations

import errno
import itertools
import json
import logging
import os
import queue
import random
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import IO, Any, NoReturn, Protocol, TypeAlias, cast

import grpc  # type: ignore[import-untyped]
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import DecodeError, Message
from google.protobuf.message_factory import GetMessageClass

from licentia import keys
from licentia.errors import LicentiaError, Reason
from licentia.keys import PublicKey
from licentia.nonces import MemoryNonceStore, NonceStore
from licentia.request import (
    DEFAULT_WINDOW_SECONDS,
    SignedRequest,
    parse_request_metadata,
    verify_request,
)

from . import errors
from .counts import PerKey
from .store.base import SpentNonce


class Clock(Protocol):
    """The server's time, in Unix seconds (a seam: tests pass a fixed clock)."""

    def now(self) -> int:
        """The current Unix time in whole seconds."""
        ...


class SystemClock:
    """The operating system's clock."""

    def now(self) -> int:
        """The current Unix time in whole seconds."""
        return int(time.time())


@dataclass(frozen=True)
class Call:
    """What a handler knows about the call it serves.

    ``caller`` is the key that signed the call (``None`` for a public method, whose
    signature metadata, if any, is ignored); ``now`` is the server's time used to check
    the signature. ``context`` is grpc's, for ``is_active()``, ``add_callback()`` and
    metadata; refuse by raising ``LicentiaError``, never with ``context.abort``.
    """

    method: str
    caller: PublicKey | None
    now: int
    call_id: str
    context: grpc.ServicerContext
    #: The verified signature values and the exact request bytes they cover (signed unary
    #: calls), kept so that a call can be logged as evidence anyone can check.
    signed: SignedRequest | None = None
    body: bytes = b""
    #: The nonces this call spends durably: a handler passes them to each change it makes
    #: (the store's ``nonces`` argument), and the first one committed records them.
    spends: tuple[SpentNonce, ...] = ()

    @property
    def peer(self) -> str:
        """The client's address as gRPC names it (asked of gRPC only when read)."""
        return str(self.context.peer())


#: ``(request, call) -> response``.
UnaryHandler: TypeAlias = Callable[[Any, Call], Message]
#: ``(request, call) -> responses`` (a server stream).
ServerStreamHandler: TypeAlias = Callable[[Any, Call], Iterator[Message]]
#: ``(requests, call) -> response`` (a client stream).
ClientStreamHandler: TypeAlias = Callable[[Iterator[Any], Call], Message]
#: ``(requests, call) -> responses`` (both directions stream).
StreamHandler: TypeAlias = Callable[[Iterator[Any], Call], Iterator[Message]]
Handler: TypeAlias = UnaryHandler | ServerStreamHandler | ClientStreamHandler | StreamHandler


#: A method's cap on its request bytes unless it names its own (:attr:`Method.max_request_bytes`).
DEFAULT_MAX_REQUEST_BYTES = 64 * 1024


@dataclass(frozen=True)
class Method:
    """A handler and how its calls are admitted.

    The handler's shape follows the method's streaming kind in the service descriptor
    (see :data:`Handler`). ``signed=False`` makes the method public (``Call.caller`` is
    ``None``). ``max_request_bytes`` caps each request message (TOO_LARGE above it).
    """

    handler: Handler
    signed: bool = True
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    #: Spend the call's nonce durably before answering, when no change did (see
    #: :class:`Authenticator`). False only for a method whose answer a replayer learns
    #: nothing from (Verify: what it carries and the public status list).
    durable_nonce: bool = True
    #: A client stream signed over its first message's exact bytes (not ``b""``): the
    #: header that commits to the rest (see the module's docstring).
    signed_over_first: bool = False
    #: A client stream's first message must arrive within this many seconds of the call's
    #: start (BUSY otherwise, its stream slot freed); ``None``: no limit of its own.
    first_message_seconds: float | None = None

    def __post_init__(self) -> None:
        if self.max_request_bytes <= 0:
            raise ValueError("max_request_bytes must be positive")
        if self.first_message_seconds is not None and not self.first_message_seconds > 0:
            raise ValueError("first_message_seconds must be positive")


class Authenticator:
    """Checks request signatures: the window, the signature, then the nonce.

    One instance (one nonce store) serves every service of a process; the nonce store lives
    in memory and refuses a replay within the process at once. Every signed call also
    spends its nonce durably in the store (:meth:`spent`, :attr:`Call.spends`)
    before its answer is sent: a call that changes something in its change's transaction,
    any other call through ``record`` (the store's ``spend_nonces``, one group-committed
    insert). So a replay is refused after a restart, after a crash (the nonce was committed
    before the answer left) and by every other replica, and the window does not depend on
    when the process started: a client whose clock lags is not refused after a restart.

    A process that cannot write (a follower on a read-only store) has no ``record``: it
    refuses every request stamped before ``not_before`` (its start) instead, since the
    nonces its predecessor saw only in memory are gone.
    """

    def __init__(
        self,
        nonces: NonceStore | None = None,
        window_seconds: int = DEFAULT_WINDOW_SECONDS,
        not_before: int = 0,
        record: Callable[[Sequence[SpentNonce]], None] | None = None,
    ) -> None:
        self.nonces: NonceStore = MemoryNonceStore() if nonces is None else nonces
        self.window_seconds = window_seconds
        self.not_before = not_before
        self.record = record

    def commit_spent(self, nonces: Sequence[SpentNonce]) -> None:
        """Spend durably those of a call's ``nonces`` that no change has recorded yet (a
        read's); raises their reason (REPLAYED_REQUEST) if another process recorded one first."""
        if self.record is not None and any(not n.recorded for n in nonces):
            self.record(nonces)

    def authenticate(
        self, method: str, body: bytes, metadata: Iterable[tuple[str, str | bytes]], now: int
    ) -> PublicKey:
        """The key that signed ``body`` for ``method``; raises ``LicentiaError`` otherwise."""
        return self.verified(method, body, metadata, now).key

    def verified(
        self,
        method: str,
        body: bytes,
        metadata: Iterable[tuple[str, str | bytes]],
        now: int,
        domain: bytes = keys.REQUEST,
    ) -> SignedRequest:
        """The signature values of a call, once verified over ``body`` for ``method`` under
        the transport's ``domain`` (one nonce store for every transport)."""
        signed = parse_request_metadata(metadata)
        if signed.timestamp < self.not_before:
            raise LicentiaError(
                Reason.STALE_REQUEST, "request signed before this server started: sign it again"
            )
        verify_request(signed, method, body, now, self.nonces, self.window_seconds, domain=domain)
        return signed

    def spent(self, signed: SignedRequest, now: int) -> SpentNonce:
        """The durable record of ``signed``'s nonce, live as long as the in-memory one."""
        return SpentNonce(
            b"request\x00" + signed.key.raw + signed.nonce,
            signed.timestamp + self.window_seconds + 1,
            now,
            Reason.REPLAYED_REQUEST,
        )


@dataclass(frozen=True)
class _Bound:
    """One method of a service, ready to serve."""

    path: str
    method: Method
    input_cls: type[Message]
    output_cls: type[Message]
    client_streaming: bool


@dataclass(frozen=True)
class Wire:
    """How one transport carries the calls of the pipeline.

    ``domain``: the request signature's (:data:`licentia.request.REQUEST_DOMAINS`).
    ``decode(bound, raw)``: one request message from the bytes received, strictly (unknown
    fields, bad encoding: MALFORMED; too large: TOO_LARGE), the exact bytes signed being
    ``raw``. ``encode(message)``: a response as the transport sends it. ``refuse(context,
    reason, message)``: end the call with ``reason`` (never returns). ``size_factor``: the
    bytes received may be this many times the method's ``max_request_bytes`` (a text
    encoding is longer than protobuf's) before TOO_LARGE, the decoded message no larger
    than the cap itself. ``admitted(context)``, if set, is told when a response stream's
    call has been admitted, before its handler runs (HTTP sends its status then).
    """

    domain: bytes
    decode: Callable[[_Bound, bytes], Message]
    encode: Callable[[Message], Any]
    refuse: Callable[[Any, Reason, str], NoReturn]
    size_factor: int = 1
    admitted: Callable[[Any], None] | None = None


@dataclass
class _Outcome:
    """What the log line of one call says."""

    call_id: str
    started: float
    #: The signing key (written as text only when the line is written).
    caller: PublicKey | None = None
    code: str = "OK"
    reason: str | None = None

    def refused(self, reason: Reason) -> None:
        self.code, self.reason = errors.STATUS_OF[reason].name, reason.name

    def fields(self, path: str) -> dict[str, object]:
        fields: dict[str, object] = {
            "method": path,
            "code": self.code,
            "ms": round((time.monotonic() - self.started) * 1000, 2),
            "call_id": self.call_id,
        }
        if self.caller is not None:
            fields["caller"] = self.caller.text
        if self.reason is not None:
            fields["reason"] = self.reason
        return fields


#: Call ids: they tie a call's log line to what its client was told, so they need to be
#: unique, not secret. A generator seeded once from the OS draws them without a system call
#: per call (``os.urandom`` releases the GIL, a handoff between the server's threads).
_CALL_IDS = random.Random(os.urandom(32))  # noqa: S311 - unique ids, not secrets

#: ``errno`` values that mean no file descriptor is left (the process's, the system's).
_OUT_OF_FILES = frozenset({errno.EMFILE, errno.ENFILE})

_FACTORIES: dict[tuple[bool, bool], Callable[..., Any]] = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


class CallObserver(Protocol):
    """What sees each call end and each response stream open and close (:mod:`.metrics`)."""

    def ended(self, method: str, code: str, seconds: float) -> None:
        """A call to ``method`` ended with status ``code`` after ``seconds``."""
        ...

    def streams(self, delta: int) -> None:
        """A response stream opened (+1) or closed (-1)."""
        ...


#: The process's call observer (``--metrics``), or None: the one hook where a call ends.
observer: CallObserver | None = None


#: Worker threads a process keeps for unary calls: streams (each holding a thread) may take
#: the rest of ``--workers`` (:func:`stream_slots`), so a flood of them never starves a call.
UNARY_RESERVE = 32


def stream_slots(workers: int) -> int:
    """The streams a process with ``workers`` threads serves at once (at least one)."""
    return max(workers - UNARY_RESERVE, 1)


class StreamLimit:
    """A cap on the streams open at once, shared by every service of a process: response
    streams, and client streams (UploadAsset) from their start.

    Each open stream holds a worker thread of the sync gRPC server, so without a cap a
    flood of subscriptions (or of uploads that never send their header) would starve every
    other call. Past the cap a new stream is refused with RESOURCE_EXHAUSTED / BUSY at once.
    One client address (:func:`client_of` its peer) may hold at most ``per_client`` of the
    slots (default: half of them, at least one), so that one client cannot take them all,
    even of a public stream (``WatchRevocations``); one more from it is refused (BUSY).
    """

    def __init__(self, limit: int, per_client: int = 0) -> None:
        if limit <= 0:
            raise ValueError("the stream limit must be positive")
        if per_client < 0:
            raise ValueError("the per-client stream limit is 0 (half) or positive")
        self.limit = limit
        self.per_client = per_client or max(1, limit // 2)
        self._sem = threading.BoundedSemaphore(limit)
        self._lock = threading.Lock()
        self._by_client: PerKey[str] = PerKey(self.per_client)

    def acquire(self, client: str = "") -> None:
        """Take a slot for ``client`` (an address, ``""`` if unknown: uncounted per client),
        or raise ``LicentiaError(BUSY)``."""
        if not self._sem.acquire(blocking=False):
            raise LicentiaError(Reason.BUSY, "too many open streams: try again later")
        if client:
            with self._lock:
                if not self._by_client.take(client):
                    self._sem.release()
                    raise LicentiaError(
                        Reason.BUSY,
                        f"this address already has {self._by_client.held(client)} open streams:"
                        " close one or try later",
                    )
        if observer is not None:
            observer.streams(1)

    def release(self, client: str = "") -> None:
        """Give back the slot :meth:`acquire` took for ``client``."""
        self._sem.release()
        self._forget(client)
        if observer is not None:
            observer.streams(-1)

    def _forget(self, client: str) -> None:
        if not client:
            return
        with self._lock:
            self._by_client.give(client)


#: Metadata a worker process adds to a call it relays to the first process over their
#: private Unix socket (:mod:`.forward`): the address of the client it relays for. Trusted
#: only from a Unix-socket peer, which only the exchange's own processes can reach.
FORWARDED_FOR = "x-licentia-forwarded-for"


def client_of(context: Any) -> str:
    """The client address of a call (its peer without the port: ``ipv4:10.0.0.1``), or
    ``""`` when the context does not say. A call relayed by a worker process (a Unix-socket
    peer) is the client's it names in :data:`FORWARDED_FOR`, or uncounted without it."""
    peer = getattr(context, "peer", None)
    try:
        text = peer() if peer is not None else ""
    except Exception:  # noqa: BLE001 (a context without a peer: not counted per client)
        return ""
    if not isinstance(text, str):
        return ""
    if text.startswith("unix"):
        forwarded = dict(context.invocation_metadata() or ()).get(FORWARDED_FOR, "")
        return forwarded if isinstance(forwarded, str) else ""
    host, sep, _port = text.rpartition(":")
    return host if sep else text


class _Plumbing:
    """The behaviours grpc calls: admission, error mapping and the log line, shared by all."""

    def __init__(
        self,
        auth: Authenticator,
        clock: Clock,
        log: logging.Logger,
        streams: StreamLimit | None = None,
    ) -> None:
        self.auth, self.clock, self.log, self.streams = auth, clock, log, streams

    def unary_out(
        self, m: _Bound, arg: Any, context: grpc.ServicerContext, wire: Wire | None = None
    ) -> Any:
        """Behaviour of a method with one response (``arg``: bytes, or an iterator of them),
        carried by ``wire`` (default :data:`GRPC`)."""
        wire = wire or GRPC
        if not m.client_streaming:  # (no stream slot to hold: one context manager less)
            with self._guard(m, context, wire) as outcome:
                return self._unary(m, arg, context, outcome, wire)
        with self._guard(m, context, wire) as outcome, self._slot(True, context):
            return self._unary(m, arg, context, outcome, wire)

    def _unary(
        self, m: _Bound, arg: Any, context: grpc.ServicerContext, outcome: _Outcome, wire: Wire
    ) -> Any:
        # A signed call's nonce is spent durably by the first change it commits
        # (``Call.spends``, set by ``_admit``); a method whose nonce stays in memory
        # (``durable_nonce=False``: Verify) has none to spend.
        durable = m.method.durable_nonce
        call, request = self._admit(m, arg, context, outcome, spends=durable, wire=wire)
        response = self._encode(m, m.method.handler(request, call), wire)
        if durable:  # before the answer leaves (a read's replay)
            self.auth.commit_spent(call.spends)
        return response

    @contextmanager
    def _slot(self, take: bool, context: Any) -> Iterator[None]:
        """One of the stream limit's slots while the block runs, if ``take``: a client
        stream (UploadAsset) holds a worker thread while it waits for its messages, before
        and after it is admitted, as a response stream does."""
        if not take or self.streams is None:
            yield
            return
        client = client_of(context)
        self.streams.acquire(client)
        try:
            yield
        finally:
            self.streams.release(client)

    def stream_out(
        self, m: _Bound, arg: Any, context: grpc.ServicerContext, wire: Wire | None = None
    ) -> Iterator[Any]:
        """Behaviour of a method with a response stream; errors mid-stream end it the same way."""
        wire = wire or GRPC
        with self._guard(m, context, wire) as outcome:
            client = client_of(context)
            if self.streams is not None:
                self.streams.acquire(client)
            try:
                call, request = self._admit(m, arg, context, outcome, spends=False, wire=wire)
                if wire.admitted is not None:
                    wire.admitted(context)
                # The nonce is spent durably before the first answer leaves (a refusal
                # before it, like every refused call, spends it in memory only).
                unspent = call.signed is not None and m.method.durable_nonce
                for response in cast(Iterator[Message], m.method.handler(request, call)):
                    encoded = self._encode(m, response, wire)
                    if unspent and call.signed is not None:
                        self.auth.commit_spent((self.auth.spent(call.signed, call.now),))
                        unspent = False
                    yield encoded
            finally:
                if self.streams is not None:
                    self.streams.release(client)

    def unserved(
        self, m: _Bound, arg: Any, context: grpc.ServicerContext, wire: Wire | None = None
    ) -> bytes:
        """Behaviour of a method this server has no handler for (any streaming kind)."""
        with self._guard(m, context, wire or GRPC):
            raise LicentiaError(Reason.NOT_SERVED, f"{m.path} is not served here")

    @contextmanager
    def _guard(self, m: _Bound, context: grpc.ServicerContext, wire: Wire) -> Iterator[_Outcome]:
        outcome = _Outcome(call_id=f"{_CALL_IDS.getrandbits(64):016x}", started=time.monotonic())
        try:
            yield outcome
        except LicentiaError as e:
            outcome.refused(e.reason)
            wire.refuse(context, e.reason, str(e))
        except OSError as e:
            if e.errno not in _OUT_OF_FILES:
                raise
            # Out of file descriptors (the budget is checked at start, but other processes
            # share the system's table): the client may retry; the server recovers alone.
            outcome.refused(Reason.UNAVAILABLE)
            self.log.warning(
                "rpc.out_of_files", extra={"method": m.path, "call_id": outcome.call_id}
            )
            wire.refuse(context, Reason.UNAVAILABLE, "the server is short of resources: retry")
        except Exception as e:
            # (grpc.aio's context of a sync handler has no is_active: take it as active)
            active = getattr(context, "is_active", lambda: True)
            if isinstance(e, grpc.RpcError) and not active():
                outcome.code = "CANCELLED"  # the client went away while we read its stream
                raise
            outcome.refused(Reason.INTERNAL)
            self.log.error(
                "rpc.internal_error",
                exc_info=True,
                extra={"method": m.path, "call_id": outcome.call_id},
            )
            wire.refuse(context, Reason.INTERNAL, f"internal error (call id {outcome.call_id})")
        except BaseException:
            outcome.code = "CANCELLED"  # GeneratorExit: the client stopped reading a stream
            raise
        finally:
            if self.log.isEnabledFor(logging.INFO):  # (the fields cost a few µs a call)
                self.log.info("rpc", extra=outcome.fields(m.path))
            if observer is not None:
                observer.ended(m.path, outcome.code, time.monotonic() - outcome.started)

    def _admit(
        self,
        m: _Bound,
        arg: Any,
        context: grpc.ServicerContext,
        outcome: _Outcome,
        *,
        spends: bool = True,
        wire: Wire | None = None,
    ) -> tuple[Call, Any]:
        """Authenticate and parse: the handler's ``Call`` and its request (or requests).
        With ``spends``, a signed call's ``Call.spends`` holds its nonce's durable record."""
        wire = wire or GRPC
        now = self.clock.now()
        if not m.client_streaming:
            _check_size(m, arg, wire.size_factor)
        caller, signed, body = None, None, b""
        spent: tuple[SpentNonce, ...] = ()
        first: bytes | None = None
        if m.client_streaming and m.method.signed_over_first:
            first = _first_within(arg, m.method.first_message_seconds)
            if first is None:
                raise LicentiaError(Reason.MALFORMED, "the stream is empty: a header comes first")
            _check_size(m, first, wire.size_factor)
        if m.method.signed:
            body = arg if not m.client_streaming else first or b""
            metadata = context.invocation_metadata()
            signed = self.auth.verified(m.path, body, metadata, now, wire.domain)
            caller = signed.key
            outcome.caller = caller
            if spends:
                spent = (self.auth.spent(signed, now),)
        call = Call(m.path, caller, now, outcome.call_id, context, signed, body, spent)
        if m.client_streaming:
            head = [] if first is None else [first]
            return call, (wire.decode(m, raw) for raw in itertools.chain(head, arg))
        return call, wire.decode(m, arg)

    @staticmethod
    def _encode(m: _Bound, response: object, wire: Wire) -> Any:
        if not isinstance(response, m.output_cls):
            raise TypeError(f"{m.path} returned {type(response).__name__}")
        return wire.encode(response)


def _first_within(requests: Iterator[bytes], seconds: float | None) -> bytes | None:
    """The first of ``requests`` (None if there is none), read by a thread of its own and
    waited for at most ``seconds`` (BUSY after that: the call is answered, which ends its
    request stream and so the reader's wait). What the reader meets is raised here."""
    if seconds is None:
        return next(requests, None)
    box: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=1)

    def read() -> None:
        try:
            box.put((True, next(requests, None)))
        except BaseException as e:  # noqa: BLE001 (raised in the call's thread)
            box.put((False, e))

    threading.Thread(target=read, name="licentia-first-message", daemon=True).start()
    try:
        ok, value = box.get(timeout=seconds)
    except queue.Empty:
        raise LicentiaError(
            Reason.BUSY, f"the stream's first message did not arrive within {seconds:g} s"
        ) from None
    if not ok:
        raise value
    return cast(bytes | None, value)


def _check_size(m: _Bound, raw: bytes | int, factor: int = 1) -> None:
    """Refuse (TOO_LARGE) ``raw`` (bytes, or a size) above ``factor`` times the method's cap."""
    size = raw if isinstance(raw, int) else len(raw)
    if size > m.method.max_request_bytes * factor:
        raise LicentiaError(
            Reason.TOO_LARGE,
            f"a request may not exceed {m.method.max_request_bytes * factor} bytes",
        )


def check_message_size(m: _Bound, message: Message) -> None:
    """Refuse (TOO_LARGE) a decoded request whose protobuf size is above the method's cap
    (a transport whose bytes are not protobuf's checks this after decoding)."""
    _check_size(m, message.ByteSize())


def _parse(m: _Bound, raw: bytes) -> Message:
    """Parse one request message strictly: refuse invalid protobuf and unknown fields."""
    _check_size(m, raw)
    name = m.input_cls.DESCRIPTOR.name
    request = m.input_cls()
    try:
        request.ParseFromString(raw)
    except (DecodeError, RecursionError, ValueError):
        raise LicentiaError(Reason.MALFORMED, f"the request is not a valid {name}") from None
    # Unknown fields are kept by the parser and counted by ByteSize(); dropping them
    # (recursively) changes the size exactly when there were some: refuse them (fail closed).
    size = request.ByteSize()
    request.DiscardUnknownFields()
    if request.ByteSize() != size:
        raise LicentiaError(Reason.MALFORMED, f"the request has fields unknown to {name}")
    return request


def _grpc_abort(context: Any, reason: Reason, message: str) -> NoReturn:
    errors.abort(context, reason, message)


def _grpc_encode(response: Message) -> bytes:
    return response.SerializeToString()


#: gRPC's wire: protobuf bytes both ways, refusals as a rich status.
GRPC = Wire(keys.REQUEST, _parse, _grpc_encode, _grpc_abort)


@dataclass(frozen=True)
class Endpoint:
    """One method of a service and the pipeline that admits its calls, for any transport.

    :meth:`unary` and :meth:`stream` run one call through the same steps as gRPC's (size,
    signature, nonce, parse, handler, error mapping, log line), its bytes carried by a
    :class:`Wire`; ``context`` answers what a handler may ask of grpc's
    (``invocation_metadata``, ``is_active``, ``add_callback``, ``peer``).
    """

    descriptor: MethodDescriptor
    bound: _Bound
    #: False for a method this server does not serve (NOT_SERVED).
    served: bool
    _plumbing: _Plumbing

    @property
    def path(self) -> str:
        """``/package.Service/Method``."""
        return self.bound.path

    @property
    def method(self) -> Method:
        """How its calls are admitted (``signed``, ``max_request_bytes``)."""
        return self.bound.method

    def unary(self, body: bytes, context: Any, wire: Wire) -> Any:
        """One call of a method with one response; the response as ``wire`` encodes it."""
        if not self.served:
            return self._plumbing.unserved(self.bound, body, context, wire)
        return self._plumbing.unary_out(self.bound, body, context, wire)

    def stream(self, body: bytes, context: Any, wire: Wire) -> Iterator[Any]:
        """One call of a method with a response stream; its responses, lazily (admission
        runs at the first ``next``)."""
        if not self.served:
            return self._unserved(body, context, wire)
        return self._plumbing.stream_out(self.bound, body, context, wire)

    def _unserved(self, body: bytes, context: Any, wire: Wire) -> Iterator[Any]:
        yield self._plumbing.unserved(self.bound, body, context, wire)  # (it refuses)


class BoundService(grpc.ServiceRpcHandler):  # type: ignore[misc]
    """The gRPC handler set of one service, and its :attr:`endpoints` for other transports."""

    def __init__(
        self, name: str, handlers: Mapping[str, Any], endpoints: Sequence[Endpoint]
    ) -> None:
        self._generic = grpc.method_handlers_generic_handler(name, handlers)
        self._name = name
        #: Every method of the service, in the descriptor's order.
        self.endpoints = tuple(endpoints)

    def service_name(self) -> str:
        """The service's full name."""
        return self._name

    def service(self, handler_call_details: Any) -> Any:
        """The handler of one call (grpc's)."""
        return self._generic.service(handler_call_details)


def service(
    descriptor: ServiceDescriptor,
    methods: Mapping[str, Method],
    auth: Authenticator,
    clock: Clock,
    log: logging.Logger,
    streams: StreamLimit | None = None,
) -> BoundService:
    """The handler set of one service: ``methods`` by method name, the rest NOT_SERVED.

    ``streams``, shared by the services of one server, caps the response streams open at once.

    Input and output types and the streaming kind of each method come from
    ``descriptor`` (e.g. ``registry_pb2.DESCRIPTOR.services_by_name["RegistryService"]``).
    Raises ``ValueError`` for a method name the service does not have.
    """
    unknown = sorted(set(methods) - set(descriptor.methods_by_name))
    if unknown:
        raise ValueError(f"{descriptor.full_name} has no method {', '.join(unknown)}")
    plumbing = _Plumbing(auth, clock, log, streams)
    handlers = {}
    endpoints = []
    for md in descriptor.methods:
        kind = (md.client_streaming, md.server_streaming)
        method = methods.get(md.name)
        bound = _Bound(
            path=f"/{descriptor.full_name}/{md.name}",
            method=Method(_never) if method is None else method,
            input_cls=GetMessageClass(md.input_type),
            output_cls=GetMessageClass(md.output_type),
            client_streaming=md.client_streaming,
        )
        behaviour: Callable[[_Bound, Any, Any], object]
        if method is None:
            behaviour = plumbing.unserved
        elif md.server_streaming:
            behaviour = plumbing.stream_out
        else:
            behaviour = plumbing.unary_out
        handlers[md.name] = _FACTORIES[kind](
            partial(behaviour, bound), request_deserializer=None, response_serializer=None
        )
        endpoints.append(Endpoint(md, bound, method is not None, plumbing))
    return BoundService(descriptor.full_name, handlers, endpoints)


def _never(request: Any, call: Call) -> Message:
    """The placeholder handler of an unserved method (its behaviour never calls it)."""
    raise LicentiaError(Reason.NOT_SERVED)


# -- logging ------------------------------------------------------------------------------

_RECORD_FIELDS = frozenset(
    set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}
)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``ts``, ``level``, ``event``, then the ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON (a traceback, if any, as ``traceback``)."""
        doc: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
        }
        doc.update((k, v) for k, v in vars(record).items() if k not in _RECORD_FIELDS)
        if record.exc_info:
            doc["traceback"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str, separators=(",", ":"))


#: The name of the root logger's handler :func:`json_logging` installs (replaced, not added
#: twice, when it is called again).
_ROOT_HANDLER = "licentia.json"


#: Where JSON lines go once :func:`json_native_stderr` has made descriptor 2 a pipe: the
#: original stderr.
_json_out: IO[str] | None = None


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A handler writing to whatever ``sys.stderr`` is when a record comes (to the original
    stderr once :func:`json_native_stderr` has run)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> IO[str]:
        return sys.stderr if _json_out is None else _json_out

    @stream.setter
    def stream(self, value: IO[str]) -> None:
        pass  # always the current stderr


def json_logging(stream: IO[str] | None = None) -> None:
    """Make everything the process reports on ``stream`` (default: stderr) a JSON line.

    Records of any library logger (grpc, psycopg, psycopg_pool, ...: whatever reaches the
    root logger) at WARNING and above, Python warnings, and exceptions nobody caught (in
    the main thread, in other threads, and those Python can only report as "ignored")
    each become one :class:`JsonFormatter` object, their traceback in its ``traceback``
    field, instead of plain text and raw tracebacks between the JSON lines."""
    handler: logging.Handler = _StderrHandler() if stream is None else logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.set_name(_ROOT_HANDLER)
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if h.get_name() != _ROOT_HANDLER] + [handler]
    root.setLevel(logging.WARNING)
    logging.captureWarnings(True)
    log = logging.getLogger("licentia.uncaught")

    def on_exception(kind: type[BaseException], value: BaseException, tb: Any) -> None:
        log.critical("process.uncaught_exception", exc_info=(kind, value, tb))

    def on_thread_exception(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        name = args.thread.name if args.thread is not None else None
        exc_info: Any = (args.exc_type, args.exc_value, args.exc_traceback)
        log.error("thread.uncaught_exception", exc_info=exc_info, extra={"thread_name": name})

    def on_unraisable(args: Any) -> None:
        exc_info = (args.exc_type, args.exc_value, args.exc_traceback)
        log.error(
            "process.unraisable_exception",
            exc_info=exc_info,
            extra={"detail": args.err_msg or "", "object": repr(args.object)},
        )

    sys.excepthook = on_exception
    threading.excepthook = on_thread_exception
    sys.unraisablehook = on_unraisable


#: The level of a native log line by its first letter (absl's ``I1207 12:00:00.000 ...``).
_NATIVE_LEVELS = {
    "I": logging.INFO,
    "W": logging.WARNING,
    "E": logging.ERROR,
    "F": logging.CRITICAL,
}


def json_native_stderr() -> None:
    """Make whatever is written to file descriptor 2 without a logger a JSON line too: what
    native code writes there itself (gRPC's C core: a TLS handshake that failed, say), and
    any stray ``print`` to ``sys.stderr``. Descriptor 2 becomes a pipe, and a daemon thread
    logs each line read from it as a ``native.stderr`` record (``line``: the text; the level
    from an absl ``I``/``W``/``E``/``F`` prefix, else warning); the JSON handlers write to
    the original stderr. Call once, in the server process itself, after
    :func:`json_logging`."""
    global _json_out  # noqa: PLW0603 (one stderr per process)
    original = os.dup(2)
    read_end, write_end = os.pipe()
    sys.stderr.flush()
    _json_out = os.fdopen(original, "w", buffering=1, encoding="utf-8", errors="replace")
    os.dup2(write_end, 2)
    os.close(write_end)
    log = logging.getLogger("licentia.native")
    log.setLevel(logging.INFO)  # gRPC's own verbosity already chose what it writes

    def relay() -> None:
        with os.fdopen(read_end, "rb") as pipe:
            for raw in pipe:
                line = raw.decode("utf-8", "replace").rstrip()
                if line:
                    level = _NATIVE_LEVELS.get(line[:1], logging.WARNING)
                    if not line[1:2].isdigit():
                        level = logging.WARNING
                    log.log(level, "native.stderr", extra={"line": line})

    threading.Thread(target=relay, name="licentia-stderr", daemon=True).start()


def json_logger(name: str, stream: IO[str] | None = None) -> logging.Logger:
    """The logger ``name`` writing JSON lines to ``stream`` at INFO and above (by default
    to whatever ``sys.stderr`` is when a record comes).

    Calling it again for the same name replaces its handler (it does not add a second).
    """
    handler: logging.Handler = _StderrHandler() if stream is None else logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger(name)
    log.handlers = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False
    return log
