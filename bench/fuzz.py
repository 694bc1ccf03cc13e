"""Coverage-guided fuzzing (atheris, libFuzzer) of the parsers an attacker feeds, bounded in time.

``make fuzz`` runs it. Each target runs in a subprocess of its own (atheris takes the process
over and ends it), with the ``licentia`` modules instrumented for coverage, a seed corpus of
valid artefacts, and an equal share of ``--seconds`` (default 60 for all targets together).
One JSON line per target: ``target``, ``runs``, ``seconds``, ``crashes`` (and ``corpus``, the
inputs libFuzzer kept for new coverage). The exit status is 1 if any target crashed, and the
crashing input is printed in hex on stderr with the exception it raised.

A crash is any exception a parser does not document — everything but ``LicentiaError``; the
Merkle verifiers may raise nothing — and any broken property:

- ``token``: ``parse_token`` on the envelope bytes (base64url-encoded here, so that libFuzzer
  mutates the protobuf itself), on raw text, and on claims bytes carried with genuine
  signatures; the engine allows nothing but the genuine token, and whatever parses under
  genuine signatures is exactly what ``LicenceClaims.decode`` makes of its bytes;
- ``rule``: standing rules as the holder signed them inside a token: authenticated only when
  the rule decodes and permits the claims;
- ``presentation``: ``parse_presentation`` and ``check_presentation``: a presentation holds only
  for the genuine licence, platform, use and time, and only then is its nonce recorded;
- ``status``: ``verify_snapshot`` on envelopes and on garbage snapshots the issuer signed (the
  bits are exactly ``ceil(bit_length / 8)`` bytes, within the caps), status events from the
  wire into a view (only in-range events apply, revoked bits stay revoked);
- ``request``: signature metadata: ``parse_request_metadata`` refuses with
  BAD_REQUEST_SIGNATURE, and a request verifies only if it is the signed one;
- ``checkpoint``: signed notes as bytes and as text (only the signed checkpoint opens),
  verifier keys (canonical or refused), garbage notes the log key signed (they open only as
  the checkpoint whose canonical body is the text signed);
- ``merkle``: ``verify_inclusion`` / ``verify_consistency`` on arbitrary sizes, indexes, hashes
  and proofs, and on genuine proofs of a small tree with bits flipped: never an exception,
  never True for anything but the genuine proof (or the trivial empty and one-entry cases).

Usage: ``python bench/fuzz.py [--seconds 60] [--runs N] [--target NAME ...]``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from google.protobuf.message import DecodeError

# A fuzzing child imports the Licentia modules under atheris' instrumentation, so that
# libFuzzer sees which of their branches each input reaches (the parent only runs children).
_CHILD = "--child" in sys.argv
try:
    import atheris
except ModuleNotFoundError:  # only a child needs it: `--help` and the parent run without
    if _CHILD:
        raise
    atheris = None
with atheris.instrument_imports(include=["licentia"]) if _CHILD else contextlib.nullcontext():
    from licentia import checkpoint, keys, merkle
    from licentia.encoding import b64url_decode, b64url_encode
    from licentia.errors import LicentiaError, Reason
    from licentia.examples import typical_claims, typical_rule
    from licentia.keys import IssuerKey, IssuerKeySet, PrivateKey
    from licentia.methods import path
    from licentia.nonces import MemoryNonceStore
    from licentia.presentation import check_presentation, parse_presentation, present
    from licentia.request import (
        HEADERS,
        parse_request_metadata,
        sign_request,
        verify_request,
    )
    from licentia.scope import IntendedUse
    from licentia.status import (
        MAX_STATUS_BITS,
        StatusEvent,
        StatusLists,
        StatusView,
        verify_snapshot,
    )
    from licentia.token import (
        LicenceClaims,
        StandingConsent,
        StandingRule,
        VerificationError,
        approve,
        issuance_message,
        issue,
        parse_token,
        sign_standing_rule,
    )
    from licentia.v1 import licence_pb2, registry_pb2, status_pb2
    from licentia.verify import VerificationEngine
    from licentia.vocabulary import Medium, Purpose

Target = Callable[[bytes], None]
#: Each target's factory: builds its fixtures (after the instrumented imports) and returns
#: the function libFuzzer calls, and the seed inputs.
FACTORIES: dict[str, Callable[[], tuple[Target, list[bytes]]]] = {}


def target(name: str) -> Callable[[Callable[[], tuple[Target, list[bytes]]]], Any]:
    def register(factory: Callable[[], tuple[Target, list[bytes]]]) -> Any:
        FACTORIES[name] = factory
        return factory

    return register


# -- the targets (run inside the child process only) --------------------------------------------

T = TypeVar("T")


def attempt(fn: Callable[[], T]) -> T | LicentiaError:
    """What ``fn`` returned, or the ``LicentiaError`` it raised (anything else is a crash)."""
    try:
        return fn()
    except LicentiaError as e:
        return e


class Fixtures:
    """Keys and genuine artefacts every target starts from."""

    def __init__(self) -> None:

        self.now = 1_800_000_000
        self.issuer = PrivateKey.from_seed(b"\x51" * 32)
        self.holder = PrivateKey.from_seed(b"\x52" * 32)
        self.licensee = PrivateKey.from_seed(b"\x53" * 32)
        self.caller = PrivateKey.from_seed(b"\x54" * 32)
        self.log_key = PrivateKey.from_seed(b"\x55" * 32)
        self.keys = IssuerKeySet([IssuerKey(self.issuer.public, self.now - 400 * 86400)])
        self.claims = typical_claims(self.issuer, self.holder, self.licensee, self.now)
        self.claims_bytes = self.claims.encode()
        self.token = issue(self.issuer, self.claims_bytes, approve(self.holder, self.claims_bytes))
        self.rule = typical_rule(self.holder, self.now)
        self.standing_token = issue(
            self.issuer, self.claims_bytes, sign_standing_rule(self.holder, self.rule)
        )
        asset = self.claims.assets[0]
        self.use = IntendedUse(
            asset.category, Purpose.ADVERTISING, Medium.ONLINE, "FR", asset.sha256
        )
        self.audience = "platform-1"
        self.presentation = present(
            self.licensee,
            self.claims.licence_id,
            self.audience,
            self.use,
            self.now,
            nonce=b"\x07" * 16,
        )
        status = StatusLists()
        status.declare(1, self.now + 86_400)
        status.revoke(1, 3)
        self.snapshot = status.snapshot(self.issuer, 1, self.now)
        self.view = StatusView(verify_snapshot(self.snapshot, self.keys), 3600)
        self.engine = VerificationEngine(self.keys, self.view, cache_size=0)
        self.nonce_store = MemoryNonceStore
        self.method = path(registry_pb2, "GetProfile")
        self.body = b"\x08\x01"
        self.metadata = sign_request(self.caller, self.method, self.body, self.now)
        self.origin = "licentia.example/log"
        self.checkpoint = checkpoint.Checkpoint(self.origin, 42, hashlib.sha256(b"r").digest())
        self.note = checkpoint.sign_checkpoint(self.checkpoint, self.origin, self.log_key)


@target("token")
def token_target() -> tuple[Target, list[bytes]]:

    f = Fixtures()
    genuine = {f.token, f.standing_token}

    def signed(claims: bytes) -> str:
        consent = approve(f.holder, claims)
        env = licence_pb2.SignedLicence(
            claims=claims,
            holder_signature=consent.signature,
            issuer_signature=f.issuer.sign(keys.ISSUANCE, issuance_message(claims, consent)),
        )
        return "lic1." + b64url_encode(env.SerializeToString(deterministic=True))

    def one(data: bytes) -> None:
        mode, payload = (data[0] % 3, data[1:]) if data else (0, b"")
        if mode == 0:
            text = "lic1." + b64url_encode(payload)
        elif mode == 1:
            text = payload.decode("utf-8", "surrogateescape")
        else:
            text = signed(payload)
        parsed = attempt(lambda: parse_token(text))
        if mode == 2 and isinstance(parsed, LicentiaError):
            assert parsed.reason in (Reason.MALFORMED, Reason.TOO_LARGE), parsed
        decision = f.engine.verify(text, f.use, f.now + 10)
        if mode < 2:
            assert not decision.allowed or text in genuine, "a changed token was allowed"
        elif not isinstance(parsed, LicentiaError):
            claims = LicenceClaims.decode(payload)
            assert claims == parsed.claims
            assert LicenceClaims.decode(claims.encode()) == claims
            if decision.allowed:
                assert claims.holder == f.holder.public
                assert claims.scope.check(f.use) == []

    seeds = [
        b"\x00" + b64url_decode(f.token[5:]),
        b"\x00" + b64url_decode(f.standing_token[5:]),
        b"\x01" + f.token.encode(),
        b"\x02" + f.claims_bytes,
    ]
    return one, seeds


@target("rule")
def rule_target() -> tuple[Target, list[bytes]]:

    f = Fixtures()

    def one(data: bytes) -> None:
        consent = StandingConsent(data, f.holder.sign(keys.STANDING_RULE, data))
        env = licence_pb2.SignedLicence(
            claims=f.claims_bytes,
            issuer_signature=f.issuer.sign(
                keys.ISSUANCE, issuance_message(f.claims_bytes, consent)
            ),
        )
        env.standing.rule = data
        env.standing.holder_signature = consent.signature
        try:
            parsed = parse_token("lic1." + b64url_encode(env.SerializeToString()))
        except LicentiaError:
            return
        try:
            parsed.verify(f.keys)
        except VerificationError:
            return
        rule = StandingRule.decode(data)
        assert rule.holder == f.holder.public
        assert rule.permits(f.claims) == []

    return one, [f.rule.encode()]


@target("presentation")
def presentation_target() -> tuple[Target, list[bytes]]:

    f = Fixtures()
    genuine_claims = licence_pb2.SignedPresentation.FromString(
        b64url_decode(f.presentation[5:])
    ).claims

    def one(data: bytes) -> None:
        mode, payload = (data[0] % 3, data[1:]) if data else (0, b"")
        if mode == 0:
            text = "lpr1." + b64url_encode(payload)
        elif mode == 1:
            text = payload.decode("utf-8", "surrogateescape")
        else:
            signed = licence_pb2.SignedPresentation(
                claims=payload, signature=f.licensee.sign(keys.PRESENTATION, payload)
            )
            text = "lpr1." + b64url_encode(signed.SerializeToString(deterministic=True))
        try:
            p = parse_presentation(text)
        except LicentiaError:
            return
        assert len(p.nonce) == 16
        assert 1 <= len(p.audience) <= 128
        nonces = f.nonce_store()
        reasons = check_presentation(
            p,
            licensee=f.licensee.public,
            licence_id=f.claims.licence_id,
            audience=f.audience,
            use=f.use,
            now=f.now,
            nonces=nonces,
        )
        if reasons:
            assert len(nonces) == 0, "a refused presentation burnt a nonce"
            return
        assert mode == 2 or text == f.presentation, "a changed presentation holds"
        assert (p.licence_id, p.audience, p.use) == (f.claims.licence_id, f.audience, f.use)
        assert abs(p.presented_at - f.now) <= 120
        assert len(nonces) == 1

    seeds = [
        b"\x00" + b64url_decode(f.presentation[5:]),
        b"\x01" + f.presentation.encode(),
        b"\x02" + genuine_claims,
    ]
    return one, seeds


@target("status")
def status_target() -> tuple[Target, list[bytes]]:

    f = Fixtures()
    inner = status_pb2.SignedStatusSnapshot.FromString(f.snapshot).snapshot

    def one(data: bytes) -> None:
        mode, payload = (data[0] % 3, data[1:]) if data else (0, b"")
        if mode == 2:
            try:
                msg = status_pb2.StatusEvent.FromString(payload)
            except DecodeError:
                return
            view = StatusView(verify_snapshot(f.snapshot, f.keys), 3600)
            try:
                event = StatusEvent.from_proto(msg)
            except LicentiaError:
                return
            assert event.sequence > 0
            assert event.status_index < MAX_STATUS_BITS
            refusal = attempt(lambda: view.apply(event))
            if refusal is not None:
                assert isinstance(refusal, LicentiaError)
                assert refusal.reason is Reason.STATUS_SEQUENCE_GAP
                assert view.sequence == 1
                return
            assert view.check(1, 3, f.now) is Reason.REVOKED
            if event.sequence == 2:  # set, or a list dropped before the snapshot (ignored)
                got = view.check(event.status_list, event.status_index, 0)
                assert got in (Reason.REVOKED, Reason.STATUS_LIST_DROPPED)
            return
        if mode == 1:
            payload = status_pb2.SignedStatusSnapshot(
                snapshot=payload, signature=f.issuer.sign(keys.STATUS_SNAPSHOT, payload)
            ).SerializeToString(deterministic=True)
        try:
            snap = verify_snapshot(payload, f.keys)
        except LicentiaError:
            return
        assert mode == 1 or payload == f.snapshot, "a changed snapshot verified"
        for x in snap.lists:
            assert x.bit_length <= MAX_STATUS_BITS
            assert len(x.bits) == (x.bit_length + 7) // 8

    seeds = [
        b"\x00" + f.snapshot,
        b"\x01" + inner,
        b"\x02"
        + status_pb2.StatusEvent(sequence=2, status_index=9, revoked_at=1).SerializeToString(),
    ]
    return one, seeds


@target("request")
def request_target() -> tuple[Target, list[bytes]]:

    f = Fixtures()
    genuine = parse_request_metadata(f.metadata)
    names = [*HEADERS, "x-licentia-other", "grpc-timeout"]

    def one(data: bytes) -> None:
        fdp = atheris.FuzzedDataProvider(data)
        items: list[tuple[str, str | bytes]] = list(f.metadata)
        for _ in range(fdp.ConsumeIntInRange(0, 4)):
            op = fdp.ConsumeIntInRange(0, 3)
            i = fdp.ConsumeIntInRange(0, max(len(items) - 1, 0))
            if op == 0 and items:
                del items[i]
            elif op == 1 and items:
                items.insert(i, items[i])
            elif op == 2:
                value: str | bytes = (
                    fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 300))
                    if fdp.ConsumeBool()
                    else fdp.ConsumeUnicode(fdp.ConsumeIntInRange(0, 300))
                )
                name = names[fdp.ConsumeIntInRange(0, len(names) - 1)]
                items.insert(i, (name, value))
            elif items:
                items[i] = (items[i][0], fdp.ConsumeUnicode(fdp.ConsumeIntInRange(0, 300)))
        method = f.method if fdp.ConsumeBool() else fdp.ConsumeUnicode(40)
        signed = attempt(lambda: parse_request_metadata(items))
        if isinstance(signed, LicentiaError):
            assert signed.reason is Reason.BAD_REQUEST_SIGNATURE
            return
        nonces = f.nonce_store()
        try:
            verify_request(signed, method, f.body, f.now, nonces)
        except LicentiaError:
            assert len(nonces) == 0, "a refused request burnt a nonce"
            return
        assert signed == genuine, "a changed request verified"
        assert method == f.method, "a request verified for another method"

    return one, [b"", b"\x00" * 8]


@target("checkpoint")
def checkpoint_target() -> tuple[Target, list[bytes]]:

    f = Fixtures()
    vkey = checkpoint.vkey(f.origin, f.log_key.public)

    def one(data: bytes) -> None:
        mode, payload = (data[0] % 4, data[1:]) if data else (0, b"")
        text = payload.decode("utf-8", "surrogateescape")
        if mode < 2:
            note: str | bytes = payload if mode == 0 else text
            try:
                opened = checkpoint.open_checkpoint(note, f.origin, f.log_key.public, f.origin)
            except LicentiaError:
                return
            assert opened == f.checkpoint, "a changed note opened as another checkpoint"
        elif mode == 2:
            try:
                name, key_id, public = checkpoint.parse_vkey(text)
            except LicentiaError:
                return
            assert checkpoint.vkey(name, public) == text
            assert checkpoint.key_id(name, public) == key_id
        else:
            try:
                signed = checkpoint.sign_note(text, "log", f.log_key)
            except LicentiaError:
                return
            origin = text.split("\n", 1)[0]
            try:
                cp = checkpoint.open_checkpoint(signed, "log", f.log_key.public, origin)
            except LicentiaError:
                return
            assert cp.body() == text

    seeds = [
        b"\x00" + f.note.encode(),
        b"\x01" + f.note.encode(),
        b"\x02" + vkey.encode(),
        b"\x03" + f.checkpoint.body().encode(),
    ]
    return one, seeds


@target("merkle")
def merkle_target() -> tuple[Target, list[bytes]]:

    def one(data: bytes) -> None:
        fdp = atheris.FuzzedDataProvider(data)
        if fdp.ConsumeBool():  # a genuine proof of a small tree, with bits flipped
            n = fdp.ConsumeIntInRange(1, 40)
            entries = [i.to_bytes(2, "big") for i in range(n)]
            nodes = merkle.MemoryNodes.from_entries(entries)
            old = fdp.ConsumeIntInRange(1, n)
            index = fdp.ConsumeIntInRange(0, old - 1)
            inclusion = merkle.inclusion_proof(index, old, nodes)
            consistency = merkle.consistency_proof(old, n, nodes)
            flips = [fdp.ConsumeIntInRange(0, 255) for _ in range(4)]
            where = fdp.ConsumeIntInRange(0, 1 << 16)
            old_root, new_root = merkle.root(old, nodes), merkle.root(n, nodes)

            def flipped(proof: list[bytes]) -> list[bytes]:
                if not proof:
                    return proof
                i = where % len(proof)
                raw = bytearray(proof[i])
                for k, x in enumerate(flips):
                    raw[(where + k) % 32] ^= x
                return [*proof[:i], bytes(raw), *proof[i + 1 :]]

            changed = any(flips)
            ok = merkle.verify_inclusion(entries[index], index, old, flipped(inclusion), old_root)
            assert ok is (not changed or not inclusion)
            ok = merkle.verify_consistency(old, n, old_root, new_root, flipped(consistency))
            assert ok is (not changed or not consistency)
            return
        size = fdp.ConsumeIntInRange(0, 1 << 64) - (1 << 62)
        index = fdp.ConsumeIntInRange(0, 1 << 64) - (1 << 62)
        proof: list[Any] = [
            fdp.ConsumeBytes(fdp.ConsumeIntInRange(30, 34))
            for _ in range(fdp.ConsumeIntInRange(0, 70))
        ]
        leaf = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 8))
        root = fdp.ConsumeBytes(32)
        other = fdp.ConsumeBytes(32)
        if fdp.ConsumeBool():
            proof = [*proof, None, "x"]
        included = merkle.verify_inclusion(leaf, index, size, proof, root)
        assert included is False or (
            (index, size, proof, root) == (0, 1, [], merkle.leaf_hash(leaf))
        ), "garbage proved an inclusion"
        consistent = merkle.verify_consistency(index, size, root, other, proof)
        assert consistent is False or (
            proof == []
            and ((index == 0 and root == merkle.EMPTY_ROOT) or (index == size and root == other))
        ), "garbage proved a consistency"

    return one, [b"\x01" * 64, b"\x00" * 200]


# -- running -----------------------------------------------------------------------------------


def child(name: str, libfuzzer_args: list[str], corpus: str) -> None:
    """Fuzz one target in this process (atheris ends the process)."""

    one, seeds = FACTORIES[name]()
    for i, seed in enumerate(seeds):
        (Path(corpus) / f"seed-{i}").write_bytes(seed)
    atheris.Setup([sys.argv[0], *libfuzzer_args, corpus], one)
    atheris.Fuzz()


def run(name: str, seconds: int, runs: int | None) -> dict[str, Any]:
    """Fuzz ``name`` in a subprocess; its figures, and the crash when there is one."""
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{name}-") as tmp:
        corpus = Path(tmp) / "corpus"
        artifacts = Path(tmp) / "artifacts"
        corpus.mkdir()
        artifacts.mkdir()
        args = [
            f"-max_total_time={seconds}",
            "-print_final_stats=1",
            f"-artifact_prefix={artifacts}/",
            "-timeout=20",
            "-rss_limit_mb=2048",
            "-max_len=8192",
        ]
        if runs is not None:
            args.append(f"-runs={runs}")
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, __file__, "--child", name, "--corpus", str(corpus), "--", *args],
            capture_output=True,
            text=True,
            errors="replace",
            check=False,
        )
        elapsed = time.monotonic() - started
        output = proc.stdout + proc.stderr
        found = sorted(artifacts.iterdir())
        stat = re.search(r"stat::number_of_executed_units:\s*(\d+)", output)
        result: dict[str, Any] = {
            "target": name,
            "runs": int(stat.group(1)) if stat else 0,
            "seconds": round(elapsed, 1),
            "crashes": len(found) if found else int(proc.returncode != 0),
            "corpus": sum(1 for p in corpus.iterdir() if not p.name.startswith("seed-")),
        }
        if result["crashes"]:
            result["exit"] = proc.returncode
            tail = "\n".join(output.splitlines()[-40:])
            print(f"--- {name}: crash (exit {proc.returncode})\n{tail}", file=sys.stderr)
            for path in found:
                print(f"--- {name}: {path.name}: {path.read_bytes().hex()}", file=sys.stderr)
        return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=int, default=60, help="total, split across targets")
    parser.add_argument("--runs", type=int, default=None, help="at most this many per target")
    parser.add_argument("--target", action="append", choices=sorted(FACTORIES), default=None)
    parser.add_argument("--child", choices=sorted(FACTORIES), help=argparse.SUPPRESS)
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    parser.add_argument("libfuzzer", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.libfuzzer, args.corpus)
        return 0
    if atheris is None:
        print(
            "fuzz.py: atheris is not installed: `make fuzz` installs it (the `fuzz` extra)",
            file=sys.stderr,
        )
        return 2
    names = args.target or list(FACTORIES)
    # Each target gets an equal share of the time left, less what starting a process costs
    # (measured on the previous target), so that the whole run keeps to --seconds.
    deadline = time.monotonic() + args.seconds
    overhead = 2.0
    crashed = False
    for i, name in enumerate(names):
        share = max(1, int((deadline - time.monotonic()) / (len(names) - i) - overhead))
        result = run(name, share, args.runs)
        overhead = min(max(result["seconds"] - share, 0.5), 10.0)
        crashed |= bool(result["crashes"])
        print(json.dumps(result), flush=True)
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
