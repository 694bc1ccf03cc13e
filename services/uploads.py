"""Asset bytes in chunks: UploadAsset's stream received and checked, FetchAssetChunks' sent.

An upload is one client stream: its first message is the header (category, SHA-256, label,
total size), which is the call's signed body (:mod:`.rpc`, ``signed_over_first``), so the
holder's signature commits to the size and digest and binds every chunk that follows. Then
come the chunks, in order. :func:`read_header` and :func:`receive` refuse, before anything is
stored:

- a first message that is not a header, a header that is not a valid declaration
  (INVALID_REQUEST), or one declaring more than the operator's cap (``--max-asset-bytes``,
  TOO_LARGE) — before a single chunk is read;
- a header after the first message, an empty chunk, or more chunks than the size needs
  (one per 4 KiB, and one more) (INVALID_REQUEST); a chunk over :data:`.deps.UPLOAD_CHUNK_BYTES`
  (TOO_LARGE; the RPC layer refuses a message much larger before it is parsed);
- more bytes than the header declared, a stream that ends before them all (the client gave
  up, or was cut off), or bytes whose SHA-256 is not the header's (UPLOAD_MISMATCH).

The bytes are held in memory (one buffer, never copied) until the digest is checked, then
stored in one change. An upload holds a worker thread and up to ``--max-asset-bytes`` of
memory while it lasts, so uploads are bounded by :class:`UploadSlots` (``--max-uploads``
at once, default 4, and :data:`MAX_UPLOADS_PER_HOLDER` per holder: more are refused with
BUSY at once) and by a time budget (:func:`budget_seconds`: at least
``Settings.upload_floor_seconds``, 30 s, and one second per :data:`MIN_UPLOAD_RATE` bytes
declared): an upload still unfinished when its budget runs out is refused (BUSY, its
chunks read by a thread of its own so that a stalled client cannot hold the call's:
:func:`timed`) and nothing is stored. The memory uploads hold at most is therefore
``--max-uploads`` x ``--max-asset-bytes`` (default 4 x 50 MiB = 200 MiB).
:func:`chunks` cuts stored bytes into messages for FetchAssetChunks.
"""

from __future__ import annotations

import hashlib
import hmac
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from licentia.errors import LicentiaError, Reason
from licentia.v1 import licences_pb2, registry_pb2
from licentia.vocabulary import DataCategory

from . import market
from .counts import PerKey
from .deps import UPLOAD_CHUNK_BYTES

T = TypeVar("T")

#: The smallest chunk a client may send but for the last: the chunk count is capped at one
#: per this many bytes of the declared size, plus one.
MIN_CHUNK_BYTES = 4096
#: The uploads one holder may have in progress at once.
MAX_UPLOADS_PER_HOLDER = 2
#: The slowest an upload may be, on average, in bytes per second (64 KiB/s): its time
#: budget is its declared size at this rate, or the floor if that is longer.
MIN_UPLOAD_RATE = 64 * 1024


class UploadSlots:
    """The uploads in progress at once: at most ``limit`` in all and ``per_holder`` for one
    holder; past either, a new upload is refused with BUSY at once (it holds no thread)."""

    def __init__(self, limit: int, per_holder: int = MAX_UPLOADS_PER_HOLDER) -> None:
        if limit <= 0 or per_holder <= 0:
            raise ValueError("upload limits are positive")
        self.limit, self.per_holder = limit, per_holder
        self._lock = threading.Lock()
        self._by_holder: PerKey[bytes] = PerKey(per_holder)
        self._open = 0

    @contextmanager
    def hold(self, holder: bytes) -> Iterator[None]:
        """A slot for one upload of ``holder`` while the block runs, or BUSY."""
        with self._lock:
            if self._by_holder.held(holder) >= self.per_holder:
                raise LicentiaError(
                    Reason.BUSY,
                    f"you have {self.per_holder} uploads in progress, the most one holder may:"
                    " let one finish first",
                )
            if self._open >= self.limit:
                raise LicentiaError(
                    Reason.BUSY,
                    f"{self.limit} uploads are in progress, the most this exchange takes:"
                    " try again later",
                )
            self._open += 1
            self._by_holder.take(holder)
        try:
            yield
        finally:
            with self._lock:
                self._open -= 1
                self._by_holder.give(holder)


class Budget:
    """An upload's time budget, from now: ``seconds`` (:func:`budget_seconds`)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds

    def left(self) -> float:
        """The seconds left (0 once it has run out)."""
        return max(self.deadline - time.monotonic(), 0.0)

    def check(self) -> None:
        """Refuse (BUSY) once the budget has run out."""
        if not self.left():
            raise LicentiaError(Reason.BUSY, self.message())

    def message(self) -> str:
        """Why the upload was cut off."""
        return (
            f"the upload did not finish within its {self.seconds:g} s (at least"
            f" {MIN_UPLOAD_RATE // 1024} KiB/s): nothing stored"
        )


def budget_seconds(size: int, floor: float) -> float:
    """The time an upload of ``size`` bytes is given: ``floor``, or longer at
    :data:`MIN_UPLOAD_RATE`."""
    return max(floor, size / MIN_UPLOAD_RATE)


_END = object()


@contextmanager
def timed(requests: Iterator[T], budget: Budget) -> Iterator[Iterator[T]]:
    """``requests`` as read by a thread of its own, so that the call's thread waits for
    each at most until ``budget`` runs out, and is then refused (BUSY): the call ends with
    that refusal, which also ends the reader's wait (gRPC ends the request stream of a
    call it has answered). What the reader meets (a refusal of a message, the client gone)
    is raised in the call's thread. At most two messages wait between the two threads."""
    box: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def put(item: tuple[bool, Any]) -> bool:
        while not stop.is_set():
            try:
                box.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for request in requests:
                if not put((True, request)):
                    return
        except BaseException as e:  # noqa: BLE001 (raised in the call's thread)
            put((False, e))
            return
        put((False, _END))

    def received() -> Iterator[T]:
        while True:
            try:
                ok, value = box.get(timeout=budget.left())
            except queue.Empty:
                raise LicentiaError(Reason.BUSY, budget.message()) from None
            if ok:
                yield value
            elif value is _END:
                return
            else:
                raise value

    reader = threading.Thread(target=read, name="licentia-upload", daemon=True)
    reader.start()
    try:
        yield received()
    finally:
        stop.set()


