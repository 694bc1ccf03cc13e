"""The SDK's key-file helper: a key created on first use and the same one after, encrypted in
the wallet's format; the environment secret first; every bad input a clear error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from nacl.pwhash import argon2id

from licentia.clients.keyfile import KeyFileError, load_or_create_key, seed_text
from licentia.clients.wallet import keystore
from licentia.clients.wallet.keystore import KdfLimits
from licentia.keys import PrivateKey

FAST = KdfLimits(argon2id.OPSLIMIT_MIN, argon2id.MEMLIMIT_MIN)
ENV = "LICENTIA_TEST_ADVERTISER_KEY"


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.delenv("LICENTIA_KEY_PASSPHRASE", raising=False)


def test_created_on_first_use_then_the_same_key(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "acme.key"
    first = load_or_create_key(path, passphrase="correct horse", env=ENV, limits=FAST)
    assert path.stat().st_mode & 0o777 == 0o600
    doc = json.loads(path.read_text())
    assert doc["format"] == "licentia-wallet/1"  # the wallet's format, opened by its keystore
    assert seed_text(first) not in path.read_text()
    assert keystore.open_wallet(path, "correct horse").seed == first.seed
    assert load_or_create_key(path, passphrase="correct horse", env=ENV).seed == first.seed


def test_the_passphrase_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LICENTIA_KEY_PASSPHRASE", "from the environment")
    key = load_or_create_key(tmp_path / "k", env=ENV, limits=FAST)
    assert keystore.open_wallet(tmp_path / "k", "from the environment").seed == key.seed


def test_the_environment_secret_comes_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = PrivateKey.generate()
    monkeypatch.setenv(ENV, seed_text(key))
    assert load_or_create_key(tmp_path / "none", env=ENV).seed == key.seed
    assert not (tmp_path / "none").exists()  # no file written, no passphrase needed


@pytest.mark.parametrize(
    "value", ["not base64!", "AAAA", seed_text(PrivateKey.from_seed(bytes(32))) + "A"]
)
def test_a_bad_environment_secret_is_named(
    value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, value)
    with pytest.raises(KeyFileError, match=f"{ENV} is not a key: .*32-byte seed in base64url"):
        load_or_create_key(tmp_path / "k", passphrase="correct horse", env=ENV)


def test_refusals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "k"
    with pytest.raises(KeyFileError, match=r"no key file at .*, and .* is not set"):
        load_or_create_key(path, passphrase="correct horse", env=ENV, create=False)
    with pytest.raises(KeyFileError, match="at least 8 characters"):
        load_or_create_key(path, passphrase="short", env=ENV, limits=FAST)
    assert not path.exists()
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    with pytest.raises(KeyFileError, match=r"needs a passphrase: .*LICENTIA_KEY_PASSPHRASE"):
        load_or_create_key(path, env=ENV)
    assert not path.exists()  # never an unencrypted file
    load_or_create_key(path, passphrase="correct horse", env=ENV, limits=FAST)
    with pytest.raises(KeyFileError, match="wrong passphrase"):
        load_or_create_key(path, passphrase="wrong horse", env=ENV)
    path.chmod(0o644)
    with pytest.raises(KeyFileError, match="can be read by others"):
        load_or_create_key(path, passphrase="correct horse", env=ENV)
