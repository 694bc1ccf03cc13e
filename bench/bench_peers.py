"""Licentia beside the signed-token libraries a user would otherwise pick, on the same claims.

Prints one JSON object per line, like the other benches (``bench``, ``ops_per_s``, ``ratio``,
``target``, ``limit``, ``ok``), plus ``library``, ``metric``, ``value`` and ``unit``: one line
per (library, metric). The peers are PyJWT (EdDSA, Ed25519), pyseto (PASETO v4.public) and
biscuit-python; they come with the ``bench`` extra (``make bench`` installs it), and without
them this script says so and exits 2. Nothing here has a target: it reports, it does not judge
(``target`` is null and ``ok`` is true, as in ``bench_log.py``).

Every library carries the typical licence of ``licentia.examples``: licence id, issuer key id,
holder and licensee keys, two assets (category + SHA-256), the scope (categories, purposes,
media, territories), issued-at / not-before / not-after, max uses, exclusivity, the status
index and the price terms. JWT and PASETO carry them as the same JSON claims (binary values in
base64url; times as NumericDate for JWT and as ISO 8601 for PASETO, each format's registered
form, which its library checks); biscuit as Datalog facts in its authority block (one licence
fact, one per asset, one scope fact of four sets: the most compact idiomatic form).

- ``size``: characters of the token text; ``ratio`` is to Licentia's token of the same claims.
- ``create``: tokens built and signed per second, from the claims as a domain value (Licentia:
  encode, the holder's consent signature, the exchange's issuance signature); ``ratio`` ÷ raw
  PyNaCl Ed25519 signatures/s.
- ``verify``: first-seen tokens checked per second (every token distinct, nothing cached):
  parse, signature(s), time window and the intended use (category, purpose, medium,
  territory, asset digest); Licentia also checks its issuer key, term and revocation status.
  ``ratio`` ÷ raw PyNaCl Ed25519 verifications/s.

**The asymmetry.** A Licentia licence carries two signatures (the holder's consent and the
exchange's issuance) and verifying it checks both; each peer token carries one. ``ratio`` is
per token, as a user sees it; ``ratio_per_signature`` is ``ratio × signatures`` (the rate of
signatures made or checked ÷ the raw rate), and ``signatures`` says how many each token has.
JWT and PASETO sign through ``cryptography`` (OpenSSL), biscuit through its Rust core, and
Licentia and the limit through PyNaCl (libsodium).

Machines here are noisy, so every rate is the median over interleaved rounds: in each round
the raw limits run, then every library (the order rotates each round) creates a batch of
fresh tokens and verifies them, then the raw limits run again; a round's limit is the mean of
its two limit runs.

Run with ``make bench`` or ``python bench/bench_peers.py``; ``--quick`` runs fewer, shorter
rounds (the tests use it).
"""

from __future__ import annotations

import argparse
import base64
import datetime
import importlib
import importlib.metadata
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import nacl.signing
from report import emit

from licentia.examples import PHOTO_SHA256, typical_claims
from licentia.keys import IssuerKey, IssuerKeySet, PrivateKey
from licentia.scope import IntendedUse
from licentia.status import StatusLists, StatusView, verify_snapshot
from licentia.token import LicenceClaims, approve, issuance_message, issue, parse_token
from licentia.verify import VerificationEngine
from licentia.vocabulary import DataCategory, Medium, Purpose

#: Import name -> distribution, for the peers of the ``bench`` extra.
PEER_MODULES = {
    "jwt": "pyjwt[crypto]",
    "pyseto": "pyseto",
    "biscuit_auth": "biscuit-python",
    "cryptography.hazmat.primitives.asymmetric.ed25519": "pyjwt[crypto]",
}
LIBRARIES = ("licentia", "pyjwt", "pyseto", "biscuit")
DISTRIBUTIONS = {
    "licentia": "licentia",
    "pyjwt": "pyjwt",
    "pyseto": "pyseto",
    "biscuit": "biscuit-python",
    "pynacl": "pynacl",
}
SIGNATURES = {"licentia": 2, "pyjwt": 1, "pyseto": 1, "biscuit": 1}
#: The use every library checks: it is in the typical licence's scope, literally.
USE = IntendedUse(DataCategory.IMAGE, Purpose.ADVERTISING, Medium.SOCIAL, "FR", PHOTO_SHA256)


