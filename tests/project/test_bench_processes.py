"""The processes benchmark runs end to end and prints its row (figures are not asserted)."""

from __future__ import annotations

import json

import pytest

from .benches import load_bench


def test_bench_processes_quick_prints_the_ratio_with_the_cores(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code = load_bench(monkeypatch, "bench_processes").main(["--quick", "--processes", "2"])
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["bench"] == "rpc.verify.processes"
    assert row["processes"] == 2
    assert row["cores"] >= 1
    assert row["ratio"] > 0
    assert row["denied"] == 0  # every Verify at either server was ALLOW
    # A target only where the load generator has cores of its own; else reported.
    assert (row["target"] is None) == (row["cores"] < 2 + row["clients"])
    assert code == (0 if row["ok"] else 1)
