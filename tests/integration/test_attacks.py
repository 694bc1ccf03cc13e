"""The attack matrix: one test per attack, each end to end against a real exchange on
127.0.0.1:0 and, when the attack targets a platform, against the platform's in-process
verifier too. Each test names its attack, asserts the exact refusal (the DENY reasons, or the
gRPC status code and ErrorInfo reason) and that nothing changed: no licence revoked, no use
counted, no money moved, no nonce burnt by a forgery. docs/threat-model.md links each test.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import grpc  # type: ignore[import-untyped]
import pytest

from licentia import methods
from licentia.clients.channel import exchange_error
from licentia.clients.verifier import Verifier
from licentia.clients.verifier.verifier import fetch_issuer_keys, fetch_status_snapshot
from licentia.encoding import b64url_decode, b64url_encode
from licentia.errors import Reason
from licentia.keys import PrivateKey
from licentia.nonces import MemoryNonceStore
from licentia.presentation import present
from licentia.request import sign_request
from licentia.scope import IntendedUse
from licentia.services.deps import Settings
from licentia.status import StatusView
from licentia.token import (
    LicenceClaims,
    LogPromise,
    _signed_token,
    approve,
    issue,
    new_licence_id,
    parse_token,
)
from licentia.v1 import (
    ledger_pb2,
    licence_pb2,
    licences_pb2,
    records_pb2,
    registry_pb2,
    status_pb2,
    transparency_pb2,
    verification_pb2,
)
from licentia.verify import Decision, VerificationEngine
from licentia.vocabulary import Purpose

from ..pg_server import PgServer
from ..sock_proxy import SocketProxy
from .exchange_harness import (
    PHOTO_SHA,
    TERMS,
    Exchange,
    ExchangeError,
    ManualClock,
    Party,
    SignedChannel,
    issue_licence,
    method_path,
    photo_use,
    raw_unary,
    reasons,
    register_advertiser,
    register_holder,
    register_platform,
    registered,
    revoke_licence,
    start_exchange,
    start_replica,
    start_verifier,
    verify,
    wait_for,
)

C = grpc.StatusCode
AUDIENCE = "photoshare"
ELSEWHERE = "othersite"
#: The staleness bound of the verifiers under attack, in seconds.
BOUND = 30
#: A field number that none of the messages attacked here has.
UNKNOWN_FIELD = 15


# -- the world: an exchange, its parties, and the platform's inline verifier ----------------------


@dataclass
class World:
    """A holder (alice) and another holder (bob); the licensee (adv) and another advertiser
    (thief); the platform under attack and another one; the platform's inline verifier."""

    ex: Exchange
    holder: Party
    bob: Party
    adv: Party
    thief: Party
    platform: Party
    elsewhere: Party
    verifier: Verifier

    def licence(self) -> records_pb2.LicenceRecord:
        """A fresh licence of the holder's photo to the licensee (30 days, in France)."""
        return issue_licence(self.holder, self.adv)


@contextmanager
def world(data_dir: Path) -> Iterator[World]:
    ex = start_exchange(data_dir)
    try:
        holder, bob, adv, thief, platform, elsewhere = (ex.party() for _ in range(6))
        register_holder(holder)
        register_holder(bob, "bob")
        register_advertiser(adv)
        register_advertiser(thief, "Thief Ads")
        register_platform(platform, AUDIENCE)
        register_platform(elsewhere, ELSEWHERE)
        verifier, channel = start_verifier(ex.address, AUDIENCE, staleness_seconds=BOUND)
        try:
            yield World(ex, holder, bob, adv, thief, platform, elsewhere, verifier)
        finally:
            verifier.close()
            channel.close()
    finally:
        ex.stop()