def load_peers() -> dict[str, Any] | None:
    """The peer modules by import name, or ``None`` (after saying why) when one is missing.

    Typed as ``Any``: ``make test`` type-checks this file without the extra installed.
    """
    mods: dict[str, Any] = {}
    missing = []
    for name, dist in PEER_MODULES.items():
        try:
            mods[name] = importlib.import_module(name)
        except ImportError:
            missing.append(f"{name} ({dist})")
    if missing:
        print(
            "bench_peers.py: the peer libraries of the `bench` extra are not installed: "
            + ", ".join(missing)
            + ". Run `make bench` or `pip install -e '.[bench]'`.",
            file=sys.stderr,
        )
        return None
    return mods


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _word(value: DataCategory | Purpose | Medium) -> str:
    return value.name.lower().replace("_", "-")


def _words(values: frozenset[Any]) -> list[str]:
    return [_word(v) for v in sorted(values)]


def _iso(t: int) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def json_claims(c: LicenceClaims, *, iso_times: bool = False) -> dict[str, Any]:
    """The licence's claims as JSON: registered JWT names where one fits (jti, sub, iat,
    nbf, exp), every other field spelled out once."""
    when: Callable[[int], Any] = _iso if iso_times else int
    return {
        "jti": _b64(c.licence_id),
        "kid": _b64(c.issuer_key_id),
        "sub": _b64(c.holder_raw),
        "licensee": _b64(c.licensee.raw),
        "assets": [{"cat": _word(a.category), "sha256": _b64(a.sha256)} for a in c.assets],
        "scope": {
            "cat": _words(c.scope.categories),
            "pur": _words(c.scope.purposes),
            "med": _words(c.scope.media),
            "ter": sorted(c.scope.territories),
        },
        "iat": when(c.issued_at),
        "nbf": when(c.not_before),
        "exp": when(c.not_after),
        "max_uses": c.max_uses,
        "exclusive": c.exclusive,
        "status": c.status_index,
        "price": {
            "cur": c.price.currency,
            "amount": c.price.amount_minor,
            "per_use": c.price.per_use_minor,
            "fee_bps": c.price.fee_bps,
        },
    }


_USE_JSON = (
    _word(USE.category),
    _word(USE.purpose),
    _word(USE.medium),
    USE.territory,
    _b64(USE.asset_sha256),
)


def json_permits(p: dict[str, Any]) -> bool:
    """The intended use against JSON claims (the time window is the library's check)."""
    category, purpose, medium, territory, digest = _USE_JSON
    s = p["scope"]
    return (
        category in s["cat"]
        and purpose in s["pur"]
        and medium in s["med"]
        and territory in s["ter"]
        and any(a["cat"] == category and a["sha256"] == digest for a in p["assets"])
    )


