"""LicenceService: licences after issuance, revocation, the status feed, keys, asset fetches."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator, Mapping

from licentia import content_certs, keys
from licentia.errors import LicentiaError, Reason
from licentia.states import LicenceState
from licentia.token import parse_token
from licentia.v1 import licences_pb2, records_pb2, status_pb2

from . import convert, uploads
from .deps import INLINE_ASSET_BYTES, Deps
from .hub import Heartbeat, Snapshot
from .model import Access, Cause, LicenceRow, RevocationEvent, Role
from .rpc import Call, Method
from .transparency import evidence

MAX_PAGE = 500
#: Issuance times a page token may name (a bound far beyond any date, within the store's ints).
MAX_ISSUED = 1 << 62
#: Licences of one second a page token may skip.
MAX_SKIP = 1 << 31


def sign_receipt(
    d: Deps, lic: LicenceRow, ev: RevocationEvent
) -> records_pb2.SignedTerminationReceipt:
    """The exchange's signed termination receipt for a revocation."""
    signer = d.keyring.current()
    data = records_pb2.TerminationReceipt(
        licence_id=lic.licence_id,
        # The key the token names: her pseudonym (§1b), a device key, or none under a v2
        # standing rule; never her account.
        holder_key=parse_token(lic.token).holder_key if lic.token else b"",
        licensee_key=lic.licensee_key,
        revoked_at=ev.revoked_at,
        status_index=ev.status_index,
        sequence=ev.sequence,
        status_list=ev.status_list,
    ).SerializeToString(deterministic=True)
    return records_pb2.SignedTerminationReceipt(
        receipt=data,
        issuer_key_id=signer.public.key_id,
        signature=signer.sign(keys.TERMINATION_RECEIPT, data),
    )


