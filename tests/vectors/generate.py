"""Rebuild tests/vectors/licence-v1.json from fixed seeds (Ed25519 is deterministic).

python tests/vectors/generate.py           # write licence-v1.json
python tests/vectors/generate.py --check   # exit 1 if the committed file differs
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import nacl.signing

from licentia import keys as keymod
from licentia.encoding import b64url_decode
from licentia.examples import PHOTO_SHA256, typical_claims, typical_rule
from licentia.keys import IssuerKey, IssuerKeySet, PrivateKey
from licentia.nonces import MemoryNonceStore
from licentia.presentation import present
from licentia.request import request_payload, sign_request
from licentia.scope import IntendedUse
from licentia.status import (
    StatusEvent,
    StatusList,
    StatusView,
    signed_heartbeat,
    verify_snapshot,
)
from licentia.token import (
    approve,
    issuance_message,
    issue,
    parse_token,
    sign_standing_rule,
)
from licentia.verify import VerificationEngine
from licentia.vocabulary import DataCategory, Medium, Purpose

OUT = Path(__file__).with_name("licence-v1.json")
NOW = 1_800_000_000
DAY = 86400
SEEDS = {"issuer": b"\x01" * 32, "holder": b"\x02" * 32, "licensee": b"\x03" * 32}
AUDIENCE = "platform-1"
RFC8032_TEST1 = {
    "secret_key": "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
    "public_key": "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
    "message": "",
    "signature": "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065"
    "224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
}


def _use(**over: Any) -> IntendedUse:
    base = IntendedUse(
        DataCategory.IMAGE, Purpose.PERSONALISED_ADVERTISING, Medium.SOCIAL, "FR", PHOTO_SHA256
    )
    return replace(base, **over)


def _use_json(u: IntendedUse) -> dict[str, Any]:
    return {
        "category": u.category.name,
        "purpose": u.purpose.name,
        "medium": u.medium.name,
        "territory": u.territory,
        "asset_sha256": u.asset_sha256.hex(),
    }


def signing_input(domain: bytes, payload: bytes) -> str:
    """Hex of the exact bytes a signature covers."""
    return keymod.signed_message(domain, payload).hex()


def build() -> dict[str, Any]:
    """Every vector, as a JSON-ready document."""
    k = {name: PrivateKey.from_seed(seed) for name, seed in SEEDS.items()}
    issuer, holder, licensee = k["issuer"], k["holder"], k["licensee"]
    seed = nacl.signing.SigningKey(bytes.fromhex(RFC8032_TEST1["secret_key"]))
    if (
        bytes(seed.verify_key).hex() != RFC8032_TEST1["public_key"]
        or seed.sign(b"").signature.hex() != RFC8032_TEST1["signature"]
    ):
        raise SystemExit("the Ed25519 underneath is not RFC 8032's")

    claims = typical_claims(issuer, holder, licensee, NOW)
    claims_bytes = claims.encode()
    consent = approve(holder, claims_bytes)
    token = issue(issuer, claims_bytes, consent)
    issuance = issuance_message(claims_bytes, consent)

    rule = typical_rule(holder, NOW)
    standing_claims = replace(claims, licence_id=b"\x11" * 16, status_index=1_000_001)
    standing = sign_standing_rule(holder, rule)
    standing_token = issue(issuer, standing_claims.encode(), standing)

    use = _use()
    nonce = b"\x42" * 16
    presentation = present(licensee, claims.licence_id, AUDIENCE, use, NOW + 60, nonce=nonce)
    p_claims = b64url_decode(presentation[5:])

    statuses = StatusList()
    statuses.revoke(1)
    statuses.revoke(5)
    snapshot = statuses.snapshot(issuer, 2, NOW)

    body = b"\x0a\x05alice"
    method = "/licentia.v1.RegistryService/RegisterHolder"
    metadata = sign_request(holder, method, body, NOW, nonce=b"\x07" * 16)

    keys = IssuerKeySet([IssuerKey(issuer.public, NOW - DAY)])
    bad_consent = issue(issuer, claims_bytes, approve(licensee, claims_bytes))
    flipped = token[:40] + ("A" if token[40] != "A" else "B") + token[41:]
    cases: list[dict[str, Any]] = [
        {"name": "in scope", "token": token, "use": use, "now": NOW + 60},
        {"name": "standing rule in scope", "token": standing_token, "use": use, "now": NOW + 60},
        {"name": "before the term", "token": token, "use": use, "now": NOW - 1},
        {"name": "after the term", "token": token, "use": use, "now": NOW + 90 * DAY},
        {
            "name": "purpose not covered",
            "token": token,
            "use": _use(purpose=Purpose.RECRUITMENT),
            "now": NOW + 60,
        },
        {
            "name": "territory not covered",
            "token": token,
            "use": _use(territory="EU"),
            "now": NOW + 60,
        },
        {
            "name": "another asset",
            "token": token,
            "use": _use(asset_sha256=b"\x00" * 32),
            "now": NOW + 60,
        },
        {"name": "revoked", "token": token, "use": use, "now": NOW + 60, "revoke": True},
        {"name": "stale status view", "token": token, "use": use, "now": NOW + 301},
        {"name": "consent by another key", "token": bad_consent, "use": use, "now": NOW + 60},
        {"name": "one character flipped", "token": flipped, "use": use, "now": NOW + 60},
        {
            "name": "presentation for this platform",
            "token": token,
            "use": use,
            "now": NOW + 60,
            "audience": AUDIENCE,
            "presentation": presentation,
        },
        {
            "name": "presentation for another platform",
            "token": token,
            "use": use,
            "now": NOW + 60,
            "audience": "platform-2",
            "presentation": presentation,
        },
    ]
    for case in cases:
        case["expect"] = run_case(case, keys, snapshot)
        case["use"] = _use_json(case["use"])

    return {
        "about": "Licentia v1 known-answer vectors; see tests/vectors/README.md",
        "now": NOW,
        "keys": {
            name: {
                "seed": SEEDS[name].hex(),
                "public_key": key.public.text,
                "key_id": key.public.key_id.hex(),
            }
            for name, key in k.items()
        },
        "issuer_key_window": {"not_before": NOW - DAY, "not_after": None},
        "status_staleness_bound": 300,
        "approval_licence": {
            "claims_hex": claims_bytes.hex(),
            "consent_signing_input_hex": signing_input(keymod.CONSENT, claims_bytes),
            "consent_signature_hex": consent.signature.hex(),
            "issuance_signing_input_hex": signing_input(keymod.ISSUANCE, issuance),
            "issuer_signature_hex": parse_token(token).issuer_signature.hex(),
            "token": token,
            "token_length": len(token),
        },
        "standing_licence": {
            "claims_hex": standing_claims.encode().hex(),
            "rule_hex": standing.rule_bytes.hex(),
            "rule_signing_input_hex": signing_input(keymod.STANDING_RULE, standing.rule_bytes),
            "rule_signature_hex": standing.signature.hex(),
            "token": standing_token,
        },
        "presentation": {
            "audience": AUDIENCE,
            "nonce_hex": nonce.hex(),
            "signed_presentation_hex": p_claims.hex(),
            "text": presentation,
        },
        "status_snapshot": {"revoked": [1, 5], "sequence": 2, "signed_hex": snapshot.hex()},
        "status_event": _status_event(issuer),
        "status_heartbeat": _status_heartbeat(issuer),
        "request": {
            "method": method,
            "body_hex": body.hex(),
            "timestamp": NOW,
            "signing_input_hex": signing_input(
                keymod.REQUEST, request_payload(method, body, NOW, b"\x07" * 16)
            ),
            "metadata": dict(metadata),
        },
        "rfc8032_test1": RFC8032_TEST1,
        "cases": cases,
    }


def _status_event(issuer: PrivateKey) -> dict[str, Any]:
    """Event 3 (index 9 revoked at ``NOW + 30``), signed, with its signing input."""
    msg = StatusEvent(3, 9, NOW + 30).signed(issuer)
    payload = (
        (3).to_bytes(8, "big") + (9).to_bytes(8, "big") + (NOW + 30).to_bytes(8, "big")
    ) + msg.issuer_key_id
    return {
        "sequence": 3,
        "status_index": 9,
        "revoked_at": NOW + 30,
        "signing_input_hex": signing_input(keymod.STATUS_EVENT, payload),
        "signature_hex": msg.signature.hex(),
        "event_hex": msg.SerializeToString(deterministic=True).hex(),
    }


def _status_heartbeat(issuer: PrivateKey) -> dict[str, Any]:
    """A heartbeat at sequence 3, ``NOW + 60``, with the digest of the vectors' key set,
    signed, with its signing input."""
    digest = IssuerKeySet([IssuerKey(issuer.public, NOW - DAY)]).digest()
    msg = signed_heartbeat(issuer, 3, NOW + 60, digest)
    payload = (3).to_bytes(8, "big") + (NOW + 60).to_bytes(8, "big") + msg.issuer_key_id + digest
    return {
        "sequence": 3,
        "at": NOW + 60,
        "key_set_sha256_hex": digest.hex(),
        "signing_input_hex": signing_input(keymod.STATUS_HEARTBEAT, payload),
        "signature_hex": msg.signature.hex(),
        "heartbeat_hex": msg.SerializeToString(deterministic=True).hex(),
    }


def run_case(case: dict[str, Any], keys: IssuerKeySet, snapshot: bytes) -> dict[str, Any]:
    """Verify one case with a fresh engine; the decision as JSON."""
    view = StatusView(verify_snapshot(snapshot, keys), 300)
    if case.get("revoke"):
        view.apply(StatusEvent(3, parse_token(case["token"]).claims.status_index, NOW + 30))
    audience = case.get("audience")
    engine = VerificationEngine(
        keys, view, audience=audience, nonces=MemoryNonceStore() if audience else None
    )
    d = engine.verify(
        case["token"], case["use"], case["now"], presentation=case.get("presentation")
    )
    return {"verdict": d.verdict, "reasons": [r.name for r in d.reasons]}


def render() -> str:
    """The file's exact text."""
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the vectors, or with --check compare them with the committed file."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if the file is out of date")
    args = ap.parse_args(argv)
    text = render()
    if args.check:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT.name} is out of date: run tests/vectors/generate.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
