"""The advertiser SDK: search, request, receive and present licences (sync and asyncio).

Find a holder's offer, ask for a licence, wait for the holder's consent, fetch the photo
and present the licence to a platform, with the key kept between runs
(:mod:`licentia.clients.keyfile`) and every way it can stop short said (the README's
example; the tests run exactly this):

```python
import os
import time
from pathlib import Path

from licentia.clients.advertiser import (
    Advertiser,
    DecisionTimeout,
    ExchangeError,
    ExchangeUnavailable,
    RequestState,
)
from licentia.clients.keyfile import KeyFileError, load_or_create_key
from licentia.errors import Reason
from licentia.scope import IntendedUse
from licentia.vocabulary import DataCategory, Medium, Purpose

EXCHANGE = os.environ.get("LICENTIA_SERVER", "localhost:7700")
TERM = 30 * 86400
try:
    key = load_or_create_key("acme.key")  # the same key every run
except KeyFileError as e:  # a wrong passphrase, a file others may read, ...
    raise SystemExit(f"acme.key: {e}") from None


def photo_licence(adv: Advertiser):
    # A licence for a photo online in France, or None (and why) when there is none yet.
    offer = next(adv.search(DataCategory.IMAGE, Purpose.ADVERTISING, territory="FR"), None)
    if offer is None:
        print("no holder offers a photo for advertising in France yet")
        return None
    (photo_ref, *_) = offer.assets_in(DataCategory.IMAGE)  # references, for this advertiser
    price = offer.terms.price_for(TERM)
    if adv.balance() < price:
        print(f"the licence costs {price}: deposit more for {adv.public_key.text}")
        return None
    try:
        asked = adv.request_licence(
            offer,
            [photo_ref],
            categories=[DataCategory.IMAGE],
            purposes=[Purpose.ADVERTISING],
            media=[Medium.ONLINE],
            territories=["FR"],
            not_after=int(time.time()) + TERM,
            price=price,
        )
        if asked.state == RequestState.PENDING:  # else a standing rule of hers answered
            print(f"asked: request {asked.request_id.hex()} waits for her answer", flush=True)
        decided = adv.wait_for_decision(asked.request_id, timeout=60)
    except DecisionTimeout:
        print(f"no answer yet: request {asked.request_id.hex()} is pending")
        return None
    except ExchangeError as e:  # e.g. OUTSIDE_TERMS, with the field and what is offered
        print(f"refused: {e.reason.name}: {e.message}")
        return None
    if decided.state != RequestState.ISSUED:  # DECLINED (her reason), EXPIRED, ...
        print(f"not licensed: {decided.state.name} {decided.reason}")
        return None
    return decided.licence


with Advertiser.connect(EXCHANGE, key) as adv:
    try:
        adv.register("Acme Ads", "FR")
    except ExchangeUnavailable as e:  # not started, or LICENTIA_SERVER names another
        raise SystemExit(f"could not reach the exchange at {EXCHANGE}: {e.message}") from None
    except ExchangeError as e:
        if e.reason != Reason.ALREADY_EXISTS:  # registered by an earlier run
            raise
    licence = photo_licence(adv)
    if licence is not None:
        photo = licence.assets[0].sha256  # the licence, once she consented, names the asset
        content = adv.fetch_asset(licence.licence_id, photo)  # SHA-256 checked
        use = IntendedUse(DataCategory.IMAGE, Purpose.ADVERTISING, Medium.ONLINE, "FR", photo)
        presentation = adv.present(licence, "photoshare", use)  # "lpr1.…", for the platform
        print(presentation)
        # What the platform is handed with the post: the token, the presentation, the photo.
        Path("licence.txt").write_text(licence.token)
        Path("presentation.txt").write_text(presentation)
        Path("licensed-photo.jpg").write_bytes(content)
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
from .credentials import ContentCertificate
from .sdk import Advertiser

__all__ = [
    "Advertiser",
    "AsyncAdvertiser",
    "ContentCertificate",
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
