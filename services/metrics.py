"""Prometheus metrics: ``licentia-server --metrics HOST:PORT`` (prometheus-client).

Nothing here runs unless ``--metrics`` is given: the call path then costs one ``None`` check
(:data:`.rpc.observer`). With it, the server:

- makes a private directory (0700, removed at exit) and runs prometheus-client in its
  multiprocess mode there, so that the worker processes of ``--processes N`` (which inherit
  the directory through the environment, :func:`from_environment`) write their counts where
  the first process reads them: a scrape sums every process's calls;
- counts every call as it ends (:class:`Observer`, set as :data:`.rpc.observer`), the
  response streams open, issuances and revocations (:func:`instrument`: the store's
  ``issue`` and the hub's ``publish`` seen through a wrapper), the store's transactions
  (their time) and retries (:data:`.store.common.retried`);
- reports, at each scrape, the revocation feed's subscribers and how far behind each is, as
  a bounded summary (a gauge histogram over the subscribers and the largest lag: one series
  per bucket, never one per subscriber), the first process's own ``process_*`` figures
  (open file descriptors among them) and each worker's open file descriptors;
- serves the exposition on ``HOST:PORT`` (``/metrics``; port 0 for any free one, printed
  as ``metrics on HOST:PORT`` on stdout).

Labels are bounded: ``method`` is one of the exchange's methods, ``code`` a gRPC status
name, ``cause`` a revocation cause, ``worker`` 1 to ``--processes`` − 1.

prometheus-client chooses its multiprocess mode when it is first imported, from the
environment: this module imports it only once :func:`enable` has set the directory.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from licentia.states import RequestState

from . import rpc
from .store import common as store_common

#: The environment variable prometheus-client reads for its multiprocess directory.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Set beside it by the first process: a worker enables metrics only when both are set (an
#: operator's own ``PROMETHEUS_MULTIPROC_DIR`` alone turns nothing on).
OWNER_ENV = "LICENTIA_METRICS_DIR"
#: Call latency buckets, in seconds.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)
#: Subscriber lag buckets, in events behind the hub.
LAG_BUCKETS = (0, 1, 10, 100, 1000, 10000)


class Observer:
    """The metrics one process writes (every process of the server has one)."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram  # noqa: PLC0415 (see module)

        self.calls = Counter(
            "licentia_rpc_calls", "Calls answered, by method and status code", ["method", "code"]
        )
        self.latency = Histogram(
            "licentia_rpc_duration_seconds",
            "Time from a call's arrival to its end, by method (a stream: its whole life)",
            ["method"],
            buckets=LATENCY_BUCKETS,
        )
        self.open_streams = Gauge(
            "licentia_rpc_open_streams",
            "Response streams open now",
            multiprocess_mode="livesum",
        )
        self.issued = Counter("licentia_licences_issued", "Licences issued")
        self.revoked = Counter(
            "licentia_revocations", "Licences revoked (status-list events), by cause", ["cause"]
        )
        self.transactions = Histogram(
            "licentia_store_transaction_seconds",
            "Time of a change in the store, from its start to its commit (group commits included)",
            buckets=LATENCY_BUCKETS,
        )
        self.retries = Counter(
            "licentia_store_retries",
            "Store transactions run again, by why (conflict: a deadlock or serialization"
            " failure; connection: a lost connection)",
            ["why"],
        )
        for why in ("conflict", "connection"):  # exported at 0 from the start
            self.retries.labels(why)
        self.delivery = Histogram(
            "licentia_feed_delivery_seconds",
            "Age of a revocation event when the feed sends it to a subscriber",
            buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 30, 300, 3600),
        )
        self._children: dict[tuple[str, str], Any] = {}
        self._timers: dict[str, Any] = {}

    def ended(self, method: str, code: str, seconds: float) -> None:
        """One call ended (:data:`.rpc.observer`)."""
        key = (method, code)
        counter = self._children.get(key)
        if counter is None:  # labels() takes a lock and builds a tuple: done once per pair
            counter = self._children[key] = self.calls.labels(method, code)
        counter.inc()
        timer = self._timers.get(method)
        if timer is None:
            timer = self._timers[method] = self.latency.labels(method)
        timer.observe(seconds)

    def streams(self, delta: int) -> None:
        """A response stream opened (+1) or closed (-1)."""
        self.open_streams.inc(delta)

    def retried(self, why: str) -> None:
        """The store runs a transaction again (:data:`.store.common.retried`)."""
        self.retries.labels(why).inc()


