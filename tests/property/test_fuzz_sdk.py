"""Fuzzing of what the advertiser SDK reads from the exchange.

Every response the SDK turns into its own values (licences, requests, offers, statements,
terminations, issuer keys) is fed edited and garbage messages. Each reader returns the SDK's
value or raises :class:`ExchangeError` ``MALFORMED`` — the error the SDK documents — and
nothing else: an unknown state, a token that does not parse, a key of the wrong size.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from google.protobuf.message import DecodeError, Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from licentia.clients.advertiser import common
from licentia.clients.channel import ExchangeError
from licentia.errors import Reason
from licentia.examples import typical_claims
from licentia.keys import IssuerKey, IssuerKeySet, PrivateKey
from licentia.token import approve, issue
from licentia.v1 import exchange_pb2, ledger_pb2, licences_pb2, records_pb2, vocabulary_pb2

NOW = 1_800_000_000
ISSUER, HOLDER, ADV = (PrivateKey.from_seed(bytes([0x60 + i]) * 32) for i in range(3))
CLAIMS = typical_claims(ISSUER, HOLDER, ADV, NOW).encode()
TOKEN = issue(ISSUER, CLAIMS, approve(HOLDER, CLAIMS))
LICENCE = records_pb2.LicenceRecord(
    licence_id=bytes(16),
    token=TOKEN,
    state=records_pb2.LICENCE_STATE_ACTIVE,
    holder_key=HOLDER.public.raw,
    licensee_key=ADV.public.raw,
    issued_at=NOW,
    not_before=NOW,
    not_after=NOW + 86_400,
    max_uses=3,
)
REQUEST = records_pb2.LicenceRequest(
    request_id=bytes(16),
    state=records_pb2.REQUEST_STATE_ISSUED,
    advertiser_key=ADV.public.raw,
    holder_key=HOLDER.public.raw,
    claims=CLAIMS,
    failure="OUTSIDE_STANDING_RULE",
)
SETTINGS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)

#: Each reader with a valid response of its type.
READERS: list[tuple[str, Callable[[Any], Any], Message]] = [
    ("licence_from", common.licence_from, LICENCE),
    ("request_from", common.request_from, REQUEST),
    (
        "with_licence",
        common.with_licence,
        exchange_pb2.GetRequestResponse(request=REQUEST, licence=LICENCE),
    ),
    (
        "offer_from",
        common.offer_from,
        exchange_pb2.Offer(
            offer_ref=bytes(32),
            offered_assets=[
                exchange_pb2.OfferedAsset(
                    category=vocabulary_pb2.DATA_CATEGORY_IMAGE, asset_ref=bytes(16)
                )
            ],
        ),
    ),
    (
        "statement_from",
        common.statement_from,
        ledger_pb2.GetStatementResponse(
            currency="EUR", lines=[ledger_pb2.StatementLine(posting_id=1, amount_minor=-5)]
        ),
    ),
    (
        "termination_from",
        common.termination_from,
        licences_pb2.WatchLicenceEventsResponse(
            sequence=1,
            licence_id=bytes(16),
            cause=licences_pb2.TERMINATION_CAUSE_REVOKED,
            at=NOW,
        ),
    ),
    (
        "issuer_keys_from",
        common.issuer_keys_from,
        licences_pb2.GetIssuerKeysResponse(
            keys=IssuerKeySet([IssuerKey(ISSUER.public, NOW)]).to_proto()
        ),
    ),
    ("profile_from", common.profile_from, records_pb2.Profile(key=HOLDER.public.raw)),
]


def _edits(valid: Message) -> st.SearchStrategy[Message]:
    """``valid`` with one scalar field set to an odd value, or any bytes parsed as its type."""
    scalars = [f for f in valid.DESCRIPTOR.fields if f.type != f.TYPE_MESSAGE and not _repeated(f)]
    odd = st.one_of(
        st.integers(0, 2**31 - 1),
        st.binary(max_size=40),
        st.text(max_size=20),
    )

    @st.composite
    def edited(draw: st.DrawFn) -> Message:
        msg = type(valid)()
        msg.CopyFrom(valid)
        if draw(st.booleans()) or not scalars:
            with contextlib.suppress(DecodeError):
                msg.ParseFromString(draw(st.binary(max_size=200)))
            return msg
        field = draw(st.sampled_from(scalars))
        with contextlib.suppress(TypeError, ValueError):
            setattr(msg, field.name, draw(odd))
        return msg

    return edited()


def _repeated(field: Any) -> bool:
    if hasattr(field, "is_repeated"):
        return bool(field.is_repeated)
    return bool(field.label == field.LABEL_REPEATED)


def test_every_reader_reads_its_valid_response() -> None:
    for name, read, valid in READERS:
        assert read(valid) is not None or name == "termination_from", name


@SETTINGS
@given(st.data())
def test_a_response_is_read_or_refused_as_malformed(data: st.DataObject) -> None:
    name, read, valid = data.draw(st.sampled_from(READERS))
    msg = data.draw(_edits(valid))
    outcome: Any = None
    try:
        read(msg)
    except ExchangeError as e:
        outcome = e
    assert outcome is None or outcome.reason is Reason.MALFORMED, (name, outcome)
