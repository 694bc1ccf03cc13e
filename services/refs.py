"""The references an advertiser sees instead of a holder's account key and her assets' digests.

An offer names its holder by an ``offer_ref`` and each asset by an ``asset_ref``, made for
one advertiser account from the exchange's secret (32 random bytes the store keeps, the same
on every replica: :meth:`.store.base.KeysStore.exchange_secret`). Two advertisers get
unrelated references for the same holder and asset, so they cannot join what they know by
an identifier; a reference is useless to anyone but the advertiser it was made for. Nothing
is stored per advertiser: the exchange recomputes and checks.

With ``k`` = HMAC-SHA256(secret, ``"licentia.v2.offer-refs"`` || 0x00 || advertiser account)::

    iv        = HMAC-SHA256(k, 0x01 || holder account)[0:16]
    offer_ref = iv || (holder account[0:16] XOR HMAC-SHA256(k, 0x02 || iv)[0:16])
    asset_ref = HMAC-SHA256(k, 0x03 || holder account || plain SHA-256 of the asset)[0:16]

The offer reference is a deterministic authenticated encryption of the holder's key prefix
(SIV: the synthetic IV is a MAC of the plaintext): the exchange decrypts the prefix, finds
the holder whose key starts with it, and accepts the reference only when the IV is that
holder's (:func:`hmac.compare_digest`), so a made-up or another advertiser's reference
matches nobody. An asset reference is checked against the holder's declared assets.

Pure functions of their inputs: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable

#: The name of the exchange secret (:meth:`.store.base.KeysStore.exchange_secret`).
SECRET_NAME = "offer_refs"  # noqa: S105 - its name, not the secret
#: Bytes of an offer reference and of an asset reference.
OFFER_REF_BYTES = 32
ASSET_REF_BYTES = 16
_CONTEXT = b"licentia.v2.offer-refs\x00"


class Refs:
    """Makes and checks the references of every advertiser, from the exchange's secret."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) != 32:
            raise ValueError("the exchange secret is 32 bytes")
        self._secret = secret

    def _key(self, advertiser: bytes) -> bytes:
        return hmac.new(self._secret, _CONTEXT + advertiser, hashlib.sha256).digest()

    @staticmethod
    def _mac(key: bytes, tag: int, *parts: bytes) -> bytes:
        return hmac.new(key, bytes([tag]) + b"".join(parts), hashlib.sha256).digest()[:16]

    def offer_ref(self, advertiser: bytes, holder: bytes) -> bytes:
        """The reference to ``holder`` (her account key) for ``advertiser`` (its account)."""
        k = self._key(advertiser)
        iv = self._mac(k, 1, holder)
        pad = self._mac(k, 2, iv)
        return iv + bytes(a ^ b for a, b in zip(holder[:16], pad, strict=True))

    def holder_prefix(self, advertiser: bytes, ref: bytes) -> bytes | None:
        """The first 16 bytes of the account key ``ref`` would name (None for a reference of
        the wrong size). Only :meth:`is_offer_ref` says whether it does."""
        if len(ref) != OFFER_REF_BYTES:
            return None
        pad = self._mac(self._key(advertiser), 2, ref[:16])
        return bytes(a ^ b for a, b in zip(ref[16:], pad, strict=True))

    def is_offer_ref(self, advertiser: bytes, ref: bytes, holder: bytes) -> bool:
        """Whether ``ref`` is ``advertiser``'s reference to ``holder`` (constant time)."""
        return hmac.compare_digest(self.offer_ref(advertiser, holder), ref)

    def asset_ref(self, advertiser: bytes, holder: bytes, sha256: bytes) -> bytes:
        """The reference to the holder's asset of plain digest ``sha256`` for ``advertiser``."""
        return self._mac(self._key(advertiser), 3, holder, sha256)

    def asset_refs(self, advertiser: bytes, holder: bytes, digests: Iterable[bytes]) -> list[bytes]:
        """The references of ``digests`` (one key derivation for all)."""
        k = self._key(advertiser)
        return [self._mac(k, 3, holder, d) for d in digests]

    def page_token(self, advertiser: bytes, holder: bytes) -> str:
        """A SearchOffers page token: the offer reference of the page's last holder, in
        unpadded base64url (43 characters)."""
        return base64.urlsafe_b64encode(self.offer_ref(advertiser, holder)).decode().rstrip("=")


def token_ref(token: str) -> bytes | None:
    """The offer reference a page token carries (None when it is not one)."""
    if len(token) != 43:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=")
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == OFFER_REF_BYTES else None
