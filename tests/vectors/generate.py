"""Rebuild tests/vectors/licence-v1.json from fixed seeds (Ed25519 is deterministic).

python tests/vectors/generate.py           # write licence-v1.json
python tests/vectors/generate.py --check   # exit 1 if the committed file differs
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import zlib
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import nacl.bindings
import nacl.signing
from google.protobuf.message import Message
from mnemonic import Mnemonic

from licentia import keys as keymod
from licentia import keyset, methods, pairwise, sealed, territory
from licentia.encoding import b64url_decode, b64url_encode
from licentia.errors import LicentiaError
from licentia.examples import PHOTO_SHA256, salted, typical_claims, typical_rule
from licentia.keys import IssuerKey, IssuerKeySet, PrivateKey
from licentia.nonces import MemoryNonceStore
from licentia.phrase import new_phrase, recovery_key
from licentia.presentation import PRESENTATION_PREFIX, present
from licentia.request import (
    TIMESTAMP_HEADER,
    parse_request_metadata,
    request_payload,
    sign_request,
    verify_request,
)
from licentia.scope import IntendedUse
from licentia.status import (
    StatusEvent,
    StatusLists,
    StatusSnapshot,
    StatusView,
    signed_heartbeat,
    verify_event,
    verify_snapshot,
)
from licentia.territory import ISO_3166_ALPHA2
from licentia.token import (
    TOKEN_PREFIX_V1,
    Approval,
    LicenceClaims,
    LogPromise,
    StandingConsent,
    StandingRule,
    _signed_token,
    approve,
    commit_rule,
    issuance_message,
    issue,
    parse_token,
    sign_standing_rule,
)
from licentia.v1 import accounts_pb2, licence_pb2, registry_pb2, status_pb2, transparency_pb2
from licentia.verify import VerificationEngine
from licentia.vocabulary import DataCategory, Medium, Purpose

OUT = Path(__file__).with_name("licence-v1.json")
NOW = 1_800_000_000
DAY = 86400
SEEDS = {"issuer": b"\x01" * 32, "holder": b"\x02" * 32, "licensee": b"\x03" * 32}
AUDIENCE = "platform-1"
#: The recovery phrase vector's entropy: BIP-39's own second English vector.
RECOVERY_ENTROPY = b"\x7f" * 16
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


def recovery_phrase() -> dict[str, Any]:
    """The phrase of ``RECOVERY_ENTROPY`` and every step to its recovery key (token-format
    §1a): the BIP-39 seed (empty passphrase), the Ed25519 seed, the public key."""
    phrase = new_phrase(RECOVERY_ENTROPY)
    key = recovery_key(RECOVERY_ENTROPY)
    return {
        "entropy_hex": RECOVERY_ENTROPY.hex(),
        "phrase": phrase,
        "bip39_seed_hex": Mnemonic.to_seed(phrase, passphrase="").hex(),
        "ed25519_seed_hex": key.seed.hex(),
        "public_key": key.public.text,
    }


#: The pairwise vector's second licensee account id (the first is the licensee key's).
OTHER_LICENSEE = b"\x31" * 32


def pairwise_keys(holder: PrivateKey, licensee: PrivateKey) -> dict[str, Any]:
    """The holder secret of the ``recovery_phrase`` phrase and of the holder's device seed,
    and the pairwise keys of the phrase's secret for the licensee's account (its key) and for
    ``OTHER_LICENSEE``, with the pseudonym proof of the first for the holder's account (its
    key) (token-format §1b)."""
    bip39_seed = Mnemonic.to_seed(new_phrase(RECOVERY_ENTROPY), passphrase="")
    secret = pairwise.holder_secret_from_entropy(RECOVERY_ENTROPY)
    account, ad = holder.public.raw, licensee.public.raw
    key = pairwise.pairwise_key(secret, ad)
    other = pairwise.pairwise_key(secret, OTHER_LICENSEE)
    message = pairwise.pseudonym_message(account, ad, key.public.raw)
    return {
        "bip39_seed_hex": bip39_seed.hex(),
        "holder_secret_hex": secret.hex(),
        "account_hex": account.hex(),
        "licensee_account_hex": ad.hex(),
        "pairwise_seed_hex": key.seed.hex(),
        "pairwise_public_key": key.public.text,
        "pseudonym_signing_input_hex": signing_input(keymod.PSEUDONYM, message),
        "pseudonym_proof_hex": pairwise.pseudonym_proof(key, account, ad).hex(),
        "other_licensee_account_hex": OTHER_LICENSEE.hex(),
        "other_pairwise_public_key": other.public.text,
        "device_seed_hex": holder.seed.hex(),
        "device_holder_secret_hex": pairwise.holder_secret_from_device_seed(holder.seed).hex(),
        "device_x25519_public_hex": nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(
            holder.public.raw
        ).hex(),
    }


#: The key-set vector's seeds: the account key (the account id), a phone, a recovery key.
KEY_SET_SEEDS = {"account": b"\x21" * 32, "phone": b"\x22" * 32, "recovery": b"\x23" * 32}


def key_set_chain() -> dict[str, Any]:
    """An account's chain of three changes (token-format "Key sets"): the account key adds
    a recovery key ("paper") at ``NOW``, then a phone ("phone") at ``NOW + 60``, then removes
    the phone as compromised at ``NOW + 120``; each change's bytes, ``previous``, signing
    input, signature, the joining key's proof of possession, and the digest the next change
    names."""
    k = {name: PrivateKey.from_seed(seed) for name, seed in KEY_SET_SEEDS.items()}
    account = k["account"].public.raw
    current = keyset.genesis(account)
    recovery = accounts_pb2.AccountKey(
        public_key=k["recovery"].public.raw,
        role=keyset.RECOVERY,
        name="paper",
        proof=keyset.possession_proof(k["recovery"], account),
    )
    phone = accounts_pb2.AccountKey(
        public_key=k["phone"].public.raw,
        role=keyset.DEVICE,
        name="phone",
        proof=keyset.possession_proof(k["phone"], account),
    )
    base = accounts_pb2.AccountKey(public_key=account, role=keyset.DEVICE)
    kept = accounts_pb2.AccountKey(public_key=recovery.public_key, role=recovery.role, name="paper")
    # The whole set after each change; only the key that joins carries its proof.
    steps: list[tuple[str, int, list[accounts_pb2.AccountKey], str, int]] = [
        ("ADD_KEY", keyset.ADD_KEY, [base, recovery], "recovery", 0),
        ("ADD_KEY", keyset.ADD_KEY, [base, kept, phone], "phone", 0),
        ("REMOVE_KEY", keyset.REMOVE_KEY, [base, kept], "", keyset.COMPROMISED),
    ]
    changes = []
    for n, (name, kind, after, joins, cause) in enumerate(steps):
        signed = keyset.make_change(
            current, k["account"], kind, after, at=NOW + 60 * n, cause=cause
        )
        changes.append(
            {
                "kind": name,
                "sequence": n + 1,
                "at": NOW + 60 * n,
                "cause": "COMPROMISED" if cause else "",
                "signer": "account",
                "joins": joins,
                "proof_hex": keyset.possession_proof(k[joins], account).hex() if joins else "",
                "previous_hex": current.head.hex(),
                "change_hex": signed.change.hex(),
                "signing_input_hex": signing_input(keyset.CHANGE_DOMAIN, signed.change),
                "signature_hex": signed.signature.hex(),
                "signed_hex": signed.SerializeToString(deterministic=True).hex(),
                "next_previous_hex": keyset.change_digest(signed.change).hex(),
            }
        )
        current = keyset.apply_change(current, signed)
    return {
        "seeds": {name: seed.hex() for name, seed in KEY_SET_SEEDS.items()},
        "public_keys": {name: key.public.text for name, key in k.items()},
        "account_hex": account.hex(),
        "changes": changes,
    }


def signing_input(domain: bytes, payload: bytes) -> str:
    """Hex of the exact bytes a signature covers."""
    return keymod.signed_message(domain, payload).hex()


# -- building blocks for the edge cases ----------------------------------------------------
#: The order of the Ed25519 base point (RFC 8032 §5.1).
ED25519_L = 2**252 + 27742317777372353535851937790883648493
#: Encodings of small-order points: the identity (order 1), the point of order 2, and one
#: point of order 8.
IDENTITY_POINT = b"\x01" + bytes(31)
ORDER2_POINT = bytes.fromhex("ec" + "ff" * 30 + "7f")
ORDER8_POINT = bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")
#: The two halves of a forged signature that "verifies" under a small-order key for any
#: message in a lax verifier: R = the identity and S = 0, so [S]B = R + [k]A = identity.
IDENTITY_FORGERY = IDENTITY_POINT + bytes(32)


def _enc(msg: Message) -> bytes:
    return msg.SerializeToString(deterministic=True)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _ld(number: int, data: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _split(msg: Message, number: int) -> tuple[bytes, bytes]:
    """The canonical bytes of ``msg``'s fields below ``number`` and above it (canonical
    encoding writes fields in ascending order, so the two halves frame field ``number``)."""
    low, high = type(msg)(), type(msg)()
    low.CopyFrom(msg)
    high.CopyFrom(msg)
    for f in msg.DESCRIPTOR.fields:
        if f.number >= number:
            low.ClearField(f.name)
        if f.number <= number:
            high.ClearField(f.name)
    return _enc(low), _enc(high)


def _replace_field(msg: Message, number: int, raw: bytes) -> bytes:
    """``msg``'s canonical bytes with field ``number`` written as the raw bytes ``raw``."""
    low, high = _split(msg, number)
    return low + raw + high


