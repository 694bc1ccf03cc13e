"""ExchangeService: offers, licence requests, the holder's consent, standing rules, issuance.

A request names the holder's account and the advertiser's calling key; the holder's device
that answers sees, and signs, the claims naming itself (:func:`.issuance.rebind`), so a
holder with several devices consents from any of them and the licence says which one.

An advertiser never sees a holder's account key, handle or plain asset digests before her
consent: offers, requests and the advertiser's views of them name her by its offer
reference, her assets by its asset references (:mod:`.refs`, docs/privacy.md).

Why one module of this size: a request's life (search, ask, watch, approve or decline,
auto-approval by a standing rule, issuance with its exclusivity verdict) is one state
machine whose steps share the request row, its rebinding and the wake-up condition.
"""

from __future__ import annotations

import dataclasses
import hmac
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar, cast

from licentia import keys, pairwise, territory
from licentia.errors import LicentiaError, Reason
from licentia.token import (
    MAX_ASSETS,
    Approval,
    Asset,
    Consent,
    LicenceClaims,
    StandingRule,
    new_asset_salt,
    new_licence_id,
    sensitive_reasons,
    time_ordered_id,
)
from licentia.v1 import exchange_pb2, records_pb2
from licentia.vocabulary import DataCategory, Medium, Purpose

from . import convert, issuance, ledger, market, refs
from .deps import Deps
from .idempotency import request_digest
from .ledger_service import payout_notices
from .model import AssetRow, LicenceRow, Party, RequestRow, RequestState, Role, StandingRuleRow
from .rpc import Call, Method
from .store import StaleVerdict
from .store.base import SpentNonce

MAX_PAGE = 100
MAX_INBOX = 500
#: How many times an issuance is decided again when the holder's live licences change
#: between the decision and its transaction (each time, another issuance committed).
MAX_VERDICTS = 64

T = TypeVar("T")


