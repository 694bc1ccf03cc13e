"""The holder SDK: register, offer, answer requests, revoke and get paid (sync and asyncio).

A person registers, declares her photo, sets her terms, then reads her inbox and approves
what she agrees to, signing the exact claims with her key (the tests run exactly this):

```python
import os

from licentia import pairwise
from licentia.clients.holder import Holder
from licentia.keys import PrivateKey
from licentia.token import LicenceClaims
from licentia.vocabulary import DataCategory, Medium, Purpose

offer = {"categories": [DataCategory.IMAGE], "purposes": [Purpose.ADVERTISING]}
key = PrivateKey.generate()  # keep it: licentia.clients.keyfile, or the wallet's file
secret = pairwise.holder_secret_from_device_seed(key.seed)  # or from her recovery phrase
with Holder.connect(os.environ.get("LICENTIA_SERVER", "localhost:7700"), key) as me:
    me.register("ada")
    me.declare_asset(DataCategory.IMAGE, b"my photo", "photo.jpg", upload=True)
    me.set_terms(**offer, media=[Medium.ONLINE], territories=["FR"], price_per_day=150)
    for request in me.inbox():  # what advertisers ask for, with their exact claims
        print(LicenceClaims.decode(request.claims).scope)  # read before signing
        # The consent signature over those claims, by her key for this advertiser alone.
        licence = me.approve(request, holder_secret=secret)
        print(me.revoke(licence.licence_id).receipt.sequence)  # at any moment
```

:class:`AsyncHolder` has the same methods as coroutines
(``async with AsyncHolder.connect(...) as me``). Answers are the exchange's records
(``licentia.v1`` messages); every failure is an :class:`ExchangeError` carrying the
exchange's stable ``reason`` (never a ``grpc.RpcError``), as in the advertiser SDK. The
``licentia-wallet`` command line is this SDK with a passphrase-protected key and words.
"""

from ..channel import ExchangeError, ExchangeUnavailable
from .aio import AsyncHolder
from .common import Revocation, SignedRule, new_idempotency_key, standing_rule
from .sdk import Holder

__all__ = [
    "AsyncHolder",
    "ExchangeError",
    "ExchangeUnavailable",
    "Holder",
    "Revocation",
    "SignedRule",
    "new_idempotency_key",
    "standing_rule",
]
