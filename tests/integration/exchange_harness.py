"""A real exchange on 127.0.0.1:0 and the parties that talk to it, for integration tests."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import grpc  # type: ignore[import-untyped]
import pytest
from google.protobuf.message import Message

from licentia.clients.channel import ExchangeError, SignedChannel, exchange_error
from licentia.clients.verifier import Verifier
from licentia.errors import Reason
from licentia.keys import PrivateKey, PublicKey
from licentia.methods import path
from licentia.presentation import present
from licentia.scope import IntendedUse, Scope
from licentia.services.app import DB_FILE, OPERATOR_KEY_FILE, App, build
from licentia.services.deps import Settings
from licentia.services.refs import SECRET_NAME, Refs
from licentia.services.replica import ReplicaApp, build_replica
from licentia.services.runtime import RunningServer, ServerSettings, client_channel, start
from licentia.services.store import open_store
from licentia.token import (
    LicenceClaims,
    StandingConsent,
    StandingRule,
    approve,
    parse_token,
    sign_standing_rule,
)
from licentia.v1 import (
    exchange_pb2,
    ledger_pb2,
    licence_pb2,
    licences_pb2,
    records_pb2,
    registry_pb2,
    verification_pb2,
)
from licentia.vocabulary import DataCategory, Medium, Purpose

__all__ = ["ExchangeError", "SignedChannel", "reasons"]

M = TypeVar("M", bound=Message)
DAY = 86400
PHOTO = b"\x89PNG a photo of the holder"
PHOTO_SHA = hashlib.sha256(PHOTO).digest()
VOICE = b"RIFF a voice sample"
VOICE_SHA = hashlib.sha256(VOICE).digest()

#: What each advertiser the tests register is credited (1,000,000.00).
FUNDS = 100_000_000
#: A channel that reconnects quickly once the exchange is back (gRPC's default first retry
#: is one second, growing to two minutes).
FAST_RECONNECT = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 300),
)


class ManualClock:
    """An exchange's (or a client's) clock: the system's, moved forward by the test."""

    def __init__(self) -> None:
        self.offset = 0

    def now(self) -> int:
        return int(time.time()) + self.offset


def method_path(module: Any, name: str) -> str:
    """``/licentia.v1.Service/Method`` for a method of a generated module's service."""
    return path(module, name)


