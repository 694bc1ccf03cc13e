"""The market's rules, as pure functions: terms, prices, requests within terms, exclusivity.

No I/O: the servicers and the issuance rule (:mod:`.issuance`) call these with values read
from the store; the store calls none of them. One memo: live licences' parsed terms and
scopes (:func:`_term_and_scope`).
"""

from __future__ import annotations

import enum
import re
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Protocol

from licentia import territory
from licentia.errors import LicentiaError, Reason
from licentia.scope import PURPOSE_COVERS, Scope
from licentia.token import LicenceClaims, parse_token
from licentia.vocabulary import Purpose

from .model import AssetRow, Terms

DAY = 86400
#: Handles and platform ids: lower-case letters, digits, '-' and '_'.
HANDLE = re.compile(r"[a-z0-9_-]{3,32}")
MAX_NAME_CHARS = 128
MAX_TEXT_CHARS = 512
MAX_LIST_ITEMS = 32
#: Basis points in one.
BPS = 10_000
#: The largest price or time the exchange keeps (its store holds signed 64-bit integers).
MAX_INT = (1 << 63) - 1
#: The latest instant a licence may end (far beyond any licence; leaves room for arithmetic).
MAX_TIME = 1 << 62
#: The largest price a licence may carry (term price plus every use), in minor units.
MAX_PRICE = 10**12


def check_handle(handle: str, what: str) -> None:
    """Refuse a handle or platform id outside ``[a-z0-9_-]{3,32}`` (INVALID_REQUEST)."""
    if not HANDLE.fullmatch(handle):
        raise LicentiaError(
            Reason.INVALID_REQUEST,
            f"{what}: 3-32 of a-z, 0-9, '-', '_'; the request has {handle[:40]!r}",
        )


#: Format characters that writing needs: zero-width non-joiner and joiner.
_JOINERS = frozenset("\u200c\u200d")


def _hidden(c: str) -> bool:
    """A control character, or a format character other than the joiners."""
    category = unicodedata.category(c)
    return category == "Cc" or (category == "Cf" and c not in _JOINERS)


def check_text(
    text: str, what: str, limit: int = MAX_NAME_CHARS, *, required: bool = False
) -> None:
    """Refuse text over ``limit`` characters, with control characters (C0, DEL, C1) or
    invisible format characters (bidirectional overrides and isolates, which can make a name
    in a holder's inbox read as another; zero-width spaces; the BOM), or missing. The zero-width
    joiner and non-joiner stay: scripts and emoji sequences need them."""
    if len(text) > limit or any(_hidden(c) for c in text):
        raise LicentiaError(
            Reason.INVALID_REQUEST,
            f"{what}: at most {limit} printable characters (no control or invisible format "
            f"characters); the request has {len(text)} characters"
            + (", some not printable" if any(_hidden(c) for c in text) else ""),
        )
    if required and not text.strip():
        raise LicentiaError(Reason.INVALID_REQUEST, f"{what}: required; the request has none")


def check_country(code: str) -> None:
    """Refuse anything but an ISO 3166-1 alpha-2 country code."""
    if code not in territory.ISO_3166_ALPHA2:
        raise LicentiaError(Reason.INVALID_REQUEST, "country is an ISO 3166-1 alpha-2 code")


def check_terms(terms: Terms, max_term_cap: int) -> None:
    """Refuse terms that could never be met, or that exceed the exchange's cap."""
    if not 0 < terms.price_per_day_minor <= MAX_INT:
        raise LicentiaError(Reason.INVALID_REQUEST, "price per day is 1 to 2^63-1 minor units")
    if not 0 < terms.max_term_seconds <= max_term_cap:
        raise LicentiaError(
            Reason.INVALID_TERM, f"maximum term is 1 second to {max_term_cap // DAY} days"
        )
    if terms.exclusivity_offered and terms.exclusivity_multiplier_bps < BPS:
        raise LicentiaError(Reason.INVALID_REQUEST, "exclusivity multiplier is at least x1")
    if len(terms.refused_purposes) > MAX_LIST_ITEMS:
        raise LicentiaError(Reason.TOO_LARGE, "too many refused purposes")
    if not terms.scope.purpose_closure - refused_closure(terms):
        raise LicentiaError(Reason.INVALID_REQUEST, "every allowed purpose is refused")


def refused_closure(terms: Terms) -> frozenset[Purpose]:
    """Every purpose the holder refuses: the refused ones and all narrower ones."""
    out: frozenset[Purpose] = frozenset()
    for p in terms.refused_purposes:
        out |= PURPOSE_COVERS[p]
    return out