def _k(r: bytes, a: bytes, message: bytes) -> int:
    """RFC 8032's k = SHA-512(R || A || M) mod L."""
    return int.from_bytes(hashlib.sha512(r + a + message).digest(), "little") % ED25519_L


def _scalar(seed: bytes) -> int:
    """The secret scalar of an RFC 8032 seed (clamped, reduced mod L)."""
    h = bytearray(hashlib.sha512(seed).digest()[:32])
    h[0] &= 248
    h[31] &= 127
    h[31] |= 64
    return int.from_bytes(h, "little") % ED25519_L


def _point(scalar: int) -> bytes:
    return nacl.bindings.crypto_scalarmult_ed25519_base_noclamp(scalar.to_bytes(32, "little"))


def _order2_forgery(message: bytes) -> bytes | None:
    """A signature that a lax verifier accepts under the order-2 key for ``message``: R + [k]A
    is the identity when R = identity and k is even, or R = A and k is odd."""
    if _k(IDENTITY_POINT, ORDER2_POINT, message) % 2 == 0:
        return IDENTITY_FORGERY
    if _k(ORDER2_POINT, ORDER2_POINT, message) % 2 == 1:
        return ORDER2_POINT + bytes(32)
    return None


def _small_order_r(seed: bytes, message: bytes) -> bytes:
    """R = identity, S = k·a: [S]B = [k]A = R + [k]A, under the genuine key of ``seed``."""
    a = _scalar(seed)
    k = _k(IDENTITY_POINT, _point(a), message)
    return IDENTITY_POINT + (k * a % ED25519_L).to_bytes(32, "little")


