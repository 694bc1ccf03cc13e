"""Files that name a licence they were not made under (issue 22's review): a licensee's
token copied into someone else's signed file must neither get the person to revoke the
genuine licence (``licentia-wallet check``) nor print a forged signer as if it were
vouched for, or rewrite the verdict on a terminal (``licentia-verify --file``), against a
real exchange."""

from __future__ import annotations

import dataclasses
import hashlib
import time
from pathlib import Path
from typing import Any

import nacl.signing
import pytest

from licentia import content, content_certs, pairwise
from licentia.clients.verifier.cli import main as verify_main
from licentia.clients.wallet import keystore
from licentia.encoding import b64url_decode, b64url_encode
from licentia.keys import PublicKey
from licentia.token import RuleCommitment, approve, issue, new_licence_id, parse_token
from licentia.v1 import licence_pb2

from .content_harness import certificate_chain, embed_counted, png, sdk_sign, sign
from .exchange_harness import (
    DAY,
    PHOTO_SHA,
    Exchange,
    issue_licence,
    register_advertiser,
    register_holder,
    registered,
    request_licence,
)
from .wallet_harness import PASS, ready_wallet

CLI_USE = ("--purpose", "advertising", "--medium", "online", "--territory", "FR")
#: An organisation name that, printed raw on a terminal, erases the line above (the DENY)
#: and writes ALLOW in its place.
ESCAPES = "\x1b[2A\x1b[2K\rALLOW\n"


def _self_signed(data: bytes, token: str, asset: bytes, organisation: str) -> bytes:
    """``data`` signed under a CA of the forger's own, with a certificate naming
    ``organisation``, and carrying the licence ``token`` copied from a genuine file."""
    ca, device = nacl.signing.SigningKey.generate(), nacl.signing.SigningKey.generate()
    kid = PublicKey(bytes(ca.verify_key)).key_id
    now = int(time.time())
    root = content_certs.root_certificate(ca, kid, now - 3600, None)
    cert = content_certs.content_certificate(
        ca, kid, root, bytes(device.verify_key), organisation, now - 60, DAY
    )
    assertion = content.LicenceAssertion.for_token(token, asset)
    chain = content_certs.chain_pem(cert, root)
    return content.embed(data, content.mime_of(data[:16]), assertion, device, chain)