@pytest.fixture(scope="module")
def w(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One world for the attacks that need no exchange of their own."""
    with world(tmp_path_factory.mktemp("attacks") / "data") as made:
        yield made


def presented(
    key: PrivateKey,
    lic: records_pb2.LicenceRecord,
    use: IntendedUse,
    *,
    audience: str = AUDIENCE,
    nonce: bytes | None = None,
) -> str:
    """A presentation of ``lic`` for ``use``, signed by ``key``, now."""
    return present(key, lic.licence_id, audience, use, int(time.time()), nonce)


def at_exchange(
    platform: Party, token: str, pres: str | None, use: IntendedUse
) -> verification_pb2.VerifyResponse:
    """The platform asks the exchange's Verify about exactly this token and presentation."""
    return platform.call(
        verification_pb2,
        "Verify",
        verification_pb2.VerifyRequest(token=token, presentation=pres or "", use=use.to_proto()),
        verification_pb2.VerifyResponse,
    )


def report(
    platform: Party, token: str, pres: str | None, use: IntendedUse
) -> verification_pb2.ReportUseResponse:
    """The platform reports one use (a fresh report id) with exactly this presentation."""
    return platform.call(
        verification_pb2,
        "ReportUse",
        verification_pb2.ReportUseRequest(
            report_id=secrets.token_bytes(16),
            token=token,
            presentation=pres or "",
            use=use.to_proto(),
        ),
        verification_pb2.ReportUseResponse,
    )


def denied_everywhere(
    platform: Party,
    verifier: Verifier,
    token: str,
    pres: str | None,
    use: IntendedUse,
    expected: list[Reason],
) -> tuple[verification_pb2.VerifyResponse, Decision]:
    """The exchange's Verify and the platform's inline verifier both DENY with exactly
    ``expected``; their answers, for more checks."""
    remote = at_exchange(platform, token, pres, use)
    assert (remote.allowed, reasons(remote)) == (False, expected)
    inline = verifier.check(token, pres, use)
    assert (inline.allowed, list(inline.reasons)) == (False, expected)
    return remote, inline


def refused(code: Any, reason: Reason, fn: Callable[[], object]) -> ExchangeError:
    """Run ``fn``: it must fail with the gRPC status ``code`` and the ErrorInfo ``reason``."""
    with pytest.raises(ExchangeError) as e:
        fn()
    assert (e.value.code, e.value.reason) == (code, reason), repr(e.value)
    return e.value


def footprint(w: World, lic: records_pb2.LicenceRecord) -> tuple[int, ...]:
    """What an attack on ``lic`` could change, read through the API: the licence's revocation
    time and uses, the status list's sequence, the public log's size, both advertisers'
    available money, and how many accesses the holder's access log shows."""
    record = w.holder.call(
        licences_pb2,
        "GetLicence",
        licences_pb2.GetLicenceRequest(licence_id=lic.licence_id),
        licences_pb2.GetLicenceResponse,
    ).licence
    signed = w.holder.call(
        licences_pb2,
        "GetStatusSnapshot",
        licences_pb2.GetStatusSnapshotRequest(),
        licences_pb2.GetStatusSnapshotResponse,
    ).snapshot
    sequence = status_pb2.StatusListSnapshot.FromString(signed.snapshot).sequence
    note = w.holder.rpc.unary(
        methods.path(transparency_pb2, "GetCheckpoint"),
        transparency_pb2.GetCheckpointRequest(),
        transparency_pb2.GetCheckpointResponse,
    ).checkpoint
    money = [
        p.call(
            ledger_pb2,
            "GetStatement",
            ledger_pb2.GetStatementRequest(page_size=1),
            ledger_pb2.GetStatementResponse,
        ).available_minor
        for p in (w.adv, w.thief)
    ]
    accesses = w.holder.call(
        licences_pb2,
        "ListAccesses",
        licences_pb2.ListAccessesRequest(),
        licences_pb2.ListAccessesResponse,
    ).accesses
    log_size = int(note.splitlines()[1])
    return (record.revoked_at, record.uses, sequence, log_size, *money, len(accesses))


def reissued(token: str, **changes: Any) -> str:
    """``token`` with its claims changed and its envelope (both signatures) kept."""
    env = licence_pb2.SignedLicence.FromString(b64url_decode(token[5:]))
    env.claims = dataclasses.replace(LicenceClaims.decode(env.claims), **changes).encode()
    return token[:5] + b64url_encode(env.SerializeToString(deterministic=True))


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field, encoded by hand."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def nested_groups(depth: int) -> bytes:
    """An unknown field ``depth`` groups deep (wire types 3 and 4): recursion in the parser
    itself, past protobuf's limit of 100."""
    return _varint(UNKNOWN_FIELD << 3 | 3) * depth + _varint(UNKNOWN_FIELD << 3 | 4) * depth


def nested_fields(depth: int) -> bytes:
    """An unknown length-delimited field nested ``depth`` deep."""
    inner = b""
    for _ in range(depth):
        inner = _field(UNKNOWN_FIELD, inner)
    return inner


# -- the licence at the platform ------------------------------------------------------------------


@pytest.mark.parametrize("presentation", ["signed-by-the-thief", "none", "empty"])
def test_attack_a_stolen_token_without_the_licensees_key(w: World, presentation: str) -> None:
    """A token stolen without the licensee's key passes nowhere: WRONG_LICENSEE (an empty
    presentation is no presentation, at the exchange and inline alike)."""
    lic, use = w.licence(), photo_use()
    nonce = secrets.token_bytes(16)
    pres = {
        "signed-by-the-thief": presented(w.thief.key, lic, use, nonce=nonce),
        "none": None,
        "empty": "",
    }[presentation]
    before = footprint(w, lic)
    remote, inline = denied_everywhere(
        w.platform, w.verifier, lic.token, pres, use, [Reason.WRONG_LICENSEE]
    )
    assert remote.licence_id == lic.licence_id  # the token itself is genuine
    assert inline.licence is not None
    refused(
        C.PERMISSION_DENIED, Reason.WRONG_LICENSEE, lambda: report(w.platform, lic.token, pres, use)
    )
    assert footprint(w, lic) == before
    # The forgery burnt no nonce: the licensee's own presentation with it still passes.
    genuine = presented(w.adv.key, lic, use, nonce=nonce)
    assert at_exchange(w.platform, lic.token, genuine, use).allowed
    assert w.verifier.check(lic.token, genuine, use).allowed


def test_attack_a_replayed_presentation(w: World) -> None:
    """A presentation accepted once is REPLAYED the second time, and counts no second use."""
    lic, use = w.licence(), photo_use()
    pres = presented(w.adv.key, lic, use)
    assert at_exchange(w.platform, lic.token, pres, use).allowed
    assert w.verifier.check(lic.token, pres, use).allowed
    denied_everywhere(w.platform, w.verifier, lic.token, pres, use, [Reason.REPLAYED])
    counted = presented(w.adv.key, lic, use)
    assert report(w.platform, lic.token, counted, use).uses == 1
    before = footprint(w, lic)
    # The same presentation under a new report id: no second use, no second charge.
    refused(
        C.FAILED_PRECONDITION, Reason.REPLAYED, lambda: report(w.platform, lic.token, counted, use)
    )
    assert footprint(w, lic) == before


def test_attack_a_replayed_presentation_after_a_restart(tmp_path: Path) -> None:
    """The exchange's memory of presentation nonces dies with its process; the nonce a
    counted use spent does not: after a restart the same presentation counts no second use."""
    data = tmp_path / "data"
    ex = start_exchange(data)
    try:
        holder, adv, platform = (ex.party() for _ in range(3))
        register_holder(holder)
        register_advertiser(adv)
        register_platform(platform, AUDIENCE)
        lic, use = issue_licence(holder, adv), photo_use()
        pres = presented(adv.key, lic, use)
        assert report(platform, lic.token, pres, use).uses == 1
        ex.stop()
        ex = start_exchange(data)
        platform = Party(platform.key, SignedChannel(ex.channel(), platform.key), ex)
        refused(
            C.FAILED_PRECONDITION, Reason.REPLAYED, lambda: report(platform, lic.token, pres, use)
        )
        assert report(platform, lic.token, presented(adv.key, lic, use), use).uses == 2
    finally:
        ex.stop()


def test_attack_a_presentation_for_another_platform(w: World) -> None:
    """A presentation made for another platform is WRONG_AUDIENCE here, and stays good there."""
    lic, use = w.licence(), photo_use()
    pres = presented(w.adv.key, lic, use, audience=ELSEWHERE)
    before = footprint(w, lic)
    denied_everywhere(w.platform, w.verifier, lic.token, pres, use, [Reason.WRONG_AUDIENCE])
    refused(
        C.PERMISSION_DENIED, Reason.WRONG_AUDIENCE, lambda: report(w.platform, lic.token, pres, use)
    )
    assert footprint(w, lic) == before
    # The refusals burnt nothing: the platform it was made for accepts it, once.
    assert at_exchange(w.elsewhere, lic.token, pres, use).allowed


@pytest.mark.parametrize(
    ("edit", "use"),
    [
        pytest.param(
            lambda s: dataclasses.replace(s, territories=frozenset({"WORLD"})),
            photo_use(where="US"),
            id="territory-widened",
        ),
        pytest.param(
            lambda s: dataclasses.replace(s, purposes=s.purposes | {Purpose.POLITICAL_CAMPAIGN}),
            photo_use(Purpose.POLITICAL_CAMPAIGN),
            id="purpose-added",
        ),
    ],
)
def test_attack_a_token_with_its_scope_edited(
    w: World, edit: Callable[[Any], Any], use: IntendedUse
) -> None:
    """The licensee widens its own licence's scope: both signatures fail (BAD_SIGNATURE,
    BAD_CONSENT) and nothing in the claims is trusted."""
    lic = w.licence()
    forged = reissued(lic.token, scope=edit(parse_token(lic.token).scope))
    pres = presented(w.adv.key, lic, use)
    before = footprint(w, lic)
    expected = [Reason.BAD_SIGNATURE, Reason.BAD_CONSENT]
    remote, inline = denied_everywhere(w.platform, w.verifier, forged, pres, use, expected)
    assert (remote.licence_id, inline.licence) == (b"", None)  # not authenticated
    refused(C.INVALID_ARGUMENT, Reason.BAD_SIGNATURE, lambda: report(w.platform, forged, pres, use))
    assert footprint(w, lic) == before


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        pytest.param("unknown", Reason.UNKNOWN_ISSUER_KEY, id="unknown"),
        pytest.param("retired", Reason.ISSUER_KEY_NOT_VALID, id="retired"),
    ],
)
def test_attack_a_token_signed_by_an_unknown_or_retired_issuer_key(
    tmp_path: Path, key: str, reason: Reason
) -> None:
    """A licence signed by a key the exchange never published (UNKNOWN_ISSUER_KEY), or by a
    retired key stolen from the keys directory after its window closed
    (ISSUER_KEY_NOT_VALID), is refused — even with the holder's genuine consent."""
    with world(tmp_path / "data") as w:
        lic = w.licence()
        claims = parse_token(lic.token).claims
        signer, issued_at = PrivateKey.generate(), claims.issued_at
        if key == "retired":
            keyring = w.ex.app.deps.keyring
            keyring.rotate(int(time.time()))
            retired = keyring.resolve(claims.issuer_key_id)
            assert retired is not None
            assert retired.not_after is not None
            stolen = keyring.keys_dir / f"{claims.issuer_key_id.hex()}.key"
            signer, issued_at = PrivateKey.from_seed(stolen.read_bytes()), retired.not_after
        data = dataclasses.replace(
            claims,
            licence_id=new_licence_id(issued_at),
            issuer_key_id=signer.public.key_id,
            issued_at=issued_at,
        ).encode()
        genuine = parse_token(lic.token).promise
        assert genuine is not None
        # A promise that holds, so that only the key is wrong.
        promise = LogPromise(genuine.index, max(genuine.logged_at, issued_at))
        forged = issue(signer, data, approve(w.holder.key, data), promise=promise)
        use = photo_use()
        pres = present(w.adv.key, parse_token(forged).licence_id, AUDIENCE, use, int(time.time()))
        before = footprint(w, lic)
        # A verifier that started after the rotation (a running one learns of it at its next
        # key refresh: docs/threat-model.md).
        fresh, channel = start_verifier(w.ex.address, AUDIENCE)
        try:
            denied_everywhere(w.platform, fresh, forged, pres, use, [reason])
        finally:
            fresh.close()
            channel.close()
        refused(C.FAILED_PRECONDITION, reason, lambda: report(w.platform, forged, pres, use))
        assert footprint(w, lic) == before


