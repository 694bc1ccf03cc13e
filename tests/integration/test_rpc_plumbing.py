"""The gRPC plumbing over a real server on 127.0.0.1:0 and real channels: request
signatures over the exact bytes, strict parsing, the error family on the wire, health,
reflection, logging, TLS and a bounded drain. The attacks on request signatures and sizes
(a replayed call, a call signed for another method, a skewed clock, an oversized message)
are in test_attacks.py, against the real exchange."""

from __future__ import annotations

import io
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped]
import pytest
from google.protobuf import descriptor_pb2
from google.rpc import error_details_pb2  # type: ignore[import-untyped]
from grpc_health.v1 import health_pb2, health_pb2_grpc  # type: ignore[import-untyped]
from grpc_reflection.v1alpha import (  # type: ignore[import-untyped]
    reflection_pb2,
    reflection_pb2_grpc,
)
from grpc_status import rpc_status  # type: ignore[import-untyped]

from licentia import methods
from licentia.clients.channel import ExchangeError, ExchangeUnavailable, SignedChannel
from licentia.errors import LicentiaError, Reason
from licentia.keys import PrivateKey
from licentia.request import sign_request
from licentia.services import errors, rpc, runtime
from licentia.v1 import (
    licences_pb2,
    records_pb2,
    registry_pb2,
    status_pb2,
    verification_pb2,
)

from .exchange_harness import needs_openssl, raw_unary, self_signed_certificate

REGISTRY = registry_pb2.DESCRIPTOR.services_by_name["RegistryService"]
LICENCES = licences_pb2.DESCRIPTOR.services_by_name["LicenceService"]
VERIFICATION = verification_pb2.DESCRIPTOR.services_by_name["VerificationService"]
REGISTER_HOLDER = methods.path(registry_pb2, "RegisterHolder")
GET_PROFILE = methods.path(registry_pb2, "GetProfile")
LEAK = "do-not-leak-7f3a9c"


# -- the handlers under test ----------------------------------------------------------------


def register_holder(
    req: registry_pb2.RegisterHolderRequest, call: rpc.Call
) -> registry_pb2.RegisterHolderResponse:
    assert call.caller is not None
    assert call.method == REGISTER_HOLDER
    profile = records_pb2.Profile(key=call.caller.raw, handle=req.handle)
    return registry_pb2.RegisterHolderResponse(profile=profile)


def get_profile(req: registry_pb2.GetProfileRequest, call: rpc.Call) -> Any:
    raise LicentiaError(Reason.NOT_FOUND, "no such profile")


def register_advertiser(req: registry_pb2.RegisterAdvertiserRequest, call: rpc.Call) -> Any:
    raise RuntimeError(f"database password {LEAK} rejected")


def register_platform(
    req: registry_pb2.RegisterPlatformRequest, call: rpc.Call
) -> registry_pb2.RegisterPlatformResponse:
    key = b"" if call.caller is None else call.caller.raw  # a public method: no caller
    profile = records_pb2.Profile(key=key, handle=req.platform_id)
    return registry_pb2.RegisterPlatformResponse(profile=profile)


def watch_revocations(
    req: licences_pb2.WatchRevocationsRequest, call: rpc.Call
) -> Iterator[licences_pb2.WatchRevocationsResponse]:
    for n in range(1, 3):
        beat = status_pb2.StatusHeartbeat(sequence=n, at=call.now)
        yield licences_pb2.WatchRevocationsResponse(heartbeat=beat)
    if req.after_sequence == 7:
        raise LicentiaError(Reason.STATUS_SEQUENCE_GAP, "resynchronise from a snapshot")


def verify_stream(
    requests: Iterator[verification_pb2.VerifyRequest], call: rpc.Call
) -> Iterator[verification_pb2.VerifyResponse]:
    assert call.caller is not None
    for req in requests:
        yield verification_pb2.VerifyResponse(allowed=req.token == "ok")


def handler_set(log: Any, auth: rpc.Authenticator | None = None) -> list[Any]:
    auth = auth or rpc.Authenticator()
    clock = rpc.SystemClock()
    registry = {
        "RegisterHolder": rpc.Method(register_holder),
        "GetProfile": rpc.Method(get_profile),
        "RegisterAdvertiser": rpc.Method(register_advertiser),
        "RegisterPlatform": rpc.Method(register_platform, signed=False),
    }
    return [
        rpc.service(REGISTRY, registry, auth, clock, log),
        rpc.service(
            LICENCES, {"WatchRevocations": rpc.Method(watch_revocations)}, auth, clock, log
        ),
        rpc.service(
            VERIFICATION,
            {"VerifyStream": rpc.Method(verify_stream, max_request_bytes=1024)},
            auth,
            clock,
            log,
        ),
    ]


