"""A verify-only replica with no database: it follows an upstream exchange over the wire.

``licentia-server --services verification --upstream HOST:PORT`` serves ``Verify`` and
``VerifyStream`` exactly as the exchange does, from what every other verifier holds: the
exchange's issuer keys and status list, loaded from a signed snapshot and followed live
(:class:`licentia.transport.follow.StatusFollower`, the platform verifier's own machinery: resume,
backoff, fail closed with STATUS_STALE past the staleness bound), and the registered
platforms' keys (:class:`PlatformDirectory`, from the public ``ListPlatforms``). It opens no
database and writes no file. ``ReportUse`` counts uses in the exchange's store, so the replica
refuses it with NOT_SERVED, naming its upstream.

It also relays the revocation feed it follows (:mod:`.relay`): ``WatchRevocations``,
``GetStatusSnapshot`` and ``GetIssuerKeys`` to its own subscribers — platforms' inline
verifiers — passing the exchange's signed events, heartbeats and snapshots on as they came,
and failing closed (STATUS_STALE) past its staleness bound.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc  # type: ignore[import-untyped]

from licentia.errors import LicentiaError, Reason
from licentia.keys import IssuerKeySet
from licentia.methods import path
from licentia.nonces import MemoryNonceStore
from licentia.status import StatusSnapshot, verify_snapshot
from licentia.token import Licence
from licentia.transport.channel import SignedChannel
from licentia.transport.follow import GrpcUpstream, StatusFollower
from licentia.v1 import licences_pb2, registry_pb2, verification_pb2
from licentia.verify import VerificationEngine

from .aio_runtime import feed_handler
from .deps import Settings
from .model import Party, Role
from .relay import RELAY_WINDOW, FeedRelay, RelayLicenceService
from .rpc import Authenticator, Call, Clock, StreamLimit, SystemClock, service
from .runtime import client_channel
from .verification import VerificationService

LIST_PLATFORMS = path(registry_pb2, "ListPlatforms")
#: The page a replica asks for (the exchange's largest).
PLATFORM_PAGE = 1000
#: The most platforms a replica holds; past it the rest are not recognised (and logged).
MAX_PLATFORMS = 100_000
#: Default seconds between scheduled reloads of the platforms.
DEFAULT_PLATFORM_REFRESH_SECONDS = 60.0
#: Default: at most one reload prompted by unknown keys in this many seconds.
DEFAULT_PLATFORM_REFRESH_MIN_INTERVAL = 10.0
#: Default fail-closed bound (seconds without news from the upstream).
DEFAULT_STALENESS_SECONDS = 30

logger = logging.getLogger("licentia.replica")


class PlatformDirectory:
    """The upstream exchange's registered platforms, by key, held in memory.

    :meth:`load` reads every page of ``ListPlatforms`` (at most ``max_platforms``) and swaps
    the directory whole. :meth:`platform` answers a caller's key; for a key it does not know
    it reloads first, at most once every ``min_interval`` seconds (a flood of unknown keys
    costs the upstream one reload per interval), so that a platform registered after the
    replica started is recognised on its first call.
    """

    def __init__(
        self,
        channel: grpc.Channel,
        *,
        timeout: float = 5.0,
        min_interval: float = DEFAULT_PLATFORM_REFRESH_MIN_INTERVAL,
        max_platforms: int = MAX_PLATFORMS,
        log: logging.Logger | None = None,
    ) -> None:
        self.channel = channel
        self.timeout = timeout
        self.min_interval = min_interval
        self.max_platforms = max_platforms
        self._log = log or logger
        self._by_key: dict[bytes, Party] = {}
        self._lock = threading.Lock()
        self._loaded_at = -float("inf")
        #: Times the directory was read from the upstream.
        self.loads = 0

    def __len__(self) -> int:
        return len(self._by_key)

    def load(self) -> None:
        """Read every platform from the upstream and replace the directory; raises
        :class:`licentia.transport.errors.ExchangeError` with the upstream's reason (the
        directory is then left as it was)."""
        rpc = SignedChannel(self.channel, None, timeout=self.timeout)  # a public call
        fresh: dict[bytes, Party] = {}
        token = ""
        while True:
            req = registry_pb2.ListPlatformsRequest(page_size=PLATFORM_PAGE, page_token=token)
            page = rpc.unary(LIST_PLATFORMS, req, registry_pb2.ListPlatformsResponse)
            for p in page.platforms:
                if len(fresh) >= self.max_platforms:
                    self._log.warning("replica.platforms_capped", extra={"held": len(fresh)})
                    break
                party = Party(bytes(p.key), Role.PLATFORM, p.platform_id, "", "", p.registered_at)
                # Each current device key of the platform's account calls in its name (an
                # upstream that predates key sets lists none: the account key alone).
                for key in p.device_keys or [p.key]:
                    fresh[bytes(key)] = party
            token = page.next_page_token
            if not token or len(fresh) >= self.max_platforms:
                break
        self._by_key = fresh
        self.loads += 1

    def _reload(self, *, rate_limited: bool) -> None:
        """Reload unless another thread just did (or, rate-limited, one did too recently)."""
        asked = time.monotonic()
        with self._lock:
            if self._loaded_at >= asked:  # another thread reloaded while this one waited
                return
            if rate_limited and asked - self._loaded_at < self.min_interval:
                return
            try:
                self.load()
            finally:
                self._loaded_at = time.monotonic()

    def refresh(self) -> None:
        """Reload now (the scheduled refresh); failures are logged, the directory kept."""
        try:
            self._reload(rate_limited=False)
        except LicentiaError as e:
            self._log.warning("replica.platforms_refresh_failed", extra={"reason": e.reason.name})

    def platform(self, call: Call) -> Party:
        """The calling platform, as the exchange finds it: BAD_REQUEST_SIGNATURE for an
        unsigned call, UNKNOWN_KEY for a key that is no registered platform."""
        if call.caller is None:
            raise LicentiaError(Reason.BAD_REQUEST_SIGNATURE, "the call is not signed")
        key = call.caller.raw
        party = self._by_key.get(key)
        if party is None:
            try:
                self._reload(rate_limited=True)
            except LicentiaError as e:
                self._log.warning("replica.platforms_load_failed", extra={"reason": e.reason.name})
            party = self._by_key.get(key)
        if party is None:
            raise LicentiaError(Reason.UNKNOWN_KEY, "the signing key is not a registered platform")
        return party


class RelayedUpstream(GrpcUpstream):
    """The upstream exchange, as the replica's follower reads it: each issuer key set it
    fetches is also handed to ``on_keys`` as the exchange answered (``GetIssuerKeys``'
    response), for the replica to relay."""

    def __init__(
        self,
        channel: grpc.Channel,
        on_keys: Callable[[licences_pb2.GetIssuerKeysResponse], None],
        *,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(channel, timeout=timeout)
        self.on_keys = on_keys

    def issuer_keys(self, timeout: float | None = None) -> IssuerKeySet:
        """The exchange's published issuer keys (its answer kept for the relay)."""
        resp = self.issuer_keys_response(timeout)
        keys = IssuerKeySet.from_proto(resp.keys)  # refused before it is relayed
        self.on_keys(resp)
        return keys


