"""Benchmark of the platform's embedded verifier, as a ratio against a limit measured in the
same run.

Prints one JSON object, like ``bench_core.py``: ``bench``, ``ops_per_s``, ``ratio``,
``target``, ``limit``, ``ok``.

- ``verifier.inline``: checks/s of :class:`licentia.clients.verifier.Verifier` connected to a
  real exchange (``licentia-server`` in its own process on ``127.0.0.1:0``, as a platform
  sees it: its revocation stream live, heartbeats flowing), over first-seen tokens — every
  check is a different licence with its own presentation, so each check verifies three
  Ed25519 signatures (issuer, holder consent, presentation) — ÷ (raw PyNaCl Ed25519
  verifications/s ÷ 3).

The licences are issued beforehand, each by one RequestLicence that the holder's standing
rule approves at once; the presentations are signed beforehand too (the advertiser's work,
not the platform's). Machines here are noisy, so the ratio is the median of interleaved
rounds: in each round the raw limit runs, then one batch of checks, then the limit again (the
mean of the two is the round's limit).

Run with ``python bench/bench_verifier.py``; ``--quick`` runs fewer, shorter rounds (the tests
use it).
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import grpc  # type: ignore[import-untyped]
import nacl.signing

from licentia import keys
from licentia.examples import PHOTO_SHA256, typical_rule
from licentia.keys import PrivateKey
from licentia.presentation import present
from licentia.scope import IntendedUse
from licentia.token import parse_token, sign_standing_rule
from licentia.v1 import exchange_pb2, ledger_pb2, licence_pb2, records_pb2, registry_pb2
from licentia.vocabulary import DataCategory, Medium, Purpose

if TYPE_CHECKING:  # mypy checks services/ and clients/ as their own packages (README, Layout)
    from clients.channel import SignedChannel
    from clients.verifier import Verifier
else:
    from licentia.clients.channel import SignedChannel
    from licentia.clients.verifier import Verifier

DAY = 86400
TARGET = 0.85
SIGNATURES_PER_CHECK = 3
AUDIENCE = "benchplatform"
ISSUERS = 8  # threads issuing licences during set-up
USE = IntendedUse(
    DataCategory.IMAGE, Purpose.PERSONALISED_ADVERTISING, Medium.ONLINE, "FR", PHOTO_SHA256
)
TERMS = records_pb2.Terms(
    categories=cast("Any", [int(DataCategory.IMAGE), int(DataCategory.NAME)]),
    allowed_purposes=cast("Any", [int(Purpose.MARKETING)]),
    media=cast("Any", [int(Medium.ONLINE), int(Medium.SOCIAL)]),
    territories=["EU"],
    currency="EUR",
    price_per_day_minor=100,
    max_term_seconds=90 * DAY,
)
SCOPE = licence_pb2.Scope(
    categories=cast("Any", [int(DataCategory.IMAGE)]),
    purposes=cast("Any", [int(Purpose.ADVERTISING)]),
    media=cast("Any", [int(Medium.ONLINE)]),
    territories=["FR"],
)


def _call(rpc: SignedChannel, method: str, request: Any, response_cls: type[Any]) -> Any:
    return rpc.unary(f"/licentia.v1.{method}", request, response_cls)


def setup(channel: grpc.Channel, count: int, data_dir: Path) -> tuple[list[str], PrivateKey]:
    """A holder with terms, the photo and a standing rule; an advertiser, funded by the
    operator of the exchange in ``data_dir``; a platform; and ``count`` licences issued to the
    advertiser. Returns the tokens and the licensee key."""
    holder, adv, platform = (PrivateKey.from_seed(bytes([i]) * 32) for i in (1, 2, 3))
    h, a, p = (SignedChannel(channel, k) for k in (holder, adv, platform))
    _call(
        h,
        "RegistryService/RegisterHolder",
        registry_pb2.RegisterHolderRequest(handle="benchholder", display_name="Bench"),
        registry_pb2.RegisterHolderResponse,
    )
    _call(
        h,
        "RegistryService/DeclareAsset",
        registry_pb2.DeclareAssetRequest(
            category=cast("Any", int(DataCategory.IMAGE)), sha256=PHOTO_SHA256, label="photo"
        ),
        registry_pb2.DeclareAssetResponse,
    )
    _call(
        h,
        "RegistryService/SetTerms",
        registry_pb2.SetTermsRequest(terms=TERMS),
        registry_pb2.SetTermsResponse,
    )
    consent = sign_standing_rule(holder, typical_rule(holder, int(time.time())))
    _call(
        h,
        "ExchangeService/AddStandingRule",
        exchange_pb2.AddStandingRuleRequest(
            consent=licence_pb2.StandingConsent(
                rule=consent.rule_bytes, holder_signature=consent.signature
            )
        ),
        exchange_pb2.AddStandingRuleResponse,
    )
    _call(
        a,
        "RegistryService/RegisterAdvertiser",
        registry_pb2.RegisterAdvertiserRequest(organisation="Bench Ads", country="FR"),
        registry_pb2.RegisterAdvertiserResponse,
    )
    operator = PrivateKey.from_seed((data_dir / "operator.key").read_bytes())
    _call(
        SignedChannel(channel, operator),
        "LedgerService/Deposit",
        ledger_pb2.DepositRequest(
            advertiser_key=adv.public.raw, amount_minor=10**11, reference="bench"
        ),
        ledger_pb2.DepositResponse,
    )
    _call(
        p,
        "RegistryService/RegisterPlatform",
        registry_pb2.RegisterPlatformRequest(platform_id=AUDIENCE, name="Bench platform"),
        registry_pb2.RegisterPlatformResponse,
    )

    def one(_: int) -> str:
        now = int(time.time())
        resp = _call(
            a,
            "ExchangeService/RequestLicence",
            exchange_pb2.RequestLicenceRequest(
                holder_key=holder.public.raw,
                asset_sha256=[PHOTO_SHA256],
                scope=SCOPE,
                not_before=now,
                not_after=now + 30 * DAY,
                max_uses=10,
                offered_price_minor=30 * 100,
            ),
            exchange_pb2.RequestLicenceResponse,
        )
        if not resp.HasField("licence"):
            raise RuntimeError("the standing rule did not issue the licence")
        return str(resp.licence.token)

    with ThreadPoolExecutor(ISSUERS) as pool:
        tokens = list(pool.map(one, range(count)))
    return tokens, adv


def _rate(n: int, f: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    f()
    return n / (time.perf_counter() - t0)


def measure(address: str, rounds: int, per_round: int, data_dir: Path) -> dict[str, Any]:
    """Issue the licences, start a verifier, and run the interleaved rounds."""
    channel = grpc.insecure_channel(address)
    try:
        tokens, licensee = setup(channel, rounds * per_round, data_dir)
        now = int(time.time())
        work = [
            (t, present(licensee, parse_token(t).licence_id, AUDIENCE, USE, now)) for t in tokens
        ]
        # The limit: PyNaCl's public verification API over a message of a licence's size.
        signer = nacl.signing.SigningKey(bytes(32))
        raw_msg = keys.signed_message(keys.ISSUANCE, tokens[0].encode())
        raw_sig = signer.sign(raw_msg).signature
        vk = signer.verify_key

        def raw(n: int) -> None:
            for _ in range(n):
                vk.verify(raw_msg, raw_sig)

        verifier = Verifier(channel, AUDIENCE, staleness_seconds=30)
        verifier.start()
        try:
            deadline = time.monotonic() + 10
            while not verifier.connected:  # measure with the feed live: a heartbeat arrived
                if time.monotonic() > deadline:
                    raise SystemExit("the verifier did not connect to the revocation stream")
                time.sleep(0.05)
            rates, ratios = [], []
            for r in range(rounds):
                batch = work[r * per_round : (r + 1) * per_round]
                limit = _rate(per_round, lambda: raw(per_round))

                def checks(batch: list[tuple[str, str]] = batch) -> None:
                    for token, pres in batch:
                        d = verifier.check(token, pres, USE)
                        if not d.allowed:
                            raise SystemExit(f"benchmark check was denied: {d}")

                rate = _rate(per_round, checks)
                # The mean of the bracketing limit runs treats both sides alike.
                limit = (limit + _rate(per_round, lambda: raw(per_round))) / 2
                rates.append(rate)
                ratios.append(rate / (limit / SIGNATURES_PER_CHECK))
            stats = verifier.stats
        finally:
            verifier.close()
    finally:
        channel.close()
    ratio = statistics.median(ratios)
    return {
        "bench": "verifier.inline",
        "ops_per_s": round(statistics.median(rates)),
        "ratio": round(ratio, 3),
        "target": TARGET,
        "limit": "raw PyNaCl Ed25519 verify/s ÷ 3 signatures per check",
        "ok": ratio >= TARGET,
        "rounds": [round(x, 3) for x in ratios],
        "connected": stats.connected,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit 1 if the target is missed."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    args = ap.parse_args(argv)
    rounds, per_round = (3, 100) if args.quick else (7, 300)
    with tempfile.TemporaryDirectory(prefix="licentia-bench-") as tmp:
        # The exchange runs in its own process, as it does for any platform: the verifier's
        # process holds only the verifier (and the bench's own calls to set things up).
        port_file = Path(tmp) / "port"
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "licentia.services.server",
                "--data-dir",
                str(Path(tmp) / "data"),
                "--listen",
                "127.0.0.1:0",
                "--port-file",
                str(port_file),
                "--heartbeat-seconds",
                "0.5",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while not (port_file.exists() and port_file.read_text().strip()):
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the exchange did not start")
                time.sleep(0.05)
            result = measure(
                f"127.0.0.1:{port_file.read_text().strip()}", rounds, per_round, Path(tmp) / "data"
            )
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    print(json.dumps(result, ensure_ascii=False), flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
