"""Account erasure receipts (docs/token-format.md §10c).

When a holder deletes her account (``RegistryService.DeleteAccount``), the exchange answers
with a :class:`~licentia.v1.registry_pb2.SignedErasureReceipt`: the exact bytes of a
canonical ``ErasureReceipt`` (the account, when, the licences revoked, the assets erased,
the log entry, the tables erased and what was kept), signed with the exchange's issuer key
under its own domain, ``licentia.v1.erasure-receipt``, so that no other signed message of
the exchange can be taken for one. :func:`sign_erasure_receipt` makes one,
:func:`verify_erasure_receipt` checks one against the published issuer keys.
"""

from __future__ import annotations

from . import keys
from .encoding import parse_canonical
from .errors import LicentiaError, Reason
from .v1 import registry_pb2

__all__ = ["MAX_RECEIPT_BYTES", "sign_erasure_receipt", "verify_erasure_receipt"]

#: The largest receipt accepted (a receipt names every licence revoked, 16 bytes each).
MAX_RECEIPT_BYTES = 1 << 20


def sign_erasure_receipt(
    signer: keys.PrivateKey, receipt: registry_pb2.ErasureReceipt
) -> registry_pb2.SignedErasureReceipt:
    """``receipt`` serialized once (deterministically) and signed with ``signer``, an issuer
    key: Sign(issuer, ``licentia.v1.erasure-receipt``, receipt bytes)."""
    data = receipt.SerializeToString(deterministic=True)
    return registry_pb2.SignedErasureReceipt(
        receipt=data,
        issuer_key_id=signer.public.key_id,
        signature=signer.sign(keys.ERASURE_RECEIPT, data),
    )


def verify_erasure_receipt(
    signed: registry_pb2.SignedErasureReceipt,
    issuer_keys: keys.IssuerKeyResolver,
    account: bytes,
) -> registry_pb2.ErasureReceipt:
    """The receipt ``signed`` states, once its signature is checked over its exact bytes.

    Raises ``LicentiaError``: TOO_LARGE over :data:`MAX_RECEIPT_BYTES`; UNKNOWN_ISSUER_KEY
    for a key id the resolver does not know; BAD_SIGNATURE when the signature fails;
    MALFORMED for bytes that are not a canonical ``ErasureReceipt`` or a receipt for
    another ``account``; ISSUER_KEY_NOT_VALID when the key was not allowed to sign at the
    receipt's ``erased_at``.
    """
    if len(signed.receipt) > MAX_RECEIPT_BYTES:
        raise LicentiaError(Reason.TOO_LARGE, "the erasure receipt is too large")
    issuer = issuer_keys.resolve(signed.issuer_key_id)
    if issuer is None:
        raise LicentiaError(Reason.UNKNOWN_ISSUER_KEY, "the receipt's issuer key is unknown")
    if not issuer.public.verify(keys.ERASURE_RECEIPT, signed.receipt, signed.signature):
        raise LicentiaError(Reason.BAD_SIGNATURE, "the erasure receipt's signature fails")
    receipt = parse_canonical(signed.receipt, registry_pb2.ErasureReceipt(), "erasure receipt")
    if receipt.account != account:
        raise LicentiaError(Reason.MALFORMED, "the erasure receipt is for another account")
    if not issuer.may_sign_at(receipt.erased_at):
        raise LicentiaError(
            Reason.ISSUER_KEY_NOT_VALID, "the issuer key could not sign at the erasure's time"
        )
    return receipt
