"""The synchronous holder SDK: :class:`Holder`.

Every call is signed with the holder's key over its exact request bytes
(:class:`~licentia.clients.channel.SignedChannel`); every failure is an
:class:`~licentia.clients.channel.ExchangeError` with the exchange's stable reason.
Requests are built in :mod:`.common`, shared with :mod:`.aio`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from licentia.content_certs import MAX_ROOTS, trusted_roots
from licentia.keys import IssuerKeySet
from licentia.v1 import exchange_pb2, ledger_pb2, licences_pb2, records_pb2, registry_pb2
from licentia.vocabulary import DataCategory, Medium, Purpose

from ..channel import SignedChannel
from ..logcheck import LogClient
from ..party import PartyClient
from . import common
from .common import Revocation, SignedRule


class Holder(PartyClient):
    """A holder's client of the exchange, over ``channel`` with ``key``.

    ``timeout`` is the deadline of each unary call in seconds; ``clock`` gives the Unix
    seconds of request signatures. The client owns the channel: use it as a context
    manager, or call :meth:`close`.
    """

    # -- registry ----------------------------------------------------------------------------

    def register(
        self, handle: str, display_name: str = "", *, show_display_name: bool = False
    ) -> records_pb2.Profile:
        """Register this key as a holder under ``handle`` (ALREADY_EXISTS when taken).
        Offers show advertisers the display name only with ``show_display_name``; the
        handle never."""
        return self._rpc.unary(
            common.REGISTER_HOLDER,
            common.register_request(handle, display_name, show_display_name),
            registry_pb2.RegisterHolderResponse,
        ).profile

    def update_profile(
        self, display_name: str, *, show_display_name: bool | None = None
    ) -> records_pb2.Profile:
        """Rectify the display name (empty clears it) and, unless None, choose whether
        offers show it to advertisers."""
        return self._rpc.unary(
            common.UPDATE_PROFILE,
            common.profile_request(display_name, show_display_name),
            registry_pb2.UpdateProfileResponse,
        ).profile

    def profile(self) -> records_pb2.Profile:
        """The holder's profile (her handle, display name, objection); the recovery key may
        read it too."""
        return self._rpc.unary(
            common.GET_PROFILE, registry_pb2.GetProfileRequest(), registry_pb2.GetProfileResponse
        ).profile

    def declare_asset(
        self,
        category: DataCategory,
        content: bytes,
        label: str,
        *,
        upload: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> records_pb2.AssetRecord:
        """Declare ``content`` (a photo, a voice sample, ...) by its SHA-256; with ``upload``
        its bytes are stored at the exchange, where licensees fetch them: streamed in
        chunks (UploadAsset, up to the exchange's :meth:`asset_limits`), calling
        ``progress(sent, total)`` after each. Nothing is stored unless every byte arrived
        and matched the SHA-256 the signed header declared."""
        if not upload:
            return self._rpc.unary(
                common.DECLARE_ASSET,
                common.declare_request(category, content, label),
                registry_pb2.DeclareAssetResponse,
            ).asset
        return self._rpc.stream_unary(
            common.UPLOAD_ASSET,
            common.upload_requests(category, content, label, progress),
            registry_pb2.UploadAssetResponse,
        ).asset

    def asset_limits(self) -> registry_pb2.GetAssetLimitsResponse:
        """The exchange's asset limits: the largest asset it stores (public, unsigned)."""
        return self._rpc.unary(
            common.GET_ASSET_LIMITS,
            registry_pb2.GetAssetLimitsRequest(),
            registry_pb2.GetAssetLimitsResponse,
        )

    def assets(self) -> list[records_pb2.AssetRecord]:
        """The holder's assets."""
        return list(
            self._rpc.unary(
                common.LIST_ASSETS,
                registry_pb2.ListAssetsRequest(),
                registry_pb2.ListAssetsResponse,
            ).assets
        )

    def set_terms(
        self,
        *,
        categories: Iterable[DataCategory],
        purposes: Iterable[Purpose],
        refused: Iterable[Purpose] = (),
        media: Iterable[Medium],
        territories: Iterable[str],
        price_per_day: int,
        currency: str = "EUR",
        max_term_seconds: int = 365 * common.DAY,
        exclusive_multiplier: float | None = None,
    ) -> records_pb2.Terms:
        """Offer these categories for these purposes, media and territories at
        ``price_per_day`` (minor units); the terms as the exchange stored them."""
        req = common.terms_request(
            categories=categories,
            purposes=purposes,
            refused=refused,
            media=media,
            territories=territories,
            price_per_day=price_per_day,
            currency=currency,
            max_term_seconds=max_term_seconds,
            exclusive_multiplier=exclusive_multiplier,
        )
        return self._rpc.unary(common.SET_TERMS, req, registry_pb2.SetTermsResponse).terms

    def terms(self) -> records_pb2.Terms | None:
        """The holder's terms, None before any were set."""
        resp = self._rpc.unary(
            common.GET_TERMS, registry_pb2.GetTermsRequest(), registry_pb2.GetTermsResponse
        )
        return resp.terms if resp.HasField("terms") else None

    def set_objection(self, objecting: bool) -> records_pb2.Profile:
        """Object (no new request reaches the holder) or accept requests again."""
        return self._rpc.unary(
            common.SET_OBJECTION,
            registry_pb2.SetObjectionRequest(objecting=objecting),
            registry_pb2.SetObjectionResponse,
        ).profile

    def export(self) -> registry_pb2.ExportDataResponse:
        """Everything the exchange holds about the holder (the right of access)."""
        return self._rpc.unary(
            common.EXPORT_DATA, registry_pb2.ExportDataRequest(), registry_pb2.ExportDataResponse
        )

    def erase(self, sha256: Iterable[bytes] = ()) -> registry_pb2.EraseAssetsResponse:
        """Erase these assets (all when none is given) and revoke every live licence on them."""
        return self._rpc.unary(
            common.ERASE_ASSETS,
            registry_pb2.EraseAssetsRequest(sha256=list(sha256)),
            registry_pb2.EraseAssetsResponse,
        )

    def delete_account(self) -> registry_pb2.SignedErasureReceipt:
        """Delete the holder's whole account: every live licence revoked, every record about
        her erased but the ledger's, her keys refused from then on. The exchange's signed
        receipt (check it with :func:`licentia.erasure.verify_erasure_receipt` against
        :meth:`issuer_keys`, fetched before). BALANCE_OWED, changing nothing, while money
        is owed to her: withdraw it first."""
        return (
            self._rpc.unary(
                common.DELETE_ACCOUNT,
                registry_pb2.DeleteAccountRequest(),
                registry_pb2.DeleteAccountResponse,
            )
        ).receipt

    def issuer_keys(self) -> IssuerKeySet:
        """The exchange's issuer keys, current and retired (``GetIssuerKeys``)."""
        resp = self._rpc.unary(
            common.GET_ISSUER_KEYS,
            licences_pb2.GetIssuerKeysRequest(),
            licences_pb2.GetIssuerKeysResponse,
        )
        return IssuerKeySet.from_proto(resp.keys)

    def content_roots(self) -> list[bytes]:
        """The content roots (DER) a file's Content Credentials are checked against
        (docs/token-format.md §12): those ``GetIssuerKeys`` publishes that one of its issuer
        keys self-signs (:func:`licentia.content_certs.trusted_roots`)."""
        resp = self._rpc.unary(
            common.GET_ISSUER_KEYS,
            licences_pb2.GetIssuerKeysRequest(),
            licences_pb2.GetIssuerKeysResponse,
        )
        keys = IssuerKeySet.from_proto(resp.keys)
        roots = list(resp.content_roots)[: MAX_ROOTS + 1]
        return trusted_roots(
            roots, keys, now=int(time.time()), max_term_seconds=resp.content_term_seconds
        )

    # -- requests ----------------------------------------------------------------------------

    def inbox(self, include_answered: bool = False) -> list[records_pb2.LicenceRequest]:
        """The requests waiting for the holder's answer (and the answered ones too)."""
        return list(
            self._rpc.unary(
                common.LIST_INBOX,
                exchange_pb2.ListInboxRequest(include_answered=include_answered),
                exchange_pb2.ListInboxResponse,
            ).requests
        )

    def notices(self) -> list[records_pb2.Notice]:
        """What the exchange tells the holder about her account, oldest first: each payout
        destination still in its delay (cancel one she did not add before it is usable)."""
        return list(
            self._rpc.unary(
                common.LIST_INBOX,
                exchange_pb2.ListInboxRequest(),
                exchange_pb2.ListInboxResponse,
            ).notices
        )

    def approve(
        self, request: records_pb2.LicenceRequest, *, holder_secret: bytes | None = None
    ) -> records_pb2.LicenceRecord:
        """Consent to ``request``: sign its exact claims with the holder's key; the licence.

        With ``holder_secret`` the consent is given with the holder's pairwise key for the
        request's licensee (docs/token-format.md §1b): the licence names that key, not this
        device's. Raises ``LicentiaError`` (nothing signed) for claims that do not decode or
        name another holder; read them first (``LicenceClaims.decode(request.claims)``).
        """
        asked = (
            common.approval(self.key, request.request_id, request.claims)
            if holder_secret is None
            else common.pairwise_approval(self.key, holder_secret, self.account, request)
        )
        return self._rpc.unary(
            common.APPROVE_REQUEST,
            asked,
            exchange_pb2.ApproveRequestResponse,
        ).licence

    def decline(self, request_id: bytes, reason: str = "") -> records_pb2.LicenceRequest:
        """Decline a pending request, with an optional reason for the advertiser."""
        return self._rpc.unary(
            common.DECLINE_REQUEST,
            exchange_pb2.DeclineRequestRequest(request_id=request_id, reason=reason),
            exchange_pb2.DeclineRequestResponse,
        ).request

    # -- standing rules ----------------------------------------------------------------------

    def add_standing_rule(self, signed: SignedRule) -> records_pb2.StandingRuleRecord:
        """Hand the exchange a rule signed with :func:`~.common.standing_rule`: requests
        entirely within it are approved without asking the holder."""
        return self._rpc.unary(
            common.ADD_STANDING_RULE,
            exchange_pb2.AddStandingRuleRequest(consent=signed.consent),
            exchange_pb2.AddStandingRuleResponse,
        ).rule

    def standing_rules(self) -> list[records_pb2.StandingRuleRecord]:
        """The holder's standing rules, in force and withdrawn."""
        return list(
            self._rpc.unary(
                common.LIST_STANDING_RULES,
                exchange_pb2.ListStandingRulesRequest(),
                exchange_pb2.ListStandingRulesResponse,
            ).rules
        )

    def withdraw_standing_rule(self, rule_id: bytes) -> records_pb2.StandingRuleRecord:
        """Withdraw a standing rule: new requests are asked again."""
        return self._rpc.unary(
            common.WITHDRAW_STANDING_RULE,
            exchange_pb2.WithdrawStandingRuleRequest(rule_id=rule_id),
            exchange_pb2.WithdrawStandingRuleResponse,
        ).rule

    # -- licences ----------------------------------------------------------------------------

    def licences(self) -> list[records_pb2.LicenceRecord]:
        """Every licence in the holder's name, with its state and uses."""
        out: list[records_pb2.LicenceRecord] = []
        token = ""
        while True:
            resp = self._rpc.unary(
                common.LIST_LICENCES,
                licences_pb2.ListLicencesRequest(page_size=common.PAGE_SIZE, page_token=token),
                licences_pb2.ListLicencesResponse,
            )
            out.extend(common.mine(self.account, resp.licences))
            token = resp.next_page_token
            if not token:
                return out

    def licence(self, licence_id: bytes) -> records_pb2.LicenceRecord:
        """One licence in the holder's name (NOT_FOUND for any other)."""
        return self._rpc.unary(
            common.GET_LICENCE,
            licences_pb2.GetLicenceRequest(licence_id=licence_id),
            licences_pb2.GetLicenceResponse,
        ).licence

    def revoke(self, licence_id: bytes) -> Revocation:
        """Revoke the licence now (no reason needed); the exchange's signed receipt."""
        return common.revocation_from(
            self._rpc.unary(
                common.REVOKE_LICENCE,
                licences_pb2.RevokeLicenceRequest(licence_id=licence_id),
                licences_pb2.RevokeLicenceResponse,
            )
        )

    def accesses(self) -> list[records_pb2.AssetAccess]:
        """Who fetched which of the holder's assets, and when."""
        return list(
            self._rpc.unary(
                common.LIST_ACCESSES,
                licences_pb2.ListAccessesRequest(),
                licences_pb2.ListAccessesResponse,
            ).accesses
        )

    # -- money -------------------------------------------------------------------------------

    def statement(self, page_size: int = 50) -> ledger_pb2.GetStatementResponse:
        """What the holder earned, can withdraw and will still earn; the last payments."""
        return self._rpc.unary(
            common.GET_STATEMENT,
            ledger_pb2.GetStatementRequest(page_size=page_size),
            ledger_pb2.GetStatementResponse,
        )

    def withdraw(
        self, amount: int, payout_reference: str, idempotency_key: bytes
    ) -> ledger_pb2.WithdrawResponse:
        """Move ``amount`` minor units earned to ``payout_reference``. Retry a failed attempt
        with the same ``idempotency_key`` (:func:`~.common.new_idempotency_key`): it pays once."""
        return self._rpc.unary(
            common.WITHDRAW,
            common.withdrawal(amount, payout_reference, idempotency_key),
            ledger_pb2.WithdrawResponse,
        )

    def add_payout_destination(self, reference: str) -> ledger_pb2.PayoutDestination:
        """Add ``reference`` (an IBAN, say) to the holder's payout destinations. It is
        PENDING, and :meth:`withdraw` refuses it (PAYOUT_DESTINATION_PENDING), until its
        ``usable_at``: the exchange's payout delay (72 hours by default) after it was added,
        during which the holder is told of it (:meth:`notices`) and can cancel it. One
        already pending or confirmed is answered unchanged."""
        return self._rpc.unary(
            common.ADD_PAYOUT_DESTINATION,
            ledger_pb2.AddPayoutDestinationRequest(reference=reference),
            ledger_pb2.AddPayoutDestinationResponse,
        ).destination

    def cancel_payout_destination(self, reference: str) -> ledger_pb2.PayoutDestination:
        """Cancel a payout destination, pending (it never becomes usable) or confirmed (it
        stops being usable at once); NOT_FOUND for one the holder does not have. Adding it
        again starts a new delay."""
        return self._rpc.unary(
            common.CANCEL_PAYOUT_DESTINATION,
            ledger_pb2.CancelPayoutDestinationRequest(reference=reference),
            ledger_pb2.CancelPayoutDestinationResponse,
        ).destination

    def list_payout_destinations(self) -> list[ledger_pb2.PayoutDestination]:
        """The holder's payout destinations, oldest first, each with its state (pending,
        confirmed, cancelled) and the time it becomes usable."""
        return list(
            self._rpc.unary(
                common.LIST_PAYOUT_DESTINATIONS,
                ledger_pb2.ListPayoutDestinationsRequest(),
                ledger_pb2.ListPayoutDestinationsResponse,
            ).destinations
        )

    # -- the public log ----------------------------------------------------------------------

    def log(self) -> LogClient:
        """The exchange's public log (unsigned calls), for an audit of it."""
        return LogClient(SignedChannel(self._channel, None))


__all__ = ["Holder"]
