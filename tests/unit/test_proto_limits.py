"""Every limit the server enforces on a request field is written in that field's .proto comment.

The comments are the wire contract clients read; the limits live in the servers' constants.
This test reads each comment from ``proto/licentia/v1/*.proto`` and checks that it states the
constant the server checks, so a changed limit fails here until the comment follows
(``ledger.proto`` once said only "> 0" for amounts capped at 10^12). The presentation's size
is left to its own change.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from licentia.scope import MAX_SCOPE_ITEMS
from licentia.services import (
    exchange,
    ledger_service,
    licences,
    market,
    registry,
    transparency,
    verification,
)
from licentia.token import MAX_ASSETS, MAX_TOKEN_CHARS

PROTO = Path(__file__).resolve().parents[2] / "proto" / "licentia" / "v1"
_FIELD = re.compile(r"^\s*(?:repeated\s+)?[\w.]+\s+(\w+)\s*=\s*\d+\s*;")
_MESSAGE = re.compile(r"^message\s+(\w+)\s*\{")


def _comments() -> dict[tuple[str, str], str]:
    """``(message, field) -> the comment above the field``, for every top-level message."""
    out: dict[tuple[str, str], str] = {}
    for path in sorted(PROTO.glob("*.proto")):
        message = ""
        comment: list[str] = []
        for line in path.read_text().splitlines():
            if m := _MESSAGE.match(line):
                message, comment = m.group(1), []
            elif line.strip().startswith("//"):
                comment.append(line.strip()[2:].strip())
            elif (m := _FIELD.match(line)) and message:
                out[(message, m.group(1))] = " ".join(comment)
                comment = []
            else:
                comment = []
    return out


def _power_of_ten(n: int) -> str:
    exponent = len(str(n)) - 1
    assert n == 10**exponent, n
    return f"10^{exponent}"


#: (message, field, what its comment must say): each from the constant the server checks.
LIMITS = [
    ("DepositRequest", "amount_minor", f"1 to {_power_of_ten(ledger_service.MAX_AMOUNT)}"),
    ("WithdrawRequest", "amount_minor", f"1 to {_power_of_ten(ledger_service.MAX_AMOUNT)}"),
    ("DepositRequest", "reference", f"1-{ledger_service.MAX_REFERENCE_CHARS} printable"),
    ("WithdrawRequest", "payout_reference", f"1-{ledger_service.MAX_REFERENCE_CHARS}"),
    ("WithdrawRequest", "idempotency_key", "Exactly 16 random bytes"),
    (
        "AddPayoutDestinationRequest",
        "reference",
        f"1-{ledger_service.MAX_REFERENCE_CHARS} printable",
    ),
    (
        "AddPayoutDestinationRequest",
        "reference",
        f"at most {ledger_service.MAX_PAYOUT_DESTINATIONS} destinations",
    ),
    ("CancelPayoutDestinationRequest", "reference", f"1-{ledger_service.MAX_REFERENCE_CHARS}"),
    ("GetStatementRequest", "page_size", f"1-{ledger_service.MAX_PAGE}; 0 = 100"),
    ("GetStatementRequest", "before_posting", "2^63-1"),
    ("RequestLicenceRequest", "asset_refs", f"1-{MAX_ASSETS}, distinct"),
    ("RequestLicenceRequest", "message", f"at most {market.MAX_TEXT_CHARS} characters"),
    ("RequestLicenceRequest", "offered_price_minor", _power_of_ten(market.MAX_PRICE)),
    ("RequestLicenceRequest", "not_before", "at most 300 s before"),
    ("RequestLicenceRequest", "not_after", "at most 2^62"),
    ("RequestLicenceRequest", "idempotency_key", "IDEMPOTENCY_KEY_REUSED"),
    ("DeclineRequestRequest", "reason", f"at most {market.MAX_TEXT_CHARS} characters"),
    ("SearchOffersRequest", "page_size", f"1-{exchange.MAX_PAGE}; 0 = 20"),
    ("SearchOffersRequest", "page_token", "at most 64 characters"),
    ("ListInboxRequest", "include_answered", f"newest {exchange.MAX_INBOX}"),
    ("ListLicencesRequest", "page_size", f"1-{licences.MAX_PAGE}; 0 = 100"),
    ("ListPlatformsRequest", "page_size", f"0 = {registry.DEFAULT_PLATFORM_PAGE}"),
    ("ListPlatformsRequest", "page_size", f"at most {registry.MAX_PLATFORM_PAGE}"),
    ("RegisterHolderRequest", "display_name", f"at most {market.MAX_NAME_CHARS} characters"),
    ("RegisterAdvertiserRequest", "organisation", f"1-{market.MAX_NAME_CHARS} characters"),
    ("RegisterPlatformRequest", "name", f"1-{market.MAX_NAME_CHARS} characters"),
    ("UpdateProfileRequest", "display_name", f"at most {market.MAX_NAME_CHARS} characters"),
    ("DeclareAssetRequest", "label", f"at most {market.MAX_NAME_CHARS} characters"),
    ("DeclareAssetRequest", "sha256", "32 bytes"),
    ("Terms", "categories", f"1-{MAX_SCOPE_ITEMS}"),
    ("Terms", "allowed_purposes", f"1-{MAX_SCOPE_ITEMS}"),
    ("Terms", "refused_purposes", f"at most {market.MAX_LIST_ITEMS}"),
    ("Terms", "media", f"1-{MAX_SCOPE_ITEMS}"),
    ("Terms", "territories", f"1-{MAX_SCOPE_ITEMS}"),
    ("Terms", "price_per_day_minor", "1 to 2^63-1"),
    # 0 is accepted and stored as x1: the comment says so rather than "at least 10000".
    ("Terms", "exclusivity_multiplier_bps", "0 means the default, x1, and is stored"),
    ("VerifyRequest", "token", f"at most {MAX_TOKEN_CHARS} characters"),
    ("ReportUseRequest", "token", f"at most {MAX_TOKEN_CHARS} characters"),
    ("ReportUseRequest", "report_id", "IDEMPOTENCY_KEY_REUSED"),
    ("CheckAssetDigestsRequest", "sha256", f"1 to {verification.MAX_ASSET_DIGESTS} SHA-256"),
    ("GetEntriesRequest", "end", f"start + {transparency.MAX_ENTRIES}"),
    ("GetConsistencyProofRequest", "old_size", "0 < old_size <= new_size"),
]


@pytest.mark.parametrize(("message", "field", "says"), LIMITS)
def test_the_fields_comment_states_the_servers_limit(message: str, field: str, says: str) -> None:
    comment = _comments().get((message, field))
    assert comment is not None, f"{message}.{field} is not in the .proto files"
    assert says in comment, f"{message}.{field}: {comment!r} does not say {says!r}"


def test_the_market_caps_prices_where_the_ledger_caps_amounts() -> None:
    # One figure in the comments for both: a deposit and a licence's whole price.
    assert market.MAX_PRICE == ledger_service.MAX_AMOUNT