def test_attack_a_licence_the_exchange_never_logged_is_refused_everywhere(tmp_path: Path) -> None:
    """A misbehaving exchange signs, with its own current issuer key, a v2 licence carrying
    the holder's genuine consent but no log promise (so her audit would never find it), or
    a promise dated before the licence was issued: every verifier refuses it, NOT_LOGGED,
    and nothing changes at the exchange."""
    with world(tmp_path / "data") as w:
        lic = w.licence()
        claims = parse_token(lic.token).claims
        signer = w.ex.app.deps.keyring.private(claims.issuer_key_id)
        assert signer is not None
        use = photo_use()
        fresh, channel = start_verifier(w.ex.address, AUDIENCE)
        try:
            for promise in (None, LogPromise(0, claims.issued_at - 1)):
                data = dataclasses.replace(
                    claims, licence_id=new_licence_id(claims.issued_at)
                ).encode()
                consent = approve(w.holder.key, data)
                forged = _signed_token(signer, data, consent, promise, v2=True)
                assert forged.startswith("lic2.")
                now = int(time.time())
                pres = present(w.adv.key, parse_token(forged).licence_id, AUDIENCE, use, now)
                before = footprint(w, lic)
                denied_everywhere(w.platform, fresh, forged, pres, use, [Reason.NOT_LOGGED])
                assert footprint(w, lic) == before
        finally:
            fresh.close()
            channel.close()


