"""The client side of a signed call, as the clients import it.

The implementation is the transport layer's (:mod:`licentia.transport.channel` and
:mod:`licentia.transport.errors`), shared with the exchange's verify-only replica; this
module keeps the names the SDKs, the wallet and their users import.
"""

from __future__ import annotations

from licentia.transport.channel import SignedChannel
from licentia.transport.errors import (
    DOMAIN,
    ExchangeError,
    ExchangeUnavailable,
    exchange_error,
)

__all__ = ["DOMAIN", "ExchangeError", "ExchangeUnavailable", "SignedChannel", "exchange_error"]
