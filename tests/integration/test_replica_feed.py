"""A verify-only replica relays the exchange's revocation feed (``WatchRevocations``,
``GetStatusSnapshot``, ``GetIssuerKeys``) to its own subscribers: the exchange's signed items,
as they came; resumable within its window; failing closed when cut off from its upstream."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped]
import pytest

from licentia.clients.verifier import Verifier
from licentia.content_certs import trusted_roots
from licentia.errors import Reason
from licentia.keys import IssuerKeySet
from licentia.methods import path
from licentia.presentation import present
from licentia.services.aio_runtime import start_async
from licentia.services.app import build
from licentia.services.deps import Settings
from licentia.services.replica import build_replica
from licentia.services.runtime import ServerSettings, start
from licentia.status import verify_snapshot
from licentia.token import parse_token
from licentia.transport.errors import exchange_error
from licentia.v1 import licences_pb2, records_pb2
from licentia.verify import Decision

from .exchange_harness import (
    REPLICA_STALENESS,
    Exchange,
    ExchangeError,
    Party,
    Replica,
    issue_licence,
    photo_use,
    registered,
    revoke_licence,
    start_verifier,
    wait_for,
)

LOG = logging.getLogger("licentia.test")
AUDIENCE = "photoshare"
WATCH = path(licences_pb2, "WatchRevocations")
SNAPSHOT = path(licences_pb2, "GetStatusSnapshot")
KEYS = path(licences_pb2, "GetIssuerKeys")
Response = licences_pb2.WatchRevocationsResponse


def serve_exchange(data_dir: Path) -> Exchange:
    """An exchange beating every 0.5 s."""
    app = build(data_dir, settings=Settings(heartbeat_seconds=0.5), log=LOG)
    try:
        server = start(ServerSettings(max_workers=64), app.handlers, app.service_names, LOG)
    except BaseException:
        app.close()
        raise
    return Exchange(data_dir, app, server)


def serve_replica(upstream: str, address: str = "127.0.0.1:0", **kw: Any) -> Replica:
    """A verify-only replica of ``upstream`` served on ``address`` (a restart needs its port),
    on an asyncio server as ``licentia-server --upstream`` runs it (``sync=True``: on the
    sync server, each relayed stream a thread)."""
    kw.setdefault("staleness_seconds", REPLICA_STALENESS)
    sync = kw.pop("sync", False)
    app = build_replica(upstream, log=LOG, backoff=(0.05, 0.3), timeout=3.0, **kw)
    try:
        settings = ServerSettings(address=address, max_workers=48)
        if sync:
            server = start(settings, app.handlers, app.service_names, LOG)
        else:
            server = start_async(settings, app.aio_handlers, app.service_names, LOG)
    except BaseException:
        app.close()
        raise
    return Replica(app, server, upstream)


def raw_feed(address: str, after: int) -> tuple[grpc.Channel, Iterator[bytes]]:
    """``WatchRevocations`` from ``after`` at ``address``: each response's bytes as they came."""
    channel = grpc.insecure_channel(address)
    call = channel.unary_stream(WATCH, request_serializer=None, response_deserializer=None)
    body = licences_pb2.WatchRevocationsRequest(after_sequence=after).SerializeToString()
    return channel, call(body, timeout=10)


def raw_unary(address: str, method: str, request: Any) -> bytes:
    """One public call's response bytes as they came."""
    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        return bytes(call(request.SerializeToString(), timeout=5))


def first(feed: Iterator[bytes], n: int, kind: str = "event") -> list[bytes]:
    """The bytes of the first ``n`` messages of ``kind`` (``event``, ``heartbeat``) of ``feed``."""
    out = []
    for raw in feed:
        msg = Response.FromString(raw)
        if msg.WhichOneof("message") == kind:
            out.append(bytes(getattr(msg, kind).SerializeToString()))
            if len(out) == n:
                break
    return out


def check(v: Verifier, licence: records_pb2.LicenceRecord, adv: Party) -> Decision:
    """A fresh presentation by the licensee of the photo online in FR, checked by ``v``."""
    use = photo_use()
    return v.check(
        licence.token, present(adv.key, licence.licence_id, AUDIENCE, use, int(time.time())), use
    )


