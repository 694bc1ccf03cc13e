"""The verification engine: token + intended use + presentation + status, at ``now``.

:meth:`VerificationEngine.verify` never raises for a bad input: it returns a
:class:`Decision` listing every failing reason code. Order of checks (docs/token-format.md):

0. with an audience, a use is required (``INVALID_USE``, nothing else checked);
1. size, then parse (``TOO_LARGE``, ``MALFORMED``) — nothing else is checked on failure;
2. authentication: issuer key, issuer signature, holder consent, term
   (``UNKNOWN_ISSUER_KEY``, ``ISSUER_KEY_NOT_VALID``, ``BAD_SIGNATURE``, ``BAD_CONSENT``,
   ``OUTSIDE_STANDING_RULE``, ``SENSITIVE_USE_NEEDS_APPROVAL``, ``INVALID_TERM``) — all
   collected, and nothing else is checked on failure, since the claims are not trusted;
3. time, status, scope, asset, uses and presentation — all collected.

Tokens that pass step 2 are cached by their exact text, so a token seen before costs no
signature check; step 3 runs on every call. A cached entry is used only while the issuer
key that signed it is still the one the key resolver returns.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol, cast

from .errors import LicentiaError, Reason
from .keys import IssuerKeyResolver
from .nonces import NonceStore
from .presentation import DEFAULT_WINDOW_SECONDS, checked, parse_presentation
from .scope import IntendedUse
from .token import (
    DEFAULT_MAX_TERM_SECONDS,
    Licence,
    UnverifiedLicence,
    authenticate,
    parse_token,
)

__all__ = ["Decision", "StatusSource", "VerificationEngine"]


class StatusSource(Protocol):
    """Where the engine learns whether a licence is revoked: a verifier's
    :class:`~licentia.status.StatusView`, or the exchange's own status list."""

    def check(self, status_list: int, status_index: int, now: int) -> Reason | None:
        """``REVOKED``, ``STATUS_LIST_DROPPED``, ``STATUS_STALE``, or ``None`` when the
        licence (``status_index`` of list ``status_list``) is known not revoked."""
        ...


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of a verification: ALLOW with no reasons, or DENY with every reason."""

    allowed: bool
    reasons: tuple[Reason, ...]
    #: The authenticated licence, when the token got that far (even on DENY).
    licence: Licence | None = None

    @property
    def verdict(self) -> str:
        """``"ALLOW"`` or ``"DENY"``."""
        return "ALLOW" if self.allowed else "DENY"

    def __str__(self) -> str:
        if self.allowed:
            return "ALLOW"
        return "DENY " + ", ".join(r.name for r in self.reasons)


def _deny(*reasons: Reason, licence: Licence | None = None) -> Decision:
    return Decision(False, tuple(reasons), licence)


class VerificationEngine:
    """Verifies licences in-process, with a cache of authenticated tokens.

    ``status`` is the verifier's view of the revocation status list (it fails closed when
    stale). With ``audience`` set — a platform's own id — every verification needs a
    presentation for that platform, checked against ``nonces``; without it, only the
    licence itself is checked (the exchange's and the holder's view).
    """

    def __init__(
        self,
        keys: IssuerKeyResolver,
        status: StatusSource,
        *,
        audience: str | None = None,
        nonces: NonceStore | None = None,
        max_term_seconds: int = DEFAULT_MAX_TERM_SECONDS,
        presentation_window_seconds: int = DEFAULT_WINDOW_SECONDS,
        cache_size: int = 10_000,
    ) -> None:
        if audience is not None and nonces is None:
            raise ValueError("a platform (audience) needs a nonce store")
        self.keys = keys
        self.status = status
        self.audience = audience
        self.nonces = nonces
        self.max_term_seconds = max_term_seconds
        self.presentation_window_seconds = presentation_window_seconds
        self.cache_size = cache_size
        self._cache: OrderedDict[str, Decision] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def cached_tokens(self) -> int:
        """How many authenticated tokens the cache holds (at most ``cache_size``)."""
        return len(self._cache)

    def authenticate(self, token: str) -> Licence | Decision:
        """The authenticated licence for ``token`` (cached), or a DENY decision."""
        auth = self._authenticate(token)
        return auth.licence if auth.allowed and auth.licence is not None else auth

    def _authenticate(self, token: str) -> Decision:
        """The ALLOW decision of an authentic token (cached: the cache holds these), or a
        DENY decision with the reasons it is not."""
        if not isinstance(token, str):
            return _deny(Reason.MALFORMED)
        hit = self._cache.get(token)
        if hit is not None:
            licence = cast(Licence, hit.licence)
            if self.keys.resolve(licence.parsed.issuer_key_id) is licence.issuer_key:
                return hit
            with self._lock:  # the key set changed: authenticate again
                self._cache.pop(token, None)
        try:
            parsed = parse_token(token)
            issuer, reasons = authenticate(parsed, self.keys, self.max_term_seconds)
        except LicentiaError as e:
            return _deny(e.reason)
        except Exception:  # noqa: BLE001 - fail closed on anything unforeseen
            return _deny(Reason.MALFORMED)
        if reasons or issuer is None:
            return _deny(*reasons)
        allow = Decision(True, (), Licence(parsed, issuer))
        if self.cache_size > 0:
            with self._lock:
                if len(self._cache) >= self.cache_size:
                    self._cache.popitem(last=False)
                self._cache[token] = allow
        return allow

    def verify(
        self,
        token: str,
        use: IntendedUse | None,
        now: int,
        *,
        presentation: str | None = None,
        uses_so_far: int | None = None,
        audience: str | None = None,
    ) -> Decision:
        """Decide whether ``use`` of the licence ``token`` is allowed at ``now``.

        ``use=None`` checks the licence alone (time and status), never with an audience.
        ``uses_so_far`` (the exchange's count) enables the ``max_uses`` check.
        ``audience`` checks the presentation for that platform on this call, overriding the
        engine's own (one engine verifying for many platforms, as the exchange's Verify
        does); it needs the engine's nonce store.
        """
        if audience is None:
            audience = self.audience
        if audience is not None:
            if self.nonces is None:
                raise ValueError("checking a presentation needs a nonce store")
            if use is None:
                # A presentation is for one use: without one there is nothing to check, and
                # the use is checked before the token (docs/token-format.md §8, step 0).
                return _deny(Reason.INVALID_USE)
        auth = self._authenticate(token)
        if not auth.allowed:
            return auth
        return self._decide(auth, use, now, presentation, uses_so_far, audience)

    def authenticated(self, token: str) -> Decision:
        """Steps 1 and 2 of :meth:`verify` (cached): the ALLOW decision of an authentic token,
        carrying its licence, for :meth:`decide`; or the DENY decision with its reasons."""
        return self._authenticate(token)

    def decide(
        self,
        auth: Decision,
        use: IntendedUse | None,
        now: int,
        *,
        presentation: str | None = None,
        uses_so_far: int | None = None,
        audience: str | None = None,
        content: bool = False,
    ) -> Decision:
        """Step 3 of :meth:`verify` for ``auth``, an ALLOW decision of :meth:`authenticated`
        (a caller that needs the licence before deciding, as the exchange's Verify does to
        read its uses, authenticates once). A DENY ``auth`` is returned as it is.

        ``content`` checks the licence for a file whose Content Credentials the caller
        verified (``licentia.content.check``): the licensee's C2PA signature stands in for
        the presentation, so no audience applies, and the use's asset digest is the salted
        one the file names (§12.1)."""
        audience = None if content else self.audience if audience is None else audience
        if audience is not None and self.nonces is None:
            raise ValueError("checking a presentation needs a nonce store")
        if audience is not None and use is None:
            return _deny(Reason.INVALID_USE)
        if not auth.allowed or auth.licence is None:
            return auth
        return self._decide(auth, use, now, presentation, uses_so_far, audience, content)

    def _decide(
        self,
        auth: Decision,
        use: IntendedUse | None,
        now: int,
        presentation: str | None,
        uses_so_far: int | None,
        audience: str | None,
        content: bool = False,
    ) -> Decision:
        """Step 3 for ``auth``, an ALLOW decision carrying its licence, the arguments
        checked by the caller (:meth:`verify` or :meth:`decide`), all positional."""
        licence = cast(Licence, auth.licence)
        u = licence.parsed
        reasons: list[Reason] = []
        if now < u.not_before:
            reasons.append(Reason.NOT_YET_VALID)
        if now >= u.not_after:
            reasons.append(Reason.EXPIRED)
        status = self.status.check(u.status_list, u.status_index, now)
        if status is not None:
            reasons.append(status)
        if use is not None:
            out_of_scope = u.scope.check(use)
            if out_of_scope:
                reasons.extend(out_of_scope)
            # A file names its asset salted, as the claims do (§12.1); a platform, plain.
            named = (
                u.asset_categories.get(use.asset_sha256)
                if content
                else u.asset_category(use.asset_sha256)
            )
            if named != use.category:
                reasons.append(Reason.ASSET_MISMATCH)
        if u.max_uses and uses_so_far is not None and uses_so_far >= u.max_uses:
            reasons.append(Reason.USES_EXHAUSTED)
        if audience is not None:
            reasons.extend(self._presented(u, use, presentation, now, audience))
        if reasons:
            return Decision(False, tuple(reasons), licence)
        return auth

    def _presented(
        self,
        u: UnverifiedLicence,
        use: IntendedUse | None,
        presentation: str | None,
        now: int,
        audience: str,
    ) -> list[Reason]:
        """Every reason the presentation of ``u`` to ``audience`` fails (empty when it holds).

        No presentation, or an empty one (protobuf cannot tell the two apart), is
        WRONG_LICENSEE; a presentation over its size limit or that does not parse gives
        TOO_LARGE or MALFORMED alone, beside the licence's own reasons."""
        if use is None:  # verify() refuses this before the token is checked
            return [Reason.INVALID_USE]
        if not presentation:
            return [Reason.WRONG_LICENSEE]
        try:
            p = parse_presentation(presentation)
        except LicentiaError as err:
            return [err.reason]
        except Exception:  # noqa: BLE001 - fail closed on anything unforeseen
            return [Reason.MALFORMED]
        return checked(
            p,
            u.licensee_key,
            u.licence_id,
            audience,
            use,
            now,
            cast(NonceStore, self.nonces),
            self.presentation_window_seconds,
        )
