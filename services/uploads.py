"""Asset bytes in chunks: UploadAsset's stream received and checked, FetchAssetChunks' sent.

An upload is one client stream: its first message is the header (category, SHA-256, label,
total size), which is the call's signed body (:mod:`.rpc`, ``signed_over_first``), so the
holder's signature commits to the size and digest and binds every chunk that follows. Then
come the chunks, in order. :func:`receive` refuses, before anything is stored:

- a first message that is not a header, a header that is not a valid declaration
  (INVALID_REQUEST), or one declaring more than the operator's cap (``--max-asset-bytes``,
  TOO_LARGE) — before a single chunk is read;
- a header after the first message, an empty chunk, or more chunks than the size needs
  (one per 4 KiB, and one more) (INVALID_REQUEST); a chunk over :data:`.deps.UPLOAD_CHUNK_BYTES`
  (TOO_LARGE; the RPC layer refuses a message much larger before it is parsed);
- more bytes than the header declared, a stream that ends before them all (the client gave
  up, or was cut off), or bytes whose SHA-256 is not the header's (UPLOAD_MISMATCH).

The bytes are held in memory until the digest is checked (at most the cap), then stored in
one change. :func:`chunks` cuts stored bytes into messages for FetchAssetChunks.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from dataclasses import dataclass

from licentia.errors import LicentiaError, Reason
from licentia.v1 import licences_pb2, registry_pb2
from licentia.vocabulary import DataCategory

from . import market
from .deps import UPLOAD_CHUNK_BYTES

#: The smallest chunk a client may send but for the last: the chunk count is capped at one
#: per this many bytes of the declared size, plus one.
MIN_CHUNK_BYTES = 4096


@dataclass(frozen=True, slots=True)
class Upload:
    """An upload received whole and checked against its header."""

    category: DataCategory
    sha256: bytes
    label: str
    content: bytes


def check_header(header: registry_pb2.UploadAssetHeader, max_bytes: int) -> DataCategory:
    """The header's category, once the header is a valid declaration of at most
    ``max_bytes`` (INVALID_REQUEST, TOO_LARGE)."""
    try:
        category = DataCategory(header.category)
    except ValueError:
        raise LicentiaError(Reason.INVALID_REQUEST, "unknown category") from None
    if len(header.sha256) != 32:
        raise LicentiaError(Reason.INVALID_REQUEST, "sha256 is 32 bytes")
    market.check_text(header.label, "label")
    if header.size == 0:
        raise LicentiaError(Reason.INVALID_REQUEST, "an upload has at least one byte")
    if header.size > max_bytes:
        raise LicentiaError(
            Reason.TOO_LARGE,
            f"the asset is {header.size} bytes; this exchange stores at most {max_bytes}",
        )
    return category


def receive(requests: Iterator[registry_pb2.UploadAssetRequest], max_bytes: int) -> Upload:
    """Read an UploadAsset stream to its end; the upload, checked (see the module)."""
    first = next(requests, None)
    if first is None or first.WhichOneof("part") != "header":
        raise LicentiaError(Reason.INVALID_REQUEST, "the first message of an upload is its header")
    header = first.header
    category = check_header(header, max_bytes)
    most_chunks = header.size // MIN_CHUNK_BYTES + 1
    received = bytearray()
    digest = hashlib.sha256()
    for count, req in enumerate(requests, start=1):
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
    return Upload(category, header.sha256, header.label, bytes(received))


def chunks(content: bytes) -> Iterator[licences_pb2.FetchAssetChunk]:
    """``content`` as FetchAssetChunks sends it: chunks of at most
    :data:`.deps.UPLOAD_CHUNK_BYTES`, the first saying the total size."""
    view = memoryview(content)
    for at in range(0, max(len(content), 1), UPLOAD_CHUNK_BYTES):
        yield licences_pb2.FetchAssetChunk(
            chunk=bytes(view[at : at + UPLOAD_CHUNK_BYTES]), size=len(content) if at == 0 else 0
        )
