"""Fuzzing every RPC of every service the exchange serves, over the wire, against a real exchange
on 127.0.0.1:0.

The methods are enumerated from the generated descriptors of ``licentia.v1`` (every service of
every ``*_pb2`` module, so a new RPC or a new service is fuzzed without a change here), and
the test checks that the exchange serves exactly those services. Each method receives:

- raw random bytes;
- protobuf garbage built from its input descriptor at the wire level: its field numbers with
  random payloads, wrong and invalid wire types, lying lengths, over-long varints, invalid
  UTF-8, unknown and reserved field numbers, long packed lists, deep nesting;
- well-typed messages with random values, built by walking the descriptor through the
  protobuf API: integers at every boundary (negative, 2^31, 2^32, 2^63, 2^64 - 1), text with
  control characters and any Unicode, random bytes, unknown enum numbers, nested messages,
  long repeated fields; biased towards the world's real keys, ids, digests, token and
  presentation so that calls get past the first checks;
- valid messages truncated at every length class, and padded past the method's own cap
  (TOO_LARGE) and past the server's transport cap (RESOURCE_EXHAUSTED from gRPC itself);
- for Verify / VerifyStream (and ReportUse), a valid check (a fresh presentation) mutated in
  its token, its presentation or its intended use;
- an empty request with the holder's genuine signature headers mutated: dropped, repeated,
  edited, overlong, another key's, a timestamp out of the window or written otherwise;

each unsigned, and signed by a registered holder, advertiser and platform, by the operator
and by an unregistered key (the server streams read at most a few messages under a short
deadline; VerifyStream sends several messages). For every call:

- the status code is never INTERNAL or UNKNOWN;
- a refusal carries a ``google.rpc.ErrorInfo`` (domain ``licentia.v1``) whose reason travels
  under its own status code (the one exception: a message past the transport cap, refused by
  gRPC before any Licentia code runs, is RESOURCE_EXHAUSTED without one);
- no response with an ``allowed`` field (VerifyResponse) says ALLOW, and ReportUse (which
  counts a use only after an ALLOW) never succeeds;
- **no stored change for a refused call**: every table of the SQLite database, read through
  a separate read-only connection, is dumped before and after each call; after a refusal the
  two dumps must be equal.

Why "after a refusal" and not "after every call": fuzzed calls signed by a registered party
may be accepted, and an accepted call may legitimately change what is stored (a random but
valid UpdateProfile, SetObjection, DeclareAsset, RequestLicence or EraseAssets, a statement
that settles accruals, a Deposit by the operator). Those calls are not errors, and excluding
them would need a second, hand-kept list of which methods write; instead the state is
compared around *each* call (calls are sequential and the exchange has no background writer),
so an accepted change is simply the new baseline for the next call. The fuzzing holder and
advertiser are not the parties of the licence the ALLOW control uses (the fuzzing platform,
which checks it, can change nothing the check depends on), so whatever they manage to
change, the control licence stays intact. (By design some refusals
do record an outcome: an approval refused for an exclusivity conflict marks its request
FAILED, a request found expired is marked EXPIRED. Both need a holder's genuine consent or a
week to pass; random input reaches neither.)

Hypothesis is derandomized and keeps no database, so CI explores the same examples each run;
``LICENTIA_FUZZ_SCALE=N`` multiplies the number of examples for a longer hunt.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import pkgutil
import secrets
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

import grpc  # type: ignore[import-untyped]
import pytest
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from google.rpc import error_details_pb2  # type: ignore[import-untyped]
from grpc_status import rpc_status  # type: ignore[import-untyped]
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import licentia.v1
from licentia import methods
from licentia.errors import Reason
from licentia.keys import PrivateKey
from licentia.presentation import present
from licentia.request import sign_request
from licentia.services.app import DB_FILE, OPERATOR_KEY_FILE, SERVICES
from licentia.services.deps import Settings
from licentia.services.errors import STATUS_OF
from licentia.services.runtime import ServerSettings
from licentia.v1 import licence_pb2, records_pb2, verification_pb2

from ..wire import delimited, field_key, varint
from .exchange_harness import (
    PHOTO_SHA,
    VOICE_SHA,
    Exchange,
    Party,
    add_standing_rule,
    approve_request,
    issue_licence,
    photo_rule,
    photo_use,
    register_advertiser,
    register_holder,
    register_platform,
    report_use,
    request_licence,
    start_exchange,
)

C = grpc.StatusCode
#: A message descriptor (the stubs know two kinds: protobuf's Python one and upb's).
Descriptor: TypeAlias = Any
DAY = 86400
#: gRPC's own cap on an incoming message (the server's ``max_receive_bytes``).
TRANSPORT_CAP = ServerSettings().max_receive_bytes
#: How long a response stream is read, and how many of its messages at most.
STREAM_SECONDS = 1.0
STREAM_MESSAGES = 2
#: ``LICENTIA_FUZZ_SCALE=10`` runs ten times the examples (a longer hunt than CI's).
SCALE = int(os.environ.get("LICENTIA_FUZZ_SCALE", "1"))
FUZZ = settings(
    max_examples=12 * SCALE,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)


# -- every method of every service, from the descriptors ------------------------------------


@dataclass(frozen=True)
class Rpc:
    """One method, as its service descriptor defines it."""

    service: str
    name: str
    input: Descriptor
    output: Descriptor
    client_streaming: bool
    server_streaming: bool

    @property
    def path(self) -> str:
        return f"/{self.service}/{self.name}"

    def __str__(self) -> str:
        return self.name


def _discover() -> list[Rpc]:
    rpcs = []
    for info in pkgutil.iter_modules(licentia.v1.__path__):
        if not info.name.endswith("_pb2"):
            continue
        module = importlib.import_module(f"licentia.v1.{info.name}")
        for svc in module.DESCRIPTOR.services_by_name.values():
            for md in svc.methods:
                rpcs.append(
                    Rpc(
                        svc.full_name,
                        md.name,
                        md.input_type,
                        md.output_type,
                        md.client_streaming,
                        md.server_streaming,
                    )
                )
    return sorted(rpcs, key=lambda r: r.path)


RPCS = _discover()
BY_NAME = {r.name: r for r in RPCS}
SIGNERS = ("unsigned", "holder", "advertiser", "platform", "operator", "stranger")
#: Refusals of who is calling, before any message is read.
ADMISSION = (Reason.BAD_REQUEST_SIGNATURE, Reason.UNKNOWN_KEY, Reason.NOT_OWNER)


def test_every_rpc_of_every_served_service_is_fuzzed() -> None:
    served = {f"licentia.v1.{name}" for _, name, _ in SERVICES.values()}
    assert {r.service for r in RPCS} == served
    assert len(BY_NAME) == len(RPCS)  # method names are unique across services
    assert len(RPCS) >= 42
    assert {"Verify", "VerifyStream", "GetConsistencyProof", "Deposit"} <= set(BY_NAME)


# -- the world and the wire -----------------------------------------------------------------


@dataclass
class Outcome:
    """What one call did."""

    code: Any
    reason: Reason | None
    responses: list[bytes]

    @property
    def refused(self) -> bool:
        return self.code not in (C.OK, C.DEADLINE_EXCEEDED)


@dataclass(repr=False)
class World:
    """A running exchange, the parties that fuzz it, and a licence nobody fuzzing can touch."""

    ex: Exchange
    keys: dict[str, PrivateKey | None]
    owner: Party
    licensee: Party
    platform: Party
    licence: records_pb2.LicenceRecord
    caps: dict[str, int]
    bytes_values: list[bytes]
    text_values: list[str]
    db: sqlite3.Connection
    channel: Any = None
    counts: dict[str, int] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"World({self.ex.address})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """How Hypothesis prints it in a failing example (not field by field)."""
        printer.text(repr(self))

    def verify_request(self) -> verification_pb2.VerifyRequest:
        """A check the exchange must ALLOW once: the licence, a fresh presentation, the use."""
        use = photo_use()
        pres = present(
            self.licensee.key, self.licence.licence_id, "photoshare", use, int(time.time())
        )
        return verification_pb2.VerifyRequest(
            token=self.licence.token, presentation=pres, use=use.to_proto()
        )

    def dump(self) -> dict[str, list[str]]:
        """Every row of every table, read in one snapshot through a read-only connection."""
        c = self.db
        c.execute("BEGIN")
        try:
            names = [n for (n,) in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            return {n: sorted(repr(r) for r in c.execute(f'SELECT * FROM "{n}"')) for n in names}
        finally:
            c.execute("COMMIT")

    def send(
        self,
        rpc: Rpc,
        bodies: Sequence[bytes],
        signer: str,
        *,
        control: bool = False,
        metadata: Sequence[tuple[str, str | bytes]] | None = None,
    ) -> Outcome:
        """Send ``bodies`` (one, unless the method takes a stream) to ``rpc`` as ``signer``
        (or with exactly ``metadata``) and check every invariant of the module docstring."""
        assert bodies
        before = self.dump()
        key = self.keys[signer]
        body = b"" if rpc.client_streaming else bodies[0]
        if metadata is None:
            metadata = sign_request(key, rpc.path, body, int(time.time())) if key else ()
        responses: list[bytes] = []
        code, error = C.OK, None
        try:
            if not (rpc.client_streaming or rpc.server_streaming):
                call = self.channel.unary_unary(rpc.path)
                responses.append(call(body, metadata=metadata, timeout=10))
            else:
                limit = len(bodies) if rpc.client_streaming else STREAM_MESSAGES
                if rpc.client_streaming:
                    stream = self.channel.stream_stream(rpc.path)(
                        iter(bodies), metadata=metadata, timeout=STREAM_SECONDS
                    )
                else:
                    stream = self.channel.unary_stream(rpc.path)(
                        body, metadata=metadata, timeout=STREAM_SECONDS
                    )
                try:
                    for response in stream:
                        responses.append(response)
                        if len(responses) >= limit:
                            break
                finally:
                    stream.cancel()
        except grpc.RpcError as e:
            code, error = e.code(), e
        where = f"{rpc.path} signed by {signer}, {len(bodies)} message(s), {code}"
        assert code not in (C.INTERNAL, C.UNKNOWN), where
        if code == C.DEADLINE_EXCEEDED:  # only a live response stream may stay silent
            assert rpc.server_streaming, where
            assert not rpc.client_streaming, where
        reason = None
        if error is not None and code != C.DEADLINE_EXCEEDED:
            reason = _error_info(error)
            transport = code == C.RESOURCE_EXHAUSTED and max(map(len, bodies)) > TRANSPORT_CAP
            if not transport:
                assert reason is not None, f"{where}: no ErrorInfo ({error.details()!r})"
                assert STATUS_OF[reason] == code, f"{where}: {reason.name} under {code}"
        outcome = Outcome(code, reason, responses)
        if outcome.refused:
            after = self.dump()
            changed = sorted(t for t in before.keys() | after.keys() if before[t] != after[t])
            assert not changed, f"{where}: refused ({reason}) but changed {changed}"
        if not control:
            if "allowed" in rpc.output.fields_by_name:
                cls = GetMessageClass(rpc.output)
                for raw in responses:
                    answer: Any = cls.FromString(raw)
                    assert not answer.allowed, f"{where}: ALLOW for fuzzed input"
            if rpc.name == "ReportUse":
                assert outcome.refused, f"{where}: a fuzzed use was counted"
        label = f"{rpc.name} {signer}: {reason.name if reason else code.name}"
        self.counts[label] = self.counts.get(label, 0) + 1
        return outcome


def _error_info(error: grpc.RpcError) -> Reason | None:
    """The reason of the Licentia ErrorInfo in the call's rich status, if there is one."""
    try:
        status = rpc_status.from_call(error)
    except ValueError:  # the rich status contradicts the call's code or message
        return None
    for detail in status.details if status is not None else ():
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info) and info.domain == "licentia.v1":
            return Reason[info.reason] if info.reason in Reason.__members__ else None
    return None


