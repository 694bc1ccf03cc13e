"""The market's pure rules: prices, terms, requests within terms, overlap and exclusivity."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import replace
from typing import Any

import pytest

from licentia.errors import LicentiaError, Reason
from licentia.examples import typical_claims
from licentia.keys import PrivateKey
from licentia.scope import Scope
from licentia.services import market
from licentia.services.model import AssetRow, LicenceRow, LiveLicence, Terms
from licentia.token import LicenceClaims, parse_token
from licentia.vocabulary import DataCategory, Medium, Purpose

DAY = 86400
NOW = 1_800_000_000
PHOTO = hashlib.sha256(b"photo").digest()
TERMS = Terms(
    scope=Scope.of([DataCategory.IMAGE], [Purpose.MARKETING], [Medium.ONLINE], ["EU"]),
    refused_purposes=frozenset({Purpose.DIRECT_MARKETING}),
    currency="EUR",
    price_per_day_minor=100,
    max_term_seconds=30 * DAY,
    exclusivity_offered=True,
    exclusivity_multiplier_bps=25_000,
)
ASSETS = [AssetRow(b"h" * 32, PHOTO, DataCategory.IMAGE, "", 0, False, NOW)]


def _scope(*purposes: Purpose, where: str = "FR") -> Scope:
    return Scope.of([DataCategory.IMAGE], purposes, [Medium.ONLINE], [where])


def _check(scope: Scope, term: int = DAY, *, exclusive: bool = False, price: int = 10**6) -> None:
    market.check_request(
        TERMS,
        ASSETS,
        scope,
        [PHOTO],
        term,
        exclusive=exclusive,
        offered_price=price,
        max_term_cap=365 * DAY,
    )


def test_price_rounds_days_up_and_applies_the_exclusivity_multiplier() -> None:
    assert market.price_for(TERMS, 1, exclusive=False) == 100
    assert market.price_for(TERMS, DAY, exclusive=False) == 100
    assert market.price_for(TERMS, DAY + 1, exclusive=False) == 200
    assert market.price_for(TERMS, 3 * DAY, exclusive=True) == 750
    odd = replace(TERMS, price_per_day_minor=3, exclusivity_multiplier_bps=15_001)
    assert market.price_for(odd, DAY, exclusive=True) == 5  # 4.5003 rounds up


def test_a_request_within_the_terms_passes() -> None:
    _check(_scope(Purpose.ADVERTISING, Purpose.PERSONALISED_ADVERTISING))


@pytest.mark.parametrize(
    ("scope", "kw", "reason", "text"),
    [
        (
            _scope(Purpose.RECRUITMENT),
            {},
            Reason.OUTSIDE_TERMS,
            "scope.purposes: the holder offers marketing; the request asks recruitment",
        ),
        (
            _scope(Purpose.DIRECT_MARKETING),
            {},
            Reason.OUTSIDE_TERMS,
            "scope.purposes: the holder refuses direct-marketing; the request asks "
            "direct-marketing",
        ),
        # MARKETING covers DIRECT_MARKETING, which the holder refuses.
        (
            _scope(Purpose.MARKETING),
            {},
            Reason.OUTSIDE_TERMS,
            "scope.purposes: the holder refuses direct-marketing; the request asks marketing",
        ),
        (
            _scope(Purpose.ADVERTISING, where="US"),
            {},
            Reason.OUTSIDE_TERMS,
            "scope.territories: the holder offers EU; the request asks US",
        ),
        (
            Scope.of([DataCategory.IMAGE], [Purpose.ADVERTISING], [Medium.TV], ["FR"]),
            {},
            Reason.OUTSIDE_TERMS,
            "scope.media: the holder offers online; the request asks tv",
        ),
        (
            Scope.of(
                [DataCategory.IMAGE, DataCategory.VOICE],
                [Purpose.ADVERTISING],
                [Medium.ONLINE],
                ["FR"],
            ),
            {},
            Reason.OUTSIDE_TERMS,
            "scope.categories: the holder offers image; the request asks voice",
        ),
        (
            _scope(Purpose.ADVERTISING),
            {"term": 31 * DAY},
            Reason.INVALID_TERM,
            "not_after: the term is 31 days; the holder allows 1 second to 30 days",
        ),
        (
            _scope(Purpose.ADVERTISING),
            {"term": 0},
            Reason.INVALID_TERM,
            "not_after: the term is 0 seconds; the holder allows 1 second to 30 days",
        ),
        (
            _scope(Purpose.ADVERTISING),
            {"price": 99},
            Reason.PRICE_TOO_LOW,
            "offered_price_minor: the holder's price for this term is 100 (EUR minor units); "
            "the request offers 99",
        ),
        (
            _scope(Purpose.ADVERTISING),
            {"exclusive": True, "price": 249},
            Reason.PRICE_TOO_LOW,
            "is 250 (EUR minor units); the request offers 249",
        ),
    ],
)
def test_requests_outside_the_terms_are_refused(
    scope: Scope, kw: dict[str, int], reason: Reason, text: str
) -> None:
    """Each refusal names the field, what the holder allows, and what the request asks."""
    with pytest.raises(LicentiaError) as e:
        _check(scope, **kw)  # type: ignore[arg-type]
    assert e.value.reason == reason
    assert text in str(e.value)


def test_exclusivity_must_be_offered() -> None:
    with pytest.raises(LicentiaError) as e:
        market.check_request(
            replace(TERMS, exclusivity_offered=False),
            ASSETS,
            _scope(Purpose.ADVERTISING),
            [PHOTO],
            DAY,
            exclusive=True,
            offered_price=10**6,
            max_term_cap=365 * DAY,
        )
    assert e.value.reason == Reason.OUTSIDE_TERMS
    assert str(e.value) == "exclusive: the holder does not offer exclusivity"


def test_terms_that_could_never_be_met_are_refused() -> None:
    market.check_terms(TERMS, 365 * DAY)
    bad = [
        (replace(TERMS, price_per_day_minor=0), Reason.INVALID_REQUEST),
        (replace(TERMS, max_term_seconds=366 * DAY), Reason.INVALID_TERM),
        (replace(TERMS, exclusivity_multiplier_bps=9_999), Reason.INVALID_REQUEST),
        (replace(TERMS, refused_purposes=frozenset({Purpose.MARKETING})), Reason.INVALID_REQUEST),
    ]
    for terms, reason in bad:
        with pytest.raises(LicentiaError) as e:
            market.check_terms(terms, 365 * DAY)
        assert e.value.reason == reason


def _row(exclusive: bool, index: int) -> LicenceRow:
    from licentia.token import approve, issue

    k = PrivateKey.from_seed(b"\x01" * 32)
    claims = replace(typical_claims(k, k, k, NOW, index), exclusive=exclusive)
    data = claims.encode()
    return LicenceRow(
        claims.licence_id,
        b"r" * 16,
        issue(k, data, approve(k, data)),
        k.public.raw,
        k.public.raw,
        NOW,
        claims.not_before,
        claims.not_after,
        index,
        0,
        0,
        exclusive,
    )


def _exclusive_elsewhere(claims: LicenceClaims) -> LicenceClaims:
    """``claims`` made exclusive, in the US: a territory no typical licence covers."""
    scope = claims.scope
    return replace(
        claims,
        exclusive=True,
        scope=Scope.of(scope.categories, scope.purposes, scope.media, ["US"]),
    )


def test_exclusivity_conflicts_only_when_one_side_is_exclusive_and_they_overlap() -> None:
    k = PrivateKey.from_seed(b"\x01" * 32)
    new = typical_claims(k, k, k, NOW, 9)
    assert market.exclusivity_conflict(new, [_row(False, 1)]) is None
    assert market.exclusivity_conflict(new, [_row(True, 1)]) == Reason.EXCLUSIVITY_CONFLICT
    assert (
        market.exclusivity_conflict(replace(new, exclusive=True), [_row(False, 1)])
        == Reason.EXCLUSIVITY_CONFLICT
    )
    later = replace(new, not_before=new.not_after, not_after=new.not_after + DAY, exclusive=True)
    assert market.exclusivity_conflict(later, [_row(True, 1)]) is None
    elsewhere = _exclusive_elsewhere(new)
    assert market.exclusivity_conflict(elsewhere, [_row(True, 1)]) is None


@pytest.mark.parametrize("handle", ["ab", "Alice", "a b", "x" * 33, "é-and-more", ""])
def test_bad_handles(handle: str) -> None:
    with pytest.raises(LicentiaError) as e:
        market.check_handle(handle, "handle")
    assert e.value.reason == Reason.INVALID_REQUEST


def test_each_live_token_is_parsed_once_for_every_later_exclusivity_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A holder's live licences are read again for every exclusive request: each token's
    term and scope are parsed once (memoised by the exact token), and the store's
    three-column :class:`LiveLicence` is checked as a whole row is."""
    parsed: list[str] = []
    real = parse_token

    def counted(token: str) -> Any:
        parsed.append(token)
        return real(token)

    monkeypatch.setattr(market, "parse_token", counted)
    monkeypatch.setattr(market, "_TERMS", OrderedDict())  # what other tests left aside
    rows = [_row(True, 7_000_000 + i) for i in range(3)]
    live = [LiveLicence(r.licence_id, r.exclusive, r.token) for r in rows]
    k = PrivateKey.from_seed(b"\x01" * 32)
    new = typical_claims(k, k, k, NOW, 9)
    elsewhere = _exclusive_elsewhere(new)
    for _ in range(3):
        assert market.exclusivity_conflict(elsewhere, live) is None
        assert market.exclusivity_conflict(new, live) == Reason.EXCLUSIVITY_CONFLICT
    assert sorted(parsed) == sorted(r.token for r in rows)
    # No token is kept (an erased licence's must not outlive it), only its id and hash.
    assert set(market._TERMS) == {(r.licence_id, hash(r.token)) for r in rows}
    # Another licence under the same id (another exchange in this process) is its own.
    other = replace(rows[0], token=_row(True, 7_000_009).token)
    assert market.exclusivity_conflict(elsewhere, [other]) is None
    assert parsed[-1] == other.token


def test_the_exclusivity_memo_keeps_the_newest_terms_up_to_its_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(market, "_TERMS", OrderedDict())
    monkeypatch.setattr(market, "TERMS_MEMO", 2)
    rows = [_row(True, 7_100_000 + i) for i in range(3)]
    k = PrivateKey.from_seed(b"\x01" * 32)
    new = typical_claims(k, k, k, NOW, 9)
    elsewhere = _exclusive_elsewhere(new)
    assert market.exclusivity_conflict(elsewhere, rows) is None
    assert list(market._TERMS) == [(r.licence_id, hash(r.token)) for r in rows[1:]]
