"""Retention and account erasure in the store, on both backends: which rows a sweep erases
and when, and what deleting an account erases, keeps and refuses."""

from __future__ import annotations

from typing import Any

from licentia.errors import Reason
from licentia.methods import path
from licentia.scope import Scope
from licentia.services import convert
from licentia.services.model import AssetRow, Cause, RequestState, Role, StandingRuleRow, Terms
from licentia.services.store import Store
from licentia.v1 import registry_pb2, transparency_pb2
from licentia.vocabulary import DataCategory, Medium, Purpose

from .harness import DAY, NOW, _claims, _holder, _issued, _party, _raises, _request

KEEP = 90 * DAY
CALL = transparency_pb2.SignedCall(method=path(registry_pb2, "DeleteAccount"))


def _count(store: Store, sql: str, *params: Any) -> int:
    return int(store._rows(sql, params)[0][0])  # type: ignore[attr-defined]


def test_retention_waits_for_the_last_money_movement_then_erases_personal_fields(
    store: Store,
) -> None:
    holder = _holder()
    revoked = _issued(store, holder, 1)
    store.revoke(revoked.licence_id, NOW + 10, Cause.REVOKED, b"")
    running = _issued(store, holder, 2)  # 90-day term, its money not settled
    declined = _request(store, _claims(holder, 3))
    store.finish_request(declined.request_id, RequestState.DECLINED, NOW + 5, reason="no")
    pending = _request(store, _claims(holder, 4))  # expires NOW + DAY, unanswered
    postings = "SELECT count(*) FROM postings WHERE licence_id = ?"
    ledger_rows = _count(store, postings, revoked.licence_id)
    assets = "SELECT count(*) FROM licence_assets WHERE licence_id = ?"
    assert _count(store, assets, revoked.licence_id) > 0

    # One second early: nothing erased; the running licence's term is over, so its money is
    # closed (paid, refunded), which starts its own retention period.
    done = store.sweep_retention(NOW + 5 + KEEP - 1, KEEP, batch=10)
    assert (done.closed, done.licences, done.requests) == (1, 0, 0)
    closed_at = NOW + 5 + KEEP - 1
    done = store.sweep_retention(NOW + 5 + KEEP, KEEP, batch=10)
    assert (done.closed, done.licences, done.requests) == (0, 0, 1)
    erased = store.request(declined.request_id)
    assert erased is not None
    assert (erased.claims, erased.reason, erased.state) == (b"", "", RequestState.DECLINED)
    done = store.sweep_retention(NOW + 10 + KEEP, KEEP, batch=10)
    assert (done.closed, done.licences, done.requests) == (0, 1, 0)
    assert store.sweep_retention(NOW + 10 + KEEP, KEEP, batch=10).total == 0
    gone = store.licence(revoked.licence_id)
    assert gone is not None
    assert (gone.token, gone.consent_key, gone.licensee_device) == ("", b"", b"")
    assert (gone.asset_digests, gone.consent_device, gone.plain_assets) == (b"", b"", ())
    record = convert.licence_to(gone, NOW + 11 + KEEP)  # still answers its parties
    assert (record.erased, list(record.asset_sha256), record.consent_key) == (True, [], b"")
    assert (gone.licence_id, gone.holder_key, gone.status_index, gone.revoked_at) == (
        revoked.licence_id,
        revoked.holder_key,
        revoked.status_index,
        NOW + 10,
    )
    issued_request = store.request(revoked.request_id)
    assert issued_request is not None
    assert issued_request.claims == b""
    assert _count(store, assets, gone.licence_id) == 0
    assert _count(store, postings, revoked.licence_id) == ledger_rows
    still = store.licence(running.licence_id)
    assert still is not None
    assert still.token == running.token

    done = store.sweep_retention(pending.expires_at + KEEP, KEEP, batch=10)
    assert done.requests == 1
    expired = store.request(pending.request_id)
    assert expired is not None
    assert (expired.state, expired.claims, expired.updated_at) == (
        RequestState.EXPIRED,
        b"",
        pending.expires_at,
    )
    assert store.sweep_retention(closed_at + KEEP - 1, KEEP, batch=10).licences == 0
    assert store.sweep_retention(closed_at + KEEP, KEEP, batch=10).licences == 1


def test_erasing_an_account_keeps_the_ledger_and_refuses_her_keys(store: Store) -> None:
    holder, other = _holder(2), _holder(5)
    live = _issued(store, holder, 1)
    earning = _issued(store, other, 2)
    key = holder.public.raw
    call = CALL.SerializeToString()

    # Money owed (a day of a licence earned): refused, and nothing changed.
    _raises(Reason.BALANCE_OWED, lambda: store.erase_account(other.public.raw, NOW + DAY, call))
    left = store.licence(earning.licence_id)
    assert left is not None
    assert left.revoked_at == 0
    assert store.party(other.public.raw) is not None

    done = store.erase_account(key, NOW, call)  # nothing earned yet: the advertiser refunded
    assert [e.licence_id for e in done.revocations] == [live.licence_id]
    assert done.revocations[0].cause == Cause.ERASED
    assert "parties" in done.erased
    assert store.party(key) is None
    assert store.key_owner(key) is None
    assert store.key_erased(key)
    assert not store.key_erased(other.public.raw)
    revoked = store.licence(live.licence_id)
    assert revoked is not None
    assert (revoked.revoked_at, revoked.token) == (NOW, "")
    assert _count(store, "SELECT count(*) FROM postings WHERE licence_id = ?", live.licence_id)
    _raises(Reason.NOT_FOUND, lambda: store.erase_account(key, NOW, call))
    # A request the servicer prepared before the deletion is not stored after it.
    _raises(Reason.NOT_FOUND, lambda: _request(store, _claims(holder, 9)))
    _raises(
        Reason.ACCOUNT_ERASED,
        lambda: store.add_party(_party(key, Role.HOLDER, "again")),
    )
    # Writes the servicer authenticated before the deletion (calls racing it) are refused
    # inside their own change, under the lock the deletion holds: nothing is left behind.
    asset = AssetRow(key, b"\x44" * 32, DataCategory.IMAGE, "late", 0, False, NOW)
    terms = Terms(
        scope=Scope.of([DataCategory.IMAGE], [Purpose.MARKETING], [Medium.ONLINE], ["EU"]),
        refused_purposes=frozenset(),
        currency="EUR",
        price_per_day_minor=100,
        max_term_seconds=90 * DAY,
        exclusivity_offered=False,
        exclusivity_multiplier_bps=10_000,
    )
    rule = StandingRuleRow(b"\x45" * 16, key, b"rule", b"sig", NOW)
    for late in (
        lambda: store.put_asset(asset, b"bytes"),
        lambda: store.set_terms(key, terms),
        lambda: store.add_rule(rule),
        lambda: store.add_payout_destination(key, "FR76 1", NOW, NOW, limit=10),
    ):
        _raises(Reason.ACCOUNT_ERASED, late)
    for table in ("assets", "terms", "standing_rules", "payout_destinations"):
        assert _count(store, f"SELECT count(*) FROM {table} WHERE holder_key = ?", key) == 0
