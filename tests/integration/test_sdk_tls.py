"""The SDKs' and ``licentia-verify``'s transport: TLS unless asked, or on a loopback address.

The exchange here speaks plain text on 127.0.0.1. Named as ``ipv4:127.0.0.1:PORT`` (a gRPC
target that is not read as a loopback address), the clients must try TLS and fail the
handshake with a clear ExchangeUnavailable; with ``insecure=True`` (``--insecure``) they
connect in plain text; on ``127.0.0.1:PORT`` they need no flag.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from licentia.checkpoint import vkey
from licentia.clients.auditor.cli import main as audit_main
from licentia.clients.channel import ExchangeUnavailable
from licentia.clients.holder import AsyncHolder, Holder
from licentia.clients.platform import Platform
from licentia.clients.verifier.cli import main as verify_main
from licentia.errors import Reason
from licentia.keys import PrivateKey

from .exchange_harness import (
    PHOTO_SHA,
    Exchange,
    issue_licence,
    register_advertiser,
    register_holder,
)


def _not_loopback(ex: Exchange) -> str:
    return "ipv4:" + ex.address


def test_a_non_loopback_address_is_tls_unless_insecure(ex: Exchange) -> None:
    where = _not_loopback(ex)
    tls = Platform.connect(where, PrivateKey.generate(), timeout=5)
    with tls, pytest.raises(ExchangeUnavailable) as e:
        tls.register("tlsplatform", "TLS")  # a TLS handshake against plain text
    assert e.value.reason == Reason.UNAVAILABLE
    with Platform.connect(where, PrivateKey.generate(), insecure=True) as plain:
        assert plain.register("plainplatform", "Plain").platform_id == "plainplatform"
    with Holder.connect(ex.address, PrivateKey.generate()) as local:  # loopback: no flag
        assert len(local.issuer_keys()) >= 1
    with pytest.raises(ValueError, match="insecure"):  # both: refused, not guessed
        Holder.connect(where, PrivateKey.generate(), tls_ca=b"PEM", insecure=True)

    async def aio() -> None:
        tls_client = AsyncHolder.connect(where, PrivateKey.generate(), timeout=5)
        try:
            with pytest.raises(ExchangeUnavailable):
                await tls_client.issuer_keys()
        finally:
            await tls_client.close()
        plain_client = AsyncHolder.connect(where, PrivateKey.generate(), insecure=True)
        try:
            assert len(await plain_client.issuer_keys()) >= 1
        finally:
            await plain_client.close()

    asyncio.run(aio())


def test_licentia_verify_is_tls_unless_insecure(
    ex: Exchange, capsys: pytest.CaptureFixture[str]
) -> None:
    holder, adv = ex.party(), ex.party()
    register_holder(holder)
    register_advertiser(adv)
    token = issue_licence(holder, adv).token
    use = [
        *("--category", "image", "--purpose", "personalised-advertising"),
        *("--medium", "online", "--territory", "FR", "--asset-sha256", PHOTO_SHA.hex()),
    ]
    where = _not_loopback(ex)
    assert verify_main(["--server", where, "--timeout", "5", token, *use]) == 3
    err = capsys.readouterr().err
    assert f"could not reach the exchange at {where}" in err
    assert "did not answer over TLS: for a local exchange without TLS add --insecure" in err
    assert verify_main(["--server", where, "--insecure", token, *use]) == 0
    assert capsys.readouterr().out == "ALLOW\n"
    assert verify_main(["--server", ex.address, token, *use]) == 0  # loopback: no flag
    assert capsys.readouterr().out == "ALLOW\n"
    with pytest.raises(SystemExit) as e:  # --insecure with --tls-ca: misuse, nothing sent
        verify_main(["--server", where, "--insecure", "--tls-ca", "ca.pem", token, *use])
    assert e.value.code == 2
    assert "--insecure turns TLS off" in capsys.readouterr().err


def test_licentia_audit_is_tls_unless_insecure(
    ex: Exchange, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The auditor reads what the exchange says of itself: never in plain text unasked."""
    key = PrivateKey.from_seed((ex.data_dir / "log.key").read_bytes())
    argv = ["--log-key", vkey(ex.app.deps.settings.log_origin, key.public), "--timeout", "5"]
    where = _not_loopback(ex)
    state = ["--state-dir", str(tmp_path / "state")]
    assert audit_main(["--server", where, *argv, *state]) == 2  # a TLS handshake: refused
    assert "did not answer over TLS: for a local exchange without TLS add --insecure" in (
        capsys.readouterr().err
    )
    assert audit_main(["--server", where, "--insecure", *argv, *state]) == 0
    assert audit_main(["--server", ex.address, *argv, *state]) == 0  # loopback: no flag
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        audit_main(["--server", where, "--insecure", "--tls-ca", "ca.pem", *argv, *state])
    assert e.value.code == 2
    assert "--insecure turns TLS off" in capsys.readouterr().err
