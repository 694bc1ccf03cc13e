"""The platform's inline verifier: licences checked in-process, revocations followed live.

A :class:`Verifier` loads the exchange's issuer keys and a signed status snapshot once, then
answers every :meth:`Verifier.check` in-process — no call to the exchange per check. The
following itself is :class:`licentia.transport.follow.StatusFollower`, shared with the exchange's
verify-only replicas: a background thread follows ``WatchRevocations`` from the snapshot's
sequence number and feeds the :class:`~licentia.status.StatusView` every event, heartbeat and
snapshot, in order. On a stream error or end it reconnects with exponential backoff and
jitter and resumes from the last sequence it applied; on a sequence gap it resynchronises
from a new snapshot. A second thread refreshes the issuer keys periodically (and soon after a
token names a key id it does not know, rate-limited), and cancels a stream that has gone
silent.

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
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

import grpc  # type: ignore[import-untyped]

from licentia.errors import Reason
from licentia.keys import IssuerKeySet
from licentia.nonces import MemoryNonceStore, NonceStore
from licentia.presentation import MAX_AUDIENCE_CHARS
from licentia.scope import IntendedUse
from licentia.status import StatusSnapshot, verify_snapshot
from licentia.transport.follow import (
    DEFAULT_KEY_REFRESH_MIN_INTERVAL,
    DEFAULT_KEY_REFRESH_SECONDS,
    GET_ISSUER_KEYS,
    GET_STATUS_SNAPSHOT,
    WATCH_REVOCATIONS,
    GrpcUpstream,
    StatusFollower,
)
from licentia.verify import Decision, VerificationEngine
from licentia.vocabulary import DataCategory, Medium, Purpose

from ..channel import SignedChannel
from .files import MAX_FILE_BYTES, FileCheck, FileSource, check_file

__all__ = [
    "DEFAULT_KEY_REFRESH_MIN_INTERVAL",
    "DEFAULT_KEY_REFRESH_SECONDS",
    "GET_ISSUER_KEYS",
    "GET_STATUS_SNAPSHOT",
    "WATCH_REVOCATIONS",
    "FileCheck",
    "Verifier",
    "VerifierStats",
    "fetch_issuer_keys",
    "fetch_status_snapshot",
]


def fetch_issuer_keys(rpc: SignedChannel, timeout: float | None = None) -> IssuerKeySet:
    """The exchange's published issuer keys (``GetIssuerKeys``, unsigned).

    Raises :class:`~licentia.clients.channel.ExchangeError` (or ``LicentiaError`` for a key
    set that does not parse).
    """
    return _upstream(rpc).issuer_keys(timeout)


def fetch_status_snapshot(
    rpc: SignedChannel, keys: IssuerKeySet, timeout: float | None = None
) -> StatusSnapshot:
    """The exchange's status list now (``GetStatusSnapshot``), its signature checked against
    ``keys``. Raises ``ExchangeError`` or ``LicentiaError`` (bad signature, unknown key, …)."""
    return verify_snapshot(_upstream(rpc).status_snapshot(timeout), keys)


def _upstream(rpc: SignedChannel) -> GrpcUpstream:
    """The exchange's public revocation calls over ``rpc``'s channel (errors mapped by the
    transport's one mapper, as every client call's)."""
    return GrpcUpstream(rpc.channel, timeout=rpc.timeout)


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
    #: Authenticated licence tokens in the check cache, and the most it holds.
    cached_tokens: int = 0
    cache_size: int = 0


class Verifier:
    """The licence verifier a platform embeds.

    ``channel`` reaches the exchange's ``LicenceService``; ``platform_id`` is the platform's
    registered id, the audience every presentation must name. ``staleness_seconds`` is the
    fail-closed bound; ``clock`` gives Unix seconds; ``nonces`` remembers presentation nonces
    (default: a bounded in-memory store; ``close_nonces``: :meth:`close` closes it too);
    ``backoff`` is ``(first, longest)`` delay in
    seconds between reconnection attempts. Call :meth:`start` (or use it as a context
    manager), then :meth:`check` (a token) or :meth:`check_file` (a file's Content
    Credentials) from any number of threads; :meth:`close` stops it.
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
        close_nonces: bool = False,
    ) -> None:
        if not 0 < len(platform_id) <= MAX_AUDIENCE_CHARS:
            raise ValueError("platform_id is 1 to 128 characters")
        self.platform_id = platform_id
        self._clock = clock
        self._nonces: NonceStore = nonces if nonces is not None else MemoryNonceStore()
        self._close_nonces = close_nonces
        self._log = log or logging.getLogger("licentia.verifier")
        self._follower = StatusFollower(
            _upstream(SignedChannel(channel, None, timeout=call_timeout)),
            staleness_seconds=staleness_seconds,
            clock=clock,
            backoff=backoff,
            log=self._log,
            key_refresh_seconds=key_refresh_seconds,
            key_refresh_min_interval=key_refresh_min_interval,
            name="verifier",
        )
        self.staleness_seconds = staleness_seconds
        self.backoff = backoff
        self.key_refresh_seconds = key_refresh_seconds
        self.key_refresh_min_interval = key_refresh_min_interval
        self._engine: VerificationEngine | None = None

    # -- life cycle ---------------------------------------------------------------------
    def start(self, timeout: float = 10) -> None:
        """Load the issuer keys and a signed snapshot (each call bounded by ``timeout``
        seconds), then follow the revocation stream in the background.

        Raises :class:`~licentia.clients.channel.ExchangeError` when the exchange cannot be
        reached, ``LicentiaError`` when what it sends does not verify, and ``RuntimeError``
        when started twice.
        """
        if self._engine is not None:
            raise RuntimeError("a verifier is started once")
        self._follower.start(timeout)
        self._engine = VerificationEngine(
            self._follower.keys,
            self._follower.status,
            audience=self.platform_id,
            nonces=self._nonces,
        )

    def close(self) -> None:
        """Stop following the exchange: cancel the stream and join the threads. Idempotent.
        Checks made afterwards fail closed once the view is stale. With ``close_nonces``
        the nonce store is closed too (a store the verifier was given to own)."""
        self._follower.close()
        closer = getattr(self._nonces, "close", None)
        if self._close_nonces and callable(closer):
            self._close_nonces = False
            closer()

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
        ``token`` on this platform at ``now`` (default: the clock), or at the latest time
        the exchange signed if that is later (a slow clock never keeps a licence alive).

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
            at = self._follower.now(int(self._clock()) if now is None else now)
            return engine.verify(token, use, at, presentation=presentation)
        except Exception as e:  # noqa: BLE001 - a check fails closed, it never raises
            self._log.warning("verifier.check_failed", extra={"error": type(e).__name__})
            return Decision(False, (Reason.INTERNAL,))

    def check_file(
        self,
        source: FileSource,
        *,
        purpose: Purpose,
        medium: Medium,
        territory: str,
        category: DataCategory | None = None,
        max_bytes: int = MAX_FILE_BYTES,
        now: int | None = None,
    ) -> FileCheck:
        """Check a file's Content Credentials and its licence for a use (§12): ``source``
        is the bytes, a path or a binary stream, of which at most ``max_bytes`` are read.

        The C2PA signature must chain to a content root of a trusted issuer key, be the
        licence's licensee's, and bind these bytes; the licence is then decided as
        :meth:`check` would (signatures, log promise, term, live status, scope), the
        signature standing in for the presentation. Never raises for bad input: DENY
        ``CONTENT_NOT_LICENSED`` ("no licence") for a file without a licence,
        ``STATUS_STALE`` when the view is stale or the verifier was never started.
        """
        engine = self._engine
        if engine is None:
            return FileCheck(Decision(False, (Reason.STATUS_STALE,)), "unreadable")
        try:
            at = self._follower.now(int(self._clock()) if now is None else now)
            return check_file(
                engine,
                self._follower.keys.roots,
                source,
                at,
                purpose=purpose,
                medium=medium,
                territory=territory,
                category=category,
                max_bytes=max_bytes,
            )
        except Exception as e:  # noqa: BLE001 - a check fails closed, it never raises
            self._log.warning("verifier.check_file_failed", extra={"error": type(e).__name__})
            return FileCheck(Decision(False, (Reason.INTERNAL,)), "unreadable")

    @property
    def content_roots(self) -> tuple[bytes, ...]:
        """The content roots (DER) files are checked against: those the exchange publishes
        that a trusted issuer key self-signs (empty before start)."""
        return self._follower.keys.roots if self._follower.started else ()

    # -- what an operator sees ----------------------------------------------------------
    @property
    def sequence(self) -> int:
        """The last status-list sequence number applied (0 before start)."""
        return self._follower.sequence

    @property
    def fresh_at(self) -> int:
        """Exchange time as of which the view is complete (0 before start)."""
        return self._follower.fresh_at

    @property
    def connected(self) -> bool:
        """True while the revocation stream is open and delivering."""
        return self._follower.connected

    @property
    def reconnects(self) -> int:
        """Times the stream was opened again after the first."""
        return self._follower.reconnects

    @property
    def stats(self) -> VerifierStats:
        """A consistent copy of the figures above and a few more."""
        f = self._follower
        sequence, fresh_at, fresh = f.figures()
        return VerifierStats(
            sequence=sequence,
            fresh_at=fresh_at,
            fresh=fresh,
            connected=f.connected,
            reconnects=f.reconnects,
            resyncs=f.resyncs,
            key_refreshes=f.key_refreshes,
            issuer_keys=f.issuer_key_count,
            last_error=f.last_error,
            cached_tokens=self._engine.cached_tokens if self._engine is not None else 0,
            cache_size=self._engine.cache_size if self._engine is not None else 0,
        )
