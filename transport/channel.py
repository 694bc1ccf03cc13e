"""The client side of a signed call: sign the exact bytes sent, map every error back.

:class:`SignedChannel` serializes each request itself (deterministically), signs those bytes
with the caller's key (:func:`licentia.request.sign_request`, in the call's metadata) and
hands the very same bytes to gRPC, so the server verifies what was signed. A stream of
requests is signed once, over the method and the empty body ``b""``; an upload
(:meth:`SignedChannel.stream_unary`) over its first message, the header that commits to the
rest.

Every failure reaches the caller as an :class:`~licentia.transport.errors.ExchangeError`
carrying the stable reason from the server's ``google.rpc.ErrorInfo``
(:func:`~licentia.transport.errors.exchange_error`); never as a raw ``grpc.RpcError``.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import grpc  # type: ignore[import-untyped]
from google.protobuf.message import Message

from licentia.keys import PrivateKey
from licentia.request import sign_request

from .errors import exchange_error

M = TypeVar("M", bound=Message)

__all__ = ["SignedChannel"]


class SignedChannel:
    """Calls over ``channel`` signed with ``key`` (unsigned when ``key`` is None).

    ``clock`` gives the signature's timestamp in Unix seconds; ``timeout`` is the deadline
    of a unary call in seconds (streams have none unless one is passed).
    """

    def __init__(
        self,
        channel: grpc.Channel,
        key: PrivateKey | None,
        clock: Callable[[], int] = lambda: int(time.time()),
        timeout: float = 10.0,
    ) -> None:
        self.channel = channel
        self.key = key
        self.clock = clock
        self.timeout = timeout

    def unary(
        self, method: str, request: Message, response_cls: type[M], timeout: float | None = None
    ) -> M:
        """Send ``request`` to ``method`` (``/package.Service/Method``); the response."""
        body = request.SerializeToString(deterministic=True)
        call = self.channel.unary_unary(
            method, request_serializer=None, response_deserializer=response_cls.FromString
        )
        try:
            response: M = call(
                body,
                metadata=self._sign(method, body),
                timeout=self.timeout if timeout is None else timeout,
            )
        except grpc.RpcError as e:
            raise exchange_error(e) from None
        return response

    def server_stream(
        self, method: str, request: Message, response_cls: type[M], timeout: float | None = None
    ) -> Iterator[M]:
        """Send ``request`` to ``method``; its responses as they come (errors mapped too).

        Closing the iterator early cancels the call.
        """
        body = request.SerializeToString(deterministic=True)
        call = self.channel.unary_stream(
            method, request_serializer=None, response_deserializer=response_cls.FromString
        )
        return _responses(call(body, metadata=self._sign(method, body), timeout=timeout))

    def stream_stream(
        self,
        method: str,
        requests: Iterable[Message],
        response_cls: type[M],
        timeout: float | None = None,
    ) -> Iterator[M]:
        """Stream ``requests`` to ``method`` (the call signed over ``b""``); the responses."""
        call = self.channel.stream_stream(
            method, request_serializer=None, response_deserializer=response_cls.FromString
        )
        bodies = (r.SerializeToString(deterministic=True) for r in requests)
        return _responses(call(bodies, metadata=self._sign(method, b""), timeout=timeout))

    def stream_unary(
        self,
        method: str,
        requests: Iterable[Message],
        response_cls: type[M],
        timeout: float | None = None,
    ) -> M:
        """Stream ``requests`` to ``method``, the call signed over the first one's exact bytes
        (a header committing to what follows: UploadAsset); the one response. ``requests``
        is consumed as gRPC sends it (a generator may report progress)."""
        it = iter(requests)
        head = next(it).SerializeToString(deterministic=True)
        bodies = itertools.chain([head], (r.SerializeToString(deterministic=True) for r in it))
        call = self.channel.stream_unary(
            method, request_serializer=None, response_deserializer=response_cls.FromString
        )
        try:
            response: M = call(bodies, metadata=self._sign(method, head), timeout=timeout)
        except grpc.RpcError as e:
            raise exchange_error(e) from None
        return response

    def _sign(self, method: str, body: bytes) -> tuple[tuple[str, str], ...]:
        if self.key is None:
            return ()
        return sign_request(self.key, method, body, self.clock())


def _responses(call: Any) -> Iterator[Any]:
    """Iterate a response stream, mapping its failure; cancel the call if left early."""
    try:
        yield from call
    except grpc.RpcError as e:
        raise exchange_error(e) from None
    finally:
        call.cancel()
