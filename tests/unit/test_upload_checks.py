"""The platform SDK's upload rules (``Platform.check_upload``) with no exchange: an answer of
``CheckAssetDigests`` with the wrong number of bits is an ``ExchangeError`` (never a
``ValueError``, never a guess), and a check that could not be made now (a stale view, a
failure inside, a service away) is ``retry``, not a ``deny`` that looks final."""

from __future__ import annotations

from typing import Any

import grpc  # type: ignore[import-untyped]
import pytest

from licentia.clients.channel import ExchangeError
from licentia.clients.platform import Platform
from licentia.clients.verifier.files import FileCheck
from licentia.errors import Reason
from licentia.examples import tiny_png
from licentia.keys import PrivateKey
from licentia.v1 import verification_pb2
from licentia.verify import Decision
from licentia.vocabulary import Medium, Purpose

USE: dict[str, Any] = {"purpose": Purpose.ADVERTISING, "medium": Medium.ONLINE, "territory": "FR"}


class Answers:
    """A signed channel that answers every ``CheckAssetDigests`` with ``bits``."""

    def __init__(self, bits: list[bool]) -> None:
        self.bits = bits
        self.asked: list[int] = []

    def unary(self, method: str, request: Any, response_cls: type[Any]) -> Any:
        assert method.endswith("/CheckAssetDigests")
        self.asked.append(len(request.sha256))
        return verification_pb2.CheckAssetDigestsResponse(declared=self.bits)


class Checked:
    """A verifier whose every file check is ``check``."""

    def __init__(self, check: FileCheck) -> None:
        self.check = check

    def check_file(self, source: object, **use: Any) -> FileCheck:
        return self.check


@pytest.fixture
def platform() -> Any:
    channel = grpc.insecure_channel("127.0.0.1:1")  # never dialled: the calls are faked
    client = Platform(channel, PrivateKey.generate())
    try:
        yield client
    finally:
        client.close()


@pytest.mark.parametrize("bits", [[], [True, True], [False] * 65])
def test_a_wrong_number_of_bits_is_an_exchange_error(platform: Any, bits: list[bool]) -> None:
    platform._rpc = Answers(bits)
    with pytest.raises(ExchangeError) as e:
        platform.check_asset_digests([b"\x01" * 32])
    assert e.value.reason == Reason.INTERNAL
    assert "1 digests" in e.value.message
    # Each call of a longer list is counted on its own: 64 asked, 64 answered, then 1 asked.
    platform._rpc = Answers([True] * 64)
    with pytest.raises(ExchangeError):
        platform.check_asset_digests([b"\x02" * 32] * 65)
    assert platform._rpc.asked == [64, 1]
    # Through check_upload: a file with no licence asks, and the bad answer is an ExchangeError.
    no_licence = FileCheck(
        Decision(False, (Reason.CONTENT_NOT_LICENSED,)), "none", sha256=b"\x03" * 32
    )
    platform._rpc = Answers(bits)
    with pytest.raises(ExchangeError):
        platform.check_upload(Checked(no_licence), tiny_png(), **USE)


@pytest.mark.parametrize(
    "reasons",
    [(Reason.STATUS_STALE,), (Reason.INTERNAL,), (Reason.UNAVAILABLE,)],
)
def test_a_check_that_could_not_be_made_now_is_retry(platform: Any, reasons: Any) -> None:
    platform._rpc = Answers([True])  # were it asked, the file would be held
    for check in (
        FileCheck(Decision(False, reasons), "trusted", carries_licence=True, sha256=b"\x04" * 32),
        FileCheck(Decision(False, reasons), "unreadable"),  # the verifier never read it
    ):
        got = platform.check_upload(Checked(check), tiny_png(), **USE)
        assert (got.outcome, got.reasons) == ("retry", reasons)
        assert got.lines()[0] == "upload: retry"
    assert platform._rpc.asked == []
    # With a reason that is final too, the file is denied for it.
    final = FileCheck(
        Decision(False, (Reason.CONTENT_SIGNER_NOT_LICENSEE, *reasons)),
        "trusted",
        carries_licence=True,
    )
    assert platform.check_upload(Checked(final), tiny_png(), **USE).outcome == "deny"


def test_the_upload_text_shows_what_the_file_names_sanitised(platform: Any) -> None:
    forged = FileCheck(
        Decision(False, (Reason.CONTENT_CREDENTIAL_UNTRUSTED,)),
        "valid_untrusted",
        b"\x05" * 16,
        "Acme Ads\x1b[1A",
        "ed25519:x",
        carries_licence=True,
    )
    got = platform.check_upload(Checked(forged), tiny_png(), **USE)
    assert got.outcome == "deny"
    assert got.lines()[0] == "upload: deny"
    assert got.lines()[-1] == (
        "claims to be signed by Acme Ads\\u{001b}[1A (ed25519:x) (not verified)"
    )
    assert "names a licence that does not verify" in got.lines()
