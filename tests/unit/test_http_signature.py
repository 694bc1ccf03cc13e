"""The HTTP/JSON request signature (token-format §6): its vector, and its domain apart."""

from __future__ import annotations

import pytest

from licentia import keys
from licentia.errors import LicentiaError, Reason
from licentia.keys import PrivateKey
from licentia.methods import path
from licentia.nonces import MemoryNonceStore
from licentia.request import (
    parse_request_metadata,
    request_payload,
    sign_http_request,
    sign_request,
    verify_request,
)
from licentia.v1 import registry_pb2

# The vector of docs/http.md and docs/token-format.md §6.
SEED = bytes([1]) * 32
METHOD = path(registry_pb2, "GetProfile")  # the vector's method
BODY = b"{}"
TIMESTAMP = 1_800_000_000
NONCE = bytes(range(16))
HEADERS = {
    "x-licentia-key": "ed25519:iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w",
    "x-licentia-timestamp": "1800000000",
    "x-licentia-nonce": "AAECAwQFBgcICQoLDA0ODw",
    "x-licentia-signature": "zSPNuz5-MI_w0XeRp9a3z-Etye8mCsb6egheqU6j5uYeGD3K0deFi_"
    "2nolNWtlvwOdcvRUbol15r1CMmbKerAQ",
}
PAYLOAD_HEX = (
    "000000272f6c6963656e7469612e76312e5265676973747279536572766963652f47657450726f66696c65"
    "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    "000000006b49d200"
    "000102030405060708090a0b0c0d0e0f"
)


def test_the_http_vector_signs_and_verifies() -> None:
    key = PrivateKey.from_seed(SEED)
    assert request_payload(METHOD, BODY, TIMESTAMP, NONCE).hex() == PAYLOAD_HEX
    assert dict(sign_http_request(key, METHOD, BODY, TIMESTAMP, NONCE)) == HEADERS
    signed = parse_request_metadata(HEADERS.items())
    got = verify_request(
        signed, METHOD, BODY, TIMESTAMP, MemoryNonceStore(), domain=keys.HTTP_REQUEST
    )
    assert got == key.public


def test_a_signature_is_good_for_its_own_transport_only() -> None:
    key = PrivateKey.from_seed(SEED)
    http = parse_request_metadata(sign_http_request(key, METHOD, BODY, TIMESTAMP, NONCE))
    grpc = parse_request_metadata(sign_request(key, METHOD, BODY, TIMESTAMP, NONCE))
    assert http.signature != grpc.signature
    for signed, domain in ((http, keys.REQUEST), (grpc, keys.HTTP_REQUEST)):
        with pytest.raises(LicentiaError) as e:
            verify_request(signed, METHOD, BODY, TIMESTAMP, MemoryNonceStore(), domain=domain)
        assert e.value.reason is Reason.BAD_REQUEST_SIGNATURE
    # One nonce store for both: a nonce spent by one transport is spent for the other.
    nonces = MemoryNonceStore()
    verify_request(grpc, METHOD, BODY, TIMESTAMP, nonces)
    with pytest.raises(LicentiaError) as e:
        verify_request(http, METHOD, BODY, TIMESTAMP, nonces, domain=keys.HTTP_REQUEST)
    assert e.value.reason is Reason.REPLAYED_REQUEST
    # Another domain is a programming error, not a refusal.
    with pytest.raises(ValueError, match="domain"):
        sign_request(key, METHOD, BODY, TIMESTAMP, domain=keys.CONSENT)
    with pytest.raises(ValueError, match="domain"):
        verify_request(http, METHOD, BODY, TIMESTAMP, nonces, domain=keys.CONSENT)
