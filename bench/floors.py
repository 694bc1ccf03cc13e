"""The floors of the verification benches: the least any verifier of this format must do.

A floor decodes strictly, parses each signed message canonically and checks each signature
over the bytes the format says (docs/token-format.md), and nothing else: no claim checked, no
key resolved, no scope, status or cache. Benches measure it in the same rounds as the real
path and print it as ``floor_ratio`` next to ``ratio``: a target above the floor cannot be met
by any amount of care in the checks around the signatures.
"""

from __future__ import annotations

from licentia.encoding import b64url_decode, parse_canonical
from licentia.keys import CONSENT, ISSUANCE, PRESENTATION, verify_signature
from licentia.token import Approval, StandingConsent, issuance_message
from licentia.v1 import licence_pb2


def token_floor(token: str, issuer_key: bytes, *, consent: bool = True) -> None:
    """Decode and parse ``token`` (an approved licence), check the issuer's signature and,
    with ``consent``, the holder's (without: the consent was checked before, as a standing
    rule's is). Raises ``SystemExit`` if a signature fails (a bench must not measure that)."""
    env = parse_canonical(b64url_decode(token[5:]), licence_pb2.SignedLicence(), "token")
    claims_bytes = env.claims
    m = parse_canonical(claims_bytes, licence_pb2.LicenceClaims(), "claims")
    kind = env.WhichOneof("consent")
    if kind == "holder_signature":
        holder_sig = env.holder_signature
        message = issuance_message(claims_bytes, Approval(holder_sig))
    else:  # a standing rule: the message frames the rule; its signature is not rechecked
        holder_sig = env.standing.holder_signature
        message = issuance_message(claims_bytes, StandingConsent(env.standing.rule, holder_sig))
    ok = verify_signature(issuer_key, ISSUANCE, message, env.issuer_signature)
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
