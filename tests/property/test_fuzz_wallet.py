"""Fuzzing of what the wallet reads from the exchange before a person decides.

The exchange is not trusted with what a holder signs: the wallet shows a request's claims
from their exact bytes and signs those bytes. Here the exchange's answers are anything —
claims edited or garbage, times past the calendar, unknown states, names and labels full of
terminal escape sequences — and the wallet's ``inbox`` and ``approve`` must either show the
request in plain words with no control character reaching the terminal, or refuse cleanly
(``LicentiaError`` or ``OperationFailedError``, which ``main`` prints as an error); and
``approve`` signs only claims that decode, name the wallet's own key, and were shown.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
from typing import Any, cast

from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from licentia import keys, pairwise
from licentia.clients.holder import Holder
from licentia.clients.wallet import cli
from licentia.errors import LicentiaError
from licentia.examples import typical_claims
from licentia.keys import PrivateKey
from licentia.token import LicenceClaims
from licentia.v1 import exchange_pb2, licence_pb2, records_pb2, registry_pb2

ME = PrivateKey.from_seed(b"\x52" * 32)
OTHER = PrivateKey.from_seed(b"\x53" * 32)
SECRET = b"\x54" * 32  # her holder secret (token-format §1b)
ISSUER = PrivateKey.from_seed(b"\x51" * 32)
NOW = 1_800_000_000
U64 = st.integers(0, 2**64 - 1)
#: Text an exchange might send for people to read: any characters, escapes included.
TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["\x1b[2A\x1b[2KPrice: 0.01 EUR", "Acme\u202eSDA", "a\rb\x07\x00", "ok"]),
)
SETTINGS = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


@st.composite
def claims_bytes(draw: st.DrawFn) -> bytes:
    """Claims for the wallet's key or another's, with fields edited through the API, or
    garbage bytes."""
    holder = draw(st.sampled_from([ME, OTHER]))
    msg = typical_claims(ISSUER, holder, OTHER, NOW, draw(st.integers(0, 99))).to_proto()
    how = draw(st.integers(0, 3))
    if how == 0:
        return draw(st.binary(max_size=300))
    if how >= 2:  # edit one field (times past the calendar, odd currencies, counts)
        field = draw(st.sampled_from(["not_before", "not_after", "issued_at", "max_uses"]))
        value = draw(st.integers(0, 2**32 - 1) if field == "max_uses" else U64)
        setattr(msg, field, value)
        if draw(st.booleans()):
            msg.price.currency = draw(st.text(min_size=0, max_size=4))
            msg.price.amount_minor = draw(U64)
    return bytes(msg.SerializeToString(deterministic=True))


@st.composite
def requests(draw: st.DrawFn) -> records_pb2.LicenceRequest:
    return records_pb2.LicenceRequest(
        request_id=draw(st.binary(min_size=16, max_size=16)),
        state=cast(
            "Any", draw(st.sampled_from([records_pb2.REQUEST_STATE_PENDING, 0, 7, 2**31 - 1]))
        ),
        advertiser_organisation=draw(TEXT),
        advertiser_key=OTHER.public.raw,
        holder_key=ME.public.raw,
        claims=draw(claims_bytes()),
        created_at=draw(U64),
        expires_at=draw(U64),
    )


class ExchangeSays:
    """A stand-in for the wallet's session: its holder SDK talks to a channel that answers
    every call as given and records it (the method's name and the request as sent)."""

    def __init__(self, answers: dict[str, Message], **args: Any) -> None:
        self.answers = answers
        self.calls: list[tuple[str, bytes]] = []
        self.key = ME
        self.holder_secret = SECRET
        self.args = argparse.Namespace(json=False, all=True, yes=True, **args)
        self.holder = Holder(cast("Any", self), ME)

    def unary_unary(self, method: str, **_: Any) -> Any:
        """The channel's side: a callable answering ``method`` (``/Service/Name``)."""
        name = method.rsplit("/", 1)[1]

        def answer(body: bytes, **__: Any) -> Message:
            self.calls.append((name, body))
            return self.answers[name]

        return answer


def _run(fn: Any, session: ExchangeSays) -> tuple[str, BaseException | None]:
    """``fn(session)``'s output (stdout and stderr), and the clean refusal it raised."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            fn(session)
        except (LicentiaError, cli.OperationFailedError) as e:
            return out.getvalue(), e
    return out.getvalue(), None


def _on_a_terminal(text: str) -> None:
    """Nothing but printable characters and line breaks."""
    bad = [c for c in text if c != "\n" and not c.isprintable()]
    assert not bad, bad


def _assets(labels: list[str]) -> registry_pb2.ListAssetsResponse:
    claims = LicenceClaims.decode(
        typical_claims(ISSUER, ME, OTHER, NOW).to_proto().SerializeToString(deterministic=True)
    )
    return registry_pb2.ListAssetsResponse(
        assets=[
            records_pb2.AssetRecord(sha256=a.sha256, label=label)
            for a, label in zip(claims.assets, labels, strict=False)
        ]
    )


@SETTINGS
@given(st.lists(requests(), max_size=3), st.lists(TEXT, max_size=2), st.lists(TEXT, max_size=2))
def test_the_inbox_shows_any_answer_in_plain_words_or_refuses(
    pending: list[records_pb2.LicenceRequest], labels: list[str], said: list[str]
) -> None:
    notices = [
        records_pb2.Notice(
            kind=records_pb2.NOTICE_KIND_PAYOUT_DESTINATION_ADDED, at=NOW, text=t, subject=t
        )
        for t in said
    ]
    session = ExchangeSays(
        {
            "ListInbox": exchange_pb2.ListInboxResponse(requests=pending, notices=notices),
            "ListAssets": _assets(labels),
        }
    )
    text, refused = _run(cli.cmd_inbox, session)
    _on_a_terminal(text)
    if refused is None:
        for r in pending:
            assert r.request_id.hex() in text  # every request is shown
        assert text.count("Notice (") >= len(notices)  # and every notice


@SETTINGS
@given(requests(), st.lists(TEXT, max_size=2), st.binary(max_size=20), TEXT)
def test_approve_signs_only_claims_it_could_show_for_its_own_key(
    request: records_pb2.LicenceRequest, labels: list[str], licence_id: bytes, note: str
) -> None:
    request.state = records_pb2.REQUEST_STATE_PENDING
    issued = records_pb2.LicenceRecord(licence_id=licence_id, token=note)
    session = ExchangeSays(
        {
            "ListInbox": exchange_pb2.ListInboxResponse(requests=[request]),
            "ListAssets": _assets(labels),
            "ApproveRequest": exchange_pb2.ApproveRequestResponse(licence=issued),
        },
        id=request.request_id.hex(),
    )
    text, refused = _run(cli.cmd_approve, session)
    _on_a_terminal(text)
    signed = [body for method, body in session.calls if method == "ApproveRequest"]
    if not signed:
        assert refused is not None  # it said why it did not sign
        return
    assert refused is None
    claims = LicenceClaims.decode(request.claims)  # it could read them ...
    assert claims.holder == ME.public  # ... they were for this wallet ...
    assert "Price:" in text  # ... and it showed them before signing
    (sent,) = signed
    approval = exchange_pb2.ApproveRequestRequest.FromString(sent)
    # Signed with her pairwise key for this advertiser, over the claims shown rebound to it.
    key = pairwise.pairwise_key(SECRET, OTHER.public.raw).public
    assert approval.consent_key == key.raw
    bound = dataclasses.replace(claims, holder=key).encode()
    assert keys.verify_signature(key.raw, keys.CONSENT, bound, approval.holder_signature)
    assert licence_pb2.LicenceClaims.FromString(request.claims) is not None
