"""Assets over 1 MiB: streamed up in chunks after a signed header (UploadAsset), fetched back
in chunks (FetchAssetChunks), under the operator's cap; every bad upload refused with a
reason and nothing stored; the wallet checks a file before it asks for the passphrase."""

from __future__ import annotations

import hashlib
import io
import random
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import grpc  # type: ignore[import-untyped]
import pytest
from google.protobuf.message import Message

from licentia.clients.advertiser import Advertiser
from licentia.clients.channel import ExchangeError
from licentia.clients.holder import Holder
from licentia.clients.wallet import upload as progress
from licentia.errors import Reason
from licentia.keys import PublicKey
from licentia.request import sign_request
from licentia.services import uploads
from licentia.services.deps import Settings
from licentia.services.model import RequestState
from licentia.transport.errors import exchange_error
from licentia.v1 import licences_pb2, registry_pb2
from licentia.vocabulary import DataCategory

from .exchange_harness import (
    Exchange,
    approve_request,
    method_path,
    register_advertiser,
    register_holder,
    registered,
    request_licence,
    start_exchange,
    wait_for,
)
from .wallet_harness import Wallet, set_up

CAP = 6_000_000
CHUNK = 256 * 1024
UPLOAD = method_path(registry_pb2, "UploadAsset")


@pytest.fixture
def capped(tmp_path: Path) -> Iterator[Exchange]:
    """An exchange whose operator stores assets of at most 6 MB."""
    exchange = start_exchange(
        tmp_path / "data", settings=Settings(heartbeat_seconds=0.5, max_asset_bytes=CAP)
    )
    try:
        yield exchange
    finally:
        exchange.stop()