def _caps(ex: Exchange) -> dict[str, int]:
    """Each method's own request cap, as its servicer declares it."""
    caps: dict[str, int] = {}
    for module, _name, servicer in SERVICES.values():
        for method, spec in servicer(ex.app.deps).methods().items():
            caps[methods.path(module, method)] = spec.max_request_bytes
    return caps


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data = tmp_path_factory.mktemp("fuzz")
    ex = start_exchange(data, settings=Settings(heartbeat_seconds=0.05))
    try:
        yield _build(ex, data)
    finally:
        ex.stop()


def _build(ex: Exchange, data: Path) -> World:
    # The protected licence: alice's photo, licensed to acme, checked by photoshare.
    owner, licensee, platform = ex.party(), ex.party(), ex.party()
    register_holder(owner, "alice")
    register_advertiser(licensee)
    register_platform(platform, "photoshare")
    pending = request_licence(licensee, owner.key.public.raw).request
    licence = approve_request(owner, pending).licence
    # The fuzzing parties: bob (a holder with assets, terms, a pending request and a rule),
    # an advertiser, the same platform, the operator, and a stranger.
    holder, advertiser = ex.party(), ex.party()
    register_holder(holder, "bob")
    register_advertiser(advertiser, "Fuzz Ads")
    # bob has earned one use's price, so a fuzzed DeleteAccount (an empty body is a valid
    # one) is refused BALANCE_OWED, changing nothing, and bob stays the fuzzing holder.
    earning = issue_licence(holder, advertiser, max_uses=1, price_per_use=100)
    report_use(platform, advertiser, earning.token, photo_use())
    asked = request_licence(advertiser, holder.key.public.raw).request
    rule = photo_rule(
        holder.key.public,
        int(time.time()),
        rule_id=b"\x42" * 16,
        max_term_seconds=30 * DAY,
        licensee_keys=frozenset({PrivateKey.generate().public.raw}),  # covers nobody
    )
    consent = add_standing_rule(holder, rule)
    operator = PrivateKey.from_seed((data / OPERATOR_KEY_FILE).read_bytes())
    keys: dict[str, PrivateKey | None] = {
        "unsigned": None,
        "holder": holder.key,
        "advertiser": advertiser.key,
        "platform": platform.key,
        "operator": operator,
        "stranger": PrivateKey.generate(),
    }
    db = sqlite3.connect(
        f"file:{data / DB_FILE}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
    )
    w = World(
        ex,
        keys,
        owner,
        licensee,
        platform,
        licence,
        _caps(ex),
        bytes_values=[
            b"",
            owner.key.public.raw,
            licensee.key.public.raw,
            holder.key.public.raw,
            advertiser.key.public.raw,
            platform.key.public.raw,
            licence.licence_id,
            asked.request_id,
            pending.request_id,
            rule.rule_id,
            PHOTO_SHA,
            VOICE_SHA,
            secrets.token_bytes(16),
            consent.rule_bytes,
            consent.signature,
            b"\x00" * 64,
        ],
        text_values=["", "photoshare", "bob", "alice", "newcomer", "Fuzz Org", "FR", "EU", "EUR"],
        db=db,
    )
    w.channel = ex.channel()
    # The control, before any fuzzing: a genuine check is allowed. Its presentation, now
    # spent, joins the values the fuzzer tries (a replay must never be allowed).
    control = w.verify_request()
    out = w.send(BY_NAME["Verify"], [control.SerializeToString()], "platform", control=True)
    assert verification_pb2.VerifyResponse.FromString(out.responses[0]).allowed
    w.text_values += [licence.token, control.presentation, licence.token[:-1]]
    return w


