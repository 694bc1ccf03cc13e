"""Long make targets say how far they are (``make crash`` was silent for ~10 minutes)."""

from __future__ import annotations

import ast
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("make") is None, reason="no make here")
def test_make_crash_names_each_test_and_asks_for_a_line_per_round() -> None:
    dry = subprocess.run(
        ["make", "-n", "crash"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert "LICENTIA_PROGRESS=1" in dry
    assert " -vv " in dry  # pyproject's addopts has -q: -vv names each test as it runs


def test_every_crash_loop_prints_a_progress_line() -> None:
    tree = ast.parse((ROOT / "tests" / "integration" / "test_crash.py").read_text())
    loops = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.For)
        and isinstance(node.iter, ast.Call)
        and "ROUNDS" in ast.unparse(node.iter)
    ]
    assert len(loops) == 2  # the crashes mid-flight, the crashes during a first start
    for loop in loops:
        body = [n for stmt in loop.body for n in ast.walk(stmt)]
        calls = {ast.unparse(n.func) for n in body if isinstance(n, ast.Call)}
        assert "progress" in calls, ast.unparse(loop.iter)