@dataclass
class Harness:
    server: runtime.RunningServer
    channel: Any
    logs: io.StringIO
    key: PrivateKey

    def signed(self, **kw: Any) -> SignedChannel:
        return SignedChannel(self.channel, self.key, **kw)

    def log_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.logs.getvalue().splitlines()]


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    logs = io.StringIO()
    log = rpc.json_logger("licentia.test.rpc", stream=logs)
    names = [REGISTRY.full_name, LICENCES.full_name, VERIFICATION.full_name]
    server = runtime.start(runtime.ServerSettings(), handler_set(log), names, log)
    channel = runtime.client_channel(server.address)
    try:
        yield Harness(server, channel, logs, PrivateKey.generate())
    finally:
        channel.close()
        server.stop(0)


def assert_refused(err: pytest.ExceptionInfo[ExchangeError], code: Any, reason: Reason) -> None:
    assert (err.value.code, err.value.reason) == (code, reason)


def holder_request(handle: str = "alice") -> registry_pb2.RegisterHolderRequest:
    return registry_pb2.RegisterHolderRequest(handle=handle, display_name="Alice")


# -- authentication over the exact bytes ------------------------------------------------------


def test_a_signed_call_succeeds_and_the_handler_sees_the_caller(harness: Harness) -> None:
    resp = harness.signed().unary(
        REGISTER_HOLDER, holder_request(), registry_pb2.RegisterHolderResponse
    )
    assert resp.profile.key == harness.key.public.raw
    assert resp.profile.handle == "alice"


def test_an_unsigned_call_to_a_signed_method_is_unauthenticated(harness: Harness) -> None:
    unsigned = SignedChannel(harness.channel, None)
    with pytest.raises(ExchangeError) as err:
        unsigned.unary(REGISTER_HOLDER, holder_request(), registry_pb2.RegisterHolderResponse)
    assert_refused(err, grpc.StatusCode.UNAUTHENTICATED, Reason.BAD_REQUEST_SIGNATURE)


def test_a_public_method_needs_no_signature_and_has_no_caller(harness: Harness) -> None:
    req = registry_pb2.RegisterPlatformRequest(platform_id="news", name="News")
    for key in (None, harness.key):  # a signature on a public call is ignored
        resp = SignedChannel(harness.channel, key).unary(
            methods.path(registry_pb2, "RegisterPlatform"),
            req,
            registry_pb2.RegisterPlatformResponse,
        )
        assert (resp.profile.key, resp.profile.handle) == (b"", "news")


def test_a_signature_over_other_bytes_is_refused(harness: Harness) -> None:
    signed = holder_request("alice").SerializeToString(deterministic=True)
    sent = holder_request("mallory").SerializeToString(deterministic=True)
    metadata = sign_request(harness.key, REGISTER_HOLDER, signed, int(time.time()))
    with pytest.raises(ExchangeError) as err:
        raw_unary(harness.channel, REGISTER_HOLDER, sent, metadata)
    assert_refused(err, grpc.StatusCode.UNAUTHENTICATED, Reason.BAD_REQUEST_SIGNATURE)


# -- strict parsing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"\xff\xff\xff\xff",  # not protobuf
        b"\x0a\x02\xc3\x28",  # handle is not UTF-8
        holder_request().SerializeToString() + b"\x98\x06\x01",  # unknown field 99
    ],
)
def test_validly_signed_garbage_is_malformed(harness: Harness, body: bytes) -> None:
    metadata = sign_request(harness.key, REGISTER_HOLDER, body, int(time.time()))
    with pytest.raises(ExchangeError) as err:
        raw_unary(harness.channel, REGISTER_HOLDER, body, metadata)
    assert_refused(err, grpc.StatusCode.INVALID_ARGUMENT, Reason.MALFORMED)


# -- the error family on the wire -------------------------------------------------------------


