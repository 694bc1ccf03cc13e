"""The licence token: claims, the holder's consent, the issuer's signature, the text form.

The flow (docs/token-format.md has the byte-level rules):

1. The exchange builds :class:`LicenceClaims` and encodes them once (:meth:`LicenceClaims.encode`).
2. The holder consents to those exact bytes — :func:`approve` — or has signed a
   :class:`StandingRule` beforehand that the claims fall within (:func:`sign_standing_rule`).
3. The exchange signs claims + consent with its issuer key and emits the token (:func:`issue`):
   ``lic2.`` + base64url(SignedLicence). A v2 licence (docs/token-format.md §3.6-3.8) names
   its assets by digests salted for that licence (:func:`salted_digest`), names the holder
   by her pairwise key for the licensee (or by no key, under a standing rule, whose salted
   commitment it carries instead: :class:`RuleCommitment`), and carries the log's promise
   (:class:`LogPromise`), all covered by the one issuer signature. v1 tokens (``lic1.``)
   still parse and verify until they expire.

A verifier calls :func:`parse_token`, which yields an :class:`UnverifiedLicence`; only
:meth:`UnverifiedLicence.verify` yields a :class:`Licence`. Signatures are always checked
over the exact bytes carried in the token, never over a re-serialisation, and every
protobuf message must be in canonical form, so that one licence has exactly one token.

Why one module of this size: the claims, both kinds of consent, the issuer's signature and the
parse are one format whose rules refer to each other (a standing rule bounds the claims'
fields; the parse checks exactly what the signatures cover), so split, each part would
import the others.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, cast

from . import keys
from .encoding import b64url_decode, b64url_encode, parse_canonical, u32be
from .errors import LicentiaError, Reason
from .keys import IssuerKey, IssuerKeyResolver, PrivateKey, PublicKey
from .scope import Scope
from .status import MAX_LIST_ID as MAX_STATUS_LIST
from .v1 import licence_pb2
from .vocabulary import SENSITIVE_CATEGORIES, SENSITIVE_PURPOSES, DataCategory

__all__ = [
    "ASSET_SALT_BYTES",
    "CONSENT_APPROVAL",
    "CONSENT_RULE_COMMITMENT",
    "CONSENT_STANDING",
    "DEFAULT_MAX_TERM_SECONDS",
    "DIGEST_BYTES",
    "LICENCE_ID_BYTES",
    "MAX_ASSETS",
    "MAX_RULE_LICENSEES",
    "MAX_TOKEN_CHARS",
    "RULE_ID_BYTES",
    "TOKEN_PREFIX",
    "TOKEN_PREFIXES",
    "TOKEN_PREFIX_V1",
    "Approval",
    "Asset",
    "Consent",
    "Licence",
    "LicenceClaims",
    "LogPromise",
    "PriceTerms",
    "RuleCommitment",
    "StandingConsent",
    "StandingRule",
    "UnverifiedLicence",
    "VerificationError",
    "approve",
    "authenticate",
    "check_claims_message",
    "commit_rule",
    "decode_rule",
    "is_currency",
    "issuance_message",
    "issue",
    "new_asset_salt",
    "new_licence_id",
    "parse_token",
    "salted_digest",
    "sensitive_reasons",
    "sign_standing_rule",
    "time_ordered_id",
    "verified_rule",
]


#: The prefix of the tokens the exchange issues now (v2).
TOKEN_PREFIX = "lic2."  # noqa: S105 - a format prefix, not a secret
#: The prefix of v1 tokens, which still verify until they expire.
TOKEN_PREFIX_V1 = "lic1."  # noqa: S105 - a format prefix, not a secret
#: Every prefix a licence token may have.
TOKEN_PREFIXES = (TOKEN_PREFIX_V1, TOKEN_PREFIX)
#: Tokens longer than this are refused before any decoding.
MAX_TOKEN_CHARS = 4096
LICENCE_ID_BYTES = 16
RULE_ID_BYTES = 16
DIGEST_BYTES = 32
MAX_ASSETS = 16
MAX_RULE_LICENSEES = 16
#: The default longest term a verifier accepts (the exchange's default cap: one year).
DEFAULT_MAX_TERM_SECONDS = 365 * 86400
ASSET_SALT_BYTES = 16
#: Consent kinds, as the byte that tags them in the issuance message.
CONSENT_APPROVAL = 0x01
CONSENT_STANDING = 0x02
CONSENT_RULE_COMMITMENT = 0x03

_ASSET_SALT = b"licentia.v2.asset\x00"
_RULE_COMMITMENT = b"licentia.v2.rule-commitment\x00"

_DAY = 86400
_CATEGORY = {c.value: c for c in DataCategory}
_new_parse = tuple.__new__
_sha256 = hashlib.sha256
#: Currency codes found valid by :func:`check_claims_message` (a handful in practice): a
#: code seen before skips :func:`is_currency`. Bounded (no longer added to when full).
_CURRENCIES: set[str] = set()
_CURRENCIES_MAX = 256


def is_currency(code: str) -> bool:
    """True if ``code`` is exactly three ASCII capital letters ``A``-``Z``, the form of an ISO
    4217 code (``str.isupper`` alone lets ``"EU*"``, ``"4UR"`` or ``"E R"`` through)."""
    return len(code) == 3 and code.isascii() and code.isalpha() and code.isupper()


def time_ordered_id(at: int) -> bytes:
    """16 fresh bytes that sort by time: the second ``at`` as 4 bytes big-endian (modulo
    2³²), then 12 random bytes.

    An exchange keys its rows by such ids (licences, requests), so every index keyed by one
    grows at one end, whose pages stay in memory and are shared by the ids of one commit,
    instead of at a random page of a tree that has outgrown memory (docs/performance.md,
    "Ids in time order"); 96 random bits keep them unguessable and distinct."""
    return (at & 0xFFFF_FFFF).to_bytes(4, "big") + secrets.token_bytes(LICENCE_ID_BYTES - 4)


def new_licence_id(at: int) -> bytes:
    """A fresh id for a licence issued at ``at`` (docs/token-format.md §3.1): its
    :func:`time_ordered_id`, whose time is the licence's own ``issued_at``, which its claims
    state anyway."""
    return time_ordered_id(at)


def new_asset_salt() -> bytes:
    """16 fresh random bytes to salt a v2 licence's asset digests."""
    return secrets.token_bytes(ASSET_SALT_BYTES)


