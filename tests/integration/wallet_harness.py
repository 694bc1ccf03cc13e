"""A wallet driven through ``main(argv)``, for the wallet's integration tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from licentia.clients.wallet.cli import main

from .exchange_harness import PHOTO

PASS = "correct horse battery"


class Wallet:
    """Runs the wallet's main() with a wallet file, a passphrase file and a server."""

    def __init__(self, tmp: Path, server: str, capsys: pytest.CaptureFixture[str]) -> None:
        self.path = tmp / "home" / "wallet.json"
        tmp.mkdir(parents=True, exist_ok=True)
        self.pass_file = tmp / "pass"
        self.pass_file.write_text(PASS + "\n")
        self.server = server
        self.capsys = capsys

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = main(
            [
                *argv,
                "--wallet",
                str(self.path),
                "--server",
                self.server,
                "--insecure",  # the test exchange talks plain gRPC on loopback
                "--passphrase-file",
                str(self.pass_file),
            ]
        )
        out = self.capsys.readouterr()
        return code, out.out, out.err

    def json(self, *argv: str) -> Any:
        code, out, err = self(*argv, "--json")
        assert code == 0, err
        return json.loads(out)


def ready_wallet(
    tmp_path: Path,
    server: str,
    capsys: pytest.CaptureFixture[str],
    handle: str = "alice",
) -> Wallet:
    """A new wallet under ``tmp_path / handle`` (no recovery phrase), registered under
    ``handle`` with a photo and terms (:func:`set_up`)."""
    w = Wallet(tmp_path / handle, server, capsys)
    assert w("init", "--yes", "--no-recovery")[0] == 0
    set_up(w, tmp_path / handle, handle)
    return w


def set_up(w: Wallet, tmp_path: Path, handle: str = "alice") -> None:
    """Register ``w`` under ``handle`` with a photo (stored) and terms for advertising."""
    assert w("register", "--handle", handle, "--name", "Alice")[0] == 0
    set_up_assets_and_terms(w, tmp_path)


def set_up_assets_and_terms(w: Wallet, tmp_path: Path) -> None:
    """Give the registered ``w`` a photo (stored) and terms for advertising."""
    photo = tmp_path / "me.png"
    photo.write_bytes(PHOTO)
    code, out, err = w("assets", "add", str(photo), "--category", "image", "--upload")
    assert code == 0, err
    assert "stored at the exchange" in out
    code, out, err = w(
        "terms",
        "set",
        "--categories",
        "image,name",
        "--purposes",
        "marketing",
        "--refuse",
        "direct-marketing",
        "--media",
        "online,social",
        "--territories",
        "EU",
        "--price-per-day",
        "1.00",
        "--max-days",
        "90",
    )
    assert code == 0, err
    assert "Never for:        direct-marketing" in out
