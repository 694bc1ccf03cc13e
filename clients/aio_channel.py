"""The asyncio side of a signed call, as the clients import it.

The implementation is the transport layer's (:mod:`licentia.transport.aio_channel`); this
module keeps the name the asyncio SDK and its users import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # mypy checks transport/ as `transport` (README "Layout")
    from transport.aio_channel import AsyncSignedChannel
else:
    from licentia.transport.aio_channel import AsyncSignedChannel

__all__ = ["AsyncSignedChannel"]
