"""The replicas benchmark runs end to end and prints what it should (figures are not asserted)."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import pytest

from .benches import load_bench


def _bench_replicas(monkeypatch: pytest.MonkeyPatch) -> Any:
    return load_bench(monkeypatch, "bench_replicas")


def test_bench_replicas_quick_prints_the_two_benches(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Speed is measured by the benchmark, not asserted here: a missed target (exit 1) is fine.
    started = time.monotonic()
    code = _bench_replicas(monkeypatch).main(["--quick"])
    elapsed = time.monotonic() - started
    assert code in (0, 1)
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["bench"] for r in rows] == [
        "rpc.issue.postgres",
        "revocation.propagation.cross_replica",
    ]
    for row in rows:
        assert {"bench", "ops_per_s", "ratio", "target", "limit", "ok"} <= row.keys()
        assert isinstance(row["ratio"], int | float)
        assert math.isfinite(row["ratio"])
        assert row["ratio"] > 0
        assert isinstance(row["ok"], bool)
    issue, propagation = rows
    assert issue["ops_per_s"] > 0
    assert issue["target"] == 1.0  # PostgreSQL at least as fast as SQLite
    assert len(issue["per_round_postgres"]) == len(issue["per_round_sqlite"]) >= 1
    # The CPU a licence cost on each backend: this process's, and the database server's.
    cpu = issue["cpu_ms_per_licence"]
    assert cpu["sqlite"]["exchange"] > 0
    assert cpu["postgres"]["exchange"] > 0
    assert cpu["postgres"]["database"] > 0
    assert propagation["ops_per_s"] is None
    assert propagation["value"] == propagation["p99_ms"]
    assert propagation["target"] == 50
    # Every event reached every stream of the other replica (else it was counted missing).
    assert propagation["missing"] == 0
    assert elapsed < 60  # --quick is meant to take seconds