# -- strategies ----------------------------------------------------------------------------------

_T = FieldDescriptor
_RANGES = {
    _T.TYPE_INT32: (-(2**31), 2**31 - 1),
    _T.TYPE_SINT32: (-(2**31), 2**31 - 1),
    _T.TYPE_ENUM: (-(2**31), 2**31 - 1),
    _T.TYPE_UINT32: (0, 2**32 - 1),
    _T.TYPE_INT64: (-(2**63), 2**63 - 1),
    _T.TYPE_SINT64: (-(2**63), 2**63 - 1),
    _T.TYPE_UINT64: (0, 2**64 - 1),
}
_EDGES = [0, 1, 2, 15, 16, 17, 32, 33, 100, 101, 500, 501, 1000, 1001, 10_000, 10**12]
_EDGES += [10**12 + 1, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**62, 2**62 + 1, 2**63 - 1, 2**63]
_EDGES += [2**64 - 1, -1, -(2**31), -(2**63)]
#: ``bytes`` fields that carry an embedded message.
EMBEDDED = {"licentia.v1.StandingConsent.rule": licence_pb2.StandingRule.DESCRIPTOR}
_CONTROLS = "".join(chr(c) for c in [*range(0x20), 0x7F, 0x85, 0x9F, 0x200E, 0x2028, 0xFEFF])


