"""Issue 22 (second review): ``CheckAssetDigests`` has a daily quota per platform
(``--asset-digest-quota``), so a registered platform cannot test a scraped corpus without
limit to learn who uses Licentia. Past it a call is refused with BUSY / RESOURCE_EXHAUSTED,
nothing answered nor counted, and logged without the digests."""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

import grpc  # type: ignore[import-untyped]
import pytest

from licentia.clients.channel import ExchangeError
from licentia.errors import LicentiaError, Reason
from licentia.services.deps import Settings
from licentia.services.digest_quota import DigestQuota
from licentia.v1 import verification_pb2

from .exchange_harness import PHOTO_SHA, Party, declare_photo, register_holder, register_platform
from .exchange_harness import start_exchange as start

QUOTA = 100


def ask(platform: Party, digests: list[bytes]) -> list[bool]:
    resp = platform.call(
        verification_pb2,
        "CheckAssetDigests",
        verification_pb2.CheckAssetDigestsRequest(sha256=digests),
        verification_pb2.CheckAssetDigestsResponse,
    )
    return list(resp.declared)


def test_asset_digest_checks_have_a_daily_quota_per_platform(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ex = start(tmp_path / "ex", settings=Settings(heartbeat_seconds=0.5, asset_digest_quota=QUOTA))
    try:
        holder, platform, other = ex.party(), ex.party(), ex.party()
        register_holder(holder)
        declare_photo(holder)
        register_platform(platform)
        register_platform(other, "othershare")
        corpus = [secrets.token_bytes(32) for _ in range(63)]
        assert ask(platform, [PHOTO_SHA, *corpus]) == [True, *[False] * 63]  # 64 of 100
        caplog.set_level(logging.WARNING, logger="licentia.server")
        with pytest.raises(ExchangeError) as e:
            ask(platform, [PHOTO_SHA, *corpus])  # 128 > 100: refused whole
        assert (e.value.code, e.value.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, Reason.BUSY)
        assert "per day" in str(e.value)
        lines = [r for r in caplog.records if r.getMessage() == "verification.asset_digest_quota"]
        assert len(lines) == 1
        text = str(lines[0].__dict__)
        assert platform.key.public.raw.hex() in text
        assert PHOTO_SHA.hex() not in text
        assert corpus[0].hex() not in text
        # The refused call counted nothing: 36 more fit, then not one.
        assert ask(platform, [PHOTO_SHA, *corpus[:35]]) == [True, *[False] * 35]
        with pytest.raises(ExchangeError) as e:
            ask(platform, [PHOTO_SHA])
        assert e.value.reason == Reason.BUSY
        # Another platform has its own quota.
        assert ask(other, [PHOTO_SHA]) == [True]
    finally:
        ex.stop()


def test_the_quota_restarts_each_utc_day_and_refuses_bad_settings() -> None:
    day = 86400
    quota = DigestQuota(10)
    quota.take(b"p", 10, 5 * day + 1)
    with pytest.raises(LicentiaError) as e:
        quota.take(b"p", 1, 6 * day - 1)
    assert e.value.reason == Reason.BUSY
    assert quota.used(b"p", 6 * day - 1) == 10
    quota.take(b"p", 10, 6 * day)  # a new UTC day
    assert quota.used(b"p", 6 * day) == 10
    for bad in (0, -1, 10**10):
        with pytest.raises(ValueError, match="--asset-digest-quota"):
            Settings(asset_digest_quota=bad)
