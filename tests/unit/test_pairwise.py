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


def test_a_sealed_secret_opens_for_its_device_only_signed_for_its_pairing() -> None:
    secret = pairwise.holder_secret_from_entropy(ENTROPY)
    laptop, phone, thief = PrivateKey.generate(), PrivateKey.generate(), PrivateKey.generate()
    sealed = pairwise.seal_secret(secret, phone.public.raw, laptop, "ABCD-1234")
    assert len(sealed) == pairwise.SEALED_SECRET_BYTES == 176
    assert secret not in sealed
    # It opens with the sealing device's key, for the joining device to check it is one of
    # its account's.
    assert pairwise.open_secret(sealed, phone, "ABCD-1234") == (secret, laptop.public.raw)
    again = pairwise.seal_secret(secret, phone.public.raw, laptop, "ABCD-1234")
    assert again != sealed  # an ephemeral key each time
    altered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    refusals = {
        "another device": (sealed, thief, "ABCD-1234", Reason.BAD_SIGNATURE),
        "altered": (altered, phone, "ABCD-1234", Reason.BAD_SIGNATURE),
        "another pairing": (sealed, phone, "WXYZ-9876", Reason.BAD_SIGNATURE),
        "short": (sealed[:175], phone, "ABCD-1234", Reason.MALFORMED),
    }
    for what, (blob, device, code, reason) in refusals.items():
        with pytest.raises(LicentiaError) as e:
            pairwise.open_secret(blob, device, code)
        assert e.value.reason == reason, what
    # Whoever relays it (the exchange) can seal a secret of its own to the device, but not
    # sign it as a device of the account: the signer it names is its own key.
    planted = pairwise.seal_secret(b"\x66" * 32, phone.public.raw, thief, "ABCD-1234")
    assert pairwise.open_secret(planted, phone, "ABCD-1234")[1] == thief.public.raw
    with pytest.raises(LicentiaError):
        pairwise.seal_secret(secret[:31], phone.public.raw, laptop, "ABCD-1234")