def salted_digest(salt: bytes, sha256: bytes) -> bytes:
    """How a v2 licence salted with ``salt`` names the asset whose bytes have the SHA-256
    ``sha256``: ``SHA-256("licentia.v2.asset" || 0x00 || salt || sha256)``. Whoever holds the
    content and the token can check it; the same asset in two licences gives two unrelated
    digests."""
    if len(salt) != ASSET_SALT_BYTES or len(sha256) != DIGEST_BYTES:
        raise LicentiaError(Reason.MALFORMED, "an asset salt is 16 bytes and a digest 32")
    return hashlib.sha256(_ASSET_SALT + salt + sha256).digest()


def _check_digest(d: bytes) -> None:
    if len(d) != DIGEST_BYTES:
        raise LicentiaError(Reason.MALFORMED, "an asset digest is 32 bytes (SHA-256)")


@dataclass(frozen=True, slots=True)
class Asset:
    """One licensed asset: its data category and the SHA-256 of its exact bytes."""

    category: DataCategory
    sha256: bytes


@dataclass(frozen=True, slots=True)
class PriceTerms:
    """What the licensee pays: integer minor units of one ISO 4217 currency."""

    currency: str
    amount_minor: int
    per_use_minor: int = 0
    fee_bps: int = 0

    def __post_init__(self) -> None:
        if not is_currency(self.currency):
            raise LicentiaError(Reason.MALFORMED, "currency is a 3-letter ISO 4217 code")
        if not 0 <= self.fee_bps <= 10_000:
            raise LicentiaError(Reason.MALFORMED, "fee_bps is between 0 and 10000")
        if self.amount_minor < 0 or self.per_use_minor < 0:
            raise LicentiaError(Reason.MALFORMED, "a price is never negative")

    def to_proto(self) -> licence_pb2.PriceTerms:
        """The wire form."""
        return licence_pb2.PriceTerms(
            currency=self.currency,
            amount_minor=self.amount_minor,
            per_use_minor=self.per_use_minor,
            fee_bps=self.fee_bps,
        )


