"""Files for the Content Credentials tests: real JPEG, PNG and WAV files made here by hand
(no imaging library), and an advertiser's signing of them with the certificate a real
exchange issued (docs/token-format.md §12)."""

from __future__ import annotations

import io
import struct
import tempfile
import time
import wave
from pathlib import Path

import c2pa
import nacl.signing

from licentia import content, content_certs
from licentia.clients.advertiser import Advertiser
from licentia.examples import tiny_png as png
from licentia.keys import PublicKey
from licentia.token import parse_token, salted_digest
from licentia.v1 import registry_pb2

from .exchange_harness import Party

__all__ = [
    "camera_signed",
    "certificate_chain",
    "embed_counted",
    "jpeg",
    "png",
    "sdk_sign",
    "sign",
    "wav",
]


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


def embed_counted(
    data: bytes, token: str, asset_sha256: bytes, signer: Party, chain_pem: str
) -> bytes:
    """``data`` with Content Credentials holding ``token`` whatever it is (a counted licence,
    which ``LicenceAssertion.for_token`` and the SDK refuse): the assertion built field by
    field (the asset salted as the claims name it), embedded with ``content.embed``. What a
    signer that ignores §12.2 would make."""
    parsed = parse_token(token)
    assert parsed.promise is not None
    assertion = content.LicenceAssertion(
        token,
        salted_digest(parsed.asset_salt, asset_sha256),
        parsed.promise.index,
        parsed.promise.logged_at,
    )
    key = nacl.signing.SigningKey(signer.key.seed)
    return content.embed(data, content.mime_of(data[:16]), assertion, key, chain_pem)


def sdk_sign(adv: Party, data: bytes, token: str, asset_sha256: bytes) -> bytes:
    """``data`` as the advertiser SDK prepares a creative that uses ``asset_sha256`` under
    the licence ``token`` (``Advertiser.sign_content``: its certificate fetched from the
    exchange, the licence's checks made before signing)."""
    assert adv.exchange is not None
    with (
        Advertiser(adv.exchange.channel(), adv.key) as client,
        tempfile.TemporaryDirectory() as tmp,
    ):
        source, output = Path(tmp) / "creative", Path(tmp) / "signed"
        source.write_bytes(data)
        client.sign_content(source, output, token, asset_sha256)
        return output.read_bytes()


def camera_signed(data: bytes, mime: str = "image/png") -> bytes:
    """``data`` with Content Credentials that say nothing of a licence: a manifest with
    only ``c2pa.actions``, signed under a CA of its own (as a camera or an editor signs)."""
    ca, device = nacl.signing.SigningKey.generate(), nacl.signing.SigningKey.generate()
    kid = PublicKey(bytes(ca.verify_key)).key_id
    now = int(time.time())
    root = content_certs.root_certificate(ca, kid, now - 3600, None)
    cert = content_certs.content_certificate(
        ca, kid, root, bytes(device.verify_key), "Camera Maker", now - 60, 86400
    )
    manifest = {
        "claim_generator_info": [{"name": "a camera", "version": "1"}],
        "title": "a photo",
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": "http://cv.iptc.org/newscodes/"
                            "digitalsourcetype/digitalCapture",
                        }
                    ]
                },
            }
        ],
    }
    signer = c2pa.Signer.from_callback(
        lambda b: bytes(device.sign(bytes(b)).signature),
        c2pa.C2paSigningAlg.ED25519,
        content_certs.chain_pem(cert, root),
    )
    out = io.BytesIO()
    settings = c2pa.Settings.from_dict({"builder": {"thumbnail": {"enabled": False}}})
    context = c2pa.Context.builder().with_settings(settings).build()
    with c2pa.Builder(manifest, context=context) as builder:
        builder.sign(signer, mime, io.BytesIO(data), out)
    return out.getvalue()
