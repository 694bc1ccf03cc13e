"""Pairwise holder keys (licentia.pairwise): one key per licensee, a proof that binds it to one
account and one licensee, and the holder secret sealed to one device."""

from __future__ import annotations

import pytest

from licentia import pairwise, phrase
from licentia.errors import LicentiaError, Reason
from licentia.keys import PrivateKey

ENTROPY = b"\x7f" * 16
ACCOUNT = b"\x11" * 32
ACME = b"\x21" * 32
BETA = b"\x22" * 32


def test_each_licensee_gets_its_own_key_and_the_phrase_gives_them_again() -> None:
    secret = pairwise.holder_secret_from_entropy(ENTROPY)
    acme, beta = pairwise.pairwise_key(secret, ACME), pairwise.pairwise_key(secret, BETA)
    assert acme.public != beta.public
    # Not the recovery key.
    assert acme.public != phrase.recovery_key(ENTROPY).public
    typed = phrase.parse_phrase("LEGA winn thank year wave saus worth usef legal winn than yell")
    again = pairwise.pairwise_key(pairwise.holder_secret_from_entropy(typed), ACME)
    assert again.public == acme.public
    device = PrivateKey.generate()
    old = pairwise.holder_secret_from_device_seed(device.seed)
    assert old != secret
    assert pairwise.pairwise_key(old, ACME).public != acme.public
    for bad in (b"", b"\x00" * 31, b"\x00" * 33):
        with pytest.raises(LicentiaError):
            pairwise.pairwise_key(bad, ACME)
        with pytest.raises(LicentiaError):
            pairwise.pairwise_key(secret, bad)


def test_a_proof_holds_for_its_account_and_licensee_only() -> None:
    key = pairwise.pairwise_key(pairwise.holder_secret_from_entropy(ENTROPY), ACME)
    proof = pairwise.pseudonym_proof(key, ACCOUNT, ACME)
    pk = key.public.raw
    assert pairwise.check_pseudonym_proof(pk, ACCOUNT, ACME, proof)
    assert not pairwise.check_pseudonym_proof(pk, b"\x12" * 32, ACME, proof)  # another account
    assert not pairwise.check_pseudonym_proof(pk, ACCOUNT, BETA, proof)  # another licensee
    assert not pairwise.check_pseudonym_proof(pk, ACME, ACCOUNT, proof)  # swapped
    other = PrivateKey.generate()
    assert not pairwise.check_pseudonym_proof(other.public.raw, ACCOUNT, ACME, proof)
    flipped = bytes([proof[0] ^ 1]) + proof[1:]
    assert not pairwise.check_pseudonym_proof(pk, ACCOUNT, ACME, flipped)
    # Bad input is False, never an exception.
    for args in ((pk[:31], ACCOUNT, ACME, proof), (pk, ACCOUNT[:5], ACME, proof)):
        assert not pairwise.check_pseudonym_proof(*args)
    assert not pairwise.check_pseudonym_proof(pk, ACCOUNT, ACME, proof[:63])
    # A proof made by another key for this key's message does not verify.
    forged = other.sign(b"licentia.v2.pseudonym", pairwise.pseudonym_message(ACCOUNT, ACME, pk))
    assert not pairwise.check_pseudonym_proof(pk, ACCOUNT, ACME, forged)


def test_a_sealed_secret_opens_for_its_device_only() -> None:
    secret = pairwise.holder_secret_from_entropy(ENTROPY)
    phone, thief = PrivateKey.generate(), PrivateKey.generate()
    sealed = pairwise.seal_secret(secret, phone.public.raw)
    assert len(sealed) == pairwise.SEALED_SECRET_BYTES == 80
    assert secret not in sealed
    assert pairwise.open_secret(sealed, phone) == secret
    assert pairwise.seal_secret(secret, phone.public.raw) != sealed  # an ephemeral key each time
    with pytest.raises(LicentiaError) as e:
        pairwise.open_secret(sealed, thief)
    assert e.value.reason == Reason.BAD_SIGNATURE
    altered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(LicentiaError) as e:
        pairwise.open_secret(altered, phone)
    assert e.value.reason == Reason.BAD_SIGNATURE
    with pytest.raises(LicentiaError) as e:
        pairwise.open_secret(sealed[:79], phone)
    assert e.value.reason == Reason.MALFORMED
    with pytest.raises(LicentiaError):
        pairwise.seal_secret(secret[:31], phone.public.raw)
