"""The HTTP/JSON gateway: a real exchange, a real HTTP client (httpx), and schemathesis
against the gateway's own /openapi.json."""

from __future__ import annotations

import base64
import json
import logging
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core import NOT_SET
from schemathesis.specs.openapi.checks import response_schema_conformance

from licentia.errors import LicentiaError, Reason
from licentia.keys import PrivateKey
from licentia.methods import path
from licentia.request import sign_http_request, sign_request
from licentia.services import gateway as gateway_module
from licentia.services import rpc
from licentia.services.app import build
from licentia.services.gateway import RunningGateway, start_gateway
from licentia.transport.errors import ExchangeError
from licentia.transport.http import GatewayClient, gateway_path, signed_headers
from licentia.v1 import exchange_pb2, licences_pb2, registry_pb2, transparency_pb2, verification_pb2

from .exchange_harness import (
    Exchange,
    Party,
    SignedChannel,
    issue_licence,
    raw_unary,
    register_holder,
    registered,
    self_signed_certificate,
)

REGISTER_ADVERTISER = path(registry_pb2, "RegisterAdvertiser")
GET_PROFILE = path(registry_pb2, "GetProfile")
WATCH_EVENTS = path(licences_pb2, "WatchLicenceEvents")
REVOKE = path(licences_pb2, "RevokeLicence")


@pytest.fixture
def gw(ex: Exchange) -> Iterator[RunningGateway]:
    """The exchange's gateway on a free loopback port."""
    gateway = start_gateway("127.0.0.1:0", ex.app.handlers, logging.getLogger("licentia.test"))
    try:
        yield gateway
    finally:
        gateway.stop()


def url(gw: RunningGateway, method: str = "") -> str:
    return f"http://{gw.address}{gateway_path(method) if method else ''}"


def refusal(response: httpx.Response) -> tuple[int, str]:
    """A refusal's HTTP status and reason."""
    return response.status_code, response.json()["error"]["reason"]


def test_public_and_signed_calls_reach_the_same_servicers(ex: Exchange, gw: RunningGateway) -> None:
    with httpx.Client(timeout=10) as http:
        assert http.get(url(gw) + "/healthz").json() == {"status": "SERVING"}
        # A public call needs no signature; the answer is the JSON mapping, zero values present.
        keys = http.post(url(gw, path(licences_pb2, "GetIssuerKeys")), content=b"").json()
        assert keys["keys"]["keys"][0]["keyId"]
        # The content roots, DER in base64 (the JSON mapping of bytes), one per key.
        root = base64.b64decode(keys["contentRoots"][0])
        assert root == ex.app.deps.keyring.content_roots()[0]
        offers = http.post(url(gw, path(registry_pb2, "ListPlatforms")), json={}).json()
        assert offers == {"platforms": [], "nextPageToken": ""}  # zero values present
    # A signed call through the recipe's client: the registration is the exchange's own.
    key = PrivateKey.generate()
    client = GatewayClient(url(gw), key)
    client.call(REGISTER_ADVERTISER, {"organisation": "Acme Ads", "country": "FR"})
    profile = client.call(GET_PROFILE, registry_pb2.GetProfileRequest())
    assert profile["profile"]["displayName"] == "Acme Ads"
    assert profile["profile"]["role"] == "PARTY_ROLE_ADVERTISER"
    assert profile["profile"]["key"] == base64.b64encode(key.public.raw).decode()
    # ... the same the gRPC side sees for that key.
    party = Party(key, SignedChannel(ex.channel(), key), ex)
    seen = party.call(
        registry_pb2,
        "GetProfile",
        registry_pb2.GetProfileRequest(),
        registry_pb2.GetProfileResponse,
    )
    assert seen.profile.display_name == "Acme Ads"
    # A refusal through the client is an ExchangeError with the server's reason.
    with pytest.raises(ExchangeError) as caught:
        client.call(REGISTER_ADVERTISER, {"organisation": "Acme Ads", "country": "FR"})
    assert caught.value.reason.name == "ALREADY_EXISTS"


