"""The fan-out benchmark runs end to end and prints what it should (figures are not asserted)."""

from __future__ import annotations

import json
import math
import time

import pytest

from .benches import load_bench


def test_bench_fanout_quick_prints_its_row(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Speed is measured by the benchmark, not asserted here: a missed target (exit 1) is fine.
    started = time.monotonic()
    code = load_bench(monkeypatch, "bench_fanout").main(["--quick"])
    elapsed = time.monotonic() - started
    assert code in (0, 1)
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["bench"] for r in rows] == ["revocation.fanout"]
    (row,) = rows
    assert {"bench", "ops_per_s", "ratio", "target", "limit", "ok"} <= row.keys()
    assert isinstance(row["ok"], bool)
    assert math.isfinite(row["ratio"])
    assert row["ratio"] > 0
    assert row["target"] == 50
    assert row["value"] == row["p99_ms"] == row["tiers"]["replicas"]["p99_ms"]
    # Every stream opened, on the exchange and on the replicas, and every event reached
    # every one of them (else it was counted missing), none ended.
    assert row["opened"] == row["streams"] == 100
    assert set(row["tiers"]) == {"exchange", "replicas"}
    for tier in row["tiers"].values():
        assert tier["missing"] == 0
        assert tier["ended"] == 0
        assert tier["p50_ms"] <= tier["p99_ms"] <= tier["max_ms"]
    assert row["missing"] == 0
    assert row["event_bytes"] > 0
    # The floor: the same streams on bare relays, same run, every event everywhere; the
    # figure's share of it printed.
    assert row["floor_opened"] == 100
    assert set(row["floor_tiers"]) == {"exchange", "replicas"}
    assert all(t["missing"] == 0 for t in row["floor_tiers"].values())
    assert row["floor_p99_ms"] == row["floor_tiers"]["replicas"]["p99_ms"] > 0
    assert row["floor_ratio"] == round(row["floor_p99_ms"] / 50, 3)
    assert row["of_floor"] == round(row["floor_ratio"] / row["ratio"], 3)
    assert row["replica_cpu_us_per_message"] > 0
    assert row["floor_cpu_us_per_message"] > 0
    assert elapsed < 90  # --quick is meant to take seconds
