"""The exchange's records as domain values: what the store keeps and the services reason about.

Frozen dataclasses; protobuf messages appear only in the servicers (``*_service.py``) that
convert at the edge. Keys are raw 32-byte Ed25519 public keys; times are Unix seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from licentia import states
from licentia.keyset import KeySet
from licentia.scope import Scope
from licentia.token import parse_token
from licentia.vocabulary import DataCategory, Purpose

#: What a registered key is (the core's :class:`~licentia.states.PartyRole`).
Role = states.PartyRole
#: Where a licence request stands (the core's :class:`~licentia.states.RequestState`).
RequestState = states.RequestState
#: Why a licence ended early (the core's :class:`~licentia.states.TerminationCause`).
Cause = states.TerminationCause


@dataclass(frozen=True, slots=True)
class Party:
    """A registered holder, advertiser or platform."""

    key: bytes
    role: Role
    #: Holders: their handle; platforms: their platform id; advertisers: "".
    handle: str
    display_name: str
    country: str
    registered_at: int
    objecting: bool = False
    #: Holders: whether offers show advertisers the display name (off unless she chose it).
    show_name: bool = False


@dataclass(frozen=True, slots=True)
class AssetRow:
    """A holder's declared asset (the bytes, when stored, are read separately)."""

    holder_key: bytes
    sha256: bytes
    category: DataCategory
    label: str
    content_size: int
    has_content: bool
    declared_at: int


@dataclass(frozen=True, slots=True)
class Terms:
    """What a holder offers and at what price."""

    scope: Scope
    refused_purposes: frozenset[Purpose]
    currency: str
    price_per_day_minor: int
    max_term_seconds: int
    exclusivity_offered: bool
    exclusivity_multiplier_bps: int
    updated_at: int = 0


@dataclass(frozen=True, slots=True)
class RequestRow:
    """A licence request and the exact claims prepared for the holder to sign."""

    request_id: bytes
    state: RequestState
    advertiser_key: bytes
    holder_key: bytes
    claims: bytes
    created_at: int
    expires_at: int
    updated_at: int
    reason: str = ""
    failure: str = ""
    auto_approved: bool = False
    message: str = ""
    licence_id: bytes = b""


class LiveLicence(NamedTuple):
    """What an exclusivity check reads of a live licence (:meth:`Store.live_licences`):
    three columns of its row, where a whole :class:`LicenceRow` was five times the work."""

    licence_id: bytes
    exclusive: bool
    token: str


@dataclass(frozen=True, slots=True)
class LicenceRow:
    """An issued licence as the exchange keeps it."""

    licence_id: bytes
    request_id: bytes
    token: str
    holder_key: bytes
    licensee_key: bytes
    issued_at: int
    not_before: int
    not_after: int
    status_index: int
    max_uses: int
    uses: int
    exclusive: bool
    revoked_at: int = 0
    #: The key that consented: the holder's device key the claims name (or that signed the
    #: standing rule); ``holder_key`` is the holder's account.
    consent_key: bytes = b""
    #: The licensee key the claims name, which presents it; ``licensee_key`` is the
    #: advertiser's account.
    licensee_device: bytes = b""
    #: The plain SHA-256 of each asset it licenses, concatenated in the claims' order (a v2
    #: token names them salted); empty for a v1 licence, whose token names them plain.
    asset_digests: bytes = b""

    @property
    def plain_assets(self) -> tuple[bytes, ...]:
        """The plain SHA-256 of each licensed asset, in the claims' order."""
        if not self.asset_digests:  # a v1 licence names them plain; an erased one, none
            return tuple(parse_token(self.token).asset_categories) if self.token else ()
        d = self.asset_digests
        return tuple(d[i : i + 32] for i in range(0, len(d), 32))

    #: The holder's device key that approved the request when ``consent_key`` is a pairwise
    #: key (a pseudonym, docs/token-format.md §1b); empty otherwise (``consent_key`` is then
    #: the device, or the key that signed the standing rule).
    consent_device: bytes = b""
    #: The status list holding ``status_index`` (0: the legacy list, licences issued before
    #: status lists were sharded).
    status_list: int = 0

    def state_at(self, now: int) -> states.LicenceState:
        """REVOKED, EXPIRED or ACTIVE at ``now`` (ACTIVE also before ``not_before``)."""
        if self.revoked_at:
            return states.LicenceState.REVOKED
        if now >= self.not_after:
            return states.LicenceState.EXPIRED
        return states.LicenceState.ACTIVE


