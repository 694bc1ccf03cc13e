"""Pairwise holder keys: a different consent key for each licensee, from one holder secret.

A holder's consent used to be signed by a device key of her account, and the licence named
that key, so the same key appeared in every licence she granted, to every advertiser: two
advertisers could link her. Here each licensee account sees its own key (docs/token-format.md
§1b "Pairwise holder keys"):

    holder_secret = HMAC-SHA512(key = "licentia.v2.holder-secret", msg = bip39_seed)[0:32]
    pairwise_seed = HMAC-SHA512(key = holder_secret,
                                msg = "licentia.v2.pairwise-key" || 0x00 || licensee_account)[0:32]
    pairwise key  = the RFC 8032 key of pairwise_seed

The holder secret comes from the recovery phrase (so that ``recover`` finds the same keys), or
is drawn at random (a wallet without a phrase), or, for a wallet file from before pairwise
keys, from its device seed by the same HMAC. It is handed to a device that joins by pairing
sealed to that device's key (:func:`seal_secret`: libsodium's ``crypto_box_seal`` to the X25519
form of its Ed25519 key), so the exchange that relays it sees only ciphertext.

The exchange learns which account a pairwise key belongs to from a **pseudonym proof**: the
pairwise key's signature, under the domain ``licentia.v2.pseudonym``, over ``account ||
licensee_account || pairwise_public`` (:func:`pseudonym_proof`, :func:`check_pseudonym_proof`).
The proof binds the key to one account and one licensee: it cannot be replayed for another.

Pure functions: no I/O and no random numbers (the caller draws them).
"""

from __future__ import annotations

import hashlib
import hmac

import nacl.bindings
import nacl.exceptions
import nacl.public
from mnemonic import Mnemonic

from .errors import LicentiaError, Reason
from .keys import (
    PSEUDONYM,
    PUBLIC_KEY_BYTES,
    SEALED_SECRET,
    SEED_BYTES,
    PrivateKey,
    verify_signature,
)
from .phrase import new_phrase

__all__ = [
    "HOLDER_SECRET",
    "HOLDER_SECRET_BYTES",
    "PAIRWISE_KEY",
    "SEALED_SECRET_BYTES",
    "check_pseudonym_proof",
    "holder_secret_from_bip39_seed",
    "holder_secret_from_device_seed",
    "holder_secret_from_entropy",
    "open_secret",
    "pairwise_key",
    "pairwise_seed",
    "pseudonym_message",
    "pseudonym_proof",
    "seal_secret",
    "sealed_secret_message",
]

#: The HMAC-SHA512 key that turns a BIP-39 seed (or an old wallet's device seed) into the
#: holder secret (not a signature domain: nothing is signed under it).
HOLDER_SECRET = b"licentia.v2.holder-secret"
#: The label hashed, with the licensee's account id, into a pairwise seed (not a signature
#: domain).
PAIRWISE_KEY = b"licentia.v2.pairwise-key"
#: Bytes of a holder secret.
HOLDER_SECRET_BYTES = 32
#: Bytes of a holder secret sealed to a device key: the ephemeral X25519 key (32), the
#: Poly1305 tag (16), and the secret (32) with the sealing device's key (32) and its
#: signature (64) over the pairing code, the joining key and the secret.
SEALED_SECRET_BYTES = nacl.bindings.crypto_box_SEALBYTES + HOLDER_SECRET_BYTES + 32 + 64
#: Bytes of an account id.
_ACCOUNT_BYTES = 32


def _secret(secret: bytes) -> bytes:
    if len(secret) != HOLDER_SECRET_BYTES:
        raise LicentiaError(Reason.MALFORMED, f"a holder secret is {HOLDER_SECRET_BYTES} bytes")
    return bytes(secret)


def _account(account: bytes, what: str) -> bytes:
    if len(account) != _ACCOUNT_BYTES:
        raise LicentiaError(Reason.MALFORMED, f"{what} is a {_ACCOUNT_BYTES}-byte account id")
    return bytes(account)


def holder_secret_from_bip39_seed(bip39_seed: bytes) -> bytes:
    """HMAC-SHA512(key = ``licentia.v2.holder-secret``, msg = the 64-byte BIP-39 seed)[0:32]."""
    if len(bip39_seed) != 64:
        raise LicentiaError(Reason.MALFORMED, "a BIP-39 seed is 64 bytes")
    return hmac.new(HOLDER_SECRET, bip39_seed, hashlib.sha512).digest()[:HOLDER_SECRET_BYTES]


def holder_secret_from_entropy(entropy: bytes) -> bytes:
    """The holder secret of the recovery phrase of ``entropy`` (16 bytes): the BIP-39 seed of
    the phrase (empty passphrase), as for the recovery key (§1a), then
    :func:`holder_secret_from_bip39_seed`."""
    bip39_seed = Mnemonic.to_seed(new_phrase(entropy), passphrase="")
    return holder_secret_from_bip39_seed(bip39_seed)


def holder_secret_from_device_seed(device_seed: bytes) -> bytes:
    """The holder secret of a wallet file from before pairwise keys: HMAC-SHA512(key =
    ``licentia.v2.holder-secret``, msg = its 32-byte device seed)[0:32]."""
    if len(device_seed) != SEED_BYTES:
        raise LicentiaError(Reason.MALFORMED, f"a device seed is {SEED_BYTES} bytes")
    return hmac.new(HOLDER_SECRET, device_seed, hashlib.sha512).digest()[:HOLDER_SECRET_BYTES]