@dataclass(frozen=True, slots=True)
class Upload:
    """An upload received whole and checked against its header."""

    category: DataCategory
    sha256: bytes
    label: str
    #: The bytes received (the receive buffer itself: never copied).
    content: bytes | bytearray


def declared(category: int, sha256: bytes, label: str) -> DataCategory:
    """The category of a declaration (DeclareAsset, an UploadAsset header) whose fields are
    valid (INVALID_REQUEST naming the field otherwise)."""
    try:
        known = DataCategory(category)
    except ValueError:
        raise LicentiaError(Reason.INVALID_REQUEST, "unknown category") from None
    if len(sha256) != 32:
        raise LicentiaError(Reason.INVALID_REQUEST, "sha256 is 32 bytes")
    market.check_text(label, "label")
    return known


def check_header(header: registry_pb2.UploadAssetHeader, max_bytes: int) -> DataCategory:
    """The header's category, once the header is a valid declaration of at most
    ``max_bytes`` (INVALID_REQUEST, TOO_LARGE)."""
    category = declared(header.category, header.sha256, header.label)
    if header.size == 0:
        raise LicentiaError(Reason.INVALID_REQUEST, "an upload has at least one byte")
    if header.size > max_bytes:
        raise LicentiaError(
            Reason.TOO_LARGE,
            f"the asset is {header.size} bytes; this exchange stores at most {max_bytes}",
        )
    return category


def read_header(
    requests: Iterator[registry_pb2.UploadAssetRequest], max_bytes: int
) -> tuple[registry_pb2.UploadAssetHeader, DataCategory]:
    """The first message of an UploadAsset stream: its header and category, checked."""
    first = next(requests, None)
    if first is None or first.WhichOneof("part") != "header":
        raise LicentiaError(Reason.INVALID_REQUEST, "the first message of an upload is its header")
    return first.header, check_header(first.header, max_bytes)


def receive(
    requests: Iterator[registry_pb2.UploadAssetRequest],
    header: registry_pb2.UploadAssetHeader,
    category: DataCategory,
    budget: Budget | None = None,
) -> Upload:
    """Read the chunks of an UploadAsset stream, after its header (:func:`read_header`),
    to its end; the upload, checked (see the module). Refused once ``budget`` runs out."""
    most_chunks = header.size // MIN_CHUNK_BYTES + 1
    received = bytearray()
    digest = hashlib.sha256()
    for count, req in enumerate(requests, start=1):
        if budget is not None:
            budget.check()
        if req.WhichOneof("part") != "chunk":
            raise LicentiaError(Reason.INVALID_REQUEST, "only chunks follow the header")
        chunk = req.chunk
        if not chunk:
            raise LicentiaError(Reason.INVALID_REQUEST, "a chunk has at least one byte")
        if len(chunk) > UPLOAD_CHUNK_BYTES:
            raise LicentiaError(
                Reason.TOO_LARGE, f"a chunk carries at most {UPLOAD_CHUNK_BYTES} bytes"
            )
        if count > most_chunks:
            raise LicentiaError(
                Reason.INVALID_REQUEST,
                f"too many chunks: at most {most_chunks} for {header.size} bytes",
            )
        if len(received) + len(chunk) > header.size:
            raise LicentiaError(
                Reason.UPLOAD_MISMATCH,
                f"more bytes than the {header.size} the header declared: nothing stored",
            )
        received += chunk
        digest.update(chunk)
    if budget is not None:
        budget.check()
    if len(received) != header.size:
        raise LicentiaError(
            Reason.UPLOAD_MISMATCH,
            f"the upload ended after {len(received)} of its {header.size} bytes: nothing stored",
        )
    if not hmac.compare_digest(digest.digest(), header.sha256):
        raise LicentiaError(
            Reason.UPLOAD_MISMATCH,
            "the bytes do not match the header's sha256: nothing stored",
        )
    # The buffer itself, not a copy of it: the store takes any bytes-like value.
    return Upload(category, header.sha256, header.label, received)


def chunks(content: bytes) -> Iterator[licences_pb2.FetchAssetChunk]:
    """``content`` as FetchAssetChunks sends it: chunks of at most
    :data:`.deps.UPLOAD_CHUNK_BYTES`, the first saying the total size."""
    view = memoryview(content)
    for at in range(0, max(len(content), 1), UPLOAD_CHUNK_BYTES):
        yield licences_pb2.FetchAssetChunk(
            chunk=bytes(view[at : at + UPLOAD_CHUNK_BYTES]), size=len(content) if at == 0 else 0
        )
