"""Benchmark of the platform's embedded verifier, as ratios against a limit measured in the
same run.

Prints one JSON object per line, like ``bench_core.py``: ``bench``, ``ops_per_s``, ``ratio``,
``target``, ``limit``, ``ok``, and ``of_floor`` (bench/report.py): each line's goal is
``of_floor`` (ratio ÷ floor_ratio) ≥ 0.9.

- ``verifier.inline``: checks/s of :class:`licentia.clients.verifier.Verifier` connected to a
  real exchange (``licentia-server`` in its own process on ``127.0.0.1:0``, as a platform
  sees it: its revocation stream live, heartbeats flowing), over first-seen tokens of the
  typical licence (issue 2: both keys, *both signatures*: the holder approved each licence) —
  every check is a different licence with its own presentation, so each check verifies three
  Ed25519 signatures (issuer, holder approval, presentation) — ÷ (raw PyNaCl Ed25519
  verifications/s ÷ 3).
- ``verifier.inline.standing``: the same over licences that one standing rule of the holder
  approved. Every such token carries the same signed rule, whose signature the verifier checks
  once and remembers (keyed by the exact key, rule bytes and signature), so each check
  verifies two signatures (issuer, presentation): ÷ (raw ÷ 2).

The licences are issued beforehand (RequestLicence, then ApproveRequest with the holder's
signature; or RequestLicence alone, which the standing rule approves at once); the
presentations are signed beforehand too (the advertiser's work, not the platform's). Machines
here are noisy, so each ratio is the median of interleaved rounds: in each round the raw limit
runs, then one batch of each kind, then the limit again (the mean of the two is the round's
limit).

Run with ``python bench/bench_verifier.py``; ``--quick`` runs fewer, shorter rounds (the tests
use it).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped]
import nacl.signing
from exchange_process import (
    AUDIENCE,
    USE,
    ExchangeProcess,
    add_standing_rule,
    call,
    deposit,
    find_offer,
    licence_request,
    operator_key,
    pairwise_approval,
    register_advertiser,
    register_holder,
    register_platform,
)
from floors import checks_floor, presentation_floor, token_floor
from report import emit, line

from licentia import keys
from licentia.clients.channel import SignedChannel
from licentia.clients.verifier import Verifier, fetch_issuer_keys
from licentia.keys import PrivateKey
from licentia.methods import path
from licentia.presentation import present
from licentia.token import parse_token
from licentia.v1 import exchange_pb2

#: The goal of both lines: a share of their floor (report.line).
GOAL = 0.9
#: Signatures each check verifies, by kind of licence (a standing rule's once per rule).
SIGNATURES = {"approval": 3, "standing": 2}
ISSUERS = 8  # threads issuing licences during set-up


def setup(
    channel: grpc.Channel, count: int, data_dir: Path
) -> tuple[dict[str, list[str]], PrivateKey]:
    """Two holders with terms and the photo — one approves each request by hand, the other
    has a standing rule —, an advertiser funded by the operator of the exchange in
    ``data_dir``, a platform, and ``count`` licences of each kind issued to the advertiser.
    Returns the tokens by kind and the licensee key."""
    approver, holder, adv, platform = (PrivateKey.from_seed(bytes([i]) * 32) for i in (4, 1, 2, 3))
    ha, h, a, p = (SignedChannel(channel, k) for k in (approver, holder, adv, platform))
    register_holder(ha, "benchapprover")
    register_holder(h, "benchholder")
    add_standing_rule(h, holder)
    register_advertiser(a, "Bench Ads")
    deposit(SignedChannel(channel, operator_key(data_dir)), adv.public, 10**11, "bench")
    register_platform(p)

    refs = {holder: find_offer(a, "benchholder"), approver: find_offer(a, "benchapprover")}

    def request(who: PrivateKey) -> Any:
        return call(
            a,
            path(exchange_pb2, "RequestLicence"),
            licence_request(refs[who], int(time.time())),
            exchange_pb2.RequestLicenceResponse,
        )

    def standing(_: int) -> str:
        resp = request(holder)
        if not resp.HasField("licence"):
            raise RuntimeError("the standing rule did not issue the licence")
        return str(resp.licence.token)

    def approved(_: int) -> str:
        pending = request(approver).request
        # The approver consents with her pairwise key for the advertiser, as her wallet does.
        asked, _signed = pairwise_approval(
            approver, adv.public.raw, pending.request_id, pending.claims
        )
        resp = call(
            ha,
            path(exchange_pb2, "ApproveRequest"),
            asked,
            exchange_pb2.ApproveRequestResponse,
        )
        if not resp.HasField("licence"):
            raise RuntimeError("the approval did not issue the licence")
        return str(resp.licence.token)

    with ThreadPoolExecutor(ISSUERS) as pool:
        tokens = {
            "approval": list(pool.map(approved, range(count))),
            "standing": list(pool.map(standing, range(count))),
        }
    return tokens, adv


def _rate(n: int, f: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    f()
    return n / (time.perf_counter() - t0)


def measure(address: str, rounds: int, per_round: int, data_dir: Path) -> list[dict[str, Any]]:
    """Issue the licences, start a verifier, and run the interleaved rounds."""
    channel = grpc.insecure_channel(address)
    try:
        tokens, licensee = setup(channel, rounds * per_round, data_dir)
        now = int(time.time())
        work = {
            kind: [
                (t, present(licensee, parse_token(t).licence_id, AUDIENCE, USE, now)) for t in toks
            ]
            for kind, toks in tokens.items()
        }
        # The limit: PyNaCl's public verification API over a message of a licence's size.
        signer = nacl.signing.SigningKey(bytes(32))
        raw_msg = keys.signed_message(keys.ISSUANCE, tokens["approval"][0].encode())
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
            rates: dict[str, list[float]] = {kind: [] for kind in SIGNATURES}
            ratios: dict[str, list[float]] = {kind: [] for kind in SIGNATURES}
            floors: dict[str, list[float]] = {kind: [] for kind in SIGNATURES}
            first = parse_token(tokens["approval"][0])
            issuer_key = fetch_issuer_keys(SignedChannel(channel, None)).resolve(
                first.issuer_key_id
            )
            if issuer_key is None:
                raise SystemExit("the verifier does not know the exchange's issuer key")
            licensee_raw = licensee.public.raw

            def floor(kind: str, batch: list[tuple[str, str]]) -> None:
                for token, pres in batch:
                    token_floor(token, issuer_key.public.raw, consent=kind == "approval")
                    presentation_floor(pres, licensee_raw)

            # The checks floor reads the verifier's own live key set and status view.
            follower = verifier._follower

            def checks_only(batch: list[tuple[str, str]]) -> None:
                now, seen = int(time.time()), set[bytes]()
                for token, pres in batch:
                    checks_floor(
                        token, pres, follower.keys, follower.status, USE, AUDIENCE, now, seen
                    )

            checked: list[float] = []

            for r in range(rounds):
                limit = _rate(per_round, lambda: raw(per_round))
                for kind in SIGNATURES:
                    batch = work[kind][r * per_round : (r + 1) * per_round]

                    def checks(batch: list[tuple[str, str]] = batch) -> None:
                        for token, pres in batch:
                            d = verifier.check(token, pres, USE)
                            if not d.allowed:
                                raise SystemExit(f"benchmark check was denied: {d}")

                    rates[kind].append(_rate(per_round, checks))
                    floors[kind].append(_rate(per_round, partial(floor, kind, batch)))
                    if kind == "approval":
                        checked.append(_rate(per_round, partial(checks_only, batch)))
                # The mean of the bracketing limit runs treats both sides alike.
                limit = (limit + _rate(per_round, lambda: raw(per_round))) / 2
                for kind, sigs in SIGNATURES.items():
                    ratios[kind].append(rates[kind][-1] / (limit / sigs))
                    floors[kind][-1] /= limit / sigs
                checked[-1] /= limit / SIGNATURES["approval"]
            stats = verifier.stats
        finally:
            verifier.close()
    finally:
        channel.close()
    out = []
    for kind, name in (("approval", "verifier.inline"), ("standing", "verifier.inline.standing")):
        ratio = statistics.median(ratios[kind])
        out.append(
            {
                "bench": name,
                "ops_per_s": round(statistics.median(rates[kind])),
                "ratio": round(ratio, 3),
                "target": None,
                "limit": f"raw PyNaCl Ed25519 verify/s ÷ {SIGNATURES[kind]} signatures per check",
                "floor_ratio": round(statistics.median(floors[kind]), 3),
                "floor": (
                    "base64 + canonical parses of token and presentation + "
                    f"{SIGNATURES[kind]} signature checks, nothing else"
                ),
                **(
                    {
                        "checks_floor_ratio": round(statistics.median(checked), 3),
                        "checks_floor": (
                            "the floor and every check of the licence and presentation, inline"
                            " on the wire messages: no domain object, decision, cache or lock"
                        ),
                    }
                    if kind == "approval"
                    else {}
                ),
                "rounds": [round(x, 3) for x in ratios[kind]],
                "connected": stats.connected,
            }
        )
        line(out[-1], goal=GOAL)
    return out


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
            results = measure(exchange.address, rounds, per_round, data_dir)
    return emit(results)


if __name__ == "__main__":
    sys.exit(main())
