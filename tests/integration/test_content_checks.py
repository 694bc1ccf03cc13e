"""Anyone can check a file (issue 22): the inline verifier's ``check_file``, ``licentia-verify
--file``, the platform SDK's ``check_upload`` and ``licentia-wallet check``, against a real
exchange, on real PNG, JPEG and WAV files signed with the certificate it issues, and every bad
file (docs/threat-model.md, "Content Credentials") a clear answer with its reason."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nacl.signing
import pytest

from licentia import content, content_certs
from licentia.clients.channel import SignedChannel
from licentia.clients.holder import AsyncHolder, Holder
from licentia.clients.platform import Platform
from licentia.clients.verifier import Verifier
from licentia.clients.verifier.cli import main as verify_main
from licentia.errors import LicentiaError, Reason
from licentia.keys import PublicKey
from licentia.token import parse_token, salted_digest
from licentia.v1 import registry_pb2
from licentia.vocabulary import DataCategory, Medium, Purpose

from .content_harness import (
    camera_signed,
    certificate_chain,
    embed_counted,
    jpeg,
    png,
    sdk_sign,
    sign,
    wav,
)
from .exchange_harness import (
    DAY,
    PHOTO_SHA,
    Exchange,
    Party,
    issue_licence,
    register_advertiser,
    register_platform,
    registered,
    request_licence,
    revoke_licence,
    start_exchange,
    start_verifier,
    wait_for,
)
from .wallet_harness import ready_wallet

USE = {"purpose": Purpose.ADVERTISING, "medium": Medium.ONLINE, "territory": "FR"}
CLI_USE = ("--purpose", "advertising", "--medium", "online", "--territory", "FR")


@pytest.fixture
def world(ex: Exchange) -> Iterator[tuple[Party, Party, Party, Verifier]]:
    """A holder, an advertiser licensed for her photo, a platform, and its started verifier."""
    holder, adv, platform = registered(ex)
    verifier, raw = start_verifier(ex.address, "photoshare")
    try:
        yield holder, adv, platform, verifier
    finally:
        verifier.close()
        raw.close()


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """A PNG's chunks (kind, data) after its signature (PNG's own framing, not JUMBF)."""
    out, at = [], 8
    while at < len(data):
        (size,) = struct.unpack(">I", data[at : at + 4])
        out.append((data[at + 4 : at + 8], data[at + 8 : at + 8 + size]))
        at += 12 + size
    return out


def _png_of(chunks: list[tuple[bytes, bytes]]) -> bytes:
    body = b"".join(
        struct.pack(">I", len(d)) + k + d + struct.pack(">I", zlib.crc32(k + d)) for k, d in chunks
    )
    return b"\x89PNG\r\n\x1a\n" + body


class CountingReader(io.BytesIO):
    """A stream that counts the bytes read from it."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.taken = 0

    def read(self, size: int | None = -1) -> bytes:
        got = super().read(size)
        self.taken += len(got)
        return got


