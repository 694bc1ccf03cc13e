"""The floors of the verification benches: the least any verifier of this format must do.

A floor decodes strictly, parses each signed message canonically and checks each signature
over the bytes the format says (docs/token-format.md), and nothing else: no claim checked, no
key resolved, no scope, status or cache. Benches measure it in the same rounds as the real
path and print it as ``floor_ratio`` next to ``ratio``: a target above the floor cannot be met
by any amount of care in the checks around the signatures.

A *checks floor* (:func:`checks_floor`) adds every check a platform's verification of an
approved licence must make, written inline on the wire messages with the library's own rule
functions, and no more: no domain object, no decision with its reasons, no cache, no lock.
Printed as ``checks_floor_ratio``: it is what the checks themselves cost, so a target between
it and the floor leaves nothing for the rest of a real verifier.
"""

from __future__ import annotations

from typing import Protocol

from licentia.encoding import b64url_decode, parse_canonical
from licentia.errors import Reason
from licentia.keys import (
    CONSENT,
    ISSUANCE,
    ISSUANCE_V2,
    PRESENTATION,
    IssuerKeyResolver,
    verify_signature,
)
from licentia.presentation import DEFAULT_WINDOW_SECONDS, NONCE_BYTES
from licentia.scope import IntendedUse
from licentia.token import (
    DEFAULT_MAX_TERM_SECONDS,
    Approval,
    Consent,
    RuleCommitment,
    StandingConsent,
    check_claims_message,
    issuance_message,
    salted_digest,
)
from licentia.v1 import licence_pb2


class Status(Protocol):
    """Where the checks floor reads a licence's revocation bit (a verifier's live view)."""

    def check(self, status_list: int, status_index: int, now: int) -> Reason | None:
        """``REVOKED``, ``STATUS_LIST_DROPPED``, ``STATUS_STALE``, or ``None``."""
        ...


def token_floor(token: str, issuer_key: bytes, *, consent: bool = True) -> None:
    """Decode and parse ``token`` (an approved licence), check the issuer's signature and,
    with ``consent``, the holder's (without: the consent was checked before, as a standing
    rule's is). Raises ``SystemExit`` if a signature fails (a bench must not measure that)."""
    env = parse_canonical(b64url_decode(token[5:]), licence_pb2.SignedLicence(), "token")
    claims_bytes = env.claims
    m = parse_canonical(claims_bytes, licence_pb2.LicenceClaims(), "claims")
    kind = env.WhichOneof("consent")
    # A v2 token's issuer signature also covers its log promise (no signature of its own).
    promise = env.log_promise.SerializeToString(deterministic=True) if token[3] == "2" else None
    consent_: Consent
    holder_sig = b""
    if kind == "holder_signature":
        holder_sig = env.holder_signature
        consent_ = Approval(holder_sig)
    elif kind == "rule_commitment":  # v2: the issuer vouches for the rule; nothing else to check
        consent_ = RuleCommitment(env.rule_commitment.salt, env.rule_commitment.digest)
        consent = False
    else:  # a standing rule: the message frames the rule; its signature is not rechecked
        holder_sig = env.standing.holder_signature
        consent_ = StandingConsent(env.standing.rule, holder_sig)
    message = issuance_message(claims_bytes, consent_, promise)
    domain = ISSUANCE if promise is None else ISSUANCE_V2
    ok = verify_signature(issuer_key, domain, message, env.issuer_signature)
    if consent:
        ok = ok and verify_signature(m.holder_key, CONSENT, claims_bytes, holder_sig)
    if not ok:
        raise SystemExit("a benchmark token failed the floor's signature checks")


def presentation_floor(presentation: str, licensee_key: bytes) -> None:
    """Decode and parse ``presentation`` canonically and check its signature."""
    signed = parse_canonical(
        b64url_decode(presentation[5:]), licence_pb2.SignedPresentation(), "presentation"
    )
    parse_canonical(signed.claims, licence_pb2.PresentationClaims(), "presentation claims")
    if not verify_signature(licensee_key, PRESENTATION, signed.claims, signed.signature):
        raise SystemExit("a benchmark presentation failed the floor's signature check")


def checks_floor(
    token: str,
    presentation: str,
    keys: IssuerKeyResolver,
    status: Status,
    use: IntendedUse,
    audience: str,
    now: int,
    seen: set[bytes],
) -> None:
    """The floor's work on an approved licence and its presentation, and every check of
    both: the claims' structure (``check_claims_message``), the issuer key and its window,
    the term, the time, the status bit, the scope, the asset, the presentation's fields,
    licence, use, audience and window, and its nonce (``seen``). Raises ``SystemExit`` on
    anything a real verifier would deny (a bench must not measure that)."""
    env = parse_canonical(b64url_decode(token[5:]), licence_pb2.SignedLicence(), "token")
    claims_bytes = env.claims
    m = parse_canonical(claims_bytes, licence_pb2.LicenceClaims(), "claims")
    scope, assets = check_claims_message(m)
    issuer = keys.resolve(m.issuer_key_id)
    holder_sig = env.holder_signature
    not_before, not_after = m.not_before, m.not_after
    # v2: the promise is covered by the issuer's one signature and checked for what it says;
    # the asset is looked up salted.
    v2 = token[3] == "2"
    promise = env.log_promise.SerializeToString(deterministic=True) if v2 else None
    logged = not v2 or (
        env.HasField("log_promise") and 0 < m.issued_at <= env.log_promise.logged_at
    )
    digest = salted_digest(m.asset_salt, use.asset_sha256) if v2 else use.asset_sha256
    signed = parse_canonical(
        b64url_decode(presentation[5:]), licence_pb2.SignedPresentation(), "presentation"
    )
    p = parse_canonical(signed.claims, licence_pb2.PresentationClaims(), "presentation claims")
    nonce = p.nonce
    ok = (
        issuer is not None
        and issuer.may_sign_at(m.issued_at)
        and verify_signature(
            issuer.public.raw,
            ISSUANCE_V2 if v2 else ISSUANCE,
            issuance_message(claims_bytes, Approval(holder_sig), promise),
            env.issuer_signature,
        )
        and logged
        and verify_signature(m.holder_key, CONSENT, claims_bytes, holder_sig)
        and 0 < not_after - not_before <= DEFAULT_MAX_TERM_SECONDS
        and not_before <= now < not_after
        and status.check(m.status_list, m.status_index, now) is None
        and not scope.check(use)
        and assets.get(digest) == use.category
        and len(nonce) == NONCE_BYTES
        and p.HasField("use")
        and p.audience == audience
        and IntendedUse.from_proto(p.use) == use
        and p.licence_id == m.licence_id
        and abs(now - p.presented_at) <= DEFAULT_WINDOW_SECONDS
        and verify_signature(m.licensee_key, PRESENTATION, signed.claims, signed.signature)
        and m.licence_id + nonce not in seen
    )
    if not ok:
        raise SystemExit("a benchmark check failed the checks floor")
    seen.add(m.licence_id + nonce)