def _text(w: World) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(w.text_values),
        st.text(st.characters(codec="utf-8"), max_size=40),
        st.text(st.sampled_from(_CONTROLS + "abc-_é"), max_size=20),
        st.sampled_from(w.text_values).map(lambda s: s[: len(s) // 2]),
        st.integers(0, 4).map(lambda n: "a" * (128 * n + 1)),
    )


def _value(w: World, f: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    if f.message_type is not None:
        return typed_message(w, f.message_type, depth + 1)
    if f.type == _T.TYPE_BOOL:
        return st.booleans()
    if f.type == _T.TYPE_STRING:
        return _text(w)
    if f.type == _T.TYPE_BYTES:
        embedded = EMBEDDED.get(f.full_name)
        if embedded is not None and depth < 3:
            return typed_message(w, embedded, depth + 1).map(
                lambda m: m.SerializeToString(deterministic=True)
            )
        return st.sampled_from(w.bytes_values) | st.binary(max_size=70)
    low, high = _RANGES[f.type]
    edges = [v for v in _EDGES if low <= v <= high]
    small = st.integers(max(low, -2), 20)
    if f.type == _T.TYPE_ENUM:
        return st.one_of(small, st.sampled_from(edges))
    now = int(time.time())
    times = st.sampled_from([now, now + 60, now + DAY, now + 30 * DAY, now + 400 * DAY])
    huge = st.integers(max(low, 2**62), high) if high > 2**62 else st.integers(low, high)
    return st.one_of(small, st.sampled_from(edges), huge, st.integers(low, high), times)


@st.composite
def typed_message(draw: st.DrawFn, w: World, desc: Descriptor, depth: int = 0) -> Message:
    """A message of type ``desc`` with random fields set through the protobuf API."""
    msg = GetMessageClass(desc)()
    for f in desc.fields:
        if depth > 3 or draw(st.integers(0, 2)) == 0:
            continue
        if f.is_repeated:
            size = draw(st.sampled_from([0, 1, 2, 3, 16, 17, 33, 1001]))
            pool = draw(st.lists(_value(w, f, depth), min_size=1, max_size=3))
            values = [pool[i % len(pool)] for i in range(size)]
            container: Any = getattr(msg, f.name)
            for v in values:
                if f.message_type is not None:
                    container.add().CopyFrom(v)
                else:
                    container.append(v)
        elif f.message_type is not None:
            getattr(msg, f.name).CopyFrom(draw(_value(w, f, depth)))
        else:
            setattr(msg, f.name, draw(_value(w, f, depth)))
    return msg


@st.composite
def wire_message(draw: st.DrawFn, w: World, desc: Descriptor, depth: int = 0) -> bytes:
    """Protobuf bytes built field by field: valid tags of ``desc`` with random payloads,
    wrong and invalid wire types, unknown and reserved numbers, lying lengths, over-long or
    endless varints, invalid UTF-8, long packed lists, deep nesting."""
    out = bytearray()
    fields: list[FieldDescriptor] = list(desc.fields)
    for _ in range(draw(st.integers(0, len(fields) + 2))):
        f = draw(st.sampled_from(fields)) if draw(st.integers(0, 5)) > 0 and fields else None
        number = f.number if f else draw(st.sampled_from([15, 16, 19000, 2**29 - 1]))
        how = draw(st.integers(0, 12))
        if f is None or how == 0:
            out += field_key(number, draw(st.integers(0, 7))) + draw(st.binary(max_size=12))
        elif how == 1:
            body = draw(st.binary(max_size=16))
            out += (
                field_key(number, 2) + varint(len(body) + draw(st.sampled_from([1, 2**31]))) + body
            )
        elif how == 2:
            n = draw(st.sampled_from([99, 101, 3000]))
            out += field_key(number, 3) * n + field_key(number, 4) * n
        elif f.message_type is not None or f.full_name in EMBEDDED:
            sub = f.message_type or EMBEDDED[f.full_name]
            inner = draw(wire_message(w, sub, depth + 1)) if depth < 3 else b"\x08"
            out += delimited(number, inner)
        elif f.type == _T.TYPE_STRING:
            text = draw(_text(w)).encode()
            if draw(st.booleans()):
                text += draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"a\x80"]))
            out += delimited(number, text)
        elif f.type == _T.TYPE_BYTES:
            out += delimited(number, draw(st.sampled_from(w.bytes_values) | st.binary()))
        elif f.is_repeated and draw(st.booleans()):
            count = draw(st.sampled_from([3, 33, 2000]))
            out += delimited(number, varint(draw(st.integers(0, 40))) * count)
        else:
            value = draw(st.sampled_from(_EDGES).map(lambda v: v % 2**64))
            raw = bytearray(varint(value))
            if draw(st.integers(0, 3)) == 0:  # over-long: the same value, not minimal
                raw[-1] |= 0x80
                raw += b"\x00"
            elif draw(st.integers(0, 5)) == 0:  # longer than protobuf allows
                raw = bytearray(b"\xff" * 11 + b"\x01")
            out += field_key(number, 0) + raw
    return bytes(out)