def price_for(terms: Terms, term_seconds: int, *, exclusive: bool) -> int:
    """The holder's price for a term: whole days, rounded up, times the exclusivity factor."""
    days = -(-term_seconds // DAY)
    price = days * terms.price_per_day_minor
    if exclusive:
        price = -(-price * terms.exclusivity_multiplier_bps // BPS)
    return price


def names(items: Iterable[enum.Enum | str]) -> str:
    """Values as people type them, sorted (``Medium.TV``: tv, ``PERSONALISED_ADVERTISING``:
    personalised-advertising; territory codes as they are), or "nothing"."""
    out = sorted(i if isinstance(i, str) else i.name.lower().replace("_", "-") for i in set(items))
    return ", ".join(out) or "nothing"


def scope_gap(offered: Scope, wanted: Scope) -> str | None:
    """Why ``wanted`` is not within ``offered``, naming the field, what is offered and what
    is asked (``scope.media: the holder offers online, social; the request asks tv``); None
    when it is within."""
    if extra := wanted.categories - offered.categories:
        what, allowed, asked = "categories", names(offered.categories), names(extra)
    elif extra_p := wanted.purposes - offered.purpose_closure:
        what, allowed, asked = "purposes", names(offered.purposes), names(extra_p)
    elif extra_m := wanted.media - offered.media:
        what, allowed, asked = "media", names(offered.media), names(extra_m)
    else:
        outside = [
            t for t in wanted.territories if not territory.expand(t) <= offered.territory_closure
        ]
        if not outside:
            return None
        what, allowed, asked = "territories", names(offered.territories), names(outside)
    return f"scope.{what}: the holder offers {allowed}; the request asks {asked}"


def check_request(
    terms: Terms,
    declared: Sequence[AssetRow],
    wanted: Scope,
    digests: Sequence[bytes],
    term_seconds: int,
    *,
    exclusive: bool,
    offered_price: int,
    max_term_cap: int,
) -> None:
    """Refuse a request that does not fall within the holder's terms (raises LicentiaError)."""
    gap = scope_gap(terms.scope, wanted)
    if gap is not None:
        raise LicentiaError(Reason.OUTSIDE_TERMS, gap)
    refused = refused_closure(terms)
    if wanted.purpose_closure & refused:
        asked = [p for p in wanted.purposes if PURPOSE_COVERS[p] & refused]
        raise LicentiaError(
            Reason.OUTSIDE_TERMS,
            f"scope.purposes: the holder refuses {names(terms.refused_purposes)}; "
            f"the request asks {names(asked)}",
        )
    by_digest = {a.sha256: a for a in declared}
    for d in digests:
        asset = by_digest.get(d)
        if asset is None:
            raise LicentiaError(Reason.NOT_FOUND, "asset_refs: the holder has no such asset")
        if asset.category not in wanted.categories:
            raise LicentiaError(
                Reason.INVALID_REQUEST,
                f"scope.categories: an asset asked is {names([asset.category])}; "
                f"the request's scope has {names(wanted.categories)}",
            )
    longest = min(terms.max_term_seconds, max_term_cap)
    if not 0 < term_seconds <= longest:
        raise LicentiaError(
            Reason.INVALID_TERM,
            f"not_after: the term is {_days(term_seconds)}; "
            f"the holder allows 1 second to {_days(longest)}",
        )
    if exclusive and not terms.exclusivity_offered:
        raise LicentiaError(
            Reason.OUTSIDE_TERMS, "exclusive: the holder does not offer exclusivity"
        )
    price = price_for(terms, term_seconds, exclusive=exclusive)
    if offered_price < price:
        raise LicentiaError(
            Reason.PRICE_TOO_LOW,
            f"offered_price_minor: the holder's price for this term is {price} "
            f"({terms.currency} minor units); the request offers {offered_price}",
        )


def _days(seconds: int) -> str:
    """A term for people: whole days when it is whole days, else seconds."""
    if seconds > 0 and seconds % DAY == 0:
        return f"{seconds // DAY} day" + ("s" if seconds != DAY else "")
    return f"{seconds} seconds"


def overlaps(a: LicenceClaims, b: LicenceClaims) -> bool:
    """True if two licences could license the same use at the same time."""
    return _overlap(a.not_before, a.not_after, a.scope, b.not_before, b.not_after, b.scope)


def _overlap(a_from: int, a_to: int, sa: Scope, b_from: int, b_to: int, sb: Scope) -> bool:
    return (
        a_from < b_to
        and b_from < a_to
        and bool(sa.categories & sb.categories)
        and bool(sa.purpose_closure & sb.purpose_closure)
        and bool(sa.media & sb.media)
        and bool(sa.territory_closure & sb.territory_closure)
    )


#: How many live licences' terms and scopes :func:`_term_and_scope` keeps.
TERMS_MEMO = 20_000
#: What it keeps: ``(licence id, hash of the token) -> (not_before, not_after, scope)``,
#: oldest first. No token is kept (an erased licence's token is gone from the store, and
#: must not stay in memory), and a licence id alone could name another licence of
#: another exchange in the same process.
_TERMS: OrderedDict[tuple[bytes, int], tuple[int, int, Scope]] = OrderedDict()
_TERMS_LOCK = threading.Lock()


def _term_and_scope(live: Live) -> tuple[int, int, Scope]:
    """A live licence's term and scope, parsed from its token once: an exclusive request
    reads every live licence of its holder that overlaps its term, and a token never
    changes, so the next request finds them here while they are among the last
    :data:`TERMS_MEMO` kept (a token's parse alone is ~20 µs: a thousand live licences were
    30 ms a request)."""
    token = live.token
    key = (live.licence_id, hash(token))
    hit = _TERMS.get(key)
    if hit is not None:
        return hit
    u = parse_token(token)
    kept = (u.not_before, u.not_after, u.scope)
    with _TERMS_LOCK:
        _TERMS[key] = kept
        while len(_TERMS) > TERMS_MEMO:
            _TERMS.popitem(last=False)
    return kept


class Live(Protocol):
    """What an exclusivity check reads of a live licence: a store's
    :class:`~.model.LiveLicence`, or a whole :class:`~.model.LicenceRow`."""

    @property
    def licence_id(self) -> bytes:
        """Its id."""
        ...

    @property
    def exclusive(self) -> bool:
        """Whether it is exclusive."""
        ...

    @property
    def token(self) -> str:
        """Its token."""
        ...


def exclusivity_conflict(new: LicenceClaims, live: Sequence[Live]) -> Reason | None:
    """EXCLUSIVITY_CONFLICT if ``new`` overlaps a live licence and either is exclusive."""
    nb, na, scope = new.not_before, new.not_after, new.scope
    for row in live:
        if not (new.exclusive or row.exclusive):
            continue
        if _overlap(nb, na, scope, *_term_and_scope(row)):
            return Reason.EXCLUSIVITY_CONFLICT
    return None