def test_every_bad_request_is_refused_with_its_reason_and_changes_nothing(
    ex: Exchange, gw: RunningGateway
) -> None:
    key = PrivateKey.generate()
    target = url(gw, REGISTER_ADVERTISER)
    body = json.dumps({"organisation": "Acme Ads", "country": "FR"}).encode()
    with httpx.Client(timeout=10) as http:

        def post(content: bytes, headers: dict[str, str]) -> httpx.Response:
            return http.post(target, content=content, headers=headers)

        # Unsigned, and signed over other bytes (the body changed after signing).
        assert refusal(post(body, {})) == (401, "BAD_REQUEST_SIGNATURE")
        tampered = body.replace(b"Acme", b"Evil")
        assert refusal(post(tampered, signed_headers(key, REGISTER_ADVERTISER, body))) == (
            401,
            "BAD_REQUEST_SIGNATURE",
        )
        # A gRPC signature (its own domain) over these very bytes is not an HTTP one.
        grpc_sig = dict(sign_request(key, REGISTER_ADVERTISER, body, int(time.time())))
        assert refusal(post(body, grpc_sig)) == (401, "BAD_REQUEST_SIGNATURE")
        # Stale, and signed for another method.
        old = signed_headers(key, REGISTER_ADVERTISER, body, int(time.time()) - 3600)
        assert refusal(post(body, old)) == (401, "STALE_REQUEST")
        other = signed_headers(key, GET_PROFILE, body)
        assert refusal(post(body, other)) == (401, "BAD_REQUEST_SIGNATURE")
        # Unknown fields, a body that is not JSON, not an object, a wrong type: MALFORMED,
        # signed or not (the signature is checked first, as over gRPC).
        for bad in (
            b'{"organisation": "Acme", "bogus": 1}',
            b"not json",
            b"[1, 2]",
            b'{"organisation": 7}',
            b"\xff\xfe",
        ):
            response = post(bad, signed_headers(key, REGISTER_ADVERTISER, bad))
            assert refusal(response) == (400, "MALFORMED"), bad
        assert (
            "bogus"
            in post(
                b'{"bogus": 1}', signed_headers(key, REGISTER_ADVERTISER, b'{"bogus": 1}')
            ).json()["error"]["message"]
        )
        # Too large: refused before the signature is looked at, streamed or declared.
        huge = b'{"organisation": "' + b"A" * (1 << 20) + b'"}'
        assert refusal(post(huge, signed_headers(key, REGISTER_ADVERTISER, huge))) == (
            413,
            "TOO_LARGE",
        )
        chunked = http.post(target, content=iter([huge[:1000], huge[1000:]]))
        assert refusal(chunked) == (413, "TOO_LARGE")
        # Nothing above changed anything: the key is still unknown.
        probe = b"{}"
        unknown = http.post(
            url(gw, GET_PROFILE), content=probe, headers=signed_headers(key, GET_PROFILE, probe)
        )
        assert refusal(unknown)[1] in ("UNKNOWN_KEY", "NOT_FOUND")
        # The good call once; its exact replay is refused, as is its nonce used over gRPC.
        headers = signed_headers(key, REGISTER_ADVERTISER, body)
        assert post(body, headers).status_code == 200
        assert refusal(post(body, headers)) == (401, "REPLAYED_REQUEST")
        # Unknown methods and client streams.
        assert refusal(http.post(url(gw) + "/v1/licentia.v1.Nope/Nothing", content=b"{}")) == (
            404,
            "NOT_FOUND",
        )
        verify_stream = url(gw, path(verification_pb2, "VerifyStream"))
        assert refusal(http.post(verify_stream, content=b"{}")) == (501, "NOT_SERVED")


def _answer(sock: socket.socket) -> bytes:
    """The gateway's answer on ``sock``: up to the end of its JSON body (or 10 s)."""
    sock.settimeout(10)
    data = b""
    try:
        while not data.endswith(b"}}") and (chunk := sock.recv(65536)):
            data += chunk
    except TimeoutError:
        pass
    return data