def _rpc_id(rpc: Rpc) -> str:
    return rpc.name


#: Registered parties twice as often: their calls get past authentication.
_signers = st.sampled_from([*SIGNERS, "holder", "advertiser", "platform"])


def _bodies(rpc: Rpc, body: st.SearchStrategy[bytes]) -> st.SearchStrategy[list[bytes]]:
    if rpc.client_streaming:
        return st.lists(body, min_size=1, max_size=4)
    return body.map(lambda b: [b])


# -- the fuzzing ---------------------------------------------------------------------------------


@pytest.mark.parametrize("rpc", RPCS, ids=_rpc_id)
@FUZZ
@given(signer=_signers, data=st.data())
def test_random_bytes(world: World, rpc: Rpc, signer: str, data: st.DataObject) -> None:
    body = st.one_of(
        st.binary(max_size=300),
        st.sampled_from([b"", b"\x00", b"\xff" * 16, b"\x0a\xff\xff\xff\xff\x0f", b"\x08"]),
    )
    world.send(rpc, data.draw(_bodies(rpc, body)), signer)


@pytest.mark.parametrize("rpc", RPCS, ids=_rpc_id)
@FUZZ
@given(signer=_signers, data=st.data())
def test_wire_level_garbage(world: World, rpc: Rpc, signer: str, data: st.DataObject) -> None:
    world.send(rpc, data.draw(_bodies(rpc, wire_message(world, rpc.input))), signer)