def _mixed_order_r(seed: bytes, message: bytes) -> bytes:
    """R = [r]B + T (T of order 8), S = r + k·a: [8][S]B = [8]R + [8][k]A holds (a cofactored
    verifier accepts) but [S]B − [k]A = [r]B ≠ R (a cofactorless one refuses)."""
    a = _scalar(seed)
    big_a = _point(a)
    r = int.from_bytes(hashlib.sha512(b"licentia vectors: r" + message).digest(), "little")
    r %= ED25519_L
    big_r = nacl.bindings.crypto_core_ed25519_add(_point(r), ORDER8_POINT)
    s = (r + _k(big_r, big_a, message) * a) % ED25519_L
    return big_r + s.to_bytes(32, "little")


def _non_canonical_s(signature: bytes) -> bytes:
    """The same signature with S + L in place of S (S must be below L)."""
    s = int.from_bytes(signature[32:], "little") + ED25519_L
    return signature[:32] + s.to_bytes(32, "little")


def _approved(issuer: PrivateKey, holder: PrivateKey, claims_bytes: bytes) -> str:
    return _signed_token(issuer, claims_bytes, approve(holder, claims_bytes))


def _under_rule(
    issuer: PrivateKey, signer: PrivateKey, claims_bytes: bytes, rule_bytes: bytes
) -> str:
    """A licence under the rule ``rule_bytes`` as ``signer`` signed it (no checks)."""
    consent = StandingConsent(rule_bytes, signer.sign(keymod.STANDING_RULE, rule_bytes))
    return _signed_token(issuer, claims_bytes, consent)


def _case(name: str, section: str, token: str, **more: Any) -> dict[str, Any]:
    case: dict[str, Any] = {"name": name, "section": section, "token": token}
    case.update({"use": _use_json(_use()), "now": NOW + 60} | more)
    return case


def _claims(claims: LicenceClaims, index: int) -> licence_pb2.LicenceClaims:
    """The wire claims of ``claims`` with their own licence id and status index."""
    c = claims.to_proto()
    c.licence_id = (0x20_0000 + index).to_bytes(16, "big")
    c.status_index = 2_000_000 + index
    return c


