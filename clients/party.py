"""What every party's SDK client shares: its key, its signed channel, connecting and closing.

:class:`PartyClient` (sync) and :class:`AsyncPartyClient` (asyncio) hold a party's key and a
channel that signs every call with it over the exact bytes sent; the advertiser and holder
SDKs add their calls on top. A client owns its channel: use it as a context manager, or call
``close``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import Self

import grpc  # type: ignore[import-untyped]
import grpc.aio  # type: ignore[import-untyped]

from licentia.keys import PrivateKey, PublicKey

from .aio_channel import AsyncSignedChannel
from .channel import SignedChannel

__all__ = ["CHANNEL_OPTIONS", "AsyncPartyClient", "PartyClient"]

#: Options of the channels a client opens itself (``connect``): messages up to 16 MiB back
#: (a page of licences, an export), keepalive pings once a minute.
CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
)


def _now() -> int:
    return int(time.time())


class PartyClient:
    """A party's client of the exchange, over ``channel`` with ``key``.

    ``timeout`` is the deadline of each unary call in seconds; ``clock`` gives the Unix
    seconds of request signatures (and presentations).
    """

    def __init__(
        self,
        channel: grpc.Channel,
        key: PrivateKey,
        *,
        timeout: float = 10.0,
        clock: Callable[[], int] = _now,
    ) -> None:
        self.key = key
        self.clock = clock
        self._channel = channel
        self._rpc = SignedChannel(channel, key, clock=clock, timeout=timeout)

    @classmethod
    def connect(
        cls, address: str, key: PrivateKey, *, tls_ca: bytes | None = None, timeout: float = 10.0
    ) -> Self:
        """A client of the exchange at ``address`` (``host:port``), over TLS checked
        against ``tls_ca`` (PEM) when given, else in plain text (tests, loopback)."""
        if tls_ca is None:
            channel = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
        else:
            creds = grpc.ssl_channel_credentials(root_certificates=tls_ca)
            channel = grpc.secure_channel(address, creds, options=CHANNEL_OPTIONS)
        return cls(channel, key, timeout=timeout)

    @property
    def public_key(self) -> PublicKey:
        """This party's public key (a holder's: the one licences in her name carry; an
        advertiser's: the licensee that licences name)."""
        return self.key.public

    def close(self) -> None:
        """Close the channel (open streams end)."""
        self._channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncPartyClient:
    """A party's asyncio client of the exchange, over ``channel`` with ``key`` (as
    :class:`PartyClient`; use it as an async context manager, or await :meth:`close`)."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        key: PrivateKey,
        *,
        timeout: float = 10.0,
        clock: Callable[[], int] = _now,
    ) -> None:
        self.key = key
        self.clock = clock
        self._channel = channel
        self._rpc = AsyncSignedChannel(channel, key, clock=clock, timeout=timeout)

    @classmethod
    def connect(
        cls, address: str, key: PrivateKey, *, tls_ca: bytes | None = None, timeout: float = 10.0
    ) -> Self:
        """A client of the exchange at ``address`` (``host:port``), over TLS checked
        against ``tls_ca`` (PEM) when given, else in plain text. Call it inside the event
        loop that will use the client."""
        if tls_ca is None:
            channel = grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
        else:
            creds = grpc.ssl_channel_credentials(root_certificates=tls_ca)
            channel = grpc.aio.secure_channel(address, creds, options=CHANNEL_OPTIONS)
        return cls(channel, key, timeout=timeout)

    @property
    def public_key(self) -> PublicKey:
        """This party's public key."""
        return self.key.public

    async def close(self) -> None:
        """Close the channel (open streams end)."""
        await self._channel.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