@pytest.fixture
def exchange(tmp_path: Path) -> Iterator[Exchange]:
    ex = serve_exchange(tmp_path / "data")
    try:
        yield ex
    finally:
        ex.stop()


@pytest.mark.parametrize("sync", [False, True], ids=["asyncio-server", "sync-server"])
def test_an_inline_verifier_following_a_replica_sees_a_revocation_made_at_the_exchange(
    exchange: Exchange, sync: bool
) -> None:
    ex = exchange
    holder, adv, _ = registered(ex, AUDIENCE)
    revoked, kept = issue_licence(holder, adv), issue_licence(holder, adv)
    replica = serve_replica(ex.address, sync=sync)
    v, channel = start_verifier(replica.server.address, AUDIENCE, staleness_seconds=3)
    try:
        assert check(v, revoked, adv).allowed
        revoke_licence(holder, revoked.licence_id)
        took = wait_for(lambda: check(v, revoked, adv).reasons == (Reason.REVOKED,), 3)
        assert took < 2
        assert check(v, kept, adv).allowed
        assert (v.stats.sequence, v.stats.resyncs, v.stats.last_error) == (1, 0, None)
        # What the replica sends is the exchange's, byte for byte: the event, the keys; and
        # its snapshot is one the exchange signed.
        feeds = [raw_feed(a, 0) for a in (ex.address, replica.server.address)]
        try:
            at_exchange, at_replica = (first(feed, 1) for _, feed in feeds)
        finally:
            for ch, _ in feeds:
                ch.close()
        assert at_replica == at_exchange
        request = licences_pb2.GetIssuerKeysRequest()
        keys = raw_unary(replica.server.address, KEYS, request)
        assert keys == raw_unary(ex.address, KEYS, request)
        relayed = licences_pb2.GetIssuerKeysResponse.FromString(keys)
        trusted = IssuerKeySet.from_proto(relayed.keys)
        # ... the content roots with them, each one a trusted key self-signs.
        assert trusted_roots(relayed.content_roots, trusted) == list(relayed.content_roots)
        assert len(relayed.content_roots) == len(trusted) == 1
        snap = licences_pb2.GetStatusSnapshotResponse.FromString(
            raw_unary(replica.server.address, SNAPSHOT, licences_pb2.GetStatusSnapshotRequest())
        )
        # (one held or fetched in the last 2 s: the events after it follow on the stream)
        assert verify_snapshot(snap.snapshot.SerializeToString(), trusted).sequence <= 1
    finally:
        v.close()
        channel.close()
        replica.stop()


def test_a_subscriber_resumes_from_the_replicas_window_or_from_a_snapshot(
    exchange: Exchange,
) -> None:
    ex = exchange
    holder, adv, _ = registered(ex, AUDIENCE)
    licences = [issue_licence(holder, adv) for _ in range(6)]
    replica = serve_replica(ex.address, relay_window=2)
    address = replica.server.address
    v, channel = start_verifier(address, AUDIENCE, staleness_seconds=3)
    opened: list[grpc.Channel] = []
    try:
        for lic in licences[:4]:
            revoke_licence(holder, lic.licence_id)
        wait_for(lambda: replica.app.follower.sequence == 4, 3)
        # Within the window (events 3 and 4): exactly the exchange's events after the sequence.
        ch_ex, at_exchange = raw_feed(ex.address, 2)
        ch_re, at_replica = raw_feed(address, 2)
        opened += [ch_ex, ch_re]
        assert first(at_replica, 2) == first(at_exchange, 2)
        assert len(first(at_replica, 1, "heartbeat")) == 1  # then the exchange's heartbeats
        # Older than the window: the exchange's signed snapshot first, then on.
        ch_old, old = raw_feed(address, 1)
        opened.append(ch_old)
        msg = Response.FromString(next(old))
        assert msg.WhichOneof("message") == "snapshot"
        snap = verify_snapshot(msg.snapshot.SerializeToString(), v._follower.keys.current)
        assert snap.sequence == 4
        # The verifier, disconnected while its replica restarts (a revocation is made
        # meanwhile), resumes there and sees it; and the next one, live.
        port = replica.server.port
        replica.stop()
        revoke_licence(holder, licences[4].licence_id)
        replica = serve_replica(ex.address, f"127.0.0.1:{port}")
        wait_for(lambda: check(v, licences[4], adv).reasons == (Reason.REVOKED,), 5)
        revoke_licence(holder, licences[5].licence_id)
        wait_for(lambda: check(v, licences[5], adv).reasons == (Reason.REVOKED,), 3)
        assert all(check(v, lic, adv).reasons == (Reason.REVOKED,) for lic in licences)
        assert v.stats.reconnects >= 1
        assert v.stats.sequence == 6
    finally:
        for ch in opened:
            ch.close()
        v.close()
        channel.close()
        replica.stop()