# -- revocation -----------------------------------------------------------------------------------


@dataclass
class StaleView:
    """A verifier that heard the exchange last at ``fresh_at``, and a licence the exchange
    revoked since; ``check(token, presentation, use, now)`` asks that verifier."""

    check: Callable[[str, str, IntendedUse, int], Decision]
    fresh_at: int
    licence: records_pb2.LicenceRecord
    adv: Party
    #: The platform, at an exchange that knows of the revocation.
    platform: Party


@contextmanager
def engine_with_a_stale_view(data_dir: Path) -> Iterator[StaleView]:
    """The protocol engine over a status view loaded once from the exchange, never updated."""
    with world(data_dir) as w:
        lic = w.licence()
        public = SignedChannel(w.ex.channel(), None)
        keys = fetch_issuer_keys(public, 5)
        view = StatusView(fetch_status_snapshot(public, keys, 5), BOUND)
        engine = VerificationEngine(keys, view, audience=AUDIENCE, nonces=MemoryNonceStore())
        revoke_licence(w.holder, lic.licence_id)

        def check(token: str, pres: str, use: IntendedUse, now: int) -> Decision:
            return engine.verify(token, use, now, presentation=pres)

        yield StaleView(check, view.fresh_at, lic, w.adv, w.platform)


@contextmanager
def verifier_whose_exchange_went_away(data_dir: Path) -> Iterator[StaleView]:
    """The platform's verifier, following the exchange until the exchange goes away; the
    exchange comes back where this verifier cannot reach it, and the holder revokes there."""
    first = start_exchange(data_dir)
    first_running, second = True, None
    try:
        holder, adv, platform = registered(first, AUDIENCE)
        lic = issue_licence(holder, adv)
        v, channel = start_verifier(first.address, AUDIENCE, staleness_seconds=BOUND)
        try:
            wait_for(lambda: v.connected, 5)
            first.stop()
            first_running = False
            wait_for(lambda: not v.connected, 5)  # the last heartbeat it will hear is in
            second = start_exchange(data_dir)
            revoke_licence(
                Party(holder.key, SignedChannel(second.channel(), holder.key)), lic.licence_id
            )
            at_second = Party(platform.key, SignedChannel(second.channel(), platform.key))

            def check(token: str, pres: str, use: IntendedUse, now: int) -> Decision:
                return v.check(token, pres, use, now)

            yield StaleView(check, v.fresh_at, lic, adv, at_second)
        finally:
            v.close()
            channel.close()
    finally:
        if first_running:
            first.stop()
        if second is not None:
            second.stop()


@pytest.mark.parametrize(
    "stale",
    [engine_with_a_stale_view, verifier_whose_exchange_went_away],
    ids=["engine", "verifier"],
)
def test_attack_a_revoked_licence_under_a_stale_view(
    tmp_path: Path, stale: Callable[[Path], AbstractContextManager[StaleView]]
) -> None:
    """A verifier that has not heard the exchange for longer than its bound cannot know a
    licence was revoked meanwhile: it answers STATUS_STALE (fails closed), never ALLOW."""
    with stale(tmp_path / "data") as s:
        use = photo_use()

        def at(now: int) -> Decision:
            pres = present(s.adv.key, s.licence.licence_id, AUDIENCE, use, now)
            return s.check(s.licence.token, pres, use, now)

        assert reasons(verify(s.platform, s.adv, s.licence.token, use)) == [Reason.REVOKED]
        # Up to its bound the view cannot know: the window the bound buys (threat model) …
        assert at(s.fresh_at + BOUND).allowed
        # … and one second past it, it fails closed.
        past = at(s.fresh_at + BOUND + 1)
        assert (past.allowed, past.reasons) == (False, (Reason.STATUS_STALE,))