def test_a_refusal_carries_its_code_and_error_info(harness: Harness) -> None:
    body = registry_pb2.GetProfileRequest().SerializeToString()
    call = harness.channel.unary_unary(GET_PROFILE)
    metadata = sign_request(harness.key, GET_PROFILE, body, int(time.time()))
    with pytest.raises(grpc.RpcError) as raw:
        call(body, metadata=metadata, timeout=5)
    status = rpc_status.from_call(raw.value)
    assert status.code == grpc.StatusCode.NOT_FOUND.value[0]
    assert status.message == "no such profile"
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert (info.reason, info.domain) == ("NOT_FOUND", "licentia.v1")


def test_a_handler_error_reaches_the_client_as_its_reason(harness: Harness) -> None:
    with pytest.raises(ExchangeError) as err:
        harness.signed().unary(
            GET_PROFILE, registry_pb2.GetProfileRequest(), registry_pb2.GetProfileResponse
        )
    assert_refused(err, grpc.StatusCode.NOT_FOUND, Reason.NOT_FOUND)
    assert err.value.message == "no such profile"
    assert isinstance(err.value, LicentiaError)  # one error family on both ends


def test_a_crash_is_internal_and_reveals_nothing(harness: Harness) -> None:
    req = registry_pb2.RegisterAdvertiserRequest(organisation="Acme", country="FR")
    with pytest.raises(ExchangeError) as err:
        harness.signed().unary(
            methods.path(registry_pb2, "RegisterAdvertiser"),
            req,
            registry_pb2.RegisterAdvertiserResponse,
        )
    assert_refused(err, grpc.StatusCode.INTERNAL, Reason.INTERNAL)
    assert LEAK not in err.value.message
    assert "Traceback" not in err.value.message
    assert "RuntimeError" not in err.value.message
    # The server logged it, with the call id the client was given.
    crash = [r for r in harness.log_lines() if r["event"] == "rpc.internal_error"][-1]
    assert crash["call_id"] in err.value.message
    assert LEAK in crash["traceback"]


def test_a_method_without_a_handler_is_not_served(harness: Harness) -> None:
    with pytest.raises(ExchangeError) as err:
        harness.signed().unary(
            methods.path(registry_pb2, "UpdateProfile"),
            registry_pb2.UpdateProfileRequest(display_name="A"),
            registry_pb2.UpdateProfileResponse,
        )
    assert_refused(err, grpc.StatusCode.UNIMPLEMENTED, Reason.NOT_SERVED)
    with pytest.raises(ExchangeError) as err:
        list(
            SignedChannel(harness.channel, None).server_stream(
                methods.path(licences_pb2, "WatchLicenceEvents"),
                licences_pb2.WatchLicenceEventsRequest(),
                licences_pb2.WatchLicenceEventsResponse,
            )
        )
    assert_refused(err, grpc.StatusCode.UNIMPLEMENTED, Reason.NOT_SERVED)


def test_a_method_the_server_does_not_know_maps_to_not_served(harness: Harness) -> None:
    with pytest.raises(ExchangeError) as err:
        harness.signed().unary(
            f"/{registry_pb2.DESCRIPTOR.package}.NoSuchService/Nothing",
            registry_pb2.GetProfileRequest(),
            registry_pb2.GetProfileResponse,
        )
    assert_refused(err, grpc.StatusCode.UNIMPLEMENTED, Reason.NOT_SERVED)


def test_a_handler_for_a_method_the_service_lacks_is_refused_at_build_time() -> None:
    with pytest.raises(ValueError, match="Nope"):
        rpc.service(
            REGISTRY,
            {"Nope": rpc.Method(get_profile)},
            rpc.Authenticator(),
            rpc.SystemClock(),
            rpc.json_logger("licentia.test.build", io.StringIO()),
        )


def test_every_reason_has_a_status_code() -> None:
    assert set(errors.STATUS_OF) == set(Reason)
    assert errors.STATUS_OF[Reason.TOO_LARGE] == grpc.StatusCode.INVALID_ARGUMENT
    assert errors.STATUS_OF[Reason.UNKNOWN_KEY] == grpc.StatusCode.UNAUTHENTICATED
    assert errors.STATUS_OF[Reason.WRONG_AUDIENCE] == grpc.StatusCode.PERMISSION_DENIED
    assert errors.STATUS_OF[Reason.PRESENTATION_EXPIRED] == grpc.StatusCode.FAILED_PRECONDITION
    assert errors.STATUS_OF[Reason.NOT_SERVED] == grpc.StatusCode.UNIMPLEMENTED


