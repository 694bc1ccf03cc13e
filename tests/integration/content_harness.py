"""Files for the Content Credentials tests: real JPEG, PNG and WAV files made here by hand
(no imaging library), and an advertiser's signing of them with the certificate a real
exchange issued (docs/token-format.md §12)."""

from __future__ import annotations

import io
import struct
import wave

import nacl.signing

from licentia import content, content_certs
from licentia.examples import tiny_png as png
from licentia.v1 import registry_pb2

from .exchange_harness import Party

__all__ = ["certificate_chain", "jpeg", "png", "sign", "wav"]


def wav(frames: int = 64, seed: int = 0) -> bytes:
    """A valid 16-bit mono 8 kHz WAV of ``frames`` samples, made with ``wave``."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(bytes((seed + i) % 256 for i in range(frames * 2)))
    return out.getvalue()


def jpeg(grey: int = 0) -> bytes:
    """A minimal baseline JPEG: one 8x8 grey block (JFIF, one quantisation table, a
    one-code Huffman table for DC and for AC, one scan). ``grey`` (0-255) goes in a
    comment segment so that files differ."""

    def seg(marker: int, body: bytes) -> bytes:
        return b"\xff" + bytes([marker]) + struct.pack(">H", len(body) + 2) + body

    huffman = bytes([1] + [0] * 15) + b"\x00"  # one code of length 1, for symbol 0
    return (
        b"\xff\xd8"
        + seg(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
        + seg(0xFE, bytes([grey]))
        + seg(0xDB, b"\x00" + b"\x01" * 64)
        + seg(0xC0, b"\x08\x00\x08\x00\x08\x01\x01\x11\x00")
        + seg(0xC4, b"\x00" + huffman)
        + seg(0xC4, b"\x10" + huffman)
        + seg(0xDA, b"\x01\x01\x00\x00\x3f\x00")
        + b"\x3f"  # DC difference 0, end of block, padded with ones
        + b"\xff\xd9"
    )


def certificate_chain(adv: Party) -> str:
    """The PEM chain the exchange issues ``adv`` for its key (``IssueContentCertificate``)."""
    resp = adv.call(
        registry_pb2,
        "IssueContentCertificate",
        registry_pb2.IssueContentCertificateRequest(),
        registry_pb2.IssueContentCertificateResponse,
    )
    return content_certs.chain_pem(resp.certificate, resp.root)


def sign(
    data: bytes,
    token: str,
    asset_sha256: bytes,
    signer: Party,
    chain_pem: str,
    mime: str | None = None,
) -> bytes:
    """``data`` with Content Credentials holding the licence ``token`` for the asset
    ``asset_sha256``, signed by ``signer``'s key under ``chain_pem``."""
    assertion = content.LicenceAssertion.for_token(token, asset_sha256)
    key = nacl.signing.SigningKey(signer.key.seed)
    return content.embed(data, mime or content.mime_of(data[:16]), assertion, key, chain_pem)
