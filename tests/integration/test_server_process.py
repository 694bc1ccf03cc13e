"""licentia-server as a real process, a verify-only follower replica, and key rotation."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc  # type: ignore[import-untyped]
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc  # type: ignore[import-untyped]

from licentia import content_certs
from licentia.errors import Reason
from licentia.keys import IssuerKeySet, PrivateKey
from licentia.request import sign_request
from licentia.token import parse_token
from licentia.v1 import licences_pb2, registry_pb2, verification_pb2

from .exchange_harness import (
    Exchange,
    ExchangeError,
    Party,
    SignedChannel,
    approve_request,
    method_path,
    photo_use,
    raw_unary,
    reasons,
    register_advertiser,
    register_holder,
    register_platform,
    registered,
    request_licence,
    start_exchange,
    verify,
    wait_for,
)

#: What request_licence offers by default: 30 days at the holder's 1.00 a day.
PRICE = 30 * 100


def _licence(holder: Party, adv: Party) -> str:
    req = request_licence(adv, holder.key.public.raw).request
    return approve_request(holder, req).licence.token


def _revoke(holder: Party, token: str) -> None:
    holder.call(
        licences_pb2,
        "RevokeLicence",
        licences_pb2.RevokeLicenceRequest(licence_id=parse_token(token).licence_id),
        licences_pb2.RevokeLicenceResponse,
    )


@pytest.fixture
def primary(tmp_path: Path) -> Iterator[Exchange]:
    ex = start_exchange(tmp_path / "data")
    try:
        yield ex
    finally:
        ex.stop()


def test_a_follower_on_the_same_data_directory_agrees_and_follows(
    primary: Exchange, tmp_path: Path
) -> None:
    holder, adv, platform = registered(primary)
    token = _licence(holder, adv)
    follower = start_exchange(
        primary.data_dir, services=("verification", "licences"), follower=True
    )
    try:
        at_follower = Party(platform.key, SignedChannel(follower.channel(), platform.key))
        assert verify(at_follower, adv, token, photo_use()).allowed
        events = at_follower.stream(
            licences_pb2,
            "WatchRevocations",
            licences_pb2.WatchRevocationsRequest(after_sequence=0),
            licences_pb2.WatchRevocationsResponse,
        )
        t0 = time.monotonic()
        _revoke(holder, token)
        for msg in events:
            if msg.HasField("event"):
                assert msg.event.status_index == parse_token(token).status_index
                break
        assert time.monotonic() - t0 < 2
        assert reasons(verify(at_follower, adv, token, photo_use())) == [Reason.REVOKED]
        # A follower never writes: counting a use needs the primary.
        with pytest.raises(ExchangeError) as e:
            at_follower.call(
                verification_pb2,
                "ReportUse",
                verification_pb2.ReportUseRequest(report_id=b"\x01" * 16, token=token),
                verification_pb2.ReportUseResponse,
            )
        assert e.value.reason == Reason.NOT_SERVED
    finally:
        follower.stop()


def test_rotated_keys_keep_old_licences_verifying(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ex = start_exchange(data)
    try:
        holder, adv = ex.party(1), ex.party(2)
        register_holder(holder)
        register_advertiser(adv)
        old = _licence(holder, adv)
    finally:
        ex.stop()
    out = subprocess.run(
        [sys.executable, "-m", "licentia.services.server", "rotate-key", "--data-dir", str(data)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "new issuer key" in out.stdout
    # A running exchange re-reads its keys every 2 s: the command must not ask for a restart.
    assert "restart" not in out.stdout
    assert "within 2 s" in out.stdout
    # The operator destroys the retired secret, as the command says; its root is kept.
    old_id = parse_token(old).issuer_key_id.hex()
    assert f"destroy its secret {old_id}.key" in out.stdout
    (data / "issuer-keys" / f"{old_id}.key").unlink()
    # Two keys never share a second: a key rotated in within its predecessor's first second
    # starts at the next one, and until then the predecessor signs.
    time.sleep(1.0 - time.time() % 1.0 + 0.05)
    ex = start_exchange(data)
    try:
        holder, adv, platform = ex.party(1), ex.party(2), ex.party()
        register_platform(platform)
        new = _licence(holder, adv)
        assert parse_token(new).issuer_key_id != parse_token(old).issuer_key_id
        answer = platform.call(
            licences_pb2,
            "GetIssuerKeys",
            licences_pb2.GetIssuerKeysRequest(),
            licences_pb2.GetIssuerKeysResponse,
        )
        keys = IssuerKeySet.from_proto(answer.keys)
        # Both roots published (the retired one from the root kept), both kept by checkers.
        roots = list(answer.content_roots)
        assert len(roots) == 2
        assert content_certs.trusted_roots(roots, keys, now=int(time.time())) == roots
        retired = keys.resolve(parse_token(old).issuer_key_id)
        assert retired is not None
        assert retired.not_after is not None
        assert verify(platform, adv, old, photo_use()).allowed
        assert verify(platform, adv, new, photo_use()).allowed
    finally:
        ex.stop()


def test_the_server_process_serves_and_drains_on_sigterm(tmp_path: Path) -> None:
    port_file = tmp_path / "port"
    env = {**os.environ, "LICENTIA_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "licentia.services.server",
            "--listen",
            "127.0.0.1:0",
            "--port-file",
            str(port_file),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline
            time.sleep(0.05)
        address = f"127.0.0.1:{port_file.read_text().strip()}"
        with grpc.insecure_channel(address) as ch:
            health = health_pb2_grpc.HealthStub(ch)
            resp = health.Check(
                health_pb2.HealthCheckRequest(service="licentia.v1.ExchangeService")
            )
            assert resp.status == health_pb2.HealthCheckResponse.SERVING
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        out, err = proc.communicate()
        assert f"listening on {address}" in out
        assert '"event": "server.stopped"' in err or "server.stopped" in err
        key_files = list((tmp_path / "data" / "issuer-keys").iterdir())
        assert sorted(f.suffix for f in key_files) == [".key", ".root"]  # its secret, its root
        assert [oct(os.stat(f).st_mode & 0o777) for f in key_files] == ["0o600"] * 2
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _serve(data: Path, port_file: Path) -> tuple[subprocess.Popen[str], str]:
    """licentia-server as a process on ``data``; it and its address once it listens (its
    log goes to ``port_file`` + ``.log``)."""
    port_file.unlink(missing_ok=True)
    log = port_file.with_suffix(".log")
    with log.open("a") as err:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "licentia.services.server"),
                *("--data-dir", str(data), "--listen", "127.0.0.1:0"),
                *("--port-file", str(port_file)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=err,
            text=True,
        )
    deadline = time.monotonic() + 30
    while not (port_file.exists() and port_file.read_text().strip()):
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return proc, f"127.0.0.1:{port_file.read_text().strip()}"


def test_after_a_crash_a_lagging_clock_is_accepted_and_an_answered_read_stays_spent(
    tmp_path: Path,
) -> None:
    """SIGKILL a real server just after it answered a read, start it again on the same
    data directory: a call stamped seconds before the restart is accepted (the window does
    not start at the process's start), and the read replayed is refused (its nonce was in the
    store before its answer left)."""
    data, port_file = tmp_path / "data", tmp_path / "port"
    get_terms = method_path(registry_pb2, "GetTerms")
    body = registry_pb2.GetTermsRequest().SerializeToString(deterministic=True)
    key = PrivateKey.generate()
    proc, address = _serve(data, port_file)
    try:
        with grpc.insecure_channel(address) as ch:
            register_holder(Party(key, SignedChannel(ch, key)))
            read = sign_request(key, get_terms, body, int(time.time()))
            answer = raw_unary(ch, get_terms, body, read)
        lagging = sign_request(key, get_terms, body, int(time.time()) - 3)
        proc.kill()  # a crash: no drain, no clean close of the database
        proc.wait()
        proc, address = _serve(data, port_file)
        with grpc.insecure_channel(address) as ch:
            assert raw_unary(ch, get_terms, body, lagging) == answer
            with pytest.raises(ExchangeError) as e:
                raw_unary(ch, get_terms, body, read)
            assert e.value.reason == Reason.REPLAYED_REQUEST
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize(
    "argv",
    [
        ["--services", "registry,nonsense"],
        ["--max-term-days", "0"],
        ["--heartbeat-seconds", "0"],
        ["--workers", "4"],
        ["--db", "mysql://db.example/licentia"],
        ["--db", "sqlite:///"],
        ["--db", "postgresql://nobody@127.0.0.1:1/licentia"],  # nothing listens there
    ],
)
def test_misuse_of_the_server_command_exits_2(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from licentia.services.server import main

    assert main(["--data-dir", str(tmp_path / "d"), "--listen", "127.0.0.1:0", *argv]) == 2
    assert capsys.readouterr().err.startswith("licentia-server: error:")


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--listen", "localhost"], "--listen"),  # gRPC would listen on port 443
        (["--listen", "127.0.0.1:"], "--listen"),
        (["--listen", "127.0.0.1:99999"], "--listen"),
        (["--services", "verification", "--upstream", "localhost"], "--upstream"),
    ],
)
def test_an_address_without_a_port_is_a_usage_error(
    argv: list[str], flag: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from licentia.services.server import main

    umask = os.umask(0o022)
    try:
        assert main(["--data-dir", str(tmp_path / "d"), "--listen", "127.0.0.1:0", *argv]) == 2
        assert os.umask(0o022) == 0o022  # main ran under 077 and gave the caller's back
    finally:
        os.umask(umask)
    err = capsys.readouterr().err
    assert err.startswith(f"licentia-server: error: {flag} must be HOST:PORT")
    assert not (tmp_path / "d").exists()


def test_a_withdrawn_key_stops_what_it_signed_from_verifying(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ex = start_exchange(data)
    try:
        holder, adv = ex.party(1), ex.party(2)
        register_holder(holder)
        register_advertiser(adv)
        old = _licence(holder, adv)
    finally:
        ex.stop()
    key_id = parse_token(old).issuer_key_id.hex()
    cmd = [sys.executable, "-m", "licentia.services.server", "withdraw-key", "--data-dir"]
    out = subprocess.run(
        [*cmd, str(data), key_id], capture_output=True, text=True, timeout=60, check=True
    )
    assert f"withdrew issuer key {key_id}" in out.stdout
    assert "new issuer key" in out.stdout  # it was the key in use
    assert not (data / "issuer-keys" / f"{key_id}.key").exists()
    again = subprocess.run(
        [*cmd, str(data), key_id], capture_output=True, text=True, timeout=60, check=False
    )
    assert again.returncode == 1
    assert "no published issuer key" in again.stderr
    time.sleep(1.0 - time.time() % 1.0 + 0.05)  # the new key starts at the next second at most
    ex = start_exchange(data)
    try:
        holder, adv, platform = ex.party(1), ex.party(2), ex.party()
        register_platform(platform)
        assert reasons(verify(platform, adv, old, photo_use())) == [Reason.UNKNOWN_ISSUER_KEY]
        assert verify(platform, adv, _licence(holder, adv), photo_use()).allowed
    finally:
        ex.stop()


def test_a_key_withdrawn_while_the_exchange_runs_takes_effect_without_a_restart(
    tmp_path: Path,
) -> None:
    """`withdraw-key` is another process on the exchange's store: the running exchange picks
    the withdrawal up at its next key refresh, and signs with the key rotated in."""
    data = tmp_path / "data"
    ex = start_exchange(data)
    try:
        holder, adv, platform = ex.party(1), ex.party(2), ex.party()
        register_holder(holder)
        register_advertiser(adv)
        register_platform(platform)
        old = _licence(holder, adv)
        assert verify(platform, adv, old, photo_use()).allowed
        key_id = parse_token(old).issuer_key_id.hex()
        command = [sys.executable, "-m", "licentia.services.server", "withdraw-key"]
        subprocess.run(
            [*command, "--data-dir", str(data), key_id],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )

        def refused() -> bool:
            got = reasons(verify(platform, adv, old, photo_use()))
            return got == [Reason.UNKNOWN_ISSUER_KEY]

        wait_for(refused, 10)
        time.sleep(1.0 - time.time() % 1.0 + 0.05)  # the key rotated in starts within a second
        new = _licence(holder, adv)
        assert parse_token(new).issuer_key_id.hex() != key_id
        assert verify(platform, adv, new, photo_use()).allowed
    finally:
        ex.stop()
