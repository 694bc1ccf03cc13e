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
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc  # type: ignore[import-untyped]
import nacl.signing

from licentia import keys
from licentia.keys import PrivateKey
from licentia.presentation import present
from licentia.token import parse_token
from licentia.v1 import exchange_pb2

if TYPE_CHECKING:  # mypy checks services/ and clients/ as their own packages (README, Layout)
    from bench.exchange_process import (
        AUDIENCE,
        USE,
        ExchangeProcess,
        add_standing_rule,
        call,
        deposit,
        licence_request,
        operator_key,
        register_advertiser,
        register_holder,
        register_platform,
    )
    from clients.channel import SignedChannel
    from clients.verifier import Verifier
else:  # run as a script: bench/ is on the path
    from exchange_process import (
        AUDIENCE,
        USE,
        ExchangeProcess,
        add_standing_rule,
        call,
        deposit,
        licence_request,
        operator_key,
        register_advertiser,
        register_holder,
        register_platform,
    )

    from licentia.clients.channel import SignedChannel
    from licentia.clients.verifier import Verifier

TARGET = 0.85
SIGNATURES_PER_CHECK = 3
ISSUERS = 8  # threads issuing licences during set-up


def setup(channel: grpc.Channel, count: int, data_dir: Path) -> tuple[list[str], PrivateKey]:
    """A holder with terms, the photo and a standing rule; an advertiser, funded by the
    operator of the exchange in ``data_dir``; a platform; and ``count`` licences issued to the
    advertiser. Returns the tokens and the licensee key."""
    holder, adv, platform = (PrivateKey.from_seed(bytes([i]) * 32) for i in (1, 2, 3))
    h, a, p = (SignedChannel(channel, k) for k in (holder, adv, platform))
    register_holder(h, "benchholder")
    add_standing_rule(h, holder)
    register_advertiser(a, "Bench Ads")
    deposit(SignedChannel(channel, operator_key(data_dir)), adv.public, 10**11, "bench")
    register_platform(p)

    def one(_: int) -> str:
        resp = call(
            a,
            "ExchangeService/RequestLicence",
            licence_request(holder.public, int(time.time())),
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
        data_dir = Path(tmp) / "data"
        with ExchangeProcess(data_dir) as exchange:
            result = measure(exchange.address, rounds, per_round, data_dir)
    print(json.dumps(result, ensure_ascii=False), flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
