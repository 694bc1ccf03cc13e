"""Retention: the periodic sweep that erases the personal fields of finished requests and
licences once the operator's retention period has passed (docs/operations.md, "Retention").

The rules are the store's (:meth:`.store.Store.sweep_retention`, one bounded batch per
transaction); this module runs batches until one finds nothing left, and the server runs it
every :data:`SWEEP_SECONDS` in a thread of its own (:func:`run`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from .store import Store
from .store.base_erasure import Swept

__all__ = ["BATCH", "MAX_BATCHES", "SWEEP_SECONDS", "run", "sweep"]

#: Seconds between two sweeps of a running server (the first runs one interval after start).
SWEEP_SECONDS = 3600.0
#: Most rows of each kind one batch (one transaction) changes.
BATCH = 500
#: Most batches one sweep runs; the next sweep goes on where it stopped.
MAX_BATCHES = 1000


def sweep(store: Store, now: int, keep_seconds: int, *, batch: int = BATCH) -> Swept:
    """Run retention batches at ``now`` until one changes nothing (or :data:`MAX_BATCHES`
    ran); what they did, summed."""
    closed = licences = requests = 0
    for _ in range(MAX_BATCHES):
        done = store.sweep_retention(now, keep_seconds, batch=batch)
        closed += done.closed
        licences += done.licences
        requests += done.requests
        if not done.total:
            break
    return Swept(closed, licences, requests)


def run(
    stop: threading.Event,
    store: Store,
    clock: Callable[[], int],
    keep_seconds: int,
    every: float,
    log: logging.Logger,
) -> None:
    """Sweep every ``every`` seconds until ``stop`` is set; a failed sweep is logged and
    tried again at the next interval (each batch committed stays committed)."""
    while not stop.wait(every):
        try:
            done = sweep(store, clock(), keep_seconds)
        except Exception:
            log.warning("retention.sweep_failed", exc_info=True)
            continue
        if done.total:
            log.info(
                "retention.swept",
                extra={
                    "closed": done.closed,
                    "licences": done.licences,
                    "requests": done.requests,
                },
            )