def test_a_signed_file_is_allowed_and_every_bad_file_has_its_reason(
    ex: Exchange, world: tuple[Party, Party, Party, Verifier], tmp_path: Path
) -> None:
    holder, adv, _, verifier = world
    licence = issue_licence(holder, adv)
    assert verifier.content_roots  # the roots came with the keys
    good = {kind: sdk_sign(adv, data, licence.token, PHOTO_SHA) for kind, data in (
        ("png", png()), ("jpeg", jpeg()), ("wav", wav()),
    )}  # fmt: skip

    for kind, data in good.items():
        checked = verifier.check_file(data, **USE)  # type: ignore[arg-type]
        assert checked.allowed, (kind, checked.decision.reasons)
        assert (checked.state, checked.licence_id) == ("trusted", licence.licence_id)
        assert checked.organisation == "Acme Ads"
        assert checked.signer == PublicKey(adv.key.public.raw).text
    path = tmp_path / "ad.png"
    path.write_bytes(good["png"])
    assert verifier.check_file(path, **USE).allowed  # type: ignore[arg-type]
    # Out of the licence's scope: the licence's own reasons.
    tv = verifier.check_file(good["png"], **{**USE, "medium": Medium.TV})  # type: ignore[arg-type]
    assert tv.decision.reasons == (Reason.OUT_OF_SCOPE_MEDIUM,)

    def reasons(data: bytes | Path | io.BytesIO, **kw: object) -> tuple[Reason, ...]:
        checked = verifier.check_file(data, **{**USE, **kw})  # type: ignore[arg-type]
        assert not checked.allowed
        return checked.decision.reasons

    # No manifest at all: "no licence".
    plain = verifier.check_file(png(), **USE)  # type: ignore[arg-type]
    assert (plain.no_licence, plain.verdict, plain.state) == (True, "NO LICENCE", "none")
    assert reasons(jpeg()) == reasons(wav()) == (Reason.CONTENT_NOT_LICENSED,)
    # A camera's or an editor's Content Credentials, with no Licentia assertion: no licence
    # either (not "untrusted": they are not a licence's to judge).
    camera = verifier.check_file(camera_signed(png(seed=5)), **USE)  # type: ignore[arg-type]
    assert (camera.no_licence, camera.state, camera.organisation) == (
        True,
        "valid_untrusted",
        "Camera Maker",
    )
    # A byte of the image changed after signing.
    edited = bytearray(good["png"])
    idat = edited.index(b"IDAT")
    edited[idat + 6] ^= 0x01
    assert reasons(bytes(edited)) == (Reason.CONTENT_MODIFIED,)
    edited = bytearray(good["jpeg"])
    edited[edited.index(b"\xff\xfe") + 4] ^= 0x01  # the comment segment's byte
    assert reasons(bytes(edited)) == (Reason.CONTENT_MODIFIED,)
    # The manifest copied into another file (its chunk moved into another PNG).
    manifest = [c for c in _chunks(good["png"]) if c[0] == b"caBX"]
    assert len(manifest) == 1
    other = _chunks(png(seed=99))
    copied = _png_of([other[0], manifest[0], *other[1:]])
    assert reasons(copied) == (Reason.CONTENT_MODIFIED,)
    # Malformed JUMBF in the signed file itself: a box of an unknown type, a manifest cut
    # short, zeros: unreadable, MALFORMED.
    box_kind, box = manifest[0]
    chunks = _chunks(good["png"])
    at = chunks.index(manifest[0])
    for bad in (box[:4] + b"xxxx" + box[8:], box[: len(box) // 2], b"\x00" * 40):
        broken = _png_of([*chunks[:at], (box_kind, bad), *chunks[at + 1 :]])
        assert verifier.check_file(broken, **USE).state == "unreadable"  # type: ignore[arg-type]
        assert reasons(broken) == (Reason.MALFORMED,)
    # Signed under another CA: the advertiser's key, a root no issuer key of this exchange made.
    stranger = nacl.signing.SigningKey.generate()
    kid = PublicKey(bytes(stranger.verify_key)).key_id
    now = int(time.time())
    root = content_certs.root_certificate(stranger, kid, now - 60, None)
    cert = content_certs.content_certificate(
        stranger, kid, root, adv.key.public.raw, "Acme Ads", now - 60, DAY
    )
    forged = sign(png(), licence.token, PHOTO_SHA, adv, content_certs.chain_pem(cert, root))
    assert reasons(forged) == (Reason.CONTENT_CREDENTIAL_UNTRUSTED,)
    # Signed by another registered advertiser, not the licensee.
    rival = ex.party()
    register_advertiser(rival, "Rival Ads")
    stolen = sign(png(), licence.token, PHOTO_SHA, rival, certificate_chain(rival))
    assert reasons(stolen) == (Reason.CONTENT_SIGNER_NOT_LICENSEE,)
    # A counted licence (three uses, each priced) in a file, signed by its own licensee under
    # the exchange's certificate: the SDK and for_token refuse it, a checker DENYs it.
    counted = issue_licence(holder, adv, max_uses=3, price_per_use=10)
    with pytest.raises(LicentiaError) as refused:
        sdk_sign(adv, png(seed=4), counted.token, PHOTO_SHA)
    assert refused.value.reason == Reason.CONTENT_USES_COUNTED
    with pytest.raises(LicentiaError) as refused:
        content.LicenceAssertion.for_token(counted.token, PHOTO_SHA)
    assert refused.value.reason == Reason.CONTENT_USES_COUNTED
    carried = embed_counted(png(seed=4), counted.token, PHOTO_SHA, adv, certificate_chain(adv))
    checked = verifier.check_file(carried, **USE)  # type: ignore[arg-type]
    assert (checked.state, checked.licence_id) == ("trusted", counted.licence_id)
    assert checked.decision.reasons == (Reason.CONTENT_USES_COUNTED,)
    # The file names its asset salted, as the claims do: not the photo's plain digest.
    assert checked.asset_digest != PHOTO_SHA
    assert checked.asset_digest in parse_token(counted.token).asset_categories
    # Over the cap: TOO_LARGE, and no more than the cap (and one byte) is read.
    stream = CountingReader(good["png"] + b"\x00" * 4096)
    assert reasons(stream, max_bytes=1024) == (Reason.TOO_LARGE,)
    assert stream.taken <= 1025
    # Not a file at all, a path that is not there, a use that is not one: DENY, no raise.
    assert reasons(b"hello") == (Reason.MALFORMED,)
    assert reasons(tmp_path / "missing.png") == (Reason.MALFORMED,)
    assert reasons(good["png"], medium="online") == (Reason.INVALID_USE,)
    # A verifier not started (or gone stale) fails closed.
    idle = Verifier(ex.channel(), "photoshare")
    assert idle.check_file(good["png"], **USE).decision.reasons == (Reason.STATUS_STALE,)  # type: ignore[arg-type]
    assert idle.content_roots == ()
    # Expired: checked after the licence's end.
    after = verifier.check_file(good["png"], now=licence.not_after + 1, **USE)  # type: ignore[arg-type]
    assert Reason.EXPIRED in after.decision.reasons
    assert not after.allowed
    # Revoked: pushed to the verifier, the same file is DENY REVOKED.
    revoke_licence(holder, licence.licence_id)
    assert wait_for(lambda: not verifier.check_file(good["png"], **USE).allowed, 5) < 5  # type: ignore[arg-type]
    assert reasons(good["jpeg"]) == (Reason.REVOKED,)


def test_another_exchanges_certificate_is_untrusted(
    ex: Exchange, world: tuple[Party, Party, Party, Verifier], tmp_path: Path
) -> None:
    holder, adv, _, verifier = world
    licence = issue_licence(holder, adv)
    other = start_exchange(tmp_path / "other")
    try:
        twin = Party(adv.key, SignedChannel(other.channel(), adv.key), other)
        register_advertiser(twin)  # the same key, registered at another exchange
        elsewhere = certificate_chain(twin)
    finally:
        other.stop()
    signed = sign(png(), licence.token, PHOTO_SHA, adv, elsewhere)
    checked = verifier.check_file(signed, **USE)  # type: ignore[arg-type]
    assert checked.decision.reasons == (Reason.CONTENT_CREDENTIAL_UNTRUSTED,)
    assert checked.state == "valid_untrusted"


def test_cli_file_allow_deny_no_licence_and_misuse(
    ex: Exchange,
    world: tuple[Party, Party, Party, Verifier],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    holder, adv, _, _ = world
    licence = issue_licence(holder, adv)
    ad = tmp_path / "ad.jpg"
    ad.write_bytes(sdk_sign(adv, jpeg(), licence.token, PHOTO_SHA))
    edited = tmp_path / "edited.jpg"
    data = bytearray(ad.read_bytes())
    data[data.index(b"\xff\xfe") + 4] ^= 0x01
    edited.write_bytes(bytes(data))
    plain = tmp_path / "plain.png"
    plain.write_bytes(png())
    counted = tmp_path / "counted.png"
    token = issue_licence(holder, adv, max_uses=2).token
    counted.write_bytes(embed_counted(png(), token, PHOTO_SHA, adv, certificate_chain(adv)))
    server = ("--server", ex.address)

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            code = verify_main([*argv])
        except SystemExit as e:  # argparse's misuse
            code = int(e.code or 0)
        out = capsys.readouterr()
        return code, out.out, out.err

    code, out, _ = run("--file", str(ad), *server, *CLI_USE)
    assert code == 0
    assert out.splitlines()[0] == "ALLOW"
    assert f"licence {licence.licence_id.hex()}" in out
    assert "signed by Acme Ads (ed25519:" in out
    code, out, _ = run("--file", str(edited), *server, *CLI_USE)
    assert code == 1
    assert out.splitlines()[:2] == [
        "DENY CONTENT_MODIFIED",
        "  CONTENT_MODIFIED: the file's Content Credentials are not for these bytes (edited"
        " after signing, or copied from another file)",
    ]
    code, out, _ = run("--file", str(plain), *server, *CLI_USE)
    assert (code, out.splitlines()[0]) == (1, "NO LICENCE")
    code, out, _ = run("--file", str(counted), *server, *CLI_USE)
    assert (code, out.splitlines()[:2]) == (
        1,
        [
            "DENY CONTENT_USES_COUNTED",
            "  CONTENT_USES_COUNTED: the licence counts or prices each use: a file cannot carry"
            " it (it is presented to each platform instead)",
        ],
    )
    code, out, _ = run("--file", str(plain), *server, *CLI_USE, "--json")
    doc = json.loads(out)
    assert (code, doc["verdict"], doc["reasons"]) == (1, "NO_LICENCE", ["CONTENT_NOT_LICENSED"])
    code, out, _ = run("--file", str(ad), *server, *CLI_USE, "--json", "--category", "image")
    doc = json.loads(out)
    assert (code, doc["verdict"], doc["organisation"]) == (0, "ALLOW", "Acme Ads")
    assert doc["licence_id"] == licence.licence_id.hex()
    code, out, _ = run("--file", str(ad), *server, *CLI_USE, "--max-file-bytes", "100")
    assert (code, out.splitlines()[0]) == (1, "DENY TOO_LARGE")
    revoke_licence(holder, licence.licence_id)
    code, out, _ = run("--file", str(ad), *server, *CLI_USE)
    assert (code, out.splitlines()[0]) == (1, "DENY REVOKED")
    # Misuse: 2, nothing checked.
    for argv in (
        ("--file", str(ad), "lic2.x"),
        ("--file", str(ad), "--asset-sha256", "00" * 32),
        ("--file", str(tmp_path / "missing.jpg")),
        ("--file", str(ad), "--max-file-bytes", "0"),
        ("--file", str(ad), "--territory", "XX", "--purpose", "advertising", "--medium", "tv"),
    ):
        argv2 = (*argv, *server) + (() if "--territory" in argv else CLI_USE)
        assert run(*argv2)[0] == 2, argv
    assert run(*CLI_USE, *server)[0] == 2  # neither a token nor --file
    # The exchange unreachable: 3.
    assert run("--file", str(ad), "--server", "127.0.0.1:1", "--timeout", "1", *CLI_USE)[0] == 3


def test_uploads_are_allowed_denied_held_or_unlicensed(
    ex: Exchange, world: tuple[Party, Party, Party, Verifier], tmp_path: Path
) -> None:
    holder, adv, platform_party, verifier = world
    licence = issue_licence(holder, adv)
    portrait = png(seed=7)  # a file she declared as hers (its bytes' SHA-256)
    holder.call(
        registry_pb2,
        "DeclareAsset",
        registry_pb2.DeclareAssetRequest(
            category=DataCategory.IMAGE,  # type: ignore[arg-type]
            sha256=hashlib.sha256(portrait).digest(),
            label="beach",
            content=portrait,
        ),
        registry_pb2.DeclareAssetResponse,
    )
    client = Platform(ex.channel(), platform_party.key)
    signed = sdk_sign(adv, png(), licence.token, PHOTO_SHA)
    edited = bytearray(signed)
    edited[edited.index(b"IDAT") + 6] ^= 0x01
    odd = b"\x89PNG declared, but no image a C2PA reader can read"
    holder.call(
        registry_pb2,
        "DeclareAsset",
        registry_pb2.DeclareAssetRequest(
            category=DataCategory.IMAGE,  # type: ignore[arg-type]
            sha256=hashlib.sha256(odd).digest(),
            label="odd",
        ),
        registry_pb2.DeclareAssetResponse,
    )
    cases = {
        "allow": signed,
        "deny": bytes(edited),
        "held": portrait,
        "no_licence": png(seed=8),
    }
    # A declared asset is held even in a file the reader cannot read; anything else
    # unreadable is DENY MALFORMED.
    unreadable = client.check_upload(verifier, odd, **USE)  # type: ignore[arg-type]
    assert (unreadable.outcome, unreadable.reasons) == ("held", (Reason.MALFORMED,))
    garbage = client.check_upload(verifier, b"\x89PNG garbage", **USE)  # type: ignore[arg-type]
    assert (garbage.outcome, garbage.reasons) == ("deny", (Reason.MALFORMED,))
    for outcome, data in cases.items():
        path = tmp_path / f"{outcome}.png"
        path.write_bytes(data)
        got = client.check_upload(verifier, path, **USE)  # type: ignore[arg-type]
        assert got.outcome == outcome, (outcome, got.reasons)
    assert client.check_upload(verifier, bytes(edited), **USE).reasons == (  # type: ignore[arg-type]
        Reason.CONTENT_MODIFIED,
    )
    # More digests than one call carries are asked in several; none says whose.
    many = [hashlib.sha256(portrait).digest(), *[bytes([i]) * 32 for i in range(70)], PHOTO_SHA]
    assert client.check_asset_digests(many) == [True, *[False] * 70, True]
    # An erased asset is found no more.
    holder.call(
        registry_pb2,
        "EraseAssets",
        registry_pb2.EraseAssetsRequest(sha256=[hashlib.sha256(portrait).digest()]),
        registry_pb2.EraseAssetsResponse,
    )
    assert client.check_asset_digests([hashlib.sha256(portrait).digest(), PHOTO_SHA]) == [
        False,
        True,
    ]


def test_wallet_check_finds_her_licence_and_revokes_it_on_the_spot(
    ex: Exchange, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    w = ready_wallet(tmp_path, ex.address, capsys)
    adv, platform = ex.party(), ex.party()
    register_advertiser(adv)
    register_platform(platform)
    key = PublicKey.from_text(w.json("whoami")["account"]).raw
    photo = tmp_path / "alice" / "me.png"  # the file she declared (set_up)
    request = request_licence(adv, key, digests=(hashlib.sha256(photo.read_bytes()).digest(),))
    licence = w.json("approve", request.request.request_id.hex(), "--yes")
    token, lid = licence["token"], licence["licence_id"]
    ad = tmp_path / "ad.png"
    ad.write_bytes(sdk_sign(adv, png(), token, hashlib.sha256(photo.read_bytes()).digest()))

    # Her declared photo, re-posted with no licence.
    code, out, _ = w("check", str(photo))
    assert (code, out.strip()) == (0, "This file uses your declared me.png with no licence.")
    # A file with no licence at all; a licence of someone else's.
    other = tmp_path / "other.png"
    other.write_bytes(png(seed=3))
    assert "carries no Licentia licence" in w("check", str(other))[1]
    bob = ready_wallet(tmp_path, ex.address, capsys, "bob")
    code, out, _ = bob("check", str(ad))
    assert code == 0
    assert "which is not in your name" in out
    # Bob declared the same photo: he finds it through the salted digest (names).
    assert "Yet it names your declared me.png." in out
    assert "Revoke" not in out
    # Hers: which licence, whom, the scope and term, valid; no terminal: the command shown.
    code, out, _ = w("check", str(ad))
    assert code == 0
    assert f"This file carries your licence {lid[:12]}." in out
    assert "Who:         Acme Ads" in out
    assert "still valid" in out
    assert f"Revoke it: licentia-wallet revoke {lid}" in out
    doc = w.json("check", str(ad))
    assert (doc["verdict"], doc["valid"], doc["revoked"]) == ("yours", True, None)
    # The file names her photo salted; her wallet recognises it (LicenceAssertion.names).
    assert doc["asset_label"] == "me.png"
    plain = hashlib.sha256(photo.read_bytes()).digest()
    salted = salted_digest(parse_token(token).asset_salt, plain)
    assert plain.hex().encode() not in ad.read_bytes()
    assert plain not in ad.read_bytes()
    assert salted.hex().encode() in ad.read_bytes()  # the assertion's JSON, as readers see it
    # --yes revokes it on the spot; the same file then checks as DENY REVOKED.
    doc = w.json("check", str(ad), "--yes")
    assert doc["revoked"]["receipt"]
    assert doc["valid"] is False
    assert doc["licence"]["state"] == "LICENCE_STATE_REVOKED"
    code, out, _ = w("check", str(ad))
    assert "revoked at the exchange" in out
    assert "Revoke it" not in out
    verifier, raw = start_verifier(ex.address, "photoshare")
    try:
        assert verifier.check_file(ad, **USE).decision.reasons == (Reason.REVOKED,)  # type: ignore[arg-type]
    finally:
        verifier.close()
        raw.close()
    # A file that is not there, or too large to check: a clear error, exit 1.
    code, _, err = w("check", str(tmp_path / "missing.png"))
    assert code == 1
    assert "cannot read" in err


def test_a_rotation_reaches_the_verifiers_roots_and_old_files_still_check(
    ex: Exchange, tmp_path: Path
) -> None:
    holder, adv, _ = registered(ex)
    verifier, raw = start_verifier(ex.address, "photoshare", key_refresh_min_interval=0.1)
    try:
        before = issue_licence(holder, adv)
        old_file = sdk_sign(adv, png(seed=1), before.token, PHOTO_SHA)
        assert len(verifier.content_roots) == 1
        keyring = ex.app.deps.keyring
        old_id = keyring.current().public.key_id
        keyring.rotate(int(time.time()))
        wait_for(lambda: keyring.current().public.key_id != old_id, 3)
        after = issue_licence(holder, adv)
        fresh = Party(adv.key, SignedChannel(ex.channel(), adv.key), ex)
        new_file = sdk_sign(fresh, png(seed=2), after.token, PHOTO_SHA)
        # The heartbeats name the new key set: the roots are fetched with the keys.
        assert wait_for(lambda: len(verifier.content_roots) == 2, 5) < 5
        assert wait_for(lambda: verifier.check_file(new_file, **USE).allowed, 3) < 3  # type: ignore[arg-type]
        assert verifier.check_file(old_file, **USE).allowed  # type: ignore[arg-type]
    finally:
        verifier.close()
        raw.close()


def test_the_holder_sdks_fetch_the_roots_the_verifier_trusts(
    ex: Exchange, world: tuple[Party, Party, Party, Verifier], monkeypatch: pytest.MonkeyPatch
) -> None:
    holder, _, _, verifier = world
    real = content_certs.trusted_roots

    def off_loop(*args: Any, **kw: Any) -> list[bytes]:  # the asyncio SDK: in a thread
        with pytest.raises(RuntimeError):
            asyncio.get_running_loop()
        return real(*args, **kw)

    monkeypatch.setattr("licentia.clients.holder.aio.trusted_roots", off_loop)

    async def roots() -> list[bytes]:
        async with AsyncHolder.connect(ex.address, holder.key) as me:
            return await me.content_roots()

    with Holder.connect(ex.address, holder.key) as me:
        assert me.content_roots() == list(verifier.content_roots)
    assert asyncio.run(roots()) == list(verifier.content_roots)
    assert len(verifier.content_roots) == 1