class ReplicaVerificationService(VerificationService):
    """``VerificationService`` at a verify-only replica: the exchange's own checks and
    reasons, over the followed keys, status list and platforms; ``ReportUse`` and
    ``CheckAssetDigests`` are NOT_SERVED.

    Three seams differ from the exchange: the platform comes from the
    :class:`PlatformDirectory`, a counted licence's uses are not known here (the exchange
    counts them, and refuses USES_EXHAUSTED, at ``ReportUse``), and the time is the
    replica's clock. Presentation nonces are remembered in memory.
    """

    def __init__(  # no exchange Deps (no super().__init__): the seams below replace them
        self,
        follower: StatusFollower,
        platforms: PlatformDirectory,
        clock: Clock,
        settings: Settings,
        upstream: str,
    ) -> None:
        self.engine = VerificationEngine(
            follower.keys,
            follower.status,
            nonces=MemoryNonceStore(),
            max_term_seconds=settings.max_term_seconds,
        )
        self.platforms = platforms
        self.clock = clock
        self.upstream = upstream
        self.follower = follower

    def _platform(self, call: Call) -> Party:
        return self.platforms.platform(call)

    def _uses(self, licence: Licence) -> int:
        return 0

    def _now(self) -> int:
        return self.clock.now()

    def _answer(
        self, req: verification_pb2.VerifyRequest, platform: Party, now: int
    ) -> verification_pb2.VerifyResponse:
        # Never decide at a time earlier than the latest the exchange signed: a replica
        # whose clock runs slow would otherwise allow licences that have expired.
        return super()._answer(req, platform, self.follower.now(now))

    def report_use(
        self, req: verification_pb2.ReportUseRequest, call: Call
    ) -> verification_pb2.ReportUseResponse:
        """NOT_SERVED: uses are counted in the exchange's store."""
        raise LicentiaError(
            Reason.NOT_SERVED,
            "ReportUse is not served by a verify-only replica: report uses to the exchange"
            f" at {self.upstream}",
        )

    def check_asset_digests(
        self, req: verification_pb2.CheckAssetDigestsRequest, call: Call
    ) -> verification_pb2.CheckAssetDigestsResponse:
        """NOT_SERVED: declared assets are in the exchange's store."""
        raise LicentiaError(
            Reason.NOT_SERVED,
            "CheckAssetDigests is not served by a verify-only replica: ask the exchange"
            f" at {self.upstream}",
        )