@dataclass
class Exchange:
    """A running exchange: its app, its server, and the data directory."""

    data_dir: Path
    app: App
    server: RunningServer
    channels: list[grpc.Channel] = field(default_factory=list)
    #: The exchange's clock, when a test drives it: the operator signs by it.
    clock: Any = None

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``."""
        return self.server.address

    def channel(self) -> grpc.Channel:
        """A new channel to the exchange (closed with it)."""
        ch = client_channel(self.address)
        self.channels.append(ch)
        return ch

    def party(self, seed: int | None = None) -> Party:
        """A party with a fresh (or seeded) key and its own signed channel."""
        key = (
            PrivateKey.from_seed(bytes([seed]) * 32) if seed is not None else PrivateKey.generate()
        )
        return Party(key, SignedChannel(self.channel(), key), self)

    def operator(self) -> Party:
        """The exchange operator, signing with the key the server created in its data dir."""
        return operator_party(self.channel(), self.data_dir, self.clock)

    def fund(self, advertiser_key: bytes, amount: int = FUNDS, reference: str = "") -> int:
        """Credit an advertiser (as the operator); its balance after."""
        return fund(self.operator(), advertiser_key, amount, reference)

    def stop(self) -> None:
        """Stop the server and close the app and channels."""
        for ch in self.channels:
            ch.close()
        self.server.stop(0.5)
        self.app.close()


def start_exchange(data_dir: Path, *, settings: Settings | None = None, **kw: Any) -> Exchange:
    """Build and start an exchange on a free loopback port."""
    log = logging.getLogger("licentia.test")
    app = build(data_dir, settings=settings or Settings(heartbeat_seconds=0.5), log=log, **kw)
    server = start(
        ServerSettings(address="127.0.0.1:0", max_workers=64), app.handlers, app.service_names, log
    )
    return Exchange(data_dir, app, server, clock=kw.get("clock"))


#: A verify-only replica's fail-closed bound in these tests (exchanges beat every 0.5 s).
REPLICA_STALENESS = 2


@dataclass
class Replica:
    """A verify-only replica served on a loopback port."""

    app: ReplicaApp
    server: RunningServer
    upstream: str

    def party(self, key: PrivateKey | None) -> Party:
        """``key`` (None: unsigned) calling the replica."""
        channel = grpc.insecure_channel(self.server.address)
        return Party(key or PrivateKey.generate(), SignedChannel(channel, key))

    def stop(self) -> None:
        self.server.stop(0.5)
        self.app.close()


def start_replica(upstream: str, **kw: Any) -> Replica:
    """Build and serve a verify-only replica of the exchange at ``upstream``."""
    log = logging.getLogger("licentia.test")
    kw.setdefault("staleness_seconds", REPLICA_STALENESS)
    kw.setdefault("backoff", (0.05, 0.3))
    kw.setdefault("platform_refresh_min_interval", 0.2)
    kw.setdefault("timeout", 3.0)
    app = build_replica(upstream, log=log, **kw)
    try:
        server = start(
            ServerSettings(address="127.0.0.1:0", max_workers=48),
            app.handlers,
            app.service_names,
            log,
        )
    except BaseException:
        app.close()
        raise
    return Replica(app, server, upstream)


def operator_party(channel: grpc.Channel, data_dir: Path, clock: Any = None) -> Party:
    """The operator of the exchange whose data directory is ``data_dir``."""
    key = PrivateKey.from_seed((data_dir / OPERATOR_KEY_FILE).read_bytes())
    if clock is not None:
        return Party(key, SignedChannel(channel, key, clock=clock.now))
    return Party(key, SignedChannel(channel, key))


def fund(operator: Party, advertiser_key: bytes, amount: int = FUNDS, reference: str = "") -> int:
    """Deposit ``amount`` for an advertiser as ``operator``; the balance after."""
    resp = operator.call(
        ledger_pb2,
        "Deposit",
        ledger_pb2.DepositRequest(
            advertiser_key=advertiser_key,
            amount_minor=amount,
            reference=reference or f"test-{secrets.token_hex(8)}",
        ),
        ledger_pb2.DepositResponse,
    )
    return resp.balance_minor


def raw_unary(channel: grpc.Channel, method: str, body: bytes, metadata: Any) -> bytes:
    """Send exactly ``body`` with exactly ``metadata`` (a signature made elsewhere, a replay);
    the response bytes, or the :class:`ExchangeError` the call failed with."""
    call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
    try:
        return bytes(call(body, metadata=metadata, timeout=5))
    except grpc.RpcError as e:
        raise exchange_error(e) from None


def wait_for(predicate: Callable[[], bool], timeout: float) -> float:
    """Poll ``predicate`` until it holds; the seconds it took (fails the test on timeout)."""
    t0 = time.monotonic()
    while not predicate():
        if time.monotonic() - t0 > timeout:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(0.02)
    return time.monotonic() - t0


def start_verifier(
    address: str, platform_id: str, *, interceptor: Any = None, **kw: Any
) -> tuple[Verifier, grpc.Channel]:
    """A platform's inline verifier, started against the exchange at ``address`` over a channel
    of its own (quick to reconnect; through ``interceptor`` when given). Close both."""
    raw = grpc.insecure_channel(address, options=list(FAST_RECONNECT))
    channel = raw if interceptor is None else grpc.intercept_channel(raw, interceptor)
    kw.setdefault("backoff", (0.05, 0.3))
    verifier = Verifier(channel, platform_id, **kw)
    try:
        verifier.start(timeout=5)
    except BaseException:
        verifier.close()
        raw.close()
        raise
    return verifier, raw


@dataclass
class Party:
    """A key and a channel that signs with it."""

    key: PrivateKey
    rpc: SignedChannel
    exchange: Exchange | None = None
    #: The references' secret of the exchange (:func:`offer_refs`), for a party of an
    #: exchange that runs as its own process (:func:`secret_in`).
    secret: bytes | None = None
    #: With ``secret``: the account ``key`` belongs to, when it is another key's (a service
    #: key): references are the account's.
    account: bytes | None = None

    def call(self, module: Any, name: str, request: Message, response_cls: type[M]) -> M:
        """A unary call."""
        return self.rpc.unary(method_path(module, name), request, response_cls)

    def stream(
        self, module: Any, name: str, request: Message, response_cls: type[M]
    ) -> Iterator[M]:
        """A server-streaming call."""
        return self.rpc.server_stream(method_path(module, name), request, response_cls)


def declare_photo(p: Party) -> registry_pb2.DeclareAssetResponse:
    """The holder declares its photo, with the bytes stored (again, after erasing it)."""
    return p.call(
        registry_pb2,
        "DeclareAsset",
        registry_pb2.DeclareAssetRequest(
            category=cast("Any", DataCategory.IMAGE),
            sha256=PHOTO_SHA,
            label="portrait",
            content=PHOTO,
        ),
        registry_pb2.DeclareAssetResponse,
    )


def photo_rule(holder: PublicKey, now: int, **changes: Any) -> StandingRule:
    """A standing rule over the photo :func:`register_holder` declares: marketing uses of it
    online in the EU, for up to 60 days at 100 a day or more, from a day before ``now`` for
    a year; ``changes`` replace any of its fields (``licensee_keys``, ``scope``, …)."""
    rule = StandingRule(
        rule_id=secrets.token_bytes(16),
        holder=holder,
        scope=Scope.of([DataCategory.IMAGE], [Purpose.MARKETING], [Medium.ONLINE], ["EU"]),
        asset_sha256=frozenset({PHOTO_SHA}),
        not_before=now - DAY,
        not_after=now + 365 * DAY,
        max_term_seconds=60 * DAY,
        min_price_per_day_minor=100,
        currency="EUR",
    )
    return dataclasses.replace(rule, **changes) if changes else rule


def add_standing_rule(holder: Party, rule: StandingRule) -> StandingConsent:
    """The holder signs ``rule`` and adds it (requests within it are issued at once); the
    signed consent."""
    consent = sign_standing_rule(holder.key, rule)
    holder.call(
        exchange_pb2,
        "AddStandingRule",
        exchange_pb2.AddStandingRuleRequest(
            consent=licence_pb2.StandingConsent(
                rule=consent.rule_bytes, holder_signature=consent.signature
            )
        ),
        exchange_pb2.AddStandingRuleResponse,
    )
    return consent


def register_holder(p: Party, handle: str = "alice") -> records_pb2.Profile:
    """Register ``p`` as a holder with a photo (stored) and a voice sample, and set terms."""
    prof = p.call(
        registry_pb2,
        "RegisterHolder",
        registry_pb2.RegisterHolderRequest(handle=handle, display_name="Alice"),
        registry_pb2.RegisterHolderResponse,
    ).profile
    declare_photo(p)
    p.call(
        registry_pb2,
        "DeclareAsset",
        registry_pb2.DeclareAssetRequest(
            category=cast("Any", DataCategory.VOICE), sha256=VOICE_SHA
        ),
        registry_pb2.DeclareAssetResponse,
    )
    p.call(
        registry_pb2,
        "SetTerms",
        registry_pb2.SetTermsRequest(terms=TERMS),
        registry_pb2.SetTermsResponse,
    )
    return prof


def wire(*values: int) -> Any:
    """Enum members as the generated stubs take them."""
    return cast("Any", [int(v) for v in values])


def reasons(resp: verification_pb2.VerifyResponse) -> list[Reason]:
    """A decision's reasons as :class:`~licentia.errors.Reason` members."""
    return [Reason(int(r)) for r in resp.reasons]


