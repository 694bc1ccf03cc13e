"""Following an exchange's revocations: issuer keys, a signed snapshot, then the live stream.

A :class:`StatusFollower` is what every verifier that does not read the exchange's database
shares: the platform's embedded verifier (``licentia.clients.verifier``) and the exchange's
verify-only replica (``licentia-server --upstream``). It loads the exchange's issuer keys and
a signed status snapshot, then follows ``WatchRevocations`` from the snapshot's sequence
number and feeds a :class:`~licentia.status.StatusView` every event, heartbeat and snapshot,
in order. On a stream error or end it reconnects with exponential backoff and jitter and
resumes from the last sequence it applied; on a sequence gap it resynchronises from a new
snapshot. A second thread refreshes the issuer keys periodically (and soon after a token
names a key id it does not know, rate-limited), and cancels a stream that has gone silent.

Failing closed comes from the view: when no event or heartbeat has refreshed it for
``staleness_seconds``, every licence that is not known revoked answers ``STATUS_STALE``.
A snapshot older than the view (the exchange's numbering went back) is refused, since
revocation is final; the view then goes stale until an operator intervenes.

Freshness is measured in the exchange's time (``StatusHeartbeat.at``, ``revoked_at``,
``taken_at``) against the follower's clock; a time ahead of the follower's clock is clamped
to it, so a fast exchange clock cannot extend freshness beyond the bound.

The follower's clock is checked against those signed times too (:class:`GuardedStatus`): a
check never uses a time earlier than the latest signed time accepted from the exchange (a
slow clock cannot keep an expired licence alive), and while a heartbeat or snapshot just
received is ahead of the follower's clock by more than the staleness bound, every licence not
known revoked answers ``CLOCK_SKEW``. A time that arrives further behind the clock than the
bound (a fast clock, or a feed that lags) leaves the view STATUS_STALE. Either is logged.

It lives in the transport layer, not in the protocol core: it talks to a network (through a
gRPC channel the caller opens, :class:`GrpcUpstream`, or any other :class:`Upstream`), starts
two threads, reads the clock and sleeps with jitter. The rules it applies are the core's:
:class:`~licentia.status.StatusView` and the signature checks of ``licentia.status``. A failed
call is an :class:`~licentia.transport.errors.ExchangeError` with the server's reason (the one
mapper, :func:`~licentia.transport.errors.exchange_error`).

Why one module of this size: one follower, its two threads and what they share (the view
under its lock, the trusted keys, the open stream); none of the pieces is used apart.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any, Protocol, TypeVar

import grpc  # type: ignore[import-untyped]

from licentia.content_certs import MAX_ROOTS, trusted_roots
from licentia.errors import LicentiaError, Reason
from licentia.keys import IssuerKey, IssuerKeySet
from licentia.methods import path
from licentia.status import (
    StatusSnapshot,
    StatusView,
    verify_event,
    verify_heartbeat,
    verify_snapshot,
)
from licentia.v1 import licences_pb2

from .errors import ExchangeError, exchange_error

__all__ = [
    "DEFAULT_KEY_REFRESH_MIN_INTERVAL",
    "DEFAULT_KEY_REFRESH_SECONDS",
    "GET_ISSUER_KEYS",
    "GET_STATUS_SNAPSHOT",
    "WATCH_REVOCATIONS",
    "FeedObserver",
    "GrpcUpstream",
    "GuardedStatus",
    "RevocationStream",
    "StatusFollower",
    "TrustedKeys",
    "Upstream",
]

_I = TypeVar("_I")
_O = TypeVar("_O")

GET_ISSUER_KEYS = path(licences_pb2, "GetIssuerKeys")
GET_STATUS_SNAPSHOT = path(licences_pb2, "GetStatusSnapshot")
WATCH_REVOCATIONS = path(licences_pb2, "WatchRevocations")

#: Seconds between scheduled issuer-key refreshes.
DEFAULT_KEY_REFRESH_SECONDS = 300.0
#: At most one refresh prompted by unknown key ids in this many seconds.
DEFAULT_KEY_REFRESH_MIN_INTERVAL = 10.0


class RevocationStream(Protocol):
    """An open ``WatchRevocations`` call: its messages (iterating raises
    :class:`~licentia.transport.errors.ExchangeError` when the call fails), and a way to
    cancel it."""

    def __iter__(self) -> Iterator[licences_pb2.WatchRevocationsResponse]: ...

    def cancel(self) -> Any:
        """End the call (idempotent)."""
        ...


class Upstream(Protocol):
    """The exchange's public revocation calls, as a follower needs them."""

    #: The DER content roots (docs/token-format.md §12) the last :meth:`issuer_keys`
    #: answer carried, not yet checked (the follower keeps those its keys sign).
    content_roots: Sequence[bytes]
    #: The content term that answer carried (``content_term_seconds``; 0 if none): retired
    #: roots are dropped with it (:func:`licentia.content_certs.checker_term`).
    content_term_seconds: int

    def issuer_keys(self, timeout: float | None = None) -> IssuerKeySet:
        """``GetIssuerKeys``; raises ``ExchangeError`` (``LicentiaError`` if bad)."""
        ...

    def status_snapshot(self, timeout: float | None = None) -> bytes:
        """``GetStatusSnapshot``: the serialized ``SignedStatusSnapshot``, not yet verified."""
        ...

    def watch(self, after: int) -> RevocationStream:
        """``WatchRevocations`` from ``after``."""
        ...