def edge_cases(
    k: dict[str, PrivateKey], claims: LicenceClaims, rule: StandingRule, token: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The cases an outside implementer found missing from the text (issue 16), and the raw
    Ed25519 forgeries among them."""
    issuer, holder, licensee = k["issuer"], k["holder"], k["licensee"]
    cases: list[dict[str, Any]] = []
    forgeries: list[dict[str, Any]] = []
    n = iter(range(1, 1000))

    # §3.1: a currency is exactly three ASCII capital letters.
    for cur in ("EU*", "E=R", "4UR", "E R", "EU\n"):
        c = _claims(claims, next(n))
        c.price.currency = cur
        name = f"currency {cur!r}"
        cases.append(_case(name, "3.1", _approved(issuer, holder, _enc(c))))
    r = rule.to_proto()
    r.currency = "EU*"
    c = _claims(claims, next(n))
    c.price.currency = "EU*"
    cases.append(
        _case(
            "currency 'EU*' in a standing rule",
            "3.1",
            _under_rule(issuer, holder, _enc(c), _enc(r)),
        )
    )

    # §1: Ed25519 as a requirement. Each forgery passes a lax verifier (see its flaw).
    def forged(name: str, flaw: str, c: licence_pb2.LicenceClaims, sig: bytes) -> None:
        cb = _enc(c)
        cases.append(_case(name, "1", _signed_token(issuer, cb, Approval(sig))))
        forgeries.append(
            {
                "name": name,
                "flaw": flaw,
                "public_key_hex": c.holder_key.hex(),
                "signing_input_hex": signing_input(keymod.CONSENT, cb),
                "signature_hex": sig.hex(),
            }
        )

    c = _claims(claims, next(n))
    c.holder_key = IDENTITY_POINT
    forged("consent under the identity holder key", "identity key", c, IDENTITY_FORGERY)
    while True:
        c = _claims(claims, next(n))
        c.holder_key = ORDER2_POINT
        sig = _order2_forgery(keymod.signed_message(keymod.CONSENT, _enc(c)))
        if sig is not None:
            break
    forged("consent under the order-2 holder key", "order-2 key", c, sig)
    seed = SEEDS["holder"]
    c = _claims(claims, next(n))
    msg = keymod.signed_message(keymod.CONSENT, _enc(c))
    forged("consent with a small-order R", "small-order R", c, _small_order_r(seed, msg))
    c = _claims(claims, next(n))
    msg = keymod.signed_message(keymod.CONSENT, _enc(c))
    forged("consent with a mixed-order R", "mixed-order R", c, _mixed_order_r(seed, msg))
    c = _claims(claims, next(n))
    sig = _non_canonical_s(holder.sign(keymod.CONSENT, _enc(c)))
    forged("consent with a non-canonical S", "non-canonical S", c, sig)
    c = _claims(claims, next(n))
    c.licensee_key = IDENTITY_POINT
    p_claims = licence_pb2.PresentationClaims(
        licence_id=c.licence_id,
        audience=AUDIENCE,
        use=_use().to_proto(),
        presented_at=NOW + 60,
        nonce=b"\x43" * 16,
    )
    p_signed = licence_pb2.SignedPresentation(claims=_enc(p_claims), signature=IDENTITY_FORGERY)
    cases.append(
        _case(
            "presentation under the identity licensee key",
            "1",
            _approved(issuer, holder, _enc(c)),
            audience=AUDIENCE,
            presentation=PRESENTATION_PREFIX + b64url_encode(_enc(p_signed)),
        )
    )
    forgeries.append(
        {
            "name": "presentation under the identity licensee key",
            "flaw": "identity key",
            "public_key_hex": IDENTITY_POINT.hex(),
            "signing_input_hex": signing_input(keymod.PRESENTATION, _enc(p_claims)),
            "signature_hex": IDENTITY_FORGERY.hex(),
        }
    )

    # §2: a count over its limit is TOO_LARGE; an empty list is MALFORMED.
    c = _claims(claims, next(n))
    for i in range(16 - len(c.assets) + 1):
        c.assets.add(category=c.assets[0].category, sha256=hashlib.sha256(b"%d" % i).digest())
    cases.append(_case("17 assets", "2", _approved(issuer, holder, _enc(c))))
    c = _claims(claims, next(n))
    c.scope.territories[:] = sorted(ISO_3166_ALPHA2)[:33]
    cases.append(_case("33 territories", "2", _approved(issuer, holder, _enc(c))))
    c = _claims(claims, next(n))
    c.ClearField("assets")
    cases.append(_case("no asset", "2", _approved(issuer, holder, _enc(c))))
    r = rule.to_proto()
    r.asset_sha256.extend(sorted(hashlib.sha256(b"%d" % i).digest() for i in range(15)))
    c = _claims(claims, next(n))
    cases.append(
        _case("standing rule with 17 digests", "2", _under_rule(issuer, holder, _enc(c), _enc(r)))
    )

    # §3.2 and §3.5: the rule parses like the claims; which key verifies it; which reasons
    # combine.
    r = rule.to_proto()
    c = _claims(claims, next(n))
    cases.append(
        _case(
            "standing rule with an unknown field",
            "3.2",
            _under_rule(issuer, holder, _enc(c), _enc(r) + _ld(99, b"x")),
        )
    )
    c = _claims(claims, next(n))
    cases.append(
        _case(
            "standing rule signed by another key",
            "3.2",
            _under_rule(issuer, licensee, _enc(c), _enc(r)),
        )
    )
    other = rule.to_proto()
    other.holder_key = licensee.public.raw
    c = _claims(claims, next(n))
    cases.append(
        _case(
            "standing rule naming another holder, signed by the licence's holder",
            "3.2",
            _under_rule(issuer, holder, _enc(c), _enc(other)),
        )
    )
    c = _claims(claims, next(n))
    c.scope.purposes[:] = [cast("Any", Purpose.POLITICAL_CAMPAIGN)]
    c.scope.territories[:] = ["WORLD"]
    cases.append(
        _case(
            "sensitive use under a standing rule, also outside it",
            "3.5",
            _under_rule(issuer, holder, _enc(c), _enc(r)),
        )
    )
    c.not_after = c.not_before + 400 * DAY
    cases.append(
        _case(
            "sensitive use under a standing rule, with a term over the maximum",
            "3.5",
            _under_rule(issuer, holder, _enc(c), _enc(r)),
        )
    )
    c.issuer_key_id = licensee.public.key_id
    c.not_after = c.not_before + 90 * DAY
    cases.append(
        _case(
            "sensitive use under a standing rule, from an unknown issuer key",
            "3.5",
            _under_rule(licensee, holder, _enc(c), _enc(r)),
        )
    )
    c = _claims(claims, next(n))
    c.not_after = c.not_before + 400 * DAY
    cases.append(
        _case(
            "standing rule signed by another key, with a term over the maximum",
            "3.5",
            _under_rule(issuer, licensee, _enc(c), _enc(r)),
        )
    )

    # §5: the presentation's own rules, and how its reasons sit beside the licence's.
    lid = claims.licence_id
    use = _use()
    platform = {"audience": AUDIENCE}
    cases += [
        _case("no presentation", "5", token, **platform),
        _case("empty presentation", "5", token, presentation="", **platform),
        _case(
            "presentation that does not parse, licence not yet valid",
            "5",
            token,
            presentation="lpr1.!!",
            now=NOW - 1,
            **platform,
        ),
        _case(
            "presentation over 1024 characters",
            "5",
            token,
            presentation="lpr1." + "A" * 1020,
            **platform,
        ),
        _case(
            "presentation by another key, for another platform, long ago",
            "5",
            token,
            presentation=present(holder, lid, "platform-2", use, NOW - 1000, nonce=b"\x44" * 16),
            **platform,
        ),
        _case(
            "presentation naming a 15-byte licence id",
            "5",
            token,
            presentation=present(licensee, lid[:15], AUDIENCE, use, NOW + 60, nonce=b"\x45" * 16),
            **platform,
        ),
    ]
    p_claims = licence_pb2.PresentationClaims(
        licence_id=lid,
        audience=AUDIENCE,
        use=use.to_proto(),
        presented_at=NOW + 60,
        nonce=b"\x46" * 16,
    )
    p_claims.use.territory = "XK"
    p_signed = licence_pb2.SignedPresentation(
        claims=_enc(p_claims), signature=licensee.sign(keymod.PRESENTATION, _enc(p_claims))
    )
    cases.append(
        _case(
            "presentation of a use in an unknown territory",
            "5",
            token,
            presentation=PRESENTATION_PREFIX + b64url_encode(_enc(p_signed)),
            **platform,
        )
    )

    # §4 and §8: the intended use is checked first; territory codes are the listed ones.
    flipped = token[:40] + ("A" if token[40] != "A" else "B") + token[41:]
    bad_use = _use_json(use) | {"territory": "XK"}
    cases.append(_case("use in 'XK' with a broken token", "8", flipped, use=bad_use))
    cases.append(_case("use in 'UK'", "4", token, use=_use_json(use) | {"territory": "UK"}))
    c = _claims(claims, next(n))
    c.scope.territories[:] = ["DE", "FR", "XK"]
    cases.append(_case("licence naming 'XK'", "4", _approved(issuer, holder, _enc(c))))

    # §1: canonical protobuf, each variant signed over its exact bytes.
    def variant(name: str, claims_bytes: bytes) -> None:
        cases.append(_case(name, "1", _approved(issuer, holder, claims_bytes)))

    c = _claims(claims, next(n))
    variant(
        "claims with an explicit default (exclusive = false)", _replace_field(c, 11, b"\x58\x00")
    )
    variant("claims with a field twice", _replace_field(c, 1, _ld(1, c.licence_id) * 2))
    variant("claims with an over-long varint", _replace_field(c, 10, b"\x50" + b"\x83\x00"))
    variant(
        "claims with a known field in another wire type",
        _replace_field(c, 9, b"\x49" + c.not_after.to_bytes(8, "little")),
    )
    unpacked = b"".join(b"\x08" + _varint(v) for v in c.scope.categories)
    variant(
        "claims with an unpacked repeated enum",
        _replace_field(c, 6, _ld(6, _replace_field(c.scope, 1, unpacked))),
    )
    price_first = _ld(13, _enc(c.price)) + _split(c, 13)[0]
    variant("claims with fields out of order", price_first)
    variant("claims with an unknown field", _enc(c) + _ld(99, b"x"))
    cb = _enc(c)
    standing = sign_standing_rule(holder, rule)
    env = (
        _ld(1, cb)
        + _ld(2, holder.sign(keymod.CONSENT, cb))
        + _ld(
            3,
            _enc(
                licence_pb2.StandingConsent(
                    rule=standing.rule_bytes, holder_signature=standing.signature
                )
            ),
        )
        + _ld(4, issuer.sign(keymod.ISSUANCE, issuance_message(cb, standing)))
    )
    cases.append(
        _case("envelope with both consents of the oneof", "1", TOKEN_PREFIX_V1 + b64url_encode(env))
    )
    return cases, forgeries


def _list(list_id: int, bit_length: int, bits: bytes) -> status_pb2.StatusListBits:
    """List ``list_id`` of a snapshot, ending a week after ``NOW``."""
    return status_pb2.StatusListBits(
        list_id=list_id,
        expires_at=NOW + 7 * DAY,
        bit_length=bit_length,
        bits_zlib=zlib.compress(bits, 9),
    )


def _snapshot(
    signer: PrivateKey,
    key_id: bytes,
    lists: list[status_pb2.StatusListBits],
    sequence: int = 2,
    **retired: Any,
) -> bytes:
    snap = _enc(
        status_pb2.StatusListSnapshot(
            issuer_key_id=key_id, sequence=sequence, taken_at=NOW, lists=lists, **retired
        )
    )
    return _enc(
        status_pb2.SignedStatusSnapshot(
            snapshot=snap, signature=signer.sign(keymod.STATUS_SNAPSHOT, snap)
        )
    )


def snapshot_cases(k: dict[str, PrivateKey]) -> list[dict[str, Any]]:
    """Signed snapshots and what §7 makes of each (the first failing check, in order)."""
    issuer, licensee = k["issuer"], k["licensee"]
    key_id = issuer.public.key_id
    seven = _list(2, 7, b"\x42")
    raw = [
        (
            "lists 0, 2 and 5: indexes 1 and 6 of 7 revoked in list 2",
            _snapshot(issuer, key_id, [_list(0, 0, b""), seven, _list(5, 0, b"")]),
        ),
        ("a bit set past bit_length", _snapshot(issuer, key_id, [_list(2, 7, b"\x43")])),
        ("a 4-byte key id", _snapshot(issuer, key_id[:4], [seven])),
        (
            "a list over 2^26 bits, by an unknown key",
            _snapshot(licensee, licensee.public.key_id, [_list(2, (1 << 26) + 1, b"")]),
        ),
        ("by an unknown key", _snapshot(licensee, licensee.public.key_id, [seven])),
        ("fewer bytes than bit_length needs", _snapshot(issuer, key_id, [_list(2, 9, b"\x42")])),
        ("lists out of id order", _snapshot(issuer, key_id, [seven, _list(1, 0, b"")])),
        (
            "the retired single-list fields",
            _snapshot(issuer, key_id, [], bit_length=7, bits_zlib=zlib.compress(b"\x42")),
        ),
    ]
    keys = IssuerKeySet([IssuerKey(issuer.public, NOW - DAY)])
    out = []
    for name, data in raw:
        try:
            snap = verify_snapshot(data, keys)
        except LicentiaError as e:
            expect: dict[str, Any] = {"reason": e.reason.name}
        else:
            expect = {"lists": snapshot_lists(snap)}
        out.append({"name": name, "signed_hex": data.hex(), "expect": expect})
    return out


def snapshot_lists(snap: StatusSnapshot) -> list[dict[str, Any]]:
    """Each list of a verified snapshot as JSON: its id, end, length and revoked indexes."""
    return [
        {
            "list_id": x.list_id,
            "expires_at": x.expires_at,
            "bit_length": x.bit_length,
            "revoked": [i for i in range(x.bit_length) if x.bits[i >> 3] & (0x80 >> (i & 7))],
        }
        for x in snap.lists
    ]


def event_cases(k: dict[str, PrivateKey]) -> list[dict[str, Any]]:
    """Signed status events and what §7 makes of each."""
    issuer = k["issuer"]
    key_id = issuer.public.key_id
    out = []
    three, nine, at = (3).to_bytes(8, "big"), (9).to_bytes(8, "big"), (NOW + 30).to_bytes(8, "big")
    two = (2).to_bytes(8, "big")
    for name, kid, domain, numbers in (
        ("list 2, an 8-byte key id", key_id, keymod.STATUS_EVENT_V2, three + two + nine + at),
        ("a 32-byte key id", key_id + bytes(24), keymod.STATUS_EVENT_V2, three + two + nine + at),
        (
            "signed without its list, as before lists",
            key_id,
            keymod.STATUS_EVENT,
            three + nine + at,
        ),
    ):
        message = numbers + kid
        msg = status_pb2.StatusEvent(
            sequence=3,
            status_list=2,
            status_index=9,
            revoked_at=NOW + 30,
            issuer_key_id=kid,
            signature=issuer.sign(domain, message),
        )
        keys = IssuerKeySet([IssuerKey(issuer.public, NOW - DAY)])
        try:
            event = verify_event(msg, keys)
        except LicentiaError as e:
            expect: dict[str, Any] = {"reason": e.reason.name}
        else:
            expect = {
                "sequence": event.sequence,
                "status_list": event.status_list,
                "status_index": event.status_index,
            }
        out.append(
            {
                "name": name,
                "event_hex": _enc(msg).hex(),
                "signing_input_hex": signing_input(domain, message),
                "expect": expect,
            }
        )
    return out


#: Other texts of the vectors' request timestamp (§6): only the first is its decimal form.
TIMESTAMP_FORMS = (
    str(NOW),
    "0" + str(NOW),
    "+" + str(NOW),
    " " + str(NOW),
    str(NOW) + " ",
    str(NOW) + ".0",
    "1.8e9",
    str(NOW).translate(str.maketrans("0123456789", "０１２３４５６７８９")),
    "",
)


def request_header_cases(
    metadata: dict[str, str], method: str, body: bytes
) -> list[dict[str, Any]]:
    """The signed request vector with its timestamp header written in other ways."""
    out = []
    for ts in TIMESTAMP_FORMS:
        md = metadata | {TIMESTAMP_HEADER: ts}
        try:
            req = parse_request_metadata(md.items())
            verify_request(req, method, body, NOW, MemoryNonceStore())
        except LicentiaError as e:
            expect = e.reason.name
        else:
            expect = "OK"
        out.append({"timestamp": ts, "expect": expect})
    return out


#: The v2 vectors' fixed salts and log position (token-format §3.6-3.8, §10c).
V2_ASSET_SALT = b"\x5a" * 16
V2_RULE_SALT = b"\x5b" * 16
V2_LOG_INDEX = 41
V2_LOG_KEY = b"\x5c" * 32


def token_v2(k: dict[str, PrivateKey]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The typical licence as v2 tokens (approved, and under the typical rule) with every
    input and intermediate value; the sealed log entry of the approved one; and the v2
    verification cases (section ``3.8`` and ``3.6``)."""
    issuer, holder = k["issuer"], k["holder"]
    plain = typical_claims(issuer, holder, k["licensee"], NOW)
    claims = salted(plain, V2_ASSET_SALT)
    data = claims.encode()
    consent = approve(holder, data)
    promise = LogPromise(V2_LOG_INDEX, NOW + 1)
    token = issue(issuer, data, consent, claims=claims, promise=promise)
    message = issuance_message(data, consent, promise.encode())
    rule = sign_standing_rule(holder, typical_rule(holder, NOW))
    commitment = commit_rule(rule, V2_RULE_SALT)
    under_rule = replace(claims, holder=None, licence_id=b"\x12" * 16, status_index=1_000_002)
    rule_data = under_rule.encode()
    rule_token = issue(issuer, rule_data, commitment, claims=under_rule, promise=promise)
    clear = transparency_pb2.LogEntry(licence=token)
    entry = sealed.seal(V2_LOG_KEY, 1, clear)
    tag_, box_key = sealed.entry_secrets(V2_LOG_KEY, 1)
    vector = {
        "approval": {
            "asset_salt_hex": V2_ASSET_SALT.hex(),
            "plain_sha256_hex": [a.sha256.hex() for a in plain.assets],
            "salted_sha256_hex": [a.sha256.hex() for a in claims.assets],
            "claims_hex": data.hex(),
            "consent_signature_hex": consent.signature.hex(),
            "log_promise_hex": promise.encode().hex(),
            "issuance_signing_input_hex": signing_input(keymod.ISSUANCE_V2, message),
            "issuer_signature_hex": parse_token(token).issuer_signature.hex(),
            "status_list": claims.status_list,
            "token": token,
            "token_length": len(token),
        },
        "standing": {
            "rule_hex": rule.rule_bytes.hex(),
            "rule_signature_hex": rule.signature.hex(),
            "commitment_salt_hex": V2_RULE_SALT.hex(),
            "commitment_hex": commitment.digest.hex(),
            "claims_hex": rule_data.hex(),
            "issuance_signing_input_hex": signing_input(
                keymod.ISSUANCE_V2, issuance_message(rule_data, commitment, promise.encode())
            ),
            "token": rule_token,
            "token_length": len(rule_token),
        },
        "sealed_entry": {
            "log_key_hex": V2_LOG_KEY.hex(),
            "entry_number": 1,
            "tag_hex": tag_.hex(),
            "box_key_hex": box_key.hex(),
            "plaintext_hex": sealed.plaintext_of(clear).hex(),
            "commitment_hex": entry.sealed.commitment.hex(),
            "entry_hex": sealed.plaintext_of(entry).hex(),
        },
    }
    no_promise = _signed_token(issuer, data, consent, None, v2=True)
    early = _signed_token(issuer, data, consent, LogPromise(V2_LOG_INDEX, NOW - 1), v2=True)
    unsalted = _signed_token(issuer, plain.encode(), approve(holder, plain.encode()), promise)
    v1_with_promise = TOKEN_PREFIX_V1 + token[5:]
    sensitive = replace(
        under_rule,
        licence_id=b"\x13" * 16,
        scope=replace(under_rule.scope, purposes=frozenset({Purpose.AI_MODEL_TRAINING})),
    )
    sensitive_token = _signed_token(issuer, sensitive.encode(), commitment, promise)
    in_list = {}
    for n in (2, 4):  # the snapshot holds lists 0, 1 and 3: 2 was dropped, 4 is newer
        c = replace(claims, licence_id=bytes([0x13 + n]) * 16, status_list=n)
        in_list[n] = issue(
            issuer, c.encode(), approve(holder, c.encode()), claims=c, promise=promise
        )
    cases: list[dict[str, Any]] = [
        _case("v2: the plain digest of the content, salted by the verifier", "3.6", token),
        _case(
            "v2: the salted digest given as the content's",
            "3.6",
            token,
            use=_use_json(_use(asset_sha256=claims.assets[0].sha256)),
        ),
        _case("v2: under a standing rule, by its commitment", "3.7", rule_token),
        _case(
            "v2: a sensitive use under a rule commitment",
            "3.7",
            sensitive_token,
            use=_use_json(_use(purpose=Purpose.AI_MODEL_TRAINING)),
        ),
        _case("v2: no log promise", "3.8", no_promise),
        _case("v2: a promise logged before the licence was issued", "3.8", early),
        _case("v2 prefix on claims without a salt", "3.6", unsalted),
        _case("v1 prefix on a v2 envelope", "3.9", v1_with_promise),
        _case("v2: a licence in a list the snapshot dropped", "7", in_list[2]),
        _case("v2: a licence in a list newer than the snapshot", "7", in_list[4]),
    ]
    return vector, cases


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

    statuses = StatusLists()  # the legacy list (v1 tokens), list 1 (the v2 tokens), list 3
    statuses.declare(0, NOW + 90 * DAY)
    statuses.declare(1, NOW + 91 * DAY)
    statuses.declare(3, NOW + 91 * DAY)
    statuses.revoke(0, 1)
    statuses.revoke(0, 5)
    snapshot = statuses.snapshot(issuer, 2, NOW)

    body = b"\x0a\x05alice"
    method = methods.path(registry_pb2, "RegisterHolder")
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
        case["use"] = _use_json(case["use"])
    edge, forgeries = edge_cases(k, claims, rule, token)
    cases += edge
    v2, v2_cases = token_v2(k)
    cases += v2_cases
    for case in cases:
        case["expect"] = run_case(case, keys, snapshot)

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
        "recovery_phrase": recovery_phrase(),
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
        "status_snapshot": {
            "lists": snapshot_lists(verify_snapshot(snapshot, keys)),
            "sequence": 2,
            "signed_hex": snapshot.hex(),
        },
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
        "request_timestamp_forms": request_header_cases(dict(metadata), method, body),
        "rfc8032_test1": RFC8032_TEST1,
        "key_set": key_set_chain(),
        "token_v2": v2,
        "pairwise": pairwise_keys(holder, licensee),
        "ed25519_forgeries": forgeries,
        "status_snapshot_cases": snapshot_cases(k),
        "status_event_cases": event_cases(k),
        "territories": {
            "iso_3166_1_alpha2": sorted(ISO_3166_ALPHA2),
            "groups": {name: sorted(codes) for name, codes in territory.GROUPS.items()},
        },
        "cases": cases,
    }


