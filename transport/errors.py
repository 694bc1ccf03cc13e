"""The one mapping of a failed gRPC call to a Licentia error.

Every call the transport makes — a signed call of a client, a public call of a follower or
of a verify-only replica — reaches its caller as an :class:`ExchangeError` carrying the
stable reason from the server's ``google.rpc.ErrorInfo`` (domain ``licentia.v1``); never as
a raw ``grpc.RpcError``. When the server gave no reason (the call failed in gRPC itself),
the reason follows from the status code: UNAVAILABLE when the exchange could not be reached
or did not answer in time (:class:`ExchangeUnavailable`), NOT_SERVED for UNIMPLEMENTED,
TOO_LARGE for RESOURCE_EXHAUSTED, INTERNAL otherwise.

The family has one base, :class:`licentia.errors.LicentiaError`: an ``ExchangeError`` is a
refusal or failure of the exchange (or of the way to it), a plain ``LicentiaError`` is data
that does not parse or verify.
"""

from __future__ import annotations

import grpc  # type: ignore[import-untyped]
import grpc.aio  # type: ignore[import-untyped]
from google.rpc import error_details_pb2  # type: ignore[import-untyped]
from grpc_status import rpc_status  # type: ignore[import-untyped]

from licentia.errors import LicentiaError, Reason

__all__ = ["DOMAIN", "ExchangeError", "ExchangeUnavailable", "exchange_error"]

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


class ExchangeError(LicentiaError):
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