class LicenceService:
    """The servicer of licences and their status."""

    def __init__(self, deps: Deps) -> None:
        self.d = deps

    def methods(self) -> Mapping[str, Method]:
        """The handlers, by method name."""
        return {
            "GetLicence": Method(self.get_licence),
            "ListLicences": Method(self.list_licences),
            "RevokeLicence": Method(self.revoke_licence),
            "WatchRevocations": Method(self.watch_revocations, signed=False),
            "GetStatusSnapshot": Method(self.get_status_snapshot, signed=False),
            "GetIssuerKeys": Method(self.get_issuer_keys, signed=False),
            "FetchAsset": Method(self.fetch_asset),
            "ListAccesses": Method(self.list_accesses),
            "WatchLicenceEvents": Method(self.watch_licence_events),
            "FetchAssetChunks": Method(self.fetch_asset_chunks),
        }

    def _visible(self, licence_id: bytes, call: Call) -> LicenceRow:
        """The licence, if the caller is its holder or its licensee. Only holders and
        advertisers have licences: another role is NOT_OWNER, as at every call not for its
        role; another holder's or advertiser's licence is NOT_FOUND, as a missing one."""
        party = self.d.party(call, Role.HOLDER, Role.ADVERTISER)
        lic = self.d.store.licence(licence_id) if len(licence_id) == 16 else None
        if lic is None or party.key not in (lic.holder_key, lic.licensee_key):
            raise LicentiaError(Reason.NOT_FOUND, "no such licence")
        return lic

    def get_licence(
        self, req: licences_pb2.GetLicenceRequest, call: Call
    ) -> licences_pb2.GetLicenceResponse:
        """One licence, for its holder or its licensee."""
        lic = self._visible(req.licence_id, call)
        holder = self.d.party(call).key == lic.holder_key
        return licences_pb2.GetLicenceResponse(
            licence=convert.licence_to(lic, call.now, to_holder=holder)
        )

    def list_licences(
        self, req: licences_pb2.ListLicencesRequest, call: Call
    ) -> licences_pb2.ListLicencesResponse:
        """The caller's licences (as holder or licensee), newest first, by page; a platform
        has none to list (NOT_OWNER)."""
        party = self.d.party(call, Role.HOLDER, Role.ADVERTISER)
        size = req.page_size or 100
        if not 1 <= size <= MAX_PAGE:
            raise LicentiaError(Reason.INVALID_REQUEST, f"page size is 1 to {MAX_PAGE}")
        # A page token names the second the page's last licence was issued in and how many
        # licences of that second have been listed, so that licences issued in the same
        # second (listed newest first, then by insertion) are neither skipped nor repeated.
        before, skip = MAX_ISSUED, 0
        if req.page_token:
            try:
                raw = base64.urlsafe_b64decode(req.page_token.encode("ascii")).decode("ascii")
                second, dot, count = raw.partition(".")
                before, skip = int(second) + 1, int(count)
            except (ValueError, UnicodeError):
                raise LicentiaError(Reason.INVALID_REQUEST, "bad page token") from None
            if not (dot and 0 < before <= MAX_ISSUED and 0 < skip <= MAX_SKIP):
                raise LicentiaError(Reason.INVALID_REQUEST, "bad page token")
        rows = self.d.store.licences_of(party.key, before_issued=before, limit=skip + size + 1)
        rows = rows[skip:]
        page = rows[:size]
        out = licences_pb2.ListLicencesResponse(
            licences=[
                convert.licence_to(x, call.now, to_holder=x.holder_key == party.key) for x in page
            ]
        )
        if len(rows) > size:
            last = page[-1].issued_at
            listed = sum(1 for x in page if x.issued_at == last)
            if last == before - 1:
                listed += skip
            out.next_page_token = base64.urlsafe_b64encode(f"{last}.{listed}".encode()).decode()
        return out

    def revoke_licence(
        self, req: licences_pb2.RevokeLicenceRequest, call: Call
    ) -> licences_pb2.RevokeLicenceResponse:
        """The holder revokes, at once; the receipt is signed; every verifier is told."""
        holder = self.d.party(call, Role.HOLDER)
        lic = self.d.store.licence(req.licence_id) if len(req.licence_id) == 16 else None
        if lic is None:
            raise LicentiaError(Reason.NOT_FOUND, "no such licence")
        if lic.holder_key != holder.key:
            if lic.licensee_key == holder.key:
                raise LicentiaError(Reason.NOT_OWNER, "only the holder revokes a licence")
            raise LicentiaError(Reason.NOT_FOUND, "no such licence")
        revoked, event = self.d.store.revoke(
            lic.licence_id, call.now, Cause.REVOKED, evidence(call), nonces=call.spends
        )
        self.d.hub.publish([event])
        return licences_pb2.RevokeLicenceResponse(
            licence=convert.licence_to(revoked, call.now, to_holder=True),
            receipt=sign_receipt(self.d, revoked, event),
        )

    def watch_revocations(
        self, req: licences_pb2.WatchRevocationsRequest, call: Call
    ) -> Iterator[licences_pb2.WatchRevocationsResponse]:
        """Every change after ``after_sequence``, then live, with heartbeats."""
        feed = self.d.hub.feed(
            req.after_sequence,
            self.d.settings.heartbeat_seconds,
            call.context.is_active,
            wake=_ended(call),
        )
        for item in feed:
            if isinstance(item, Snapshot):
                yield licences_pb2.WatchRevocationsResponse(
                    snapshot=status_pb2.SignedStatusSnapshot.FromString(item.signed)
                )
            elif isinstance(item, Heartbeat):
                yield licences_pb2.WatchRevocationsResponse(
                    heartbeat=self.d.hub.signed_heartbeat(item)
                )
            else:
                yield licences_pb2.WatchRevocationsResponse(event=self.d.hub.signed_event(item))

    def get_status_snapshot(
        self, req: licences_pb2.GetStatusSnapshotRequest, call: Call
    ) -> licences_pb2.GetStatusSnapshotResponse:
        """The signed status list now."""
        snap = self.d.hub.snapshot()
        return licences_pb2.GetStatusSnapshotResponse(
            snapshot=status_pb2.SignedStatusSnapshot.FromString(snap.signed)
        )

    def get_issuer_keys(
        self, req: licences_pb2.GetIssuerKeysRequest, call: Call
    ) -> licences_pb2.GetIssuerKeysResponse:
        """Every published issuer key, with the content root of each whose secret is held."""
        return licences_pb2.GetIssuerKeysResponse(
            keys=self.d.keyring.key_set.to_proto(),
            content_roots=self.d.keyring.content_roots(),
            content_term_seconds=content_certs.content_term(self.d.settings.max_term_seconds),
        )

    def fetch_asset(
        self, req: licences_pb2.FetchAssetRequest, call: Call
    ) -> licences_pb2.FetchAssetResponse:
        """The licensee gets an asset's bytes under a live licence that names it; recorded.
        An asset over :data:`.deps.INLINE_ASSET_BYTES` is TOO_LARGE here: FetchAssetChunks
        streams it."""
        return licences_pb2.FetchAssetResponse(content=self._fetched(req, call, whole=True))

    def fetch_asset_chunks(
        self, req: licences_pb2.FetchAssetRequest, call: Call
    ) -> Iterator[licences_pb2.FetchAssetChunk]:
        """FetchAsset for assets of any size, in chunks (:func:`.uploads.chunks`)."""
        yield from uploads.chunks(self._fetched(req, call, whole=False))

    def _fetched(self, req: licences_pb2.FetchAssetRequest, call: Call, *, whole: bool) -> bytes:
        """The asset's bytes for its licensee, the access recorded (``whole``: for one
        message, TOO_LARGE over :data:`.deps.INLINE_ASSET_BYTES`, nothing recorded)."""
        advertiser = self.d.party(call, Role.ADVERTISER)
        lic = self.d.store.licence(req.licence_id) if len(req.licence_id) == 16 else None
        if lic is None or lic.licensee_key != advertiser.key:
            raise LicentiaError(Reason.NOT_FOUND, "no such licence")
        state = lic.state_at(call.now)
        if state is not LicenceState.ACTIVE or call.now < lic.not_before:
            word = "not yet valid" if state is LicenceState.ACTIVE else state.name.lower()
            raise LicentiaError(Reason.LICENCE_NOT_ACTIVE, f"the licence is {word}")
        if req.sha256 not in lic.plain_assets:
            raise LicentiaError(Reason.ASSET_MISMATCH, "the licence does not name this asset")
        content = self.d.store.asset_content(lic.holder_key, req.sha256)
        if content is None:
            raise LicentiaError(Reason.NOT_FOUND, "the exchange holds no bytes for this asset")
        if whole and len(content) > INLINE_ASSET_BYTES:
            raise LicentiaError(
                Reason.TOO_LARGE,
                f"the asset is {len(content)} bytes, more than FetchAsset carries: fetch it"
                " with FetchAssetChunks",
            )
        self.d.store.record_access(
            Access(lic.holder_key, req.sha256, lic.licence_id, advertiser.key, call.now),
            nonces=call.spends,
        )
        return bytes(content)

    def list_accesses(
        self, req: licences_pb2.ListAccessesRequest, call: Call
    ) -> licences_pb2.ListAccessesResponse:
        """The holder's access log."""
        holder = self.d.party(call, Role.HOLDER)
        out = licences_pb2.ListAccessesResponse()
        for a in self.d.store.accesses(holder.key, 1000):
            out.accesses.add(
                sha256=a.sha256,
                licence_id=a.licence_id,
                licensee_key=a.licensee_key,
                accessed_at=a.accessed_at,
            )
        return out

    def watch_licence_events(
        self, req: licences_pb2.WatchLicenceEventsRequest, call: Call
    ) -> Iterator[licences_pb2.WatchLicenceEventsResponse]:
        """Terminations of the caller's licences as they happen, with heartbeats."""
        party = self.d.party(call, Role.ADVERTISER)
        feed = self.d.hub.feed(
            req.after_sequence,
            self.d.settings.heartbeat_seconds,
            call.context.is_active,
            snapshots=False,
            wake=_ended(call),
        )
        for item in feed:
            if isinstance(item, Heartbeat):
                yield licences_pb2.WatchLicenceEventsResponse(sequence=item.sequence, at=item.at)
            elif isinstance(item, RevocationEvent) and item.licensee_key == party.key:
                yield licences_pb2.WatchLicenceEventsResponse(
                    sequence=item.sequence,
                    licence_id=item.licence_id,
                    cause=int(item.cause),  # type: ignore[arg-type]
                    at=item.revoked_at,
                )


def _ended(call: Call) -> threading.Event:
    """An event set as soon as ``call`` ends (the client cancels or goes away), so that a
    stream waiting for news ends at once and gives back its thread and its slot."""
    ended = threading.Event()
    if not call.context.add_callback(ended.set):
        ended.set()  # it has ended already
    return ended