@dataclass(frozen=True, slots=True)
class LicenceClaims:
    """What a licence says. Values are checked on construction, so a built claim is well-formed."""

    licence_id: bytes
    issuer_key_id: bytes
    #: The key that consents: v1 a device key, v2 the pairwise key; ``None`` when the claims
    #: name no holder key (v2: under a standing rule, and before the holder consents).
    holder: PublicKey | None
    licensee: PublicKey
    #: v1: the assets' SHA-256; v2: their salted digests (:func:`salted_digest`).
    assets: tuple[Asset, ...]
    scope: Scope
    issued_at: int
    not_before: int
    not_after: int
    status_index: int
    price: PriceTerms
    max_uses: int = 0
    exclusive: bool = False
    #: v2: the 16 bytes that salt the asset digests; empty in v1 claims.
    asset_salt: bytes = b""
    #: v2: the status list holding ``status_index`` (0, the legacy list, in v1 claims).
    status_list: int = 0
    #: Asset digest -> category, for the per-use asset check.
    asset_categories: dict[bytes, DataCategory] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.licence_id) != LICENCE_ID_BYTES:
            raise LicentiaError(Reason.MALFORMED, "licence id is 16 bytes")
        if len(self.issuer_key_id) != keys.KEY_ID_BYTES:
            raise LicentiaError(Reason.MALFORMED, "issuer key id is 8 bytes")
        if not 1 <= len(self.assets) <= MAX_ASSETS:
            raise LicentiaError(Reason.MALFORMED, f"a licence names 1 to {MAX_ASSETS} assets")
        by_digest = {a.sha256: a.category for a in self.assets}
        if len(by_digest) != len(self.assets):
            raise LicentiaError(Reason.MALFORMED, "duplicate asset digest")
        categories = self.scope.categories
        for digest, category in by_digest.items():
            if len(digest) != DIGEST_BYTES or category not in categories:
                raise LicentiaError(
                    Reason.MALFORMED, "an asset is a 32-byte SHA-256 of a category in scope"
                )
        if self.not_after == 0:
            raise LicentiaError(Reason.MALFORMED, "no licence is perpetual: not_after is required")
        if self.max_uses < 0 or self.status_index < 0 or self.issued_at < 0:
            raise LicentiaError(Reason.MALFORMED, "negative count, index or time")
        if self.asset_salt and len(self.asset_salt) != ASSET_SALT_BYTES:
            raise LicentiaError(Reason.MALFORMED, "an asset salt is 16 bytes")
        if self.status_list and not self.asset_salt:
            raise LicentiaError(Reason.MALFORMED, "only v2 claims name a status list")
        if not 0 <= self.status_list <= MAX_STATUS_LIST:
            raise LicentiaError(Reason.MALFORMED, "status list out of range")
        object.__setattr__(self, "asset_categories", by_digest)

    @property
    def version(self) -> int:
        """2 for v2 claims (salted), 1 for v1."""
        return 2 if self.asset_salt else 1

    @property
    def holder_raw(self) -> bytes:
        """The holder key's 32 raw bytes, or empty when the claims name none."""
        return self.holder.raw if self.holder is not None else b""

    def asset_category(self, sha256: bytes) -> DataCategory | None:
        """The category the claims license the asset whose bytes have SHA-256 ``sha256``
        under (salted first in v2 claims), or ``None`` when they do not name it."""
        salt = self.asset_salt
        if salt:
            if len(sha256) != DIGEST_BYTES:
                return None
            # salted_digest, inline: the parse checked the salt's 16 bytes.
            sha256 = _sha256(_ASSET_SALT + salt + sha256).digest()
        return self.asset_categories.get(sha256)

    @property
    def term_seconds(self) -> int:
        """Length of the licence's validity window (may be <= 0 for an invalid term)."""
        return self.not_after - self.not_before

    def to_proto(self) -> licence_pb2.LicenceClaims:
        """The wire form."""
        return licence_pb2.LicenceClaims(
            licence_id=self.licence_id,
            issuer_key_id=self.issuer_key_id,
            holder_key=self.holder_raw,
            licensee_key=self.licensee.raw,
            assets=[
                licence_pb2.Asset(category=cast("Any", a.category), sha256=a.sha256)
                for a in self.assets
            ],
            scope=self.scope.to_proto(),
            issued_at=self.issued_at,
            not_before=self.not_before,
            not_after=self.not_after,
            max_uses=self.max_uses,
            exclusive=self.exclusive,
            status_index=self.status_index,
            price=self.price.to_proto(),
            asset_salt=self.asset_salt,
            status_list=self.status_list,
        )

    def encode(self) -> bytes:
        """The exact claims bytes that the holder and the issuer sign."""
        return self.to_proto().SerializeToString(deterministic=True)

    @classmethod
    def decode(cls, data: bytes) -> LicenceClaims:
        """Parse exact claims bytes (canonical protobuf); raises ``LicentiaError``."""
        msg = licence_pb2.LicenceClaims()
        parse_canonical(data, msg, "claims")
        return cls.from_proto(msg)

    @classmethod
    def from_proto(cls, msg: licence_pb2.LicenceClaims) -> LicenceClaims:
        """Build from a parsed message; raises ``LicentiaError(MALFORMED)``."""
        scope, by_digest = check_claims_message(msg)
        return cls._from_checked(msg, scope, by_digest)

    @classmethod
    def _from_checked(
        cls,
        msg: licence_pb2.LicenceClaims,
        scope: Scope,
        by_digest: dict[bytes, DataCategory],
    ) -> LicenceClaims:
        """Build from a message that :func:`check_claims_message` accepted (no re-checks)."""
        p = msg.price
        out = object.__new__(cls)
        put = object.__setattr__
        put(out, "licence_id", msg.licence_id)
        put(out, "issuer_key_id", msg.issuer_key_id)
        put(out, "holder", PublicKey(msg.holder_key) if msg.holder_key else None)
        put(out, "licensee", PublicKey(msg.licensee_key))
        put(out, "assets", tuple([Asset(c, d) for d, c in by_digest.items()]))
        put(out, "scope", scope)
        put(out, "issued_at", msg.issued_at)
        put(out, "not_before", msg.not_before)
        put(out, "not_after", msg.not_after)
        put(out, "status_index", msg.status_index)
        put(out, "price", PriceTerms(p.currency, p.amount_minor, p.per_use_minor, p.fee_bps))
        put(out, "max_uses", msg.max_uses)
        put(out, "exclusive", msg.exclusive)
        put(out, "asset_salt", msg.asset_salt)
        put(out, "status_list", msg.status_list)
        put(out, "asset_categories", by_digest)
        return out


#: The holder key's lengths that v1 claims (no salt: a key) and v2 claims (salted: a key,
#: or none under a standing rule or before consent) may have.
_HOLDER_KEY_BYTES = {False: (keys.PUBLIC_KEY_BYTES,), True: (0, keys.PUBLIC_KEY_BYTES)}


def check_claims_message(
    msg: licence_pb2.LicenceClaims,
) -> tuple[Scope, dict[bytes, DataCategory]]:
    """Check every rule of :class:`LicenceClaims` on the wire message itself.

    Returns the (interned) scope and the assets as digest -> category, in wire order.
    Raises ``LicentiaError`` (MALFORMED or TOO_LARGE) exactly where constructing
    :class:`LicenceClaims` would. This is the verifier's hot path: it builds no domain
    object beyond the scope, so a token costs little before its signatures are checked.
    """
    assets = msg.assets
    if len(assets) > MAX_ASSETS:
        raise LicentiaError(Reason.TOO_LARGE, "too many assets")
    if not (msg.HasField("scope") and msg.HasField("price")):
        raise LicentiaError(Reason.MALFORMED, "claims need a scope and price terms")
    salt = len(msg.asset_salt)
    if (
        len(msg.licence_id) != LICENCE_ID_BYTES
        or len(msg.issuer_key_id) != keys.KEY_ID_BYTES
        or len(msg.holder_key) not in _HOLDER_KEY_BYTES[salt == ASSET_SALT_BYTES]
        or len(msg.licensee_key) != keys.PUBLIC_KEY_BYTES
        or salt not in (0, ASSET_SALT_BYTES)
    ):
        raise LicentiaError(
            Reason.MALFORMED, "bad licence id, issuer key id, public key or asset salt"
        )
    if not assets:
        raise LicentiaError(Reason.MALFORMED, f"a licence names 1 to {MAX_ASSETS} assets")
    scope = Scope.from_proto(msg.scope)
    in_scope = scope.categories
    by_digest: dict[bytes, DataCategory] = {}
    for a in assets:
        category = _CATEGORY.get(a.category)
        if category is None:
            raise LicentiaError(Reason.MALFORMED, "unknown asset category")
        digest = a.sha256
        if len(digest) != DIGEST_BYTES or category not in in_scope:
            raise LicentiaError(
                Reason.MALFORMED, "an asset is a 32-byte SHA-256 of a category in scope"
            )
        by_digest[digest] = category
    if len(by_digest) != len(assets):
        raise LicentiaError(Reason.MALFORMED, "duplicate asset digest")
    if msg.not_after == 0:
        raise LicentiaError(Reason.MALFORMED, "no licence is perpetual: not_after is required")
    if msg.status_list and (not salt or msg.status_list > MAX_STATUS_LIST):
        # v1 claims name list 0 only; field 15 is v2's (docs/token-format.md §3.9, §7).
        raise LicentiaError(Reason.MALFORMED, "only v2 claims name a status list (in range)")
    p = msg.price
    currency = p.currency
    if currency not in _CURRENCIES:
        if not is_currency(currency):
            raise LicentiaError(Reason.MALFORMED, "currency is a 3-letter ISO 4217 code")
        if len(_CURRENCIES) < _CURRENCIES_MAX:
            _CURRENCIES.add(currency)
    if p.fee_bps > 10_000:
        raise LicentiaError(Reason.MALFORMED, "fee_bps is between 0 and 10000")
    return scope, by_digest