class FeedObserver(Protocol):
    """Told what a :class:`StatusFollower` accepted, in order, after it changed the view: a
    verify-only replica relays exactly these to its own subscribers. Called on the
    follower's feed thread (or :meth:`StatusFollower.start`'s caller); it must not block."""

    def adopted(self, signed: bytes, snapshot: StatusSnapshot) -> None:
        """The view was (re)built from this verified snapshot (``signed``: the serialized
        ``SignedStatusSnapshot`` as the exchange sent it)."""
        ...

    def applied(self, msg: licences_pb2.WatchRevocationsResponse) -> None:
        """A verified event (the next in sequence) or heartbeat was applied to the view."""
        ...


class _Stream:
    """A ``WatchRevocations`` call whose failures are mapped to ``ExchangeError``."""

    def __init__(self, call: Any) -> None:
        self._call = call

    def __iter__(self) -> Iterator[licences_pb2.WatchRevocationsResponse]:
        try:
            yield from self._call
        except grpc.RpcError as e:
            raise exchange_error(e) from None

    def cancel(self) -> Any:
        """Cancel the call."""
        return self._call.cancel()


class GrpcUpstream:
    """:class:`Upstream` over a gRPC channel to the exchange (unsigned calls: these are
    public). ``timeout`` bounds a unary call; a failed call raises ``ExchangeError`` with
    the server's reason."""

    def __init__(self, channel: grpc.Channel, *, timeout: float = 10.0) -> None:
        self.channel = channel
        self.timeout = timeout
        self.content_roots: Sequence[bytes] = ()
        self.content_term_seconds = 0

    def _unary(self, method: str, request: Any, response_cls: Any, timeout: float | None) -> Any:
        call = self.channel.unary_unary(
            method, request_serializer=None, response_deserializer=response_cls.FromString
        )
        try:
            return call(
                request.SerializeToString(deterministic=True),
                timeout=self.timeout if timeout is None else timeout,
            )
        except grpc.RpcError as e:
            raise exchange_error(e) from None

    def issuer_keys_response(
        self, timeout: float | None = None
    ) -> licences_pb2.GetIssuerKeysResponse:
        """``GetIssuerKeys``'s answer as the exchange sent it (not yet parsed as keys)."""
        resp: licences_pb2.GetIssuerKeysResponse = self._unary(
            GET_ISSUER_KEYS,
            licences_pb2.GetIssuerKeysRequest(),
            licences_pb2.GetIssuerKeysResponse,
            timeout,
        )
        self.content_roots = list(resp.content_roots)[: MAX_ROOTS + 1]
        self.content_term_seconds = resp.content_term_seconds
        return resp

    def issuer_keys(self, timeout: float | None = None) -> IssuerKeySet:
        """The exchange's published issuer keys."""
        return IssuerKeySet.from_proto(self.issuer_keys_response(timeout).keys)

    def status_snapshot(self, timeout: float | None = None) -> bytes:
        """The exchange's signed status list now, serialized."""
        resp = self._unary(
            GET_STATUS_SNAPSHOT,
            licences_pb2.GetStatusSnapshotRequest(),
            licences_pb2.GetStatusSnapshotResponse,
            timeout,
        )
        return bytes(resp.snapshot.SerializeToString(deterministic=True))

    def watch(self, after: int) -> RevocationStream:
        """The revocation stream from ``after``."""
        multicallable = self.channel.unary_stream(
            WATCH_REVOCATIONS,
            request_serializer=None,
            response_deserializer=licences_pb2.WatchRevocationsResponse.FromString,
        )
        request = licences_pb2.WatchRevocationsRequest(after_sequence=after)
        return _Stream(multicallable(request.SerializeToString(deterministic=True)))