def _status_event(issuer: PrivateKey) -> dict[str, Any]:
    """Event 3 (index 9 of list 1 revoked at ``NOW + 30``), signed, with its signing input."""
    msg = StatusEvent(3, 1, 9, NOW + 30).signed(issuer)
    payload = (
        (3).to_bytes(8, "big")
        + (1).to_bytes(8, "big")
        + (9).to_bytes(8, "big")
        + (NOW + 30).to_bytes(8, "big")
    ) + msg.issuer_key_id
    return {
        "sequence": 3,
        "status_list": 1,
        "status_index": 9,
        "revoked_at": NOW + 30,
        "signing_input_hex": signing_input(keymod.STATUS_EVENT_V2, payload),
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


def use_of(u: dict[str, Any]) -> IntendedUse:
    """The intended use of a case; raises ``LicentiaError(INVALID_USE)``."""
    return IntendedUse(
        DataCategory[u["category"]],
        Purpose[u["purpose"]],
        Medium[u["medium"]],
        u["territory"],
        bytes.fromhex(u["asset_sha256"]),
    )


def run_case(case: dict[str, Any], keys: IssuerKeySet, snapshot: bytes) -> dict[str, Any]:
    """Verify one case with a fresh engine; the decision as JSON. A use that is not valid is
    INVALID_USE before anything else (§8, step 0)."""
    try:
        use = use_of(case["use"])
    except LicentiaError as e:
        return {"verdict": "DENY", "reasons": [e.reason.name]}
    view = StatusView(verify_snapshot(snapshot, keys), 300)
    if case.get("revoke"):
        u = parse_token(case["token"])
        view.apply(StatusEvent(3, u.status_list, u.status_index, NOW + 30))
    audience = case.get("audience")
    engine = VerificationEngine(
        keys, view, audience=audience, nonces=MemoryNonceStore() if audience else None
    )
    d = engine.verify(case["token"], use, case["now"], presentation=case.get("presentation"))
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