def sensitive_reasons(scope: Scope) -> list[Reason]:
    """``[SENSITIVE_USE_NEEDS_APPROVAL]`` if ``scope`` allows a sensitive use, else ``[]``."""
    if scope.purpose_closure & SENSITIVE_PURPOSES or scope.categories & SENSITIVE_CATEGORIES:
        return [Reason.SENSITIVE_USE_NEEDS_APPROVAL]
    return []


@dataclass(frozen=True, slots=True)
class StandingRule:
    """A holder's signed standing auto-approval rule.

    A licence issued under it must fall entirely within it (:meth:`permits`). It can never
    cover a sensitive use: political campaigns, AI model training, or opinions.
    """

    rule_id: bytes
    holder: PublicKey
    scope: Scope
    asset_sha256: frozenset[bytes]
    not_before: int
    not_after: int
    max_term_seconds: int
    min_price_per_day_minor: int
    currency: str
    allow_exclusive: bool = False
    max_uses: int = 0
    licensee_keys: frozenset[bytes] = frozenset()

    def __post_init__(self) -> None:
        if len(self.rule_id) != RULE_ID_BYTES:
            raise LicentiaError(Reason.MALFORMED, "rule id is 16 bytes")
        if not 1 <= len(self.asset_sha256) <= MAX_ASSETS:
            raise LicentiaError(Reason.MALFORMED, f"a rule names 1 to {MAX_ASSETS} assets")
        for d in self.asset_sha256:
            _check_digest(d)
        if len(self.licensee_keys) > MAX_RULE_LICENSEES:
            raise LicentiaError(Reason.TOO_LARGE, "too many licensees in a rule")
        for k in self.licensee_keys:
            PublicKey(k)
        if self.not_after <= self.not_before or self.max_term_seconds <= 0:
            raise LicentiaError(Reason.MALFORMED, "a rule needs a non-empty window and term")
        PriceTerms(self.currency, self.min_price_per_day_minor)

    def to_proto(self) -> licence_pb2.StandingRule:
        """The wire form, lists in canonical (sorted) order."""
        return licence_pb2.StandingRule(
            rule_id=self.rule_id,
            holder_key=self.holder.raw,
            scope=self.scope.to_proto(),
            asset_sha256=sorted(self.asset_sha256),
            not_before=self.not_before,
            not_after=self.not_after,
            max_term_seconds=self.max_term_seconds,
            min_price_per_day_minor=self.min_price_per_day_minor,
            currency=self.currency,
            allow_exclusive=self.allow_exclusive,
            max_uses=self.max_uses,
            licensee_keys=sorted(self.licensee_keys),
        )

    def encode(self) -> bytes:
        """The exact rule bytes the holder signs."""
        return self.to_proto().SerializeToString(deterministic=True)

    @classmethod
    def decode(cls, data: bytes) -> StandingRule:
        """Parse exact rule bytes (canonical protobuf); raises ``LicentiaError``."""
        msg = licence_pb2.StandingRule()
        parse_canonical(data, msg, "standing rule")
        if len(msg.asset_sha256) > MAX_ASSETS or len(msg.licensee_keys) > MAX_RULE_LICENSEES:
            raise LicentiaError(Reason.TOO_LARGE, "standing rule lists too much")
        digests = frozenset(msg.asset_sha256)
        licensees = frozenset(msg.licensee_keys)
        if len(digests) != len(msg.asset_sha256) or len(licensees) != len(msg.licensee_keys):
            raise LicentiaError(Reason.MALFORMED, "duplicate entry in standing rule")
        if not msg.HasField("scope"):
            raise LicentiaError(Reason.MALFORMED, "a standing rule needs a scope")
        return cls(
            rule_id=msg.rule_id,
            holder=PublicKey(msg.holder_key),
            scope=Scope.from_proto(msg.scope),
            asset_sha256=digests,
            not_before=msg.not_before,
            not_after=msg.not_after,
            max_term_seconds=msg.max_term_seconds,
            min_price_per_day_minor=msg.min_price_per_day_minor,
            currency=msg.currency,
            allow_exclusive=msg.allow_exclusive,
            max_uses=msg.max_uses,
            licensee_keys=licensees,
        )

    def permits(self, claims: LicenceClaims) -> list[Reason]:
        """Every reason the claims are not covered by this rule (empty when they are)."""
        price = claims.price
        return self._covers(
            claims.holder_raw,
            claims.licensee.raw,
            claims.scope,
            claims.asset_categories.keys(),
            claims.not_before,
            claims.not_after,
            price.currency,
            price.amount_minor,
            claims.exclusive,
            claims.max_uses,
        )

    def permits_parsed(self, u: UnverifiedLicence) -> list[Reason]:
        """:meth:`permits` for a parsed token, read from its checked wire claims (the
        verifier's hot path builds no :class:`LicenceClaims`)."""
        return self._covers(
            u.holder_key,
            u.licensee_key,
            u.scope,
            u.asset_categories.keys(),
            u.not_before,
            u.not_after,
            u.currency,
            u.amount_minor,
            u.exclusive,
            u.max_uses,
        )

    def _covers(
        self,
        holder: bytes,
        licensee: bytes,
        scope: Scope,
        digests: Iterable[bytes],
        not_before: int,
        not_after: int,
        currency: str,
        amount_minor: int,
        exclusive: bool,
        max_uses: int,
    ) -> list[Reason]:
        sensitive = sensitive_reasons(scope) or sensitive_reasons(self.scope)
        if sensitive:
            return sensitive
        term = not_after - not_before
        ok = (
            holder == self.holder.raw
            and self.scope.contains(scope)
            and self.asset_sha256.issuperset(digests)
            and self.not_before <= not_before
            and not_after <= self.not_after
            and 0 < term <= self.max_term_seconds
            and currency == self.currency
            and amount_minor >= self.min_price_per_day_minor * -(-term // _DAY)
            and (self.allow_exclusive or not exclusive)
            and (self.max_uses == 0 or 0 < max_uses <= self.max_uses)
            and (not self.licensee_keys or licensee in self.licensee_keys)
        )
        return [] if ok else [Reason.OUTSIDE_STANDING_RULE]


@dataclass(frozen=True, slots=True)
class Approval:
    """Consent by approval: the holder's signature over the exact claims bytes."""

    signature: bytes


@dataclass(frozen=True, slots=True)
class StandingConsent:
    """Consent by standing rule: the exact rule bytes and the holder's signature over them."""

    rule_bytes: bytes
    signature: bytes

    @property
    def rule(self) -> StandingRule:
        """The parsed rule; raises ``LicentiaError`` if the bytes are not a valid rule."""
        return StandingRule.decode(self.rule_bytes)


@dataclass(frozen=True, slots=True)
class RuleCommitment:
    """v2 consent by standing rule: a commitment, salted for this licence, to the exact rule
    bytes and the holder's signature of them (:func:`commit_rule`). A verifier cannot open it;
    the holder's audit does, with her own rules."""

    salt: bytes
    digest: bytes

    def opens_to(self, consent: StandingConsent) -> bool:
        """True if this commits to ``consent`` (constant time)."""
        return hmac.compare_digest(commit_rule(consent, self.salt).digest, self.digest)


Consent = Approval | StandingConsent | RuleCommitment


def commit_rule(consent: StandingConsent, salt: bytes | None = None) -> RuleCommitment:
    """The v2 commitment to a signed standing rule: ``SHA-256("licentia.v2.rule-commitment"
    || 0x00 || salt || u32be(len(rule)) || rule || signature)``, with a fresh 16-byte salt
    unless one is given."""
    salt = secrets.token_bytes(ASSET_SALT_BYTES) if salt is None else salt
    if len(salt) != ASSET_SALT_BYTES:
        raise LicentiaError(Reason.MALFORMED, "a rule commitment's salt is 16 bytes")
    digest = hashlib.sha256(
        _RULE_COMMITMENT
        + salt
        + u32be(len(consent.rule_bytes))
        + consent.rule_bytes
        + consent.signature
    ).digest()
    return RuleCommitment(salt, digest)


@dataclass(frozen=True, slots=True)
class LogPromise:
    """The log's promise in a v2 licence: its entry is the log's leaf ``index``, appended at
    ``logged_at``. Signed as part of the issuance, so a licence whose entry is not there is
    the exchange's own signed evidence against it."""

    index: int
    logged_at: int

    def to_proto(self) -> licence_pb2.LogPromise:
        """The wire form."""
        return licence_pb2.LogPromise(index=self.index, logged_at=self.logged_at)

    def encode(self) -> bytes:
        """The exact bytes covered by the issuer's signature."""
        return self.to_proto().SerializeToString(deterministic=True)


def approve(holder_key: PrivateKey, claims_bytes: bytes) -> Approval:
    """The holder consents to these exact claims bytes."""
    return Approval(holder_key.sign(keys.CONSENT, claims_bytes))


def sign_standing_rule(holder_key: PrivateKey, rule: StandingRule) -> StandingConsent:
    """The holder signs a standing auto-approval rule; refuses a rule covering sensitive uses."""
    if rule.holder != holder_key.public:
        raise LicentiaError(Reason.BAD_CONSENT, "a rule is signed by its own holder")
    if sensitive_reasons(rule.scope):
        raise LicentiaError(
            Reason.SENSITIVE_USE_NEEDS_APPROVAL,
            "political campaigns, AI training and opinions need an explicit approval",
        )
    data = rule.encode()
    return StandingConsent(data, holder_key.sign(keys.STANDING_RULE, data))


def issuance_message(claims_bytes: bytes, consent: Consent, promise: bytes | None = None) -> bytes:
    """The payload of the issuer's signature: claims and consent, each unambiguously framed,
    and for a v2 licence (``promise`` not None: the exact ``LogPromise`` bytes, empty when
    the token carries none) the log's promise."""
    head = u32be(len(claims_bytes)) + claims_bytes
    if isinstance(consent, Approval):
        body = head + bytes([CONSENT_APPROVAL]) + consent.signature
    elif isinstance(consent, RuleCommitment):
        body = head + bytes([CONSENT_RULE_COMMITMENT]) + consent.salt + consent.digest
    else:
        body = (
            head
            + bytes([CONSENT_STANDING])
            + u32be(len(consent.rule_bytes))
            + consent.rule_bytes
            + consent.signature
        )
    if promise is None:
        return body
    return body + u32be(len(promise)) + promise


def issue(
    issuer_key: PrivateKey,
    claims_bytes: bytes,
    consent: Consent,
    *,
    claims: LicenceClaims | None = None,
    promise: LogPromise | None = None,
) -> str:
    """The exchange signs claims + consent (+ the log's promise) and returns the token text:
    ``lic2.…`` when the claims are v2 (salted), ``lic1.…`` otherwise.

    The claims must name this issuer key, and their version must fit the consent and the
    promise: v2 claims need a promise and an approval (naming a holder key) or a
    :class:`RuleCommitment` (naming none); v1 claims take neither a promise nor a
    commitment. The consent itself is not checked here (the exchange checks it before
    calling, and every verifier checks it again). A caller that holds the claims
    ``claims_bytes`` encode passes them as ``claims``, so they are not decoded again.
    """
    if claims is None:
        claims = LicenceClaims.decode(claims_bytes)
    if claims.issuer_key_id != issuer_key.public.key_id:
        raise LicentiaError(Reason.UNKNOWN_ISSUER_KEY, "claims name another issuer key")
    if claims.version == 2:
        named = isinstance(consent, Approval)
        if promise is None or isinstance(consent, StandingConsent):
            raise LicentiaError(
                Reason.MALFORMED, "a v2 licence carries the log's promise and no rule"
            )
        if named != (claims.holder is not None):
            raise LicentiaError(
                Reason.MALFORMED, "a v2 licence names the approving key, and no key under a rule"
            )
    elif promise is not None or isinstance(consent, RuleCommitment):
        raise LicentiaError(Reason.MALFORMED, "a v1 licence has no promise or rule commitment")
    return _signed_token(issuer_key, claims_bytes, consent, promise)


def _signed_token(
    issuer_key: PrivateKey,
    claims_bytes: bytes,
    consent: Consent,
    promise: LogPromise | None = None,
    *,
    v2: bool | None = None,
) -> str:
    """The issuer's signature over whatever claims bytes, consent and promise it is given,
    as token text, with no check at all (:func:`issue` checks first; the test vectors sign
    wrong claims on purpose with it). ``v2`` defaults to whether there is a promise; a v2
    token without one is what a misbehaving exchange would sign."""
    v2 = promise is not None if v2 is None else v2
    promise_bytes = promise.encode() if promise is not None else b""
    message = issuance_message(claims_bytes, consent, promise_bytes if v2 else None)
    sig = issuer_key.sign(keys.ISSUANCE_V2 if v2 else keys.ISSUANCE, message)
    env = licence_pb2.SignedLicence(claims=claims_bytes, issuer_signature=sig)
    if isinstance(consent, Approval):
        env.holder_signature = consent.signature
    elif isinstance(consent, RuleCommitment):
        env.rule_commitment.salt = consent.salt
        env.rule_commitment.digest = consent.digest
    else:
        env.standing.rule = consent.rule_bytes
        env.standing.holder_signature = consent.signature
    if promise is not None:
        env.log_promise.CopyFrom(promise.to_proto())
    prefix = TOKEN_PREFIX if v2 else TOKEN_PREFIX_V1
    return prefix + b64url_encode(env.SerializeToString(deterministic=True))


class UnverifiedLicence(NamedTuple):
    """A parsed token whose signatures have not been checked. Do not act on it.

    Parsing has checked every structural rule of the claims (:func:`check_claims_message`);
    the fields are those values, read once from the wire. The domain :class:`LicenceClaims`
    is built only when :attr:`claims` is asked for, so a verifier that needs only the
    checks pays for no domain objects (a named tuple is the cheapest immutable record).
    Two parses are equal when their token text is equal.
    """

    token: str
    claims_bytes: bytes
    consent: Consent
    issuer_signature: bytes
    licence_id: bytes
    issuer_key_id: bytes
    #: Raw 32-byte public keys of the holder and the licensee.
    holder_key: bytes
    licensee_key: bytes
    issued_at: int
    not_before: int
    not_after: int
    status_index: int
    max_uses: int
    scope: Scope
    #: Asset digest -> category, in the claims' order.
    asset_categories: Mapping[bytes, DataCategory]
    #: The price terms (what a standing rule bounds, and what the exchange escrows) and
    #: whether the licence is exclusive.
    currency: str
    amount_minor: int
    per_use_minor: int
    fee_bps: int
    exclusive: bool
    #: 2 for a ``lic2.`` token, 1 for ``lic1.``.
    version: int = 1
    #: v2: the salt of the asset digests (empty in v1).
    asset_salt: bytes = b""
    #: v2: the log's promise, ``None`` when the token carries none (NOT_LOGGED).
    promise: LogPromise | None = None
    #: v2: the status list holding ``status_index`` (0, the legacy list, in v1).
    status_list: int = 0
    #: v2: the promise's exact bytes as the token carries them (what the issuer's signature
    #: covers; empty when the token carries no promise), kept from the parse so that
    #: authentication does not encode the promise again.
    promise_bytes: bytes = b""

    def asset_category(self, sha256: bytes) -> DataCategory | None:
        """The category the licence names the asset with SHA-256 ``sha256`` under (salted
        first in v2), or ``None`` when it does not name it."""
        salt = self.asset_salt
        if salt:
            if len(sha256) != DIGEST_BYTES:
                return None
            # salted_digest, inline: the parse checked the salt's 16 bytes.
            sha256 = _sha256(_ASSET_SALT + salt + sha256).digest()
        return self.asset_categories.get(sha256)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UnverifiedLicence) and other.token == self.token

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash(self.token)

    def __repr__(self) -> str:
        return f"UnverifiedLicence(licence_id={self.licence_id.hex()})"

    @property
    def wire_claims(self) -> licence_pb2.LicenceClaims:
        """The wire claims, parsed again from :attr:`claims_bytes` on each call (a parse
        keeps no protobuf message: a verifier's cache holds many parses)."""
        return parse_canonical(self.claims_bytes, licence_pb2.LicenceClaims(), "claims")

    @property
    def claims(self) -> LicenceClaims:
        """The claims as a domain value (built on each call: keep the result)."""
        return LicenceClaims._from_checked(
            self.wire_claims, self.scope, dict(self.asset_categories)
        )

    def verify(
        self,
        keys_: IssuerKeyResolver,
        *,
        max_term_seconds: int = DEFAULT_MAX_TERM_SECONDS,
    ) -> Licence:
        """Check the issuer key, both signatures and the consent; return the :class:`Licence`.

        Raises :class:`VerificationError` listing every failing reason. Time, scope and
        status are not checked here: they change with ``now`` (see :mod:`licentia.verify`).
        """
        issuer, reasons = authenticate(self, keys_, max_term_seconds)
        if issuer is None or reasons:
            raise VerificationError(reasons)
        return Licence(self, issuer)


