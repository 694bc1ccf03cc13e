"""Clients that hold what others need: idle or trickling HTTP connections, slow bodies from
one address, a client gone mid-body, uploads that never send their header, and one address
opening every stream. Each is cut off or capped, and everyone else is still served."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped]
import httpx
import pytest

from licentia.errors import Reason
from licentia.methods import path
from licentia.services import gateway as gateway_module
from licentia.services.deps import Settings
from licentia.services.gateway import start_gateway
from licentia.transport.errors import exchange_error
from licentia.transport.http import gateway_path
from licentia.v1 import licences_pb2, registry_pb2, transparency_pb2

from .exchange_harness import Exchange, start_exchange, wait_for

LOG = logging.getLogger("licentia.test")
#: Another loopback address: a second client, as the limits per address see it.
OTHER = "127.0.0.2"
LIST_PLATFORMS = path(registry_pb2, "ListPlatforms")
UPLOAD = path(registry_pb2, "UploadAsset")
GET_ENTRIES = path(transparency_pb2, "GetEntries")
WATCH = path(licences_pb2, "WatchRevocations")


def _closed_by_server(sock: socket.socket, within: float) -> bool:
    """Whether the server closes ``sock`` within ``within`` seconds."""
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def _client(local: str = "127.0.0.1") -> httpx.Client:
    return httpx.Client(timeout=10, transport=httpx.HTTPTransport(local_address=local))


def test_idle_and_trickling_connections_are_closed_and_capped_per_address() -> None:
    """uvicorn has no limit on the time to a request's head: 8 silent sockets (the
    connection limit) made every request 503 for as long as they stayed. Now a connection
    without a whole head within ``head_seconds`` is closed, and one address holds at most
    half of the connections (one more is closed at once) while another is served."""
    gw = start_gateway(
        "127.0.0.1:0", [], LOG, max_connections=8, max_connections_per_client=16, head_seconds=1
    )
    socks = [socket.create_connection(("127.0.0.1", gw.port)) for _ in range(7)]
    trickle = socket.create_connection(("127.0.0.1", gw.port))
    trickle.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never the blank line
    socks.append(trickle)
    try:
        time.sleep(0.3)
        with _client() as http:
            assert http.get(f"http://{gw.address}/healthz").status_code == 503  # all taken
            started = time.monotonic()
            while http.get(f"http://{gw.address}/healthz").status_code != 200:
                assert time.monotonic() - started < 3, "the silent connections were kept"
                time.sleep(0.2)
        assert all(_closed_by_server(s, 1.0) for s in socks)
    finally:
        for s in socks:
            s.close()
        gw.stop()

    gw = start_gateway("127.0.0.1:0", [], LOG, max_connections=8, head_seconds=1)  # 4 each
    socks = [socket.create_connection(("127.0.0.1", gw.port)) for _ in range(6)]
    try:
        time.sleep(0.3)
        closed = [s for s in socks if _closed_by_server(s, 0.05)]
        assert len(closed) == 2  # the 5th and 6th from this address
        with _client(OTHER) as http:  # another address is served at once
            assert http.get(f"http://{gw.address}/healthz").json() == {"status": "SERVING"}
        # A body nobody reads, trickled after its answer, does not keep the connection.
        unread = socket.create_connection(("127.0.0.1", gw.port), source_address=(OTHER, 0))
        socks.append(unread)
        unread.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
        unread.settimeout(2)
        assert unread.recv(4096).startswith(b"HTTP/1.1 200 ")
        started = time.monotonic()
        try:
            while time.monotonic() - started < 4:
                unread.sendall(b"x")
                time.sleep(0.2)
        except OSError:
            pass
        assert time.monotonic() - started < 3, "a trickled, unread body kept its connection"
    finally:
        for s in socks:
            s.close()
        gw.stop()


def test_one_address_cannot_take_every_body_turn_and_a_client_gone_mid_body_is_quiet(
    ex: Exchange, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Slow bodies from one address hold at most BODY_READS_PER_CLIENT turns: one more
    from it is BUSY at once, another address is served. Those clients then hang up
    mid-body: an info line each, no traceback, no ERROR, and their turns are free again."""
    caplog.set_level(logging.INFO)
    monkeypatch.setattr(gateway_module, "BODY_READS_PER_CLIENT", 2)
    gw = start_gateway("127.0.0.1:0", ex.app.handlers, LOG)
    target = gateway_path(LIST_PLATFORMS)
    call = f"http://{gw.address}{target}"
    stalled = []
    try:
        for _ in range(2):
            sock = socket.create_connection(("127.0.0.1", gw.port))
            sock.sendall(
                f"POST {target} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{{".encode()
            )
            stalled.append(sock)
        time.sleep(0.3)
        with _client() as http:
            started = time.monotonic()
            busy = http.post(call, content=b"{}")
            assert busy.status_code == 429, busy.text
            assert busy.json()["error"]["reason"] == "BUSY"
            assert "this address already sends 2 requests" in busy.json()["error"]["message"]
            assert time.monotonic() - started < 1  # refused at once, not after a wait
        with _client(OTHER) as http:
            assert http.post(call, content=b"{}").status_code == 200
        for sock in stalled:
            sock.close()  # gone mid-body
        wait_for(  # each client's leaving is noticed
            lambda: sum(r.getMessage() == "http.client_gone" for r in caplog.records) >= 2, 3
        )
        with _client() as http:
            assert http.post(call, content=b"{}").status_code == 200  # turns given back
    finally:
        for sock in stalled:
            sock.close()
        gw.stop()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert "Traceback" not in caplog.text


