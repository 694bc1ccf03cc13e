"""The decision to issue, as pure functions of values; and the shape that keeps it so: the
rule does no I/O, the store takes values (no callables) and calls no rule back."""

from __future__ import annotations

import ast
import dataclasses
import inspect
from pathlib import Path
from typing import Any, get_type_hints

import pytest

from licentia.errors import LicentiaError, Reason
from licentia.examples import NAME_SHA256, PHOTO_SHA256, typical_claims, typical_rule
from licentia.keys import PrivateKey
from licentia.scope import Scope
from licentia.services import issuance, ledger
from licentia.services.model import AssetRow, LicenceRow, StandingRuleRow, Terms
from licentia.services.store.base import Store
from licentia.token import (
    LicenceClaims,
    LogPromise,
    StandingConsent,
    approve,
    commit_rule,
    parse_token,
    salted_digest,
    sign_standing_rule,
)
from licentia.vocabulary import DataCategory, Medium, Purpose

DAY = 86400
NOW = 1_800_000_000
SALT = b"\x0a" * 16
ISSUER = PrivateKey.from_seed(b"\x01" * 32)
HOLDER = PrivateKey.from_seed(b"\x02" * 32)
LICENSEE = PrivateKey.from_seed(b"\x03" * 32)
SERVICES = Path(__file__).resolve().parents[2] / "services"
TERMS = Terms(
    scope=Scope.of(
        [DataCategory.IMAGE, DataCategory.NAME], [Purpose.MARKETING], [Medium.ONLINE], ["EU"]
    ),
    refused_purposes=frozenset(),
    currency="EUR",
    price_per_day_minor=100,
    max_term_seconds=90 * DAY,
    exclusivity_offered=True,
    exclusivity_multiplier_bps=20_000,
)
DECLARED = [
    AssetRow(HOLDER.public.raw, PHOTO_SHA256, DataCategory.IMAGE, "", 0, False, NOW),
    AssetRow(HOLDER.public.raw, NAME_SHA256, DataCategory.NAME, "", 0, False, NOW),
]


def _check(**changes: Any) -> issuance.Draft:
    kw: dict[str, Any] = {
        "holder_key": HOLDER.public.raw,
        "advertiser_key": LICENSEE.public.raw,
        "terms": TERMS,
        "declared": DECLARED,
        "scope": Scope.of([DataCategory.IMAGE], [Purpose.ADVERTISING], [Medium.ONLINE], ["FR"]),
        "digests": [PHOTO_SHA256],
        "not_before": 0,
        "not_after": NOW + 10 * DAY,
        "offered_price": 5_000,
        "price_per_use": 0,
        "max_uses": 0,
        "exclusive": False,
        "currency": "EUR",
        "fee_bps": 1000,
        "max_term_cap": 365 * DAY,
        "at": NOW,
    }
    return issuance.check_request(**(kw | changes))


def test_a_request_within_the_terms_becomes_a_draft_and_its_claims() -> None:
    draft = _check()
    assert (draft.not_before, draft.not_after) == (NOW, NOW + 10 * DAY)
    assert [a.sha256 for a in draft.assets] == [PHOTO_SHA256]
    assert (draft.price.amount_minor, draft.price.fee_bps) == (5_000, 1000)
    claims = draft.claims(
        licence_id=b"\x07" * 16,
        issuer_key_id=ISSUER.public.key_id,
        status_index=9,
        at=NOW,
        asset_salt=SALT,
    )
    # v2 claims: no holder key before she consents, the assets salted for this licence.
    assert (claims.status_index, claims.issued_at, claims.holder) == (9, NOW, None)
    assert [a.sha256 for a in claims.assets] == [salted_digest(SALT, PHOTO_SHA256)]
    assert claims.asset_category(PHOTO_SHA256) == DataCategory.IMAGE
    assert issuance.plain_assets(claims, DECLARED) == draft.assets
    with pytest.raises(LicentiaError) as e:  # an asset erased since the request
        issuance.plain_assets(claims, DECLARED[1:])
    assert e.value.reason == Reason.NOT_FOUND


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"not_after": NOW}, Reason.INVALID_TERM),
        ({"not_before": NOW - 301}, Reason.INVALID_TERM),
        ({"not_after": (1 << 62) + 1}, Reason.INVALID_TERM),
        ({"price_per_use": 5}, Reason.INVALID_REQUEST),
        ({"offered_price": 10**12 + 1}, Reason.INVALID_REQUEST),
        ({"offered_price": 1}, Reason.PRICE_TOO_LOW),
        ({"digests": [b"\x00" * 32]}, Reason.NOT_FOUND),
        ({"not_after": NOW + 91 * DAY}, Reason.INVALID_TERM),
    ],
)
def test_a_request_outside_the_terms_or_limits_is_refused(
    changes: dict[str, Any], reason: Reason
) -> None:
    with pytest.raises(LicentiaError) as e:
        _check(**changes)
    assert e.value.reason == reason


def _rule_row(**changes: Any) -> StandingRuleRow:
    rule = dataclasses.replace(typical_rule(HOLDER, NOW), **changes)
    consent = sign_standing_rule(HOLDER, rule)
    return StandingRuleRow(
        rule.rule_id, HOLDER.public.raw, consent.rule_bytes, consent.signature, NOW
    )


