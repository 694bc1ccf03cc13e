"""The config file's rules (services/config.py): secrets never printed, variables found."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from licentia.services import config


@pytest.mark.parametrize(
    ("key", "value", "shown"),
    [
        ("db", "postgresql://app:s3cret@db:5432/lic", "postgresql://app:***@db:5432/lic"),
        ("db", "postgresql://app@db/lic?password=s3cret&sslmode=require",
         "postgresql://app@db/lic?password=***&sslmode=require"),
        ("db", "postgresql://app@db/lic", "postgresql://app@db/lic"),
        ("db", "", ""),
        ("listen", "0.0.0.0:7700", "0.0.0.0:7700"),
        ("webhook-secret", "abc", "***"),
    ],
)  # fmt: skip
def test_secrets_are_redacted(key: str, value: str, shown: str) -> None:
    assert config.redact(key, value) == shown
    assert "s3cret" not in config.render([config.Setting(key, value, "file")])


def test_the_variable_is_read_from_the_help_line() -> None:
    p = argparse.ArgumentParser()
    a = p.add_argument("--x", help="a thing [LICENTIA_X]")
    b = p.add_argument("--y", help="a thing without one")
    assert config.env_name(a) == "LICENTIA_X"
    assert config.env_name(b) is None


def test_a_rendered_config_is_toml_the_server_reads_back(tmp_path: Path) -> None:
    settings = [
        config.Setting("listen", "127.0.0.1:7700", "file"),
        config.Setting("workers", 40, "flag"),
        config.Setting("follower", False, "default"),
        config.Setting("retention-days", 90.0, "default"),
        config.Setting("tls-cert", None, "default"),
        config.Setting("data-dir", Path("/var/lib/licentia"), "file"),
    ]
    written = tmp_path / "c.toml"
    written.write_text(config.render(settings))
    assert config.read(written) == {
        "listen": "127.0.0.1:7700",
        "workers": 40,
        "follower": False,
        "retention-days": 90.0,
        "data-dir": "/var/lib/licentia",
    }


def test_an_oversized_or_binary_file_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * (config.MAX_CONFIG_BYTES + 1))
    with pytest.raises(config.ConfigError, match="larger than"):
        config.read(big)
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe")
    with pytest.raises(config.ConfigError, match="not TOML"):
        config.read(binary)