class TrustedKeys:
    """The trusted issuer key set, swapped whole on refresh; tells when a key id is unknown
    (an ``IssuerKeyResolver`` for :class:`~licentia.verify.VerificationEngine`).

    :attr:`roots` are the content roots (DER, docs/token-format.md §12) of those keys that
    the exchange published and that the keys self-sign
    (:func:`licentia.content_certs.trusted_roots`): a file checker's C2PA trust anchors,
    swapped with the keys."""

    __slots__ = ("_on_unknown", "current", "roots")

    def __init__(
        self,
        keys: IssuerKeySet,
        on_unknown: Callable[[], None],
        roots: Sequence[bytes] = (),
    ) -> None:
        self.current = keys
        self._on_unknown = on_unknown
        self.roots: tuple[bytes, ...] = tuple(roots)

    def resolve(self, key_id: bytes) -> IssuerKey | None:
        """The key with this id, or ``None`` (and a refresh is asked for)."""
        key = self.current.resolve(key_id)
        if key is None:
            self._on_unknown()
        return key


class GuardedStatus:
    """The view behind a lock: the follower thread mutates it while checks read it (a
    growing status list is not safe to read mid-update). Held for a bit lookup only (a
    ``StatusSource`` for :class:`~licentia.verify.VerificationEngine`).

    It also keeps the follower's clock honest: :attr:`signed_at` is the latest time the
    exchange signed that the follower accepted, and :attr:`skew` how far the follower's
    clock was from the exchange's when the last heartbeat or snapshot arrived (positive: the
    follower's clock is behind :attr:`signed_at`; negative: the time arrived that far behind
    the follower's clock).
    """

    __slots__ = ("lock", "signed_at", "skew", "view")

    def __init__(self, view: StatusView) -> None:
        self.view = view
        self.lock = threading.Lock()
        self.signed_at = 0
        self.skew = 0

    def skewed(self) -> bool:
        """True while the follower's clock is behind the exchange's signed time by more than
        the staleness bound. (A clock ahead of the feed by as much cannot be told from a
        feed that lags, as a replica that lost its store does: the view goes STATUS_STALE.)"""
        return self.skew > self.view.staleness_bound

    def now(self, local: int) -> int:
        """The time to decide by: ``local``, or the latest signed time if that is later."""
        return max(local, self.signed_at)

    def check(self, status_list: int, status_index: int, now: int) -> Reason | None:
        """``REVOKED``, ``STATUS_LIST_DROPPED``, ``CLOCK_SKEW``, ``STATUS_STALE``, or
        ``None``."""
        with self.lock:
            view = self.view
            reason = view.check(status_list, status_index, now)
            if (
                reason is not Reason.REVOKED
                and reason is not Reason.STATUS_LIST_DROPPED
                and self.skew > view.staleness_bound  # skewed(), inline: on every check
            ):
                return Reason.CLOCK_SKEW
            return reason


class _Resync(Exception):  # noqa: N818 (a control-flow signal, not an error)
    """The view fell behind the stream: rebuild it from a snapshot and reopen."""


