"""Loading a bench script as a module, for the tests that run it with ``--quick``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def load_bench(monkeypatch: pytest.MonkeyPatch, name: str) -> Any:
    """``bench/<name>.py`` as a module (bench/ is scripts, not a package), registered in
    ``sys.modules`` for the test only (its dataclasses look their module up there); bench/ is
    on the path, as for the script, for the modules the benches share."""
    path = BENCH / f"{name}.py"
    monkeypatch.syspath_prepend(str(BENCH))
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module