@pytest.mark.parametrize("rpc", RPCS, ids=_rpc_id)
@settings(FUZZ, max_examples=20 * SCALE)
@given(signer=_signers, data=st.data())
def test_well_typed_random_values(world: World, rpc: Rpc, signer: str, data: st.DataObject) -> None:
    body = typed_message(world, rpc.input).map(lambda m: m.SerializeToString(deterministic=True))
    world.send(rpc, data.draw(_bodies(rpc, body)), signer)


def _filled(desc: Descriptor, depth: int = 0) -> Message:
    """A message with every field set (repeated ones twice), nested ones filled in turn."""
    msg = GetMessageClass(desc)()
    for f in desc.fields:
        if f.containing_oneof is not None and msg.WhichOneof(f.containing_oneof.name):
            continue
        if f.message_type is not None:
            if depth < 3:
                target = getattr(msg, f.name)
                for _ in range(2 if f.is_repeated else 1):
                    (target.add() if f.is_repeated else target).CopyFrom(
                        _filled(f.message_type, depth + 1)
                    )
            continue
        value: Any = {
            _T.TYPE_STRING: "photoshare",
            _T.TYPE_BYTES: hashlib.sha256(f.full_name.encode()).digest(),
            _T.TYPE_BOOL: True,
        }.get(f.type, 1)
        if f.is_repeated:
            getattr(msg, f.name).extend([value, value] if f.type != _T.TYPE_BYTES else [value])
        else:
            setattr(msg, f.name, value)
    return msg