def _date(t: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(t, datetime.UTC)


def biscuit_block(c: LicenceClaims) -> tuple[str, dict[str, Any]]:
    """The licence's claims as an authority block: Datalog source and its parameters."""
    params: dict[str, Any] = {
        "id": c.licence_id,
        "kid": c.issuer_key_id,
        "holder": c.holder_raw,
        "licensee": c.licensee.raw,
        "status": c.status_index,
        "iat": _date(c.issued_at),
        "nbf": _date(c.not_before),
        "exp": _date(c.not_after),
        "max_uses": c.max_uses,
        "exclusive": c.exclusive,
        "cur": c.price.currency,
        "amount": c.price.amount_minor,
        "per_use": c.price.per_use_minor,
        "fee": c.price.fee_bps,
        "cats": set(_words(c.scope.categories)),
        "purs": set(_words(c.scope.purposes)),
        "meds": set(_words(c.scope.media)),
        "ters": set(c.scope.territories),
    }
    lines = [
        "licence({id}, {kid}, {holder}, {licensee}, {status});",
        "validity({iat}, {nbf}, {exp});",
        "terms({max_uses}, {exclusive}, {cur}, {amount}, {per_use}, {fee});",
        "scope({cats}, {purs}, {meds}, {ters});",
    ]
    for i, a in enumerate(c.assets):
        lines.append(f"asset({{c{i}}}, {{d{i}}});")
        params[f"c{i}"] = _word(a.category)
        params[f"d{i}"] = a.sha256
    return "\n".join(lines), params


BISCUIT_AUTHORIZER = """
time({now});
check if time($t), validity($iat, $nbf, $exp), $t >= $nbf, $t < $exp;
check if scope($c, $p, $m, $r), $c.contains({cat}), $p.contains({pur}), $m.contains({med}),
    $r.contains({ter});
check if asset({cat}, {digest});
allow if true;
"""


#: The wall-clock budget of one authorization. biscuit's default (1 ms) is a guard against
#: hostile Datalog, measured in wall time: on a shared machine a process descheduled during
#: an authorization (~0.1 ms of work) overruns it and the token is denied, which ended the
#: full run ("a biscuit benchmark token was denied"). The bench's own tokens are not hostile;
#: the fact and iteration limits stay at biscuit's defaults.
BISCUIT_MAX_TIME = datetime.timedelta(seconds=5)


def biscuit_authorizer(biscuit: Any, now: int) -> Any:
    """The authorizer every biscuit token is checked with: the time window at ``now`` and
    the intended use, with :data:`BISCUIT_MAX_TIME` as its time budget."""
    authorizer = biscuit.AuthorizerBuilder(
        BISCUIT_AUTHORIZER,
        {
            "now": _date(now),
            "cat": _word(USE.category),
            "pur": _word(USE.purpose),
            "med": _word(USE.medium),
            "ter": USE.territory,
            "digest": USE.asset_sha256,
        },
    )
    limits = authorizer.limits()
    limits.max_time = BISCUIT_MAX_TIME
    authorizer.set_limits(limits)
    return authorizer


@dataclass
class Codec:
    """One library's way to create and verify a batch of tokens."""

    create: Callable[[Sequence[LicenceClaims]], list[str]]
    verify: Callable[[Sequence[str]], None]


def _rate(n: int, f: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    f()
    return n / (time.perf_counter() - t0)


def _measure(codec: Codec, claims: Sequence[LicenceClaims]) -> tuple[float, float]:
    """Tokens created per second from ``claims``, then those fresh tokens verified per second."""
    tokens: list[str] = []
    create = _rate(len(claims), lambda: tokens.extend(codec.create(claims)))
    verify = _rate(len(tokens), lambda: codec.verify(tokens))
    return create, verify


def _denied(library: str, why: object = None) -> SystemExit:
    because = "" if why is None else f": {why}"
    return SystemExit(f"bench_peers.py: a {library} benchmark token was denied{because}")


def codecs(peers: dict[str, Any], seed: bytes, now: int) -> dict[str, Codec]:
    """Every library's codec, all signing with the same Ed25519 key (from ``seed``)."""
    jwt = peers["jwt"]
    pyseto = peers["pyseto"]
    biscuit = peers["biscuit_auth"]
    ed25519 = peers["cryptography.hazmat.primitives.asymmetric.ed25519"]

    # Licentia: holder consent + exchange issuance; verified by the engine a platform runs.
    issuer = PrivateKey.from_seed(seed)
    holder = PrivateKey.from_seed(bytes([2]) * 32)
    keys = IssuerKeySet([IssuerKey(issuer.public, now - 86400)])
    view = StatusView(verify_snapshot(StatusLists().snapshot(issuer, 0, now), keys), 300)
    check_at = now + 60

    def licentia_create(claims: Sequence[LicenceClaims]) -> list[str]:
        out = []
        for c in claims:
            data = c.encode()
            out.append(issue(issuer, data, approve(holder, data)))
        return out

    def licentia_verify(tokens: Sequence[str]) -> None:
        engine = VerificationEngine(keys, view, cache_size=len(tokens))
        for t in tokens:
            if not engine.verify(t, USE, check_at).allowed:
                raise _denied("Licentia")

    # PyJWT, EdDSA: exp / nbf / iat required and checked against the clock.
    jwt_private = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
    jwt_public = jwt_private.public_key()
    jwt_options = {"require": ["exp", "nbf", "iat"]}

    def jwt_create(claims: Sequence[LicenceClaims]) -> list[str]:
        return [str(jwt.encode(json_claims(c), jwt_private, algorithm="EdDSA")) for c in claims]

    def jwt_verify(tokens: Sequence[str]) -> None:
        for t in tokens:
            p = jwt.decode(t, jwt_public, algorithms=["EdDSA"], options=jwt_options)
            if not json_permits(p):
                raise _denied("PyJWT")

    # pyseto, v4.public: exp / nbf (ISO 8601) checked against the clock by the library.
    paseto_private = pyseto.Key.from_asymmetric_key_params(4, d=seed)
    paseto_public = pyseto.Key.from_asymmetric_key_params(4, x=issuer.public.raw)

    def paseto_create(claims: Sequence[LicenceClaims]) -> list[str]:
        return [
            bytes(pyseto.encode(paseto_private, json_claims(c, iso_times=True))).decode("ascii")
            for c in claims
        ]

    def paseto_verify(tokens: Sequence[str]) -> None:
        for t in tokens:
            p = pyseto.decode(paseto_public, t, deserializer=json).payload
            if not json_permits(p):
                raise _denied("pyseto")

    # biscuit: the claims as facts; an authorizer checks the time and the intended use.
    biscuit_private = biscuit.PrivateKey.from_bytes(seed, biscuit.Algorithm.Ed25519)
    biscuit_public = biscuit.PublicKey.from_bytes(issuer.public.raw, biscuit.Algorithm.Ed25519)
    authorizer = biscuit_authorizer(biscuit, check_at)

    def biscuit_create(claims: Sequence[LicenceClaims]) -> list[str]:
        out = []
        for c in claims:
            source, params = biscuit_block(c)
            out.append(
                str(biscuit.BiscuitBuilder(source, params).build(biscuit_private).to_base64())
            )
        return out

    def biscuit_verify(tokens: Sequence[str]) -> None:
        for t in tokens:
            token = biscuit.Biscuit.from_base64(t, biscuit_public)
            try:
                authorizer.build(token).authorize()
            except biscuit.AuthorizationError as e:
                raise _denied("biscuit", e) from None

    return {
        "licentia": Codec(licentia_create, licentia_verify),
        "pyjwt": Codec(jwt_create, jwt_verify),
        "pyseto": Codec(paseto_create, paseto_verify),
        "biscuit": Codec(biscuit_create, biscuit_verify),
    }


def _version(library: str) -> str | None:
    try:
        return importlib.metadata.version(DISTRIBUTIONS[library])
    except importlib.metadata.PackageNotFoundError:
        return None


def main(argv: list[str] | None = None) -> int:
    """Run the side by side; exit 2 without the ``bench`` extra, 0 otherwise."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    args = ap.parse_args(argv)
    peers = load_peers()
    if peers is None:
        return 2
    rounds, per_round = (3, 100) if args.quick else (9, 700)

    # The clock is `now`: JWT and PASETO check the time window against it themselves.
    now = int(time.time())
    seed = bytes([1]) * 32
    issuer, holder, licensee = (PrivateKey.from_seed(bytes([i]) * 32) for i in (1, 2, 3))
    claims = [typical_claims(issuer, holder, licensee, now, i) for i in range(rounds * per_round)]
    lib = codecs(peers, seed, now)

    # The limit: PyNaCl's public API over a message of the licence's issuance size.
    first = claims[0].encode()
    parsed = parse_token(lib["licentia"].create([claims[0]])[0])
    raw_msg = b"licentia.v1.issuance\x00" + issuance_message(first, parsed.consent)
    sk = nacl.signing.SigningKey(seed)
    vk = sk.verify_key
    raw_sig = sk.sign(raw_msg).signature

    def raw_sign(n: int) -> None:
        for _ in range(n):
            sk.sign(raw_msg)

    def raw_verify(n: int) -> None:
        for _ in range(n):
            vk.verify(raw_msg, raw_sig)

    sizes = {name: len(lib[name].create(claims[:1])[0]) for name in LIBRARIES}
    rates: dict[tuple[str, str], list[float]] = {}
    ratios: dict[tuple[str, str], list[float]] = {}
    for r in range(rounds):
        batch = claims[r * per_round : (r + 1) * per_round]
        sign0 = _rate(per_round, lambda: raw_sign(per_round))
        verify0 = _rate(per_round, lambda: raw_verify(per_round))
        round_rates: dict[tuple[str, str], float] = {}
        for name in LIBRARIES[r % len(LIBRARIES) :] + LIBRARIES[: r % len(LIBRARIES)]:
            round_rates[name, "create"], round_rates[name, "verify"] = _measure(lib[name], batch)
        # The mean of the bracketing limit runs treats both sides alike.
        sign = (sign0 + _rate(per_round, lambda: raw_sign(per_round))) / 2
        verify = (verify0 + _rate(per_round, lambda: raw_verify(per_round))) / 2
        round_rates["pynacl", "sign"] = sign
        round_rates["pynacl", "verify"] = verify
        for (name, metric), rate in round_rates.items():
            limit = sign if metric in ("create", "sign") else verify
            rates.setdefault((name, metric), []).append(rate)
            ratios.setdefault((name, metric), []).append(rate / limit)

    return emit(results(sizes, rates, ratios))


def results(
    sizes: dict[str, int],
    rates: dict[tuple[str, str], list[float]],
    ratios: dict[tuple[str, str], list[float]],
) -> list[dict[str, Any]]:
    """One row per (library, metric): sizes, then the raw limits, then create and verify."""
    out: list[dict[str, Any]] = []

    def row(name: str, metric: str, **fields: Any) -> None:
        out.append(
            {"bench": f"peers.{name}.{metric}", "library": name, "metric": metric}
            | fields
            | {"target": None, "ok": True, "version": _version(name)}
        )

    for name in LIBRARIES:
        row(
            name,
            "size",
            ops_per_s=None,
            value=sizes[name],
            unit="chars",
            ratio=round(sizes[name] / sizes["licentia"], 3),
            limit="characters of the Licentia token of the same claims",
            signatures=SIGNATURES[name],
        )
    for metric, what in (("sign", "signatures/s"), ("verify", "verifications/s")):
        rate = round(statistics.median(rates["pynacl", metric]))
        row(
            "pynacl",
            metric,
            ops_per_s=rate,
            value=rate,
            unit=what,
            ratio=1.0,
            limit=f"itself: raw PyNaCl Ed25519 {what}, the limit of the {metric} ratios",
        )
    for metric, limit in (("create", "sign"), ("verify", "verify")):
        for name in LIBRARIES:
            rate = round(statistics.median(rates[name, metric]))
            ratio = statistics.median(ratios[name, metric])
            n = SIGNATURES[name]
            row(
                name,
                metric,
                ops_per_s=rate,
                value=rate,
                unit="tokens/s",
                ratio=round(ratio, 3),
                limit=f"raw PyNaCl Ed25519 {limit}/s",
                signatures=n,
                ratio_per_signature=round(ratio * n, 3),
                note=(
                    "ratio is per token; ratio_per_signature = ratio × 2 signatures (holder "
                    "consent + issuer) per token"
                    if n == 2
                    else "one signature per token: ratio_per_signature = ratio"
                ),
                rounds=[round(x, 3) for x in ratios[name, metric]],
            )
    return out


if __name__ == "__main__":
    sys.exit(main())
