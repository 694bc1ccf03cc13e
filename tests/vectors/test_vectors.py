"""The known-answer vectors: up to date, and verifiable from the JSON alone."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import nacl.bindings
import nacl.exceptions
import nacl.public
import nacl.signing
import pytest
from mnemonic import Mnemonic

from licentia import territory
from licentia.encoding import b64url_decode
from licentia.errors import LicentiaError
from licentia.keys import IssuerKey, IssuerKeySet, PublicKey, verify_signature
from licentia.nonces import MemoryNonceStore
from licentia.request import parse_request_metadata, verify_request
from licentia.scope import IntendedUse
from licentia.status import StatusEvent, StatusView, verify_event, verify_snapshot
from licentia.token import parse_token
from licentia.v1 import keys_pb2, status_pb2
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
        b"licentia.v2.status-event\x00"
        + event["sequence"].to_bytes(8, "big")
        + event["status_list"].to_bytes(8, "big")
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


def test_recovery_phrase() -> None:
    # Rebuilt from the standard's steps alone (token-format §1a): BIP-39 words and checksum,
    # PBKDF2-HMAC-SHA512 with the salt "mnemonic", HMAC-SHA512 keyed with the domain.
    r = V["recovery_phrase"]
    entropy = bytes.fromhex(r["entropy_hex"])
    words = Mnemonic("english").wordlist
    bits = int.from_bytes(entropy, "big") << 4 | hashlib.sha256(entropy).digest()[0] >> 4
    assert r["phrase"] == " ".join(words[bits >> 11 * (11 - i) & 0x7FF] for i in range(12))
    bip39_seed = hashlib.pbkdf2_hmac("sha512", r["phrase"].encode(), b"mnemonic", 2048)
    assert bip39_seed.hex() == r["bip39_seed_hex"]
    seed = hmac.new(b"licentia.v1.recovery-key", bip39_seed, hashlib.sha512).digest()[:32]
    assert seed.hex() == r["ed25519_seed_hex"]
    public = bytes(nacl.signing.SigningKey(seed).verify_key)
    assert PublicKey(public).text == r["public_key"]


def test_pairwise_keys_recompute_from_the_spec_alone() -> None:
    # token-format §1b, with hashlib, hmac and PyNaCl only: the holder secret of the §1a
    # phrase and of a device seed, the pairwise seed and key per licensee, the pseudonym proof.
    r, phrase_vector = V["pairwise"], V["recovery_phrase"]
    bip39_seed = hashlib.pbkdf2_hmac("sha512", phrase_vector["phrase"].encode(), b"mnemonic", 2048)
    assert bip39_seed.hex() == r["bip39_seed_hex"] == phrase_vector["bip39_seed_hex"]
    secret = hmac.new(b"licentia.v2.holder-secret", bip39_seed, hashlib.sha512).digest()[:32]
    assert secret.hex() == r["holder_secret_hex"]

    def pairwise_key(licensee: bytes) -> nacl.signing.SigningKey:
        msg = b"licentia.v2.pairwise-key\x00" + licensee
        return nacl.signing.SigningKey(hmac.new(secret, msg, hashlib.sha512).digest()[:32])

    account = bytes.fromhex(r["account_hex"])
    licensee = bytes.fromhex(r["licensee_account_hex"])
    assert PublicKey(account).text == V["keys"]["holder"]["public_key"]
    assert PublicKey(licensee).text == V["keys"]["licensee"]["public_key"]
    key = pairwise_key(licensee)
    assert bytes(key).hex() == r["pairwise_seed_hex"]
    public = bytes(key.verify_key)
    assert PublicKey(public).text == r["pairwise_public_key"]
    other = pairwise_key(bytes.fromhex(r["other_licensee_account_hex"])).verify_key
    assert PublicKey(bytes(other)).text == r["other_pairwise_public_key"]
    assert r["other_pairwise_public_key"] != r["pairwise_public_key"]
    signing_input = b"licentia.v2.pseudonym\x00" + account + licensee + public
    assert signing_input.hex() == r["pseudonym_signing_input_hex"]
    assert key.sign(signing_input).signature.hex() == r["pseudonym_proof_hex"]
    key.verify_key.verify(signing_input, bytes.fromhex(r["pseudonym_proof_hex"]))
    device_seed = bytes.fromhex(r["device_seed_hex"])
    assert device_seed.hex() == V["keys"]["holder"]["seed"]
    from_device = hmac.new(b"licentia.v2.holder-secret", device_seed, hashlib.sha512).digest()
    assert from_device[:32].hex() == r["device_holder_secret_hex"]
    device = nacl.signing.SigningKey(device_seed)
    x25519 = nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(bytes(device.verify_key))
    assert x25519.hex() == r["device_x25519_public_hex"]
    # Sealed to that X25519 key, only the device's own X25519 secret opens the secret.
    sealed = nacl.public.SealedBox(nacl.public.PublicKey(x25519)).encrypt(secret)
    assert len(sealed) == 80
    sk = nacl.bindings.crypto_sign_ed25519_sk_to_curve25519(device_seed + bytes(device.verify_key))
    assert nacl.public.SealedBox(nacl.public.PrivateKey(sk)).decrypt(sealed) == secret


@pytest.mark.parametrize("case", V["cases"], ids=[c["name"] for c in V["cases"]])
def test_verification_cases(case: dict[str, Any]) -> None:
    issuer = PublicKey.from_text(V["keys"]["issuer"]["public_key"])
    keys = IssuerKeySet([IssuerKey(issuer, V["issuer_key_window"]["not_before"])])
    snapshot = bytes.fromhex(V["status_snapshot"]["signed_hex"])
    view = StatusView(verify_snapshot(snapshot, keys), V["status_staleness_bound"])
    if case.get("revoke"):
        u = parse_token(case["token"])
        sequence = V["status_snapshot"]["sequence"] + 1
        view.apply(StatusEvent(sequence, u.status_list, u.status_index, V["now"] + 30))
    audience = case.get("audience")
    engine = VerificationEngine(
        keys, view, audience=audience, nonces=MemoryNonceStore() if audience else None
    )
    u = case["use"]
    try:
        use = IntendedUse(
            DataCategory[u["category"]],
            Purpose[u["purpose"]],
            Medium[u["medium"]],
            u["territory"],
            bytes.fromhex(u["asset_sha256"]),
        )
    except LicentiaError as e:  # the use is checked first, alone (§8, step 0)
        got = {"verdict": "DENY", "reasons": [e.reason.name]}
    else:
        d = engine.verify(case["token"], use, case["now"], presentation=case.get("presentation"))
        got = {"verdict": d.verdict, "reasons": [r.name for r in d.reasons]}
    assert got == case["expect"]


# -- Ed25519 as a requirement (§1) ------------------------------------------------------------
L = 2**252 + 27742317777372353535851937790883648493
IDENTITY = bytes.fromhex("01" + "00" * 31)
ORDER2 = bytes.fromhex("ec" + "ff" * 30 + "7f")
ORDER8 = bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")


def _k(r: bytes, a: bytes, m: bytes) -> int:
    return int.from_bytes(hashlib.sha512(r + a + m).digest(), "little") % L


def _mul_base(s: int) -> bytes:
    return nacl.bindings.crypto_scalarmult_ed25519_base_noclamp(s.to_bytes(32, "little"))


def _passes_a_lax_verifier(flaw: str, a: bytes, m: bytes, sig: bytes) -> bool:
    """Each forgery is a real one: it satisfies the equation a lax verifier checks (cofactored,
    or cofactorless without the small-order and canonical-S rules)."""
    r, s = sig[:32], int.from_bytes(sig[32:], "little")
    k = _k(r, a, m)
    if flaw == "identity key":  # [0]B = identity = R + [k]·identity
        return a == IDENTITY and r == IDENTITY and s == 0
    if flaw == "order-2 key":  # [0]B = R + [k]A: R = identity with k even, or R = A with k odd
        return a == ORDER2 and s == 0 and ((r == IDENTITY) == (k % 2 == 0)) and r in (IDENTITY, a)
    ka = nacl.bindings.crypto_scalarmult_ed25519_noclamp(k.to_bytes(32, "little"), a)
    if flaw == "small-order R":  # [S]B = [k]A = R + [k]A
        return r == IDENTITY and _mul_base(s) == ka
    if flaw == "mixed-order R":  # R − ([S]B − [k]A) has order 8: a cofactored verifier accepts
        q = nacl.bindings.crypto_core_ed25519_sub(_mul_base(s), ka)
        return q != r and nacl.bindings.crypto_core_ed25519_sub(r, q) == ORDER8
    if flaw == "non-canonical S":  # S ≥ L, and S − L makes a valid signature
        return s >= L and _valid(a, m, r, s - L)
    raise AssertionError(flaw)


def _valid(a: bytes, m: bytes, r: bytes, s: int) -> bool:
    try:
        nacl.signing.VerifyKey(a).verify(m, r + s.to_bytes(32, "little"))
    except nacl.exceptions.BadSignatureError:
        return False
    return True


@pytest.mark.parametrize(
    "f", V["ed25519_forgeries"], ids=[f["name"] for f in V["ed25519_forgeries"]]
)
def test_ed25519_forgeries_pass_a_lax_verifier_and_libsodium_refuses_them(
    f: dict[str, Any],
) -> None:
    a = bytes.fromhex(f["public_key_hex"])
    m = bytes.fromhex(f["signing_input_hex"])
    sig = bytes.fromhex(f["signature_hex"])
    assert _passes_a_lax_verifier(f["flaw"], a, m, sig)
    # What PyNaCl's libsodium does on its own: it already enforces each rule of §1, so
    # licentia.keys needs no check of its own (this test fails if a build of it is laxer).
    with pytest.raises((nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError)):
        nacl.bindings.crypto_sign_open(sig + m, a)
    domain, _, payload = m.partition(b"\x00")
    assert not verify_signature(a, domain, payload, sig)


# -- status snapshots and events (§7) ---------------------------------------------------------
def _vector_keys() -> IssuerKeySet:
    issuer = PublicKey.from_text(V["keys"]["issuer"]["public_key"])
    return IssuerKeySet([IssuerKey(issuer, V["issuer_key_window"]["not_before"])])


@pytest.mark.parametrize(
    "case", V["status_snapshot_cases"], ids=[c["name"] for c in V["status_snapshot_cases"]]
)
def test_status_snapshot_cases(case: dict[str, Any]) -> None:
    got: dict[str, Any]
    try:
        snap = verify_snapshot(bytes.fromhex(case["signed_hex"]), _vector_keys())
    except LicentiaError as e:
        got = {"reason": e.reason.name}
    else:
        got = {
            "lists": [
                {
                    "list_id": x.list_id,
                    "expires_at": x.expires_at,
                    "bit_length": x.bit_length,
                    "revoked": [i for i in range(x.bit_length) if x.bits[i >> 3] & (0x80 >> i % 8)],
                }
                for x in snap.lists
            ]
        }
    assert got == case["expect"]


@pytest.mark.parametrize(
    "case", V["status_event_cases"], ids=[c["name"] for c in V["status_event_cases"]]
)
def test_status_event_cases(case: dict[str, Any]) -> None:
    msg = status_pb2.StatusEvent.FromString(bytes.fromhex(case["event_hex"]))
    signing_input = bytes.fromhex(case["signing_input_hex"])
    message = signing_input.removeprefix(b"licentia.v2.status-event\x00")
    if message == signing_input:  # signed as before events named their list
        message = signing_input.removeprefix(b"licentia.v1.status-event\x00")
        assert message[24:] == msg.issuer_key_id
    else:
        assert message[32:] == msg.issuer_key_id
    got: dict[str, Any]
    try:
        event = verify_event(msg, _vector_keys())
    except LicentiaError as e:
        got = {"reason": e.reason.name}
    else:
        assert len(message) == 40  # u64be × 4 ‖ the 8-byte key id
        got = {
            "sequence": event.sequence,
            "status_list": event.status_list,
            "status_index": event.status_index,
        }
    assert got == case["expect"]


# -- request headers (§6) and territories (§4) ------------------------------------------------
@pytest.mark.parametrize(
    "form",
    V["request_timestamp_forms"],
    ids=[repr(f["timestamp"]) for f in V["request_timestamp_forms"]],
)
def test_request_timestamp_has_one_decimal_form(form: dict[str, Any]) -> None:
    req = V["request"]
    metadata = req["metadata"] | {"x-licentia-timestamp": form["timestamp"]}
    try:
        signed = parse_request_metadata(metadata.items())
        verify_request(
            signed, req["method"], bytes.fromhex(req["body_hex"]), V["now"], MemoryNonceStore()
        )
    except LicentiaError as e:
        got = e.reason.name
    else:
        got = "OK"
    assert got == form["expect"]
    assert (got == "OK") == (form["timestamp"] == str(req["timestamp"]))


def test_territory_codes_are_exactly_the_listed_ones() -> None:
    t = V["territories"]
    assert len(t["iso_3166_1_alpha2"]) == 249
    assert frozenset(t["iso_3166_1_alpha2"]) == territory.ISO_3166_ALPHA2
    assert {k: frozenset(v) for k, v in t["groups"].items()} == territory.GROUPS


def test_key_set_chain_recomputes_from_the_spec_alone() -> None:
    """The key-set vector (token-format "Key sets") from its seeds with hashlib and PyNaCl,
    not licentia.keyset: each ``previous``, signing input, signature and proof of
    possession; then licentia.keyset.verify_chain accepts the chain."""
    from licentia import keyset
    from licentia.v1 import accounts_pb2

    ks = V["key_set"]
    signers = {n: nacl.signing.SigningKey(bytes.fromhex(s)) for n, s in ks["seeds"].items()}
    account = bytes(signers["account"].verify_key)
    assert account.hex() == ks["account_hex"]
    for name, key in signers.items():
        assert PublicKey(bytes(key.verify_key)).text == ks["public_keys"][name]
    previous = hashlib.sha256(b"licentia.v1.key-set-genesis\x00" + account).digest()
    chain = []
    for n, item in enumerate(ks["changes"], start=1):
        raw = bytes.fromhex(item["change_hex"])
        change = accounts_pb2.KeySetChange.FromString(raw)
        assert change.SerializeToString(deterministic=True) == raw  # canonical
        assert (change.account, change.sequence, change.at) == (account, n, item["at"])
        assert change.previous == previous
        assert item["previous_hex"] == previous.hex()
        signing = b"licentia.v1.key-set-change\x00" + raw
        assert item["signing_input_hex"] == signing.hex()
        signer = signers[item["signer"]]
        assert signer.sign(signing).signature.hex() == item["signature_hex"]
        signer.verify_key.verify(signing, bytes.fromhex(item["signature_hex"]))
        joined = [k for k in change.keys if k.proof]
        if item["joins"]:
            joining = signers[item["joins"]]
            public = bytes(joining.verify_key)
            proof = joining.sign(b"licentia.v1.key-possession\x00" + account + public).signature
            assert proof.hex() == item["proof_hex"]
            assert [(k.public_key, k.proof) for k in joined] == [(public, proof)]
        else:
            assert joined == []
        signed = accounts_pb2.SignedKeySetChange.FromString(bytes.fromhex(item["signed_hex"]))
        assert (signed.change, signed.signer) == (raw, bytes(signer.verify_key))
        assert signed.signature.hex() == item["signature_hex"]
        previous = hashlib.sha256(b"licentia.v1.key-set-chain\x00" + raw).digest()
        assert item["next_previous_hex"] == previous.hex()
        chain.append(signed)
    kinds = [accounts_pb2.KeySetChange.FromString(s.change).kind for s in chain]
    assert kinds == [keyset.ADD_KEY, keyset.ADD_KEY, keyset.REMOVE_KEY]
    sets = keyset.verify_chain(account, chain)
    assert sets[-1].head == previous
    assert {k.public for k in sets[-1].keys} == {account, bytes(signers["recovery"].verify_key)}
    assert bytes(signers["phone"].verify_key) not in {k.public for k in sets[-1].keys}


def test_token_v2_recomputes_from_the_spec_alone() -> None:
    # token-format §3.6-3.8, rebuilt with hashlib and PyNaCl: the salted digests, the rule's
    # commitment, the issuance signing input (claims, consent, promise) and both signatures.
    v = V["token_v2"]
    a = v["approval"]
    salt = bytes.fromhex(a["asset_salt_hex"])
    for plain, salted in zip(a["plain_sha256_hex"], a["salted_sha256_hex"], strict=True):
        digest = hashlib.sha256(b"licentia.v2.asset\x00" + salt + bytes.fromhex(plain))
        assert digest.hexdigest() == salted
    claims = bytes.fromhex(a["claims_hex"])
    for s in a["salted_sha256_hex"]:
        assert bytes.fromhex(s) in claims  # the claims carry the salted digests only
    assert not any(bytes.fromhex(p) in claims for p in a["plain_sha256_hex"])
    holder = bytes.fromhex(PublicKey.from_text(V["keys"]["holder"]["public_key"]).raw.hex())
    issuer = PublicKey.from_text(V["keys"]["issuer"]["public_key"]).raw
    signature = bytes.fromhex(a["consent_signature_hex"])
    nacl.signing.VerifyKey(holder).verify(b"licentia.v1.consent\x00" + claims, signature)
    promise = bytes.fromhex(a["log_promise_hex"])
    message = (
        b"licentia.v2.issuance\x00"
        + len(claims).to_bytes(4, "big")
        + claims
        + b"\x01"
        + signature
        + len(promise).to_bytes(4, "big")
        + promise
    )
    assert message.hex() == a["issuance_signing_input_hex"]
    nacl.signing.VerifyKey(issuer).verify(message, bytes.fromhex(a["issuer_signature_hex"]))
    u = parse_token(a["token"])
    assert (u.version, u.promise is not None, len(a["token"])) == (2, True, a["token_length"])
    assert u.promise is not None
    assert u.promise.encode() == promise
    s = v["standing"]
    rule, rule_sig = bytes.fromhex(s["rule_hex"]), bytes.fromhex(s["rule_signature_hex"])
    rule_salt = bytes.fromhex(s["commitment_salt_hex"])
    commitment = hashlib.sha256(
        b"licentia.v2.rule-commitment\x00"
        + rule_salt
        + len(rule).to_bytes(4, "big")
        + rule
        + rule_sig
    ).digest()
    assert commitment.hex() == s["commitment_hex"]
    rule_claims = bytes.fromhex(s["claims_hex"])
    message = (
        b"licentia.v2.issuance\x00"
        + len(rule_claims).to_bytes(4, "big")
        + rule_claims
        + b"\x03"
        + rule_salt
        + commitment
        + len(promise).to_bytes(4, "big")
        + promise
    )
    assert message.hex() == s["issuance_signing_input_hex"]
    standing = parse_token(s["token"])
    nacl.signing.VerifyKey(issuer).verify(message, standing.issuer_signature)
    assert standing.holder_key == b""  # no key links the licences of one rule
    assert rule not in b64url_decode(s["token"][5:])


def test_sealed_entry_recomputes_from_the_spec_alone() -> None:
    # token-format §10c: the tag and box key from HMAC-SHA512, the commitment, and the box
    # opened with libsodium's secretbox (all-zero nonce) to the framed, padded plaintext.
    e = V["token_v2"]["sealed_entry"]
    log_key = bytes.fromhex(e["log_key_hex"])
    secrets = hmac.new(
        log_key, b"licentia.v2.log-entry\x00" + e["entry_number"].to_bytes(8, "big"), "sha512"
    ).digest()
    assert (secrets[:16].hex(), secrets[32:].hex()) == (e["tag_hex"], e["box_key_hex"])
    plaintext = bytes.fromhex(e["plaintext_hex"])
    commitment = hashlib.sha256(b"licentia.v2.log-commitment\x00" + plaintext).digest()
    assert commitment.hex() == e["commitment_hex"]
    entry = bytes.fromhex(e["entry_hex"])
    # LogEntry{sealed (5): SealedEntry{tag (1), commitment (2), box (3)}}, read by hand.
    assert entry[0] == 0x2A
    inner = entry[2:] if entry[1] < 0x80 else entry[3:]
    assert inner[:2] == b"\x0a\x10"
    assert inner[2:18] == secrets[:16]
    assert inner[18:20] == b"\x12\x20"
    assert inner[20:52] == commitment
    assert inner[52] == 0x1A
    box = inner[55:] if inner[53] >= 0x80 else inner[54:]
    framed = nacl.bindings.crypto_secretbox_open(box, bytes(24), secrets[32:])
    assert len(framed) % 256 == 0
    assert framed[:4] == len(plaintext).to_bytes(4, "big")
    assert framed[4 : 4 + len(plaintext)] == plaintext
    assert not any(framed[4 + len(plaintext) :])
    assert V["token_v2"]["approval"]["token"].encode() in plaintext