def pairwise_seed(holder_secret: bytes, licensee_account: bytes) -> bytes:
    """HMAC-SHA512(key = holder secret, msg = ``licentia.v2.pairwise-key`` || 0x00 ||
    licensee account id)[0:32]: the Ed25519 seed of the holder's key for that licensee."""
    message = PAIRWISE_KEY + b"\x00" + _account(licensee_account, "the licensee")
    return hmac.new(_secret(holder_secret), message, hashlib.sha512).digest()[:SEED_BYTES]


def pairwise_key(holder_secret: bytes, licensee_account: bytes) -> PrivateKey:
    """The holder's Ed25519 key for the licensee account ``licensee_account``."""
    return PrivateKey.from_seed(pairwise_seed(holder_secret, licensee_account))


def pseudonym_message(account: bytes, licensee_account: bytes, pairwise_public: bytes) -> bytes:
    """What a pseudonym proof signs: account id || licensee account id || pairwise public
    key (96 bytes; the domain ``licentia.v2.pseudonym`` is prefixed when signing)."""
    if len(pairwise_public) != PUBLIC_KEY_BYTES:
        raise LicentiaError(Reason.MALFORMED, "a pairwise key is 32 bytes")
    return (
        _account(account, "the holder")
        + _account(licensee_account, "the licensee")
        + bytes(pairwise_public)
    )


def pseudonym_proof(key: PrivateKey, account: bytes, licensee_account: bytes) -> bytes:
    """The pairwise ``key``'s signature saying it is ``account``'s key for
    ``licensee_account``."""
    return key.sign(PSEUDONYM, pseudonym_message(account, licensee_account, key.public.raw))


def check_pseudonym_proof(
    pairwise_public: bytes, account: bytes, licensee_account: bytes, proof: bytes
) -> bool:
    """Whether ``proof`` is ``pairwise_public``'s pseudonym proof for exactly this account and
    this licensee; never raises for bad input."""
    if len(pairwise_public) != PUBLIC_KEY_BYTES:
        return False
    if len(account) != _ACCOUNT_BYTES or len(licensee_account) != _ACCOUNT_BYTES:
        return False
    message = pseudonym_message(account, licensee_account, pairwise_public)
    return verify_signature(pairwise_public, PSEUDONYM, message, proof)


def sealed_secret_message(code: str, device_public: bytes, holder_secret: bytes) -> bytes:
    """What the sealing device signs (``licentia.v2.sealed-secret``): the pairing code
    (u32be length, UTF-8), the joining device's key and the holder secret."""
    data = code.encode()
    return len(data).to_bytes(4, "big") + data + device_public + holder_secret


def seal_secret(holder_secret: bytes, device_public: bytes, signer: PrivateKey, code: str) -> bytes:
    """``holder_secret`` sealed to the device whose Ed25519 public key is ``device_public``,
    signed by ``signer`` (a device of the account, the one approving the pairing ``code``):
    ``crypto_box_seal`` to its X25519 form of secret ‖ signer's key ‖ Sign(signer,
    ``licentia.v2.sealed-secret``, :func:`sealed_secret_message`) (176 bytes). Only that
    device opens it, and it knows which of its account's devices sent it: the exchange that
    relays it can neither read it nor put a secret of its own in its place."""
    if len(device_public) != PUBLIC_KEY_BYTES:
        raise LicentiaError(Reason.MALFORMED, "a device key is 32 bytes")
    try:
        curve = nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(bytes(device_public))
    except (nacl.exceptions.RuntimeError, nacl.exceptions.ValueError):
        raise LicentiaError(Reason.MALFORMED, "not an Ed25519 public key") from None
    box = nacl.public.SealedBox(nacl.public.PublicKey(curve))
    secret = _secret(holder_secret)
    signature = signer.sign(SEALED_SECRET, sealed_secret_message(code, device_public, secret))
    return bytes(box.encrypt(secret + signer.public.raw + signature))


def open_secret(sealed: bytes, device: PrivateKey, code: str) -> tuple[bytes, bytes]:
    """The holder secret sealed to ``device`` for the pairing ``code`` (:func:`seal_secret`),
    and the key of the device that signed it (check it is one of the account's!);
    BAD_SIGNATURE when it was sealed to another key, altered, or not signed by the key it
    names for this pairing and this device; MALFORMED when it is not a sealed secret."""
    if len(sealed) != SEALED_SECRET_BYTES:
        raise LicentiaError(Reason.MALFORMED, f"a sealed secret is {SEALED_SECRET_BYTES} bytes")
    secret_key = nacl.bindings.crypto_sign_ed25519_sk_to_curve25519(device.seed + device.public.raw)
    box = nacl.public.SealedBox(nacl.public.PrivateKey(secret_key))
    try:
        opened = box.decrypt(bytes(sealed))
    except nacl.exceptions.CryptoError:
        raise LicentiaError(
            Reason.BAD_SIGNATURE, "the sealed secret is not for this device (or was altered)"
        ) from None
    secret, signer, signature = opened[:32], opened[32:64], opened[64:]
    message = sealed_secret_message(code, device.public.raw, secret)
    if not verify_signature(signer, SEALED_SECRET, message, signature):
        raise LicentiaError(
            Reason.BAD_SIGNATURE, "the sealed secret is not signed for this pairing and device"
        )
    return _secret(secret), signer