@pytest.mark.parametrize("rpc", RPCS, ids=_rpc_id)
@settings(FUZZ, max_examples=8 * SCALE)
@given(signer=_signers, data=st.data())
def test_truncated_messages(world: World, rpc: Rpc, signer: str, data: st.DataObject) -> None:
    raw = _filled(rpc.input).SerializeToString(deterministic=True)
    n = len(raw)
    classes = sorted({0, 1, 2, n // 2, n - 2, n - 1} - {n})
    cut = data.draw(st.sampled_from([c for c in classes if c >= 0]) | st.integers(0, max(n - 1, 0)))
    world.send(rpc, [raw[:cut]], signer)


def _padded(rpc: Rpc, size: int) -> bytes:
    """A valid message of ``rpc``'s type grown to ``size`` bytes or just past it: its first
    text or bytes field made long, else an unknown field (refused later anyway)."""
    msg = _filled(rpc.input)
    for f in rpc.input.fields:
        if f.type in (_T.TYPE_STRING, _T.TYPE_BYTES) and not f.is_repeated:
            setattr(msg, f.name, "x" * size if f.type == _T.TYPE_STRING else b"x" * size)
            return msg.SerializeToString(deterministic=True)
    return msg.SerializeToString(deterministic=True) + delimited(15, b"x" * size)


#: One method of each service and each streaming kind: what gRPC itself refuses past its
#: transport cap, before any Licentia code runs, is the same for every method of a kind, and
#: each such refusal costs gRPC some 150 ms.
TRANSPORT_SAMPLE = {
    r.path for r in {(r.service, r.client_streaming, r.server_streaming): r for r in RPCS}.values()
}


@pytest.mark.parametrize("rpc", RPCS, ids=_rpc_id)
def test_oversized_messages(world: World, rpc: Rpc) -> None:
    """Past the method's own cap: TOO_LARGE, before the signature is even checked (a stream
    is admitted first, then each message capped); past the server's transport cap:
    RESOURCE_EXHAUSTED from gRPC. Nothing stored changes either way."""
    cap = world.caps[rpc.path]
    for signer in ("unsigned", "holder", "platform"):
        out = world.send(rpc, [_padded(rpc, cap + 1)], signer)
        if not rpc.client_streaming:
            assert (out.code, out.reason) == (C.INVALID_ARGUMENT, Reason.TOO_LARGE)
        else:
            assert out.reason in (Reason.TOO_LARGE, *ADMISSION), out
    if rpc.path in TRANSPORT_SAMPLE:
        out = world.send(rpc, [_padded(rpc, TRANSPORT_CAP + 1)], "platform")
        if not rpc.client_streaming:
            assert out.code == C.RESOURCE_EXHAUSTED
        else:  # gRPC's refusal races the handler's own
            assert out.code == C.RESOURCE_EXHAUSTED or out.reason in ADMISSION, out


# -- signature metadata, mutated -----------------------------------------------------------------

_PRINTABLE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)


@st.composite
def mutated_metadata(draw: st.DrawFn, w: World, rpc: Rpc, body: bytes) -> list[Any]:
    """The holder's genuine signature headers for ``body`` with one to three changes: a
    header dropped, repeated, edited, made long, another key's, a timestamp out of the
    window or written otherwise, a binary header of the same name."""
    key = w.keys["holder"]
    assert key is not None
    now = int(time.time())
    items: list[Any] = list(sign_request(key, rpc.path, b"" if rpc.client_streaming else body, now))
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, max(len(items) - 1, 0)))
        op = draw(st.integers(0, 6))
        if not items:
            break
        name, value = items[i]
        if op == 0:
            del items[i]
        elif op == 1:
            items.insert(i, items[i])
        elif op == 2:
            items[i] = (name, draw(_PRINTABLE))
        elif op == 3:
            items[i] = (name, str(value) + "A" * draw(st.sampled_from([1, 200, 300])))
        elif op == 4:
            skew = draw(st.sampled_from([-61, 61, -(10**6), 10**9]))
            stamp = draw(st.sampled_from([str(now + skew), f"0{now}", f"+{now}", f"{now}.0"]))
            items = [(n, stamp if n == "x-licentia-timestamp" else v) for n, v in items]
        elif op == 5:
            other = w.keys[draw(st.sampled_from(["advertiser", "platform", "stranger"]))]
            assert other is not None
            items = [(n, other.public.text if n == "x-licentia-key" else v) for n, v in items]
        else:
            items.append((f"{name}-bin", draw(st.binary(max_size=40))))
    return items


@pytest.mark.parametrize("rpc", RPCS, ids=_rpc_id)
@settings(FUZZ, max_examples=6 * SCALE)
@given(data=st.data())
def test_mutated_signature_metadata(world: World, rpc: Rpc, data: st.DataObject) -> None:
    body = b""
    world.send(rpc, [body], "holder", metadata=data.draw(mutated_metadata(world, rpc, body)))


# -- Verify: a genuine check, mutated ------------------------------------------------------------

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ é\x00"


@st.composite
def _edit(draw: st.DrawFn, text: str) -> str:
    i = draw(st.integers(0, len(text)))
    j = draw(st.integers(i, min(len(text), i + 8)))
    edited = text[:i] + draw(st.text(st.sampled_from(_ALPHABET), max_size=4)) + text[j:]
    # Never the text itself, decided without a draw (the text changes from run to run).
    return edited if edited != text else text[:-1]


