"""Rebuild the Content Credentials known answers in tests/vectors/content/ (token-format §12).

tests/vectors/content/portrait.jpg (a 32x32 baseline JPEG, committed) is signed with the
vectors' fixed keys (licence-v1.json: issuer seed 01…01, holder 02…02, licensee 03…03) into:

- ``portrait-licensed.jpg``: the Licentia assertion carries the **file licence**: the
  typical licence with no use limit and no price per use (``licentia.examples.
  uncounted_claims``, index 2; a file carries no counted licence, token-format §12.2),
  salted as licence-v1.json's ``token_v2``, approved by the holder, logged at leaf
  ``FILE_LOG_INDEX``; the assertion names the photo (``licentia.examples.PHOTO_SHA256``)
  salted, as the claims do (§12.1); signed by the licensee under its content certificate.
  content.json gives the licence's claims and exact token, so that an independent
  implementation can rebuild it;
- ``portrait-other-licensee.jpg``: the same, signed by the same licensee, but carrying the
  uncounted licence (index 1) issued to another key (seed 04…04): what a file made with a
  stolen token is;
- ``portrait-counted.jpg``: licence-v1.json's ``token_v2`` approval token, a counted licence
  (``max_uses`` 3), embedded with ``content.embed`` directly (its assertion built field by
  field: ``LicenceAssertion.for_token`` and the SDK refuse it): what a signer that ignores
  §12.2 makes, which a checker DENYs CONTENT_USES_COUNTED.

C2PA manifests are not deterministic (the manifest's URN is random, C2PA signs at the real
time), so the signed files are committed and ``content.json`` beside them holds everything
else, all of it deterministic: the content root and end-entity certificate (DER), both
tokens, the use and ``now`` of the cases, the byte a case changes, and each case's answer.

C2PA readers check the signing certificate's validity at the time they read (a manifest with
no time-stamp), and C2PA signers refuse a certificate that is not valid at the time they
sign: so these certificates are valid from 2025-12-01 (the issuer key's window starts then,
not at licence-v1.json's ``now`` - 1 day, which is in 2027) until 2100. They are not §12.3's
known answers (those are for a window that starts in 2027); they follow the same profile.

python tests/vectors/generate_content.py           # sign the files anew, write content.json
python tests/vectors/generate_content.py --check   # exit 1 if content.json is out of date
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any, cast

import nacl.signing

from licentia import content, content_certs
from licentia.examples import PHOTO_SHA256, salted, uncounted_claims
from licentia.keys import IssuerKey, IssuerKeySet, PrivateKey
from licentia.status import StatusEvent, StatusView, verify_snapshot
from licentia.token import Approval, LogPromise, approve, issue, parse_token, salted_digest
from licentia.verify import VerificationEngine
from licentia.vocabulary import Medium, Purpose

HERE = Path(__file__).parent
DIR = HERE / "content"
OUT = DIR / "content.json"
SOURCE = "portrait.jpg"
LICENSED = "portrait-licensed.jpg"
OTHER = "portrait-other-licensee.jpg"
COUNTED = "portrait-counted.jpg"
#: The file licence: the uncounted typical licence of this index, logged at this leaf.
FILE_INDEX = 2
FILE_LOG_INDEX = 43
#: 2025-12-01T00:00:00Z: the issuer key's window (no end) and the end-entity's notBefore.
WINDOW_START = 1_764_547_200
#: 2100-01-01T00:00:00Z: the end-entity certificate's notAfter.
CERT_END = 4_102_444_800
ORGANISATION = "Acme Ads"
#: The other licensee of ``portrait-other-licensee.jpg``'s licence.
OTHER_SEED = b"\x04" * 32
#: Where that licence sits in the log (licence-v1.json's token_v2 is at leaf 41).
OTHER_LOG_INDEX = 42
#: The use every case checks (within the typical licence's scope).
USE = {"purpose": "PERSONALISED_ADVERTISING", "medium": "SOCIAL", "territory": "FR"}
STALENESS = 300


def licence_vectors() -> dict[str, Any]:
    """licence-v1.json, which these vectors build on."""
    loaded: dict[str, Any] = json.loads((HERE / "licence-v1.json").read_text())
    return loaded


def keys_of(v: dict[str, Any]) -> dict[str, PrivateKey]:
    """The vectors' issuer, holder and licensee keys, and the other licensee's."""
    k = {name: PrivateKey.from_seed(bytes.fromhex(x["seed"])) for name, x in v["keys"].items()}
    k["other_licensee"] = PrivateKey.from_seed(OTHER_SEED)
    return k


def issuer_keys(issuer: PrivateKey) -> IssuerKeySet:
    """The issuer key set of the cases: the vectors' issuer key from ``WINDOW_START``."""
    return IssuerKeySet([IssuerKey(issuer.public, WINDOW_START)])


