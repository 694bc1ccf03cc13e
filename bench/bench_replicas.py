"""Benchmarks of two exchange replicas on one PostgreSQL database, against SQLite in the same run.

Prints one JSON object per line, like the other benches: ``bench``, ``ops_per_s``, ``ratio``,
``target``, ``limit``, ``ok`` (and ``value`` / ``p99_ms`` where a latency is measured).

A PostgreSQL server is started for the run in a temporary directory, as the tests start theirs
(``tests/pg_server.py``: ``initdb`` + ``pg_ctl``, a Unix socket only, ``fsync`` and
``synchronous_commit`` on), and stopped at the end. The exchanges run in this process, built
and started as ``bench_server.py`` builds its one (:class:`bench_server.Bench`).

- ``rpc.issue.postgres``: licences issued per second on PostgreSQL ÷ on SQLite (WAL,
  ``synchronous=FULL``), each measured as ``bench_server.py``'s ``rpc.issue`` (16 concurrent
  advertisers, one auto-approved RequestLicence per licence), in interleaved rounds (SQLite,
  then PostgreSQL, each round); the ratio of the medians. Target ≥ 1.0 (issue 20: the
  scale-out path at least as fast as the embedded one), on a 2-core machine where the
  database server competes with the exchange for the same cores. The row also gives the CPU
  each licence cost (``cpu_ms_per_licence``), on each backend: this process's (the exchange
  and the bench's 16 callers) and the database server's processes' (Linux's ``/proc``; 0
  elsewhere). When the cores are busy the ratio follows the two totals' ratio.
- ``revocation.propagation.cross_replica``: p99 of the milliseconds from RevokeLicence's
  return at replica A to the revocation event's arrival on each of 50 WatchRevocations
  streams opened on replica B (the same database, another pool, another hub), over
  sequential revocations. The event reaches B through PostgreSQL's ``NOTIFY`` (sent by the
  revoking transaction, delivered at commit) on B's listening connection, which wakes B's hub
  to read the events from the store. Target: 50 ms.

Run with ``python bench/bench_replicas.py``; ``--quick`` runs fewer, shorter rounds (the
tests use it).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # for tests/pg_server.py, the tests' PostgreSQL server
    sys.path.append(str(ROOT))

from bench_server import (
    FULL,
    MAX_WORKERS,
    QUICK,
    STREAMS,
    Bench,
    propagation_row,
    run_concurrently,
)
from report import emit

from licentia.services.app import App, build
from licentia.services.deps import Settings
from licentia.services.runtime import RunningServer, ServerSettings, start
from tests.pg_server import PgServer

#: revocation.propagation.cross_replica's target, p99 ms.
PROPAGATION_TARGET_MS = 50


class Replica:
    """A second exchange on the same database and data directory (keys) as a bench's."""

    def __init__(self, data_dir: Path, db: str) -> None:
        log = logging.getLogger("licentia.bench")
        log.setLevel(logging.WARNING)
        self.app: App = build(data_dir, settings=Settings(), log=log, db=db)
        try:
            self.server: RunningServer = start(
                ServerSettings(address="127.0.0.1:0", max_workers=MAX_WORKERS),
                self.app.handlers,
                self.app.service_names,
                log,
            )
        except BaseException:
            self.app.close()
            raise

    def close(self) -> None:
        """Stop the server, then close the app."""
        try:
            self.server.stop(0.5)
        finally:
            self.app.close()


def _process_cpu() -> float:
    """CPU seconds this process has used (the exchanges and the bench's callers)."""
    t = os.times()
    return t.user + t.system


def _database_cpu(data: Path) -> float:
    """CPU seconds the PostgreSQL server's processes (its postmaster and their children)
    have used, read from ``/proc`` (0.0 where there is none, or no server)."""
    try:
        postmaster = int((data / "postmaster.pid").read_text().split()[0])
        entries = os.listdir("/proc")
    except (OSError, ValueError, IndexError):
        return 0.0
    ticks = 0
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:  # ended meanwhile
            continue
        fields = stat.rpartition(")")[2].split()  # after the command's name
        if int(entry) == postmaster or int(fields[1]) == postmaster:
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks; exit 1 if a target is missed."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    args = ap.parse_args(argv)
    sizes = QUICK if args.quick else FULL

    pg = PgServer().start()
    try:
        url = pg.create_database()
        with tempfile.TemporaryDirectory(prefix="licentia-bench-") as tmp:
            lite = Bench(Path(tmp) / "sqlite", sizes)
            try:
                a = Bench(Path(tmp) / "pg", sizes, db=url)
                try:
                    lite.setup()
                    a.setup()
                    rates: dict[str, list[float]] = {"sqlite": [], "postgres": []}
                    # CPU seconds (this process, the database's) and licences, per backend.
                    cpu = {"sqlite": [0.0, 0.0, 0], "postgres": [0.0, 0.0, 0]}
                    for _ in range(sizes.rounds):
                        for name, bench in (("sqlite", lite), ("postgres", a)):
                            jobs = bench.issue_jobs()
                            used = _process_cpu(), _database_cpu(pg.data)
                            rates[name].append(run_concurrently(jobs, bench._issued).rate)
                            cpu[name][0] += _process_cpu() - used[0]
                            cpu[name][1] += _database_cpu(pg.data) - used[1]
                            cpu[name][2] += sum(len(j) for j in jobs)
                    b = Replica(Path(tmp) / "pg", url)
                    try:
                        latencies, missing = a.propagation(watch_address=b.server.address)
                    finally:
                        b.close()
                finally:
                    a.close()
            finally:
                lite.close()
    finally:
        pg.stop()

    on_pg = statistics.median(rates["postgres"])
    on_lite = statistics.median(rates["sqlite"])
    p99 = statistics.quantiles(latencies, n=100, method="inclusive")[98]
    results: list[dict[str, Any]] = [
        {
            "bench": "rpc.issue.postgres",
            "ops_per_s": round(on_pg),
            "ratio": round(on_pg / on_lite, 3),
            "target": 1.0,
            "limit": f"licences/s on SQLite in the same run ({round(on_lite)}/s), 16 callers",
            "note": (
                "PostgreSQL (fsync, synchronous_commit on, Unix socket) shares the machine's"
                " cores with the exchange"
            ),
            "cpu_ms_per_licence": {
                name: {
                    "exchange": round(used / max(n, 1) * 1000, 2),
                    "database": round(db / max(n, 1) * 1000, 2),
                }
                for name, (used, db, n) in cpu.items()
            },
            "per_round_postgres": [round(r) for r in rates["postgres"]],
            "per_round_sqlite": [round(r) for r in rates["sqlite"]],
            "ok": on_pg >= on_lite,
        },
        {
            **propagation_row(
                "revocation.propagation.cross_replica",
                latencies,
                missing,
                PROPAGATION_TARGET_MS,
                f"ms from RevokeLicence's return at replica A to the event on each of"
                f" {STREAMS} streams on replica B, {sizes.revocations} revocations one at a time",
            ),
            "ok": p99 <= PROPAGATION_TARGET_MS and missing == 0,
        },
    ]
    return emit(results)


if __name__ == "__main__":
    sys.exit(main())
