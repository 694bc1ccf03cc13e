"""Which addresses the clients reach in plain text without being asked (loopback only)."""

from __future__ import annotations

import pytest

from licentia.transport import tls


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1:7700", "127.8.9.10:1", "localhost:7700", "localhost", "[::1]:7700", "[::1]", "::1"],
)
def test_loopback_addresses(address: str) -> None:
    assert tls.is_loopback(address)
    assert tls.credentials(address) is None  # plain text, no flag needed


@pytest.mark.parametrize(
    "address",
    [
        "exchange.example:443",
        "10.0.0.1:7700",
        "[2001:db8::1]:7700",
        "localhost.example:7700",
        "ipv4:127.0.0.1:7700",  # a gRPC target not read here: TLS, fail closed
        "dns:///localhost:7700",
        "128.0.0.1:7700",
        "[::1:7700",
        "",
        # Names gRPC resolves through DNS, which may answer anything: TLS.
        "localhost.:7700",
        "LOCALHOST.:7700",
        "127.0.0.1.:7700",
        "localhost.",
        "Localhost:7700",
        # After "]" only ":PORT".
        "[::1]x:7700",
        "[::1]:7700/x",
        "[::1]:",
        "[::1].example:7700",
        "[127.0.0.1]:7700",
        "[localhost]:7700",
        "127.0.0.1:",
        "127.0.0.1:x",
    ],
)
def test_every_other_address_is_tls(address: str) -> None:
    assert not tls.is_loopback(address)
    assert tls.credentials(address) is not None
    assert tls.credentials(address, insecure=True) is None  # only when asked


def test_a_given_ca_is_tls_even_on_loopback() -> None:
    assert tls.credentials("127.0.0.1:7700", tls_ca=b"PEM") is not None
    with pytest.raises(ValueError, match="insecure"):
        tls.credentials("127.0.0.1:7700", tls_ca=b"PEM", insecure=True)
