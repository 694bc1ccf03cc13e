"""The advertisers' references (services/refs.py): per advertiser, deterministic, and
useless to anyone else."""

from __future__ import annotations

import hashlib
import secrets

import pytest

from licentia.keys import PrivateKey
from licentia.services.refs import ASSET_REF_BYTES, OFFER_REF_BYTES, Refs, token_ref


def _key(i: int) -> bytes:
    return PrivateKey.from_seed(i.to_bytes(32, "big")).public.raw


HOLDER, ACME, OTHER = _key(1), _key(2), _key(3)
PHOTO = hashlib.sha256(b"photo").digest()


def test_an_offer_reference_names_its_holder_for_its_advertiser_alone() -> None:
    refs = Refs(secrets.token_bytes(32))
    ref = refs.offer_ref(ACME, HOLDER)
    assert len(ref) == OFFER_REF_BYTES
    assert refs.offer_ref(ACME, HOLDER) == ref  # deterministic
    assert refs.holder_prefix(ACME, ref) == HOLDER[:16]
    assert refs.is_offer_ref(ACME, ref, HOLDER)
    # The other advertiser's reference to her is unrelated, and hers is useless to it.
    theirs = refs.offer_ref(OTHER, HOLDER)
    assert theirs[:16] != ref[:16]
    assert theirs[16:] != ref[16:]
    assert refs.holder_prefix(OTHER, ref) != HOLDER[:16]
    assert not refs.is_offer_ref(OTHER, ref, HOLDER)
    assert not refs.is_offer_ref(ACME, ref, _key(4))
    # Another exchange's secret: another reference.
    assert Refs(secrets.token_bytes(32)).offer_ref(ACME, HOLDER) != ref
    # A tampered reference (same IV, flipped prefix) names nobody it claims.
    tampered = ref[:16] + bytes([ref[16] ^ 1]) + ref[17:]
    assert refs.holder_prefix(ACME, tampered) != HOLDER[:16]
    for bad in (b"", ref[:-1], ref + b"\x00"):
        assert refs.holder_prefix(ACME, bad) is None
        assert not refs.is_offer_ref(ACME, bad, HOLDER)


def test_asset_references_differ_per_advertiser_holder_and_asset() -> None:
    refs = Refs(bytes(range(32)))
    ref = refs.asset_ref(ACME, HOLDER, PHOTO)
    assert len(ref) == ASSET_REF_BYTES
    assert refs.asset_refs(ACME, HOLDER, [PHOTO, PHOTO]) == [ref, ref]
    others = {
        refs.asset_ref(OTHER, HOLDER, PHOTO),
        refs.asset_ref(ACME, _key(4), PHOTO),  # the same photo declared by another holder
        refs.asset_ref(ACME, HOLDER, hashlib.sha256(b"voice").digest()),
    }
    assert ref not in others
    assert len(others) == 3
    assert PHOTO[:16] != ref


def test_a_page_token_carries_an_offer_reference() -> None:
    refs = Refs(bytes(32))
    token = refs.page_token(ACME, HOLDER)
    assert len(token) == 43
    assert token_ref(token) == refs.offer_ref(ACME, HOLDER)
    for bad in ("", token[:-1], token + "A", "!" * 43, "é" * 43):
        assert token_ref(bad) is None


def test_the_secret_is_32_bytes() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Refs(bytes(31))