def test_attack_cutting_one_replica_off_its_database(tmp_path: Path, pg_server: PgServer) -> None:
    """Replica B alone is cut off the shared database (by an attacker on its link, or an
    outage) while a licence is revoked at replica A. B answers STATUS_STALE
    once past its bound, and so do an inline verifier and a verify-only replica that follow B:
    neither may be fresher than B, so neither allows the revoked licence once its own bound
    has passed. When B's database is back, all three deny it as REVOKED."""
    url = pg_server.create_database(pg_server.template)
    proxy = SocketProxy(pg_server.sock)
    a = start_exchange(tmp_path / "data", db=url)
    b = start_exchange(tmp_path / "data", db=proxy.url(url.split("?")[0].rsplit("/", 1)[1]))
    verifier, raw = None, None
    replica = None
    try:
        holder, adv, platform = registered(a, AUDIENCE)
        licence = issue_licence(holder, adv)
        use = photo_use()
        bound = 3  # the verifier's; B's own is three heartbeats, 3 s here too
        verifier, raw = start_verifier(b.address, AUDIENCE, staleness_seconds=bound)
        replica = start_replica(b.address)
        at_replica = replica.party(platform.key)
        platform_b = Party(platform.key, SignedChannel(b.channel(), platform.key), b)

        def inline() -> tuple[Reason, ...]:
            pres = present(adv.key, licence.licence_id, AUDIENCE, use, int(time.time()))
            return verifier.check(licence.token, pres, use).reasons

        def answers() -> dict[str, list[Reason]]:
            return {
                "b": reasons(verify(platform_b, adv, licence.token, use)),
                "inline": list(inline()),
                "replica": reasons(verify(at_replica, adv, licence.token, use)),
            }

        wait_for(lambda: answers() == {"b": [], "inline": [], "replica": []}, 5)
        proxy.cut()
        revoke_licence(holder, licence.licence_id)
        revoked_at = time.monotonic()
        stale = {k: [Reason.STATUS_STALE] for k in ("b", "inline", "replica")}
        seen = answers()  # within the bounds they cannot know yet: the window a bound buys
        while seen != stale and time.monotonic() - revoked_at < bound + 8:
            time.sleep(0.1)
            seen = answers()
        assert seen == stale
        # and so it stays while B cannot read its store: nothing allows the revoked licence
        allowed = []
        while time.monotonic() - revoked_at < bound + 6:
            seen = answers()
            allowed += [k for k, v in seen.items() if not v]
            time.sleep(0.2)
        assert allowed == []
        assert answers() == stale

        proxy.restore()
        revoked = {k: [Reason.REVOKED] for k in ("b", "inline", "replica")}
        wait_for(lambda: answers() == revoked, 20)
    finally:
        if replica is not None:
            replica.stop()
        if verifier is not None:
            verifier.close()
        if raw is not None:
            raw.close()
        b.stop()
        a.stop()
        proxy.close()


@pytest.mark.parametrize(
    ("who", "code", "reason"),
    [
        pytest.param("another-holder", C.NOT_FOUND, Reason.NOT_FOUND, id="another-holder"),
        pytest.param("its-licensee", C.PERMISSION_DENIED, Reason.NOT_OWNER, id="its-licensee"),
    ],
)
def test_attack_revoking_someone_elses_licence(
    w: World, who: str, code: Any, reason: Reason
) -> None:
    """Another holder (or the licensee, after a refund) cannot revoke a holder's licence: it
    stays live everywhere, nothing is logged, no money moves."""
    lic = w.licence()
    attacker = w.bob if who == "another-holder" else w.adv
    before = footprint(w, lic)
    err = refused(code, reason, lambda: revoke_licence(attacker, lic.licence_id))
    if who == "another-holder":  # exactly what a licence that does not exist answers
        nothing = refused(
            code, reason, lambda: revoke_licence(attacker, new_licence_id(int(time.time())))
        )
        assert err.message == nothing.message
    assert footprint(w, lic) == before
    assert verify(w.platform, w.adv, lic.token, photo_use()).allowed
    assert w.verifier.check(lic.token, presented(w.adv.key, lic, photo_use()), photo_use()).allowed


@pytest.mark.parametrize(
    ("who", "what"),
    [
        ("another-advertiser", "licence"),
        ("another-advertiser", "asset"),
        ("another-holder", "licence"),
        ("a-platform", "licence"),
    ],
)
def test_attack_reading_another_partys_licence_or_asset(w: World, who: str, what: str) -> None:
    """Another advertiser can neither read a licence nor fetch the asset under it (nor can
    another holder read it): NOT_FOUND, exactly as for a licence that does not exist, and the
    holder's access log shows nothing. A platform, whose role has no licences, is NOT_OWNER
    as at every call not for its role, whether the licence exists or not."""
    lic = w.licence()
    reader = {"another-advertiser": w.thief, "another-holder": w.bob, "a-platform": w.platform}

    def read(licence_id: bytes) -> object:
        if what == "asset":
            return reader[who].call(
                licences_pb2,
                "FetchAsset",
                licences_pb2.FetchAssetRequest(licence_id=licence_id, sha256=PHOTO_SHA),
                licences_pb2.FetchAssetResponse,
            )
        return reader[who].call(
            licences_pb2,
            "GetLicence",
            licences_pb2.GetLicenceRequest(licence_id=licence_id),
            licences_pb2.GetLicenceResponse,
        )

    before = footprint(w, lic)
    code, reason = (
        (C.PERMISSION_DENIED, Reason.NOT_OWNER)
        if who == "a-platform"
        else (C.NOT_FOUND, Reason.NOT_FOUND)
    )
    err = refused(code, reason, lambda: read(lic.licence_id))
    nothing = refused(code, reason, lambda: read(new_licence_id(int(time.time()))))
    assert err.message == nothing.message
    assert footprint(w, lic) == before


