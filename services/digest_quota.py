"""The per-platform daily quota of ``CheckAssetDigests`` (docs/operations.md,
``--asset-digest-quota``): without one, a registered platform could test a scraped corpus,
64 digests a call, without limit — a bulk "who uses Licentia" oracle.

Counted in memory, per server process: the check is a read, and the quota bounds the
oracle's rate, not an exact budget, so a write per call to the shared store is not worth its
cost (with N processes a platform may ask N times the quota a day). A platform's count is one entry
(the UTC day and the digests asked), replaced when the day changes: the memory is bounded
by the registered platforms.
"""

from __future__ import annotations

import logging
import threading

from licentia.errors import LicentiaError, Reason

#: The default quota: digests one platform may ask about per UTC day (per process).
DEFAULT_ASSET_DIGEST_QUOTA = 100_000
#: The largest quota the flag takes.
MAX_ASSET_DIGEST_QUOTA = 1_000_000_000

_DAY = 86400


class DigestQuota:
    """Digests asked per platform and UTC day; thread-safe."""

    def __init__(self, per_day: int, log: logging.Logger | None = None) -> None:
        if not 0 < per_day <= MAX_ASSET_DIGEST_QUOTA:
            raise ValueError(f"--asset-digest-quota is 1 to {MAX_ASSET_DIGEST_QUOTA}")
        self.per_day = per_day
        self._log = log or logging.getLogger("licentia.server")
        self._lock = threading.Lock()
        self._used: dict[bytes, tuple[int, int]] = {}

    def take(self, platform: bytes, count: int, now: int) -> None:
        """Count ``count`` digests for ``platform`` (its key) at ``now``, or refuse them all
        (BUSY, nothing counted) if they would take its day's count past the quota. The
        refusal is logged with the platform and the counts, never the digests."""
        day = now // _DAY
        with self._lock:
            seen, used = self._used.get(platform, (day, 0))
            if seen != day:
                used = 0
            if used + count > self.per_day:
                self._log.warning(
                    "verification.asset_digest_quota",
                    extra={"platform": platform.hex(), "used": used, "asked": count},
                )
                raise LicentiaError(
                    Reason.BUSY,
                    f"CheckAssetDigests: at most {self.per_day} digests per platform per day"
                    " (UTC); try again tomorrow",
                )
            self._used[platform] = (day, used + count)

    def used(self, platform: bytes, now: int) -> int:
        """The digests ``platform`` asked about on ``now``'s UTC day."""
        with self._lock:
            day, used = self._used.get(platform, (now // _DAY, 0))
            return used if day == now // _DAY else 0
