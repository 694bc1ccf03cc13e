"""The Content Credentials known answers (tests/vectors/content/, token-format §12): the
committed signed JPEGs, checked from content.json and licence-v1.json alone."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import nacl.signing
import pytest

from licentia import content, content_certs
from licentia.errors import LicentiaError, Reason
from licentia.examples import PHOTO_SHA256
from licentia.keys import IssuerKey, IssuerKeySet, PrivateKey, PublicKey
from licentia.status import StatusEvent, StatusView, verify_snapshot
from licentia.token import LogPromise, approve, issue, parse_token, salted_digest
from licentia.verify import VerificationEngine
from licentia.vocabulary import Medium, Purpose

HERE = Path(__file__).parent
DIR = HERE / "content"
V: dict[str, Any] = json.loads((HERE / "licence-v1.json").read_text())
C: dict[str, Any] = json.loads((DIR / "content.json").read_text())
ISSUER = PublicKey.from_text(V["keys"]["issuer"]["public_key"])
KEYS = IssuerKeySet([IssuerKey(ISSUER, C["issuer_key_window"]["not_before"])])


def _generator() -> Any:
    import importlib.util

    path = HERE / "generate_content.py"
    spec = importlib.util.spec_from_file_location("vectors_generate_content", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_content_vectors_match_a_fresh_build() -> None:
    # Certificates and tokens rebuilt from the seeds, every case re-run on the files.
    assert _generator().main(["--check"]) == 0


def test_certificates_and_files_are_the_documented_ones() -> None:
    root = bytes.fromhex(C["root_der_hex"])
    ee = bytes.fromhex(C["end_entity"]["der_hex"])
    assert hashlib.sha256(root).hexdigest() == C["root_sha256_hex"]
    issuer = nacl.signing.SigningKey(bytes.fromhex(V["keys"]["issuer"]["seed"]))
    window = C["issuer_key_window"]
    assert root == content_certs.root_certificate(
        issuer, ISSUER.key_id, window["not_before"], window["not_after"]
    )
    # The exchange's roots are accepted by the issuer key alone (no new trust anchor).
    assert content_certs.trusted_roots([root], KEYS) == [root]
    info = content_certs.check_chain(ee, root)
    assert (info.not_before, info.not_after) == (
        C["end_entity"]["not_before"],
        C["end_entity"]["not_after"],
    )
    assert info.subject_key == C["end_entity"]["subject_key"] == V["keys"]["licensee"]["public_key"]
    assert info.organisation == C["end_entity"]["organisation"]
    for name, f in C["files"].items():
        assert hashlib.sha256((DIR / name).read_bytes()).hexdigest() == f["sha256_hex"], name
    assert len((DIR / "portrait.jpg").read_bytes()) == 964
    licensed = C["files"]["portrait-licensed.jpg"]
    f = C["file_licence"]
    assert licensed["token"] == f["token"]
    # The assertion names the photo salted, as the claims do (§12.1), never plainly.
    assert licensed["assertion"]["asset_digest"] == f["photo_salted_sha256_hex"]
    assert f["photo_plain_sha256_hex"] == PHOTO_SHA256.hex()
    assert PHOTO_SHA256.hex() not in json.dumps(licensed["assertion"])
    counted = C["files"]["portrait-counted.jpg"]
    assert counted["token"] == V["token_v2"]["approval"]["token"]
    assert parse_token(counted["token"]).max_uses == 3
    other = parse_token(C["files"]["portrait-other-licensee.jpg"]["token"])
    assert PublicKey(other.licensee_key).text == C["other_licensee"]["public_key"]
    assert other.licensee_key != PublicKey.from_text(V["keys"]["licensee"]["public_key"]).raw


def test_the_file_licence_is_rebuilt_from_the_seeds_and_its_claims() -> None:
    # What an independent implementation checks: the claims' bytes, the holder's consent and
    # the issuer's signature over them with the promise, the salted photo, no use counted.
    f = C["file_licence"]
    claims = bytes.fromhex(f["claims_hex"])
    issuer, holder = (
        PrivateKey.from_seed(bytes.fromhex(V["keys"][n]["seed"])) for n in ("issuer", "holder")
    )
    consent = approve(holder, claims)
    assert consent.signature.hex() == f["consent_signature_hex"]
    promise = LogPromise(f["log_promise"]["index"], f["log_promise"]["logged_at"])
    assert issue(issuer, claims, consent, promise=promise) == f["token"]
    t = parse_token(f["token"])
    assert t.claims_bytes == claims
    assert t.issuer_signature.hex() == f["issuer_signature_hex"]
    assert (t.licence_id.hex(), t.status_list, t.status_index) == (
        f["licence_id_hex"], f["status_list"], f["status_index"],
    )  # fmt: skip
    assert (t.not_before, t.not_after, t.max_uses, t.per_use_minor) == (
        f["not_before"], f["not_after"], 0, 0,
    )  # fmt: skip
    assert t.asset_salt.hex() == f["asset_salt_hex"]
    salted = salted_digest(t.asset_salt, bytes.fromhex(f["photo_plain_sha256_hex"]))
    assert salted.hex() == f["photo_salted_sha256_hex"]
    assert salted in t.asset_categories
    assert PublicKey(t.licensee_key).text == V["keys"]["licensee"]["public_key"]
    # LicenceAssertion.for_token makes exactly the assertion the file carries.
    made = content.LicenceAssertion.for_token(f["token"], PHOTO_SHA256)
    assert made.to_json() == C["files"]["portrait-licensed.jpg"]["assertion"]
    assert made.names(PHOTO_SHA256)
    # The counted token of the third file: for_token refuses it.
    with pytest.raises(LicentiaError) as e:
        content.LicenceAssertion.for_token(
            C["files"]["portrait-counted.jpg"]["token"], PHOTO_SHA256
        )
    assert e.value.reason == Reason.CONTENT_USES_COUNTED


def _view(revoke_token: str | None) -> StatusView:
    view = StatusView(
        verify_snapshot(bytes.fromhex(V["status_snapshot"]["signed_hex"]), KEYS),
        C["status_staleness_bound"],
    )
    if revoke_token is not None:  # README step 4: event 3, revoked at licence-v1's now + 30
        t = parse_token(revoke_token)
        view.apply(StatusEvent(3, t.status_list, t.status_index, V["now"] + 30))
    return view


@pytest.mark.parametrize("case", C["cases"], ids=lambda c: c["name"])
def test_content_cases(case: dict[str, Any]) -> None:
    data = (DIR / case["file"]).read_bytes()
    if "flip_offset" in case:
        at = case["flip_offset"]
        # The byte is image data: what follows it is portrait.jpg's own scan, to its end.
        source = (DIR / "portrait.jpg").read_bytes()
        assert data[at:] == source[len(source) - (len(data) - at) :]
        data = data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]
    reading = content.read(data, None, [bytes.fromhex(C["root_der_hex"])])
    token = reading.assertion.token if reading.assertion is not None else None
    engine = VerificationEngine(KEYS, _view(token if case.get("revoke") else None))
    decision = content.check(
        reading,
        engine,
        C["now"],
        purpose=Purpose[C["use"]["purpose"]],
        medium=Medium[C["use"]["medium"]],
        territory=C["use"]["territory"],
    )
    want = case["expect"]
    assert (decision.verdict, [r.name for r in decision.reasons]) == (
        want["verdict"],
        want["reasons"],
    )
    # Every documented answer holds whatever the use: a holder's wallet gets the same one.
    alone = content.check_licence(reading, engine, C["now"])
    assert (alone.verdict, [r.name for r in alone.reasons]) == (want["verdict"], want["reasons"])
    assert (reading.state, reading.signer, reading.organisation) == (
        want["state"],
        want["signer"],
        want["organisation"],
    )
    assert sorted(reading.failures) == want["failures"]
    if case["file"] in C["files"] and "assertion" in C["files"][case["file"]]:
        assert reading.assertion is not None
        assert reading.assertion.to_json() == C["files"][case["file"]]["assertion"]


def test_the_cases_cover_each_documented_answer() -> None:
    # One case per answer README documents; a case dropped from the JSON fails here.
    answers = {c["name"]: tuple(c["expect"]["reasons"]) for c in C["cases"]}
    assert sorted(answers.values()) == sorted(
        [
            (),
            (Reason.REVOKED.name,),
            (Reason.CONTENT_MODIFIED.name,),
            (Reason.CONTENT_SIGNER_NOT_LICENSEE.name,),
            (Reason.CONTENT_NOT_LICENSED.name,),
            (Reason.CONTENT_USES_COUNTED.name,),
        ]
    )


def test_a_licence_signed_into_a_file_by_its_own_licensee_is_allowed() -> None:
    # The other licensee's token, signed by that licensee: the mismatch was the only fault.
    other = C["files"]["portrait-other-licensee.jpg"]
    issuer = nacl.signing.SigningKey(bytes.fromhex(V["keys"]["issuer"]["seed"]))
    root = bytes.fromhex(C["root_der_hex"])
    key = PrivateKey.from_seed(bytes.fromhex(C["other_licensee"]["seed"]))
    ee = content_certs.content_certificate(
        issuer, ISSUER.key_id, root, key.public.raw, "", C["issuer_key_window"]["not_before"],
        C["end_entity"]["not_after"] - C["issuer_key_window"]["not_before"],
    )  # fmt: skip
    signed = content.embed(
        (DIR / "portrait.jpg").read_bytes(),
        "image/jpeg",
        content.LicenceAssertion.from_json(other["assertion"]),
        nacl.signing.SigningKey(key.seed),
        content_certs.chain_pem(ee, root),
    )
    decision = content.check(
        content.read(signed, None, [root]),
        VerificationEngine(KEYS, _view(None)),
        C["now"],
        purpose=Purpose[C["use"]["purpose"]],
        medium=Medium[C["use"]["medium"]],
        territory=C["use"]["territory"],
    )
    assert decision.allowed, decision.reasons


def test_check_licence_keeps_the_term_and_the_named_asset_without_a_use() -> None:
    root = bytes.fromhex(C["root_der_hex"])
    engine = VerificationEngine(KEYS, _view(None))
    licensed = (DIR / "portrait-licensed.jpg").read_bytes()
    reading = content.read(licensed, None, [root])
    assert content.check_licence(reading, engine, C["now"]).allowed
    ended = content.check_licence(reading, engine, C["file_licence"]["not_after"])
    assert Reason.EXPIRED in ended.reasons  # (the status view is stale by then too)
    # The licensee's own file naming an asset its licence does not name: refused by both.
    f = C["file_licence"]
    key = PrivateKey.from_seed(bytes.fromhex(V["keys"]["licensee"]["seed"]))
    chain = content_certs.chain_pem(bytes.fromhex(C["end_entity"]["der_hex"]), root)
    made_up = content.LicenceAssertion(
        f["token"], b"\x07" * 32, f["log_promise"]["index"], f["log_promise"]["logged_at"]
    )
    source = (DIR / "portrait.jpg").read_bytes()
    signed = content.embed(source, "image/jpeg", made_up, nacl.signing.SigningKey(key.seed), chain)
    other = content.read(signed, None, [root])
    assert content.check_licence(other, engine, C["now"]).reasons == (Reason.ASSET_MISMATCH,)
    use = C["use"]
    checked = content.check(
        other,
        engine,
        C["now"],
        purpose=Purpose[use["purpose"]],
        medium=Medium[use["medium"]],
        territory=use["territory"],
    )
    assert Reason.ASSET_MISMATCH in checked.reasons
