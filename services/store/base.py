"""The store interface: every state change the exchange makes, each one transaction.

The services talk to a :class:`Store`; SQLite (:mod:`.sqlite`) is the embedded default, and
PostgreSQL (:mod:`.postgres`) serves an exchange on several replicas; both share their logic
(:mod:`.common`). The protocol is split by what each part holds (:class:`PartiesStore`,
:class:`RequestsStore`, :class:`LicencesStore`, :class:`LedgerStore`, :class:`LogStore`, and
in modules of their own the keys, the accounts and erasure), as the SQL store is (one module
each); every part's changes run in the backend's one transaction, so a change spanning
several parts stays atomic. Methods that change state are atomic: either everything they
describe happens, durably, or nothing does. They raise ``LicentiaError`` with a stable
reason when a rule refuses the change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from licentia.errors import Reason

from ..issuance import Issuance, Verdict
from ..model import (
    Access,
    AssetRow,
    Cause,
    LedgerLine,
    LicenceRow,
    LiveLicence,
    Party,
    PayoutDestination,
    RequestRow,
    RequestState,
    RevocationEvent,
    StandingRuleRow,
    Statement,
    Terms,
)

__all__ = ["AccountsStore", "ErasureStore", "KeysStore", "SpentNonce", "StaleVerdict", "Store"]


class StaleVerdict(Exception):  # noqa: N818 (not an error: a signal to decide again)
    """Raised, changing nothing, when an issuance's :class:`~..issuance.Verdict` was decided
    over live licences of the holder that are no longer those the store holds: decide again
    over :meth:`Store.live_licences` now."""


@dataclass(slots=True)
class SpentNonce:
    """A nonce a call spends: recorded durably by the first change the call commits.

    A signed request's nonce (and a reported presentation's) is remembered in memory by the
    process that checked it; that memory dies with the process, and other replicas never had
    it. So the change a call makes also records the call's nonces, in the same transaction
    (every changing method of :class:`Store` takes them as its ``nonces`` argument):
    a replay of a call that changed something is refused (``reason``) by any process, after
    any restart, for as long as the nonce lives (``expires_at``). A call that changed nothing
    records nothing (its replay changes nothing either, and the in-memory stores still
    refuse it within one process).
    """

    key: bytes
    #: Until when a replay is refused, and the call's time (both Unix seconds).
    expires_at: int
    now: int
    reason: Reason
    recorded: bool = False


class PartiesStore(Protocol):
    """Parties, their assets and terms, and standing rules (:mod:`._parties`)."""

    def add_party(self, party: Party, *, nonces: Sequence[SpentNonce] = ()) -> None:
        """Register a party; ALREADY_EXISTS if its key or handle is taken."""
        ...

    def party(self, key: bytes) -> Party | None:
        """The party with this key."""
        ...

    def platforms(self, after_handle: str, limit: int) -> list[Party]:
        """Registered platforms by platform id, after ``after_handle`` (at most ``limit``)."""
        ...

    def update_party(
        self,
        key: bytes,
        *,
        display_name: str | None = None,
        objecting: bool | None = None,
        show_name: bool | None = None,
        nonces: Sequence[SpentNonce] = (),
    ) -> Party:
        """Change a party's display name, whether offers show it (``show_name``), or its
        objection; NOT_FOUND if unknown."""
        ...

    def holders_by_prefix(self, prefix: bytes) -> list[Party]:
        """The holders whose account key starts with ``prefix`` (16 bytes; at most two:
        one but for a collision of 128-bit prefixes)."""
        ...

    # -- assets and terms ----------------------------------------------------------------
    def put_asset(
        self, row: AssetRow, content: bytes | bytearray | None, *, nonces: Sequence[SpentNonce] = ()
    ) -> AssetRow:
        """Declare or rectify an asset: label and category replaced; bytes replaced when
        ``content`` is given, kept otherwise."""
        ...

    def assets(self, holder_key: bytes) -> list[AssetRow]:
        """The holder's assets, oldest first."""
        ...

    def declared_digests(self, digests: Sequence[bytes]) -> set[bytes]:
        """Those of ``digests`` that are the SHA-256 of an asset some holder declared."""
        ...

    def asset_content(self, holder_key: bytes, sha256: bytes) -> bytes | None:
        """The stored bytes of an asset, if any."""
        ...

    def set_terms(
        self, holder_key: bytes, terms: Terms, *, nonces: Sequence[SpentNonce] = ()
    ) -> None:
        """Replace the holder's terms."""
        ...

    def terms(self, holder_key: bytes) -> Terms | None:
        """The holder's terms."""
        ...

    def offers(self, after_handle: str, limit: int) -> list[tuple[Party, Terms]]:
        """Holders that have terms and do not object, by handle, after ``after_handle``."""
        ...

    # -- standing rules --------------------------------------------------------------------
    def add_rule(self, row: StandingRuleRow, *, nonces: Sequence[SpentNonce] = ()) -> None:
        """Register a standing rule; ALREADY_EXISTS for a known rule id."""
        ...

    def rules(self, holder_key: bytes) -> list[StandingRuleRow]:
        """The holder's standing rules, oldest first."""
        ...

    def holder_offer(
        self, holder_key: bytes
    ) -> tuple[Terms | None, list[AssetRow], list[StandingRuleRow]]:
        """The holder's terms, assets and standing rules (:meth:`terms`, :meth:`assets`,
        :meth:`rules`), read together: a request's inputs."""
        ...

    def withdraw_rule(
        self, holder_key: bytes, rule_id: bytes, now: int, *, nonces: Sequence[SpentNonce] = ()
    ) -> StandingRuleRow:
        """Withdraw a rule of this holder; NOT_FOUND otherwise."""
        ...


