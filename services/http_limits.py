"""The gateway's limits per client address, which uvicorn lacks (:mod:`.gateway` uses them).

- :class:`PerClient`: counts of something held, by client address, with a cap each.
- :func:`protocol`: uvicorn's HTTP/1.1 protocol with two limits more. A connection must send a
  complete request head (request line and headers) within ``head_seconds`` of opening, or of
  its previous answer, else it is closed; and one client address may hold at most
  ``per_client`` connections (one more is closed at once). Without them idle or trickling
  sockets fill uvicorn's ``limit_concurrency`` and every request is answered 503 for as long
  as they stay open. (A connection that is answered but goes on trickling a body nobody
  reads is closed the same way, ``head_seconds`` after its answer.)

Everything here runs on the gateway's event loop (one thread): no locks.
"""

from __future__ import annotations

import asyncio
import logging

from uvicorn.protocols.http.h11_impl import H11Protocol

from .counts import PerKey

#: Counts by client address (:class:`.counts.PerKey`).
PerClient = PerKey[str]


class _Protocol(H11Protocol):
    """See the module; :func:`protocol` makes one class per gateway with its limits."""

    per_client: PerClient = PerClient(1)
    head_seconds: float = 5.0

    _head_timer: asyncio.TimerHandle | None = None
    _counted: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        host = self.client[0] if self.client else ""
        if not self.per_client.take(host):
            logging.getLogger("licentia.gateway").info(
                "http.too_many_connections",
                extra={"peer": host, "open": self.per_client.held(host)},
            )
            self.transport.close()
            return
        self._counted = host
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._counted is not None:
            self.per_client.give(self._counted)
            self._counted = None
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        if self._serving():  # a whole request head has arrived: its call is under way
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and not self._serving():
            self._arm()  # waiting for the next request's head (or the rest of a body unread)

    def _serving(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self.loop.call_later(self.head_seconds, self._head_late)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_late(self) -> None:
        self._head_timer = None
        if not self._serving() and not self.transport.is_closing():
            self.transport.close()


def protocol(per_client: int, head_seconds: float) -> type[asyncio.Protocol]:
    """The protocol class (uvicorn's ``Config(http=…)``) of one gateway: at most
    ``per_client`` connections from one address, a request head within ``head_seconds``."""
    return type(
        "GatewayProtocol",
        (_Protocol,),
        {"per_client": PerClient(per_client), "head_seconds": head_seconds},
    )