def test_a_copied_token_in_another_advertisers_file_is_never_revoked_from_the_file(
    ex: Exchange, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    w = ready_wallet(tmp_path, ex.address, capsys)
    acme, mallory = ex.party(), ex.party()
    register_advertiser(acme)
    register_advertiser(mallory, "Mallory Media")
    key = PublicKey.from_text(w.json("whoami")["account"]).raw
    photo = hashlib.sha256((tmp_path / "alice" / "me.png").read_bytes()).digest()
    request = request_licence(acme, key, digests=(photo,))  # no max_uses, no per-use price
    licence = w.json("approve", request.request.request_id.hex(), "--yes")
    token, lid = licence["token"], licence["licence_id"]
    genuine = sdk_sign(acme, png(), token, photo)
    # Mallory copies Acme's token into her own file, signed with the certificate the exchange
    # issued her; and into one signed under a CA of her own that calls itself Acme Ads.
    fakes = {
        "mallory.png": sign(png(seed=4), token, photo, mallory, certificate_chain(mallory)),
        "forged.png": _self_signed(png(seed=5), token, photo, "Acme Ads"),
    }
    for name, data in fakes.items():
        fake = tmp_path / name
        fake.write_bytes(data)
        code, out, _ = w("check", str(fake), "--yes")
        assert code == 0, name
        assert f"This file names your licence {lid[:12]}." in out
        assert "carries your licence" not in out
        assert "not valid: active at the exchange" in out
        assert (
            f"This file was not made by the licensee of your licence {lid[:12]}: it already"
            " fails every check; revoking would end Acme Ads's licensed use, not stop this"
            f" file — revoke it with `licentia-wallet revoke {lid}` if you want that." in out
        )
        assert "Revoked" not in out
        doc = w.json("check", str(fake), "--yes")
        assert (doc["verdict"], doc["credentials_ok"], doc["valid"]) == ("yours", False, False)
        assert doc["revoked"] is None
        assert doc["licence"]["state"] == "LICENCE_STATE_ACTIVE"
    # The genuine file: still hers to revoke on the spot, so the licence was never touched.
    (tmp_path / "ad.png").write_bytes(genuine)
    doc = w.json("check", str(tmp_path / "ad.png"))
    assert (doc["credentials_ok"], doc["valid"], doc["revoked"]) == (True, True, None)
    code, out, _ = w("check", str(tmp_path / "ad.png"))
    assert f"This file carries your licence {lid[:12]}." in out
    assert f"Revoke it: licentia-wallet revoke {lid}" in out


def test_verify_file_prints_a_forgers_names_sanitised_and_unvouched(
    ex: Exchange, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    holder, adv, _ = registered(ex)
    licence = issue_licence(holder, adv)
    server = ("--server", ex.address)

    def run(path: Path) -> tuple[int, str]:
        capsys.readouterr()
        code = verify_main(["--file", str(path), *server, *CLI_USE])
        return code, capsys.readouterr().out

    # Under a CA of the forger's own: the escapes shown as codes, the name only claimed, the
    # licence not named by its id (it was never authenticated).
    for organisation in (ESCAPES, "Acme Ads"):
        forged = tmp_path / "forged.png"
        forged.write_bytes(_self_signed(png(seed=6), licence.token, PHOTO_SHA, organisation))
        code, out = run(forged)
        assert code == 1
        lines = out.splitlines()
        assert lines[0] == "DENY CONTENT_CREDENTIAL_UNTRUSTED"
        assert "\x1b" not in out
        assert "\r" not in out
        assert "ALLOW" not in [line.strip() for line in lines]
        assert not any(line.startswith("signed by") for line in lines)
        shown = "\\u{001b}[2A\\u{001b}[2K\\u{000d}ALLOW\\u{000a}"
        claimed = shown if organisation == ESCAPES else "Acme Ads"
        assert f"claims to be signed by {claimed} (ed25519:" in out
        assert out.rstrip().endswith("(not verified)")
        assert "names a licence that does not verify" in out
        assert licence.licence_id.hex() not in out
    # Another registered advertiser's genuine certificate: trusted, so "signed by" it, and
    # the licence authenticated (named by its id), yet DENY: not the licensee.
    mallory = ex.party()
    register_advertiser(mallory, "Mallory Media")
    stolen = tmp_path / "stolen.png"
    stolen.write_bytes(
        sign(png(seed=7), licence.token, PHOTO_SHA, mallory, certificate_chain(mallory))
    )
    code, out = run(stolen)
    assert code == 1
    assert out.splitlines()[0].startswith("DENY CONTENT_SIGNER_NOT_LICENSEE")
    assert f"signed by Mallory Media ({PublicKey(mallory.key.public.raw).text})" in out
    assert f"licence {licence.licence_id.hex()}" in out


def test_the_wallet_calls_valid_only_what_every_checker_allows_and_finds_unlisted_licences(
    ex: Exchange, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    w = ready_wallet(tmp_path, ex.address, capsys)
    acme = ex.party()
    register_advertiser(acme)
    chain = certificate_chain(acme)
    key = PublicKey.from_text(w.json("whoami")["account"]).raw
    photo = hashlib.sha256((tmp_path / "alice" / "me.png").read_bytes()).digest()

    def approved(max_uses: int = 0) -> tuple[str, str]:
        request = request_licence(acme, key, digests=(photo,), max_uses=max_uses)
        licence = w.json("approve", request.request.request_id.hex(), "--yes")
        return licence["token"], licence["licence_id"]

    def refused(name: str, data: bytes, *reasons: str) -> dict[str, Any]:
        (tmp_path / name).write_bytes(data)
        doc = w.json("check", str(tmp_path / name), "--yes")
        assert (doc["verdict"], doc["valid"], doc["revoked"]) == ("yours", False, None), name
        assert set(reasons) <= set(doc["reasons"]), (name, doc["reasons"])
        assert doc["licence"]["state"] == "LICENCE_STATE_ACTIVE"
        code, out, _ = w("check", str(tmp_path / name), "--yes")
        assert code == 0
        assert "still valid" not in out
        assert "Revoked" not in out
        return dict(doc)

    # A counted licence embedded anyway (checkers: CONTENT_USES_COUNTED): the licensee's
    # own file, yet not valid, and nothing offered.
    counted, lid = approved(max_uses=3)
    refused(
        "counted.png",
        embed_counted(png(seed=8), counted, photo, acme, chain),
        "CONTENT_USES_COUNTED",
    )
    out = w("check", str(tmp_path / "counted.png"))[1]
    assert "the licence counts or prices each use" in out
    assert f"This file fails the checks every checker makes of your licence {lid[:12]}" in out
    # Her uncounted licence, its promise copy moved and the asset made up.
    token, lid = approved()
    parsed = parse_token(token)
    assert parsed.promise is not None
    odd = content.LicenceAssertion(
        token, b"\x07" * 32, parsed.promise.index + 5, parsed.promise.logged_at
    )
    made_up = content.embed(png(seed=9), "image/png", odd, _seed_key(acme), chain)
    refused("made-up.png", made_up, "MALFORMED", "ASSET_MISMATCH")
    # Her licence's id under a token the exchange never signed: not the licensee's file.
    env = licence_pb2.SignedLicence.FromString(b64url_decode(token.removeprefix("lic2.")))
    env.issuer_signature = bytes(64)
    forged = "lic2." + b64url_encode(env.SerializeToString(deterministic=True))
    doc = refused("bad-token.png", sign(png(seed=10), forged, photo, acme, chain))
    assert (doc["credentials_ok"], doc["file"]["licence_verified"]) == (False, False)
    out = w("check", str(tmp_path / "bad-token.png"))[1]
    assert f"This file names your licence {lid[:12]}." in out
    assert "its token is not the one the exchange issued for your licence" in out
    assert "was not made by the licensee of your licence" in out
    # The genuine file of the same licence: valid, and its JSON says what was verified.
    (tmp_path / "ad.png").write_bytes(sign(png(seed=11), token, photo, acme, chain))
    doc = w.json("check", str(tmp_path / "ad.png"))
    assert (doc["valid"], doc["credentials_ok"], doc["reasons"]) == (True, True, [])
    assert (doc["file"]["licence_verified"], doc["file"]["signer_verified"]) == (True, True)

    # A licence the exchange signed in her name (her pairwise key for Acme) but never
    # stored, so never listed: she is told to keep the file and audit.
    secret = keystore.unlock(w.path, PASS).holder_secret
    assert secret is not None
    pseudonym = pairwise.pairwise_key(secret, acme.key.public.raw)
    assert parsed.holder_key == pseudonym.public.raw
    claims = dataclasses.replace(parsed.claims, licence_id=new_licence_id(parsed.claims.issued_at))
    hidden = issue(
        ex.app.deps.keyring.current(),
        claims.encode(),
        approve(pseudonym, claims.encode()),
        claims=claims,
        promise=parsed.promise,
    )
    (tmp_path / "hidden.png").write_bytes(sign(png(seed=12), hidden, photo, acme, chain))
    doc = w.json("check", str(tmp_path / "hidden.png"), "--yes")
    assert (doc["verdict"], doc["valid"], doc["revoked"]) == ("unlisted", False, None)
    assert doc["file"]["licence_verified"] is True
    out = w("check", str(tmp_path / "hidden.png"))[1]
    assert (
        f"This file carries licence {claims.licence_id.hex()}, issued in your name but NOT"
        " listed by the exchange: keep this file; run `licentia-wallet audit`." in out
    )
    # The same under a standing rule (no holder key named): its commitment opens to her rule.
    code, _, err = w(
        "rules", "add", "--categories", "image", "--purposes", "advertising", "--media",
        "online", "--territories", "FR", "--min-price-per-day", "1.00",
    )  # fmt: skip
    assert code == 0, err
    ruled = parse_token(request_licence(acme, key, digests=(photo,)).licence.token)
    assert isinstance(ruled.consent, RuleCommitment)
    claims = dataclasses.replace(ruled.claims, licence_id=new_licence_id(ruled.claims.issued_at))
    hidden = issue(
        ex.app.deps.keyring.current(),
        claims.encode(),
        ruled.consent,
        claims=claims,
        promise=ruled.promise,
    )
    (tmp_path / "ruled.png").write_bytes(sign(png(seed=13), hidden, photo, acme, chain))
    assert w.json("check", str(tmp_path / "ruled.png"))["verdict"] == "unlisted"
    # Another holder's licence, authentic and unlisted for her, stays "not in your name".
    holder = ex.party()
    register_holder(holder, "carol")
    theirs = issue_licence(holder, acme)
    signed = sign(png(seed=14), theirs.token, PHOTO_SHA, acme, chain)
    (tmp_path / "theirs.png").write_bytes(signed)
    doc = w.json("check", str(tmp_path / "theirs.png"))
    assert (doc["verdict"], doc["file"]["licence_verified"]) == ("not_yours", True)


def _seed_key(party: Any) -> nacl.signing.SigningKey:
    return nacl.signing.SigningKey(party.key.seed)
