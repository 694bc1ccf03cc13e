"""What the store contract's files share: constants, builders and the concurrency helper
(no fixtures: those are in conftest.py)."""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from collections.abc import Callable
from typing import Any

import pytest

from licentia.errors import LicentiaError, Reason
from licentia.examples import typical_claims
from licentia.keys import PrivateKey
from licentia.scope import Scope
from licentia.services import issuance
from licentia.services.model import (
    LicenceRow,
    Party,
    RequestRow,
    RequestState,
    Role,
    Terms,
)
from licentia.services.store import StaleVerdict, Store
from licentia.services.store.base import SpentNonce
from licentia.token import LicenceClaims, approve
from licentia.vocabulary import DataCategory, Medium, Purpose

NOW = 1_800_000_000
DAY = 86_400
THREADS = 16
ISSUER = PrivateKey.from_seed(b"\x01" * 32)
LICENSEE = PrivateKey.from_seed(b"\x03" * 32)
PRICE = 45_000  # typical_claims' price

Opener = Callable[[], Store]


# -- helpers -------------------------------------------------------------------------------
def _key(i: int) -> bytes:
    return PrivateKey.from_seed(i.to_bytes(32, "big")).public.raw


def _holder(i: int = 2) -> PrivateKey:
    return PrivateKey.from_seed(i.to_bytes(32, "big"))


def _party(key: bytes, role: Role, handle: str) -> Party:
    return Party(key, role, handle, handle.title(), "FR", NOW)


def _register(store: Store, holder: PrivateKey) -> None:
    for p in (
        _party(holder.public.raw, Role.HOLDER, f"h{holder.public.raw.hex()[:12]}"),
        _party(LICENSEE.public.raw, Role.ADVERTISER, "acme"),
    ):
        if store.party(p.key) is None:
            store.add_party(p)


def _claims(holder: PrivateKey, n: int, **changes: Any) -> LicenceClaims:
    return dataclasses.replace(typical_claims(ISSUER, holder, LICENSEE, NOW, n), **changes)


def _d(*parts: object) -> bytes:
    """A request digest for a keyed change (the services hash the request message)."""
    return hashlib.sha256(repr(parts).encode()).digest()


def _row(store: Store, claims: LicenceClaims) -> RequestRow:
    """A pending request for ``claims``, with the next status-list slot (its id: theirs).
    v1 claims name list 0: their indexes are taken from one list (one epoch for all)."""
    v2 = bool(claims.asset_salt)
    status_list, index = store.reserve_status_slot(
        claims.not_after, epoch_seconds=DAY if v2 else 1 << 40
    )
    c = dataclasses.replace(claims, status_index=index, status_list=status_list if v2 else 0)
    return RequestRow(
        request_id=c.licence_id,
        state=RequestState.PENDING,
        advertiser_key=c.licensee.raw,
        holder_key=c.holder_raw,
        claims=c.encode(),
        created_at=NOW,
        expires_at=NOW + DAY,
        updated_at=NOW,
    )


def _request(
    store: Store, claims: LicenceClaims, key: bytes = b"", digest: bytes | None = None
) -> RequestRow:
    return store.add_request(
        _row(store, claims),
        now=NOW,
        idempotency_key=key,
        digest=_d(key) if digest is None else digest,
    )


def _licence(row: RequestRow, holder: PrivateKey) -> issuance.Issuance:
    """The issuance of a request's licence, approved by its holder."""
    c = LicenceClaims.decode(row.claims)
    return issuance.prepare(row.request_id, c, row.claims, approve(holder, row.claims), ISSUER, NOW)


def _issue(store: Store, plan: issuance.Issuance) -> RequestRow:
    """Issue as the servicer does: decide over the live licences, again if they changed."""
    lic = plan.licence
    while True:
        live = store.live_licences(
            lic.holder_key, lic.not_before, lic.not_after, exclusive=lic.exclusive
        )
        try:
            return store.issue(plan, issuance.verdict(plan, live), NOW)
        except StaleVerdict:
            continue


def _issued(store: Store, holder: PrivateKey, n: int, **changes: Any) -> LicenceRow:
    """A licence issued for a new request (the advertiser is funded first)."""
    _register(store, holder)
    ref = f"fund-{holder.public.raw.hex()[:8]}-{n}"
    store.deposit(LICENSEE.public.raw, PRICE, ref, NOW, digest=_d(ref, PRICE))
    row = _request(store, _claims(holder, n, **changes))
    plan = _licence(row, holder)
    assert _issue(store, plan).state == RequestState.ISSUED
    stored = store.licence(plan.licence.licence_id)
    assert stored is not None
    return stored


def _reason(e: BaseException | None) -> Reason | None:
    assert e is None or isinstance(e, LicentiaError), repr(e)
    return None if e is None else e.reason


def _raises(reason: Reason, fn: Callable[[], object]) -> None:
    with pytest.raises(LicentiaError) as e:
        fn()
    assert e.value.reason == reason


def _terms(price: int = 100) -> Terms:
    scope = Scope.of(
        [DataCategory.IMAGE, DataCategory.NAME],
        [Purpose.ADVERTISING],
        [Medium.ONLINE, Medium.SOCIAL],
        ["FR", "DE"],
    )
    return Terms(
        scope, frozenset({Purpose.POLITICAL_CAMPAIGN}), "EUR", price, 90 * DAY, True, 15000, NOW
    )


def _concurrently(n: int, work: object) -> list[BaseException | None]:
    """Run ``work(i)`` for i in range(n) on n threads released together; what each raised."""
    gate = threading.Barrier(n)
    out: list[BaseException | None] = [None] * n

    def run(i: int) -> None:
        gate.wait()
        try:
            work(i)  # type: ignore[operator]
        except BaseException as e:  # noqa: BLE001 (collected for the test)
            out[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return out


def _nonce(key: bytes = b"n1", expires_at: int = NOW + 61, now: int = NOW) -> SpentNonce:
    return SpentNonce(key, expires_at, now, Reason.REPLAYED_REQUEST)
