"""ExchangeService: offers, licence requests, the holder's consent, standing rules, issuance."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator, Mapping, Sequence

from licentia import keys, territory
from licentia.errors import LicentiaError, Reason
from licentia.token import (
    LICENCE_ID_BYTES,
    MAX_ASSETS,
    Approval,
    Asset,
    Consent,
    LicenceClaims,
    PriceTerms,
    StandingConsent,
    StandingRule,
    issue,
    sensitive_reasons,
)
from licentia.v1 import exchange_pb2, records_pb2
from licentia.vocabulary import DataCategory, Medium, Purpose

from . import convert, market
from .deps import Deps
from .idempotency import request_digest
from .model import LicenceRow, RequestRow, RequestState, Role, StandingRuleRow
from .rpc import Call, Method
from .store import ConflictCheck

MAX_PAGE = 100
MAX_INBOX = 500


class ExchangeService:
    """The servicer of the market."""

    def __init__(self, deps: Deps) -> None:
        self.d = deps
        #: Woken whenever a request changes state (WatchRequest waits on it).
        self.changed = threading.Condition()

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

    def _organisation(self, key: bytes) -> str:
        party = self.d.store.party(key)
        return party.display_name if party else ""

    def _visible_request(self, request_id: bytes, call: Call) -> RequestRow:
        """The request, if the caller is its advertiser or its holder: another holder's or
        advertiser's is NOT_FOUND, as a missing one; a platform, whose role has no requests,
        is NOT_OWNER, as at every call not for its role."""
        party = self.d.party(call, Role.HOLDER, Role.ADVERTISER)
        row = self.d.store.request(request_id)
        if row is None or party.key not in (row.advertiser_key, row.holder_key):
            raise LicentiaError(Reason.NOT_FOUND, "no such request")
        return self._expire_if_due(row, call.now)

    def _expire_if_due(self, row: RequestRow, now: int) -> RequestRow:
        if row.state == RequestState.PENDING and now >= row.expires_at:
            try:
                row = self.d.store.finish_request(row.request_id, RequestState.EXPIRED, now)
            except LicentiaError:
                row = self.d.store.request(row.request_id) or row
            self._notify()
        return row

    def _request_reply(
        self, row: RequestRow, now: int
    ) -> tuple[records_pb2.LicenceRequest, records_pb2.LicenceRecord | None]:
        licence = self.d.store.licence(row.licence_id) if row.licence_id else None
        return (
            convert.request_to(row, self._organisation(row.advertiser_key)),
            convert.licence_to(licence, now) if licence else None,
        )

    def _prepare(self, row: RequestRow, consent: Consent) -> tuple[LicenceRow, ConflictCheck]:
        """The signed licence for a request, and the check it must pass to be stored."""
        claims = LicenceClaims.decode(row.claims)
        signer = self.d.keyring.private(claims.issuer_key_id)
        if signer is None:
            raise LicentiaError(Reason.REQUEST_EXPIRED, "the exchange's key changed: ask again")
        licence = LicenceRow(
            licence_id=claims.licence_id,
            request_id=row.request_id,
            token=issue(signer, row.claims, consent),
            holder_key=row.holder_key,
            licensee_key=row.advertiser_key,
            issued_at=claims.issued_at,
            not_before=claims.not_before,
            not_after=claims.not_after,
            status_index=claims.status_index,
            max_uses=claims.max_uses,
            uses=0,
            exclusive=claims.exclusive,
        )
        return licence, lambda live: market.exclusivity_conflict(claims, live)

    def _issue(self, row: RequestRow, consent: Consent, now: int) -> LicenceRow:
        """Sign and store the licence for a pending request, atomically with its checks."""
        holder = self.d.store.party(row.holder_key)
        if holder is None or holder.objecting:
            raise LicentiaError(Reason.OPTED_OUT, "the holder has opted out")
        try:
            licence, check = self._prepare(row, consent)
        except LicentiaError as e:
            self._fail(row, now, e.reason, "the exchange's key has changed")
            raise
        try:
            self.d.store.issue(licence, now, check)
        except LicentiaError as e:
            if e.reason == Reason.EXCLUSIVITY_CONFLICT:
                self._fail(row, now, e.reason, "another licence holds exclusivity")
            elif e.reason == Reason.INSUFFICIENT_FUNDS:
                self._fail(row, now, e.reason, "the advertiser's balance cannot pay the licence")
            raise
        finally:
            self._notify()
        return licence

    def _fail(self, row: RequestRow, now: int, reason: Reason, text: str) -> None:
        try:
            self.d.store.finish_request(
                row.request_id, RequestState.FAILED, now, reason=text, failure=reason.name
            )
        except LicentiaError:
            return

    # -- offers ----------------------------------------------------------------------------
    def search_offers(
        self, req: exchange_pb2.SearchOffersRequest, call: Call
    ) -> exchange_pb2.SearchOffersResponse:
        """Offers matching every filter, a page at a time, by handle."""
        self.d.party(call)
        size = req.page_size or 20
        if not 1 <= size <= MAX_PAGE:
            raise LicentiaError(Reason.INVALID_REQUEST, f"page size is 1 to {MAX_PAGE}")
        try:
            category = DataCategory(req.category) if req.category else None
            purpose = Purpose(req.purpose) if req.purpose else None
            medium = Medium(req.medium) if req.medium else None
        except ValueError:
            raise LicentiaError(
                Reason.INVALID_REQUEST, "unknown category, purpose or medium"
            ) from None
        if req.territory and not territory.is_territory(req.territory):
            raise LicentiaError(Reason.INVALID_REQUEST, "unknown territory")
        if len(req.page_token) > 64:
            raise LicentiaError(Reason.INVALID_REQUEST, "bad page token")
        out = exchange_pb2.SearchOffersResponse()
        after = req.page_token
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
                    holder_key=party.key,
                    handle=party.handle,
                    display_name=party.display_name,
                    terms=convert.terms_to(terms),
                )
                for a in self.d.store.assets(party.key):
                    if a.category in s.categories:
                        offer.assets.add(category=int(a.category), sha256=a.sha256)
                        if a.has_content:
                            offer.stored_sha256.append(a.sha256)
                if len(out.offers) == size:
                    out.next_page_token = party.handle
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
        digest = request_digest(call.method, req)
        if req.idempotency_key:
            if len(req.idempotency_key) != 16:
                raise LicentiaError(Reason.INVALID_REQUEST, "the idempotency key is 16 bytes")
            first = self.d.store.request_by_key(advertiser.key, req.idempotency_key, digest)
            if first is not None:  # a retry: the first answer, nothing new
                return self._request_response(first, advertiser.display_name, call.now)
        holder = self.d.store.party(req.holder_key) if len(req.holder_key) == 32 else None
        if holder is None or holder.role != Role.HOLDER:
            raise LicentiaError(Reason.NOT_FOUND, "no such holder")
        if holder.objecting:
            raise LicentiaError(Reason.OPTED_OUT, "the holder has opted out")
        terms = self.d.store.terms(holder.key)
        if terms is None:
            raise LicentiaError(Reason.OUTSIDE_TERMS, "the holder offers nothing yet")
        digests = list(req.asset_sha256)
        if not 1 <= len(digests) <= MAX_ASSETS or len(set(digests)) != len(digests):
            raise LicentiaError(Reason.INVALID_REQUEST, f"name 1 to {MAX_ASSETS} distinct assets")
        if not req.HasField("scope"):
            raise LicentiaError(Reason.INVALID_REQUEST, "a scope is required")
        market.check_text(req.message, "message", market.MAX_TEXT_CHARS)
        scope = convert.scope_from(req.scope)
        now = call.now
        not_before = req.not_before or now
        if req.not_after <= not_before:
            raise LicentiaError(Reason.INVALID_TERM, "not_after must follow not_before")
        if not_before < now - 300:
            raise LicentiaError(Reason.INVALID_TERM, "a licence cannot start in the past")
        if req.not_after > market.MAX_TIME:
            raise LicentiaError(Reason.INVALID_TERM, "the licence ends too far in the future")
        if req.price_per_use_minor and not req.max_uses:
            raise LicentiaError(
                Reason.INVALID_REQUEST, "a price per use needs max_uses (each use is escrowed)"
            )
        if req.offered_price_minor + req.price_per_use_minor * req.max_uses > market.MAX_PRICE:
            raise LicentiaError(Reason.INVALID_REQUEST, "the price is too large")
        declared = self.d.store.assets(holder.key)
        market.check_request(
            terms,
            declared,
            scope,
            digests,
            req.not_after - not_before,
            exclusive=req.exclusive,
            offered_price=req.offered_price_minor,
            max_term_cap=self.d.settings.max_term_seconds,
        )
        categories = {a.sha256: a.category for a in declared}
        issuer = self.d.keyring.current(now)
        rules = self.d.store.rules(holder.key)
        covering: list[Consent] = []

        def build(status_index: int) -> RequestRow:
            claims = LicenceClaims(
                licence_id=secrets.token_bytes(LICENCE_ID_BYTES),
                issuer_key_id=issuer.public.key_id,
                holder=keys.PublicKey(holder.key),
                licensee=keys.PublicKey(advertiser.key),
                assets=tuple(Asset(categories[d], d) for d in digests),
                scope=scope,
                issued_at=now,
                not_before=not_before,
                not_after=req.not_after,
                status_index=status_index,
                price=PriceTerms(
                    self.d.settings.currency,
                    req.offered_price_minor,
                    req.price_per_use_minor,
                    self.d.settings.fee_bps,
                ),
                max_uses=req.max_uses,
                exclusive=req.exclusive,
            )
            covering[:] = [c for c in [self._covering_rule(rules, claims, now)] if c]
            return RequestRow(
                request_id=secrets.token_bytes(16),
                state=RequestState.PENDING,
                advertiser_key=advertiser.key,
                holder_key=holder.key,
                claims=claims.encode(),
                created_at=now,
                expires_at=now + self.d.settings.request_ttl_seconds,
                updated_at=now,
                message=req.message,
                auto_approved=bool(covering),
            )

        issued: list[LicenceRow] = []

        def auto_issue(row: RequestRow) -> tuple[LicenceRow, ConflictCheck] | None:
            if not covering:
                return None
            licence, check = self._prepare(row, covering[0])
            issued.append(licence)
            return licence, check

        try:
            row = self.d.store.create_request(build, auto_issue, now, req.idempotency_key, digest)
        finally:
            if covering:
                self._notify()
        known = issued[0] if issued and issued[0].licence_id == row.licence_id else None
        return self._request_response(row, advertiser.display_name, now, known)

    def _request_response(
        self, row: RequestRow, organisation: str, now: int, licence: LicenceRow | None = None
    ) -> exchange_pb2.RequestLicenceResponse:
        """The answer to RequestLicence: the request, and its licence when it is issued."""
        out = exchange_pb2.RequestLicenceResponse()
        if licence is None and row.licence_id:
            licence = self.d.store.licence(row.licence_id)
        if licence is not None:
            out.licence.CopyFrom(convert.licence_to(licence, now))
        out.request.CopyFrom(convert.request_to(row, organisation))
        return out

    @staticmethod
    def _covering_rule(
        rules: Sequence[StandingRuleRow], claims: LicenceClaims, now: int
    ) -> Consent | None:
        """A standing rule in force that the claims fall entirely within, if any."""
        if sensitive_reasons(claims.scope):
            return None
        for r in rules:
            if r.withdrawn_at:
                continue
            try:
                rule = StandingRule.decode(r.rule)
            except LicentiaError:
                continue
            if not rule.permits(claims) and rule.not_before <= now < rule.not_after:
                return StandingConsent(r.rule, r.signature)
        return None

    def get_request(
        self, req: exchange_pb2.GetRequestRequest, call: Call
    ) -> exchange_pb2.GetRequestResponse:
        """One request, for its advertiser or its holder."""
        row = self._visible_request(req.request_id, call)
        request, licence = self._request_reply(row, call.now)
        out = exchange_pb2.GetRequestResponse(request=request)
        if licence is not None:
            out.licence.CopyFrom(licence)
        return out

    def watch_request(
        self, req: exchange_pb2.WatchRequestRequest, call: Call
    ) -> Iterator[exchange_pb2.WatchRequestResponse]:
        """The request now, then at each change, until it leaves PENDING."""
        row = self._visible_request(req.request_id, call)
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
                request, licence = self._request_reply(row, self.d.clock.now())
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
        rows = [self._expire_if_due(r, call.now) for r in rows]
        if not req.include_answered:
            rows = [r for r in rows if r.state == RequestState.PENDING]
        return exchange_pb2.ListInboxResponse(
            requests=[convert.request_to(r, self._organisation(r.advertiser_key)) for r in rows]
        )

    def _holders_pending(self, request_id: bytes, call: Call) -> RequestRow:
        holder = self.d.party(call, Role.HOLDER)
        row = self.d.store.request(request_id)
        if row is None or row.holder_key != holder.key:
            raise LicentiaError(Reason.NOT_FOUND, "no such request")
        row = self._expire_if_due(row, call.now)
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
        if not keys.verify_signature(
            row.holder_key, keys.CONSENT, row.claims, req.holder_signature
        ):
            raise LicentiaError(Reason.BAD_CONSENT, "the signature is not over these claims")
        licence = self._issue(row, Approval(req.holder_signature), call.now)
        request, _ = self._request_reply(self.d.store.request(row.request_id) or row, call.now)
        return exchange_pb2.ApproveRequestResponse(
            request=request, licence=convert.licence_to(licence, call.now)
        )

    def decline_request(
        self, req: exchange_pb2.DeclineRequestRequest, call: Call
    ) -> exchange_pb2.DeclineRequestResponse:
        """The holder declines, optionally saying why."""
        market.check_text(req.reason, "reason", market.MAX_TEXT_CHARS)
        row = self._holders_pending(req.request_id, call)
        done = self.d.store.finish_request(
            row.request_id, RequestState.DECLINED, call.now, reason=req.reason
        )
        self._notify()
        return exchange_pb2.DeclineRequestResponse(
            request=convert.request_to(done, self._organisation(done.advertiser_key))
        )

    def withdraw_request(
        self, req: exchange_pb2.WithdrawRequestRequest, call: Call
    ) -> exchange_pb2.WithdrawRequestResponse:
        """The advertiser withdraws its pending request."""
        advertiser = self.d.party(call, Role.ADVERTISER)
        row = self.d.store.request(req.request_id)
        if row is None or row.advertiser_key != advertiser.key:
            raise LicentiaError(Reason.NOT_FOUND, "no such request")
        if self._expire_if_due(row, call.now).state == RequestState.EXPIRED:
            raise LicentiaError(Reason.REQUEST_EXPIRED, "the request has expired")
        done = self.d.store.finish_request(row.request_id, RequestState.WITHDRAWN, call.now)
        self._notify()
        return exchange_pb2.WithdrawRequestResponse(
            request=convert.request_to(done, advertiser.display_name)
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
        if rule.holder.raw != holder.key:
            raise LicentiaError(Reason.NOT_OWNER, "a rule is signed by its own holder")
        if not keys.verify_signature(holder.key, keys.STANDING_RULE, c.rule, c.holder_signature):
            raise LicentiaError(Reason.BAD_CONSENT, "the rule's signature does not verify")
        if sensitive_reasons(rule.scope):
            raise LicentiaError(
                Reason.SENSITIVE_USE_NEEDS_APPROVAL,
                "political campaigns, AI training and opinions are never auto-approved",
            )
        row = StandingRuleRow(rule.rule_id, holder.key, c.rule, c.holder_signature, call.now)
        self.d.store.add_rule(row)
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
        row = self.d.store.withdraw_rule(holder.key, req.rule_id, call.now)
        return exchange_pb2.WithdrawStandingRuleResponse(rule=convert.rule_to(row))
