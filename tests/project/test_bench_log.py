"""The log benchmark runs end to end and prints what it should (figures are not asserted)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .benches import load_bench


def _bench_log(monkeypatch: pytest.MonkeyPatch) -> Any:
    return load_bench(monkeypatch, "bench_log")


def test_bench_log_quick_builds_a_tree_and_verifies_its_proofs(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _bench_log(monkeypatch).main(["--quick"]) == 0  # every proof it built verified
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["bench"] == "log.proof"
    assert {"bench", "ops_per_s", "ratio", "target", "limit", "ok"} <= row.keys()
    assert (row["entries"], row["depth"]) == (100_000, 17)
    assert row["ops_per_s"] > 0
    assert 0 < row["ratio"] < 1


def test_the_tree_the_bench_builds_is_the_one_the_store_appends(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from licentia import merkle

    bench = _bench_log(monkeypatch)
    store = bench.SqliteStore(tmp_path / "db")
    try:
        root = bench.build(store, 13)
    finally:
        store.close()
    assert root == merkle.reference_root([i.to_bytes(32, "big") for i in range(13)])