# -- signed requests ------------------------------------------------------------------------------

SET_TERMS = method_path(registry_pb2, "SetTerms")


def terms_at(price_per_day: int) -> registry_pb2.SetTermsRequest:
    terms = records_pb2.Terms()
    terms.CopyFrom(TERMS)
    terms.price_per_day_minor = price_per_day
    return registry_pb2.SetTermsRequest(terms=terms)


def price_of(holder: Party) -> int:
    return holder.call(
        registry_pb2,
        "GetTerms",
        registry_pb2.GetTermsRequest(),
        registry_pb2.GetTermsResponse,
    ).terms.price_per_day_minor


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        pytest.param("same-process", (Reason.REPLAYED_REQUEST,), id="same-process"),
        # The nonce it spent is in the store, written with the change the call made (the
        # window does not start at the process's start).
        pytest.param("after-a-restart", (Reason.REPLAYED_REQUEST,), id="after-a-restart"),
        pytest.param(
            "after-a-restart-signed-ahead",
            (Reason.REPLAYED_REQUEST,),
            id="after-a-restart-signed-ahead",
        ),
    ],
)
def test_attack_a_replayed_signed_request(
    tmp_path: Path, when: str, expected: tuple[Reason, ...]
) -> None:
    """A signed call captured on the wire and sent again is refused and changes nothing: an
    old SetTerms that would put the holder's price back down."""
    clock = ManualClock()
    data = tmp_path / "data"
    ex = start_exchange(data, clock=clock)
    try:
        key = PrivateKey.generate()
        holder = Party(key, SignedChannel(ex.channel(), key, clock=clock.now), ex)
        register_holder(holder)
        cheap = terms_at(1).SerializeToString(deterministic=True)
        ahead = 30 if when.endswith("ahead") else 0  # the holder's clock runs 30 s fast
        captured = sign_request(key, SET_TERMS, cheap, clock.now() + ahead)
        raw_unary(ex.channel(), SET_TERMS, cheap, captured)  # her own call, seen on the wire
        holder.call(registry_pb2, "SetTerms", terms_at(500), registry_pb2.SetTermsResponse)
        if when != "same-process":
            ex.stop()
            clock.offset += 1  # the exchange is back the next second
            ex = start_exchange(data, clock=clock)
            holder = Party(key, SignedChannel(ex.channel(), key, clock=clock.now), ex)
        with pytest.raises(ExchangeError) as e:
            raw_unary(ex.channel(), SET_TERMS, cheap, captured)
        assert e.value.code == C.UNAUTHENTICATED
        assert e.value.reason in expected
        assert price_of(holder) == 500
    finally:
        ex.stop()


GET_TERMS = method_path(registry_pb2, "GetTerms")


def test_a_restart_neither_refuses_a_lagging_clock_nor_forgets_a_read(tmp_path: Path) -> None:
    """A call stamped a few seconds before the exchange restarted (a client whose clock lags)
    is accepted after the restart, while a read answered before the restart and replayed
    after it (its answer is private) is refused: every signed call's nonce is in the store
    before its answer leaves, so the window does not depend on when the process started."""
    clock = ManualClock()
    data = tmp_path / "data"
    ex = start_exchange(data, clock=clock)
    try:
        key = PrivateKey.generate()
        register_holder(Party(key, SignedChannel(ex.channel(), key, clock=clock.now), ex))
        body = registry_pb2.GetTermsRequest().SerializeToString(deterministic=True)
        read = sign_request(key, GET_TERMS, body, clock.now())
        before = raw_unary(ex.channel(), GET_TERMS, body, read)  # answered, then captured
        lagging_read = sign_request(key, GET_TERMS, body, clock.now() - 5)
        cheap = terms_at(1).SerializeToString(deterministic=True)
        lagging_change = sign_request(key, SET_TERMS, cheap, clock.now() - 5)
        ex.stop()
        clock.offset += 1  # the exchange is back the next second
        ex = start_exchange(data, clock=clock)
        holder = Party(key, SignedChannel(ex.channel(), key, clock=clock.now), ex)
        # Stamped 6 s before the server's clock now, and before it started: accepted.
        assert raw_unary(ex.channel(), GET_TERMS, body, lagging_read) == before
        raw_unary(ex.channel(), SET_TERMS, cheap, lagging_change)
        assert price_of(holder) == 1
        # The read answered before the restart, sent again: refused.
        with pytest.raises(ExchangeError) as e:
            raw_unary(ex.channel(), GET_TERMS, body, read)
        assert (e.value.code, e.value.reason) == (C.UNAUTHENTICATED, Reason.REPLAYED_REQUEST)
        # So are the calls just accepted, after yet another restart.
        ex.stop()
        ex = start_exchange(data, clock=clock)
        for method, sent, metadata in (
            (GET_TERMS, body, lagging_read),
            (SET_TERMS, cheap, lagging_change),
        ):
            with pytest.raises(ExchangeError) as e:
                raw_unary(ex.channel(), method, sent, metadata)
            assert e.value.reason == Reason.REPLAYED_REQUEST
    finally:
        ex.stop()


WATCH_EVENTS = method_path(licences_pb2, "WatchLicenceEvents")


def _first_streamed(channel: grpc.Channel, method: str, body: bytes, metadata: Any) -> bytes:
    """The first message of a response stream sent exactly ``body`` and ``metadata``."""
    stream = channel.unary_stream(method, request_serializer=None, response_deserializer=None)
    responses = stream(body, metadata=metadata, timeout=10)
    try:
        return bytes(next(responses))
    except grpc.RpcError as e:
        raise exchange_error(e) from None
    finally:
        responses.cancel()