#: Standing rules whose holder signature has been checked, by (holder key, exact rule bytes,
#: signature): every licence issued under one rule carries the same three, so a verifier
#: checks a rule's signature and decodes it once, not once per licence. A hit means those
#: exact bytes verified before; the cache is bounded (cleared when full).
_VERIFIED_RULES: dict[tuple[bytes, bytes, bytes], StandingRule] = {}
_VERIFIED_RULES_MAX = 1024


#: Standing rules parsed from their exact bytes (parsing is a pure function of the bytes,
#: so a hit is exactly what a parse would give); bounded like ``_VERIFIED_RULES``.
_DECODED_RULES: dict[bytes, StandingRule] = {}


def decode_rule(rule_bytes: bytes) -> StandingRule:
    """:meth:`StandingRule.decode`, memoised by the exact bytes; raises ``LicentiaError``
    (MALFORMED, or TOO_LARGE for a list over its limit)."""
    rule = _DECODED_RULES.get(rule_bytes)
    if rule is None:
        rule = StandingRule.decode(rule_bytes)
        if len(_DECODED_RULES) >= _VERIFIED_RULES_MAX:
            _DECODED_RULES.clear()
        _DECODED_RULES[rule_bytes] = rule
    return rule


def verified_rule(holder_key: bytes, consent: StandingConsent) -> StandingRule | None:
    """The rule of ``consent`` if ``holder_key`` (the claims' holder key) signed it, else
    ``None``; raises ``LicentiaError`` when the signed bytes are not a valid rule (a parsed
    token's rule always is: :func:`parse_token` refuses it). Memoised (see above)."""
    key = (holder_key, consent.rule_bytes, consent.signature)
    rule = _VERIFIED_RULES.get(key)
    if rule is not None:
        return rule
    if not keys.verify_signature(
        holder_key, keys.STANDING_RULE, consent.rule_bytes, consent.signature
    ):
        return None
    rule = decode_rule(consent.rule_bytes)
    if len(_VERIFIED_RULES) >= _VERIFIED_RULES_MAX:
        _VERIFIED_RULES.clear()
    _VERIFIED_RULES[key] = rule
    return rule


