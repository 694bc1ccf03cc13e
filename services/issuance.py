"""The decision to issue a licence, as pure functions of values (the model: :mod:`.ledger`).

No I/O and no clock: the time is the argument ``at``, and what must be chosen at random or
read from the store (ids, the status-list index, the signing key, the holder's terms,
assets, rules and live licences) is chosen or read by the servicer (:mod:`.exchange`) and
passed in. The servicer then hands what these return to the store, which applies it in one
transaction. One licence goes down once:

1. :func:`check_request` — the request within the holder's terms and the exchange's limits:
   a :class:`Draft`;
2. :meth:`Draft.claims` — the claims, once the ids and status index are chosen; they are
   built (and parsed) once here and travel as a value down to the store;
3. :func:`covering_rule` — the holder's standing rule in force that covers the claims, if
   any (never for a sensitive use);
4. :func:`prepare` — everything the licence's issuance writes: its money and escrow
   posting, the assets it names; the store signs it (:meth:`Issuance.sign`) inside its
   transaction, once it knows the log index the licence's entry gets (the log's promise);
5. :func:`verdict` — the exclusivity conflict with the holder's live licences, and the set
   of licences it was decided over: the store applies the issuance only if that set is
   still the same inside its transaction (else :class:`~.store.base.StaleVerdict`, and the
   servicer decides again over what is there now).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from licentia import keys
from licentia.errors import LicentiaError, Reason
from licentia.keys import PrivateKey
from licentia.scope import Scope
from licentia.token import (
    Asset,
    Consent,
    LicenceClaims,
    LogPromise,
    PriceTerms,
    RuleCommitment,
    StandingConsent,
    StandingRule,
    commit_rule,
    issue,
    salted_digest,
    sensitive_reasons,
)

from . import ledger, market
from .model import AssetRow, LicenceRow, RequestRow, RequestState, StandingRuleRow, Terms

#: How far in the past a licence may start (seconds): clocks differ a little.
START_SLACK = 300


@dataclass(frozen=True, slots=True)
class Draft:
    """A request checked against the holder's terms: the claims but for the ids and index."""

    holder_key: bytes
    advertiser_key: bytes
    assets: tuple[Asset, ...]
    scope: Scope
    not_before: int
    not_after: int
    price: PriceTerms
    max_uses: int
    exclusive: bool

    def claims(
        self,
        *,
        licence_id: bytes,
        issuer_key_id: bytes,
        status_index: int,
        at: int,
        asset_salt: bytes,
        licensee_key: bytes | None = None,
        status_list: int = 0,
    ) -> LicenceClaims:
        """The licence's v2 claims, issued ``at``: they name no holder key (the key that
        consents is bound when she does, :func:`rebind`; under a standing rule none is),
        name ``licensee_key``, the advertiser's key that will present the licence (its
        account key by default), and name the assets by digests salted with ``asset_salt``
        (16 random bytes, drawn by the caller)."""
        salt = asset_salt
        return LicenceClaims(
            licence_id=licence_id,
            issuer_key_id=issuer_key_id,
            holder=None,
            licensee=keys.PublicKey(licensee_key or self.advertiser_key),
            assets=tuple(Asset(a.category, salted_digest(salt, a.sha256)) for a in self.assets),
            scope=self.scope,
            issued_at=at,
            not_before=self.not_before,
            not_after=self.not_after,
            status_index=status_index,
            status_list=status_list,
            price=self.price,
            max_uses=self.max_uses,
            exclusive=self.exclusive,
            asset_salt=salt,
        )