@st.composite
def mutated_check(draw: st.DrawFn, w: World) -> tuple[bytes, bool]:
    """A genuine VerifyRequest (its presentation fresh) with one thing changed; and whether
    the change is in what it says (rather than an unknown field on top)."""
    req = w.verify_request()
    genuine = req.SerializeToString(deterministic=True)
    what = draw(st.integers(0, 7))
    if what == 0:
        req.token = draw(_edit(req.token))
    elif what == 1:
        req.presentation = draw(_edit(req.presentation))
    elif what == 2:
        name = draw(st.sampled_from(["category", "purpose", "medium"]))
        setattr(req.use, name, draw(st.integers(-1, 15)))
    elif what == 3:
        req.use.territory = draw(st.sampled_from(["DE", "EU", "fr", "FR ", "", "WORLD", "GR"]))
    elif what == 4:
        req.use.asset_sha256 = draw(st.sampled_from([VOICE_SHA, PHOTO_SHA[:31], b""]))
    elif what == 5:  # a presentation by someone else, for another platform, or another time
        key = draw(st.sampled_from([w.owner.key, w.licensee.key, PrivateKey.generate()]))
        audience = draw(st.sampled_from(["photoshare", "other", "PhotoShare"]))
        skew = draw(st.sampled_from([0, -200, 200, -(10**6)]))
        assume((key, audience, skew) != (w.licensee.key, "photoshare", 0))
        at = int(time.time()) + skew
        req.presentation = present(key, w.licence.licence_id, audience, photo_use(), at)
    elif what == 6:
        req.ClearField(draw(st.sampled_from(["token", "presentation", "use"])))
    raw = req.SerializeToString(deterministic=True)
    if what == 7:  # the genuine check with an unknown or a repeated field on top
        extra = draw(st.sampled_from([delimited(9, b"x"), delimited(1, b"lic1."), b"\x20\x01"]))
        return raw + extra, False
    assume(raw != genuine)
    return raw, True


@settings(FUZZ, max_examples=120 * SCALE)
@given(data=st.data(), stream=st.booleans())
def test_a_mutated_genuine_check_is_never_allowed(
    world: World, data: st.DataObject, stream: bool
) -> None:
    """Verify and VerifyStream never allow it, and ReportUse never counts it."""
    raw, says_otherwise = data.draw(mutated_check(world))
    world.send(BY_NAME["VerifyStream" if stream else "Verify"], [raw], "platform")
    if says_otherwise:
        req = verification_pb2.VerifyRequest.FromString(raw)
        report = verification_pb2.ReportUseRequest(
            report_id=secrets.token_bytes(16), token=req.token, presentation=req.presentation
        )
        if req.HasField("use"):
            report.use.CopyFrom(req.use)
        world.send(BY_NAME["ReportUse"], [report.SerializeToString()], "platform")


def test_a_stream_of_mixed_checks_allows_only_the_genuine_one(world: World) -> None:
    """VerifyStream answers each message in order: the genuine check first (allowed), then
    its replay and garbage (never allowed)."""
    genuine = world.verify_request().SerializeToString()
    out = world.send(
        BY_NAME["VerifyStream"],
        [genuine, genuine, b"\x0a\x03abc", world.verify_request().SerializeToString()[:-3]],
        "platform",
        control=True,
    )
    answers = [verification_pb2.VerifyResponse.FromString(r) for r in out.responses]
    assert [a.allowed for a in answers[:2]] == [True, False]
    assert Reason.REPLAYED in [Reason(r) for r in answers[1].reasons]
    assert not any(a.allowed for a in answers[2:])


def test_the_fuzzing_reached_past_the_first_checks(world: World) -> None:
    """Not a property of the exchange, a check on the fuzzer: runs last in this module and
    needs the calls above to have run (alone it only checks the control)."""
    if len(world.counts) < 100:
        pytest.skip("run with the whole module")
    reasons = {label.rpartition(": ")[2] for label in world.counts}
    deep = {"INVALID_REQUEST", "NOT_FOUND", "NOT_OWNER", "MALFORMED", "OK", "TOO_LARGE"}
    assert deep <= reasons, sorted(reasons)
    accepted = {label.split()[0] for label, n in world.counts.items() if label.endswith(": OK")}
    assert len(accepted) >= len(RPCS) // 3, sorted(accepted)