class RequestsStore(Protocol):
    """Licence requests and the issuance of their licences (:mod:`._requests`)."""

    def reserve_status_slot(
        self, not_after: int, *, list_size: int = ..., epoch_seconds: int = ...
    ) -> tuple[int, int]:
        """``(list, index)`` in a list of ``not_after``'s expiry epoch, never given twice."""
        ...

    def add_request(
        self,
        row: RequestRow,
        *,
        auto: tuple[Issuance, Verdict] | None = None,
        now: int = 0,
        idempotency_key: bytes = b"",
        digest: bytes = b"",
        nonces: Sequence[SpentNonce] = (),
        cost: int = 0,
    ) -> RequestRow:
        """Store a new request, reserving ``cost`` (what its approval will escrow) of the
        advertiser's available funds — its balance less what its pending requests reserve —
        until it ends (INSUFFICIENT_FUNDS, nothing stored, when they fall short); with
        ``auto``, issue its licence in the same transaction (as :meth:`issue`; a refused
        issuance leaves the request FAILED with the reason, and the refusal is raised after
        the commit; a stale verdict raises :class:`StaleVerdict` and stores nothing). With
        an ``idempotency_key`` (and the request's ``digest``, 32 bytes, stored with it), the
        request the same advertiser made with that key before is returned instead and
        nothing is stored; IDEMPOTENCY_KEY_REUSED if that request had another digest."""
        ...

    def issued_licence(self, row: RequestRow) -> LicenceRow | None:
        """The licence of ``row``, the request this thread's last :meth:`add_request`
        returned (None if it has none): as it was stored, where the store kept it, else as
        read now (:meth:`licence`)."""
        ...

    def request_by_key(
        self, advertiser_key: bytes, idempotency_key: bytes, digest: bytes
    ) -> RequestRow | None:
        """The request an advertiser made with this idempotency key, if any
        (IDEMPOTENCY_KEY_REUSED if it was made with another digest)."""
        ...

    def request(self, request_id: bytes) -> RequestRow | None:
        """One request."""
        ...

    def requests_for_holder(
        self, holder_key: bytes, *, include_answered: bool, limit: int
    ) -> list[RequestRow]:
        """The holder's requests, newest first."""
        ...

    def finish_request(
        self,
        request_id: bytes,
        state: RequestState,
        now: int,
        *,
        reason: str = "",
        failure: str = "",
        nonces: Sequence[SpentNonce] = (),
    ) -> RequestRow:
        """Move a PENDING request to ``state``; REQUEST_NOT_PENDING if it is not pending."""
        ...

    def live_licences(
        self, holder_key: bytes, not_before: int, not_after: int, *, exclusive: bool
    ) -> list[LiveLicence]:
        """The holder's unrevoked licences that a new one over ``[not_before, not_after)``
        could conflict with: those overlapping it in time, and only the exclusive ones
        unless ``exclusive``. What :func:`~..issuance.verdict` decides over."""
        ...

    def issue(
        self, issuance: Issuance, verdict: Verdict, now: int, *, nonces: Sequence[SpentNonce] = ()
    ) -> RequestRow:
        """Apply a decided issuance to its pending request, in one transaction.

        The request must be PENDING (REQUEST_NOT_PENDING); the holder's live licences
        (:meth:`live_licences`) must still be those ``verdict`` saw (else
        :class:`StaleVerdict`, nothing changed); the verdict's refusal is raised; the
        advertiser's balance must cover the escrow (INSUFFICIENT_FUNDS). Then the licence,
        its money, escrow posting and log entry are stored and the request becomes ISSUED.
        """
        ...

    def expire_requests(self, advertiser_key: bytes, now: int) -> int:
        """Expire the advertiser's pending requests whose time to answer is over and
        release what they reserve; how many."""
        ...

    def reserved(self, advertiser_key: bytes) -> tuple[int, int]:
        """What the advertiser's pending requests reserve: ``(amount, requests)``."""
        ...


