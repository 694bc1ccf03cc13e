"""The client side of a signed call: sign the exact bytes sent, map every error back.

:class:`SignedChannel` serializes each request itself (deterministically), signs those bytes
with the caller's key (:func:`licentia.request.sign_request`, in the call's metadata) and
hands the very same bytes to gRPC, so the server verifies what was signed. A stream of
requests is signed once, over the method and the empty body ``b""``.

Every failure reaches the caller as an :class:`ExchangeError` carrying the stable reason
from the server's ``google.rpc.ErrorInfo``; never as a raw ``grpc.RpcError``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import grpc  # type: ignore[import-untyped]
import grpc.aio  # type: ignore[import-untyped]
from google.protobuf.message import Message
from google.rpc import error_details_pb2  # type: ignore[import-untyped]
from grpc_status import rpc_status  # type: ignore[import-untyped]

from licentia.errors import Reason
from licentia.follow import UpstreamError
from licentia.keys import PrivateKey
from licentia.request import sign_request

M = TypeVar("M", bound=Message)

#: The ``ErrorInfo.domain`` of Licentia's errors.
DOMAIN = "licentia.v1"
#: Reason of an error whose status carries no Licentia ErrorInfo, by status code.
_FALLBACK = {
    grpc.StatusCode.UNIMPLEMENTED: Reason.NOT_SERVED,  # a service this server does not host
    grpc.StatusCode.RESOURCE_EXHAUSTED: Reason.TOO_LARGE,  # over gRPC's message size limit
}
_UNAVAILABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
#: Failed calls that carry a status: a sync ``grpc.Call``, or an asyncio ``AioRpcError``
#: (which has the same ``code()``, ``details()`` and ``trailing_metadata()`` but is no Call).
_WITH_STATUS = (grpc.Call, grpc.aio.AioRpcError)


class ExchangeError(UpstreamError):
    """A call the exchange refused or could not answer.

    ``reason`` is the stable reason the server gave; when it gave none (the call failed in
    gRPC itself), UNAVAILABLE when the exchange could not be reached or did not answer in
    time (:class:`ExchangeUnavailable`), NOT_SERVED for UNIMPLEMENTED, TOO_LARGE for
    RESOURCE_EXHAUSTED, INTERNAL otherwise. ``code`` is the gRPC status code, and
    ``message`` the server's message, for people.
    """

    def __init__(self, reason: Reason, code: grpc.StatusCode, message: str) -> None:
        super().__init__(reason, message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reason.name}, {self.code.name}, {self.message!r})"


class ExchangeUnavailable(ExchangeError):  # noqa: N818 (named as the SDK documents it)
    """The exchange could not be reached or did not answer in time (worth retrying)."""


def exchange_error(error: grpc.RpcError) -> ExchangeError:
    """The :class:`ExchangeError` for a failed call: a ``grpc.RpcError`` that is a
    ``grpc.Call``, or a ``grpc.aio.AioRpcError`` (read the same way)."""
    has_status = isinstance(error, _WITH_STATUS)
    code = error.code() if has_status else grpc.StatusCode.UNKNOWN
    message = (error.details() if has_status else None) or code.name
    reason = _reason_of(error)
    if reason is None:
        if code in _UNAVAILABLE:
            return ExchangeUnavailable(Reason.UNAVAILABLE, code, message)
        reason = _FALLBACK.get(code, Reason.INTERNAL)
    return ExchangeError(reason, code, message)


def _reason_of(error: grpc.RpcError) -> Reason | None:
    """The reason in the rich status's Licentia ErrorInfo, if there is one."""
    if not isinstance(error, _WITH_STATUS):
        return None
    try:
        status = rpc_status.from_call(error)
    except ValueError:  # the rich status contradicts the call's own code or message
        return None
    for detail in status.details if status is not None else ():
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info) and info.domain == DOMAIN and info.reason in Reason.__members__:
            return Reason[info.reason]
    return None


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
