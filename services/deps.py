"""What every service of one exchange shares: the store, the keys, the status hub, settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from licentia import keyset
from licentia.errors import LicentiaError, Reason
from licentia.keys import PrivateKey
from licentia.nonces import MemoryNonceStore, NonceStore
from licentia.status import DEFAULT_EPOCH_SECONDS, DEFAULT_LIST_SIZE, MAX_STATUS_BITS
from licentia.token import DEFAULT_MAX_TERM_SECONDS

from .digest_quota import DEFAULT_ASSET_DIGEST_QUOTA, MAX_ASSET_DIGEST_QUOTA
from .hub import RevocationHub
from .issuer import Keyring
from .model import KeyRow, Party, Role
from .rpc import Call, Clock
from .store import Store

#: The largest asset the exchange stores by default (``--max-asset-bytes``): 50 MiB.
DEFAULT_MAX_ASSET_BYTES = 50 * 1024 * 1024
#: The most bytes DeclareAsset carries inline (larger content goes through UploadAsset).
INLINE_ASSET_BYTES = 1 << 20
#: The largest cap ``--max-asset-bytes`` takes (an upload is held in memory until its
#: digest is checked, and a SQLite or PostgreSQL value holds under 1 GB).
MAX_ASSET_BYTES_CAP = 512 * 1024 * 1024
#: The most bytes one UploadAsset chunk, and one FetchAssetChunks message, carries.
UPLOAD_CHUNK_BYTES = 256 * 1024
#: The uploads in progress at once by default (``--max-uploads``): each holds a worker
#: thread and up to ``--max-asset-bytes`` of memory until it ends.
DEFAULT_MAX_UPLOADS = 4
#: The most uploads ``--max-uploads`` allows at once.
MAX_UPLOADS_CAP = 64
#: The default payout delay: 72 hours.
DEFAULT_PAYOUT_DELAY_SECONDS = 72 * 3600
#: The default retention period: 90 days.
DEFAULT_RETENTION_SECONDS = 90 * 86400
#: How long the verification hot path trusts its last read of a platform's key (seconds).
PLATFORM_CACHE_SECONDS = 1


@dataclass(frozen=True)
class Settings:
    """The exchange's policy knobs."""

    #: The longest licence term the exchange issues (default one year).
    max_term_seconds: int = DEFAULT_MAX_TERM_SECONDS
    #: How long a request waits for the holder before it expires.
    request_ttl_seconds: int = 7 * 86400
    #: The largest asset the exchange stores (``--max-asset-bytes``; uploaded in chunks
    #: over :data:`INLINE_ASSET_BYTES`).
    max_asset_bytes: int = DEFAULT_MAX_ASSET_BYTES
    #: The uploads in progress at once (``--max-uploads``; :class:`.uploads.UploadSlots`).
    max_uploads: int = DEFAULT_MAX_UPLOADS
    #: The least time an upload is given to finish, in seconds (more for a large one:
    #: :func:`.uploads.budget_seconds`).
    upload_floor_seconds: float = 30.0
    #: How long an upload may take to send its header, in seconds from the call's start:
    #: a slower one is refused (BUSY) and its stream slot freed.
    upload_header_seconds: float = 10.0
    #: The open streams one client address may hold at once (response streams and
    #: uploads; :class:`.rpc.StreamLimit`): 0 for half of the server's stream slots.
    max_streams_per_client: int = 0
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
    #: How long after the last money movement of a finished request or licence its
    #: personal fields are kept (default 90 days; docs/operations.md, "Retention").
    retention_seconds: int = DEFAULT_RETENTION_SECONDS
    #: How many licences one status list holds (``--status-list-size``, at most 2^26).
    status_list_size: int = DEFAULT_LIST_SIZE
    #: The length of a status list's expiry epoch (``--status-epoch-days``): a licence goes
    #: to a list of the epoch of its ``not_after``, dropped once the epoch has ended.
    status_epoch_seconds: int = DEFAULT_EPOCH_SECONDS
    #: The digests one platform may ask ``CheckAssetDigests`` about per UTC day, per
    #: process (``--asset-digest-quota``; :class:`.digest_quota.DigestQuota`).
    asset_digest_quota: int = DEFAULT_ASSET_DIGEST_QUOTA

    def __post_init__(self) -> None:
        if not 0 < self.status_list_size <= MAX_STATUS_BITS:
            raise ValueError(f"--status-list-size is 1 to {MAX_STATUS_BITS}")
        if not 0 < self.status_epoch_seconds <= 3650 * 86400:
            raise ValueError("--status-epoch-days is 1 to 3650")
        if not 0 < self.max_asset_bytes <= MAX_ASSET_BYTES_CAP:
            raise ValueError(f"--max-asset-bytes is 1 to {MAX_ASSET_BYTES_CAP}")
        if not 0 < self.max_uploads <= MAX_UPLOADS_CAP:
            raise ValueError(f"--max-uploads is 1 to {MAX_UPLOADS_CAP}")
        if not self.upload_floor_seconds > 0:
            raise ValueError("the upload time floor is positive")
        if not self.upload_header_seconds > 0:
            raise ValueError("the upload header's time limit is positive")
        if not 0 < self.asset_digest_quota <= MAX_ASSET_DIGEST_QUOTA:
            raise ValueError(f"--asset-digest-quota is 1 to {MAX_ASSET_DIGEST_QUOTA}")
        if self.max_streams_per_client < 0:
            raise ValueError("the streams per client are 0 (half the slots) or positive")


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
    #: Presentation nonces seen by the Verify and ReportUse calls (shared by the processes
    #: of ``--processes N``).
    presentation_nonces: NonceStore = field(default_factory=MemoryNonceStore)
    #: Platforms by calling key: ``(when read, party)`` (bounded; cleared when full).
    _platforms: dict[bytes, tuple[int, Party]] = field(default_factory=dict)

    def platform(self, call: Call) -> Party:
        """The calling platform (as :meth:`party` with ``Role.PLATFORM``), on the
        verification hot path: an answer from the store is reused for
        :data:`PLATFORM_CACHE_SECONDS` (a key removed from a platform's set stops within
        that), and while the store is unreachable (UNAVAILABLE) the last answer stands, so
        that Verify still answers from memory (STATUS_STALE past its bound), as it must
        without a database."""
        key = call.caller.raw if call.caller is not None else b""
        cached = self._platforms.get(key)
        if cached is not None and call.now - cached[0] < PLATFORM_CACHE_SECONDS:
            return cached[1]
        try:
            party = self.party(call, Role.PLATFORM)
        except LicentiaError as e:
            if e.reason != Reason.UNAVAILABLE or cached is None:
                self._platforms.pop(key, None)
                raise
            return cached[1]
        if len(self._platforms) >= 10_000:
            self._platforms.clear()
        self._platforms[key] = (call.now, party)
        return party

    def forget_keys(self) -> None:
        """Drop what :meth:`platform` remembers (a key set changed in this process: the
        change holds here at once; other processes read again within their
        :data:`PLATFORM_CACHE_SECONDS`)."""
        self._platforms.clear()

    def party(self, call: Call, *roles: Role, recovery: bool = False) -> Party:
        """The registered party whose account the caller's key belongs to, in one of
        ``roles``: UNKNOWN_KEY for a key of no account, ACCOUNT_ERASED for a key of a deleted
        account, KEY_REMOVED for a key removed from
        its account's set, NOT_OWNER for another role or (unless ``recovery``) for the
        account's recovery key, which signs only key-set changes and a few safety calls."""
        return self.caller(call, *roles, recovery=recovery)[0]

    def caller(self, call: Call, *roles: Role, recovery: bool = False) -> tuple[Party, KeyRow]:
        """As :meth:`party`, with the calling key's row."""
        if call.caller is None:
            raise LicentiaError(Reason.BAD_REQUEST_SIGNATURE, "the call is not signed")
        found = self.store.key_owner(call.caller.raw)
        if found is None:
            if self.store.key_erased(call.caller.raw):
                raise LicentiaError(
                    Reason.ACCOUNT_ERASED,
                    "the signing key belonged to an account that was deleted: it signs nothing"
                    " any more",
                )
            raise LicentiaError(Reason.UNKNOWN_KEY, "the signing key is not registered")
        party, key = found
        if key.removed_at:
            raise LicentiaError(
                Reason.KEY_REMOVED, "the signing key was removed from its account's key set"
            )
        if key.role == keyset.RECOVERY and not recovery:
            raise LicentiaError(
                Reason.NOT_OWNER,
                "a recovery key signs only key-set changes: add a device with it first",
            )
        if roles and party.role not in roles:
            raise LicentiaError(Reason.NOT_OWNER, "this call is not for this party's role")
        return party, key