# -- streams ----------------------------------------------------------------------------------


def test_a_server_stream_delivers_then_maps_an_error_mid_stream(harness: Harness) -> None:
    method = methods.path(licences_pb2, "WatchRevocations")
    cls = licences_pb2.WatchRevocationsResponse
    ok = harness.signed().server_stream(method, licences_pb2.WatchRevocationsRequest(), cls)
    assert [m.heartbeat.sequence for m in ok] == [1, 2]
    got: list[int] = []
    failing = licences_pb2.WatchRevocationsRequest(after_sequence=7)
    with pytest.raises(ExchangeError) as err:
        got.extend(
            m.heartbeat.sequence for m in harness.signed().server_stream(method, failing, cls)
        )
    assert got == [1, 2]
    assert_refused(err, grpc.StatusCode.FAILED_PRECONDITION, Reason.STATUS_SEQUENCE_GAP)


def test_a_client_stream_is_signed_as_a_whole_and_each_message_checked(
    harness: Harness,
) -> None:
    method = methods.path(verification_pb2, "VerifyStream")
    cls = verification_pb2.VerifyResponse
    reqs = [verification_pb2.VerifyRequest(token=t) for t in ("ok", "no", "ok")]
    answers = harness.signed().stream_stream(method, iter(reqs), cls)
    assert [a.allowed for a in answers] == [True, False, True]

    with pytest.raises(ExchangeError) as err:
        list(SignedChannel(harness.channel, None).stream_stream(method, iter(reqs), cls))
    assert_refused(err, grpc.StatusCode.UNAUTHENTICATED, Reason.BAD_REQUEST_SIGNATURE)

    too_big = [reqs[0], verification_pb2.VerifyRequest(token="x" * 2048)]
    got: list[bool] = []
    with pytest.raises(ExchangeError) as err:
        got.extend(a.allowed for a in harness.signed().stream_stream(method, iter(too_big), cls))
    assert got == [True]
    assert_refused(err, grpc.StatusCode.INVALID_ARGUMENT, Reason.TOO_LARGE)


# -- health, reflection, logging --------------------------------------------------------------


def test_health_answers_serving(harness: Harness) -> None:
    stub = health_pb2_grpc.HealthStub(harness.channel)
    for name in ("", REGISTRY.full_name, VERIFICATION.full_name):
        resp = stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
        assert resp.status == health_pb2.HealthCheckResponse.SERVING