@dataclass(eq=False)
class _Subscriber:
    """What the scrape knows of one revocation-feed subscriber: the last sequence sent."""

    sequence: int


@dataclass
class Feeds:
    """The revocation feed's subscribers of this process, for the scrape."""

    hub: Any
    _live: set[_Subscriber] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def lags(self) -> list[int]:
        """How many events each subscriber is behind the hub now."""
        head = int(self.hub.sequence)
        with self._lock:
            return [max(head - s.sequence, 0) for s in self._live]

    def wrap(self, feed: Callable[..., Iterator[Any]], delivery: Any) -> Callable[..., Any]:
        """``hub.feed`` seen through a counter of what each subscriber was sent."""

        @functools.wraps(feed)
        def watched(after: int, *args: Any, **kwargs: Any) -> Iterator[Any]:
            sub = _Subscriber(after)
            with self._lock:
                self._live.add(sub)
            try:
                for item in feed(after, *args, **kwargs):
                    sub.sequence = max(sub.sequence, int(getattr(item, "sequence", 0)))
                    revoked_at = getattr(item, "revoked_at", None)
                    if revoked_at is not None:
                        delivery.observe(max(time.time() - revoked_at, 0.0))
                    yield item
            finally:
                with self._lock:
                    self._live.discard(sub)

        return watched


class _Collector:
    """What is read at scrape time, in the first process only."""

    def __init__(self, feeds: Feeds | None, worker_pids: Callable[[], list[int]]) -> None:
        self.feeds = feeds
        self.worker_pids = worker_pids

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import (  # noqa: PLC0415 (see module)
            GaugeHistogramMetricFamily,
            GaugeMetricFamily,
        )

        if self.feeds is not None:
            lags = self.feeds.lags()
            buckets = [(str(b), float(sum(1 for x in lags if x <= b))) for b in LAG_BUCKETS]
            buckets.append(("+Inf", float(len(lags))))
            yield GaugeHistogramMetricFamily(
                "licentia_feed_lag_events",
                "Revocation-feed subscribers by how many events they are behind",
                buckets=buckets,
                gsum_value=float(sum(lags)),
            )
            yield GaugeMetricFamily(
                "licentia_feed_subscribers", "Revocation-feed subscribers now", len(lags)
            )
            yield GaugeMetricFamily(
                "licentia_feed_max_lag_events",
                "Events the furthest-behind subscriber has still to receive",
                max(lags, default=0),
            )
        fds = GaugeMetricFamily(
            "licentia_worker_open_fds",
            "Open file descriptors of each worker process (--processes)",
            labels=["worker"],
        )
        for i, pid in enumerate(self.worker_pids(), start=1):
            try:
                fds.add_metric([str(i)], len(os.listdir(f"/proc/{pid}/fd")))
            except OSError:
                continue
        yield fds


@dataclass
class MetricsServer:
    """The scrape endpoint and the private directory behind it; :meth:`close` at the end."""

    address: str
    directory: Path
    observer: Observer
    _http: Any
    _collector: _Collector

    def watch(
        self, feeds: Feeds | None = None, worker_pids: Callable[[], list[int]] | None = None
    ) -> None:
        """Report ``feeds`` and the workers (``worker_pids``) at each scrape."""
        if feeds is not None:
            self._collector.feeds = feeds
        if worker_pids is not None:
            self._collector.worker_pids = worker_pids

    def close(self) -> None:
        """Stop serving, uninstall the hooks, remove the directory."""
        self._http.shutdown()
        self._http.server_close()
        _uninstall(self.directory)


