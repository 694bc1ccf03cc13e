"""Licentia's transport: everything that talks to an exchange over gRPC.

The layer between the wire and the parties' code, shared by the clients
(``licentia.clients``: SDKs, wallet, verifier, auditor) and the exchange's verify-only
replica (``licentia.services.replica``) and operator commands; it imports only the protocol
core (``licentia``), never ``services`` or ``clients``:

- :mod:`~licentia.transport.errors`: the one mapper from a failed gRPC call to an
  :class:`ExchangeError` carrying the server's ``google.rpc.ErrorInfo`` reason;
- :mod:`~licentia.transport.channel` and :mod:`~licentia.transport.aio_channel`: signed
  calls over a sync or asyncio channel (the request bytes serialized once, signed, sent);
- :mod:`~licentia.transport.http`: calls through the exchange's HTTP/JSON gateway, signed
  over the exact JSON body (the recipe for other languages; standard library only);
- :mod:`~licentia.transport.tls`: how a channel is secured (TLS by default, plain text on a
  loopback address or when asked), shared by the clients and ``licentia-server deposit``;
- :mod:`~licentia.transport.follow`: the :class:`StatusFollower`, an exchange's issuer keys
  and status list followed live over ``WatchRevocations`` (threads, clock, backoff).

The core (``licentia``) does no I/O; whatever needs a socket, a thread or a clock is here.
"""

from .aio_channel import AsyncSignedChannel
from .channel import SignedChannel
from .errors import ExchangeError, ExchangeUnavailable, exchange_error
from .follow import GrpcUpstream, StatusFollower, Upstream

__all__ = [
    "AsyncSignedChannel",
    "ExchangeError",
    "ExchangeUnavailable",
    "GrpcUpstream",
    "SignedChannel",
    "StatusFollower",
    "Upstream",
    "exchange_error",
]
