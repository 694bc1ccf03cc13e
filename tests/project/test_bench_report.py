"""How benches judge and print their lines (bench/report.py), and how `make bench` judges the
benches (issue 20): it fails exactly when a figure with a target misses it or a bench crashes."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .benches import load_bench

ROOT = Path(__file__).resolve().parents[2]


def _report(monkeypatch: pytest.MonkeyPatch) -> Any:
    return load_bench(monkeypatch, "report")


def test_a_goal_is_a_share_of_the_floor_it_names(monkeypatch: pytest.MonkeyPatch) -> None:
    report = _report(monkeypatch)
    row = report.line({"bench": "x", "ratio": 0.5, "target": None, "floor_ratio": 0.8}, goal=0.75)
    assert row["of_floor"] == 0.625
    assert (row["target"], row["ok"]) == (0.75, False)
    assert "floor_ratio" in row["target_of"]
    assert row["ratio"] == 0.5  # the absolute ratio is still printed
    met = report.line({"bench": "x", "ratio": 0.7, "floor_ratio": 0.8}, goal=0.75)
    assert (met["of_floor"], met["ok"]) == (0.875, True)
    # Against another floor: of_floor is that share, the signature floor's is printed too.
    issue = report.line(
        {"bench": "i", "ratio": 0.2, "floor_ratio": 0.8, "storage_floor_ratio": 0.4},
        goal=0.9,
        basis="storage_floor_ratio",
    )
    assert (issue["of_floor"], issue["of_signature_floor"], issue["ok"]) == (0.5, 0.25, False)
    assert "storage_floor_ratio" in issue["target_of"]
    checked = report.line(
        {"bench": "v", "ratio": 0.8, "floor_ratio": 1.0, "checks_floor_ratio": 0.9}
    )
    assert (checked["of_floor"], checked["of_checks_floor"]) == (0.8, 0.889)
    assert "target" not in checked  # no goal: nothing judged
    # A latency: the floor's time ÷ the figure's, so that 1.0 is the floor there too.
    late = report.line({"bench": "l", "ratio": 0.02, "floor_ratio": 0.01}, lower_is_better=True)
    assert late["of_floor"] == 0.5


def test_a_goal_without_its_floor_is_a_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    report = _report(monkeypatch)
    assert report.line({"bench": "x", "ratio": 1.0}) == {"bench": "x", "ratio": 1.0}
    with pytest.raises(ValueError, match="no storage_floor_ratio"):
        report.line(
            {"bench": "x", "ratio": 1.0, "floor_ratio": 1.0}, goal=0.9, basis="storage_floor_ratio"
        )
    with pytest.raises(ValueError, match="unknown floor"):
        report.line({"bench": "x", "ratio": 1.0}, basis="floor")


def test_emit_prints_every_line_and_fails_only_on_a_missed_target(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    report = _report(monkeypatch)
    reported = {"bench": "r", "ratio": 0.1, "target": None, "ok": False}
    met = {"bench": "m", "ratio": 2, "target": 1, "ok": True}
    missed = {"bench": "x", "ratio": 0.5, "target": 1, "ok": False}
    assert report.emit([reported, met]) == 0
    assert report.emit([met, missed, reported]) == 1
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["bench"] for r in rows] == ["r", "m", "m", "x", "r"]
    assert rows[0]["ok"] is True  # a figure without a target never fails
    with pytest.raises(ValueError, match="a target and no ok"):
        report.emit([{"bench": "y", "ratio": 1, "target": 1}])


_BENCHES = {
    "bench_met.py": 'print(\'{"bench": "met", "target": 1, "ok": true}\')',
    "bench_missed.py": 'import sys; print(\'{"bench": "missed"}\'); sys.exit(1)',
    "bench_crash.py": "raise RuntimeError('boom')",
    "bench_last.py": 'print(\'{"bench": "last"}\')',
}


def _make_bench(tmp_path: Path, names: list[str]) -> subprocess.CompletedProcess[str]:
    for name in names:
        (tmp_path / name).write_text(_BENCHES[name])
    venv = tmp_path / "venv"
    stamp = venv / ".bench-stamp"
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    return subprocess.run(
        [
            make,
            "--no-print-directory",
            "-o",
            str(stamp),  # nothing installed: the benches are the fakes above
            "bench",
            f"VENV={venv}",
            f"PY={shutil.which('python3') or 'python3'}",
            f"BENCHES={' '.join(str(tmp_path / n) for n in names)}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_make_bench_runs_every_bench_and_fails_if_one_missed_or_crashed(tmp_path: Path) -> None:
    ok = _make_bench(tmp_path, ["bench_met.py", "bench_last.py"])
    assert ok.returncode == 0, ok.stderr
    assert [json.loads(x)["bench"] for x in ok.stdout.splitlines()] == ["met", "last"]
    bad = _make_bench(tmp_path, ["bench_missed.py", "bench_crash.py", "bench_last.py"])
    assert bad.returncode != 0
    # Every bench ran, even after the failures, and the failed ones are named.
    assert [json.loads(x)["bench"] for x in bad.stdout.splitlines()] == ["missed", "last"]
    assert "bench_missed.py (exit 1)" in bad.stderr
    assert "bench_crash.py (exit 1)" in bad.stderr
    assert "bench_last.py (exit" not in bad.stderr


def test_make_bench_runs_every_bench_script() -> None:
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    dry = subprocess.run(
        [make, "-n", "-o", ".venv/.bench-stamp", "bench"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    for script in sorted((ROOT / "bench").glob("bench_*.py")):
        assert f"bench/{script.name}" in dry