TERMS = records_pb2.Terms(
    categories=wire(DataCategory.NAME, DataCategory.IMAGE, DataCategory.VOICE),
    allowed_purposes=wire(Purpose.MARKETING, Purpose.POLITICAL_CAMPAIGN),
    refused_purposes=wire(Purpose.DIRECT_MARKETING),
    media=wire(Medium.ONLINE, Medium.SOCIAL),
    territories=["EU"],
    currency="EUR",
    price_per_day_minor=100,
    max_term_seconds=90 * DAY,
    exclusivity_offered=True,
    exclusivity_multiplier_bps=30_000,
)


def registered(ex: Exchange, audience: str = "photoshare") -> tuple[Party, Party, Party]:
    """A holder (its photo and terms), an advertiser (funded) and a platform (``audience``),
    registered at ``ex``."""
    holder, adv, platform = ex.party(), ex.party(), ex.party()
    register_holder(holder)
    register_advertiser(adv)
    register_platform(platform, audience)
    return holder, adv, platform


def register_advertiser(p: Party, org: str = "Acme Ads", funds: int = FUNDS) -> None:
    """Register ``p`` as an advertiser, and credit it ``funds`` (as the exchange operator)."""
    p.call(
        registry_pb2,
        "RegisterAdvertiser",
        registry_pb2.RegisterAdvertiserRequest(organisation=org, country="FR"),
        registry_pb2.RegisterAdvertiserResponse,
    )
    if funds and p.exchange is not None:
        p.exchange.fund(p.key.public.raw, funds)


