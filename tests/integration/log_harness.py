"""The public log as the integration tests read it (and, for the auditor's tests, as a
dishonest exchange could write it): checkpoints, entries, appended entries, forged claims."""

from __future__ import annotations

import secrets
import time
from typing import Any, cast

from licentia import keys, methods, sealed
from licentia.checkpoint import Checkpoint, open_checkpoint, parse_vkey
from licentia.keys import PrivateKey
from licentia.scope import Scope
from licentia.token import Asset, LicenceClaims, PriceTerms
from licentia.v1 import transparency_pb2
from licentia.vocabulary import DataCategory, Medium, Purpose

from .exchange_harness import DAY, PHOTO_SHA, Exchange


def log_call(ex: Exchange, name: str, request: Any, response_cls: Any) -> Any:
    """A unary call to the exchange's TransparencyService (public: unsigned)."""
    call = ex.channel().unary_unary(
        methods.path(transparency_pb2, name),
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=response_cls.FromString,
    )
    return call(request, timeout=10)


def checkpoint(ex: Exchange) -> Checkpoint:
    """The exchange's signed checkpoint, opened with the verifier key it publishes."""
    resp = log_call(
        ex,
        "GetCheckpoint",
        transparency_pb2.GetCheckpointRequest(),
        transparency_pb2.GetCheckpointResponse,
    )
    name, _, key = parse_vkey(resp.verifier_key)
    return open_checkpoint(resp.checkpoint, name, key, name)


def entries(ex: Exchange, start: int = 0, end: int = 0) -> list[transparency_pb2.LogEntry]:
    """The log's entries from ``start`` (to ``end``; 0: all), in order."""
    call = ex.channel().unary_stream(
        methods.path(transparency_pb2, "GetEntries"),
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=transparency_pb2.GetEntriesResponse.FromString,
    )
    out = []
    for i, r in enumerate(call(transparency_pb2.GetEntriesRequest(start=start, end=end))):
        assert r.index == start + i
        out.append(transparency_pb2.LogEntry.FromString(r.entry))
    return out


def append(ex: Exchange, *entries: transparency_pb2.LogEntry) -> list[int]:
    """Append entries to the log as the store does (nodes too): what a dishonest exchange
    could do. Their indexes."""
    store = cast(Any, ex.app.deps.store)
    now = int(time.time())
    return [
        store._transact(lambda c, e=e: store._log(c, e, now, e.WhichOneof("kind"), b""))
        for e in entries
    ]


def issuer_key(ex: Exchange) -> PrivateKey:
    """The exchange's current issuer key, read from its key file."""
    (path,) = (ex.data_dir / "issuer-keys").glob("*.key")
    return PrivateKey.from_seed(path.read_bytes())


def claims_for(
    issuer: PrivateKey,
    holder: bytes,
    licensee: bytes,
    *,
    days: int = 30,
    purpose: Purpose = Purpose.ADVERTISING,
    issued_later: int = 0,
    starts_later: int = 0,
) -> LicenceClaims:
    """Claims on the holder's photo, issued now (or ``issued_later`` seconds from now),
    valid for ``days`` from now (or from ``starts_later`` seconds from now)."""
    now = int(time.time())
    start = now + starts_later
    return LicenceClaims(
        licence_id=secrets.token_bytes(16),
        issuer_key_id=issuer.public.key_id,
        holder=keys.PublicKey(holder),
        licensee=keys.PublicKey(licensee),
        assets=(Asset(DataCategory.IMAGE, PHOTO_SHA),),
        scope=Scope.of([DataCategory.IMAGE], [purpose], [Medium.ONLINE], ["FR"]),
        issued_at=now + issued_later,
        not_before=start,
        not_after=start + days * DAY,
        status_index=10_000 + secrets.randbelow(10_000),
        price=PriceTerms("EUR", days * 100),
    )


def append_sealed(ex: Exchange, account: bytes, *entries: transparency_pb2.LogEntry) -> list[int]:
    """Append clear entries about ``account`` sealed to it, as the store does (numbered by
    the account's entry counter): what a dishonest exchange could log in her name. Their
    indexes."""
    store = cast(Any, ex.app.deps.store)
    now = int(time.time())
    return [
        store._transact(
            lambda c, e=e: store._log_sealed(c, account, e, now, e.WhichOneof("kind"), b"")
        )
        for e in entries
    ]


def account_log(ex: Exchange, account: bytes) -> tuple[bytes, int]:
    """The account's log key and entry count, as the store keeps them."""
    log_key, count = ex.app.deps.store.account_log(account)
    return bytes(log_key), int(count)


def own_entries(ex: Exchange, account: bytes) -> list[tuple[int, transparency_pb2.LogEntry]]:
    """``(index, clear entry)`` of every sealed entry about ``account``, found and opened
    with its log key."""
    key, _ = account_log(ex, account)
    window = sealed.TagWindow(key)
    out = []
    for i, e in enumerate(entries(ex)):
        if e.WhichOneof("kind") == "sealed" and (j := window.match(e.sealed)) is not None:
            out.append((i, sealed.open_entry(key, j, e.sealed)))
    return out