@dataclass
class ReplicaApp:
    """A built verify-only replica: hand :attr:`handlers` to the gRPC server, :meth:`close`
    at the end."""

    follower: StatusFollower
    platforms: PlatformDirectory
    channel: grpc.Channel
    handlers: list[grpc.GenericRpcHandler]
    service_names: list[str]
    #: The revocation feed relayed to the replica's own subscribers.
    relay: FeedRelay | None = None
    #: :attr:`handlers` for an asyncio server (:func:`.aio_runtime.start_async`): the relayed
    #: streams are coroutines there rather than threads.
    aio_handlers: list[grpc.GenericRpcHandler] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def close(self) -> None:
        """End the relayed streams, stop following the upstream and close its channel."""
        self._stop.set()
        if self.relay is not None:
            self.relay.close()
        self.follower.close()
        for t in self._threads:
            t.join(timeout=5)
        self.channel.close()


def build_replica(
    upstream: str,
    *,
    tls_ca: bytes | None = None,
    settings: Settings | None = None,
    clock: Clock | None = None,
    log: logging.Logger | None = None,
    max_streams: int = 200,
    staleness_seconds: int = DEFAULT_STALENESS_SECONDS,
    backoff: tuple[float, float] = (0.2, 5.0),
    platform_refresh_seconds: float = DEFAULT_PLATFORM_REFRESH_SECONDS,
    platform_refresh_min_interval: float = DEFAULT_PLATFORM_REFRESH_MIN_INTERVAL,
    timeout: float = 10.0,
    relay_window: int = RELAY_WINDOW,
) -> ReplicaApp:
    """Connect to the exchange at ``upstream`` (``HOST:PORT``; TLS checked against
    ``tls_ca``, PEM, when given), load its issuer keys, a signed status snapshot and its
    platforms (each call bounded by ``timeout``), and build the verification service and
    the relayed revocation feed (the last ``relay_window`` events kept for resuming).

    Raises :class:`licentia.transport.errors.ExchangeError` when the upstream cannot be
    reached or refuses (with its reason),
    ``LicentiaError`` when what it sends does not verify.
    """
    settings = settings or Settings()
    clock = clock or SystemClock()
    log = log or logger
    channel = client_channel(upstream, tls_ca)

    def fetch() -> tuple[bytes, StatusSnapshot]:  # for subscribers: verified as it is relayed
        signed = relayed.status_snapshot()
        return signed, verify_snapshot(signed, follower.keys.current)

    relay = FeedRelay(fetch, lambda: follower.figures()[2], window=relay_window)
    relayed = RelayedUpstream(channel, relay.keep_keys, timeout=timeout)
    follower = StatusFollower(
        relayed,
        staleness_seconds=staleness_seconds,
        clock=clock.now,
        backoff=backoff,
        log=log,
        name="replica",
        observer=relay,
    )
    platforms = PlatformDirectory(
        channel, timeout=timeout, min_interval=platform_refresh_min_interval, log=log
    )
    try:
        follower.start(timeout)
        platforms.load()
    except BaseException:
        follower.close()
        channel.close()
        raise
    servicer = ReplicaVerificationService(follower, platforms, clock, settings, upstream)
    descriptor = verification_pb2.DESCRIPTOR.services_by_name["VerificationService"]
    streams = StreamLimit(max_streams)
    handler = service(
        descriptor,
        servicer.methods(),
        # It serves Verify alone, whose replay gets one more answer and changes nothing (as
        # at the exchange, where Verify's nonces stay in memory): no window starts at its
        # start, so a client whose clock lags is not refused after the replica restarts.
        Authenticator(),
        clock,
        log,
        streams,
    )
    feed = licences_pb2.DESCRIPTOR.services_by_name["LicenceService"]
    relayed_feed = service(  # public calls only: no signature to check
        feed, RelayLicenceService(relay).methods(), Authenticator(), clock, log, streams
    )
    app = ReplicaApp(
        follower,
        platforms,
        channel,
        [handler, relayed_feed],
        [descriptor.full_name, feed.full_name],
        relay,
        [handler, feed_handler(relayed_feed, relay, streams, log)],
    )

    def refresh_platforms() -> None:
        while not app._stop.wait(platform_refresh_seconds):
            platforms.refresh()

    t = threading.Thread(target=refresh_platforms, name="licentia-replica-platforms", daemon=True)
    t.start()
    app._threads.append(t)
    log.info(
        "replica.started",
        extra={"upstream": upstream, "sequence": follower.sequence, "platforms": len(platforms)},
    )
    return app