def check_request(
    *,
    holder_key: bytes,
    advertiser_key: bytes,
    terms: Terms,
    declared: Sequence[AssetRow],
    scope: Scope,
    digests: Sequence[bytes],
    not_before: int,
    not_after: int,
    offered_price: int,
    price_per_use: int,
    max_uses: int,
    exclusive: bool,
    currency: str,
    fee_bps: int,
    max_term_cap: int,
    at: int,
) -> Draft:
    """Refuse (``LicentiaError``) a request outside the holder's terms or the exchange's
    limits; the :class:`Draft` of its claims otherwise. ``not_before`` 0 means ``at``."""
    not_before = not_before or at
    if not_after <= not_before:
        raise LicentiaError(
            Reason.INVALID_TERM,
            f"not_after: must follow not_before ({not_before}); the request has {not_after}",
        )
    if not_before < at - START_SLACK:
        raise LicentiaError(
            Reason.INVALID_TERM,
            f"not_before: a licence cannot start in the past (now is {at}, at most "
            f"{START_SLACK} s earlier is allowed); the request has {not_before}",
        )
    if not_after > market.MAX_TIME:
        raise LicentiaError(
            Reason.INVALID_TERM,
            f"not_after: at most {market.MAX_TIME}; the request has {not_after}",
        )
    if price_per_use and not max_uses:
        raise LicentiaError(
            Reason.INVALID_REQUEST,
            "max_uses: a price per use needs max_uses of 1 or more (each use is escrowed); "
            "the request has 0",
        )
    total = ledger.escrow_total(offered_price, price_per_use, max_uses)
    if total > market.MAX_PRICE:
        raise LicentiaError(
            Reason.INVALID_REQUEST,
            f"offered_price_minor: the price with every use is at most {market.MAX_PRICE}; "
            f"the request's is {total}",
        )
    market.check_request(
        terms,
        declared,
        scope,
        digests,
        not_after - not_before,
        exclusive=exclusive,
        offered_price=offered_price,
        max_term_cap=max_term_cap,
    )
    categories = {a.sha256: a.category for a in declared}
    return Draft(
        holder_key=holder_key,
        advertiser_key=advertiser_key,
        assets=tuple(Asset(categories[d], d) for d in digests),
        scope=scope,
        not_before=not_before,
        not_after=not_after,
        price=PriceTerms(currency, offered_price, price_per_use, fee_bps),
        max_uses=max_uses,
        exclusive=exclusive,
    )


def rebind(claims: LicenceClaims, holder_key: bytes) -> LicenceClaims:
    """The same claims naming ``holder_key``, the key of the holder that consents (her
    pairwise key for the licensee, or a device key of her account): the holder sees, and
    signs, the claims naming the key she consents with (the licence id, scope, times and
    price are unchanged)."""
    if claims.holder_raw == holder_key:
        return claims
    return replace(claims, holder=keys.PublicKey(holder_key))


def plain_assets(claims: LicenceClaims, declared: Sequence[AssetRow]) -> tuple[Asset, ...]:
    """The claims' assets named by their plain SHA-256, found among the holder's
    ``declared`` assets (v2 claims name them salted). NOT_FOUND when one is no longer
    declared (erased since the request was made)."""
    if not claims.asset_salt:
        return claims.assets
    by_salted = {salted_digest(claims.asset_salt, a.sha256): a.sha256 for a in declared}
    try:
        return tuple(Asset(a.category, by_salted[a.sha256]) for a in claims.assets)
    except KeyError:
        raise LicentiaError(
            Reason.NOT_FOUND, "an asset of the request was erased since: ask again"
        ) from None


def covering_rule(
    rules: Sequence[StandingRuleRow],
    claims: LicenceClaims,
    at: int,
    plain: Sequence[Asset],
    salt: bytes,
) -> tuple[RuleCommitment, bytes] | None:
    """A standing rule in force ``at`` that the claims (whose assets are ``plain``, by their
    plain digests, as the rule names them) fall entirely within, if any: the commitment a
    v2 licence carries, salted with ``salt`` (16 random bytes, drawn by the caller), and the
    key that signed the rule. Never for a sensitive use (those need the holder's own
    approval each time)."""
    if sensitive_reasons(claims.scope):
        return None
    for r in rules:
        if r.withdrawn_at:
            continue
        try:
            rule = StandingRule.decode(r.rule)
        except LicentiaError:
            continue
        bound = replace(
            claims, holder=rule.holder, assets=tuple(plain), asset_salt=b"", status_list=0
        )
        if not rule.permits(bound) and rule.not_before <= at < rule.not_after:
            return commit_rule(StandingConsent(r.rule, r.signature), salt), rule.holder.raw
    return None


def request_row(
    claims: LicenceClaims,
    *,
    holder_account: bytes,
    request_id: bytes,
    message: str,
    auto_approved: bool,
    ttl_seconds: int,
    at: int,
    advertiser_account: bytes | None = None,
) -> RequestRow:
    """The pending request that asks the holder (her ``holder_account``) for ``claims``,
    made by ``advertiser_account`` (by default the licensee the claims name)."""
    return RequestRow(
        request_id=request_id,
        state=RequestState.PENDING,
        advertiser_key=advertiser_account or claims.licensee.raw,
        holder_key=holder_account,
        claims=claims.encode(),
        created_at=at,
        expires_at=at + ttl_seconds,
        updated_at=at,
        message=message,
        auto_approved=auto_approved,
    )