def _bytes(n: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(n)


def test_large_assets_go_up_and_come_back_byte_identical(capped: Exchange) -> None:
    holder, adv, _ = registered(capped)
    contents = [_bytes(1_500_000, 1), _bytes(5_000_000, 2)]
    with Holder.connect(capped.address, holder.key) as me:
        limits = me.asset_limits()
        assert (limits.max_asset_bytes, limits.chunk_bytes) == (CAP, CHUNK)
        assert limits.inline_asset_bytes == 1 << 20
        for i, content in enumerate(contents):
            seen: list[tuple[int, int]] = []

            def report(done: int, total: int, seen: list[tuple[int, int]] = seen) -> None:
                seen.append((done, total))

            asset = me.declare_asset(
                DataCategory.IMAGE,
                content,
                f"big-{i}",
                upload=True,
                progress=report,
            )
            assert (asset.has_content, asset.content_size) == (True, len(content))
            assert asset.sha256 == hashlib.sha256(content).digest()
            assert len(seen) == -(-len(content) // CHUNK)  # one report per chunk
            assert seen[-1] == (len(content), len(content))
    digests = [hashlib.sha256(c).digest() for c in contents]
    pending = request_licence(adv, holder.key.public.raw, digests=digests).request
    lic = approve_request(holder, pending).licence
    with Advertiser.connect(capped.address, adv.key) as buyer:
        for content, digest in zip(contents, digests, strict=True):
            assert buyer.fetch_asset(lic.licence_id, digest) == content
    # The one-message FetchAsset says where to go for anything over 1 MiB.
    with pytest.raises(ExchangeError) as e:
        adv.call(
            licences_pb2,
            "FetchAsset",
            licences_pb2.FetchAssetRequest(licence_id=lic.licence_id, sha256=digests[1]),
            licences_pb2.FetchAssetResponse,
        )
    assert e.value.reason == Reason.TOO_LARGE
    assert "FetchAssetChunks" in str(e.value)
    # Two fetches recorded, the refused one not.
    assert len(capped.app.deps.store.accesses(holder.key.public.raw, 10)) == 2


def _header(content: bytes, size: int | None = None, sha: bytes | None = None) -> Message:
    return registry_pb2.UploadAssetRequest(
        header=registry_pb2.UploadAssetHeader(
            category=cast("Any", int(DataCategory.IMAGE)),
            sha256=hashlib.sha256(content).digest() if sha is None else sha,
            label="photo",
            size=len(content) if size is None else size,
        )
    )


def _chunks(content: bytes, size: int = CHUNK) -> list[Message]:
    return [
        registry_pb2.UploadAssetRequest(chunk=content[at : at + size])
        for at in range(0, len(content), size)
    ]


ONE = _bytes(600_000, 3)


@pytest.mark.parametrize(
    ("messages", "reason", "says"),
    [
        pytest.param(
            [_header(ONE, sha=hashlib.sha256(b"other").digest()), *_chunks(ONE)],
            Reason.UPLOAD_MISMATCH,
            "do not match the header's sha256",
            id="wrong-digest",
        ),
        pytest.param(
            [_header(b"x", size=CAP + 1), *_chunks(b"x")],
            Reason.TOO_LARGE,
            f"stores at most {CAP}",
            id="over-the-cap",
        ),
        pytest.param(
            [_header(ONE), *_chunks(ONE)[:2]],
            Reason.UPLOAD_MISMATCH,
            f"ended after {2 * CHUNK} of its {len(ONE)} bytes",
            id="truncated",
        ),
        pytest.param(
            [_header(ONE[:100]), *_chunks(ONE[:200])],
            Reason.UPLOAD_MISMATCH,
            "more bytes than the 100",
            id="longer-than-declared",
        ),
        pytest.param(
            [_header(ONE), *_chunks(ONE, CHUNK + 1)],
            Reason.TOO_LARGE,
            f"at most {CHUNK} bytes",
            id="oversize-chunk",
        ),
        pytest.param(
            [_header(ONE), *_chunks(ONE, 2 * CHUNK)],
            Reason.TOO_LARGE,
            "may not exceed",
            id="chunk-over-the-message-cap",
        ),
        pytest.param(
            [_header(ONE[:8192]), *_chunks(ONE[:8192], 1)],
            Reason.INVALID_REQUEST,
            "too many chunks",
            id="too-many-chunks",
        ),
        pytest.param(
            [*_chunks(ONE), _header(ONE)],
            Reason.INVALID_REQUEST,
            "first message of an upload is its header",
            id="no-header-first",
        ),
        pytest.param(
            [_header(ONE), _header(ONE), *_chunks(ONE)],
            Reason.INVALID_REQUEST,
            "only chunks follow",
            id="two-headers",
        ),
        pytest.param(
            [_header(ONE), registry_pb2.UploadAssetRequest(chunk=b""), *_chunks(ONE)],
            Reason.INVALID_REQUEST,
            "at least one byte",
            id="empty-chunk",
        ),
        pytest.param(
            [_header(b"", size=0)],
            Reason.INVALID_REQUEST,
            "at least one byte",
            id="empty-upload",
        ),
    ],
)
def test_a_bad_upload_is_refused_and_stores_nothing(
    capped: Exchange, messages: Sequence[Message], reason: Reason, says: str
) -> None:
    holder, _, _ = registered(capped)
    store = capped.app.deps.store
    before = store.assets(holder.key.public.raw)
    with pytest.raises(ExchangeError) as e:
        holder.rpc.stream_unary(UPLOAD, messages, registry_pb2.UploadAssetResponse)
    assert e.value.reason == reason, repr(e.value)
    assert says in str(e.value)
    assert store.assets(holder.key.public.raw) == before


def test_the_signed_header_binds_the_upload(capped: Exchange) -> None:
    """The signature covers the header's exact bytes: a header other than the one signed
    (another size or digest, the chunks swapped for others) is refused, nothing stored."""
    holder, _, _ = registered(capped)
    store = capped.app.deps.store
    before = store.assets(holder.key.public.raw)
    other = _bytes(len(ONE), 9)
    signed = _header(ONE).SerializeToString(deterministic=True)
    sent = [_header(other).SerializeToString(deterministic=True)]
    sent += [m.SerializeToString(deterministic=True) for m in _chunks(other)]
    call = capped.channel().stream_unary(
        UPLOAD,
        request_serializer=None,
        response_deserializer=registry_pb2.UploadAssetResponse.FromString,
    )
    with pytest.raises(grpc.RpcError) as e:
        call(iter(sent), metadata=sign_request(holder.key, UPLOAD, signed, int(time.time())))
    assert exchange_error(e.value).reason == Reason.BAD_REQUEST_SIGNATURE
    assert store.assets(holder.key.public.raw) == before


def test_stalled_uploads_are_bounded_and_cut_off(tmp_path: Path) -> None:
    """Uploads that send a header and a chunk, then wait, hold no more than ``max_uploads``
    threads (and two per holder): more are refused with BUSY at once, a public call is
    answered meanwhile, the stalled ones are refused when their time is out (nothing
    stored), and their threads and slots are free again."""
    ex = start_exchange(
        tmp_path / "data",
        settings=Settings(heartbeat_seconds=0.5, max_uploads=3, upload_floor_seconds=3),
    )
    stop = threading.Event()
    try:
        alice, _, _ = registered(ex)
        bob = ex.party()
        register_holder(bob, "bob")
        store = ex.app.deps.store
        before = [store.assets(p.key.public.raw) for p in (alice, bob)]
        ended: list[tuple[ExchangeError, float]] = []

        def stalled(who: Any, seed: int) -> None:
            content = _bytes(100_000, seed)  # its budget: the 3 s floor
            head = _header(content).SerializeToString(deterministic=True)

            def messages() -> Iterator[bytes]:
                yield head
                yield _chunks(content)[0].SerializeToString()
                stop.wait(30)  # never finishes

            call = ex.channel().stream_unary(
                UPLOAD, request_serializer=None, response_deserializer=None
            )
            started = time.monotonic()
            try:
                call(messages(), metadata=sign_request(who.key, UPLOAD, head, int(time.time())))
            except grpc.RpcError as e:
                ended.append((exchange_error(e), time.monotonic() - started))

        threads = [
            threading.Thread(target=stalled, args=(who, i), daemon=True)
            for i, who in enumerate((alice, alice, bob))
        ]
        for t in threads:
            t.start()
        time.sleep(1.0)  # all three admitted, each holding a thread
        complete = [_header(ONE), *_chunks(ONE)]
        for who, says in ((alice, "the most one holder may"), (bob, "3 uploads are in progress")):
            t0 = time.monotonic()
            with pytest.raises(ExchangeError) as e:
                who.rpc.stream_unary(UPLOAD, complete, registry_pb2.UploadAssetResponse)
            assert e.value.reason == Reason.BUSY, repr(e.value)
            assert says in str(e.value)
            assert time.monotonic() - t0 < 2  # refused at once, not queued
        limits = registry_pb2.GetAssetLimitsResponse.FromString(
            ex.channel().unary_unary(method_path(registry_pb2, "GetAssetLimits"))(
                registry_pb2.GetAssetLimitsRequest().SerializeToString(), timeout=5
            )
        )
        assert limits.max_asset_bytes > 0
        for t in threads:
            t.join(15)
        assert [error.reason for error, _ in ended] == [Reason.BUSY] * 3, ended
        assert all("did not finish within its 3 s" in str(error) for error, _ in ended)
        assert all(2.5 < seconds < 10 for _, seconds in ended), ended
        # Their reader threads have ended too.
        wait_for(lambda: not any(t.name == "licentia-upload" for t in threading.enumerate()), 5)
        assert [store.assets(p.key.public.raw) for p in (alice, bob)] == before
        # The slots are free again: a whole upload goes through.
        stored = alice.rpc.stream_unary(UPLOAD, complete, registry_pb2.UploadAssetResponse)
        assert stored.asset.content_size == len(ONE)
    finally:
        stop.set()
        ex.stop()


def test_uploads_waiting_for_their_header_take_stream_slots(tmp_path: Path) -> None:
    """An UploadAsset stream holds a worker thread from the start, while it waits for its
    header too: it takes one of the open-streams slots, so past them one more is refused
    with BUSY at once, and other calls are still answered."""
    ex = start_exchange(
        tmp_path / "data",
        max_streams=2,
        settings=Settings(heartbeat_seconds=0.5, max_streams_per_client=2),  # all from here
    )
    stop = threading.Event()

    def silent() -> Iterator[bytes]:
        stop.wait(30)  # no header, ever
        yield from ()

    pending: list[Any] = []
    try:
        holder, _, _ = registered(ex)
        for _ in range(2):
            call = ex.channel().stream_unary(
                UPLOAD, request_serializer=None, response_deserializer=None
            )
            pending.append(call.future(silent()))
        time.sleep(0.5)
        with pytest.raises(ExchangeError) as e:
            holder.rpc.stream_unary(
                UPLOAD, [_header(ONE), *_chunks(ONE)], registry_pb2.UploadAssetResponse
            )
        assert e.value.reason == Reason.BUSY, repr(e.value)
        assert "too many open streams" in str(e.value)
        with Holder.connect(ex.address, holder.key) as me:
            assert me.asset_limits().max_asset_bytes > 0
    finally:
        stop.set()
        for future in pending:
            future.cancel()
        ex.stop()


def test_an_upload_is_given_time_by_its_size() -> None:
    assert uploads.budget_seconds(1000, 30) == 30
    assert uploads.budget_seconds(10 * 1024 * 1024, 30) == 160  # 10 MiB at 64 KiB/s
    with pytest.raises(ValueError, match="--max-uploads"):
        Settings(max_uploads=0)


def test_the_wallet_checks_the_file_before_the_passphrase(
    capped: Exchange, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    w = Wallet(tmp_path / "w", capped.address, capsys)
    assert w("init", "--yes")[0] == 0
    set_up(w, tmp_path)
    big = tmp_path / "huge.jpg"
    with big.open("wb") as f:
        f.truncate(CAP + 1)  # sparse: the wallet never reads it
    passphrase = w.pass_file.read_text()
    w.pass_file.unlink()  # asked for it, the command would fail on the missing file
    code, _, err = w("assets", "add", str(big), "--category", "image", "--upload")
    assert code == 1
    assert f"huge.jpg is {CAP + 1} bytes (5.7 MiB); this exchange stores at most {CAP}" in err
    assert "passphrase" not in err
    code, _, err = w("assets", "add", str(tmp_path / "none.jpg"), "--category", "image", "--upload")
    assert code == 1
    assert "cannot read" in err
    assert "passphrase" not in err
    w.pass_file.write_text(passphrase)
    photo = tmp_path / "portrait.jpg"
    content = _bytes(1_500_000, 4)
    photo.write_bytes(content)
    code, out, err = w("assets", "add", str(photo), "--category", "image", "--upload")
    assert code == 0, err
    assert "stored at the exchange" in out
    (stored,) = [a for a in w.json("assets", "list") if a["label"] == "portrait.jpg"]
    assert int(stored["content_size"]) == len(content)


def test_the_progress_bar_shows_only_for_long_transfers(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    quick = progress.ProgressBar("Uploading a.jpg", out)
    quick(1, 2)
    quick(2, 2)
    assert out.getvalue() == ""  # under a second: nothing
    monkeypatch.setattr(progress, "QUIET_SECONDS", 0.0)
    slow = progress.ProgressBar("Uploading b.jpg", out)
    slow(1 << 20, 4 << 20)
    slow(4 << 20, 4 << 20)
    lines = out.getvalue()
    assert "\rUploading b.jpg [#######" in lines
    assert " 25% 1.0/4.0 MiB" in lines
    assert lines.endswith("100% 4.0/4.0 MiB\n")


def test_a_failed_request_in_the_wallet_offers_nothing_to_revoke(
    ex: Exchange, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A request that failed reads as one that can no longer be approved: no "You can
    revoke it at any moment" (there is no licence), and nothing of the advertiser's money."""
    w = Wallet(tmp_path / "w", ex.address, capsys)
    assert w("init", "--yes")[0] == 0
    set_up(w, tmp_path)
    holder_key = PublicKey.from_text(w.json("whoami")["public_key"]).raw
    adv = ex.party()
    register_advertiser(adv)
    pending = request_licence(adv, holder_key).request
    code, out, _ = w("inbox")
    assert code == 0
    assert "You can revoke it at any moment." in out  # what a licence would allow
    ex.app.deps.store.finish_request(
        pending.request_id,
        RequestState.FAILED,
        ex.app.deps.clock.now(),
        reason="the advertiser's balance cannot pay the licence",
        failure="INSUFFICIENT_FUNDS",
    )
    code, out, err = w("inbox", "--all")
    assert code == 0, err
    assert "(failed," in out
    assert "No licence was issued: this request can no longer be approved." in out
    assert "revoke" not in out
    assert "balance" not in out