def test_bodies_are_bounded_before_any_check(ex: Exchange, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before a signature is checked or a thread taken: a Content-Length over the method's
    JSON cap is refused at once, nothing read; at most BODY_READS bodies are read at once
    (one more waits its turn, then is BUSY); a body that stalls is cut off, its turn freed."""
    monkeypatch.setattr(gateway_module, "BODY_READS", 2)
    monkeypatch.setattr(gateway_module, "BODY_WAIT_SECONDS", 0.5)
    monkeypatch.setattr(gateway_module, "BODY_SECONDS", 2.0)
    gw = start_gateway("127.0.0.1:0", ex.app.handlers, logging.getLogger("licentia.test"))
    target = gateway_path(REGISTER_ADVERTISER)

    def send(length: int, body: bytes = b"") -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", gw.port))
        head = f"POST {target} HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n"
        sock.sendall(head.encode() + body)
        return sock

    stalled = [send(1000, b'{"organisation": "'), send(1000, b"{")]
    try:
        time.sleep(0.3)  # both reads begun: every turn taken
        with httpx.Client(timeout=10) as http:
            started = time.monotonic()
            assert refusal(http.post(url(gw, REGISTER_ADVERTISER), content=b"{}")) == (
                429,
                "BUSY",
            )
            assert 0.4 < time.monotonic() - started < 2
            # A declared length over the cap (64 KiB x 4): refused at once, no turn needed,
            # and not one byte of it sent.
            started = time.monotonic()
            with send(10**12) as huge:
                answer = _answer(huge)
            assert answer.startswith(b"HTTP/1.1 413 "), answer[:100]
            assert b"may not exceed 262144 bytes" in answer
            assert time.monotonic() - started < 1
            # The stalled bodies are cut off, and their turns are free again.
            for sock in stalled:
                answer = _answer(sock)
                assert answer.startswith(b"HTTP/1.1 429 "), answer[:100]
                assert b"did not arrive within 2 s" in answer
            listed = http.post(url(gw, path(registry_pb2, "ListPlatforms")), json={})
            assert listed.status_code == 200
    finally:
        for sock in stalled:
            sock.close()
        gw.stop()


def test_a_follower_gateway_refuses_what_it_does_not_serve(ex: Exchange) -> None:
    """A read-only replica's gateway: its unserved methods, unary or streams, are 501."""
    follower = build(ex.data_dir, follower=True, log=logging.getLogger("licentia.test"))
    gateway = start_gateway("127.0.0.1:0", follower.handlers, logging.getLogger("licentia.test"))
    try:
        with httpx.Client(timeout=10) as http:
            for method in (REGISTER_ADVERTISER, path(exchange_pb2, "WatchRequest")):
                assert refusal(http.post(url(gateway, method), content=b"{}")) == (
                    501,
                    "NOT_SERVED",
                )
            keys = http.post(url(gateway, path(licences_pb2, "GetIssuerKeys")), content=b"{}")
            assert keys.status_code == 200
    finally:
        gateway.stop()
        follower.close()


def test_a_refusal_mid_stream_is_an_error_event_and_a_crash_is_a_bare_500() -> None:
    """The pipeline's error mapping over HTTP, with handlers that fail on purpose."""

    def feed(req: Any, call: rpc.Call) -> Iterator[licences_pb2.WatchRevocationsResponse]:
        yield licences_pb2.WatchRevocationsResponse()
        raise LicentiaError(Reason.BUSY, "the feed gave up")

    def crash(req: Any, call: rpc.Call) -> Any:
        raise RuntimeError("secret detail")

    log = logging.getLogger("licentia.test")
    auth, clock = rpc.Authenticator(), rpc.SystemClock()
    handlers = [
        rpc.service(
            licences_pb2.DESCRIPTOR.services_by_name["LicenceService"],
            {
                "WatchRevocations": rpc.Method(feed, signed=False),
                "GetIssuerKeys": rpc.Method(crash, signed=False),
            },
            auth,
            clock,
            log,
        )
    ]
    gateway = start_gateway("127.0.0.1:0", handlers, log)
    try:
        watch = path(licences_pb2, "WatchRevocations")
        with httpx.stream("POST", url(gateway, watch), content=b"{}", timeout=10) as stream:
            assert stream.status_code == 200
            lines = [line for line in stream.iter_lines() if line and not line.startswith(":")]
        assert lines == [
            "data: {}",  # the one message (a oneof, none set: no field has a zero value)
            "event: error",
            'data: {"error":{"code":"RESOURCE_EXHAUSTED","reason":"BUSY",'
            '"message":"the feed gave up"}}',
        ]
        with pytest.raises(ExchangeError) as caught:
            list(GatewayClient(url(gateway)).stream(watch, {}))
        assert caught.value.reason is Reason.BUSY
        crashed = httpx.post(url(gateway, path(licences_pb2, "GetIssuerKeys")), timeout=10)
        assert refusal(crashed) == (500, "INTERNAL")
        assert "secret" not in crashed.text
    finally:
        gateway.stop()


def test_the_gateway_serves_tls_when_given_a_certificate(ex: Exchange, tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path / "tls")
    log = logging.getLogger("licentia.test")
    gateway = start_gateway("127.0.0.1:0", ex.app.handlers, log, tls_cert=cert, tls_key=key)
    try:
        base = f"https://localhost:{gateway.port}"
        context = ssl.create_default_context(cafile=str(cert))
        client = GatewayClient(base, PrivateKey.generate(), ssl_context=context)
        client.call(REGISTER_ADVERTISER, {"organisation": "Acme Ads", "country": "FR"})
        with pytest.raises(ExchangeError) as caught:  # not trusted without the CA
            GatewayClient(base).call(path(licences_pb2, "GetIssuerKeys"), {})
        assert caught.value.reason is Reason.UNAVAILABLE
    finally:
        gateway.stop()


def test_a_nonce_is_spent_for_both_transports(ex: Exchange, gw: RunningGateway) -> None:
    """A nonce a gRPC call used cannot sign an HTTP call (one store, one set of rules)."""
    party = ex.party()
    register_holder(party)  # a gRPC call, its nonce drawn by the client
    nonce = os.urandom(16)
    now = int(time.time())
    grpc_body = registry_pb2.GetProfileRequest().SerializeToString()
    md = sign_request(party.key, GET_PROFILE, grpc_body, now, nonce)
    raw_unary(party.rpc.channel, GET_PROFILE, grpc_body, md)
    body = b"{}"
    headers = dict(sign_http_request(party.key, GET_PROFILE, body, now, nonce))
    response = httpx.post(url(gw, GET_PROFILE), content=body, headers=headers, timeout=10)
    assert refusal(response) == (401, "REPLAYED_REQUEST")
    fresh = httpx.post(
        url(gw, GET_PROFILE),
        content=body,
        headers=signed_headers(party.key, GET_PROFILE, body),
        timeout=10,
    )
    assert fresh.status_code == 200


def test_a_stream_is_server_sent_events_and_delivers_a_revocation(
    ex: Exchange, gw: RunningGateway
) -> None:
    holder, adv, _ = registered(ex)
    licence = issue_licence(holder, adv)
    body = b'{"afterSequence": "0"}'
    with httpx.Client(timeout=10) as http:
        # Refused before it starts: a JSON refusal with its own status, not a stream.
        assert refusal(http.post(url(gw, WATCH_EVENTS), content=body)) == (
            401,
            "BAD_REQUEST_SIGNATURE",
        )
        headers = signed_headers(adv.key, WATCH_EVENTS, body)
        with http.stream("POST", url(gw, WATCH_EVENTS), content=body, headers=headers) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.iter_lines()
            # The holder revokes, over HTTP too, signed with her key.
            revoke = GatewayClient(url(gw), holder.key)
            revoke.call(REVOKE, licences_pb2.RevokeLicenceRequest(licence_id=licence.licence_id))
            wanted = base64.b64encode(licence.licence_id).decode()
            deadline = time.monotonic() + 10
            for line in lines:
                assert time.monotonic() < deadline
                if line.startswith("data:") and json.loads(line[5:]).get("licenceId") == wanted:
                    event = json.loads(line[5:])
                    break
            else:
                pytest.fail("the stream ended without the revocation")
    assert event["cause"] != "TERMINATION_CAUSE_UNSPECIFIED"
    assert int(event["sequence"]) > 0  # an int64: a decimal string
    # The client's stream helper reads the same stream (and ends when closed).
    watcher = GatewayClient(url(gw), adv.key).stream(WATCH_EVENTS, {"afterSequence": "0"})
    first = next(watcher)
    watcher.close()
    assert "sequence" in first


def test_schemathesis_finds_no_server_error_and_the_document_holds(
    ex: Exchange, gw: RunningGateway
) -> None:
    """Inputs generated from /openapi.json (valid ones and invalid ones), each signed by a
    registered advertiser so that it reaches the handler: no 5xx, and every answer to a
    valid input matches the document."""
    document = httpx.get(url(gw) + "/openapi.json", timeout=10).json()
    served = {p for p in document["paths"] if p.startswith("/v1/")}
    expected = {
        gateway_path(e.path)
        for h in ex.app.handlers
        for e in getattr(h, "endpoints", ())
        if not e.descriptor.client_streaming
    }
    assert served == expected
    assert len(served) > 40
    # The protobuf JSON mapping: int64 as a decimal string, bytes as base64, enums by name,
    # repeated as arrays, no field beyond the message's.
    schemas = document["components"]["schemas"]
    profile = schemas["licentia.v1.Profile"]
    assert profile["additionalProperties"] is False
    assert profile["properties"]["registeredAt"]["type"] == "string"
    assert profile["properties"]["key"]["contentEncoding"] == "base64"
    assert profile["properties"]["role"] == {"$ref": "#/components/schemas/licentia.v1.PartyRole"}
    assert "PARTY_ROLE_HOLDER" in schemas["licentia.v1.PartyRole"]["enum"]
    platforms = schemas["licentia.v1.ListPlatformsResponse"]["properties"]["platforms"]
    assert platforms["type"] == "array"
    signed = document["paths"][gateway_path(GET_PROFILE)]["post"]["security"]
    assert signed == [{name: [] for name in document["components"]["securitySchemes"]}]
    public = document["paths"][gateway_path(path(licences_pb2, "GetIssuerKeys"))]["post"]
    assert public["security"] == []
    schema = schemathesis.openapi.from_url(url(gw) + "/openapi.json")
    base = url(gw)
    key = PrivateKey.generate()
    GatewayClient(base, key).call(REGISTER_ADVERTISER, {"organisation": "Fuzz", "country": "FR"})
    streams = {p for p, item in document["paths"].items() if _is_stream(item)}
    # (an operation schemathesis finds invalid is an Err, without ok(): the test fails)
    every = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    operations = [op for op in every if op.path not in streams]  # endless: tested above
    modes = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
    strategy = st.one_of(*(op.as_strategy(mode) for op in operations for mode in modes))
    failures: list[str] = []
    statuses: set[int] = set()

    @settings(
        max_examples=200,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def run(case: Any) -> None:
        if case.body is NOT_SET:
            body = b""
        else:
            body = case.body if isinstance(case.body, bytes) else json.dumps(case.body).encode()
        headers = {**(case.headers or {})}
        if case.operation.path.startswith("/v1/"):
            headers.update(signed_headers(key, case.operation.path[3:], body))
        response = httpx.request(
            case.operation.method.upper(),
            base + case.operation.path,
            content=body,
            headers=headers,
            timeout=10,
        )
        statuses.add(response.status_code)
        checks: list[Any] = [not_a_server_error]
        if case.meta is None or "positive" in str(case.meta.generation.mode).lower():
            checks.append(response_schema_conformance)
        try:
            case.validate_response(response, checks=checks)
        except Exception as e:  # noqa: BLE001 (collected, reported together)
            failures.append(f"{case.operation.path}: {e}"[:500])

    run()
    assert not failures, "\n".join(failures[:5])
    assert {200, 400, 403, 404} <= statuses  # handlers were reached, not only the door


def _is_stream(item: dict[str, Any]) -> bool:
    content = item.get("post", {}).get("responses", {}).get("200", {}).get("content", {})
    return "text/event-stream" in content


def test_the_server_flag_serves_http_beside_grpc_and_stops_cleanly(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "licentia.services.server",
            "--data-dir",
            str(tmp_path / "data"),
            "--listen",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--processes",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        http_line = proc.stdout.readline()
        assert http_line.startswith("http listening on 127.0.0.1:"), http_line
        assert proc.stdout.readline().startswith("listening on 127.0.0.1:")
        base = "http://" + http_line.split()[-1]
        assert httpx.get(base + "/healthz", timeout=10).status_code == 200
        doc = httpx.get(base + "/openapi.json", timeout=10).json()
        assert doc["openapi"].startswith("3.1")
        checkpoint = httpx.post(
            base + gateway_path(path(transparency_pb2, "GetCheckpoint")),
            content=b"{}",
            timeout=10,
        )
        assert checkpoint.status_code == 200
        assert checkpoint.json()["checkpoint"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # A bad --http is a usage error.
    bad = subprocess.run(
        [sys.executable, "-m", "licentia.services.server", "--http", "nowhere"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert bad.returncode == 2
    assert "--http" in bad.stderr