class LicencesStore(Protocol):
    """Licences and their status: revocations, uses, accesses, the status list
    (:mod:`._licences`)."""

    def licence(self, licence_id: bytes) -> LicenceRow | None:
        """One licence."""
        ...

    def licence_uses(self, licence_id: bytes) -> int:
        """The uses counted so far of one licence (0 for an unknown one): what a Verify of a
        counted licence reads, without the rest of the row."""
        ...

    def licences_of(self, party_key: bytes, *, before_issued: int, limit: int) -> list[LicenceRow]:
        """Licences where the party is holder or licensee, newest first."""
        ...

    def revoke(
        self,
        licence_id: bytes,
        now: int,
        cause: Cause,
        evidence: bytes = b"",
        *,
        nonces: Sequence[SpentNonce] = (),
    ) -> tuple[LicenceRow, RevocationEvent]:
        """Revoke a licence (idempotent: a revoked licence returns its first revocation).
        ``evidence`` is the holder's signed call (a serialized ``SignedCall``), logged with
        the revocation in the same transaction; so are the settlement and the refund."""
        ...

    def erase_assets(
        self,
        holder_key: bytes,
        digests: Sequence[bytes] | None,
        now: int,
        evidence: bytes = b"",
        *,
        nonces: Sequence[SpentNonce] = (),
    ) -> tuple[int, list[RevocationEvent]]:
        """Delete the holder's assets (all when ``digests`` is None) and revoke every live
        licence naming one of them, in one transaction."""
        ...

    def record_use(
        self,
        report_id: bytes,
        licence_id: bytes,
        platform_key: bytes,
        now: int,
        *,
        digest: bytes,
        nonces: Sequence[SpentNonce] = (),
    ) -> tuple[int, int]:
        """Count one use (idempotent by report id): ``(uses, recorded_at)``.

        USES_EXHAUSTED when the licence has a ``max_uses`` and it is reached;
        IDEMPOTENCY_KEY_REUSED when the report id was recorded with another digest.
        """
        ...

    def use_report(self, report_id: bytes, digest: bytes) -> tuple[bytes, int, int] | None:
        """A recorded use report: ``(licence_id, uses after it, recorded_at)``
        (IDEMPOTENCY_KEY_REUSED if it was recorded with another digest)."""
        ...

    def record_access(self, access: Access, *, nonces: Sequence[SpentNonce] = ()) -> None:
        """Record a licensee's fetch of an asset."""
        ...

    def accesses(self, holder_key: bytes, limit: int) -> list[Access]:
        """The holder's access log, newest first."""
        ...

    # -- the status list -----------------------------------------------------------------
    def events_after(self, sequence: int, limit: int) -> list[RevocationEvent]:
        """Revocation events with a larger sequence number, in order."""
        ...

    def status_lists(self, live_since: int) -> list[tuple[int, int]]:
        """``(list id, expires_at)`` of the lists with ``expires_at >= live_since``."""
        ...

    def status(self, live_since: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]], int]:
        """``(those lists, their revoked (list, index), last sequence)``, one snapshot."""
        ...

    def shared(self) -> bool:
        """True when other exchange processes may write to this store too: each replica must
        then follow the revocations the others commit (:meth:`wait_for_events`)."""
        ...

    def wait_for_events(self, after: int, timeout: float) -> bool:
        """Block until revocation events after sequence ``after`` may have been committed
        by another process, or for at most ``timeout`` seconds. True when there is news to
        read (then read :meth:`events_after`); False when the time ran out with none known.

        A backend that can be told (PostgreSQL's ``LISTEN``/``NOTIFY``) returns as soon as
        another process commits a revocation, and True after re-establishing a lost
        connection (what was said meanwhile is unknown: read to catch up). One that cannot
        (SQLite) sleeps ``timeout`` and returns False: the caller polls on a timer. Called
        from one thread at a time (the replica's follower thread)."""
        ...


