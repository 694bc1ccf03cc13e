"""licentia-server's operator commands against a running exchange, through main(argv)."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest

from licentia.clients.channel import SignedChannel
from licentia.keys import PrivateKey
from licentia.services.app import build
from licentia.services.deps import Settings
from licentia.services.runtime import ServerSettings, client_channel, start
from licentia.services.server import main

from .exchange_harness import (
    Exchange,
    Party,
    needs_openssl,
    register_advertiser,
    self_signed_certificate,
)


def _deposit(ex: Exchange, *argv: str, data_dir: Path | None = None) -> int:
    return main(
        [
            "deposit",
            *argv,
            "--data-dir",
            str(data_dir or ex.data_dir),
            "--connect",
            ex.address,
        ]
    )


def test_deposit_credits_once_per_reference(
    ex: Exchange, capsys: pytest.CaptureFixture[str]
) -> None:
    adv = ex.party()
    register_advertiser(adv, funds=0)
    key = adv.key.public.text
    assert _deposit(ex, key, "2500", "SEPA-1") == 0
    assert capsys.readouterr().out.strip() == "credited 2500 (reference 'SEPA-1'); balance 2500"
    assert _deposit(ex, key, "2500", "SEPA-1") == 0
    assert capsys.readouterr().out.startswith("already credited 2500")
    assert ex.app.deps.store.ledger_check() == []


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (("ed25519:nope", "100", "R"), "the advertiser key"),
        (("KEY", "0", "R"), "positive number"),
        (("KEY", "-5", "R"), "positive number"),
    ],
)
def test_deposit_misuse_exits_2_and_credits_nothing(
    ex: Exchange, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], words: str
) -> None:
    adv = ex.party()
    register_advertiser(adv, funds=0)
    args = [adv.key.public.text if a == "KEY" else a for a in argv]
    assert _deposit(ex, *args) == 2
    assert words in capsys.readouterr().err
    party = ex.app.deps.store.party(adv.key.public.raw)
    assert party is not None
    assert ex.app.deps.store.statement(party, 0, 10).lines == ()  # nothing was credited


def test_deposit_without_the_operator_key_or_for_a_stranger_fails(
    ex: Exchange, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stranger = ex.party()
    assert _deposit(ex, stranger.key.public.text, "100", "R", data_dir=tmp_path / "x") == 2
    assert "no operator key" in capsys.readouterr().err
    assert _deposit(ex, stranger.key.public.text, "100", "R") == 1  # not an advertiser
    assert "NOT_FOUND" in capsys.readouterr().err


def test_deposit_to_an_exchange_not_running_says_where_it_looked(
    ex: Exchange, capsys: pytest.CaptureFixture[str]
) -> None:
    """An operator whose exchange listens elsewhere is told the address tried and the flag
    that names another (exit 3, as the wallet and licentia-verify), not a raw gRPC status."""
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{s.getsockname()[1]}"
    adv = ex.party()
    register_advertiser(adv, funds=0)
    argv = ["deposit", adv.key.public.text, "100", "R-1", "--data-dir", str(ex.data_dir)]
    assert main([*argv, "--connect", closed]) == 3
    err = capsys.readouterr().err
    assert f"could not reach the exchange at {closed}" in err, err
    assert "--connect" in err, err
    assert "UNAVAILABLE" not in err, err


def test_deposit_is_tls_unless_loopback_or_insecure(
    ex: Exchange, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The operator's deposit keeps the clients' TLS rule (licentia.transport.tls): an
    address it does not read as loopback (here a gRPC ``ipv4:`` target) is TLS, so a plain
    exchange there fails with the hint and credits nothing; ``--insecure`` credits."""
    adv = ex.party()
    register_advertiser(adv, funds=0)
    argv = ["deposit", adv.key.public.text, "700", "R-TLS", "--data-dir", str(ex.data_dir)]
    target = f"ipv4:{ex.address}"
    assert main([*argv, "--connect", target]) == 3
    err = capsys.readouterr().err
    assert "--insecure" in err, err
    assert "--tls-ca" in err, err
    assert "Traceback" not in err
    party = ex.app.deps.store.party(adv.key.public.raw)
    assert party is not None
    assert ex.app.deps.store.statement(party, 0, 10).lines == ()
    # A private CA file that cannot be read: a clear error, exit 2, nothing credited.
    missing = tmp_path / "ca.pem"
    assert main([*argv, "--connect", target, "--tls-ca", str(missing)]) == 2
    err = capsys.readouterr().err
    assert f"--tls-ca {missing}: cannot be read" in err, err
    assert main([*argv, "--connect", target, "--tls-ca", str(missing), "--insecure"]) == 2
    assert "--insecure turns TLS off" in capsys.readouterr().err
    assert ex.app.deps.store.statement(party, 0, 10).lines == ()
    # Told --insecure, it talks plain text and credits.
    assert main([*argv, "--connect", target, "--insecure"]) == 0
    assert capsys.readouterr().out.startswith("credited 700")


@needs_openssl
def test_deposit_over_tls_with_a_private_ca(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An exchange serving TLS under a private CA: ``--tls-ca`` credits, even on loopback."""
    cert, key = self_signed_certificate(tmp_path / "tls")
    log = logging.getLogger("licentia.test")
    app = build(tmp_path / "data", settings=Settings(heartbeat_seconds=0.5), log=log)
    settings = ServerSettings(address="127.0.0.1:0", tls_cert=cert, tls_key=key)
    ex = Exchange(tmp_path / "data", app, start(settings, app.handlers, app.service_names, log))
    channel = client_channel(f"localhost:{ex.server.port}", tls_ca=cert.read_bytes())
    ex.channels.append(channel)
    try:
        adv_key = PrivateKey.generate()
        register_advertiser(Party(adv_key, SignedChannel(channel, adv_key), ex), funds=0)
        argv = ["deposit", adv_key.public.text, "900", "R-CA", "--data-dir", str(ex.data_dir)]
        argv += ["--connect", ex.address, "--tls-ca", str(cert)]
        assert main(argv) == 0
        assert capsys.readouterr().out.startswith("credited 900")
    finally:
        ex.stop()
