"""Calls a worker process does not serve itself, relayed byte for byte to the first process.

A worker of ``licentia-server --processes N`` answers Verify from memory and hands every
other call to the first process (the exchange, the one store): the request bytes as
received (never parsed and re-encoded: the signature covers them), the caller's metadata
(its request signature), the time left before its deadline; then the response bytes, or
the status, message and trailing metadata (the reason's ErrorInfo) the exchange answered.
Streams are relayed message by message in both directions, and a client that goes away
cancels the relayed call. The first process authenticates, spends the nonce and answers as
if it had been called directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, NoReturn

import grpc  # type: ignore[import-untyped]
from google.protobuf.descriptor import ServiceDescriptor

from .rpc import FORWARDED_FOR, client_of

#: Metadata the gRPC stack sets itself (a relayed call gets its own).
_RESERVED = ("grpc-", ":")
_TRANSPORT = frozenset({"user-agent", "te", "content-type", "host"})


def method_kinds(descriptors: Iterable[ServiceDescriptor]) -> dict[str, tuple[bool, bool]]:
    """``/package.Service/Method`` -> (client streaming, server streaming), for each method."""
    return {
        f"/{d.full_name}/{m.name}": (m.client_streaming, m.server_streaming)
        for d in descriptors
        for m in d.methods
    }


def _metadata(context: grpc.ServicerContext) -> list[tuple[str, str | bytes]]:
    """The call's metadata to relay, and the address of its client (what the first process
    counts streams per client by), never one the client sent itself."""
    relayed: list[tuple[str, str | bytes]] = [
        (k, v)
        for k, v in context.invocation_metadata()
        if not k.startswith(_RESERVED) and k not in _TRANSPORT and k != FORWARDED_FOR
    ]
    client = client_of(context)
    if client:
        relayed.append((FORWARDED_FOR, client))
    return relayed


def _timeout(context: grpc.ServicerContext) -> float | None:
    left = context.time_remaining()
    # grpc answers a very large number for a call without a deadline.
    return None if left is None or left > 86400 * 365 else max(left, 0.0)


def _relay_error(context: grpc.ServicerContext, e: grpc.RpcError) -> NoReturn:
    """End the call as the first process ended the relayed one."""
    trailing: Sequence[tuple[str, str | bytes]] = e.trailing_metadata() or ()
    context.set_trailing_metadata(tuple(trailing))
    context.abort(e.code(), e.details() or "")
    raise AssertionError("abort returns by raising")  # pragma: no cover


class Forwarder(grpc.GenericRpcHandler):  # type: ignore[misc]
    """A generic handler relaying the methods of ``kinds`` over ``channel``; any other
    method is left to the handlers after it (None)."""

    def __init__(self, channel: grpc.Channel, kinds: Mapping[str, tuple[bool, bool]]) -> None:
        self.channel = channel
        self.kinds = dict(kinds)
        self._handlers: dict[str, grpc.RpcMethodHandler] = {}
        for path, kind in self.kinds.items():
            self._handlers[path] = self._handler(path, kind)

    def service(self, handler_call_details: Any) -> grpc.RpcMethodHandler | None:
        """The relaying handler of the called method, if it is one of ``kinds``."""
        return self._handlers.get(handler_call_details.method)

    def handler(self, path: str) -> grpc.RpcMethodHandler:
        """The relaying handler of ``path`` (a method of ``kinds``)."""
        return self._handlers[path]

    def _handler(self, path: str, kind: tuple[bool, bool]) -> grpc.RpcMethodHandler:
        ch, raw = self.channel, {"request_serializer": None, "response_deserializer": None}
        if kind == (False, False):
            uu = ch.unary_unary(path, **raw)

            def unary_unary(request: bytes, context: grpc.ServicerContext) -> bytes:
                return self._unary(uu, request, context)

            return grpc.unary_unary_rpc_method_handler(unary_unary)
        if kind == (True, False):
            su = ch.stream_unary(path, **raw)

            def stream_unary(requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
                return self._unary(su, requests, context)

            return grpc.stream_unary_rpc_method_handler(stream_unary)
        server_stream = kind == (False, True)
        out = ch.unary_stream(path, **raw) if server_stream else ch.stream_stream(path, **raw)

        def streaming(request: Any, context: grpc.ServicerContext) -> Iterator[bytes]:
            return self._stream(out, request, context)

        factory = (
            grpc.unary_stream_rpc_method_handler
            if server_stream
            else grpc.stream_stream_rpc_method_handler
        )
        return factory(streaming)

    @staticmethod
    def _unary(callable_: Any, request: Any, context: grpc.ServicerContext) -> bytes:
        future = callable_.future(request, metadata=_metadata(context), timeout=_timeout(context))
        context.add_callback(future.cancel)
        try:
            response = future.result()
        except grpc.RpcError as e:
            _relay_error(context, e)
        context.set_trailing_metadata(tuple(future.trailing_metadata() or ()))
        return bytes(response)

    @staticmethod
    def _stream(callable_: Any, request: Any, context: grpc.ServicerContext) -> Iterator[bytes]:
        call = callable_(request, metadata=_metadata(context), timeout=_timeout(context))
        context.add_callback(call.cancel)
        try:
            yield from call
        except grpc.RpcError as e:
            _relay_error(context, e)
        context.set_trailing_metadata(tuple(call.trailing_metadata() or ()))