def _entries(ex: Exchange) -> str:
    """GetEntries (a public response stream) read to its end: "OK", or its refusal."""
    call = ex.channel().unary_stream(
        GET_ENTRIES, request_serializer=None, response_deserializer=None
    )
    try:
        list(call(transparency_pb2.GetEntriesRequest().SerializeToString(), timeout=5))
        return "OK"
    except grpc.RpcError as e:
        return exchange_error(e).reason.name


def test_uploads_that_never_send_their_header_are_cut_off(tmp_path: Path) -> None:
    """An UploadAsset stream holds a stream slot from its start: two that never send their
    header held both slots for good (every stream BUSY). Now each is refused (BUSY) once
    ``upload_header_seconds`` have passed, and its slot serves the next stream."""
    settings = Settings(heartbeat_seconds=0.5, upload_header_seconds=1, max_streams_per_client=2)
    ex = start_exchange(tmp_path / "data", max_streams=2, settings=settings)
    stop = threading.Event()

    def silent() -> Iterator[bytes]:
        stop.wait(30)  # no header, ever
        yield from ()

    try:
        started = time.monotonic()
        uploads = [
            ex.channel()
            .stream_unary(UPLOAD, request_serializer=None, response_deserializer=None)
            .future(silent())
            for _ in range(2)
        ]
        time.sleep(0.3)
        assert _entries(ex) == "BUSY"  # both slots held by the silent uploads
        for future in uploads:
            with pytest.raises(grpc.RpcError) as cut:
                future.result(timeout=5)
            error = exchange_error(cut.value)
            assert error.reason is Reason.BUSY
            assert "first message did not arrive within 1 s" in str(error)
        assert time.monotonic() - started < 3
        assert _entries(ex) == "OK"
    finally:
        stop.set()
        ex.stop()


def test_one_address_holds_at_most_half_the_stream_slots(tmp_path: Path) -> None:
    """By default one address may hold half of the stream slots, over both transports: two
    gRPC subscriptions from here take this address's share, a third is BUSY, while a
    subscription over HTTP from another address is admitted."""
    ex = start_exchange(tmp_path / "data", max_streams=4)
    gw = start_gateway("127.0.0.1:0", ex.app.handlers, LOG)
    body = licences_pb2.WatchRevocationsRequest().SerializeToString()
    calls: list[Any] = []
    try:
        for _ in range(2):
            stream = ex.channel().unary_stream(
                WATCH, request_serializer=None, response_deserializer=None
            )(body, timeout=10)
            next(stream)  # open: it holds its slot
            calls.append(stream)
        third = ex.channel().unary_stream(
            WATCH, request_serializer=None, response_deserializer=None
        )(body, timeout=10)
        with pytest.raises(grpc.RpcError) as busy:
            next(third)
        assert exchange_error(busy.value).reason is Reason.BUSY
        assert "this address already has 2 open streams" in str(exchange_error(busy.value))
        url = f"http://{gw.address}{gateway_path(WATCH)}"
        with _client(OTHER) as http, http.stream("POST", url, content=b"{}") as events:
            assert events.status_code == 200
            assert next(events.iter_lines()) == ": admitted"
    finally:
        for stream in calls:
            stream.cancel()
        gw.stop()
        ex.stop()