class LedgerStore(Protocol):
    """Money: deposits, payouts, escrow, settlement and statements (:mod:`._ledger`)."""

    def deposit(
        self,
        advertiser_key: bytes,
        amount: int,
        reference: str,
        now: int,
        *,
        digest: bytes,
        nonces: Sequence[SpentNonce] = (),
    ) -> tuple[LedgerLine, int, bool]:
        """Credit an advertiser: ``(line, balance, replayed)``. Idempotent by ``reference``
        (IDEMPOTENCY_KEY_REUSED if it was credited for a request with another digest)."""
        ...

    def withdraw(
        self,
        holder_key: bytes,
        amount: int,
        payout_reference: str,
        idempotency_key: bytes,
        now: int,
        *,
        digest: bytes,
        nonces: Sequence[SpentNonce] = (),
    ) -> tuple[LedgerLine, int, bool]:
        """Pay a holder out: ``(line, balance, replayed)``. Idempotent by the key
        (IDEMPOTENCY_KEY_REUSED for a request with another digest); only to a confirmed
        payout destination of the holder, checked in the payout's transaction
        (PAYOUT_DESTINATION_UNKNOWN / PAYOUT_DESTINATION_PENDING); INSUFFICIENT_FUNDS
        beyond the available balance."""
        ...

    def settle(self, party_key: bytes, now: int, *, nonces: Sequence[SpentNonce] = ()) -> None:
        """Settle every open licence of the party up to ``now`` (idempotent)."""
        ...

    def add_payout_destination(
        self,
        holder_key: bytes,
        reference: str,
        now: int,
        usable_at: int,
        *,
        limit: int,
        nonces: Sequence[SpentNonce] = (),
    ) -> tuple[PayoutDestination, bool]:
        """Add a payout destination of the holder, usable from ``usable_at``:
        ``(destination, added)``. One with this reference not cancelled is returned
        unchanged (``added`` False); INVALID_REQUEST beyond ``limit`` not cancelled."""
        ...

    def cancel_payout_destination(
        self, holder_key: bytes, reference: str, now: int, *, nonces: Sequence[SpentNonce] = ()
    ) -> PayoutDestination:
        """Cancel the holder's destination not cancelled with this reference (pending or
        confirmed; NOT_FOUND if none): nothing is paid to it from then on."""
        ...

    def payout_destinations(
        self, holder_key: bytes, *, cancelled: int = 48
    ) -> list[PayoutDestination]:
        """The holder's destinations not cancelled and the ``cancelled`` most recently
        cancelled, oldest first."""
        ...

    def statement(self, party: Party, before: int, limit: int) -> Statement:
        """The party's balance, pending and total amounts and lines, newest first."""
        ...

    def ledger_check(self) -> list[str]:
        """The ledger's invariants checked over every row: what is wrong."""
        ...


class LogStore(Protocol):
    """The public log and its proofs (:mod:`._log`)."""

    def log_size(self) -> int:
        """The number of entries in the log now."""
        ...

    def log_head(self) -> tuple[int, bytes]:
        """``(tree size, root hash)`` of the log now."""
        ...

    def log_entries(self, start: int, end: int) -> list[tuple[int, bytes, int]]:
        """Entries ``[start, end)``: ``(index, entry bytes, appended at)``."""
        ...

    def log_index_of_licence(self, licence_id: bytes) -> int | None:
        """The index of a licence's issuance entry."""
        ...

    def log_inclusion(self, index: int, size: int) -> tuple[int, list[bytes], bytes]:
        """``(size, proof, entry)`` for entry ``index`` in the tree of ``size`` (0: now)."""
        ...

    def log_consistency(self, old_size: int, new_size: int) -> list[bytes]:
        """The consistency proof between two sizes of the tree."""
        ...


from .base_accounts import AccountsStore  # noqa: E402 (it needs SpentNonce, above)
from .base_erasure import ErasureStore  # noqa: E402 (it needs SpentNonce, above)
from .base_keys import KeysStore  # noqa: E402 (it needs SpentNonce, above)


class Store(
    PartiesStore,
    RequestsStore,
    LicencesStore,
    LedgerStore,
    LogStore,
    KeysStore,
    AccountsStore,
    ErasureStore,
    Protocol,
):
    """Durable state of one exchange: its parts, which share one transaction per change."""

    def spend_nonces(self, nonces: Sequence[SpentNonce]) -> None:
        """Record those of ``nonces`` not yet recorded by a change, in a transaction of
        their own; raise their reason if one is recorded and live."""
        ...

    def pending_migrations(self) -> list[str]:
        """The names of this version's migrations the database has not applied (a store
        opened read-only applies none: it must not be read at an older schema)."""
        ...

    def close(self) -> None:
        """Release the database."""
        ...