def authenticate(
    u: UnverifiedLicence, keys_: IssuerKeyResolver, max_term_seconds: int
) -> tuple[IssuerKey | None, list[Reason]]:
    """The issuer key and every reason the token is not an authentic, well-consented
    licence (time-independent checks only; no reasons means authentic)."""
    reasons: list[Reason] = []
    claims_bytes = u.claims_bytes
    consent = u.consent
    v2 = u.version == 2
    issuer = keys_.resolve(u.issuer_key_id)
    if issuer is None:
        reasons.append(Reason.UNKNOWN_ISSUER_KEY)
    else:
        if not issuer.may_sign_at(u.issued_at):
            reasons.append(Reason.ISSUER_KEY_NOT_VALID)
        promise = None
        if v2:
            promise = u.promise_bytes
            if not promise and u.promise is not None:  # built by hand, not by parse_token
                promise = u.promise.encode()
        if not keys.verify_signature(
            issuer.public.raw,
            keys.ISSUANCE_V2 if v2 else keys.ISSUANCE,
            issuance_message(claims_bytes, consent, promise),
            u.issuer_signature,
        ):
            reasons.append(Reason.BAD_SIGNATURE)
    if v2 and (u.promise is None or not 0 < u.issued_at <= u.promise.logged_at):
        reasons.append(Reason.NOT_LOGGED)
    if isinstance(consent, Approval):
        if not keys.verify_signature(u.holder_key, keys.CONSENT, claims_bytes, consent.signature):
            reasons.append(Reason.BAD_CONSENT)
    elif isinstance(consent, RuleCommitment):
        # The rule is not in the token: the issuer vouches for it (its signature covers the
        # commitment) and the holder's audit opens it. A sensitive use never has a rule.
        reasons.extend(sensitive_reasons(u.scope))
    else:
        try:
            rule = verified_rule(u.holder_key, consent)
        except LicentiaError:
            rule = None
        if rule is None:
            reasons.append(Reason.BAD_CONSENT)
        else:
            reasons.extend(rule.permits_parsed(u))
    if not 0 < u.not_after - u.not_before <= max_term_seconds:
        reasons.append(Reason.INVALID_TERM)
    return issuer, reasons


