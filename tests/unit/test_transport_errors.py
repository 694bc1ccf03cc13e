"""The transport's one mapper from a failed gRPC call to a Licentia error."""

from __future__ import annotations

from typing import Any

import grpc  # type: ignore[import-untyped]
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]

from licentia.errors import LicentiaError, Reason
from licentia.transport.errors import (
    DOMAIN,
    ExchangeError,
    ExchangeUnavailable,
    exchange_error,
)

DETAILS_KEY = "grpc-status-details-bin"


class FailedCall(grpc.RpcError, grpc.Call):  # type: ignore[misc]
    """A failed unary call as gRPC raises it: a status code, details, trailing metadata."""

    def __init__(
        self, code: grpc.StatusCode, details: str, trailing: tuple[tuple[str, Any], ...] = ()
    ) -> None:
        self._code, self._details, self._trailing = code, details, trailing

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> tuple[tuple[str, Any], ...]:
        return self._trailing

    def initial_metadata(self) -> tuple[()]:
        return ()

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> None:
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: Any) -> bool:
        return False


def refused(
    code: grpc.StatusCode, reason: str, domain: str = DOMAIN, message: str = "refused"
) -> FailedCall:
    """A call the server refused with a rich status carrying ``ErrorInfo(reason, domain)``."""
    info = any_pb2.Any()
    info.Pack(error_details_pb2.ErrorInfo(reason=reason, domain=domain))
    status = status_pb2.Status(code=code.value[0], message=message, details=[info])
    return FailedCall(code, message, ((DETAILS_KEY, status.SerializeToString()),))


def test_the_servers_reason_is_kept_whatever_the_status_code() -> None:
    for code, reason in (
        (grpc.StatusCode.RESOURCE_EXHAUSTED, Reason.BUSY),
        (grpc.StatusCode.UNAVAILABLE, Reason.STATUS_STALE),
        (grpc.StatusCode.PERMISSION_DENIED, Reason.NOT_OWNER),
    ):
        error = exchange_error(refused(code, reason.name))
        assert type(error) is ExchangeError  # a reason given is a refusal, not unavailability
        assert (error.reason, error.code, error.message) == (reason, code, "refused")


@pytest.mark.parametrize(
    ("code", "reason", "kind"),
    [
        (grpc.StatusCode.UNAVAILABLE, Reason.UNAVAILABLE, ExchangeUnavailable),
        (grpc.StatusCode.DEADLINE_EXCEEDED, Reason.UNAVAILABLE, ExchangeUnavailable),
        (grpc.StatusCode.UNIMPLEMENTED, Reason.NOT_SERVED, ExchangeError),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, Reason.TOO_LARGE, ExchangeError),
        (grpc.StatusCode.INTERNAL, Reason.INTERNAL, ExchangeError),
        (grpc.StatusCode.UNKNOWN, Reason.INTERNAL, ExchangeError),
    ],
)
def test_without_a_licentia_reason_the_status_code_decides(
    code: grpc.StatusCode, reason: Reason, kind: type[ExchangeError]
) -> None:
    for call in (
        FailedCall(code, "gRPC said so"),  # no rich status at all
        refused(code, "BUSY", domain="example.com", message="gRPC said so"),  # not ours
        refused(code, "NO_SUCH_REASON", message="gRPC said so"),  # a name we do not know
    ):
        error = exchange_error(call)
        assert type(error) is kind
        assert (error.reason, error.code, error.message) == (reason, code, "gRPC said so")


def test_a_rich_status_that_contradicts_the_call_is_ignored() -> None:
    call = refused(grpc.StatusCode.RESOURCE_EXHAUSTED, "BUSY")
    call._code = grpc.StatusCode.INTERNAL  # the rich status says RESOURCE_EXHAUSTED
    assert exchange_error(call).reason is Reason.INTERNAL


def test_an_error_with_no_status_is_internal_and_named_by_its_code() -> None:
    error = exchange_error(grpc.RpcError())
    assert (error.reason, error.code, str(error)) == (
        Reason.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        "UNKNOWN",
    )


def test_one_error_family() -> None:
    # An exchange's refusal is a LicentiaError with nothing in between; the core defines no
    # error for the transport.
    assert ExchangeError.__mro__[1] is LicentiaError
    assert issubclass(ExchangeUnavailable, ExchangeError)
    assert repr(ExchangeError(Reason.BUSY, grpc.StatusCode.RESOURCE_EXHAUSTED, "m")) == (
        "ExchangeError(BUSY, RESOURCE_EXHAUSTED, 'm')"
    )
