"""VerificationService: licence checks at the exchange, and use reports counted atomically."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence

from licentia.errors import LicentiaError, Reason
from licentia.presentation import parse_presentation
from licentia.scope import IntendedUse
from licentia.token import MAX_TOKEN_CHARS, Licence
from licentia.v1 import verification_pb2
from licentia.verify import Decision, VerificationEngine

from . import market
from .deps import Deps
from .digest_quota import DigestQuota
from .idempotency import request_digest
from .model import Party
from .rpc import Call, Method
from .store.base import SpentNonce


class VerificationService:
    """The servicer of inline verification for platforms."""

    def __init__(self, deps: Deps) -> None:
        self.d = deps
        self.engine = VerificationEngine(
            deps.keyring,
            deps.hub,
            nonces=deps.presentation_nonces,
            max_term_seconds=deps.settings.max_term_seconds,
        )
        #: ``CheckAssetDigests``' per-platform daily quota (in this process's memory).
        self.digest_quota = DigestQuota(deps.settings.asset_digest_quota)

    def methods(self) -> Mapping[str, Method]:
        """The handlers, by method name."""
        return {
            # A replayed check learns nothing: its answer follows from what the request
            # carries and the public status list. Its nonce stays in memory only.
            "Verify": Method(self.verify, durable_nonce=False),
            "VerifyStream": Method(self.verify_stream, durable_nonce=False),
            "ReportUse": Method(self.report_use),
            "CheckAssetDigests": Method(self.check_asset_digests, max_request_bytes=4096),
        }

    def _decide(
        self,
        platform: Party,
        token: str,
        presentation: str,
        use_msg: object,
        has_use: bool,
        now: int,
    ) -> tuple[Decision, int]:
        """The decision for one check, and the uses counted so far."""
        # docs/token-format.md §8: the use first (INVALID_USE alone), then the token's size
        # and parse; the presentation's size (MAX_PRESENTATION_CHARS, checked before it is
        # decoded) and parse are checked by the engine with the licence's other reasons.
        if not has_use:
            return Decision(False, (Reason.INVALID_USE,)), 0
        try:
            use = IntendedUse.from_proto(use_msg)  # type: ignore[arg-type]
        except LicentiaError as e:
            return Decision(False, (e.reason,)), 0
        if len(token) > MAX_TOKEN_CHARS:
            return Decision(False, (Reason.TOO_LARGE,)), 0
        # Authenticated once (cached by the token's text), then decided with its uses.
        auth = self.engine.authenticated(token)
        if not auth.allowed or auth.licence is None:
            return auth, 0
        uses = self._uses(auth.licence)
        decision = self.engine.decide(
            auth, use, now, presentation=presentation, uses_so_far=uses, audience=platform.handle
        )
        return decision, uses

    def _platform(self, call: Call) -> Party:
        """The calling platform (UNKNOWN_KEY / NOT_OWNER otherwise)."""
        return self.d.platform(call)

    def _uses(self, licence: Licence) -> int:
        """The uses counted so far of a counted licence (0 for one without ``max_uses``)."""
        if not licence.parsed.max_uses:  # only a counted licence needs the exchange's count
            return 0
        return self.d.store.licence_uses(licence.licence_id)

    def _now(self) -> int:
        """Unix seconds now (each check of a stream is decided at its own time)."""
        return self.d.clock.now()

    def _answer(
        self, req: verification_pb2.VerifyRequest, platform: Party, now: int
    ) -> verification_pb2.VerifyResponse:
        decision, uses = self._decide(
            platform, req.token, req.presentation, req.use, req.HasField("use"), now
        )
        licence = decision.licence
        if decision.allowed and licence is not None:  # (the common answer, built at once)
            return verification_pb2.VerifyResponse(
                allowed=True, uses=uses, licence_id=licence.licence_id
            )
        out = verification_pb2.VerifyResponse(
            allowed=decision.allowed,
            reasons=[int(r) for r in decision.reasons],  # type: ignore[misc]
            uses=uses,
        )
        if licence is not None:
            out.licence_id = licence.licence_id
        return out

    def verify(
        self, req: verification_pb2.VerifyRequest, call: Call
    ) -> verification_pb2.VerifyResponse:
        """ALLOW, or DENY with every reason."""
        platform = self._platform(call)
        return self._answer(req, platform, call.now)

    def verify_stream(
        self, reqs: Iterable[verification_pb2.VerifyRequest], call: Call
    ) -> Iterator[verification_pb2.VerifyResponse]:
        """One answer per check, in order."""
        platform = self._platform(call)
        for req in reqs:
            yield self._answer(req, platform, self._now())

    def report_use(
        self, req: verification_pb2.ReportUseRequest, call: Call
    ) -> verification_pb2.ReportUseResponse:
        """Count one use of a licence the platform has just verified; a retry counts once."""
        platform = self.d.platform(call)
        if len(req.report_id) != 16:
            raise LicentiaError(
                Reason.INVALID_REQUEST,
                f"report_id: 16 random bytes; the request has {len(req.report_id)}",
            )
        # Report ids are the platform's own: keyed with the platform, one platform's id can
        # neither collide with nor reveal another's report.
        report_id = hashlib.sha256(b"licentia.v1.report\x00" + platform.key + req.report_id)
        # A retry presents anew: the presentation is a per-attempt proof, not the request.
        digest = request_digest(call.method, req, omit=("presentation",))
        seen = self.d.store.use_report(report_id.digest()[:16], digest)
        if seen is None:
            decision, _ = self._decide(
                platform, req.token, req.presentation, req.use, req.HasField("use"), call.now
            )
            if not decision.allowed:
                raise LicentiaError(decision.reasons[0], denial_text(decision, req.use))
            assert decision.licence is not None
            licence_id = decision.licence.licence_id
            # The presentation's nonce is spent durably with the use it counts: after a
            # restart (or at another replica) it cannot count a second use.
            p = parse_presentation(req.presentation)
            nonce = SpentNonce(
                b"presentation\x00" + licence_id + p.nonce,
                p.presented_at + self.engine.presentation_window_seconds + 1,
                call.now,
                Reason.REPLAYED,
            )
            uses, recorded_at = self.d.store.record_use(
                report_id.digest()[:16],
                licence_id,
                platform.key,
                call.now,
                digest=digest,
                nonces=(*call.spends, nonce),
            )
        else:
            licence_id, uses, recorded_at = seen
            # A retry names the same licence (its presentation's nonce is spent, so only the
            # token is checked again); a report id is never counted for another licence.
            if len(req.token) > MAX_TOKEN_CHARS:
                raise LicentiaError(
                    Reason.TOO_LARGE,
                    f"token: at most {MAX_TOKEN_CHARS} characters; "
                    f"the request has {len(req.token)}",
                )
            auth = self.engine.authenticate(req.token)
            if isinstance(auth, Decision):
                names = ", ".join(r.name for r in auth.reasons)
                raise LicentiaError(auth.reasons[0], f"token: does not authenticate ({names})")
            if auth.licence_id != licence_id:
                raise LicentiaError(
                    Reason.IDEMPOTENCY_KEY_REUSED,
                    "report_id: already counted a use of another licence; use a new report_id",
                )
        row = self.d.store.licence(licence_id)
        return verification_pb2.ReportUseResponse(
            licence_id=licence_id,
            uses=uses,
            max_uses=row.max_uses if row else 0,
            recorded_at=recorded_at,
        )

    def check_asset_digests(
        self, req: verification_pb2.CheckAssetDigestsRequest, call: Call
    ) -> verification_pb2.CheckAssetDigestsResponse:
        """For each digest, whether some holder declared an asset with it (never whose).
        At most ``--asset-digest-quota`` digests per platform per UTC day (BUSY past it,
        nothing answered: :class:`.digest_quota.DigestQuota`)."""
        platform = self._platform(call)
        digests = check_digests(req.sha256)
        self.digest_quota.take(platform.key, len(digests), call.now)
        declared = self.d.store.declared_digests(sorted(set(digests)))
        return verification_pb2.CheckAssetDigestsResponse(declared=[d in declared for d in digests])


#: The most digests one ``CheckAssetDigests`` call asks about.
MAX_ASSET_DIGESTS = 64


def check_digests(digests: Sequence[bytes]) -> list[bytes]:
    """``CheckAssetDigests``'s digests, checked: 1 to :data:`MAX_ASSET_DIGESTS` (TOO_LARGE
    above), each 32 bytes (INVALID_REQUEST otherwise)."""
    if len(digests) > MAX_ASSET_DIGESTS:
        raise LicentiaError(
            Reason.TOO_LARGE,
            f"sha256: at most {MAX_ASSET_DIGESTS} digests; the request has {len(digests)}",
        )
    if not digests:
        raise LicentiaError(Reason.INVALID_REQUEST, "sha256: at least one digest")
    for n, d in enumerate(digests):
        if len(d) != 32:
            raise LicentiaError(
                Reason.INVALID_REQUEST, f"sha256[{n}]: a SHA-256 digest is 32 bytes, not {len(d)}"
            )
    return [bytes(d) for d in digests]


def denial_text(decision: Decision, use_msg: object) -> str:
    """Why a use is not allowed, for people: every reason, and for each scope or time reason
    the field, what the licence allows and what the use asks (``use medium: the licence
    allows online, social; the use is tv``)."""
    names = ", ".join(r.name for r in decision.reasons)
    licence = decision.licence
    try:
        use = IntendedUse.from_proto(use_msg)  # type: ignore[arg-type]
    except LicentiaError:
        use = None
    if licence is None or use is None:
        return f"the use is not allowed: {names}"
    claims = licence.claims
    scope = claims.scope
    details: list[str] = []
    for reason in decision.reasons:
        if reason == Reason.OUT_OF_SCOPE_CATEGORY:
            got, allowed = market.names([use.category]), market.names(scope.categories)
            details.append(f"use category: the licence allows {allowed}; the use is {got}")
        elif reason == Reason.OUT_OF_SCOPE_PURPOSE:
            got, allowed = market.names([use.purpose]), market.names(scope.purposes)
            details.append(f"use purpose: the licence allows {allowed}; the use is {got}")
        elif reason == Reason.OUT_OF_SCOPE_MEDIUM:
            got, allowed = market.names([use.medium]), market.names(scope.media)
            details.append(f"use medium: the licence allows {allowed}; the use is {got}")
        elif reason == Reason.OUT_OF_SCOPE_TERRITORY:
            got, allowed = use.territory, market.names(scope.territories)
            details.append(f"use territory: the licence allows {allowed}; the use is {got}")
        elif reason == Reason.EXPIRED:
            details.append(f"the licence ended at {claims.not_after}")
        elif reason == Reason.NOT_YET_VALID:
            details.append(f"the licence starts at {claims.not_before}")
        elif reason == Reason.USES_EXHAUSTED:
            details.append(f"the licence allows {claims.max_uses} uses, all reported")
    return f"the use is not allowed: {names}" + "".join(f"; {d}" for d in details)
