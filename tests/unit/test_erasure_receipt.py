"""The account erasure receipt (docs/token-format.md §10c): a known-answer vector checked with
PyNaCl alone over the documented signing input, and every refusal of the check."""

from __future__ import annotations

import nacl.signing
import pytest

from licentia import keys as domains
from licentia.erasure import sign_erasure_receipt, verify_erasure_receipt
from licentia.errors import LicentiaError, Reason
from licentia.keys import IssuerKey, IssuerKeySet, PrivateKey
from licentia.v1 import registry_pb2

ISSUER = PrivateKey.from_seed(b"\x01" * 32)
HOLDER = PrivateKey.from_seed(b"\x02" * 32)
NOW = 1_800_000_000
RECEIPT = registry_pb2.ErasureReceipt(
    account=HOLDER.public.raw,
    erased_at=NOW,
    revoked_licence_ids=[bytes(range(16))],
    assets_erased=2,
    log_index=7,
    erased=["assets", "parties"],
    kept=["ledger"],
)
#: The vector: the receipt's exact bytes, the issuer's key id and its signature.
RECEIPT_HEX = (
    "0a208139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b3941080a4a7da061a1000"
    "0102030405060708090a0b0c0d0e0f2002280732066173736574733207706172746965733a066c6564676572"
)
KEY_ID_HEX = "1f0a0dc35e108d99"
SIGNATURE_HEX = (
    "1eb9ccf66db84279efeb6aa5b71c3940007bd2d41358ebcea42f4a8dd5b9e939"
    "15ec54e88cb6767f80ee3c7e1c154dd7695af40bae77eb646fa5eb516a3b4802"
)
KEYS = IssuerKeySet([IssuerKey(ISSUER.public, NOW - 86400)])


def test_the_known_answer_verifies_over_the_documented_signing_input() -> None:
    signed = sign_erasure_receipt(ISSUER, RECEIPT)
    assert signed.receipt.hex() == RECEIPT_HEX
    assert signed.issuer_key_id.hex() == KEY_ID_HEX
    assert signed.signature.hex() == SIGNATURE_HEX
    signing_input = b"licentia.v1.erasure-receipt" + b"\x00" + bytes.fromhex(RECEIPT_HEX)
    nacl.signing.VerifyKey(ISSUER.public.raw).verify(signing_input, bytes.fromhex(SIGNATURE_HEX))
    assert verify_erasure_receipt(signed, KEYS, HOLDER.public.raw) == RECEIPT


def _refused(
    signed: registry_pb2.SignedErasureReceipt,
    reason: Reason,
    keys: IssuerKeySet = KEYS,
    account: bytes = HOLDER.public.raw,
) -> None:
    with pytest.raises(LicentiaError) as e:
        verify_erasure_receipt(signed, keys, account)
    assert e.value.reason == reason


def test_every_wrong_receipt_is_refused() -> None:
    good = sign_erasure_receipt(ISSUER, RECEIPT)
    # Another signature domain over the same bytes (a termination receipt's) is no receipt.
    other = registry_pb2.SignedErasureReceipt()
    other.CopyFrom(good)
    other.signature = ISSUER.sign(domains.TERMINATION_RECEIPT, good.receipt)
    _refused(other, Reason.BAD_SIGNATURE)
    _refused(good, Reason.MALFORMED, account=PrivateKey.from_seed(b"\x09" * 32).public.raw)
    stranger = sign_erasure_receipt(PrivateKey.from_seed(b"\x08" * 32), RECEIPT)
    _refused(stranger, Reason.UNKNOWN_ISSUER_KEY)
    late = IssuerKeySet([IssuerKey(ISSUER.public, NOW + 1)])
    _refused(good, Reason.ISSUER_KEY_NOT_VALID, keys=late)
    # Signed, but not canonical (an unknown field appended): refused as malformed.
    padded = good.receipt + b"\xf8\x01\x01"
    odd = registry_pb2.SignedErasureReceipt(
        receipt=padded,
        issuer_key_id=good.issuer_key_id,
        signature=ISSUER.sign(domains.ERASURE_RECEIPT, padded),
    )
    _refused(odd, Reason.MALFORMED)
    huge = registry_pb2.SignedErasureReceipt(receipt=b"\x00" * ((1 << 20) + 1))
    _refused(huge, Reason.TOO_LARGE)
