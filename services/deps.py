"""What every service of one exchange shares: the store, the keys, the status hub, settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from licentia.errors import LicentiaError, Reason
from licentia.keys import PrivateKey
from licentia.nonces import MemoryNonceStore
from licentia.token import DEFAULT_MAX_TERM_SECONDS

from .hub import RevocationHub
from .issuer import Keyring
from .model import Party, Role
from .rpc import Call, Clock
from .store import Store

#: The default payout delay: 72 hours.
DEFAULT_PAYOUT_DELAY_SECONDS = 72 * 3600


@dataclass(frozen=True)
class Settings:
    """The exchange's policy knobs."""

    #: The longest licence term the exchange issues (default one year).
    max_term_seconds: int = DEFAULT_MAX_TERM_SECONDS
    #: How long a request waits for the holder before it expires.
    request_ttl_seconds: int = 7 * 86400
    #: The largest asset the exchange stores.
    max_asset_bytes: int = 1 << 20
    #: Seconds between heartbeats on the revocation streams.
    heartbeat_seconds: float = 5.0
    #: The currency of the exchange (ISO 4217).
    currency: str = "EUR"
    #: The exchange's fee in basis points, stated in every licence's price terms.
    fee_bps: int = 1000
    #: The public log's origin line (C2SP tlog-checkpoint), unique to this exchange.
    log_origin: str = "licentia.exchange/log"
    #: How long after it is added a payout destination becomes usable (default 72 hours):
    #: the time a holder has to notice a destination she did not add, and cancel it.
    payout_delay_seconds: int = DEFAULT_PAYOUT_DELAY_SECONDS


@dataclass
class Deps:
    """The shared parts of one exchange process."""

    store: Store
    keyring: Keyring
    hub: RevocationHub
    clock: Clock
    settings: Settings = field(default_factory=Settings)
    #: The exchange operator's public key (32 raw bytes): it alone may credit balances.
    operator_key: bytes | None = None
    #: The key that signs the public log's checkpoints (None on a read-only replica).
    log_key: PrivateKey | None = None
    #: Presentation nonces seen by the Verify and ReportUse calls.
    presentation_nonces: MemoryNonceStore = field(default_factory=MemoryNonceStore)
    #: Registered platforms by key: a key's role and platform id never change, so the
    #: verification hot path looks them up once (bounded; cleared when full).
    _platforms: dict[bytes, Party] = field(default_factory=dict)

    def platform(self, call: Call) -> Party:
        """The calling platform (as :meth:`party` with ``Role.PLATFORM``), cached."""
        key = call.caller.raw if call.caller is not None else b""
        cached = self._platforms.get(key)
        if cached is not None:
            return cached
        party = self.party(call, Role.PLATFORM)
        if len(self._platforms) >= 10_000:
            self._platforms.clear()
        self._platforms[key] = party
        return party

    def party(self, call: Call, *roles: Role) -> Party:
        """The registered caller, in one of ``roles`` (UNKNOWN_KEY / NOT_OWNER otherwise)."""
        if call.caller is None:
            raise LicentiaError(Reason.BAD_REQUEST_SIGNATURE, "the call is not signed")
        party = self.store.party(call.caller.raw)
        if party is None:
            raise LicentiaError(Reason.UNKNOWN_KEY, "the signing key is not registered")
        if roles and party.role not in roles:
            raise LicentiaError(Reason.NOT_OWNER, "this call is not for this party's role")
        return party
