"""One error family with stable reasons.

Every refusal in Licentia carries a :class:`Reason`, whose names and numbers mirror the
``licentia.v1.Reason`` enum (without its ``REASON_`` prefix). Parsing raises
:class:`LicentiaError`; verification never raises for a bad input and returns the reasons
in its decision instead.
"""

from __future__ import annotations

import enum

__all__ = ["LicentiaError", "Reason"]


class Reason(enum.IntEnum):
    """Why something was refused; mirrors ``licentia.v1.Reason`` (tested to stay in sync)."""

    MALFORMED = 1
    TOO_LARGE = 2
    BAD_SIGNATURE = 3
    BAD_CONSENT = 4
    UNKNOWN_ISSUER_KEY = 5
    ISSUER_KEY_NOT_VALID = 6
    EXPIRED = 7
    NOT_YET_VALID = 8
    INVALID_TERM = 9
    REVOKED = 10
    STATUS_STALE = 11
    OUT_OF_SCOPE_CATEGORY = 12
    OUT_OF_SCOPE_PURPOSE = 13
    OUT_OF_SCOPE_MEDIUM = 14
    OUT_OF_SCOPE_TERRITORY = 15
    ASSET_MISMATCH = 16
    USES_EXHAUSTED = 17
    OUTSIDE_STANDING_RULE = 18
    SENSITIVE_USE_NEEDS_APPROVAL = 19
    WRONG_LICENSEE = 20
    WRONG_AUDIENCE = 21
    PRESENTATION_EXPIRED = 22
    REPLAYED = 23
    PRESENTATION_MISMATCH = 24
    BAD_REQUEST_SIGNATURE = 25
    STALE_REQUEST = 26
    REPLAYED_REQUEST = 27
    UNKNOWN_KEY = 28
    STATUS_SEQUENCE_GAP = 29
    INVALID_USE = 30
    INVALID_REQUEST = 31
    NOT_FOUND = 32
    NOT_OWNER = 33
    ALREADY_EXISTS = 34
    OPTED_OUT = 35
    OUTSIDE_TERMS = 36
    EXCLUSIVITY_CONFLICT = 37
    REQUEST_NOT_PENDING = 38
    REQUEST_EXPIRED = 39
    PRICE_TOO_LOW = 40
    INSUFFICIENT_FUNDS = 41
    LICENCE_NOT_ACTIVE = 42
    INTERNAL = 43
    NOT_SERVED = 44
    BUSY = 45
    UNAVAILABLE = 46
    CLOCK_SKEW = 47
    IDEMPOTENCY_KEY_REUSED = 48
    PAYOUT_DESTINATION_PENDING = 49
    PAYOUT_DESTINATION_UNKNOWN = 50
    KEY_SET_CONFLICT = 51
    KEY_SET_UNAUTHORISED = 52
    KEY_SET_INVALID = 53
    LAST_KEY = 54
    KEY_REMOVED = 55
    NOT_LOGGED = 56
    PSEUDONYM_TAKEN = 58
    ACCOUNT_ERASED = 62
    BALANCE_OWED = 63
    STATUS_LIST_DROPPED = 64
    REQUEST_NOT_APPROVABLE = 65
    UPLOAD_MISMATCH = 66
    CONTENT_MODIFIED = 67
    CONTENT_CREDENTIAL_UNTRUSTED = 68
    CONTENT_SIGNER_NOT_LICENSEE = 69
    CONTENT_NOT_LICENSED = 70
    CONTENT_USES_COUNTED = 71


class LicentiaError(Exception):
    """The base of every error Licentia raises on purpose.

    ``reason`` is stable and machine-readable; the message is for people and never
    contains secrets or signature bytes.
    """

    def __init__(self, reason: Reason, message: str | None = None) -> None:
        self.reason = reason
        super().__init__(message or reason.name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reason.name}, {str(self)!r})"