def enable(address: str) -> MetricsServer:
    """Turn metrics on in this (the first) process and serve them on ``address``
    (``HOST:PORT``); raises ``OSError`` if it cannot bind. Sets the environment the worker
    processes started after it inherit."""
    host, _, port = address.rpartition(":")
    directory = Path(tempfile.mkdtemp(prefix="licentia-metrics-"))
    os.environ[MULTIPROC_ENV] = str(directory)
    os.environ[OWNER_ENV] = str(directory)
    observer = _install()
    from prometheus_client import CollectorRegistry, start_http_server  # noqa: PLC0415
    from prometheus_client.multiprocess import (  # noqa: PLC0415
        MultiProcessCollector,
        mark_process_dead,
    )
    from prometheus_client.process_collector import ProcessCollector  # noqa: PLC0415

    registry = CollectorRegistry()

    summed = MultiProcessCollector(None, path=str(directory))  # type: ignore[no-untyped-call]

    class _Sweeping:
        """Every process's metrics, summed; the open streams of processes that ended (a
        worker restarted) forgotten first."""

        def collect(self) -> Iterable[Any]:
            for f in directory.glob("gauge_livesum_*.db"):
                pid = int(f.stem.rpartition("_")[2])
                if not _alive(pid):
                    mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]
            return summed.collect()  # type: ignore[no-any-return,no-untyped-call]

    registry.register(_Sweeping())
    ProcessCollector(registry=registry)
    collector = _Collector(None, list)
    registry.register(collector)
    try:
        http, _thread = start_http_server(int(port), host.strip("[]"), registry=registry)
    except OSError:
        _uninstall(directory)
        raise
    bound = f"{host}:{http.server_port}"
    return MetricsServer(bound, directory, observer, http, collector)


def from_environment() -> Observer | None:
    """In a worker process: turn metrics on when the first process did (its directory is
    in the environment); the observer, or None."""
    directory = os.environ.get(OWNER_ENV)
    if not directory or os.environ.get(MULTIPROC_ENV) != directory:
        return None
    return _install()


def _install() -> Observer:
    from prometheus_client import values  # noqa: PLC0415 (see module)

    # Chosen when prometheus-client was first imported: choose again now that the
    # directory is in the environment (it may have been imported before, by a library).
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    observer = Observer()
    rpc.observer = observer
    store_common.retried = observer.retried
    return observer


def _uninstall(directory: Path) -> None:
    """Undo :func:`enable`: no hook, no directory, nothing left in the environment (a
    process started later must not write to a directory that is gone)."""
    rpc.observer = None
    store_common.retried = None
    for name in (MULTIPROC_ENV, OWNER_ENV):
        if os.environ.get(name) == str(directory):
            del os.environ[name]
    from prometheus_client import values  # noqa: PLC0415

    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    shutil.rmtree(directory, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def instrument(observer: Observer, store: Any, hub: Any) -> Feeds:
    """Count issuances (``store.issue``, and ``store.add_request`` when a standing rule
    issues the licence at once), revocations (``hub.publish``), store transaction times
    (``store._transact``) and follow the hub's subscribers (``hub.feed``), by wrapping those
    methods on these instances; the subscribers, for :meth:`MetricsServer.watch`."""
    issue = store.issue

    @functools.wraps(issue)
    def counted_issue(*args: Any, **kwargs: Any) -> Any:
        row = issue(*args, **kwargs)
        observer.issued.inc()
        return row

    add_request = store.add_request

    @functools.wraps(add_request)
    def counted_add_request(row: Any, *args: Any, **kwargs: Any) -> Any:
        stored = add_request(row, *args, **kwargs)
        # Issued now: under a standing rule (``auto``), this request (not an earlier one
        # returned for its idempotency key), and not refused (that raises, or stores FAILED).
        if (
            kwargs.get("auto") is not None
            and stored.request_id == row.request_id
            and stored.state == RequestState.ISSUED
        ):
            observer.issued.inc()
        return stored

    transact = store._transact  # the store's one path for changes
    timer = observer.transactions

    @functools.wraps(transact)
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return transact(*args, **kwargs)
        finally:
            timer.observe(time.perf_counter() - started)

    publish = hub.publish
    causes: dict[Any, Any] = {}

    @functools.wraps(publish)
    def counted_publish(events: Any) -> None:
        publish(events)
        for ev in events:
            child = causes.get(ev.cause)
            if child is None:
                name = getattr(ev.cause, "name", str(ev.cause)).lower()
                child = causes[ev.cause] = observer.revoked.labels(name)
            child.inc()

    feeds = Feeds(hub)
    setattr(store, "issue", counted_issue)  # noqa: B010 (an instance's method, wrapped)
    setattr(store, "add_request", counted_add_request)  # noqa: B010
    setattr(store, "_transact", timed)  # noqa: B010
    setattr(hub, "publish", counted_publish)  # noqa: B010
    setattr(hub, "feed", feeds.wrap(hub.feed, observer.delivery))  # noqa: B010
    return feeds