def test_the_covering_rule_is_one_in_force_never_for_a_sensitive_use() -> None:
    plain = typical_claims(ISSUER, HOLDER, LICENSEE, NOW)
    claims = dataclasses.replace(
        plain,
        holder=None,
        asset_salt=SALT,
        assets=tuple(
            dataclasses.replace(a, sha256=salted_digest(SALT, a.sha256)) for a in plain.assets
        ),
    )
    row = _rule_row()
    covered = issuance.covering_rule([row], claims, NOW, plain.assets, b"\x05" * 16)
    assert covered == (
        commit_rule(StandingConsent(row.rule, row.signature), b"\x05" * 16),
        HOLDER.public.raw,
    )
    assert covered is not None
    assert covered[0].opens_to(StandingConsent(row.rule, row.signature))

    def cover(rows: list[StandingRuleRow], c: LicenceClaims = claims, at: int = NOW) -> object:
        return issuance.covering_rule(rows, c, at, plain.assets, b"\x05" * 16)

    assert cover([dataclasses.replace(row, withdrawn_at=NOW)]) is None
    assert cover([row], at=NOW + 400 * DAY) is None  # out of force
    other = dataclasses.replace(plain.assets[0], sha256=b"\x0f" * 32)
    assert issuance.covering_rule([row], claims, NOW, (other,), b"\x05" * 16) is None
    political = dataclasses.replace(
        claims,
        scope=Scope.of(
            [DataCategory.IMAGE, DataCategory.NAME],
            [Purpose.POLITICAL_CAMPAIGN],
            [Medium.ONLINE],
            ["FR"],
        ),
    )
    assert cover([row], political) is None


def _plan(index: int = 0, **changes: Any) -> issuance.Issuance:
    claims = dataclasses.replace(typical_claims(ISSUER, HOLDER, LICENSEE, NOW, index), **changes)
    data = claims.encode()
    return issuance.prepare(b"\x09" * 16, claims, data, approve(HOLDER, data), ISSUER, NOW)


def test_prepare_decides_everything_the_issuance_writes() -> None:
    plan = _plan()
    assert plan.licence.token == ""  # signed by the store, once it knows the log index
    parsed = parse_token(plan.sign(41, NOW).token)
    assert parsed.claims == plan.claims
    assert plan.licence.request_id == b"\x09" * 16
    assert (plan.money.escrow_total, plan.money.fee_bps) == (45_000, 1000)
    assert plan.escrow == ledger.escrow(plan.money, NOW)
    assert set(plan.asset_digests) == {PHOTO_SHA256, NAME_SHA256}
    # v2 claims: the token is v2 and carries the log's promise of index 41.
    salted = dataclasses.replace(
        plan.claims,
        asset_salt=SALT,
        assets=tuple(
            dataclasses.replace(a, sha256=salted_digest(SALT, a.sha256)) for a in plan.claims.assets
        ),
    )
    data = salted.encode()
    v2 = issuance.prepare(
        b"\x09" * 16, salted, data, approve(HOLDER, data), ISSUER, NOW, plain=plan.claims.assets
    )
    assert v2.asset_digests == plan.asset_digests  # the plain digests, not the salted ones
    signed = v2.sign(41, NOW + 1)
    assert signed.asset_digests == PHOTO_SHA256 + NAME_SHA256
    assert parse_token(signed.token).promise == LogPromise(41, NOW + 1)


def test_the_verdict_names_the_conflict_and_what_it_saw() -> None:
    exclusive = _plan(1, exclusive=True)
    other = _plan(2)
    live: list[LicenceRow] = [other.sign(0, NOW)]
    assert issuance.verdict(exclusive, live) == issuance.Verdict(
        Reason.EXCLUSIVITY_CONFLICT, frozenset({other.licence.licence_id})
    )
    assert issuance.verdict(exclusive, []) == issuance.Verdict(None, frozenset())


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
    return names


def test_the_issuance_rule_does_no_io() -> None:
    """No clock, no randomness, no store, no sockets: values in, values out."""
    banned = {"time", "secrets", "random", "os", "socket", "threading", "grpc", ".store", ".deps"}
    assert not _imports(SERVICES / "issuance.py") & banned


def test_the_store_takes_values_and_calls_no_rule_back() -> None:
    """No Store method takes a callable, and the store imports no market rule."""
    for name, fn in inspect.getmembers(Store, inspect.isfunction):
        hints = get_type_hints(fn)
        assert not any("Callable" in str(h) for h in hints.values()), name
    for path in (SERVICES / "store").glob("*.py"):
        assert not {"..market", "..exchange"} & _imports(path), path.name


#: The Store methods that change state: each records the call's nonces it is given.
CHANGES = [
    "add_party",
    "update_party",
    "put_asset",
    "set_terms",
    "add_rule",
    "withdraw_rule",
    "add_request",
    "finish_request",
    "issue",
    "revoke",
    "erase_assets",
    "record_use",
    "record_access",
    "deposit",
    "withdraw",
    "settle",
    "spend_nonces",
]


def test_nonces_reach_the_store_as_an_argument_never_through_a_context_variable() -> None:
    for name in CHANGES:
        assert "nonces" in inspect.signature(getattr(Store, name)).parameters, name
    for path in SERVICES.rglob("*.py"):
        assert "contextvars" not in _imports(path), path.name
