"""The server benchmark runs end to end and prints what it should (figures are not asserted)."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import pytest

from .benches import load_bench


def _bench_server(monkeypatch: pytest.MonkeyPatch) -> Any:
    return load_bench(monkeypatch, "bench_server")


def test_bench_server_quick_prints_the_six_benches(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Speed is measured by the benchmark, not asserted here: a missed target (exit 1) is fine.
    started = time.monotonic()
    code = _bench_server(monkeypatch).main(["--quick"])
    elapsed = time.monotonic() - started
    assert code in (0, 1)
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["bench"] for r in rows] == [
        "rpc.verify",
        "rpc.issue",
        "log.append",
        "revocation.propagation",
        "key.removal.propagation",
        "log.inclusion.delay",
    ]
    for row in rows:
        assert {"bench", "ops_per_s", "ratio", "target", "limit", "ok"} <= row.keys()
        assert isinstance(row["ratio"], int | float)
        assert math.isfinite(row["ratio"])
        assert row["ratio"] >= 0
        assert isinstance(row["ok"], bool)
    verify, issue, append, propagation, removal, inclusion = rows
    assert (append["ops_per_s"], append["ratio"]) == (issue["ops_per_s"], issue["ratio"])
    assert verify["ops_per_s"] > 0
    assert issue["ops_per_s"] > 0
    # The signature work alone, on the same server and channel, is measured alongside.
    for row in (verify, issue):
        assert 0 < row["floor_ratio"] < 5
        assert "signature" in row["floor"]
    # So is the least storing an issuance needs, below the signature work's floor.
    assert 0 < issue["storage_floor_ratio"] < issue["floor_ratio"] * 1.5
    assert append["storage_floor_ratio"] == issue["storage_floor_ratio"]
    parts = issue["storage_floor_by_part"]
    assert list(parts) == ["licence", "+escrow", "+log"]
    # The goals are shares of floors (issue 20), the absolute ratio still printed.
    assert verify["of_floor"] == round(verify["ratio"] / verify["floor_ratio"], 3)
    assert verify["target"] == 0.75
    assert verify["ok"] == (verify["of_floor"] >= 0.75)
    for row in (issue, append):
        assert row["of_floor"] == round(row["ratio"] / row["storage_floor_ratio"], 3)
        assert row["target"] == 0.9
        assert "storage_floor_ratio" in row["target_of"]
        assert row["ok"] == (row["of_floor"] >= 0.9)
    assert issue["of_signature_floor"] == round(issue["ratio"] / issue["floor_ratio"], 3)
    assert code == (0 if all(r["ok"] for r in rows) else 1)
    assert parts["+log"] == issue["storage_floor_ratio"]
    assert all(0 < x < 5 for x in parts.values())
    assert "stored" in issue["storage_floor"]
    assert propagation["ops_per_s"] is None
    assert propagation["value"] == propagation["p99_ms"]
    assert propagation["missing"] == 0
    # A compromised key's removal, timed to an inline verifier's REVOKED, beside its floor
    # (one hop of the feed), and again with more live licences bound to the removed key.
    assert removal["ops_per_s"] is None
    assert removal["value"] == removal["p99_ms"]
    assert removal["ratio"] == round(removal["p99_ms"] / removal["target"], 3)
    assert removal["target"] == 1000
    assert removal["missing"] == 0
    assert 0 < removal["floor_p99_ms"]
    assert 0 <= removal["floor_ratio"]
    assert 0 < removal["of_floor"]  # the floor's p99 ÷ the removal's: 1.0 at the floor
    assert "RevokeLicence" in removal["floor"]
    by = removal["by_licences"]
    assert list(by) == ["1", "3"]
    assert by["1"]["removals"] == 5
    assert by["3"]["removals"] == 1
    assert all(0 < v["p50_ms"] <= v["max_ms"] for v in by.values())
    assert all(v["p50_ms"] <= v["every_p50_ms"] <= v["every_max_ms"] for v in by.values())
    # A licence's entry, checked in the log by its licensee as soon as it is issued.
    assert inclusion["ops_per_s"] is None
    assert 0 < inclusion["floor_p99_ms"]
    assert 0 < inclusion["p50_ms"] <= inclusion["p99_ms"]
    assert inclusion["ratio"] == round(inclusion["p99_ms"] / inclusion["target"], 3)
    assert inclusion["ok"] == (inclusion["p99_ms"] <= inclusion["target"])
    assert elapsed < 60  # --quick is meant to take seconds


def test_bench_server_issue_only_prints_rpc_issue_alone(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code = _bench_server(monkeypatch).main(["--quick", "--issue-only"])
    assert code in (0, 1)
    [row] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["bench"] == "rpc.issue"
    assert len(row["per_round"]) == len(row["per_round_of_storage_floor"]) == 2
    assert 0 < row["ratio"]
    assert 0 < row["storage_floor_ratio"]
    assert row["of_floor"] == pytest.approx(row["ratio"] / row["storage_floor_ratio"], abs=0.01)