class StatusFollower:
    """An exchange's issuer keys and status list, followed live (see the module).

    ``staleness_seconds`` is the fail-closed bound (it must exceed the exchange's heartbeat
    interval); ``clock`` gives Unix seconds; ``backoff`` is ``(first, longest)`` delay in
    seconds between reconnection attempts; ``name`` prefixes the threads' names and the log
    events; ``observer``, when given, is told every snapshot, event and heartbeat the view
    accepted (:class:`FeedObserver`). Call :meth:`start`, give :attr:`keys` and
    :attr:`status` to a verification engine, and :meth:`close` at the end.
    """

    def __init__(
        self,
        upstream: Upstream,
        *,
        staleness_seconds: int = 30,
        clock: Callable[[], float] = time.time,
        backoff: tuple[float, float] = (0.2, 10.0),
        log: logging.Logger | None = None,
        key_refresh_seconds: float = DEFAULT_KEY_REFRESH_SECONDS,
        key_refresh_min_interval: float = DEFAULT_KEY_REFRESH_MIN_INTERVAL,
        name: str = "verifier",
        observer: FeedObserver | None = None,
    ) -> None:
        if staleness_seconds <= 0:
            raise ValueError("staleness_seconds must be positive")
        if not 0 < backoff[0] <= backoff[1]:
            raise ValueError("backoff is (first, longest) with 0 < first <= longest")
        self.upstream = upstream
        self.staleness_seconds = staleness_seconds
        self.backoff = backoff
        self.key_refresh_seconds = key_refresh_seconds
        self.key_refresh_min_interval = key_refresh_min_interval
        self.name = name
        self.observer = observer
        self._clock = clock
        self._log = log or logging.getLogger(f"licentia.{name}")
        self._keys: TrustedKeys | None = None
        self._status: GuardedStatus | None = None
        self._stop = threading.Event()
        self._keys_wanted = threading.Event()
        self._call_lock = threading.Lock()
        self._call: RevocationStream | None = None
        self._threads: list[threading.Thread] = []
        self.connected = False
        self._last_message = time.monotonic()
        #: Times the stream was opened again after the first.
        self.reconnects = 0
        #: Times the view was rebuilt from a new snapshot after a gap.
        self.resyncs = 0
        #: Times the issuer key set was fetched again after start.
        self.key_refreshes = 0
        #: The last error met while following the exchange, for people.
        self.last_error: str | None = None
        #: Whether the last signed time arrived further behind the clock than the bound.
        self._lag_logged = False

    # -- life cycle ---------------------------------------------------------------------
    @property
    def started(self) -> bool:
        """True once :meth:`start` has loaded the keys and a snapshot."""
        return self._status is not None

    def start(self, timeout: float = 10) -> None:
        """Load the issuer keys and a signed snapshot (each call bounded by ``timeout``
        seconds), then follow the revocation stream in the background.

        Raises ``ExchangeError`` when the exchange cannot be reached or refuses,
        ``LicentiaError`` when what it sends does not verify, and ``RuntimeError`` when
        started twice or after :meth:`close`.
        """
        if self._status is not None or self._stop.is_set():
            raise RuntimeError("a follower is started once")
        keys = self.upstream.issuer_keys(timeout)
        self._keys = TrustedKeys(keys, self._keys_wanted.set, self._roots(keys))
        signed = self.upstream.status_snapshot(timeout)
        snapshot = self._verified(verify_snapshot, signed, timeout)
        self._status = GuardedStatus(StatusView(self._clamped(snapshot), self.staleness_seconds))
        self._signed_time(snapshot.taken_at, "snapshot")
        if self.observer is not None:
            self.observer.adopted(signed, snapshot)
        self._log.info(
            f"{self.name}.started",
            extra={"sequence": snapshot.sequence, "issuer_keys": len(self._keys.current)},
        )
        self._last_message = time.monotonic()
        for target, suffix in ((self._follow_forever, "feed"), (self._maintain, "keys")):
            t = threading.Thread(target=target, name=f"licentia-{self.name}-{suffix}", daemon=True)
            self._threads.append(t)
            t.start()

    def close(self) -> None:
        """Stop following: cancel the stream and join the threads. Idempotent."""
        self._stop.set()
        self._keys_wanted.set()
        self._cancel_call()
        for t in self._threads:
            t.join(timeout=10)
        self._threads.clear()
        self.connected = False

    # -- what a verification engine reads -------------------------------------------------
    @property
    def keys(self) -> TrustedKeys:
        """The trusted issuer keys (after :meth:`start`)."""
        assert self._keys is not None, "start() first"
        return self._keys

    @property
    def status(self) -> GuardedStatus:
        """The status view (after :meth:`start`)."""
        assert self._status is not None, "start() first"
        return self._status

    @property
    def sequence(self) -> int:
        """The last status-list sequence number applied (0 before start)."""
        return self._status.view.sequence if self._status is not None else 0

    @property
    def fresh_at(self) -> int:
        """Exchange time as of which the view is complete (0 before start)."""
        return self._status.view.fresh_at if self._status is not None else 0

    def now(self, local: int) -> int:
        """The time a check must use when the follower's clock reads ``local``: never
        earlier than the latest time the exchange signed and the follower accepted (a
        platform whose clock runs slow would otherwise allow licences that have expired)."""
        status = self._status
        return local if status is None else status.now(local)

    @property
    def clock_skew(self) -> int:
        """Seconds the follower's clock was behind (negative: ahead of) the exchange's
        signed time at the last heartbeat or snapshot (0 before start)."""
        return self._status.skew if self._status is not None else 0

    def figures(self) -> tuple[int, int, bool]:
        """A consistent ``(sequence, fresh_at, fresh now)``."""
        status = self._status
        if status is None:
            return 0, 0, False
        with status.lock:
            view = status.view
            return view.sequence, view.fresh_at, view.is_fresh(int(self._clock()))

    @property
    def issuer_key_count(self) -> int:
        """Issuer keys currently trusted."""
        return len(self._keys.current) if self._keys is not None else 0

    # -- following the exchange ---------------------------------------------------------
    def _follow_forever(self) -> None:
        """Follow the stream until closed, reconnecting with backoff and jitter."""
        attempt = 0
        first = True
        while not self._stop.is_set():
            if not first:
                self.reconnects += 1
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
                self._log.exception(f"{self.name}.feed_failed")
                self.last_error = f"{type(e).__name__}: {e}"
            finally:
                self.connected = False
            if self._stop.is_set():
                break
            if delivered:
                attempt = 0
            first_delay, longest = self.backoff
            delay = min(longest, first_delay * 2**attempt) * random.uniform(0.5, 1.0)  # noqa: S311
            attempt = min(attempt + 1, 32)
            self._log.info(f"{self.name}.reconnecting", extra={"delay_s": round(delay, 3)})
            self._stop.wait(delay)

    def _follow(self) -> bool:
        """One stream from the view's sequence number; True if it delivered anything.

        Returns when the stream ends; raises ``ExchangeError`` when it fails, ``_Resync`` on
        a sequence gap, ``LicentiaError`` for data that does not verify.
        """
        assert self._status is not None
        call = self.upstream.watch(self._status.view.sequence)
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
                    self.connected = True
                    self._log.info(f"{self.name}.connected", extra={"sequence": self.sequence})
        except ExchangeError:
            if not self._stop.is_set():
                raise
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
            # Every item is signed by an issuer key: nothing unsigned changes the view or
            # keeps it fresh (docs/threat-model.md, "The revocation feed").
            if kind == "event":
                event = self._verified(verify_event, msg.event)
                with status.lock:  # a past time: it moves the time forward, never the skew
                    status.signed_at = max(status.signed_at, event.revoked_at)
                event = replace(event, revoked_at=self._not_ahead(event.revoked_at))
                with status.lock:
                    fresh = event.sequence > status.view.sequence
                    status.view.apply(event)
                if fresh and self.observer is not None:
                    self.observer.applied(msg)
            elif kind == "heartbeat":
                beat = self._verified(verify_heartbeat, msg.heartbeat)
                self._signed_time(beat.at, "heartbeat")
                with status.lock:
                    status.view.heartbeat(beat.sequence, self._not_ahead(beat.at))
                assert self._keys is not None
                if beat.key_set_sha256 != self._keys.current.digest():
                    # The exchange publishes another key set (a rotation, a withdrawal):
                    # fetch it now (rate-limited), not at the next scheduled refresh.
                    self._keys_wanted.set()
                if self.observer is not None:
                    self.observer.applied(msg)
            elif kind == "snapshot":
                data = msg.snapshot.SerializeToString(deterministic=True)
                self._replace(data, self._verified(verify_snapshot, data))
        except LicentiaError as e:
            if e.reason is Reason.STATUS_SEQUENCE_GAP and kind != "snapshot":
                raise _Resync from None
            raise

    def _verified(
        self,
        verify: Callable[[_I, IssuerKeySet], _O],
        item: _I,
        timeout: float | None = None,
    ) -> _O:
        """``verify(item, keys)``; when it names a key the follower does not know (the
        exchange rotated), the keys are fetched again once (within ``timeout``) and it is
        tried again."""
        assert self._keys is not None
        try:
            return verify(item, self._keys.current)
        except LicentiaError as e:
            if e.reason is not Reason.UNKNOWN_ISSUER_KEY:
                raise
        self._refresh_keys(timeout)
        return verify(item, self._keys.current)

    def _replace(self, signed: bytes, snapshot: StatusSnapshot) -> None:
        """Adopt a newer snapshot (``signed``: its serialized ``SignedStatusSnapshot``); an
        older one is refused (revocation is final)."""
        assert self._status is not None
        status = self._status
        with status.lock:
            status.view.replace(self._clamped(snapshot))
        self._signed_time(snapshot.taken_at, "snapshot")
        if self.observer is not None:
            self.observer.adopted(signed, snapshot)

    def _signed_time(self, at: int, what: str) -> None:
        """Note a time the exchange signed as its "now" (a heartbeat's, a snapshot's): the
        latest such time bounds the time of every check from below, and its distance from
        the follower's clock is the skew. A change of skew state is logged."""
        assert self._status is not None
        status = self._status
        local = int(self._clock())
        with status.lock:
            was = status.skewed()
            status.signed_at = max(status.signed_at, at)
            # Behind: how far the time checks use runs ahead of the clock (it stays at the
            # latest signed time, so one far-ahead time keeps the skew until a restart: an
            # operator must look). Ahead: how far behind the clock this time arrived.
            ahead = status.signed_at - local
            skew = status.skew = ahead if ahead > 0 else at - local
            now_skewed = status.skewed()
        lagging = -skew > self.staleness_seconds
        if (now_skewed and not was) or (lagging and not self._lag_logged):
            self._log.warning(
                f"{self.name}.clock_skew",
                extra={"skew_s": skew, "bound_s": self.staleness_seconds, "source": what},
            )
        elif (was and not now_skewed) or (self._lag_logged and not lagging):
            self._log.info(f"{self.name}.clock_agrees", extra={"skew_s": skew})
        self._lag_logged = lagging

    def _not_ahead(self, at: int) -> int:
        """An exchange time, at most the follower's now: what refreshes the view."""
        return min(at, int(self._clock()))

    def _clamped(self, snapshot: StatusSnapshot) -> StatusSnapshot:
        return replace(snapshot, taken_at=self._not_ahead(snapshot.taken_at))

    def _resync(self) -> bool:
        """Rebuild the view from a new snapshot; True on success."""
        try:
            signed = self.upstream.status_snapshot()
            snapshot = self._verified(verify_snapshot, signed)
            self._replace(signed, snapshot)
        except LicentiaError as e:
            self._note_error(e)
            return False
        self.resyncs += 1
        self._log.info(f"{self.name}.resynced", extra={"sequence": snapshot.sequence})
        return True

    def _note_error(self, e: LicentiaError) -> None:
        self.last_error = f"{e.reason.name}: {e}"
        level = logging.INFO if isinstance(e, ExchangeError) else logging.ERROR
        self._log.log(level, f"{self.name}.feed_error", extra={"reason": e.reason.name})

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
        fresh = self.upstream.issuer_keys(timeout)
        old = self._keys.current
        kept = []
        for key in fresh:
            prior = old.resolve(key.key_id)
            kept.append(prior if prior == key else key)
        keys = IssuerKeySet(kept)
        roots = self._roots(keys)
        self._keys.current, self._keys.roots = keys, roots
        self.key_refreshes += 1
        self._log.info(f"{self.name}.keys_refreshed", extra={"issuer_keys": len(kept)})

    def _roots(self, keys: IssuerKeySet) -> tuple[bytes, ...]:
        """The content roots of the last key-set answer that ``keys`` self-sign (none, and
        logged, when the exchange sent more than a key set holds: files then fail closed)."""
        try:
            roots = self.upstream.content_roots
            term = self.upstream.content_term_seconds
            now = int(self._clock())
            return tuple(trusted_roots(roots, keys, now=now, max_term_seconds=term))
        except LicentiaError as e:
            self._note_error(e)
            return ()

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
            if self.connected and now - self._last_message > self.staleness_seconds:
                self._log.warning(f"{self.name}.stream_silent", extra={"cancelling": True})
                self._cancel_call()