def certificates(k: dict[str, PrivateKey]) -> tuple[bytes, bytes]:
    """The content root of the issuer key and the licensee's end-entity certificate (DER)."""
    issuer = nacl.signing.SigningKey(k["issuer"].seed)
    key_id = k["issuer"].public.key_id
    root = content_certs.root_certificate(issuer, key_id, WINDOW_START, None)
    ee = content_certs.content_certificate(
        issuer,
        key_id,
        root,
        k["licensee"].public.raw,
        ORGANISATION,
        WINDOW_START,
        CERT_END - WINDOW_START,
    )
    return root, ee


def _uncounted(v: dict[str, Any], licensee: PrivateKey, index: int, leaf: int, at: int) -> str:
    """The uncounted typical licence ``index`` issued to ``licensee``, its assets salted as
    licence-v1.json's token_v2, approved by the holder, logged at ``leaf`` at ``at``."""
    k = keys_of(v)
    salt = bytes.fromhex(v["token_v2"]["approval"]["asset_salt_hex"])
    claims = salted(
        uncounted_claims(k["issuer"], k["holder"], licensee, int(v["now"]), index), salt
    )
    data = claims.encode()
    promise = LogPromise(leaf, at)
    return issue(k["issuer"], data, approve(k["holder"], data), claims=claims, promise=promise)


def file_token(v: dict[str, Any], k: dict[str, PrivateKey]) -> str:
    """The file licence of ``portrait-licensed.jpg``: the uncounted licence ``FILE_INDEX``
    to the licensee (03…03), logged at ``FILE_LOG_INDEX`` at licence-v1.json's now + 2."""
    return _uncounted(v, k["licensee"], FILE_INDEX, FILE_LOG_INDEX, int(v["now"]) + 2)


def other_token(v: dict[str, Any], k: dict[str, PrivateKey]) -> str:
    """The uncounted licence (index 1) issued to the other licensee, logged at
    ``OTHER_LOG_INDEX`` at licence-v1.json's now + 1."""
    return _uncounted(v, k["other_licensee"], 1, OTHER_LOG_INDEX, int(v["now"]) + 1)


def counted_token(v: dict[str, Any]) -> str:
    """licence-v1.json's token_v2 approval token: the typical licence, three uses."""
    token: str = v["token_v2"]["approval"]["token"]
    return token


def assertion_of(token: str) -> content.LicenceAssertion:
    """The Licentia assertion for ``token`` used for the photo, built field by field (as
    §12.1 lays it out), so that a counted token gets one too."""
    parsed = parse_token(token)
    assert parsed.promise is not None
    return content.LicenceAssertion(
        token,
        salted_digest(parsed.asset_salt, PHOTO_SHA256),
        parsed.promise.index,
        parsed.promise.logged_at,
    )


def licence_doc(token: str) -> dict[str, Any]:
    """What an independent implementation needs to rebuild the file licence: its claims'
    exact bytes and main fields, the salt, both digests of the photo, and the token."""
    t = parse_token(token)
    assert t.promise is not None
    return {
        "claims_hex": t.claims_bytes.hex(),
        "licence_id_hex": t.licence_id.hex(),
        "asset_salt_hex": t.asset_salt.hex(),
        "photo_plain_sha256_hex": PHOTO_SHA256.hex(),
        "photo_salted_sha256_hex": salted_digest(t.asset_salt, PHOTO_SHA256).hex(),
        "status_list": t.status_list,
        "status_index": t.status_index,
        "not_before": t.not_before,
        "not_after": t.not_after,
        "max_uses": t.max_uses,
        "per_use_minor": t.per_use_minor,
        "consent_signature_hex": cast(Approval, t.consent).signature.hex(),
        "issuer_signature_hex": t.issuer_signature.hex(),
        "log_promise": {"index": t.promise.index, "logged_at": t.promise.logged_at},
        "token": token,
    }


def flip_offset(data: bytes) -> int:
    """The offset of the first byte of a JPEG's entropy-coded image data (after its last
    start-of-scan header), checked to change into no marker when its low bit flips."""
    sos = data.rindex(b"\xff\xda")
    length = int.from_bytes(data[sos + 2 : sos + 4], "big")
    at = sos + 2 + length
    if data[at] ^ 1 == 0xFF or data[at - 1] == 0xFF:
        raise SystemExit("the first image byte would become a marker: pick another")
    return at


def flipped(data: bytes, offset: int) -> bytes:
    """``data`` with the low bit of the byte at ``offset`` flipped."""
    out = bytearray(data)
    out[offset] ^= 0x01
    return bytes(out)