def register_platform(p: Party, platform_id: str = "photoshare") -> None:
    """Register ``p`` as a platform."""
    p.call(
        registry_pb2,
        "RegisterPlatform",
        registry_pb2.RegisterPlatformRequest(platform_id=platform_id, name="PhotoShare"),
        registry_pb2.RegisterPlatformResponse,
    )


def ad_scope(purposes: tuple[int, ...] = (Purpose.ADVERTISING,)) -> licence_pb2.Scope:
    """Image for online advertising in France."""
    return licence_pb2.Scope(
        categories=wire(DataCategory.IMAGE),
        purposes=wire(*sorted(purposes)),
        media=wire(Medium.ONLINE),
        territories=["FR"],
    )


def secret_in(data_dir: Path, db: str = "") -> bytes:
    """The references' secret of the exchange whose data directory is ``data_dir`` (and
    store ``db``, as ``--db`` names it), read from its store: for an exchange that runs as
    its own process, once it has started."""
    store = open_store(db, data_dir / DB_FILE, read_only=True)
    try:
        return store.exchange_secret(SECRET_NAME)
    finally:
        store.close()


def offer_refs(
    adv: Party, holder_account: bytes, digests: Sequence[bytes] = (PHOTO_SHA,)
) -> tuple[bytes, list[bytes]]:
    """``adv``'s references to the holder of ``holder_account`` and to her assets of
    ``digests``: what SearchOffers gives it. An advertiser learns them only by searching;
    the tests, which know whom they mean, compute them from the exchange's secret (the
    party's ``secret``, else its exchange's store)."""
    account = adv.key.public.raw
    if adv.secret is not None:
        secret = adv.secret
        account = adv.account or account
    elif adv.exchange is not None:
        store = adv.exchange.app.deps.store
        secret = store.exchange_secret(SECRET_NAME)
        owner = store.key_owner(account)
        account = owner[0].key if owner is not None else account
    else:
        raise ValueError("a party of no known exchange: give it the exchange's secret")
    refs = Refs(secret)
    return refs.offer_ref(account, holder_account), refs.asset_refs(
        account, holder_account, digests
    )


def request_licence(
    adv: Party,
    holder_key: bytes,
    *,
    days: int = 30,
    exclusive: bool = False,
    price: int | None = None,
    scope: licence_pb2.Scope | None = None,
    max_uses: int = 0,
    price_per_use: int = 0,
    idempotency_key: bytes = b"",
    now: int | None = None,
    digests: Sequence[bytes] = (PHOTO_SHA,),
    refs: tuple[bytes, Sequence[bytes]] | None = None,
) -> exchange_pb2.RequestLicenceResponse:
    """Ask the holder of account ``holder_key`` (by ``adv``'s references: :func:`offer_refs`)
    for her assets of ``digests`` (the photo) for ``days`` from ``now`` (by default the
    present), at the holder's price unless ``price`` is given. ``refs`` (an offer and asset
    references, as a search gave them or made up) replaces the holder and digests. A retry
    passes the first call's ``now``: a request retried with its idempotency key must be the
    same request."""
    now = int(time.time()) if now is None else now
    factor = 3 if exclusive else 1
    offer_ref, asset_refs = refs or offer_refs(adv, holder_key, digests)
    return adv.call(
        exchange_pb2,
        "RequestLicence",
        exchange_pb2.RequestLicenceRequest(
            offer_ref=offer_ref,
            asset_refs=asset_refs,
            scope=scope or ad_scope(),
            not_before=now,
            not_after=now + days * DAY,
            exclusive=exclusive,
            max_uses=max_uses,
            offered_price_minor=price if price is not None else days * 100 * factor,
            price_per_use_minor=price_per_use,
            idempotency_key=idempotency_key,
        ),
        exchange_pb2.RequestLicenceResponse,
    )


def approve_request(
    holder: Party, request: records_pb2.LicenceRequest
) -> exchange_pb2.ApproveRequestResponse:
    """The holder signs the exact claims naming her key (as her own view of the request
    shows them: the advertiser's names no holder key) and approves."""
    claims = LicenceClaims.decode(request.claims)
    if claims.holder is None:
        claims = dataclasses.replace(claims, holder=holder.key.public)
    sig = approve(holder.key, claims.encode()).signature
    return holder.call(
        exchange_pb2,
        "ApproveRequest",
        exchange_pb2.ApproveRequestRequest(request_id=request.request_id, holder_signature=sig),
        exchange_pb2.ApproveRequestResponse,
    )