@dataclass(frozen=True, slots=True)
class RevocationEvent:
    """One status-list change, in sequence order."""

    sequence: int
    status_index: int
    licence_id: bytes
    licensee_key: bytes
    revoked_at: int
    cause: Cause
    #: The status list holding ``status_index`` (0: the legacy list).
    status_list: int = 0


@dataclass(frozen=True, slots=True)
class Access:
    """A licensee's fetch of a holder's asset."""

    holder_key: bytes
    sha256: bytes
    licence_id: bytes
    licensee_key: bytes
    accessed_at: int


@dataclass(frozen=True, slots=True)
class StandingRuleRow:
    """A holder's signed standing rule."""

    rule_id: bytes
    holder_key: bytes
    rule: bytes
    signature: bytes
    created_at: int
    withdrawn_at: int = 0


@dataclass(frozen=True, slots=True)
class IssuerKeyRow:
    """A published issuer key and its signing window (``not_after`` 0 while current)."""

    key_id: bytes
    public_key: bytes
    not_before: int
    not_after: int = 0


@dataclass(frozen=True, slots=True)
class LedgerLine:
    """One posting as it touched one party's available balance."""

    posting_id: int
    #: The posting's kind, as ``ledger.Kind`` names it (``DEPOSIT``, ``ESCROW``, …).
    kind: str
    licence_id: bytes
    at: int
    #: Signed minor units: + credited to the party, - debited.
    amount: int
    #: The exchange's fee taken in the same posting (accrual and use lines of a holder).
    fee: int
    #: The deposit's payment reference or the withdrawal's payout reference.
    reference: str


@dataclass(frozen=True, slots=True)
class Statement:
    """A party's money, settled up to the time it was taken."""

    available: int
    #: Advertiser: held in escrow for its open licences. Holder: what its open licences will
    #: still earn it if they run their term and every use is made.
    pending: int
    #: Holder: earned so far; advertiser: spent so far (paid out of escrow to holders and
    #: the fee: escrowed, less refunded, less still held).
    total: int
    lines: tuple[LedgerLine, ...]
    #: Pass as ``before`` for the next page (0 when there is none).
    next_before: int
    #: Advertiser: what its pending requests reserve of ``available`` (what their
    #: approval will escrow), and how many they are; 0 for a holder.
    reserved: int = 0
    reserved_requests: int = 0


@dataclass(frozen=True, slots=True)
class PayoutDestination:
    """A holder's payout destination: usable from ``usable_at`` until it is cancelled."""

    holder_key: bytes
    reference: str
    added_at: int
    usable_at: int
    #: 0 while it is not cancelled.
    cancelled_at: int = 0

    def state_at(self, now: int) -> str:
        """``CANCELLED``, ``PENDING`` (before ``usable_at``) or ``CONFIRMED`` at ``now``: the
        names of ``licentia.v1.PayoutDestinationState`` without their prefix."""
        if self.cancelled_at:
            return "CANCELLED"
        return "PENDING" if now < self.usable_at else "CONFIRMED"


@dataclass(frozen=True, slots=True)
class KeyRow:
    """One key of an account, current or removed."""

    public_key: bytes
    account: bytes
    role: int
    name: str
    added_seq: int
    added_at: int
    removed_seq: int = 0
    removed_at: int = 0
    cause: int = 0


@dataclass(frozen=True, slots=True)
class KeySetState:
    """An account's key set as the store holds it: the set the chain ends with, every key
    that was ever in it, and the chain (each change's serialized SignedKeySetChange)."""

    current: KeySet
    keys: tuple[KeyRow, ...]
    changes: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class KeySetChanged:
    """What one change did."""

    state: KeySetState
    #: The revocations of licences bound to licensee keys that left as compromised.
    revocations: tuple[RevocationEvent, ...]