def decide(
    data: bytes, v: dict[str, Any], k: dict[str, PrivateKey], root: bytes, *, revoke: bool
) -> dict[str, Any]:
    """Read ``data`` trusting the roots the issuer key accepts and check it for ``USE`` at
    licence-v1.json's ``now`` + 60, with the status view of licence-v1.json's snapshot (and,
    with ``revoke``, the event revoking the licence the file carries); the answer as JSON."""
    keys = issuer_keys(k["issuer"])
    view = StatusView(
        verify_snapshot(bytes.fromhex(v["status_snapshot"]["signed_hex"]), keys), STALENESS
    )
    now = int(v["now"])
    reading = content.read(data, None, content_certs.trusted_roots([root], keys))
    if revoke:
        assert reading.assertion is not None
        t = parse_token(reading.assertion.token)
        view.apply(StatusEvent(3, t.status_list, t.status_index, now + 30))
    decision = content.check(
        reading,
        VerificationEngine(keys, view),
        now + 60,
        purpose=Purpose[USE["purpose"]],
        medium=Medium[USE["medium"]],
        territory=USE["territory"],
    )
    return {
        "state": reading.state,
        "signer": reading.signer,
        "organisation": reading.organisation,
        "failures": sorted(reading.failures),
        "verdict": decision.verdict,
        "reasons": [r.name for r in decision.reasons],
    }


def sign_files(v: dict[str, Any], k: dict[str, PrivateKey]) -> None:
    """Sign portrait.jpg into the three committed signed files (new URNs every time)."""
    root, ee = certificates(k)
    chain = content_certs.chain_pem(ee, root)
    source = (DIR / SOURCE).read_bytes()
    key = nacl.signing.SigningKey(k["licensee"].seed)
    for name, token in (
        (LICENSED, file_token(v, k)),
        (OTHER, other_token(v, k)),
        (COUNTED, counted_token(v)),
    ):
        if name != COUNTED:  # the SDK's way: for_token refuses a counted licence
            assert content.LicenceAssertion.for_token(token, PHOTO_SHA256) == assertion_of(token)
        assertion = assertion_of(token)
        (DIR / name).write_bytes(content.embed(source, "image/jpeg", assertion, key, chain))


def build() -> dict[str, Any]:
    """content.json's document, from the committed files."""
    v = licence_vectors()
    k = keys_of(v)
    root, ee = certificates(k)
    tokens = {LICENSED: file_token(v, k), OTHER: other_token(v, k), COUNTED: counted_token(v)}
    files = {name: (DIR / name).read_bytes() for name in (SOURCE, *tokens)}
    offset = flip_offset(files[LICENSED])
    cases: list[dict[str, Any]] = [
        {"name": "the licensed file, its licence live", "file": LICENSED},
        {"name": "the licensed file, its licence revoked", "file": LICENSED, "revoke": True},
        {
            "name": "the licensed file with one byte of its image data changed",
            "file": LICENSED,
            "flip_offset": offset,
        },
        {"name": "a licence issued to another key, signed by this one", "file": OTHER},
        {"name": "the portrait itself, with no Content Credentials", "file": SOURCE},
        {"name": "a counted licence (three uses) in a file", "file": COUNTED},
    ]
    for case in cases:
        data = files[case["file"]]
        if "flip_offset" in case:
            data = flipped(data, case["flip_offset"])
        case["expect"] = decide(data, v, k, root, revoke=bool(case.get("revoke")))

    return {
        "about": "Licentia Content Credentials known answers; see tests/vectors/README.md",
        "issuer_key_window": {"not_before": WINDOW_START, "not_after": None},
        "root_der_hex": root.hex(),
        "root_sha256_hex": hashlib.sha256(root).hexdigest(),
        "end_entity": {
            "subject_key": k["licensee"].public.text,
            "organisation": ORGANISATION,
            "not_before": WINDOW_START,
            "not_after": CERT_END,
            "der_hex": ee.hex(),
            "sha256_hex": hashlib.sha256(ee).hexdigest(),
        },
        "other_licensee": {"seed": OTHER_SEED.hex(), "public_key": k["other_licensee"].public.text},
        "file_licence": licence_doc(tokens[LICENSED]),
        "files": {
            SOURCE: {"sha256_hex": hashlib.sha256(files[SOURCE]).hexdigest()},
            **{
                name: {
                    "sha256_hex": hashlib.sha256(files[name]).hexdigest(),
                    "token": token,
                    "assertion": assertion_of(token).to_json(),
                }
                for name, token in tokens.items()
            },
        },
        "use": USE,
        "now": int(v["now"]) + 60,
        "status_staleness_bound": STALENESS,
        "cases": cases,
    }


def render() -> str:
    """content.json's exact text."""
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Sign the files and write content.json, or with --check compare it with a fresh
    build from the committed files."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if content.json is out of date")
    args = ap.parse_args(argv)
    if args.check:
        if not OUT.exists() or OUT.read_text() != render():
            print(
                f"{OUT.name} is out of date: run tests/vectors/generate_content.py", file=sys.stderr
            )
            return 1
        return 0
    v = licence_vectors()
    sign_files(v, keys_of(v))
    OUT.write_text(render())
    print(f"wrote {OUT} and the signed files beside it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