def issue_licence(holder: Party, adv: Party, **kw: Any) -> records_pb2.LicenceRecord:
    """A licence for the photo (:func:`request_licence` ``**kw``), approved by the holder."""
    return approve_request(
        holder, request_licence(adv, holder.key.public.raw, **kw).request
    ).licence


def revoke_licence(holder: Party, licence_id: bytes) -> licences_pb2.RevokeLicenceResponse:
    """The holder revokes."""
    return holder.call(
        licences_pb2,
        "RevokeLicence",
        licences_pb2.RevokeLicenceRequest(licence_id=licence_id),
        licences_pb2.RevokeLicenceResponse,
    )


def photo_use(purpose: int = Purpose.PERSONALISED_ADVERTISING, where: str = "FR") -> IntendedUse:
    """Publishing the photo online."""
    return IntendedUse(DataCategory.IMAGE, Purpose(purpose), Medium.ONLINE, where, PHOTO_SHA)


def verify(
    platform: Party,
    adv: Party,
    token: str,
    use: IntendedUse,
    audience: str = "photoshare",
    licence_id: bytes | None = None,
) -> verification_pb2.VerifyResponse:
    """The platform asks the exchange to check the advertiser's presentation (of
    ``licence_id``: the token's own by default)."""
    licence_id = parse_token(token).licence_id if licence_id is None else licence_id
    pres = present(adv.key, licence_id, audience, use, int(time.time()))
    return platform.call(
        verification_pb2,
        "Verify",
        verification_pb2.VerifyRequest(token=token, presentation=pres, use=use.to_proto()),
        verification_pb2.VerifyResponse,
    )


def report_use(
    platform: Party, adv: Party, token: str, use: IntendedUse, audience: str = "photoshare"
) -> verification_pb2.ReportUseResponse:
    """The platform reports one use, with the advertiser's presentation (a fresh report id)."""
    pres = present(adv.key, parse_token(token).licence_id, audience, use, int(time.time()))
    return platform.call(
        verification_pb2,
        "ReportUse",
        verification_pb2.ReportUseRequest(
            report_id=secrets.token_bytes(16), token=token, presentation=pres, use=use.to_proto()
        ),
        verification_pb2.ReportUseResponse,
    )


#: Skips a test that needs ``openssl`` to make a certificate where the command is missing.
needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1 and its key, made by
    ``openssl`` in ``directory`` (created): ``(cert.pem, key.pem)``."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert),
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@dataclass
class ServerProcess:
    """``licentia-server`` as a real process: the gRPC address and whatever else it printed
    it listens on (``printed["metrics"]``, ``printed["http"]``), its data directory, and
    its stderr (one JSON object a line) in ``log``."""

    proc: subprocess.Popen[str]
    address: str
    printed: dict[str, str]
    data: Path
    log: Path

    def lines(self) -> list[dict[str, object]]:
        """The log's JSON lines."""
        out = []
        for raw in self.log.read_text().splitlines():
            try:
                out.append(json.loads(raw))
            except ValueError:
                continue
        return out


@contextmanager
def server_process(tmp_path: Path, *flags: str) -> Iterator[ServerProcess]:
    """Start ``licentia-server`` on ``tmp_path / "data"`` and a free port with ``flags`` and
    no ``LICENTIA_*`` variable; killed at the end."""
    log = tmp_path / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LICENTIA_")}
    command = [sys.executable, "-m", "licentia.services.server", "--data-dir"]
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [*command, str(tmp_path / "data"), "--listen", "127.0.0.1:0", *flags],
            stdout=subprocess.PIPE,
            stderr=err,
            env=env,
            text=True,
        )
    try:
        assert proc.stdout is not None
        printed: dict[str, str] = {}
        while "listening" not in printed:  # "metrics on …", "http listening on …", then gRPC's
            line = proc.stdout.readline()
            assert line, log.read_text()[-2000:]
            words = line.split()
            printed["http" if words[0] == "http" else words[0]] = words[-1]
        yield ServerProcess(proc, printed["listening"], printed, tmp_path / "data", log)
    finally:
        proc.kill()
        proc.wait(30)
