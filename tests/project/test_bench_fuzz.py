"""``bench/fuzz.py`` (``make fuzz``) runs every target in a process of its own and prints one JSON
line per target; a short run finds no crash. Skipped where atheris (the ``fuzz`` extra) is not
installed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ["token", "rule", "presentation", "status", "request", "checkpoint", "merkle"]


def test_a_short_run_of_every_target_prints_its_figures_and_finds_no_crash() -> None:
    pytest.importorskip("atheris")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "fuzz.py"), "--runs", "300", "--seconds", "60"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["target"] for r in rows] == TARGETS
    for row in rows:
        assert row["runs"] == 300
        assert row["crashes"] == 0
        assert row["seconds"] > 0
    # The instrumentation reports coverage to libFuzzer: it keeps inputs that reach new code.
    assert sum(row["corpus"] for row in rows) > 0
