"""RegistryService: parties, assets, terms, and the holder's rights (access, rectification,
erasure, objection)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator, Mapping
from dataclasses import replace

from nacl.signing import SigningKey

from licentia import content_certs
from licentia.erasure import sign_erasure_receipt
from licentia.errors import LicentiaError, Reason
from licentia.v1 import registry_pb2

from . import convert, market, uploads
from .accounts import key_set_to
from .deps import INLINE_ASSET_BYTES, UPLOAD_CHUNK_BYTES, Deps
from .ledger_service import destination_to, line_to
from .model import AssetRow, Cause, Party, Role
from .rpc import Call, Method
from .store._erasure import KEPT_AFTER_ERASURE
from .transparency import evidence

#: ListPlatforms: the default and the largest page.
DEFAULT_PLATFORM_PAGE = 100
MAX_PLATFORM_PAGE = 1000
#: Digests one EraseAssets names at most: each revocation it causes logs the signed call,
#: sealed in a box of at most 8 KiB (licentia.sealed), and 200 digests fit with room to spare.
MAX_ERASED_DIGESTS = 200


class RegistryService:
    """The servicer: converts the wire to the rules and the store, and back."""

    def __init__(self, deps: Deps) -> None:
        self.d = deps
        #: The uploads in progress (``--max-uploads``, and a few per holder).
        self.upload_slots = uploads.UploadSlots(deps.settings.max_uploads)

    def methods(self) -> Mapping[str, Method]:
        """The handlers, by method name."""
        cap = min(self.d.settings.max_asset_bytes, INLINE_ASSET_BYTES) + 4096
        return {
            "RegisterHolder": Method(self.register_holder),
            "RegisterAdvertiser": Method(self.register_advertiser),
            "RegisterPlatform": Method(self.register_platform),
            "GetProfile": Method(self.get_profile),
            "UpdateProfile": Method(self.update_profile),
            "DeclareAsset": Method(self.declare_asset, max_request_bytes=cap),
            "ListAssets": Method(self.list_assets),
            "SetTerms": Method(self.set_terms),
            "GetTerms": Method(self.get_terms),
            "SetObjection": Method(self.set_objection),
            "ExportData": Method(self.export_data),
            "EraseAssets": Method(self.erase_assets),
            "DeleteAccount": Method(self.delete_account),
            "ListPlatforms": Method(self.list_platforms, signed=False),
            "UploadAsset": Method(
                self.upload_asset,
                max_request_bytes=UPLOAD_CHUNK_BYTES + 1024,
                signed_over_first=True,
                first_message_seconds=self.d.settings.upload_header_seconds,
            ),
            "GetAssetLimits": Method(self.get_asset_limits, signed=False),
            "IssueContentCertificate": Method(self.issue_content_certificate),
        }

    def issue_content_certificate(
        self, req: registry_pb2.IssueContentCertificateRequest, call: Call
    ) -> registry_pb2.IssueContentCertificateResponse:
        """A content certificate for the calling advertiser's own key (docs/token-format.md
        §12), issued by the current issuer key and valid twice the content term (the longest
        licence term, capped: content_certs.content_term; checkers drop a retired key's root
        with the same term, published by GetIssuerKeys) (so
        a certificate fetched today outlives every licence issued before half its life is
        gone; the SDK fetches a new one when a licence would outlive it)."""
        party = self.d.party(call, Role.ADVERTISER)
        assert call.caller is not None
        signer = self.d.keyring.current(call.now)
        key = self.d.keyring.resolve(signer.public.key_id)
        root = self.d.keyring.content_root(key) if key is not None else None
        if key is None or root is None:
            raise LicentiaError(Reason.UNAVAILABLE, "the current issuer key is not held here")
        valid = 2 * content_certs.content_term(self.d.settings.max_term_seconds)
        certificate = content_certs.content_certificate(
            SigningKey(signer.seed),
            key.key_id,
            root,
            call.caller.raw,
            party.display_name,
            call.now,
            valid,
        )
        return registry_pb2.IssueContentCertificateResponse(
            certificate=certificate,
            root=root,
            issuer_key_id=key.key_id,
            not_after=call.now + valid,
        )

    def _register(
        self, call: Call, role: Role, handle: str, name: str, country: str, *, show: bool = False
    ) -> Party:
        assert call.caller is not None
        party = Party(call.caller.raw, role, handle, name, country, call.now, show_name=show)
        self.d.store.add_party(party, nonces=call.spends)
        return party

    def register_holder(
        self, req: registry_pb2.RegisterHolderRequest, call: Call
    ) -> registry_pb2.RegisterHolderResponse:
        """Register the caller as a holder."""
        market.check_handle(req.handle, "handle")
        market.check_text(req.display_name, "display name")
        party = self._register(
            call, Role.HOLDER, req.handle, req.display_name, "", show=req.show_display_name
        )
        return registry_pb2.RegisterHolderResponse(profile=convert.profile_to(party))

    def register_advertiser(
        self, req: registry_pb2.RegisterAdvertiserRequest, call: Call
    ) -> registry_pb2.RegisterAdvertiserResponse:
        """Register the caller as an advertiser."""
        market.check_text(req.organisation, "organisation", required=True)
        market.check_country(req.country)
        party = self._register(call, Role.ADVERTISER, "", req.organisation, req.country)
        return registry_pb2.RegisterAdvertiserResponse(profile=convert.profile_to(party))

    def register_platform(
        self, req: registry_pb2.RegisterPlatformRequest, call: Call
    ) -> registry_pb2.RegisterPlatformResponse:
        """Register the caller as a platform."""
        market.check_handle(req.platform_id, "platform id")
        market.check_text(req.name, "name", required=True)
        party = self._register(call, Role.PLATFORM, req.platform_id, req.name, "")
        return registry_pb2.RegisterPlatformResponse(profile=convert.profile_to(party))

    def get_profile(
        self, req: registry_pb2.GetProfileRequest, call: Call
    ) -> registry_pb2.GetProfileResponse:
        """The caller's profile (her recovery key may read it too: the wallet checks that a
        phrase is for the account it expects before recovering it)."""
        party = self.d.party(call, recovery=True)
        return registry_pb2.GetProfileResponse(profile=convert.profile_to(party))

    def list_platforms(
        self, req: registry_pb2.ListPlatformsRequest, call: Call
    ) -> registry_pb2.ListPlatformsResponse:
        """The registered platforms, a page at a time, by platform id (public: platforms
        are organisations, not people)."""
        size = req.page_size or DEFAULT_PLATFORM_PAGE
        if not 1 <= size <= MAX_PLATFORM_PAGE:
            raise LicentiaError(Reason.INVALID_REQUEST, f"page size is 1 to {MAX_PLATFORM_PAGE}")
        if len(req.page_token) > 32:  # a platform id
            raise LicentiaError(Reason.INVALID_REQUEST, "bad page token")
        rows = self.d.store.platforms(req.page_token, size + 1)
        out = registry_pb2.ListPlatformsResponse()
        devices = self.d.store.device_keys([party.key for party in rows[:size]])
        for party in rows[:size]:
            out.platforms.add(
                key=party.key,
                platform_id=party.handle,
                registered_at=party.registered_at,
                device_keys=devices.get(party.key, []),
            )
        if len(rows) > size:
            out.next_page_token = rows[size - 1].handle
        return out

    def update_profile(
        self, req: registry_pb2.UpdateProfileRequest, call: Call
    ) -> registry_pb2.UpdateProfileResponse:
        """Rectify the caller's display name, and (holders) whether offers show it."""
        party = self.d.party(call)
        market.check_text(req.display_name, "display name", required=party.role != Role.HOLDER)
        show = req.show_display_name if req.HasField("show_display_name") else None
        if show is not None and party.role != Role.HOLDER:
            raise LicentiaError(Reason.INVALID_REQUEST, "only a holder's name is shown in offers")
        updated = self.d.store.update_party(
            party.key, display_name=req.display_name, show_name=show, nonces=call.spends
        )
        return registry_pb2.UpdateProfileResponse(profile=convert.profile_to(updated))

    def declare_asset(
        self, req: registry_pb2.DeclareAssetRequest, call: Call
    ) -> registry_pb2.DeclareAssetResponse:
        """Declare or rectify an asset; its bytes, when given, must match the digest."""
        holder = self.d.party(call, Role.HOLDER)
        category = uploads.declared(req.category, req.sha256, req.label)
        content: bytes | None = None
        if req.content:
            if len(req.content) > self.d.settings.max_asset_bytes:
                raise LicentiaError(
                    Reason.TOO_LARGE, "the asset is larger than the exchange stores"
                )
            if len(req.content) > INLINE_ASSET_BYTES:
                raise LicentiaError(
                    Reason.TOO_LARGE,
                    f"DeclareAsset carries at most {INLINE_ASSET_BYTES} bytes: upload larger"
                    " content with UploadAsset",
                )
            if not hmac.compare_digest(hashlib.sha256(req.content).digest(), req.sha256):
                raise LicentiaError(Reason.INVALID_REQUEST, "content does not match sha256")
            content = req.content
        row = AssetRow(holder.key, req.sha256, category, req.label, 0, False, call.now)
        stored = self.d.store.put_asset(row, content, nonces=call.spends)
        return registry_pb2.DeclareAssetResponse(asset=convert.asset_to(stored))

    def upload_asset(
        self, requests: Iterator[registry_pb2.UploadAssetRequest], call: Call
    ) -> registry_pb2.UploadAssetResponse:
        """Declare an asset with its bytes, streamed in chunks after a signed header that
        commits to their size and digest; nothing is stored unless all of them arrived and
        matched (:mod:`.uploads`)."""
        holder = self.d.party(call, Role.HOLDER)
        header, category = uploads.read_header(requests, self.d.settings.max_asset_bytes)
        budget = uploads.Budget(
            uploads.budget_seconds(header.size, self.d.settings.upload_floor_seconds)
        )
        with self.upload_slots.hold(holder.key):  # (until its bytes are stored: memory)
            with uploads.timed(requests, budget) as chunks:
                upload = uploads.receive(chunks, header, category, budget)
            row = AssetRow(holder.key, upload.sha256, category, upload.label, 0, False, call.now)
            stored = self.d.store.put_asset(row, upload.content, nonces=call.spends)
        return registry_pb2.UploadAssetResponse(asset=convert.asset_to(stored))

    def get_asset_limits(
        self, req: registry_pb2.GetAssetLimitsRequest, call: Call
    ) -> registry_pb2.GetAssetLimitsResponse:
        """The exchange's asset limits (public: a wallet checks a file before it asks for a
        passphrase)."""
        return registry_pb2.GetAssetLimitsResponse(
            max_asset_bytes=self.d.settings.max_asset_bytes,
            chunk_bytes=UPLOAD_CHUNK_BYTES,
            inline_asset_bytes=min(self.d.settings.max_asset_bytes, INLINE_ASSET_BYTES),
        )

    def list_assets(
        self, req: registry_pb2.ListAssetsRequest, call: Call
    ) -> registry_pb2.ListAssetsResponse:
        """The holder's assets."""
        holder = self.d.party(call, Role.HOLDER)
        return registry_pb2.ListAssetsResponse(
            assets=[convert.asset_to(a) for a in self.d.store.assets(holder.key)]
        )

    def set_terms(
        self, req: registry_pb2.SetTermsRequest, call: Call
    ) -> registry_pb2.SetTermsResponse:
        """Replace the holder's terms."""
        holder = self.d.party(call, Role.HOLDER)
        if not req.HasField("terms"):
            raise LicentiaError(Reason.INVALID_REQUEST, "terms are required")
        terms = replace(convert.terms_from(req.terms), updated_at=call.now)
        if terms.currency != self.d.settings.currency:
            raise LicentiaError(
                Reason.INVALID_REQUEST, f"this exchange trades in {self.d.settings.currency}"
            )
        market.check_terms(terms, self.d.settings.max_term_seconds)
        self.d.store.set_terms(holder.key, terms, nonces=call.spends)
        return registry_pb2.SetTermsResponse(terms=convert.terms_to(terms))

    def get_terms(
        self, req: registry_pb2.GetTermsRequest, call: Call
    ) -> registry_pb2.GetTermsResponse:
        """The holder's terms (absent when none are set)."""
        holder = self.d.party(call, Role.HOLDER)
        terms = self.d.store.terms(holder.key)
        out = registry_pb2.GetTermsResponse()
        if terms is not None:
            out.terms.CopyFrom(convert.terms_to(terms))
        return out

    def set_objection(
        self, req: registry_pb2.SetObjectionRequest, call: Call
    ) -> registry_pb2.SetObjectionResponse:
        """Opt out (object) or back in."""
        holder = self.d.party(call, Role.HOLDER)
        updated = self.d.store.update_party(holder.key, objecting=req.objecting, nonces=call.spends)
        return registry_pb2.SetObjectionResponse(profile=convert.profile_to(updated))

    def export_data(
        self, req: registry_pb2.ExportDataRequest, call: Call
    ) -> registry_pb2.ExportDataResponse:
        """Everything held about the holder (the right of access)."""
        holder = self.d.party(call, Role.HOLDER)
        s = self.d.store
        out = registry_pb2.ExportDataResponse(
            profile=convert.profile_to(holder),
            assets=[convert.asset_to(a) for a in s.assets(holder.key)],
            exported_at=call.now,
        )
        terms = s.terms(holder.key)
        if terms is not None:
            out.terms.CopyFrom(convert.terms_to(terms))
        for r in s.requests_for_holder(holder.key, include_answered=True, limit=1 << 31):
            adv = s.party(r.advertiser_key)
            organisation = adv.display_name if adv else ""
            seen = convert.for_holder(r)  # as her inbox shows it: no advertiser's money
            out.requests.append(convert.request_to(seen, organisation, offer_ref=None))
        everything = s.licences_of(holder.key, before_issued=1 << 62, limit=1 << 31)
        out.licences.extend(
            convert.licence_to(x, call.now, to_holder=True)
            for x in everything
            if x.holder_key == holder.key
        )
        for a in s.accesses(holder.key, limit=1 << 31):
            out.accesses.add(
                sha256=a.sha256,
                licence_id=a.licence_id,
                licensee_key=a.licensee_key,
                accessed_at=a.accessed_at,
            )
        out.standing_rules.extend(convert.rule_to(r) for r in s.rules(holder.key))
        out.payout_destinations.extend(
            destination_to(d, call.now)
            for d in s.payout_destinations(holder.key, cancelled=1 << 31)
        )
        assert call.caller is not None  # a signed call
        out.key_set.CopyFrom(key_set_to(s.key_set(holder.key), call.caller.raw))
        out.ledger.extend(line_to(x) for x in s.statement(holder, 0, 1 << 31).lines)
        return out

    def erase_assets(
        self, req: registry_pb2.EraseAssetsRequest, call: Call
    ) -> registry_pb2.EraseAssetsResponse:
        """Erase assets and revoke every live licence on them (each licensee is told)."""
        holder = self.d.party(call, Role.HOLDER)
        if len(req.sha256) > MAX_ERASED_DIGESTS:
            raise LicentiaError(
                Reason.TOO_LARGE, f"at most {MAX_ERASED_DIGESTS} digests (none: every asset)"
            )
        digests = list(req.sha256) or None
        erased, events = self.d.store.erase_assets(
            holder.key, digests, call.now, evidence(call), nonces=call.spends
        )
        self.d.hub.publish(events)
        return registry_pb2.EraseAssetsResponse(
            erased=erased,
            revoked_licence_ids=[e.licence_id for e in events if e.cause == Cause.ERASED],
        )

    def delete_account(
        self, req: registry_pb2.DeleteAccountRequest, call: Call
    ) -> registry_pb2.DeleteAccountResponse:
        """Delete the calling holder's account (the right to erasure, all of it): her live
        licences revoked (each licensee told, each advertiser refunded what was not yet
        earned), every row about her erased but the ledger's, her keys refused from then on;
        answered with a receipt signed by the exchange's issuer key. BALANCE_OWED, changing
        nothing, while money is owed to her."""
        holder = self.d.party(call, Role.HOLDER)
        done = self.d.store.erase_account(holder.key, call.now, evidence(call), nonces=call.spends)
        self.d.hub.publish(list(done.revocations))
        self.d.forget_keys()
        receipt = registry_pb2.ErasureReceipt(
            account=done.account,
            erased_at=done.erased_at,
            revoked_licence_ids=[e.licence_id for e in done.revocations],
            assets_erased=done.assets_erased,
            log_index=done.log_index,
            erased=list(done.erased),
            kept=list(KEPT_AFTER_ERASURE),
        )
        signed = sign_erasure_receipt(self.d.keyring.current(), receipt)
        return registry_pb2.DeleteAccountResponse(receipt=signed)
