"""The advertiser SDK: search, request, receive and present licences (sync and asyncio).

Find a holder's offer, ask for a licence, wait for the holder's consent, fetch the photo
and present the licence to a platform (the tests run exactly this):

```python
import time
from licentia.clients.advertiser import Advertiser
from licentia.keys import PrivateKey
from licentia.scope import IntendedUse
from licentia.vocabulary import DataCategory, Medium, Purpose

with Advertiser.connect("localhost:7700", PrivateKey.generate()) as adv:
    adv.register("Acme Ads", "FR")
    # Licences are paid from a prepaid balance, which the exchange's operator credits when
    # a payment arrives (licentia-server deposit ed25519:... 50000 BANK-REF). adv.balance()
    # and adv.statement() show it; a licence the balance cannot pay is refused.
    # An offer names nobody: the holder and her photo are references made for this
    # advertiser alone (docs/privacy.md); her display name only if she chose to show it.
    offer = next(adv.search(DataCategory.IMAGE, Purpose.ADVERTISING, territory="FR"))
    (photo_ref, *_) = offer.assets_in(DataCategory.IMAGE)
    asked = adv.request_licence(offer, [photo_ref], categories=[DataCategory.IMAGE],
        purposes=[Purpose.ADVERTISING], media=[Medium.ONLINE], territories=["FR"],
        not_after=int(time.time()) + 30 * 86400, price=offer.terms.price_for(30 * 86400))
    licence = adv.wait_for_decision(asked.request_id, timeout=3600).licence
    photo = licence.assets[0].sha256  # the licence, once she consented, names the asset
    content = adv.fetch_asset(licence.licence_id, photo)  # SHA-256 checked
    use = IntendedUse(DataCategory.IMAGE, Purpose.ADVERTISING, Medium.ONLINE, "FR", photo)
    print(adv.present(licence, "photoshare", use))  # "lpr1.…", for the platform
```

:class:`AsyncAdvertiser` has the same methods as coroutines and async iterators
(``async with AsyncAdvertiser.connect(...) as adv``). Values are frozen dataclasses
(:class:`Offer`, :class:`OfferedAsset`, :class:`LicenceRequest`, :class:`LicenceRecord`,
:class:`Termination`) with
:mod:`licentia.vocabulary` enums; every failure is an :class:`ExchangeError` carrying the
exchange's stable ``reason`` (never a ``grpc.RpcError``; ``MALFORMED`` for a response the SDK
cannot read). ``terminations()`` tells the
advertiser at once when a licence is revoked or its asset erased, so it can pull the
content.
"""

from licentia.states import LicenceState, RequestState, TerminationCause

from ..channel import ExchangeError, ExchangeUnavailable
from .aio import AsyncAdvertiser
from .common import (
    DecisionTimeout,
    LicenceRecord,
    LicenceRequest,
    Offer,
    OfferedAsset,
    Profile,
    Statement,
    StatementLine,
    Termination,
    Terms,
)
from .sdk import Advertiser

__all__ = [
    "Advertiser",
    "AsyncAdvertiser",
    "DecisionTimeout",
    "ExchangeError",
    "ExchangeUnavailable",
    "LicenceRecord",
    "LicenceRequest",
    "LicenceState",
    "Offer",
    "OfferedAsset",
    "Profile",
    "RequestState",
    "Statement",
    "StatementLine",
    "Termination",
    "TerminationCause",
    "Terms",
]