def _reflect(
    channel: grpc.Channel, version: str, *asks: reflection_pb2.ServerReflectionRequest
) -> list[reflection_pb2.ServerReflectionResponse]:
    """Ask the reflection service of ``version`` ("v1" or "v1alpha"). The two protocols are
    the same messages under another package, so the v1alpha classes encode both."""
    info = channel.stream_stream(
        f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    return list(info(iter(asks), timeout=5))


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
def test_reflection_lists_and_describes_the_services(harness: Harness, version: str) -> None:
    """Current grpcurl and Postman ask for grpc.reflection.v1 first; older clients v1alpha."""
    if version == "v1alpha":  # the generated stub, as older clients use it
        stub = reflection_pb2_grpc.ServerReflectionStub(harness.channel)
        ask = reflection_pb2.ServerReflectionRequest(list_services="")
        [listed] = list(stub.ServerReflectionInfo(iter([ask]), timeout=5))
    else:
        [listed] = _reflect(
            harness.channel, version, reflection_pb2.ServerReflectionRequest(list_services="")
        )
    names = {s.name for s in listed.list_services_response.service}
    assert {REGISTRY.full_name, LICENCES.full_name, "grpc.health.v1.Health"} <= names
    assert {"grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"} <= (
        names
    )
    # Each service listed can be described: the file defining it comes back, parseable.
    for name in (REGISTRY.full_name, f"grpc.reflection.{version}.ServerReflection"):
        [resp] = _reflect(
            harness.channel,
            version,
            reflection_pb2.ServerReflectionRequest(file_containing_symbol=name),
        )
        assert not resp.HasField("error_response"), resp.error_response
        files = [
            descriptor_pb2.FileDescriptorProto.FromString(raw)
            for raw in resp.file_descriptor_response.file_descriptor_proto
        ]
        package, _, service = name.rpartition(".")
        assert any(f.package == package and service in {s.name for s in f.service} for f in files)


def test_each_call_logs_one_json_line_without_its_signature(harness: Harness) -> None:
    body = holder_request("logged").SerializeToString(deterministic=True)
    metadata = dict(sign_request(harness.key, REGISTER_HOLDER, body, int(time.time())))
    raw_unary(harness.channel, REGISTER_HOLDER, body, tuple(metadata.items()))
    text = harness.logs.getvalue()
    assert metadata["x-licentia-signature"] not in text
    assert metadata["x-licentia-nonce"] not in text
    line = [r for r in harness.log_lines() if r["event"] == "rpc"][-1]
    assert line["method"] == REGISTER_HOLDER
    assert line["code"] == "OK"
    assert line["caller"] == harness.key.public.text
    assert isinstance(line["ms"], float)
    assert len(line["call_id"]) == 16
    assert {"ts", "level"} <= line.keys()


def test_the_json_formatter_writes_one_object_per_line() -> None:
    out = io.StringIO()
    log = rpc.json_logger("licentia.test.format", out)
    log.info("rpc", extra={"method": "/x.Y/Z", "code": "NOT_FOUND", "reason": "NOT_FOUND"})
    log.warning("two\nlines", extra={"n": 2})
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["event"] == "rpc"
    assert (first["level"], first["method"], first["reason"]) == ("info", "/x.Y/Z", "NOT_FOUND")
    assert (second["event"], second["n"]) == ("two\nlines", 2)
    assert first["ts"].endswith("+00:00")


# -- running and stopping ---------------------------------------------------------------------


def test_the_server_stops_within_its_grace_period() -> None:
    entered, release = threading.Event(), threading.Event()

    def slow(req: Any, call: rpc.Call) -> Any:
        entered.set()
        release.wait(10)
        return registry_pb2.GetTermsResponse()

    log = rpc.json_logger("licentia.test.stop", io.StringIO())
    auth, clock = rpc.Authenticator(), rpc.SystemClock()
    handler = rpc.service(REGISTRY, {"GetTerms": rpc.Method(slow)}, auth, clock, log)
    server = runtime.start(runtime.ServerSettings(), [handler], [REGISTRY.full_name], log)
    channel = runtime.client_channel(server.address)
    client = SignedChannel(channel, PrivateKey.generate())
    try:
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(
                client.unary,
                methods.path(registry_pb2, "GetTerms"),
                registry_pb2.GetTermsRequest(),
                registry_pb2.GetTermsResponse,
            )
            assert entered.wait(5)
            started = time.monotonic()
            server.stop(grace=0.3)
            assert time.monotonic() - started < 2.0
            with pytest.raises(ExchangeError):
                pending.result(5)  # the call still in flight when the grace ran out
        with pytest.raises(ExchangeUnavailable):
            client.unary(
                GET_PROFILE, registry_pb2.GetProfileRequest(), registry_pb2.GetProfileResponse
            )
    finally:
        release.set()
        channel.close()
        server.stop(0)


def test_sigterm_drains_the_server() -> None:
    log = rpc.json_logger("licentia.test.signal", io.StringIO())
    settings = runtime.ServerSettings(grace_seconds=0.2)
    server = runtime.start(settings, handler_set(log), [REGISTRY.full_name], log)
    previous = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    try:
        runtime.install_signal_handlers(server, log)
        os.kill(os.getpid(), signal.SIGTERM)
        assert server.wait(timeout=5)
    finally:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])
        server.stop(0)


@needs_openssl
def test_tls_end_to_end(tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path)
    log = rpc.json_logger("licentia.test.tls", io.StringIO())
    settings = runtime.ServerSettings(tls_cert=cert, tls_key=key)
    server = runtime.start(settings, handler_set(log), [REGISTRY.full_name], log)
    channel = runtime.client_channel(f"localhost:{server.port}", tls_ca=cert.read_bytes())
    plain = runtime.client_channel(f"localhost:{server.port}")
    try:
        holder = PrivateKey.generate()
        resp = SignedChannel(channel, holder).unary(
            REGISTER_HOLDER, holder_request(), registry_pb2.RegisterHolderResponse
        )
        assert resp.profile.key == holder.public.raw
        with pytest.raises(ExchangeUnavailable):
            SignedChannel(plain, holder, timeout=2).unary(
                REGISTER_HOLDER, holder_request(), registry_pb2.RegisterHolderResponse
            )
    finally:
        channel.close()
        plain.close()
        server.stop(0)
