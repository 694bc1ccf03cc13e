"""The verifier benchmark runs end to end and prints what it should (figures are not asserted)."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import pytest

from .benches import load_bench


def _bench_verifier(monkeypatch: pytest.MonkeyPatch) -> Any:
    return load_bench(monkeypatch, "bench_verifier")


def test_bench_verifier_quick_prints_its_two_json_lines(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Speed is measured by the benchmark, not asserted here: a missed target (exit 1) is fine.
    started = time.monotonic()
    code = _bench_verifier(monkeypatch).main(["--quick"])
    elapsed = time.monotonic() - started
    assert code in (0, 1)
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["bench"] for r in rows] == ["verifier.inline", "verifier.inline.standing"]
    for row, signatures in zip(rows, (3, 2), strict=True):
        assert {"bench", "ops_per_s", "ratio", "target", "limit", "ok"} <= row.keys()
        assert isinstance(row["ops_per_s"], int)
        assert row["ops_per_s"] > 0
        assert isinstance(row["ratio"], int | float)
        assert math.isfinite(row["ratio"])
        assert row["ratio"] > 0
        # The goal is a share of the floor (issue 20): of_floor = ratio ÷ floor_ratio ≥ 0.9.
        assert row["target"] == 0.9
        assert row["of_floor"] == round(row["ratio"] / row["floor_ratio"], 3)
        assert f"÷ {signatures} signatures per check" in row["limit"]
        assert 0 < row["floor_ratio"] < 5  # the least verification, in the same rounds
        assert f"{signatures} signature checks" in row["floor"]
        assert isinstance(row["ok"], bool)
        assert row["ok"] == (row["of_floor"] >= row["target"])
        assert row["connected"] is True  # measured with the revocation feed live
    # The checks floor (every check, nothing else) is measured for the typical licence.
    assert 0 < rows[0]["checks_floor_ratio"] < 5
    assert "every check" in rows[0]["checks_floor"]
    assert rows[0]["of_checks_floor"] == round(rows[0]["ratio"] / rows[0]["checks_floor_ratio"], 3)
    assert "checks_floor_ratio" not in rows[1]
    assert code == (0 if all(r["ok"] for r in rows) else 1)
    assert elapsed < 60