def test_a_replica_cut_off_from_its_upstream_ends_its_streams_and_refuses_snapshots(
    exchange: Exchange,
) -> None:
    ex = exchange
    holder, adv, _ = registered(ex, AUDIENCE)
    licence = issue_licence(holder, adv)
    replica = serve_replica(ex.address)
    address = replica.server.address
    v, channel = start_verifier(address, AUDIENCE, staleness_seconds=3)
    feed_channel, feed = raw_feed(address, 0)
    try:
        assert check(v, licence, adv).allowed
        assert Response.FromString(next(feed)).WhichOneof("message") == "heartbeat"
        ex.server.stop(0)  # the upstream is gone
        t0 = time.monotonic()
        with pytest.raises(grpc.RpcError) as ended:
            for _ in feed:
                pass
        assert time.monotonic() - t0 < REPLICA_STALENESS + 3
        assert exchange_error(ended.value).reason == Reason.STATUS_STALE
        anyone = replica.party(None)
        for call in (
            lambda: anyone.call(
                licences_pb2,
                "GetStatusSnapshot",
                licences_pb2.GetStatusSnapshotRequest(),
                licences_pb2.GetStatusSnapshotResponse,
            ),
            lambda: next(
                iter(
                    anyone.rpc.server_stream(
                        WATCH, licences_pb2.WatchRevocationsRequest(), Response, timeout=5
                    )
                )
            ),
        ):
            with pytest.raises(ExchangeError) as refused:
                call()
            assert refused.value.reason == Reason.STATUS_STALE
        wait_for(lambda: check(v, licence, adv).reasons == (Reason.STATUS_STALE,), 5)
    finally:
        feed_channel.close()
        v.close()
        channel.close()
        replica.stop()


def test_a_replica_that_alters_what_it_relays_is_refused_by_its_subscribers(
    exchange: Exchange,
) -> None:
    """A replica holds no issuer key: an event it alters (here, to revoke another licence)
    no longer verifies at the subscriber, which applies nothing and fails closed."""
    ex = exchange
    holder, adv, _ = registered(ex, AUDIENCE)
    revoked, other = issue_licence(holder, adv), issue_licence(holder, adv)
    replica = serve_replica(ex.address)
    relay = replica.app.relay
    assert relay is not None
    genuine = relay.applied

    def tampered(msg: Response) -> None:
        if msg.HasField("event"):
            msg = Response.FromString(msg.SerializeToString())
            msg.event.status_index = parse_token(other.token).status_index
        genuine(msg)

    relay.applied = tampered  # type: ignore[method-assign]
    v, channel = start_verifier(replica.server.address, AUDIENCE, staleness_seconds=2)
    try:
        revoke_licence(holder, revoked.licence_id)
        wait_for(lambda: v.stats.last_error is not None, 3)
        assert str(v.stats.last_error).startswith("BAD_SIGNATURE")
        assert v.stats.sequence == 0  # nothing applied
        assert check(v, other, adv).reasons != (Reason.REVOKED,)
        # Withheld, the revocation is not allowed for long: the verifier fails closed.
        wait_for(lambda: check(v, revoked, adv).reasons == (Reason.STATUS_STALE,), 5)
    finally:
        v.close()
        channel.close()
        replica.stop()
