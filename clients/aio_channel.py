"""The asyncio side of a signed call, as the clients import it.

The implementation is the transport layer's (:mod:`licentia.transport.aio_channel`); this
module keeps the name the asyncio SDK and its users import.
"""

from __future__ import annotations

from licentia.transport.aio_channel import AsyncSignedChannel

__all__ = ["AsyncSignedChannel"]
