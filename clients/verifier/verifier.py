"""The platform's inline verifier: licences checked in-process, revocations followed live.

A :class:`Verifier` loads the exchange's issuer keys and a signed status snapshot once, then
answers every :meth:`Verifier.check` in-process — no call to the exchange per check. A
background thread follows ``WatchRevocations`` from the snapshot's sequence number and feeds
the :class:`~licentia.status.StatusView` every event, heartbeat and snapshot, in order. On a
stream error or end it reconnects with exponential backoff and jitter and resumes from the
last sequence it applied; on a sequence gap it resynchronises from a new snapshot. A second
thread refreshes the issuer keys periodically (and soon after a token names a key id it does
not know, rate-limited), and cancels a stream that has gone silent.

Failing closed comes from the view: when no event or heartbeat has refreshed it for
``staleness_seconds`` (the exchange is gone, the stream is stuck, the clocks disagree), every
licence that is not known revoked answers ``STATUS_STALE``.

The staleness bound must exceed the exchange's heartbeat interval (``--heartbeat-seconds``,
default 5 s): a stream silent for longer than the bound is cancelled and opened again. A
snapshot older than the view (the exchange's numbering went back: a restored backup, another
exchange) is refused, since revocation is final; the view then goes stale and checks fail
closed until an operator intervenes. A platform should give the channel a short reconnection
backoff (``grpc.initial_reconnect_backoff_ms``, ``grpc.max_reconnect_backoff_ms``) so that
gRPC's own (up to two minutes) does not delay the verifier's retries.

Freshness is measured in the exchange's time (``StatusHeartbeat.at``, ``revoked_at``,
``taken_at``) against the verifier's clock; a heartbeat, event or snapshot time ahead of the
verifier's clock is clamped to it, so a fast exchange clock cannot extend freshness beyond the
bound.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any

import grpc  # type: ignore[import-untyped]

from licentia.errors import LicentiaError, Reason
from licentia.keys import IssuerKey, IssuerKeySet
from licentia.nonces import MemoryNonceStore, NonceStore
from licentia.presentation import MAX_AUDIENCE_CHARS
from licentia.scope import IntendedUse
from licentia.status import StatusEvent, StatusSnapshot, StatusView, verify_snapshot
from licentia.v1 import licences_pb2
from licentia.verify import Decision, VerificationEngine

from ..channel import ExchangeError, SignedChannel, exchange_error

_SERVICE = "/licentia.v1.LicenceService/"
GET_ISSUER_KEYS = _SERVICE + "GetIssuerKeys"
GET_STATUS_SNAPSHOT = _SERVICE + "GetStatusSnapshot"
WATCH_REVOCATIONS = _SERVICE + "WatchRevocations"

#: Seconds between scheduled issuer-key refreshes.
DEFAULT_KEY_REFRESH_SECONDS = 300.0
#: At most one refresh prompted by unknown key ids in this many seconds.
DEFAULT_KEY_REFRESH_MIN_INTERVAL = 10.0


def fetch_issuer_keys(rpc: SignedChannel, timeout: float | None = None) -> IssuerKeySet:
    """The exchange's published issuer keys (``GetIssuerKeys``, unsigned).

    Raises :class:`~licentia.clients.channel.ExchangeError` (or ``LicentiaError`` for a key
    set that does not parse).
    """
    resp = rpc.unary(
        GET_ISSUER_KEYS,
        licences_pb2.GetIssuerKeysRequest(),
        licences_pb2.GetIssuerKeysResponse,
        timeout,
    )
    return IssuerKeySet.from_proto(resp.keys)


def fetch_status_snapshot(
    rpc: SignedChannel, keys: IssuerKeySet, timeout: float | None = None
) -> StatusSnapshot:
    """The exchange's status list now (``GetStatusSnapshot``), its signature checked against
    ``keys``. Raises ``ExchangeError`` or ``LicentiaError`` (bad signature, unknown key, …)."""
    resp = rpc.unary(
        GET_STATUS_SNAPSHOT,
        licences_pb2.GetStatusSnapshotRequest(),
        licences_pb2.GetStatusSnapshotResponse,
        timeout,
    )
    return verify_snapshot(resp.snapshot.SerializeToString(deterministic=True), keys)


@dataclass(frozen=True, slots=True)
class VerifierStats:
    """What an operator wants to see of a running verifier."""

    #: The last status-list sequence number applied.
    sequence: int
    #: Exchange time (Unix seconds) as of which the view is complete.
    fresh_at: int
    #: True while ``fresh_at`` is within the staleness bound (checks can ALLOW).
    fresh: bool
    #: True while the revocation stream is open and delivering.
    connected: bool
    #: Times the stream was opened again after the first.
    reconnects: int
    #: Times the view was rebuilt from a new snapshot after a gap.
    resyncs: int
    #: Times the issuer key set was fetched again after start.
    key_refreshes: int
    #: Issuer keys currently trusted.
    issuer_keys: int
    #: The last error met while following the exchange, for people (None if none yet).
    last_error: str | None


class _Keys:
    """The trusted issuer key set, swapped whole on refresh; tells when a key id is unknown."""

    __slots__ = ("_on_unknown", "current")

    def __init__(self, keys: IssuerKeySet, on_unknown: Callable[[], None]) -> None:
        self.current = keys
        self._on_unknown = on_unknown

    def resolve(self, key_id: bytes) -> IssuerKey | None:
        """The key with this id, or ``None`` (and a refresh is asked for)."""
        key = self.current.resolve(key_id)
        if key is None:
            self._on_unknown()
        return key


class _GuardedStatus:
    """The view behind a lock: the follower thread mutates it while checks read it (a
    growing status list is not safe to read mid-update). Held for a bit lookup only."""

    __slots__ = ("lock", "view")

    def __init__(self, view: StatusView) -> None:
        self.view = view
        self.lock = threading.Lock()

    def check(self, index: int, now: int) -> Reason | None:
        """``REVOKED``, ``STATUS_STALE``, or ``None``."""
        with self.lock:
            return self.view.check(index, now)


class _Resync(Exception):  # noqa: N818 (a control-flow signal, not an error)
    """The view fell behind the stream: rebuild it from a snapshot and reopen."""


class Verifier:
    """The licence verifier a platform embeds.

    ``channel`` reaches the exchange's ``LicenceService``; ``platform_id`` is the platform's
    registered id, the audience every presentation must name. ``staleness_seconds`` is the
    fail-closed bound; ``clock`` gives Unix seconds; ``nonces`` remembers presentation nonces
    (default: a bounded in-memory store); ``backoff`` is ``(first, longest)`` delay in
    seconds between reconnection attempts. Call :meth:`start` (or use it as a context
    manager), then :meth:`check` from any number of threads; :meth:`close` stops it.
    """

    def __init__(
        self,
        channel: grpc.Channel,
        platform_id: str,
        *,
        staleness_seconds: int = 30,
        clock: Callable[[], float] = time.time,
        nonces: NonceStore | None = None,
        backoff: tuple[float, float] = (0.2, 10.0),
        log: logging.Logger | None = None,
        key_refresh_seconds: float = DEFAULT_KEY_REFRESH_SECONDS,
        key_refresh_min_interval: float = DEFAULT_KEY_REFRESH_MIN_INTERVAL,
        call_timeout: float = 10.0,
    ) -> None:
        if not 0 < len(platform_id) <= MAX_AUDIENCE_CHARS:
            raise ValueError("platform_id is 1 to 128 characters")
        if staleness_seconds <= 0:
            raise ValueError("staleness_seconds must be positive")
        if not 0 < backoff[0] <= backoff[1]:
            raise ValueError("backoff is (first, longest) with 0 < first <= longest")
        self.platform_id = platform_id
        self.staleness_seconds = staleness_seconds
        self.backoff = backoff
        self.key_refresh_seconds = key_refresh_seconds
        self.key_refresh_min_interval = key_refresh_min_interval
        self._channel = channel
        self._rpc = SignedChannel(channel, None, timeout=call_timeout)
        self._clock = clock
        self._nonces: NonceStore = nonces if nonces is not None else MemoryNonceStore()
        self._log = log or logging.getLogger("licentia.verifier")
        self._engine: VerificationEngine | None = None
        self._keys: _Keys | None = None
        self._status: _GuardedStatus | None = None
        self._stop = threading.Event()
        self._keys_wanted = threading.Event()
        self._call_lock = threading.Lock()
        self._call: Any = None
        self._threads: list[threading.Thread] = []
        self._connected = False
        self._last_message = time.monotonic()
        self._reconnects = 0
        self._resyncs = 0
        self._key_refreshes = 0
        self._last_error: str | None = None

    # -- life cycle ---------------------------------------------------------------------
    def start(self, timeout: float = 10) -> None:
        """Load the issuer keys and a signed snapshot (each call bounded by ``timeout``
        seconds), then follow the revocation stream in the background.

        Raises :class:`~licentia.clients.channel.ExchangeError` when the exchange cannot be
        reached, ``LicentiaError`` when what it sends does not verify, and ``RuntimeError``
        when started twice.
        """
        if self._engine is not None or self._stop.is_set():
            raise RuntimeError("a verifier is started once")
        self._keys = _Keys(fetch_issuer_keys(self._rpc, timeout), self._keys_wanted.set)
        snapshot = self._fetch_snapshot(timeout)
        self._status = _GuardedStatus(StatusView(self._clamped(snapshot), self.staleness_seconds))
        self._engine = VerificationEngine(
            self._keys, self._status, audience=self.platform_id, nonces=self._nonces
        )
        self._log.info(
            "verifier.started",
            extra={"sequence": snapshot.sequence, "issuer_keys": len(self._keys.current)},
        )
        self._last_message = time.monotonic()
        for target, name in (
            (self._follow_forever, "licentia-verifier-feed"),
            (self._maintain, "licentia-verifier-keys"),
        ):
            t = threading.Thread(target=target, name=name, daemon=True)
            self._threads.append(t)
            t.start()

    def close(self) -> None:
        """Stop following the exchange: cancel the stream and join the threads. Idempotent.
        Checks made afterwards fail closed once the view is stale."""
        self._stop.set()
        self._keys_wanted.set()
        self._cancel_call()
        for t in self._threads:
            t.join(timeout=10)
        self._threads.clear()
        self._connected = False

    def __enter__(self) -> Verifier:
        if self._engine is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the hot path -------------------------------------------------------------------
    def check(
        self, token: str, presentation: str | None, use: IntendedUse, now: int | None = None
    ) -> Decision:
        """Decide whether the presenter of ``presentation`` may make ``use`` of the licence
        ``token`` on this platform at ``now`` (default: the clock).

        In-process and thread-safe; never raises for bad input. DENY ``STATUS_STALE`` when
        the view is past its staleness bound or the verifier was never started; DENY
        ``REVOKED`` for a revoked licence, whatever the view's age.
        """
        engine = self._engine
        if engine is None:
            return Decision(False, (Reason.STATUS_STALE,))
        if not isinstance(token, str):
            return Decision(False, (Reason.MALFORMED,))
        if not isinstance(use, IntendedUse):
            return Decision(False, (Reason.INVALID_USE,))
        try:
            at = int(self._clock()) if now is None else now
            return engine.verify(token, use, at, presentation=presentation)
        except Exception as e:  # noqa: BLE001 - a check fails closed, it never raises
            self._log.warning("verifier.check_failed", extra={"error": type(e).__name__})
            return Decision(False, (Reason.INTERNAL,))

    # -- what an operator sees ----------------------------------------------------------
    @property
    def sequence(self) -> int:
        """The last status-list sequence number applied (0 before start)."""
        return self._status.view.sequence if self._status is not None else 0

    @property
    def fresh_at(self) -> int:
        """Exchange time as of which the view is complete (0 before start)."""
        return self._status.view.fresh_at if self._status is not None else 0

    @property
    def connected(self) -> bool:
        """True while the revocation stream is open and delivering."""
        return self._connected

    @property
    def reconnects(self) -> int:
        """Times the stream was opened again after the first."""
        return self._reconnects

    @property
    def stats(self) -> VerifierStats:
        """A consistent copy of the figures above and a few more."""
        status = self._status
        if status is None:
            sequence, fresh_at, fresh = 0, 0, False
        else:
            with status.lock:
                view = status.view
                sequence, fresh_at = view.sequence, view.fresh_at
                fresh = view.is_fresh(int(self._clock()))
        return VerifierStats(
            sequence=sequence,
            fresh_at=fresh_at,
            fresh=fresh,
            connected=self._connected,
            reconnects=self._reconnects,
            resyncs=self._resyncs,
            key_refreshes=self._key_refreshes,
            issuer_keys=len(self._keys.current) if self._keys is not None else 0,
            last_error=self._last_error,
        )

    # -- following the exchange ---------------------------------------------------------
    def _fetch_snapshot(self, timeout: float | None = None) -> StatusSnapshot:
        """A verified snapshot; fetches the keys again once if it names an unknown key."""
        assert self._keys is not None
        try:
            return fetch_status_snapshot(self._rpc, self._keys.current, timeout)
        except LicentiaError as e:
            if e.reason is not Reason.UNKNOWN_ISSUER_KEY or isinstance(e, ExchangeError):
                raise
        self._refresh_keys(timeout)
        return fetch_status_snapshot(self._rpc, self._keys.current, timeout)

    def _follow_forever(self) -> None:
        """Follow the stream until closed, reconnecting with backoff and jitter."""
        attempt = 0
        first = True
        while not self._stop.is_set():
            if not first:
                self._reconnects += 1
            first = False
            delivered = False
            try:
                delivered = self._follow()
            except _Resync:
                delivered = self._resync()
                if delivered:
                    attempt = 0
                    continue
            except LicentiaError as e:
                self._note_error(e)
            except Exception as e:  # noqa: BLE001 - keep following whatever happens
                self._log.exception("verifier.feed_failed")
                self._last_error = f"{type(e).__name__}: {e}"
            finally:
                self._connected = False
            if self._stop.is_set():
                break
            if delivered:
                attempt = 0
            first_delay, longest = self.backoff
            delay = min(longest, first_delay * 2**attempt) * random.uniform(0.5, 1.0)  # noqa: S311
            attempt = min(attempt + 1, 32)
            self._log.info("verifier.reconnecting", extra={"delay_s": round(delay, 3)})
            self._stop.wait(delay)

    def _follow(self) -> bool:
        """One stream from the view's sequence number; True if it delivered anything.

        Returns when the stream ends; raises ``ExchangeError`` when it fails, ``_Resync`` on
        a sequence gap, ``LicentiaError`` for data that does not verify.
        """
        assert self._status is not None
        request = licences_pb2.WatchRevocationsRequest(after_sequence=self._status.view.sequence)
        multicallable = self._channel.unary_stream(
            WATCH_REVOCATIONS,
            request_serializer=None,
            response_deserializer=licences_pb2.WatchRevocationsResponse.FromString,
        )
        call = multicallable(request.SerializeToString(deterministic=True))
        with self._call_lock:
            if self._stop.is_set():
                call.cancel()
                return False
            self._call = call
        delivered = False
        try:
            for msg in call:
                self._last_message = time.monotonic()
                self._on_message(msg)
                if not delivered:
                    delivered = True
                    self._connected = True
                    self._log.info("verifier.connected", extra={"sequence": self.sequence})
        except grpc.RpcError as e:
            if not self._stop.is_set():
                raise exchange_error(e) from None
        finally:
            with self._call_lock:
                self._call = None
            call.cancel()
        return delivered

    def _on_message(self, msg: licences_pb2.WatchRevocationsResponse) -> None:
        """Apply one message of the stream to the view."""
        assert self._status is not None
        status = self._status
        kind = msg.WhichOneof("message")
        try:
            if kind == "event":
                event = StatusEvent.from_proto(msg.event)
                event = replace(event, revoked_at=self._not_ahead(event.revoked_at))
                with status.lock:
                    status.view.apply(event)
            elif kind == "heartbeat":
                at = self._not_ahead(msg.heartbeat.at)
                with status.lock:
                    status.view.heartbeat(msg.heartbeat.sequence, at)
            elif kind == "snapshot":
                assert self._keys is not None
                data = msg.snapshot.SerializeToString(deterministic=True)
                try:
                    snapshot = verify_snapshot(data, self._keys.current)
                except LicentiaError as e:
                    if e.reason is not Reason.UNKNOWN_ISSUER_KEY:
                        raise
                    self._refresh_keys()
                    snapshot = verify_snapshot(data, self._keys.current)
                self._replace(snapshot)
        except LicentiaError as e:
            if e.reason is Reason.STATUS_SEQUENCE_GAP and kind != "snapshot":
                raise _Resync from None
            raise

    def _replace(self, snapshot: StatusSnapshot) -> None:
        """Adopt a newer snapshot. An older one (the exchange's numbering went back: a
        restored backup, another exchange) is refused: revocation is final, so the view
        keeps what it knows and goes stale (fail closed) until an operator intervenes."""
        assert self._status is not None
        status = self._status
        with status.lock:
            status.view.replace(self._clamped(snapshot))

    def _not_ahead(self, at: int) -> int:
        """An exchange time, at most the verifier's now: what refreshes the view."""
        return min(at, int(self._clock()))

    def _clamped(self, snapshot: StatusSnapshot) -> StatusSnapshot:
        return replace(snapshot, taken_at=self._not_ahead(snapshot.taken_at))

    def _resync(self) -> bool:
        """Rebuild the view from a new snapshot; True on success."""
        try:
            snapshot = self._fetch_snapshot()
            self._replace(snapshot)
        except LicentiaError as e:
            self._note_error(e)
            return False
        self._resyncs += 1
        self._log.info("verifier.resynced", extra={"sequence": snapshot.sequence})
        return True

    def _note_error(self, e: LicentiaError) -> None:
        self._last_error = f"{e.reason.name}: {e}"
        level = logging.INFO if isinstance(e, ExchangeError) else logging.ERROR
        self._log.log(level, "verifier.feed_error", extra={"reason": e.reason.name})

    def _cancel_call(self) -> None:
        with self._call_lock:
            call = self._call
        if call is not None:
            call.cancel()

    # -- keys and the watchdog ----------------------------------------------------------
    def _refresh_keys(self, timeout: float | None = None) -> None:
        """Fetch the key set again; keys that did not change keep their identity, so the
        engine's cache of tokens they signed stays valid."""
        assert self._keys is not None
        fresh = fetch_issuer_keys(self._rpc, timeout)
        old = self._keys.current
        kept = []
        for key in fresh:
            prior = old.resolve(key.key_id)
            kept.append(prior if prior == key else key)
        self._keys.current = IssuerKeySet(kept)
        self._key_refreshes += 1
        self._log.info("verifier.keys_refreshed", extra={"issuer_keys": len(kept)})

    def _maintain(self) -> None:
        """Refresh the keys on schedule and on demand (rate-limited); cancel a silent stream
        so that the follower reconnects."""
        tick = min(1.0, self.staleness_seconds / 2)
        last_refresh = time.monotonic()
        pending = False
        while not self._stop.is_set():
            if self._keys_wanted.wait(tick):
                self._keys_wanted.clear()
                pending = True
            if self._stop.is_set():
                break
            now = time.monotonic()
            due = now - last_refresh >= self.key_refresh_seconds
            if due or (pending and now - last_refresh >= self.key_refresh_min_interval):
                pending = False
                last_refresh = now
                try:
                    self._refresh_keys()
                except LicentiaError as e:
                    self._note_error(e)
            if self._connected and now - self._last_message > self.staleness_seconds:
                self._log.warning("verifier.stream_silent", extra={"cancelling": True})
                self._cancel_call()