@dataclass(frozen=True, slots=True)
class Issuance:
    """Everything the issuance of one licence writes, decided before the store is asked.

    The store signs the licence inside its transaction (:meth:`sign`): a v2 licence carries
    the log index of its own entry, known only there."""

    #: The licence as stored, but for its token (empty until :meth:`sign`).
    licence: LicenceRow
    #: The claims it is signed over (parsed once, by the caller), and their encoding.
    claims: LicenceClaims
    claims_bytes: bytes
    #: The holder's consent, and the issuer key that signs.
    consent: Consent
    signer: PrivateKey
    #: Its money: the escrow it takes and how it is paid out.
    money: ledger.LicenceMoney
    #: The posting that sets its escrow aside (None for a free licence).
    escrow: ledger.Posting | None
    #: The plain SHA-256 digests of the assets it licenses (the claims' are salted).
    asset_digests: tuple[bytes, ...]

    def sign(self, index: int, logged_at: int) -> LicenceRow:
        """The licence with its token: the issuer's signature over the claims, the consent
        and the log's promise that its entry is the log's leaf ``index``, appended
        ``logged_at`` (v1 claims, from before token v2, carry no promise)."""
        promise = LogPromise(index, logged_at) if self.claims.version == 2 else None
        token = issue(
            self.signer, self.claims_bytes, self.consent, claims=self.claims, promise=promise
        )
        return replace(self.licence, token=token)


def prepare(
    request_id: bytes,
    claims: LicenceClaims,
    claims_bytes: bytes,
    consent: Consent,
    signer: PrivateKey,
    at: int,
    *,
    plain: Sequence[Asset] | None = None,
    consent_key: bytes | None = None,
    holder_account: bytes | None = None,
    advertiser_account: bytes | None = None,
) -> Issuance:
    """What the issuance ``at`` of the licence for a request's ``claims`` (``claims_bytes``,
    their encoding) writes, to be signed by ``signer`` over the holder's ``consent``.
    ``plain`` names the claims' assets by their plain digests (the claims' own, by
    default: v1 claims); ``consent_key`` is the holder's key that consented (the one the
    claims name, by default; under a v2 standing rule, the key that signed the rule). The
    accounts of the holder and the advertiser (by default the keys the claims name) own
    the licence and its money; the claims name the keys that consent and present."""
    consent_key = consent_key or claims.holder_raw
    holder = holder_account or consent_key
    digests = tuple(a.sha256 for a in (claims.assets if plain is None else plain))
    advertiser = advertiser_account or claims.licensee.raw
    licence = LicenceRow(
        licence_id=claims.licence_id,
        request_id=request_id,
        token="",
        holder_key=holder,
        licensee_key=advertiser,
        consent_key=consent_key,
        asset_digests=b"".join(digests) if claims.version == 2 else b"",
        licensee_device=claims.licensee.raw,
        issued_at=claims.issued_at,
        not_before=claims.not_before,
        not_after=claims.not_after,
        status_index=claims.status_index,
        status_list=claims.status_list,
        max_uses=claims.max_uses,
        uses=0,
        exclusive=claims.exclusive,
    )
    money = ledger.LicenceMoney(
        licence_id=claims.licence_id,
        advertiser_key=advertiser,
        holder_key=holder,
        price=claims.price.amount_minor,
        price_per_use=claims.price.per_use_minor,
        max_uses=claims.max_uses,
        fee_bps=claims.price.fee_bps,
        not_before=claims.not_before,
        not_after=claims.not_after,
    )
    return Issuance(
        licence=licence,
        claims=claims,
        claims_bytes=claims_bytes,
        consent=consent,
        signer=signer,
        money=money,
        escrow=ledger.escrow(money, at),
        asset_digests=digests,
    )


@dataclass(frozen=True, slots=True)
class Verdict:
    """The exclusivity decision for one issuance, and what it was decided over."""

    #: EXCLUSIVITY_CONFLICT, or None when the licence may be issued.
    refusal: Reason | None
    #: The ids of the live licences it was decided over (the store's ``live_licences``).
    seen: frozenset[bytes]


def verdict(issuance: Issuance, live: Sequence[market.Live]) -> Verdict:
    """Whether ``issuance`` conflicts with the holder's ``live`` licences (those the store
    returns for its window: overlapping in time, only the exclusive ones unless it is
    exclusive)."""
    return Verdict(
        market.exclusivity_conflict(issuance.claims, live),
        frozenset(row.licence_id for row in live),
    )