class VerificationError(LicentiaError):
    """A licence failed authentication; ``reasons`` lists every failing check."""

    def __init__(self, reasons: Iterable[Reason]) -> None:
        self.reasons = tuple(reasons)
        super().__init__(self.reasons[0], ", ".join(r.name for r in self.reasons))


@dataclass(frozen=True, slots=True)
class Licence:
    """A licence whose issuer signature and holder consent have been verified.

    Only :meth:`UnverifiedLicence.verify` (or the verification engine) creates one.
    """

    parsed: UnverifiedLicence
    issuer_key: IssuerKey

    @property
    def token(self) -> str:
        """The token text, exactly as received."""
        return self.parsed.token

    @property
    def claims(self) -> LicenceClaims:
        """The verified claims."""
        return self.parsed.claims

    @property
    def licence_id(self) -> bytes:
        """The 16-byte licence id."""
        return self.parsed.licence_id

    @property
    def consent_kind(self) -> Literal["approval", "standing"]:
        """How the holder consented."""
        return "approval" if isinstance(self.parsed.consent, Approval) else "standing"


def parse_token(text: str) -> UnverifiedLicence:
    """Parse ``lic1.…`` into an :class:`UnverifiedLicence`; raises ``LicentiaError``.

    Refuses (before decoding) anything longer than ``MAX_TOKEN_CHARS``; refuses any
    non-canonical encoding, and claims or a standing rule that break a field rule.
    """
    if not isinstance(text, str):
        raise LicentiaError(Reason.MALFORMED, "a token is text")
    if len(text) > MAX_TOKEN_CHARS:
        raise LicentiaError(Reason.TOO_LARGE, f"tokens are at most {MAX_TOKEN_CHARS} characters")
    if text.startswith(TOKEN_PREFIX):
        version = 2
    elif text.startswith(TOKEN_PREFIX_V1):
        version = 1
    else:
        raise LicentiaError(Reason.MALFORMED, f"a licence token starts with {TOKEN_PREFIX!r}")
    env = licence_pb2.SignedLicence()
    parse_canonical(b64url_decode(text[len(TOKEN_PREFIX) :]), env, "licence envelope")
    kind = env.WhichOneof("consent")
    consent: Consent
    if kind == "holder_signature":
        holder_signature = env.holder_signature
        consent = Approval(holder_signature)
        if version == 2 and len(holder_signature) != keys.SIGNATURE_BYTES:
            # v2 frames the promise after the signature: its length is fixed, not implied.
            raise LicentiaError(Reason.MALFORMED, "an approval is a 64-byte signature")
    elif kind == "standing" and version == 1:
        consent = StandingConsent(env.standing.rule, env.standing.holder_signature)
        # The rule is part of the token: a rule that is not canonical or breaks a field rule
        # is MALFORMED (TOO_LARGE for a list over its limit) at parse, like the claims, and
        # is never reported as a consent failure.
        decode_rule(consent.rule_bytes)
    elif kind == "rule_commitment" and version == 2:
        rc = env.rule_commitment
        if len(rc.salt) != ASSET_SALT_BYTES or len(rc.digest) != DIGEST_BYTES:
            raise LicentiaError(Reason.MALFORMED, "a rule commitment is a 16-byte salt and 32")
        consent = RuleCommitment(rc.salt, rc.digest)
    else:
        raise LicentiaError(Reason.MALFORMED, f"a v{version} licence carries the holder's consent")
    promise: LogPromise | None = None
    promise_bytes = b""
    if env.HasField("log_promise"):
        if version == 1:
            raise LicentiaError(Reason.MALFORMED, "a v1 licence carries no log promise")
        lp = env.log_promise
        logged_at = lp.logged_at
        if logged_at == 0:
            # A promise signs as its exact bytes; one without a time would sign as no promise
            # at all, and one licence would have two tokens.
            raise LicentiaError(Reason.MALFORMED, "a log promise has a time")
        promise = LogPromise(lp.index, logged_at)
        promise_bytes = lp.SerializeToString(deterministic=True)
    claims_bytes = env.claims
    m = parse_canonical(claims_bytes, licence_pb2.LicenceClaims(), "claims")
    scope, by_digest = check_claims_message(m)
    asset_salt, holder_key = m.asset_salt, m.holder_key
    if (version == 2) != bool(asset_salt) or (
        version == 2 and bool(holder_key) != isinstance(consent, Approval)
    ):
        raise LicentiaError(
            Reason.MALFORMED,
            "v2 claims are salted and name a holder key exactly when she approved them;"
            " v1 claims are not salted",
        )
    price = m.price
    # tuple.__new__: the named tuple's own __new__ is a Python function over 25 arguments.
    return _new_parse(
        UnverifiedLicence,
        (
            text,
            claims_bytes,
            consent,
            env.issuer_signature,
            m.licence_id,
            m.issuer_key_id,
            holder_key,
            m.licensee_key,
            m.issued_at,
            m.not_before,
            m.not_after,
            m.status_index,
            m.max_uses,
            scope,
            by_digest,
            price.currency,
            price.amount_minor,
            price.per_use_minor,
            price.fee_bps,
            m.exclusive,
            version,
            asset_salt,
            promise,
            m.status_list,
            promise_bytes,
        ),
    )
