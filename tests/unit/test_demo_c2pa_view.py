"""The demo's view of the ad through the C2PA SDK alone (``c2pa_view`` in
demo/exchange_story.py): it says the signature and binding hold only when the reader says
``Valid``, and prints the names the file gives sanitised."""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path
from types import ModuleType

import nacl.signing
import pytest

from licentia import content, content_certs
from licentia.examples import tiny_png
from licentia.keys import PublicKey

ROOT = Path(__file__).resolve().parents[2]
#: A certificate name that, printed raw on a terminal, rewrites the line above.
ESCAPES = "\x1b[2A\x1b[2K\rALLOW\n"


def _story() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "demo_exchange_story", ROOT / "demo" / "exchange_story.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while defined
    spec.loader.exec_module(module)
    return module


def _signed(organisation: str) -> bytes:
    """A small PNG carrying a Licentia assertion, signed under a CA of its own whose
    certificate names ``organisation``."""
    ca, device = nacl.signing.SigningKey.generate(), nacl.signing.SigningKey.generate()
    kid = PublicKey(bytes(ca.verify_key)).key_id
    now = int(time.time())
    root = content_certs.root_certificate(ca, kid, now - 3600, None)
    cert = content_certs.content_certificate(
        ca, kid, root, bytes(device.verify_key), organisation, now - 60, 86400
    )
    assertion = content.LicenceAssertion(
        token="lic2.x", asset_digest=b"\x00" * 32, log_index=1, logged_at=1
    )
    chain = content_certs.chain_pem(cert, root)
    return content.embed(tiny_png(), "image/png", assertion, device, chain)


def test_the_demo_vouches_only_for_a_valid_reading_and_prints_names_sanitised(
    tmp_path: Path,
) -> None:
    story = _story()
    ad = tmp_path / "ad.png"
    ad.write_bytes(_signed(ESCAPES))
    lines = story.c2pa_view(ad)
    assert "\x1b" not in "".join(lines)
    assert "\r" not in "".join(lines)
    assert lines[0].startswith("manifest signed by \\u{001b}[2A\\u{001b}[2K\\u{000d}ALLOW")
    assert lines[1].startswith("state Valid (its signature and hard binding hold")
    # The same file with one byte of its image data changed: the reader does not say Valid.
    data = bytearray(ad.read_bytes())
    at = data.index(b"IDAT") + 6
    data[at] ^= 0xFF
    ad.write_bytes(bytes(data))
    with pytest.raises(story.StoryError, match="not Valid"):
        story.c2pa_view(ad)
