"""How the SDKs, the wallet, ``licentia-verify``, ``licentia-audit`` and
``licentia-server deposit`` secure their channel to the exchange.

TLS is the default: checked against the system's CA store (the file Python's ``ssl`` names,
else gRPC's own roots), or against the PEM certificates given (``tls_ca``). Plain text only
when asked (``insecure=True``, ``--insecure``) or, for convenience, when the address is a
loopback one (an IP literal in ``127.0.0.0/8`` or ``::1``, or exactly ``localhost``): a
local exchange for development and tests, which nobody on a network can read or change.
Anything else, including an address this module cannot read (a ``dns:///`` or ``ipv4:``
target) and names gRPC resolves through DNS (``localhost.``, ``127.0.0.1.``), is TLS: a
mistake fails closed, never into plain text.
"""

from __future__ import annotations

import argparse
import ipaddress
import ssl
from collections.abc import Sequence
from pathlib import Path

import grpc  # type: ignore[import-untyped]
import grpc.aio  # type: ignore[import-untyped]

__all__ = [
    "TLS_HINT",
    "add_arguments",
    "aio_channel",
    "channel",
    "credentials",
    "from_flags",
    "is_loopback",
    "system_roots",
    "tls_failed",
]


#: What a person is told when the exchange did not answer over TLS (:func:`tls_failed`).
TLS_HINT = (
    "the exchange did not answer over TLS: for a local exchange without TLS add --insecure;"
    " for one whose certificate a private CA signed, --tls-ca FILE"
)


def add_arguments(ap: argparse.ArgumentParser, what: str) -> None:
    """A command's ``--tls-ca PEM`` and ``--insecure`` (``what``: what a man in the middle
    could do to it without TLS, e.g. "read and change the answers")."""
    ap.add_argument(
        "--tls-ca",
        type=Path,
        metavar="PEM",
        help="PEM certificate(s) to trust instead of the system's CA store",
    )
    ap.add_argument(
        "--insecure",
        action="store_true",
        help=f"talk to the exchange without TLS (a local exchange only: anyone on the way"
        f" could {what}); a loopback --server needs no flag",
    )


def tls_failed(message: str, *, insecure: bool) -> bool:
    """Whether a failed call's ``message`` says the TLS handshake failed (on a channel that
    tried TLS: not ``insecure``), so that :data:`TLS_HINT` says what to do."""
    text = message.lower()
    return not insecure and any(w in text for w in ("ssl", "tls", "handshake", "certificate"))


def is_loopback(address: str) -> bool:
    """Whether ``address`` (``host:port``, ``[v6]:port``, or a bare host) names this
    machine only: exactly ``localhost``, or an IP literal in ``127.0.0.0/8`` or ``::1``.
    Nothing else is: not ``localhost.`` or ``127.0.0.1.`` (names gRPC resolves through
    DNS), not a bracketed address followed by anything but ``:PORT``."""

    def is_port(text: str) -> bool:
        return text.isascii() and text.isdigit()

    if address.startswith("["):
        end = address.find("]")
        if end < 0:
            return False
        host, rest = address[1:end], address[end + 1 :]
        if rest and not (rest.startswith(":") and is_port(rest[1:])):
            return False
        try:
            return ipaddress.IPv6Address(host).is_loopback
        except ValueError:
            return False
    host = address
    if address.count(":") == 1:
        host, port = address.split(":")
        if not is_port(port):
            return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def system_roots() -> bytes | None:
    """The system's CA store as PEM (the file ``ssl`` names), or None for gRPC's own roots
    when there is none to read."""
    found = ssl.get_default_verify_paths().cafile
    if found is None:
        return None
    try:
        pem = Path(found).read_bytes()
    except OSError:
        return None
    return pem if b"-----BEGIN CERTIFICATE-----" in pem else None


def credentials(
    address: str, *, tls_ca: bytes | None = None, insecure: bool = False
) -> grpc.ChannelCredentials | None:
    """The TLS credentials of a channel to ``address``: checked against ``tls_ca`` (PEM)
    when given, else the system's CA store; None (plain text) with ``insecure`` or for a
    loopback address without ``tls_ca``. ``ValueError`` for ``tls_ca`` with ``insecure``."""
    if insecure:
        if tls_ca is not None:
            raise ValueError("insecure turns TLS off: it goes with no tls_ca")
        return None
    if tls_ca is None:
        if is_loopback(address):
            return None
        tls_ca = system_roots()
    return grpc.ssl_channel_credentials(root_certificates=tls_ca)


def from_flags(
    address: str,
    tls_ca: Path | None,
    insecure: bool,
    *,
    options: Sequence[tuple[str, int]] = (),
) -> grpc.Channel:
    """The channel a command's ``--tls-ca`` and ``--insecure`` (:func:`add_arguments`) ask
    for, to ``address``; ``ValueError`` saying what is wrong when both are given or the CA
    file cannot be read (a command's usage error)."""
    if insecure and tls_ca is not None:
        raise ValueError("--insecure turns TLS off: it goes with no --tls-ca")
    try:
        pem = None if tls_ca is None else tls_ca.read_bytes()
    except OSError as e:
        raise ValueError(f"--tls-ca {tls_ca}: cannot be read ({e.strerror})") from None
    return channel(address, tls_ca=pem, insecure=insecure, options=options)


def channel(
    address: str,
    *,
    tls_ca: bytes | None = None,
    insecure: bool = False,
    options: Sequence[tuple[str, int]] = (),
) -> grpc.Channel:
    """A channel to ``address``, secured as :func:`credentials` says."""
    creds = credentials(address, tls_ca=tls_ca, insecure=insecure)
    if creds is None:
        return grpc.insecure_channel(address, options=options)
    return grpc.secure_channel(address, creds, options=options)


def aio_channel(
    address: str,
    *,
    tls_ca: bytes | None = None,
    insecure: bool = False,
    options: Sequence[tuple[str, int]] = (),
) -> grpc.aio.Channel:
    """An asyncio channel to ``address``, secured as :func:`credentials` says."""
    creds = credentials(address, tls_ca=tls_ca, insecure=insecure)
    if creds is None:
        return grpc.aio.insecure_channel(address, options=options)
    return grpc.aio.secure_channel(address, creds, options=options)