def test_a_stream_answered_before_a_restart_cannot_be_replayed_after_it(tmp_path: Path) -> None:
    """A signed response stream (a licensee's WatchLicenceEvents) spends its nonce in the
    store before its first message: replayed after a restart, it is refused."""
    clock = ManualClock()
    data = tmp_path / "data"
    ex = start_exchange(data, clock=clock)
    try:
        key = PrivateKey.generate()
        adv = Party(key, SignedChannel(ex.channel(), key, clock=clock.now), ex)
        register_advertiser(adv, funds=0)
        body = licences_pb2.WatchLicenceEventsRequest().SerializeToString(deterministic=True)
        watched = sign_request(key, WATCH_EVENTS, body, clock.now())
        assert _first_streamed(ex.channel(), WATCH_EVENTS, body, watched)  # a heartbeat
        ex.stop()
        clock.offset += 1
        ex = start_exchange(data, clock=clock)
        with pytest.raises(ExchangeError) as e:
            _first_streamed(ex.channel(), WATCH_EVENTS, body, watched)
        assert e.value.reason == Reason.REPLAYED_REQUEST
    finally:
        ex.stop()


def test_attack_a_request_signed_for_another_method(w: World) -> None:
    """The holder's signature on a harmless GetLicence, sent with the very same bytes to
    RevokeLicence (same message shape), is refused: the method is signed."""
    lic = w.licence()
    body = licences_pb2.GetLicenceRequest(licence_id=lic.licence_id).SerializeToString(
        deterministic=True
    )
    assert licences_pb2.RevokeLicenceRequest.FromString(body).licence_id == lic.licence_id
    signed_for = method_path(licences_pb2, "GetLicence")
    metadata = sign_request(w.holder.key, signed_for, body, int(time.time()))
    channel = w.ex.channel()
    before = footprint(w, lic)
    refused(
        C.UNAUTHENTICATED,
        Reason.BAD_REQUEST_SIGNATURE,
        lambda: raw_unary(channel, method_path(licences_pb2, "RevokeLicence"), body, metadata),
    )
    assert footprint(w, lic) == before
    # The refusal burnt no nonce: the call it was signed for goes through (once).
    got = licences_pb2.GetLicenceResponse.FromString(raw_unary(channel, signed_for, body, metadata))
    assert (got.licence.licence_id, got.licence.revoked_at) == (lic.licence_id, 0)


@pytest.mark.parametrize("skew", [-3600, -65, 65, 3600])
def test_attack_a_clock_skewed_past_the_window(w: World, skew: int) -> None:
    """A call stamped more than the 60-second window away from the exchange's clock (an old
    capture, a client clock set back or ahead) is STALE_REQUEST and changes nothing."""
    key = w.bob.key
    skewed = Party(key, SignedChannel(w.ex.channel(), key, clock=lambda: int(time.time()) + skew))
    before = price_of(w.bob)
    refused(
        C.UNAUTHENTICATED,
        Reason.STALE_REQUEST,
        lambda: skewed.call(registry_pb2, "SetTerms", terms_at(1), registry_pb2.SetTermsResponse),
    )
    assert price_of(w.bob) == before


# -- resources ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "code"),
    [
        pytest.param(64 * 1024, C.INVALID_ARGUMENT, id="over-the-method-cap"),
        pytest.param(3 * 1024 * 1024, C.RESOURCE_EXHAUSTED, id="over-the-server-cap"),
    ],
)
def test_attack_an_oversized_message(w: World, size: int, code: Any) -> None:
    """A request over the method's cap (64 KiB) or the server's (2 MiB) is TOO_LARGE, refused
    before its signature is checked or its bytes parsed; the exchange serves on."""
    big = registry_pb2.UpdateProfileRequest(display_name="x" * size)

    def name() -> str:
        return w.holder.call(
            registry_pb2,
            "GetProfile",
            registry_pb2.GetProfileRequest(),
            registry_pb2.GetProfileResponse,
        ).profile.display_name

    before = name()
    refused(
        code,
        Reason.TOO_LARGE,
        lambda: w.holder.call(
            registry_pb2, "UpdateProfile", big, registry_pb2.UpdateProfileResponse
        ),
    )
    assert name() == before


@pytest.mark.parametrize("part", ["token", "presentation", "presentation-far-over"])
def test_attack_an_oversized_token_or_presentation(w: World, part: str) -> None:
    """A token over 4096 characters is TOO_LARGE alone; a presentation over 1024 characters
    is TOO_LARGE beside the licence's own reasons (here a use out of scope), at the exchange
    and inline alike, however far over it is; nothing is decoded and the genuine
    presentation it was padded from is not burnt."""
    lic, use = w.licence(), photo_use()
    pres = presented(w.adv.key, lic, use)
    token, padded, asked = lic.token, pres, use
    expected = [Reason.TOO_LARGE]
    if part == "token":
        token = lic.token + "A" * (4097 - len(lic.token))
    else:
        padded = pres + "A" * ((1025 if part == "presentation" else 4000) - len(pres))
        asked = photo_use(where="US")
        expected = [Reason.OUT_OF_SCOPE_TERRITORY, Reason.TOO_LARGE]
    before = footprint(w, lic)
    denied_everywhere(w.platform, w.verifier, token, padded, asked, expected)
    assert footprint(w, lic) == before
    assert at_exchange(w.platform, lic.token, pres, use).allowed
    assert w.verifier.check(lic.token, pres, use).allowed


