"""The server benchmark runs end to end and prints what it should (figures are not asserted)."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _bench_server(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``bench/bench_server.py`` as a module (bench/ is scripts, not a package); registered in
    ``sys.modules`` for the test only (its dataclasses look their module up there); bench/ is
    on the path, as for the script, for the module it shares with the other benches."""
    path = ROOT / "bench" / "bench_server.py"
    monkeypatch.syspath_prepend(str(path.parent))
    spec = importlib.util.spec_from_file_location("bench_server", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


def test_bench_server_quick_prints_the_four_benches(
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
    ]
    for row in rows:
        assert {"bench", "ops_per_s", "ratio", "target", "limit", "ok"} <= row.keys()
        assert isinstance(row["ratio"], int | float)
        assert math.isfinite(row["ratio"])
        assert row["ratio"] >= 0
        assert isinstance(row["ok"], bool)
    verify, issue, append, propagation = rows
    assert (append["ops_per_s"], append["ratio"]) == (issue["ops_per_s"], issue["ratio"])
    assert verify["ops_per_s"] > 0
    assert issue["ops_per_s"] > 0
    assert propagation["ops_per_s"] is None
    assert propagation["value"] == propagation["p99_ms"]
    assert propagation["missing"] == 0
    assert elapsed < 60  # --quick is meant to take seconds
