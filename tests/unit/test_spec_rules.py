"""The rules of docs/token-format.md that an outside implementer found unstated or unenforced
(issue 16); each of them also has a known-answer case in tests/vectors/."""

from __future__ import annotations

import pytest

from licentia import methods
from licentia.errors import LicentiaError, Reason
from licentia.keys import IssuerKey, IssuerKeySet, PrivateKey
from licentia.nonces import MemoryNonceStore
from licentia.request import TIMESTAMP_HEADER, sign_request
from licentia.services.rpc import Authenticator
from licentia.status import (
    StatusLists,
    StatusView,
    verify_snapshot,
)
from licentia.token import is_currency
from licentia.v1 import registry_pb2
from licentia.verify import VerificationEngine

NOW = 1_800_000_000
ISSUER = PrivateKey.from_seed(b"\x01" * 32)
HOLDER = PrivateKey.from_seed(b"\x02" * 32)
KEYS = IssuerKeySet([IssuerKey(ISSUER.public, NOW - 86400)])
METHOD = methods.path(registry_pb2, "RegisterHolder")


@pytest.mark.parametrize(
    ("code", "ok"),
    [
        ("EUR", True),
        ("EU*", False),
        ("E=R", False),
        ("4UR", False),
        ("E R", False),
        ("EU\n", False),
        ("eur", False),
        ("EURO", False),
        ("ÉUR", False),
    ],
)
def test_a_currency_is_three_ascii_capital_letters(code: str, ok: bool) -> None:
    assert is_currency(code) is ok


@pytest.mark.parametrize("timestamp", ["0" + str(NOW), "00" + str(NOW), "+" + str(NOW)])
def test_the_server_refuses_a_timestamp_that_is_not_its_decimal_form(timestamp: str) -> None:
    """The signature covers the time as an integer, so the header could be rewritten
    ("01800000000") without breaking it: the server accepts one text per time only."""
    auth = Authenticator(MemoryNonceStore())
    md = [
        (k, timestamp if k == TIMESTAMP_HEADER else v)
        for k, v in sign_request(HOLDER, METHOD, b"", NOW)
    ]
    with pytest.raises(LicentiaError) as e:
        auth.authenticate(METHOD, b"", md, NOW)
    assert e.value.reason is Reason.BAD_REQUEST_SIGNATURE
    assert (
        auth.authenticate(METHOD, b"", sign_request(HOLDER, METHOD, b"", NOW), NOW) == HOLDER.public
    )


def test_a_platform_check_without_a_use_is_invalid_use_before_the_token_is_read() -> None:
    view = StatusView(verify_snapshot(StatusLists().snapshot(ISSUER, 0, NOW), KEYS), 300)
    engine = VerificationEngine(KEYS, view, audience="platform-1", nonces=MemoryNonceStore())
    d = engine.verify("lic1.not-a-token", None, NOW)
    assert (d.allowed, d.reasons) == (False, (Reason.INVALID_USE,))
