"""The load tool runs end to end against a real exchange, briefly, and finds nothing wrong
(its figures are not asserted: ``make load`` measures them)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KINDS = ["verify.embedded", "verify.rpc", "report_use", "request", "approve", "statement", "revoke"]


def test_a_short_load_prints_every_kind_and_passes_with_no_error() -> None:
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "load.py"), "--seconds", "3", "--concurrency", "2"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert out.returncode == 0, out.stdout + out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["kind"] for r in rows] == [*KINDS, "summary"]
    for row in rows[:-1]:
        assert set(row) == {"kind", "ops", "ops_per_s", "p50_ms", "p99_ms", "errors"}
        assert row["errors"] == 0
        assert row["ops"] > 0, row  # three seconds see every kind run
        assert row["ops_per_s"] > 0
        assert 0 < row["p50_ms"] <= row["p99_ms"]
    summary = rows[-1]
    assert summary["errors"] == 0
    assert summary["verdict"] == "PASS"
    assert summary["memory_ok"] is True
    assert summary["ops"] == sum(r["ops"] for r in rows[:-1])
    assert set(summary["rss_mib"]) == {"start", "warm", "end", "peak"}
    assert all(v > 0 for v in summary["rss_mib"].values())
    assert summary["rss_growth_mib"] <= summary["rss_bound_mib"]
    assert summary["licences_issued"] > summary["licences_revoked"] > 0
    verifier = summary["verifier"]
    assert verifier["connected"] is True
    assert verifier["cached_tokens"] <= verifier["cache_size"]
    assert verifier["sequence"] == summary["licences_revoked"]  # it saw every revocation
    assert elapsed < 30
