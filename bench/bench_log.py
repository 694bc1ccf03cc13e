"""Benchmark of the public log's proofs, as a ratio against a limit measured in the same run.

Prints one JSON object per line, like ``bench_core.py``: ``bench``, ``ops_per_s``, ``ratio``,
``target``, ``limit``, ``ok`` (and ``depth``, ``entries``).

- ``log.proof``: inclusion proofs per second, each built by the store (SQLite, the subtree
  hashes of ``log_nodes``, one read snapshot per proof) for a random entry of a tree of
  1,000,000 entries, then checked with :func:`licentia.merkle.verify_inclusion`, ÷ raw
  SHA-256 hashes of 64 bytes per second (``hashlib``). The issue states no target for it;
  the line reports the figure and the depth of the tree.

The tree is written straight into a fresh store's tables (entries of 32 bytes, every
complete subtree's hash computed level by level), as a million issuances would have left
it; building it takes some seconds and is not timed.

Run with ``python bench/bench_log.py``; ``--quick`` uses 100,000 entries (the tests use it).
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from report import emit

from licentia import merkle
from licentia.services.store import SqliteStore


def build(store: SqliteStore, size: int) -> bytes:
    """Write ``size`` entries and every complete subtree's hash; the root."""
    entries = [i.to_bytes(32, "big") for i in range(size)]
    level = [merkle.leaf_hash(e) for e in entries]
    conn = store._db.conn
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO log_entries VALUES (?, ?, 0, 'bench', x'')",
        ((i, e) for i, e in enumerate(entries)),
    )
    depth = 0
    while level:
        conn.executemany(
            "INSERT INTO log_nodes VALUES (?, ?, ?)", ((depth, i, h) for i, h in enumerate(level))
        )
        level = [merkle.node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        depth += 1
    conn.execute("COMMIT")
    return store.log_head()[1]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit 0 (there is no target to miss)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a tree of 100,000 entries")
    args = ap.parse_args(argv)
    size, rounds, per_round = (100_000, 3, 300) if args.quick else (1_000_000, 7, 2000)
    rng = random.Random(7)
    block = bytes(64)
    with tempfile.TemporaryDirectory(prefix="licentia-bench-") as tmp:
        store = SqliteStore(Path(tmp) / "log.db")
        try:
            root = build(store, size)

            def proofs(n: int) -> float:
                picks = [rng.randrange(size) for _ in range(n)]
                t0 = time.perf_counter()
                for i in picks:
                    got, proof, entry = store.log_inclusion(i, size)
                    if not merkle.verify_inclusion(entry, i, got, proof, root):
                        raise SystemExit("a proof did not verify")
                return n / (time.perf_counter() - t0)

            def hashes(n: int) -> float:
                sha = hashlib.sha256
                t0 = time.perf_counter()
                for _ in range(n):
                    sha(block).digest()
                return n / (time.perf_counter() - t0)

            ratios, rates = [], []
            for _ in range(rounds):
                before = hashes(per_round * 50)
                rate = proofs(per_round)
                limit = (before + hashes(per_round * 50)) / 2
                rates.append(rate)
                ratios.append(rate / limit)
        finally:
            store.close()
    depth = (size - 1).bit_length()
    result: dict[str, Any] = {
        "bench": "log.proof",
        "ops_per_s": round(statistics.median(rates)),
        "ratio": round(statistics.median(ratios), 5),
        "target": None,
        "limit": "raw SHA-256 hashes of 64 bytes per second (hashlib)",
        "entries": size,
        "depth": depth,
        "note": f"each proof has {depth} hashes; the store reads them in one snapshot and the"
        " bench verifies every proof",
        "ok": True,
    }
    return emit([result])


if __name__ == "__main__":
    sys.exit(main())
