"""A worker of ``--processes N`` decides, before any signature is checked, whether a Verify
names a counted licence (relayed to the first process, which knows the uses). What it
remembers of that must be bounded by what it was sent: callers choose the tokens."""

from __future__ import annotations

import time

from licentia import examples
from licentia.keys import PrivateKey
from licentia.services import worker
from licentia.token import MAX_TOKEN_CHARS
from licentia.v1 import verification_pb2


def _request(token: str) -> bytes:
    return verification_pb2.VerifyRequest(token=token).SerializeToString()


def test_only_tokens_that_parse_are_remembered_and_none_too_large() -> None:
    worker._counted_cache.clear()
    issuer, holder, licensee = (PrivateKey.generate() for _ in range(3))
    token = examples.typical_token_v2(issuer, holder, licensee, int(time.time()))
    assert worker._counted(_request(token)) is True  # the typical licence counts its uses
    assert token in worker._counted_cache
    for bad in ("lic2." + "A" * (MAX_TOKEN_CHARS + 10), "lic2.not-a-token", "x" * 100_000):
        assert worker._counted(_request(bad)) is False
        assert bad not in worker._counted_cache
    assert worker._counted(b"\xff" * (worker.MAX_VERIFY_REQUEST_BYTES + 1)) is False
    assert len(worker._counted_cache) == 1
