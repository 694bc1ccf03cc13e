"""The known-answer vectors: up to date, and verifiable from the JSON alone."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import nacl.signing
import pytest

from licentia.encoding import b64url_decode
from licentia.keys import IssuerKey, IssuerKeySet, PublicKey
from licentia.nonces import MemoryNonceStore
from licentia.scope import IntendedUse
from licentia.status import StatusEvent, StatusView, verify_snapshot
from licentia.token import parse_token
from licentia.v1 import keys_pb2
from licentia.verify import VerificationEngine
from licentia.vocabulary import DataCategory, Medium, Purpose

HERE = Path(__file__).parent
V: dict[str, Any] = json.loads((HERE / "licence-v1.json").read_text())


def _generator() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("vectors_generate", HERE / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_vectors_match_a_fresh_generation() -> None:
    assert _generator().main(["--check"]) == 0


def _raw_verify(public_text: str, signing_input_hex: str, signature_hex: str) -> None:
    key = nacl.signing.VerifyKey(PublicKey.from_text(public_text).raw)
    key.verify(bytes.fromhex(signing_input_hex), bytes.fromhex(signature_hex))


def test_signatures_verify_over_the_documented_signing_inputs() -> None:
    keys = V["keys"]
    lic = V["approval_licence"]
    consent_input = bytes.fromhex(lic["consent_signing_input_hex"])
    assert consent_input == b"licentia.v1.consent\x00" + bytes.fromhex(lic["claims_hex"])
    _raw_verify(
        keys["holder"]["public_key"], lic["consent_signing_input_hex"], lic["consent_signature_hex"]
    )
    claims = bytes.fromhex(lic["claims_hex"])
    expected_issuance = (
        b"licentia.v1.issuance\x00"
        + len(claims).to_bytes(4, "big")
        + claims
        + b"\x01"
        + bytes.fromhex(lic["consent_signature_hex"])
    )
    assert bytes.fromhex(lic["issuance_signing_input_hex"]) == expected_issuance
    _raw_verify(
        keys["issuer"]["public_key"], lic["issuance_signing_input_hex"], lic["issuer_signature_hex"]
    )
    rule = V["standing_licence"]
    _raw_verify(
        keys["holder"]["public_key"], rule["rule_signing_input_hex"], rule["rule_signature_hex"]
    )
    for name in ("status_event", "status_heartbeat"):
        item = V[name]
        _raw_verify(keys["issuer"]["public_key"], item["signing_input_hex"], item["signature_hex"])
    event = V["status_event"]
    assert bytes.fromhex(event["signing_input_hex"]) == (
        b"licentia.v1.status-event\x00"
        + event["sequence"].to_bytes(8, "big")
        + event["status_index"].to_bytes(8, "big")
        + event["revoked_at"].to_bytes(8, "big")
        + bytes.fromhex(keys["issuer"]["key_id"])
    )
    beat = V["status_heartbeat"]
    assert bytes.fromhex(beat["signing_input_hex"]) == (
        b"licentia.v1.status-heartbeat\x00"
        + beat["sequence"].to_bytes(8, "big")
        + beat["at"].to_bytes(8, "big")
        + bytes.fromhex(keys["issuer"]["key_id"])
        + bytes.fromhex(beat["key_set_sha256_hex"])
    )
    window = V["issuer_key_window"]
    key_set = keys_pb2.IssuerKeySet(
        keys=[
            keys_pb2.IssuerKey(
                key_id=bytes.fromhex(keys["issuer"]["key_id"]),
                public_key=PublicKey.from_text(keys["issuer"]["public_key"]).raw,
                not_before=window["not_before"],
            )
        ]
    )
    assert (
        bytes.fromhex(beat["key_set_sha256_hex"])
        == hashlib.sha256(
            b"licentia.v1.issuer-key-set\x00" + key_set.SerializeToString(deterministic=True)
        ).digest()
    )
    req = V["request"]
    _raw_verify(
        keys["holder"]["public_key"],
        req["signing_input_hex"],
        b64url_decode(req["metadata"]["x-licentia-signature"]).hex(),
    )


def test_token_carries_exactly_the_documented_bytes() -> None:
    lic = V["approval_licence"]
    parsed = parse_token(lic["token"])
    assert parsed.claims_bytes.hex() == lic["claims_hex"]
    assert parsed.issuer_signature.hex() == lic["issuer_signature_hex"]
    assert len(lic["token"]) == lic["token_length"] <= 560


def test_rfc8032_test1() -> None:
    t = V["rfc8032_test1"]
    key = nacl.signing.SigningKey(bytes.fromhex(t["secret_key"]))
    assert bytes(key.verify_key).hex() == t["public_key"]
    assert key.sign(bytes.fromhex(t["message"])).signature.hex() == t["signature"]


@pytest.mark.parametrize("case", V["cases"], ids=[c["name"] for c in V["cases"]])
def test_verification_cases(case: dict[str, Any]) -> None:
    issuer = PublicKey.from_text(V["keys"]["issuer"]["public_key"])
    keys = IssuerKeySet([IssuerKey(issuer, V["issuer_key_window"]["not_before"])])
    snapshot = bytes.fromhex(V["status_snapshot"]["signed_hex"])
    view = StatusView(verify_snapshot(snapshot, keys), V["status_staleness_bound"])
    if case.get("revoke"):
        index = parse_token(case["token"]).claims.status_index
        view.apply(StatusEvent(V["status_snapshot"]["sequence"] + 1, index, V["now"] + 30))
    audience = case.get("audience")
    engine = VerificationEngine(
        keys, view, audience=audience, nonces=MemoryNonceStore() if audience else None
    )
    u = case["use"]
    use = IntendedUse(
        DataCategory[u["category"]],
        Purpose[u["purpose"]],
        Medium[u["medium"]],
        u["territory"],
        bytes.fromhex(u["asset_sha256"]),
    )
    d = engine.verify(case["token"], use, case["now"], presentation=case.get("presentation"))
    assert {"verdict": d.verdict, "reasons": [r.name for r in d.reasons]} == case["expect"]
