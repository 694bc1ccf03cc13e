"""The asyncio side of a signed call: :class:`AsyncSignedChannel`, over ``grpc.aio``.

It mirrors :class:`licentia.transport.channel.SignedChannel`: each request is serialized
here (deterministically), those bytes are signed with the caller's key
(:func:`licentia.request.sign_request`, in the call's metadata) and sent as they are, so
the server verifies what was signed. Failures are mapped by the same
:func:`~licentia.transport.errors.exchange_error`, so callers get an
:class:`~licentia.transport.errors.ExchangeError` with the server's stable reason and never
a raw ``grpc.aio.AioRpcError``.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import TypeVar

import grpc  # type: ignore[import-untyped]
import grpc.aio  # type: ignore[import-untyped]
from google.protobuf.message import Message

from licentia.keys import PrivateKey
from licentia.request import sign_request

from .errors import exchange_error

M = TypeVar("M", bound=Message)

__all__ = ["AsyncSignedChannel"]


class AsyncSignedChannel:
    """Calls over the asyncio ``channel`` signed with ``key`` (unsigned when None).

    ``clock`` gives the signature's timestamp in Unix seconds; ``timeout`` is the deadline
    of a unary call in seconds (streams have none unless one is passed).
    """

    def __init__(
        self,
        channel: grpc.aio.Channel,
        key: PrivateKey | None,
        clock: Callable[[], int] = lambda: int(time.time()),
        timeout: float = 10.0,
    ) -> None:
        self.channel = channel
        self.key = key
        self.clock = clock
        self.timeout = timeout

    async def unary(
        self, method: str, request: Message, response_cls: type[M], timeout: float | None = None
    ) -> M:
        """Send ``request`` to ``method`` (``/package.Service/Method``); the response."""
        body = request.SerializeToString(deterministic=True)
        call = self.channel.unary_unary(
            method, request_serializer=None, response_deserializer=response_cls.FromString
        )
        try:
            response: M = await call(
                body,
                metadata=self._sign(method, body),
                timeout=self.timeout if timeout is None else timeout,
            )
        except grpc.RpcError as e:
            raise exchange_error(e) from None
        return response

    async def server_stream(
        self, method: str, request: Message, response_cls: type[M], timeout: float | None = None
    ) -> AsyncIterator[M]:
        """Send ``request`` to ``method``; its responses as they come (errors mapped too).

        The call starts at the first iteration. Closing the iterator (``aclose()``, or
        ``contextlib.aclosing``) cancels the call.
        """
        body = request.SerializeToString(deterministic=True)
        multicallable = self.channel.unary_stream(
            method, request_serializer=None, response_deserializer=response_cls.FromString
        )
        call = multicallable(body, metadata=self._sign(method, body), timeout=timeout)
        try:
            async for response in call:
                yield response
        except grpc.RpcError as e:
            raise exchange_error(e) from None
        finally:
            call.cancel()

    async def stream_unary(
        self,
        method: str,
        requests: Iterable[Message],
        response_cls: type[M],
        timeout: float | None = None,
    ) -> M:
        """Stream ``requests`` to ``method``, the call signed over the first one's exact bytes
        (a header committing to what follows: UploadAsset); the one response."""
        it = iter(requests)
        head = next(it).SerializeToString(deterministic=True)
        bodies = itertools.chain([head], (r.SerializeToString(deterministic=True) for r in it))
        multicallable = self.channel.stream_unary(
            method, request_serializer=None, response_deserializer=response_cls.FromString
        )
        try:
            response: M = await multicallable(
                bodies, metadata=self._sign(method, head), timeout=timeout
            )
        except grpc.RpcError as e:
            raise exchange_error(e) from None
        return response

    def _sign(self, method: str, body: bytes) -> tuple[tuple[str, str], ...]:
        if self.key is None:
            return ()
        return sign_request(self.key, method, body, self.clock())
