"""One error family on the wire: every refusal is a gRPC status carrying a stable reason.

A :class:`licentia.errors.Reason` travels as ``google.rpc.ErrorInfo(reason=<NAME>,
domain="licentia.v1")`` in the rich status (``grpc-status-details-bin``), under the gRPC
status code :data:`STATUS_OF` assigns to it (Google AIP-193). Messages are for people: they
never carry secrets, signatures, tracebacks or internal details.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final, NoReturn

import grpc  # type: ignore[import-untyped]
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]
from grpc_status import rpc_status  # type: ignore[import-untyped]

from licentia.errors import Reason

#: The ``ErrorInfo.domain`` of every Licentia error.
DOMAIN: Final = "licentia.v1"
#: Longest message sent to a client; anything longer is cut (a message is one short sentence).
MAX_MESSAGE_CHARS: Final = 300

_R = Reason
_BY_CODE: Final[Mapping[Any, tuple[Reason, ...]]] = {
    # The request itself is wrong, whatever the state of the exchange.
    grpc.StatusCode.INVALID_ARGUMENT: (
        _R.MALFORMED,
        _R.TOO_LARGE,
        _R.INVALID_REQUEST,
        _R.INVALID_USE,
        _R.INVALID_TERM,
        _R.OUT_OF_SCOPE_CATEGORY,
        _R.OUT_OF_SCOPE_PURPOSE,
        _R.OUT_OF_SCOPE_MEDIUM,
        _R.OUT_OF_SCOPE_TERRITORY,
        _R.SENSITIVE_USE_NEEDS_APPROVAL,
        _R.OUTSIDE_STANDING_RULE,
        _R.BAD_CONSENT,
        _R.BAD_SIGNATURE,
        _R.ASSET_MISMATCH,
        _R.UPLOAD_MISMATCH,
        _R.KEY_SET_INVALID,
        _R.NOT_LOGGED,
    ),
    # Who is calling could not be established.
    grpc.StatusCode.UNAUTHENTICATED: (
        _R.BAD_REQUEST_SIGNATURE,
        _R.STALE_REQUEST,
        _R.REPLAYED_REQUEST,
        _R.UNKNOWN_KEY,
        _R.KEY_REMOVED,
        _R.ACCOUNT_ERASED,
    ),
    # The caller is known but may not do this.
    grpc.StatusCode.PERMISSION_DENIED: (
        _R.NOT_OWNER,
        _R.WRONG_LICENSEE,
        _R.WRONG_AUDIENCE,
        _R.KEY_SET_UNAUTHORISED,
    ),
    grpc.StatusCode.NOT_FOUND: (_R.NOT_FOUND,),
    grpc.StatusCode.ALREADY_EXISTS: (
        _R.ALREADY_EXISTS,
        _R.IDEMPOTENCY_KEY_REUSED,
        _R.PSEUDONYM_TAKEN,
    ),
    # The request is well formed but the state of things refuses it.
    grpc.StatusCode.FAILED_PRECONDITION: (
        _R.OPTED_OUT,
        _R.OUTSIDE_TERMS,
        _R.EXCLUSIVITY_CONFLICT,
        _R.REQUEST_NOT_PENDING,
        _R.REQUEST_EXPIRED,
        _R.PRICE_TOO_LOW,
        _R.INSUFFICIENT_FUNDS,
        _R.LICENCE_NOT_ACTIVE,
        _R.REVOKED,
        _R.EXPIRED,
        _R.NOT_YET_VALID,
        _R.USES_EXHAUSTED,
        _R.STATUS_STALE,
        _R.STATUS_LIST_DROPPED,
        _R.CLOCK_SKEW,
        _R.STATUS_SEQUENCE_GAP,
        _R.UNKNOWN_ISSUER_KEY,
        _R.ISSUER_KEY_NOT_VALID,
        _R.PRESENTATION_EXPIRED,
        _R.REPLAYED,
        _R.PRESENTATION_MISMATCH,
        _R.PAYOUT_DESTINATION_PENDING,
        _R.PAYOUT_DESTINATION_UNKNOWN,
        _R.LAST_KEY,
        _R.BALANCE_OWED,
        _R.REQUEST_NOT_APPROVABLE,
        # A file's Content Credentials (docs/token-format.md §12), as a checker decides them.
        _R.CONTENT_MODIFIED,
        _R.CONTENT_CREDENTIAL_UNTRUSTED,
        _R.CONTENT_SIGNER_NOT_LICENSEE,
        _R.CONTENT_NOT_LICENSED,
        _R.CONTENT_USES_COUNTED,
    ),
    # Another change came first: read again and retry.
    grpc.StatusCode.ABORTED: (_R.KEY_SET_CONFLICT,),
    grpc.StatusCode.INTERNAL: (_R.INTERNAL,),
    grpc.StatusCode.UNIMPLEMENTED: (_R.NOT_SERVED,),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (_R.BUSY,),
    grpc.StatusCode.UNAVAILABLE: (_R.UNAVAILABLE,),
}


def _invert(by_code: Mapping[Any, Iterable[Reason]]) -> dict[Reason, Any]:
    """Reason → code; refuses (at import) a reason listed twice or not at all."""
    table: dict[Reason, Any] = {}
    for code, reasons in by_code.items():
        for reason in reasons:
            if reason in table:
                raise ValueError(f"{reason.name} is mapped twice")
            table[reason] = code
    missing = sorted(r.name for r in Reason if r not in table)
    if missing:
        raise ValueError(f"reasons without a status code: {', '.join(missing)}")
    return table


#: The gRPC status code of every reason (complete: checked when this module is imported).
STATUS_OF: Final[dict[Reason, grpc.StatusCode]] = _invert(_BY_CODE)


def rich_status(reason: Reason, message: str) -> status_pb2.Status:
    """The ``google.rpc.Status`` for ``reason``: its code, the message, and the ErrorInfo."""
    info = any_pb2.Any()
    info.Pack(error_details_pb2.ErrorInfo(reason=reason.name, domain=DOMAIN))
    code = STATUS_OF[reason]
    text = " ".join(message.split())[:MAX_MESSAGE_CHARS] or reason.name
    return status_pb2.Status(code=code.value[0], message=text, details=[info])


def abort(context: grpc.ServicerContext, reason: Reason, message: str) -> NoReturn:
    """End the call with ``reason``'s status code, ``message`` and the ErrorInfo.

    Used by the rpc plumbing (:mod:`.rpc`): handlers refuse by raising
    ``licentia.errors.LicentiaError``, which the plumbing turns into this. ``message`` is
    normalised to one line of at most :data:`MAX_MESSAGE_CHARS` characters.
    """
    status = rpc_status.to_status(rich_status(reason, message))
    abort_with_status = getattr(context, "abort_with_status", None)
    if abort_with_status is not None:
        abort_with_status(status)
    else:  # grpc.aio's context of a sync handler (run in its thread pool) has only abort
        context.abort(status.code, status.details, status.trailing_metadata)
    # grpc's abort always raises; this line only guards against a context that does not.
    raise RuntimeError("the call was not aborted")