class ExchangeService:
    """The servicer of the market."""

    def __init__(self, deps: Deps) -> None:
        self.d = deps
        #: Woken whenever a request changes state (WatchRequest waits on it).
        self.changed = threading.Condition()
        self._ref_maker: refs.Refs | None = None

    def methods(self) -> Mapping[str, Method]:
        """The handlers, by method name."""
        return {
            "SearchOffers": Method(self.search_offers),
            "RequestLicence": Method(self.request_licence),
            "GetRequest": Method(self.get_request),
            "WatchRequest": Method(self.watch_request),
            "ListInbox": Method(self.list_inbox),
            "ApproveRequest": Method(self.approve_request),
            "DeclineRequest": Method(self.decline_request),
            "WithdrawRequest": Method(self.withdraw_request),
            "AddStandingRule": Method(self.add_standing_rule),
            "ListStandingRules": Method(self.list_standing_rules),
            "WithdrawStandingRule": Method(self.withdraw_standing_rule),
        }

    # -- helpers ---------------------------------------------------------------------------
    def _notify(self) -> None:
        with self.changed:
            self.changed.notify_all()

    def _refs(self) -> refs.Refs:
        """The advertisers' references, from the exchange's secret (read once)."""
        if self._ref_maker is None:
            self._ref_maker = refs.Refs(self.d.store.exchange_secret(refs.SECRET_NAME))
        return self._ref_maker

    def _holder_of(self, advertiser: bytes, ref: bytes) -> Party | None:
        """The holder ``advertiser``'s offer reference ``ref`` names, or None (a made-up
        reference, another caller's, a party that is no holder)."""
        r = self._refs()
        prefix = r.holder_prefix(advertiser, ref)
        if prefix is None:
            return None
        for party in self.d.store.holders_by_prefix(prefix):
            if r.is_offer_ref(advertiser, ref, party.key):
                return party
        return None

    def _assets_of(
        self,
        advertiser: bytes,
        holder: bytes,
        wanted: Sequence[bytes],
        declared: Sequence[AssetRow],
    ) -> list[bytes]:
        """The plain digests of the holder's assets that ``advertiser``'s references
        ``wanted`` name, in their order; NOT_FOUND for one that names none of them."""
        made = self._refs().asset_refs(advertiser, holder, [a.sha256 for a in declared])
        out: list[bytes] = []
        for ref in wanted:
            found = [a.sha256 for a, m in zip(declared, made, strict=True) if _same(m, ref)]
            if not found:
                raise LicentiaError(
                    Reason.NOT_FOUND,
                    "asset_refs: the holder offers no such asset to this advertiser "
                    "(use the references its search gave)",
                )
            out.append(found[0])
        return out

    def _offer_ref_of(self, row: RequestRow) -> bytes:
        """The request's holder as its advertiser knows her."""
        return self._refs().offer_ref(row.advertiser_key, row.holder_key)

    def _organisation(self, key: bytes) -> str:
        party = self.d.store.party(key)
        return party.display_name if party else ""

    def _visible_request(self, request_id: bytes, call: Call) -> tuple[RequestRow, bool]:
        """The request, if the caller is its advertiser or its holder (and whether it is its
        holder): another holder's or advertiser's is NOT_FOUND, as a missing one; a
        platform, whose role has no requests, is NOT_OWNER, as at every call not for its
        role."""
        party = self.d.party(call, Role.HOLDER, Role.ADVERTISER)
        row = self.d.store.request(request_id)
        if row is None or party.key not in (row.advertiser_key, row.holder_key):
            raise LicentiaError(Reason.NOT_FOUND, "no such request")
        return self._expire_if_due(row, call.now, call.spends), party.key == row.holder_key

    @staticmethod
    def _as_seen_by(row: RequestRow, call: Call) -> RequestRow:
        """The request as its holder's calling device sees it: the claims naming that
        device, the claims it signs to consent (:func:`.issuance.rebind`). The caller must
        be the request's holder. The advertiser's money is none of her business: a request
        that failed for it reads as one that can no longer be approved."""
        row = convert.for_holder(row)
        if row.state != RequestState.PENDING:
            return row
        device = call.caller.raw if call.caller is not None else row.holder_key
        stored = LicenceClaims.decode(row.claims)
        claims = issuance.rebind(stored, device)
        if claims is stored:
            return row
        return dataclasses.replace(row, claims=claims.encode())

    def _expire_if_due(
        self, row: RequestRow, now: int, nonces: Sequence[SpentNonce] = ()
    ) -> RequestRow:
        if row.state == RequestState.PENDING and now >= row.expires_at:
            try:
                row = self.d.store.finish_request(
                    row.request_id, RequestState.EXPIRED, now, nonces=nonces
                )
            except LicentiaError:
                row = self.d.store.request(row.request_id) or row
            self._notify()
        return row

    def _request_reply(
        self, row: RequestRow, now: int, *, holder: bool
    ) -> tuple[records_pb2.LicenceRequest, records_pb2.LicenceRecord | None]:
        """The request and its licence, in the holder's view or the advertiser's."""
        licence = self.d.store.licence(row.licence_id) if row.licence_id else None
        ref = None if holder else self._offer_ref_of(row)
        return (
            convert.request_to(row, self._organisation(row.advertiser_key), offer_ref=ref),
            convert.licence_to(licence, now, to_holder=holder) if licence else None,
        )

    def _prepare(
        self,
        row: RequestRow,
        claims: LicenceClaims,
        claims_bytes: bytes,
        consent: Consent,
        now: int,
        *,
        consent_key: bytes | None = None,
        plain: Sequence[Asset] | None = None,
    ) -> issuance.Issuance:
        """What the issuance of the licence for a request's claims (as the consenting key
        signed them: ``consent_key``, by default the key they name) writes; the request's
        accounts own it. ``plain``: the claims' assets by their plain digests (read from
        the holder's declared assets by default)."""
        signer = self.d.keyring.private(claims.issuer_key_id)
        if signer is None:
            raise LicentiaError(Reason.REQUEST_EXPIRED, "the exchange's key changed: ask again")
        if plain is None:
            plain = issuance.plain_assets(claims, self.d.store.assets(row.holder_key))
        return issuance.prepare(
            row.request_id,
            claims,
            claims_bytes,
            consent,
            signer,
            now,
            plain=plain,
            consent_key=consent_key,
            holder_account=row.holder_key,
            advertiser_account=row.advertiser_key,
        )

    def _decided(self, plan: issuance.Issuance, apply: Callable[[issuance.Verdict], T]) -> T:
        """``apply`` the verdict on ``plan`` over the holder's live licences now; decided
        again over what is there when the store finds them changed meanwhile."""
        lic = plan.licence
        for _ in range(MAX_VERDICTS):
            live = self.d.store.live_licences(
                lic.holder_key, lic.not_before, lic.not_after, exclusive=lic.exclusive
            )
            try:
                return apply(issuance.verdict(plan, live))
            except StaleVerdict:
                continue
        raise LicentiaError(Reason.UNAVAILABLE, "the holder's licences keep changing: try again")

    def _issue(
        self,
        row: RequestRow,
        claims_bytes: bytes,
        consent: Consent,
        now: int,
        nonces: Sequence[SpentNonce],
        *,
        consent_device: bytes = b"",
    ) -> LicenceRow:
        """Sign and store the licence for a pending request, atomically with its checks;
        ``consent_device``: the device that approved under a pseudonym (the claims name
        the pseudonym), recorded with it."""
        holder = self.d.store.party(row.holder_key)
        if holder is None or holder.objecting:
            raise LicentiaError(Reason.OPTED_OUT, "the holder has opted out")
        claims = LicenceClaims.decode(claims_bytes)
        licensee = self.d.store.key_owner(claims.licensee.raw)
        if licensee is None or licensee[1].removed_at:
            text = "the advertiser's key was removed from its account: it must ask again"
            self._fail(row, now, Reason.KEY_REMOVED, text, nonces)
            raise LicentiaError(Reason.KEY_REMOVED, text)
        if not self._within_its_list(claims):
            text = (
                "this request was drafted before the status lists were sharded and its"
                " licence would outlive its list: the advertiser must ask again"
            )
            self._fail(row, now, Reason.STATUS_LIST_DROPPED, text, nonces)
            raise LicentiaError(Reason.STATUS_LIST_DROPPED, text)
        try:
            plan = self._prepare(row, claims, claims_bytes, consent, now)
        except LicentiaError as e:
            self._fail(row, now, e.reason, "the exchange's key has changed", nonces)
            raise
        if consent_device:
            plan = dataclasses.replace(
                plan, licence=dataclasses.replace(plan.licence, consent_device=consent_device)
            )
        try:
            self._decided(plan, lambda v: self.d.store.issue(plan, v, now, nonces=nonces))
        except LicentiaError as e:
            if e.reason == Reason.EXCLUSIVITY_CONFLICT:
                self._fail(row, now, e.reason, "another licence holds exclusivity", nonces)
            elif e.reason == Reason.INSUFFICIENT_FUNDS:
                # Cannot happen for a request that reserved its cost (a defence): the
                # advertiser is told why, the holder only that it cannot be approved.
                text = "the advertiser's balance cannot pay the licence"
                self._fail(row, now, e.reason, text, nonces)
                raise LicentiaError(
                    Reason.REQUEST_NOT_APPROVABLE,
                    "this request can no longer be approved; you need do nothing",
                ) from None
            raise
        finally:
            self._notify()
        signed = self.d.store.licence(plan.licence.licence_id)
        if signed is None:  # issued a moment ago: only an erasure since could remove it
            raise LicentiaError(Reason.NOT_FOUND, "the licence is gone")
        return signed

    def _fail(
        self,
        row: RequestRow,
        now: int,
        reason: Reason,
        text: str,
        nonces: Sequence[SpentNonce] = (),
    ) -> None:
        try:
            self.d.store.finish_request(
                row.request_id,
                RequestState.FAILED,
                now,
                reason=text,
                failure=reason.name,
                nonces=nonces,
            )
        except LicentiaError:
            return

    # -- offers ----------------------------------------------------------------------------
    def search_offers(
        self, req: exchange_pb2.SearchOffersRequest, call: Call
    ) -> exchange_pb2.SearchOffersResponse:
        """Offers matching every filter, a page at a time (in handle order, which no
        answer shows), each naming its holder and assets by the caller's references."""
        caller = self.d.party(call).key
        size = req.page_size or 20
        if not 1 <= size <= MAX_PAGE:
            raise LicentiaError(
                Reason.INVALID_REQUEST, f"page_size: 1 to {MAX_PAGE}; the request has {size}"
            )
        category = convert.enum_value(req.category, DataCategory, "category")
        purpose = convert.enum_value(req.purpose, Purpose, "purpose")
        medium = convert.enum_value(req.medium, Medium, "medium")
        if req.territory and not territory.is_territory(req.territory):
            raise LicentiaError(Reason.INVALID_REQUEST, convert.unknown_territory(req.territory))
        bad_page = "page_token: the next_page_token of this search's last page; not that"
        if len(req.page_token) > 64:
            raise LicentiaError(Reason.INVALID_REQUEST, bad_page)
        after = ""
        if req.page_token:
            ref = refs.token_ref(req.page_token)
            last = self._holder_of(caller, ref) if ref is not None else None
            if last is None:
                raise LicentiaError(Reason.INVALID_REQUEST, bad_page)
            after = last.handle
        r = self._refs()
        out = exchange_pb2.SearchOffersResponse()
        while len(out.offers) < size:
            batch = self.d.store.offers(after, 200)
            for party, terms in batch:
                after = party.handle
                s = terms.scope
                if (
                    (category is not None and category not in s.categories)
                    or (
                        purpose is not None
                        and (
                            purpose not in s.purpose_closure
                            or purpose in market.refused_closure(terms)
                        )
                    )
                    or (medium is not None and medium not in s.media)
                    or (req.territory and not territory.covers(s.territory_closure, req.territory))
                    or (
                        req.max_price_per_day_minor
                        and terms.price_per_day_minor > req.max_price_per_day_minor
                    )
                ):
                    continue
                offer = out.offers.add(
                    offer_ref=r.offer_ref(caller, party.key),
                    display_name=party.display_name if party.show_name else "",
                    # Not when she last changed them: the same instant for every caller.
                    terms=convert.terms_to(dataclasses.replace(terms, updated_at=0)),
                )
                offered = [a for a in self.d.store.assets(party.key) if a.category in s.categories]
                made = r.asset_refs(caller, party.key, [a.sha256 for a in offered])
                for a, asset_ref in zip(offered, made, strict=True):
                    offer.offered_assets.add(
                        category=cast("Any", int(a.category)),
                        asset_ref=asset_ref,
                        stored=a.has_content,
                    )
                if len(out.offers) == size:
                    out.next_page_token = r.page_token(caller, party.key)
                    break
            if len(batch) < 200:
                break
        return out

    # -- requests --------------------------------------------------------------------------
    def request_licence(
        self, req: exchange_pb2.RequestLicenceRequest, call: Call
    ) -> exchange_pb2.RequestLicenceResponse:
        """Check a request against the holder's terms, prepare its claims, and issue it at
        once when a standing rule of the holder covers it."""
        advertiser = self.d.party(call, Role.ADVERTISER)
        assert call.caller is not None  # a signed call
        digest = request_digest(call.method, req)
        if req.idempotency_key:
            if len(req.idempotency_key) != 16:
                raise LicentiaError(
                    Reason.INVALID_REQUEST,
                    f"idempotency_key: 16 bytes; the request has {len(req.idempotency_key)}",
                )
            first = self.d.store.request_by_key(advertiser.key, req.idempotency_key, digest)
            if first is not None:  # a retry: the first answer, nothing new
                return self._request_response(first, advertiser.display_name, call.now)
        holder = self._holder_of(advertiser.key, req.offer_ref)
        if holder is None or holder.role != Role.HOLDER:
            raise LicentiaError(
                Reason.NOT_FOUND, "offer_ref: no holder of this advertiser's offers has it"
            )
        if holder.objecting:
            raise LicentiaError(
                Reason.OPTED_OUT, "offer_ref: the holder has opted out (no new requests)"
            )
        # Its terms, assets and rules read together (one round trip on PostgreSQL).
        terms, declared, rules = self.d.store.holder_offer(holder.key)
        if terms is None:
            raise LicentiaError(
                Reason.OUTSIDE_TERMS, "offer_ref: the holder offers nothing yet (no terms set)"
            )
        wanted = list(req.asset_refs)
        if not 1 <= len(wanted) <= MAX_ASSETS or len(set(wanted)) != len(wanted):
            raise LicentiaError(
                Reason.INVALID_REQUEST,
                f"asset_refs: 1 to {MAX_ASSETS} distinct assets; the request names {len(wanted)}"
                + (" with repeats" if len(set(wanted)) != len(wanted) else ""),
            )
        digests = self._assets_of(advertiser.key, holder.key, wanted, declared)
        if not req.HasField("scope"):
            raise LicentiaError(Reason.INVALID_REQUEST, "scope: required; the request has none")
        market.check_text(req.message, "message", market.MAX_TEXT_CHARS)
        scope = convert.scope_from(req.scope)
        now = call.now
        draft = issuance.check_request(
            holder_key=holder.key,
            advertiser_key=advertiser.key,
            terms=terms,
            declared=declared,
            scope=scope,
            digests=digests,
            not_before=req.not_before,
            not_after=req.not_after,
            offered_price=req.offered_price_minor,
            price_per_use=req.price_per_use_minor,
            max_uses=req.max_uses,
            exclusive=req.exclusive,
            currency=self.d.settings.currency,
            fee_bps=self.d.settings.fee_bps,
            max_term_cap=self.d.settings.max_term_seconds,
            at=now,
        )
        issuer = self.d.keyring.current(now)
        status_list, status_index = self.d.store.reserve_status_slot(
            draft.not_after,
            list_size=self.d.settings.status_list_size,
            epoch_seconds=self.d.settings.status_epoch_seconds,
        )
        claims = draft.claims(
            licence_id=new_licence_id(now),
            issuer_key_id=issuer.public.key_id,
            status_list=status_list,
            status_index=status_index,
            at=now,
            asset_salt=new_asset_salt(),
            licensee_key=call.caller.raw,  # the advertiser's key that will present it
        )
        covered = issuance.covering_rule(rules, claims, now, draft.assets, new_asset_salt())
        row = issuance.request_row(
            claims,
            holder_account=holder.key,
            request_id=time_ordered_id(now),
            message=req.message,
            auto_approved=covered is not None,
            ttl_seconds=self.d.settings.request_ttl_seconds,
            at=now,
            advertiser_account=advertiser.key,
        )

        def add(auto: tuple[issuance.Issuance, issuance.Verdict] | None) -> RequestRow:
            return self.d.store.add_request(
                row,
                auto=auto,
                now=now,
                idempotency_key=req.idempotency_key,
                digest=digest,
                nonces=call.spends,
                # What its approval will escrow, reserved now (or the request refused).
                cost=ledger.escrow_total(
                    claims.price.amount_minor, claims.price.per_use_minor, claims.max_uses
                ),
            )

        if covered is None:
            stored = add(None)
            return self._request_response(stored, advertiser.display_name, now)
        commitment, rule_key = covered
        try:
            plan = self._prepare(
                row, claims, row.claims, commitment, now, consent_key=rule_key, plain=draft.assets
            )
            stored = self._decided(plan, lambda v: add((plan, v)))
        finally:
            self._notify()
        licence = self.d.store.issued_licence(stored)  # kept by the store, or read
        return self._request_response(stored, advertiser.display_name, now, licence)

    def _request_response(
        self, row: RequestRow, organisation: str, now: int, licence: LicenceRow | None = None
    ) -> exchange_pb2.RequestLicenceResponse:
        """The answer to RequestLicence: the request, and its licence when it is issued."""
        out = exchange_pb2.RequestLicenceResponse()
        if licence is None and row.licence_id:
            licence = self.d.store.licence(row.licence_id)
        if licence is not None:
            out.licence.CopyFrom(convert.licence_to(licence, now))
        out.request.CopyFrom(
            convert.request_to(row, organisation, offer_ref=self._offer_ref_of(row))
        )
        return out

    def get_request(
        self, req: exchange_pb2.GetRequestRequest, call: Call
    ) -> exchange_pb2.GetRequestResponse:
        """One request, for its advertiser or its holder."""
        row, holder = self._visible_request(req.request_id, call)
        request, licence = self._request_reply(
            self._as_seen_by(row, call) if holder else row, call.now, holder=holder
        )
        out = exchange_pb2.GetRequestResponse(request=request)
        if licence is not None:
            out.licence.CopyFrom(licence)
        return out

    def watch_request(
        self, req: exchange_pb2.WatchRequestRequest, call: Call
    ) -> Iterator[exchange_pb2.WatchRequestResponse]:
        """The request now, then at each change, until it leaves PENDING."""
        row, holder = self._visible_request(req.request_id, call)
        last: RequestState | None = None

        def ended() -> None:  # a cancelled watcher ends at once, giving its slot back
            with self.changed:
                self.changed.notify_all()

        if not call.context.add_callback(ended):
            return
        while call.context.is_active():
            row = self._expire_if_due(
                self.d.store.request(row.request_id) or row, self.d.clock.now()
            )
            if row.state != last:
                seen = self._as_seen_by(row, call) if holder else row
                request, licence = self._request_reply(seen, self.d.clock.now(), holder=holder)
                out = exchange_pb2.WatchRequestResponse(request=request)
                if licence is not None:
                    out.licence.CopyFrom(licence)
                yield out
                last = row.state
            if row.state != RequestState.PENDING:
                return
            with self.changed:
                self.changed.wait(1.0)

    def list_inbox(
        self, req: exchange_pb2.ListInboxRequest, call: Call
    ) -> exchange_pb2.ListInboxResponse:
        """The holder's requests, newest first."""
        holder = self.d.party(call, Role.HOLDER)
        rows = self.d.store.requests_for_holder(
            holder.key, include_answered=req.include_answered, limit=MAX_INBOX
        )
        rows = [self._expire_if_due(r, call.now, call.spends) for r in rows]
        if not req.include_answered:
            rows = [r for r in rows if r.state == RequestState.PENDING]
        return exchange_pb2.ListInboxResponse(
            requests=[
                convert.request_to(
                    self._as_seen_by(r, call), self._organisation(r.advertiser_key), offer_ref=None
                )
                for r in rows
            ],
            notices=payout_notices(self.d.store, holder.key, call.now),
        )

    def _holders_pending(self, request_id: bytes, call: Call) -> RequestRow:
        holder = self.d.party(call, Role.HOLDER)
        row = self.d.store.request(request_id)
        if row is None or row.holder_key != holder.key:
            raise LicentiaError(Reason.NOT_FOUND, "no such request")
        row = self._expire_if_due(row, call.now, call.spends)
        if row.state == RequestState.EXPIRED:
            raise LicentiaError(Reason.REQUEST_EXPIRED, "the request has expired")
        if row.state != RequestState.PENDING:
            raise LicentiaError(Reason.REQUEST_NOT_PENDING, "the request is no longer pending")
        return row

    def approve_request(
        self, req: exchange_pb2.ApproveRequestRequest, call: Call
    ) -> exchange_pb2.ApproveRequestResponse:
        """The holder's signature over the exact claims issues the licence."""
        row = self._holders_pending(req.request_id, call)
        assert call.caller is not None  # a signed call
        device = call.caller.raw
        if req.consent_key or req.consent_key_proof:
            # The holder's pairwise key for this licensee consents (token-format §1b): the
            # claims name it; the device that signs the call is recorded beside it.
            key = self._pseudonym(row, req.consent_key, req.consent_key_proof)
            claims_bytes = issuance.rebind(LicenceClaims.decode(row.claims), key).encode()
        else:
            # The device that signs the call consents: the claims name it (as it was shown).
            key, claims_bytes = device, self._as_seen_by(row, call).claims
        if not keys.verify_signature(key, keys.CONSENT, claims_bytes, req.holder_signature):
            raise LicentiaError(Reason.BAD_CONSENT, "the signature is not over these claims")
        licence = self._issue(
            row,
            claims_bytes,
            Approval(req.holder_signature),
            call.now,
            call.spends,
            consent_device=device if key != device else b"",
        )
        request, _ = self._request_reply(
            self.d.store.request(row.request_id) or row, call.now, holder=True
        )
        return exchange_pb2.ApproveRequestResponse(
            request=request, licence=convert.licence_to(licence, call.now, to_holder=True)
        )

    def _within_its_list(self, claims: LicenceClaims) -> bool:
        """Whether the licence ends by its status list's end: every licence of a list must
        (token-format §7), or verifiers would drop the list while it is live. Only the
        legacy list 0 can be named otherwise: a request drafted before the lists were
        sharded and approved after."""
        if claims.status_list != 0:
            return True  # drafted in a list of its own epoch
        return claims.not_after <= dict(self.d.store.status_lists(0)).get(0, 0)

    def _pseudonym(self, row: RequestRow, key: bytes, proof: bytes) -> bytes:
        """``key`` if it may consent to ``row`` as the holder's pseudonym for its licensee:
        its proof binds it to the request's two accounts (BAD_CONSENT otherwise), and it is
        no account's key nor another account's or licensee's pseudonym (PSEUDONYM_TAKEN; the
        issuing transaction checks this again, and records it on first use)."""
        if len(key) != keys.PUBLIC_KEY_BYTES or len(proof) != keys.SIGNATURE_BYTES:
            raise LicentiaError(
                Reason.INVALID_REQUEST, "consent_key is 32 bytes and its proof 64 bytes"
            )
        if not pairwise.check_pseudonym_proof(key, row.holder_key, row.advertiser_key, proof):
            raise LicentiaError(
                Reason.BAD_CONSENT, "the pseudonym proof is not for this account and licensee"
            )
        if self.d.store.key_owner(key) is not None:
            raise LicentiaError(Reason.PSEUDONYM_TAKEN, "that key is a key of an account")
        known = self.d.store.pseudonym(key)
        if known is not None and known != (row.holder_key, row.advertiser_key):
            raise LicentiaError(
                Reason.PSEUDONYM_TAKEN,
                "that key is already the pseudonym of another account or for another licensee",
            )
        return key

    def decline_request(
        self, req: exchange_pb2.DeclineRequestRequest, call: Call
    ) -> exchange_pb2.DeclineRequestResponse:
        """The holder declines, optionally saying why."""
        market.check_text(req.reason, "reason", market.MAX_TEXT_CHARS)
        row = self._holders_pending(req.request_id, call)
        done = self.d.store.finish_request(
            row.request_id, RequestState.DECLINED, call.now, reason=req.reason, nonces=call.spends
        )
        self._notify()
        return exchange_pb2.DeclineRequestResponse(
            request=convert.request_to(
                done, self._organisation(done.advertiser_key), offer_ref=None
            )
        )

    def withdraw_request(
        self, req: exchange_pb2.WithdrawRequestRequest, call: Call
    ) -> exchange_pb2.WithdrawRequestResponse:
        """The advertiser withdraws its pending request."""
        advertiser = self.d.party(call, Role.ADVERTISER)
        row = self.d.store.request(req.request_id)
        if row is None or row.advertiser_key != advertiser.key:
            raise LicentiaError(Reason.NOT_FOUND, "no such request")
        if self._expire_if_due(row, call.now, call.spends).state == RequestState.EXPIRED:
            raise LicentiaError(Reason.REQUEST_EXPIRED, "the request has expired")
        done = self.d.store.finish_request(
            row.request_id, RequestState.WITHDRAWN, call.now, nonces=call.spends
        )
        self._notify()
        return exchange_pb2.WithdrawRequestResponse(
            request=convert.request_to(
                done, advertiser.display_name, offer_ref=self._offer_ref_of(done)
            )
        )

    # -- standing rules --------------------------------------------------------------------
    def add_standing_rule(
        self, req: exchange_pb2.AddStandingRuleRequest, call: Call
    ) -> exchange_pb2.AddStandingRuleResponse:
        """Register a rule the holder signed; never one covering a sensitive use."""
        holder = self.d.party(call, Role.HOLDER)
        c = req.consent
        try:
            rule = StandingRule.decode(c.rule)
        except LicentiaError as e:
            raise LicentiaError(Reason.INVALID_REQUEST, str(e)) from None
        assert call.caller is not None  # a signed call
        if rule.holder.raw != call.caller.raw:
            raise LicentiaError(
                Reason.NOT_OWNER, "a rule names, and is signed by, the holder's calling key"
            )
        if not keys.verify_signature(
            rule.holder.raw, keys.STANDING_RULE, c.rule, c.holder_signature
        ):
            raise LicentiaError(Reason.BAD_CONSENT, "the rule's signature does not verify")
        if sensitive_reasons(rule.scope):
            raise LicentiaError(
                Reason.SENSITIVE_USE_NEEDS_APPROVAL,
                "political campaigns, AI training and opinions are never auto-approved",
            )
        row = StandingRuleRow(rule.rule_id, holder.key, c.rule, c.holder_signature, call.now)
        self.d.store.add_rule(row, nonces=call.spends)
        return exchange_pb2.AddStandingRuleResponse(rule=convert.rule_to(row))

    def list_standing_rules(
        self, req: exchange_pb2.ListStandingRulesRequest, call: Call
    ) -> exchange_pb2.ListStandingRulesResponse:
        """The holder's rules."""
        holder = self.d.party(call, Role.HOLDER)
        return exchange_pb2.ListStandingRulesResponse(
            rules=[convert.rule_to(r) for r in self.d.store.rules(holder.key)]
        )

    def withdraw_standing_rule(
        self, req: exchange_pb2.WithdrawStandingRuleRequest, call: Call
    ) -> exchange_pb2.WithdrawStandingRuleResponse:
        """The rule covers no new request from now on."""
        holder = self.d.party(call, Role.HOLDER)
        row = self.d.store.withdraw_rule(holder.key, req.rule_id, call.now, nonces=call.spends)
        return exchange_pb2.WithdrawStandingRuleResponse(rule=convert.rule_to(row))


def _same(a: bytes, b: bytes) -> bool:
    """Equal references, compared in constant time."""
    return hmac.compare_digest(a, b)
