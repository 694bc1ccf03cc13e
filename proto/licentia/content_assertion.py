"""The Licentia assertion: what a file's Content Credentials say of its licence
(docs/token-format.md §12.1), and the rule that a file carries no counted licence (§12.2).

Pure: it parses and builds the assertion's JSON data; reading and signing files is
:mod:`licentia.content`'s.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from .errors import LicentiaError, Reason
from .token import MAX_TOKEN_CHARS, UnverifiedLicence, parse_token, salted_digest

__all__ = [
    "ASSERTION_LABEL",
    "ASSERTION_VERSION",
    "COUNTED_MESSAGE",
    "MAX_ASSERTION_BYTES",
    "MAX_EXCHANGE_CHARS",
    "LicenceAssertion",
    "counted",
]

#: The Licentia assertion's label in a C2PA manifest (a reverse-domain entity label).
ASSERTION_LABEL = "org.licentia.licence"
#: The layout version of the assertion's JSON data.
ASSERTION_VERSION = 1
#: The most a checker reads of a file unless told otherwise (64 MiB).
MAX_FILE_BYTES = 64 * 1024 * 1024
#: The largest assertion data accepted, as compact JSON (a token is at most 4096 characters).
MAX_ASSERTION_BYTES = 8192
#: The longest ``exchange`` address an assertion may name.
MAX_EXCHANGE_CHARS = 255

_HEX64 = re.compile(r"[0-9a-f]{64}")
_KEYS = {"version", "token", "asset_digest", "log_index", "logged_at", "exchange"}
_OPTIONAL = {"exchange"}


@dataclass(frozen=True, slots=True)
class LicenceAssertion:
    """The Licentia assertion's data (docs/token-format.md §12.1).

    ``token`` is the licence's text form; ``asset_digest`` names the licensed asset this
    content uses as the licence's claims name it, **salted** (§3.6): a third party learns
    nothing of the asset the token does not already tell, and two files that use one photo
    under two licences cannot be linked by it. ``log_index`` and ``logged_at`` copy the
    token's log promise for readers that know nothing of Licentia (a checker requires them
    equal); ``exchange`` optionally names where to check the licence's status.
    """

    token: str
    asset_digest: bytes
    log_index: int
    logged_at: int
    exchange: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.token, str) or not self.token:
            raise LicentiaError(Reason.MALFORMED, "the assertion's token is a licence's text")
        if len(self.token) > MAX_TOKEN_CHARS:
            raise LicentiaError(Reason.TOO_LARGE, "the assertion's token is too long")
        if not isinstance(self.asset_digest, bytes) or len(self.asset_digest) != 32:
            raise LicentiaError(Reason.MALFORMED, "asset_digest is a SHA-256 digest")
        for name, value in (("log_index", self.log_index), ("logged_at", self.logged_at)):
            if type(value) is not int or not 0 <= value < 2**63:
                raise LicentiaError(Reason.MALFORMED, f"{name} is a non-negative integer")
        if not isinstance(self.exchange, str) or len(self.exchange) > MAX_EXCHANGE_CHARS:
            raise LicentiaError(Reason.MALFORMED, "exchange is at most 255 characters")
        if any(c.isspace() or not c.isprintable() for c in self.exchange):
            raise LicentiaError(Reason.MALFORMED, "exchange is an address without spaces")

    @classmethod
    def for_token(cls, token: str, asset_sha256: bytes, exchange: str = "") -> LicenceAssertion:
        """The assertion for a v2 ``token`` used for the asset whose plain SHA-256 is
        ``asset_sha256``, its promise copied.

        Raises ``LicentiaError``: the token does not parse; NOT_LOGGED for a token with no
        log promise (content credentials are for v2 licences); ASSET_MISMATCH when the
        licence does not name the asset; CONTENT_USES_COUNTED for a licence that counts or
        prices each use (§12.2: a file cannot carry one)."""
        parsed = parse_token(token)
        promise = parsed.promise
        if promise is None or not parsed.asset_salt:
            raise LicentiaError(Reason.NOT_LOGGED, "content credentials need a v2 licence")
        if parsed.asset_category(asset_sha256) is None:
            raise LicentiaError(Reason.ASSET_MISMATCH, "the licence does not name this asset")
        if counted(parsed):
            raise LicentiaError(Reason.CONTENT_USES_COUNTED, COUNTED_MESSAGE)
        digest = salted_digest(parsed.asset_salt, asset_sha256)
        return cls(token, digest, promise.index, promise.logged_at, exchange)

    def names(self, asset_sha256: bytes) -> bool:
        """True when this assertion names the asset whose plain SHA-256 is ``asset_sha256``
        (salted with the token's salt: what a holder asks of her declared assets). False
        for a token that does not parse."""
        try:
            salt = parse_token(self.token).asset_salt
        except LicentiaError:
            return False
        return bool(salt) and salted_digest(salt, asset_sha256) == self.asset_digest

    def to_json(self) -> dict[str, Any]:
        """The assertion's JSON data, as embedded."""
        data: dict[str, Any] = {
            "version": ASSERTION_VERSION,
            "token": self.token,
            "asset_digest": self.asset_digest.hex(),
            "log_index": self.log_index,
            "logged_at": self.logged_at,
        }
        if self.exchange:
            data["exchange"] = self.exchange
        return data

    @classmethod
    def from_json(cls, data: object) -> LicenceAssertion:
        """Parse the assertion's data; ``LicentiaError`` MALFORMED (TOO_LARGE for sizes)
        for anything but exactly the layout of §12.1."""
        if not isinstance(data, dict):
            raise LicentiaError(Reason.MALFORMED, "the Licentia assertion is a JSON object")
        size = len(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode())
        if size > MAX_ASSERTION_BYTES:
            raise LicentiaError(Reason.TOO_LARGE, "the Licentia assertion is over 8192 bytes")
        keys = set(data)
        if not keys <= _KEYS or not keys >= (_KEYS - _OPTIONAL):
            raise LicentiaError(
                Reason.MALFORMED,
                f"the Licentia assertion has keys {sorted(_KEYS)} (exchange optional)",
            )
        if data["version"] != ASSERTION_VERSION or type(data["version"]) is not int:
            raise LicentiaError(Reason.MALFORMED, "unknown Licentia assertion version")
        digest = data["asset_digest"]
        if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
            raise LicentiaError(Reason.MALFORMED, "asset_digest is 64 lower-case hex digits")
        return cls(
            token=data["token"],
            asset_digest=bytes.fromhex(digest),
            log_index=data["log_index"],
            logged_at=data["logged_at"],
            exchange=data.get("exchange", ""),
        )


#: Why a file cannot carry a counted licence (CONTENT_USES_COUNTED).
COUNTED_MESSAGE = (
    "the licence counts or prices each use: a file, once published, travels where nobody "
    "counts its uses; present the licence to each platform instead (token-format §12.2)"
)


def counted(parsed: UnverifiedLicence) -> bool:
    """True for a licence whose uses are counted (``max_uses``) or priced (per use): one a
    file cannot carry (§12.2)."""
    return parsed.max_uses > 0 or parsed.per_use_minor > 0