@pytest.mark.parametrize(
    "nesting",
    ["groups-past-the-recursion-limit", "length-delimited-10000-deep"],
)
def test_attack_a_deeply_nested_request_body(w: World, nesting: str) -> None:
    """A validly signed Verify whose body nests an unknown field deep (groups past protobuf's
    recursion limit, or length-delimited fields 10,000 deep inside the use) is MALFORMED,
    never INTERNAL; the presentation inside it is not burnt."""
    lic, use = w.licence(), photo_use()
    pres = presented(w.adv.key, lic, use)
    head = verification_pb2.VerifyRequest(token=lic.token, presentation=pres)
    use_bytes = use.to_proto().SerializeToString(deterministic=True)
    if nesting.startswith("groups"):
        body = head.SerializeToString(deterministic=True) + _field(3, use_bytes)
        body += nested_groups(200)
    else:
        body = head.SerializeToString(deterministic=True)
        body += _field(3, use_bytes + nested_fields(10_000))
    path = method_path(verification_pb2, "Verify")
    metadata = sign_request(w.platform.key, path, body, int(time.time()))
    refused(
        C.INVALID_ARGUMENT,
        Reason.MALFORMED,
        lambda: raw_unary(w.ex.channel(), path, body, metadata),
    )
    assert at_exchange(w.platform, lic.token, pres, use).allowed


def _nested_in_claims(token: str) -> str:
    env = licence_pb2.SignedLicence.FromString(b64url_decode(token[5:]))
    env.claims += nested_groups(200)
    return token[:5] + b64url_encode(env.SerializeToString(deterministic=True))


def _nested_in_scope(token: str) -> str:
    env = licence_pb2.SignedLicence.FromString(b64url_decode(token[5:]))
    claims = licence_pb2.LicenceClaims.FromString(env.claims)
    scope = claims.scope.SerializeToString(deterministic=True) + nested_fields(600)
    claims.scope.ParseFromString(scope)  # kept as an unknown field, re-emitted as is
    env.claims = claims.SerializeToString(deterministic=True)
    return token[:5] + b64url_encode(env.SerializeToString(deterministic=True))


def _nested_presentation(pres: str) -> str:
    signed = licence_pb2.SignedPresentation.FromString(b64url_decode(pres.removeprefix("lpr1.")))
    signed.claims += nested_groups(150)
    return "lpr1." + b64url_encode(signed.SerializeToString(deterministic=True))


@pytest.mark.parametrize(
    ("where", "authenticated"),
    [
        pytest.param("token-claims", False, id="token-claims"),
        pytest.param("token-scope", False, id="token-scope"),
        pytest.param("presentation", True, id="presentation"),
    ],
)
def test_attack_a_deeply_nested_token_or_presentation(
    w: World, where: str, authenticated: bool
) -> None:
    """Deep nesting inside a token's claims (groups past the recursion limit), inside its
    scope (length-delimited, 600 deep) or inside a presentation is a DENY MALFORMED at the
    exchange and at the inline verifier, never a crash."""
    lic, use = w.licence(), photo_use()
    pres = presented(w.adv.key, lic, use)
    token = {"token-claims": _nested_in_claims, "token-scope": _nested_in_scope}.get(
        where, lambda t: t
    )(lic.token)
    sent = _nested_presentation(pres) if where == "presentation" else pres
    before = footprint(w, lic)
    remote, inline = denied_everywhere(w.platform, w.verifier, token, sent, use, [Reason.MALFORMED])
    assert (bool(remote.licence_id), inline.licence is not None) == (authenticated,) * 2
    assert footprint(w, lic) == before
    assert at_exchange(w.platform, lic.token, pres, use).allowed


def test_attack_a_flood_of_subscriptions(tmp_path: Path) -> None:
    """Past the cap on open streams, a new subscription is refused at once
    (RESOURCE_EXHAUSTED, BUSY) while unary calls still get through; a closed stream frees its
    slot."""
    ex = start_exchange(
        tmp_path / "data",
        max_streams=2,
        settings=Settings(heartbeat_seconds=0.5, max_streams_per_client=2),  # all from here
    )
    try:
        watcher = ex.party()
        request = licences_pb2.WatchRevocationsRequest(after_sequence=0)

        def open_stream() -> Generator[licences_pb2.WatchRevocationsResponse, None, None]:
            stream = watcher.stream(
                licences_pb2, "WatchRevocations", request, licences_pb2.WatchRevocationsResponse
            )
            next(stream)  # a heartbeat: the stream is open and holds its slot
            return cast("Generator[licences_pb2.WatchRevocationsResponse, None, None]", stream)

        first, second = open_stream(), open_stream()
        refused(C.RESOURCE_EXHAUSTED, Reason.BUSY, open_stream)
        # Unary calls still get through while the streams are full.
        keys = watcher.call(
            licences_pb2,
            "GetIssuerKeys",
            licences_pb2.GetIssuerKeysRequest(),
            licences_pb2.GetIssuerKeysResponse,
        )
        assert len(keys.keys.keys) == 1
        first.close()  # cancels the call; its slot comes back
        deadline = time.monotonic() + 5
        third = None
        while third is None and time.monotonic() < deadline:
            try:
                third = open_stream()
            except ExchangeError as again:
                if again.reason != Reason.BUSY:
                    raise
                time.sleep(0.1)
        assert third is not None
        third.close()
        second.close()
    finally:
        ex.stop()
