"""The revocation status lists: bounded bitstrings sharded by expiry epoch, signed
snapshots of the live lists, and events.

A licence's status is named by ``(status_list, status_index)``. Each list is a bitstring:
bit ``i`` is bit ``7 - i % 8`` of byte ``i // 8`` (most significant bit first); a set bit
means revoked, and revocation is final, so bits are only ever set. The exchange puts a
licence in an open list of its expiry epoch, so that every licence of a list has ended by
the list's ``expires_at`` and the list is then dropped as a whole (docs/token-format.md §7).

The issuer publishes signed snapshots of every live list (zlib-compressed bits with a
sequence number and a time) and a stream of :class:`StatusEvent` s numbered 1, 2, 3, …
(one sequence for every list) with heartbeats between them; every event and heartbeat is
signed by an issuer key too (:func:`verify_event`, :func:`verify_heartbeat`), so only the
exchange can say what changed and how fresh a verifier is. A verifier's :class:`StatusView`
starts from a snapshot, applies events strictly in order, and fails closed: past its
staleness bound it answers ``STATUS_STALE`` for every licence whose bit is not set, and a
licence naming a list it no longer holds is ``STATUS_LIST_DROPPED``.

Why one module of this size: it is §7 of the format in code — the lists, the three signed
messages that change or carry them, their caps, and the view built from them — and each
message's checks are read beside the others'; split, a cap or an order of checks would be
stated in one file and enforced in another.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple

from . import keys
from .encoding import parse_canonical, u64be
from .errors import LicentiaError, Reason
from .keys import IssuerKey, IssuerKeyResolver, PrivateKey
from .v1 import status_pb2

__all__ = [
    "DEFAULT_EPOCH_SECONDS",
    "DEFAULT_LIST_SIZE",
    "LIST_GRACE_SECONDS",
    "MAX_LIST_ID",
    "MAX_SNAPSHOT_BYTES",
    "MAX_SNAPSHOT_STATUS_BITS",
    "MAX_STATUS_BITS",
    "MAX_STATUS_LISTS",
    "Heartbeat",
    "StatusEvent",
    "StatusList",
    "StatusListBits",
    "StatusLists",
    "StatusSnapshot",
    "StatusView",
    "signed_heartbeat",
    "signed_snapshot",
    "verify_event",
    "verify_heartbeat",
    "verify_snapshot",
]


#: The largest status list a verifier accepts (64 Mi licences, 8 MiB of bits).
MAX_STATUS_BITS = 1 << 26
#: The most lists one snapshot carries.
MAX_STATUS_LISTS = 4096
#: The most bits one snapshot carries, all lists together (64 MiB decompressed).
MAX_SNAPSHOT_STATUS_BITS = 1 << 29
#: The largest signed snapshot accepted from the wire (compressed).
MAX_SNAPSHOT_BYTES = 1 << 23
#: The largest list id (a signed 64-bit integer in the exchange's databases).
MAX_LIST_ID = (1 << 63) - 1
#: The exchange's default size of one list (indexes it hands out in it), and length of an
#: expiry epoch: a licence goes to a list of the epoch ``not_after // epoch_seconds``.
DEFAULT_LIST_SIZE = 1 << 20
DEFAULT_EPOCH_SECONDS = 7 * 86_400
#: A list is dropped this long after its ``expires_at`` (clocks differ; a licence's last
#: second must still be checkable).
LIST_GRACE_SECONDS = 86_400


def _byte_len(bit_length: int) -> int:
    return (bit_length + 7) // 8


@dataclass(frozen=True, slots=True)
class StatusEvent:
    """One revocation: ``status_index`` of list ``status_list`` became revoked at
    ``revoked_at``."""

    sequence: int
    status_list: int
    status_index: int
    revoked_at: int

    @classmethod
    def from_proto(cls, msg: status_pb2.StatusEvent) -> StatusEvent:
        """Parse the wire form (its signature is not checked: see :func:`verify_event`);
        refuses an index beyond ``MAX_STATUS_BITS`` or a list beyond ``MAX_LIST_ID``."""
        if msg.status_index >= MAX_STATUS_BITS or msg.sequence == 0:
            raise LicentiaError(Reason.MALFORMED, "status event out of range")
        if msg.status_list > MAX_LIST_ID:
            raise LicentiaError(Reason.MALFORMED, "status event names no list")
        return cls(msg.sequence, msg.status_list, msg.status_index, msg.revoked_at)

    def signed(self, issuer_key: PrivateKey) -> status_pb2.StatusEvent:
        """The wire form, signed by ``issuer_key`` (see :func:`verify_event`)."""
        key_id = issuer_key.public.key_id
        message = _event_message(
            self.sequence, self.status_list, self.status_index, self.revoked_at, key_id
        )
        return status_pb2.StatusEvent(
            sequence=self.sequence,
            status_list=self.status_list,
            status_index=self.status_index,
            revoked_at=self.revoked_at,
            issuer_key_id=key_id,
            signature=issuer_key.sign(keys.STATUS_EVENT_V2, message),
        )


def _event_message(
    sequence: int, status_list: int, status_index: int, revoked_at: int, key_id: bytes
) -> bytes:
    return u64be(sequence) + u64be(status_list) + u64be(status_index) + u64be(revoked_at) + key_id


def _heartbeat_message(sequence: int, at: int, key_id: bytes, key_set_sha256: bytes) -> bytes:
    return u64be(sequence) + u64be(at) + key_id + key_set_sha256


class Heartbeat(NamedTuple):
    """A verified heartbeat: the lists stood at ``sequence`` at ``at``, and the issuer keys
    published then had the digest ``key_set_sha256`` (:meth:`IssuerKeySet.digest`)."""

    sequence: int
    at: int
    key_set_sha256: bytes


def signed_heartbeat(
    issuer_key: PrivateKey, sequence: int, at: int, key_set_sha256: bytes
) -> status_pb2.StatusHeartbeat:
    """A heartbeat — the lists stood at ``sequence`` at ``at``, the published keys had the
    digest ``key_set_sha256`` — signed by ``issuer_key``."""
    if len(key_set_sha256) != 32:
        raise ValueError("a key set digest is 32 bytes")
    key_id = issuer_key.public.key_id
    message = _heartbeat_message(sequence, at, key_id, key_set_sha256)
    return status_pb2.StatusHeartbeat(
        sequence=sequence,
        at=at,
        issuer_key_id=key_id,
        signature=issuer_key.sign(keys.STATUS_HEARTBEAT, message),
        key_set_sha256=key_set_sha256,
    )


def _signer(key_id: bytes, keys_: IssuerKeyResolver, what: str) -> IssuerKey:
    issuer = keys_.resolve(key_id)
    if issuer is None:
        raise LicentiaError(Reason.UNKNOWN_ISSUER_KEY, f"{what} signed by an unknown key")
    return issuer


def verify_event(msg: status_pb2.StatusEvent, keys_: IssuerKeyResolver) -> StatusEvent:
    """The event of a signed ``StatusEvent``; raises ``LicentiaError``: ``MALFORMED`` out of
    range, ``UNKNOWN_ISSUER_KEY`` (also a key id that is not 8 bytes: it names no key), or
    ``BAD_SIGNATURE`` (an event without a signature too, or one signed before events named
    their list).

    Any published issuer key may sign an event, whatever its ``revoked_at``: the exchange
    signs events with its current key when it sends them, and old events are resent after a
    rotation. A false event can only revoke (fail closed); the heartbeats, whose time is
    checked against the key's window, are what keep a verifier fresh.
    """
    event = StatusEvent.from_proto(msg)
    issuer = _signer(msg.issuer_key_id, keys_, "status event")
    message = _event_message(
        msg.sequence, msg.status_list, msg.status_index, msg.revoked_at, msg.issuer_key_id
    )
    if not issuer.public.verify(keys.STATUS_EVENT_V2, message, msg.signature):
        raise LicentiaError(Reason.BAD_SIGNATURE, "status event signature does not verify")
    return event


def verify_heartbeat(msg: status_pb2.StatusHeartbeat, keys_: IssuerKeyResolver) -> Heartbeat:
    """The :class:`Heartbeat` of a signed ``StatusHeartbeat``; raises ``LicentiaError``:
    ``MALFORMED`` (a key set digest that is not 32 bytes), ``UNKNOWN_ISSUER_KEY`` (also a key
    id that is not 8 bytes),
    ``BAD_SIGNATURE`` (none too), or ``ISSUER_KEY_NOT_VALID`` when the key could not sign at
    ``at``. A forged heartbeat would keep a verifier "fresh" while revocations are withheld,
    so none is accepted unsigned."""
    if len(msg.key_set_sha256) != 32:
        raise LicentiaError(Reason.MALFORMED, "a heartbeat names its key set's 32-byte digest")
    issuer = _signer(msg.issuer_key_id, keys_, "status heartbeat")
    message = _heartbeat_message(msg.sequence, msg.at, msg.issuer_key_id, msg.key_set_sha256)
    if not issuer.public.verify(keys.STATUS_HEARTBEAT, message, msg.signature):
        raise LicentiaError(Reason.BAD_SIGNATURE, "status heartbeat signature does not verify")
    if not issuer.may_sign_at(msg.at):
        raise LicentiaError(Reason.ISSUER_KEY_NOT_VALID, "heartbeat key not valid at its time")
    return Heartbeat(msg.sequence, msg.at, msg.key_set_sha256)


@dataclass(frozen=True, slots=True)
class StatusListBits:
    """One list of a verified snapshot: its id, when it ends, and its bits."""

    list_id: int
    expires_at: int
    bit_length: int
    bits: bytes


@dataclass(frozen=True, slots=True)
class StatusSnapshot:
    """A verified snapshot: the live lists (increasing ids) as of ``sequence``, taken at
    ``taken_at``."""

    issuer_key_id: bytes
    sequence: int
    taken_at: int
    lists: tuple[StatusListBits, ...]


class StatusList:
    """One status list's bits. Mutable; grows as bits are set."""

    __slots__ = ("_bit_length", "_bits")

    def __init__(self, bits: bytes = b"", bit_length: int = 0) -> None:
        if _byte_len(bit_length) != len(bits) or bit_length > MAX_STATUS_BITS:
            raise LicentiaError(Reason.MALFORMED, "bit length does not match the bits")
        self._bits = bytearray(bits)
        self._bit_length = bit_length

    @property
    def bit_length(self) -> int:
        """Number of indexes the list holds."""
        return self._bit_length

    @property
    def bits(self) -> bytes:
        """The bits (a copy)."""
        return bytes(self._bits)

    def revoke(self, index: int) -> None:
        """Set the bit of ``index``, growing the list as needed."""
        if not 0 <= index < MAX_STATUS_BITS:
            raise LicentiaError(Reason.MALFORMED, "status index out of range")
        if index >= self._bit_length:
            # Grow the bytes before the length, so that a reader in another thread never
            # sees a length its bytes do not cover.
            self._bits.extend(bytes(_byte_len(index + 1) - len(self._bits)))
            self._bit_length = index + 1
        self._bits[index >> 3] |= 0x80 >> (index & 7)

    def is_revoked(self, index: int) -> bool:
        """True if ``index``'s bit is set (indexes beyond the list are not revoked)."""
        return 0 <= index < self._bit_length and bool(
            self._bits[index >> 3] & (0x80 >> (index & 7))
        )


class StatusLists:
    """Status lists by id: the issuer's (:meth:`snapshot`) and a verifier's.

    ``top`` is the highest list id known to exist (from the store, or a snapshot); a list id
    at or below it that is not held was dropped, one above it is a list newer than what was
    last read (no bit set until its events arrive). A list first seen in an event has no
    known ``expires_at`` until it is declared (:meth:`declare`) or a snapshot replaces the
    lists. Not thread-safe for writes; a lookup never sees a half-grown list.
    """

    __slots__ = ("_expires", "_lists", "top")

    def __init__(self, lists: Iterable[StatusListBits] = (), top: int = -1) -> None:
        self._lists: dict[int, StatusList] = {}
        self._expires: dict[int, int] = {}
        self.top = top
        for x in lists:
            self._lists[x.list_id] = StatusList(x.bits, x.bit_length)
            self._expires[x.list_id] = x.expires_at
            self.top = max(self.top, x.list_id)

    def __len__(self) -> int:
        return len(self._lists)

    def ids(self) -> list[int]:
        """The ids of the lists held, increasing."""
        return sorted(self._lists)

    def declare(self, list_id: int, expires_at: int) -> None:
        """A list exists (it may have no revocation) and ends at ``expires_at``."""
        if list_id not in self._lists:
            self._lists[list_id] = StatusList()
        self._expires[list_id] = expires_at
        self.top = max(self.top, list_id)

    def revoke(self, list_id: int, index: int) -> bool:
        """Set a bit; False (nothing set) when the list was dropped."""
        lst = self._lists.get(list_id)
        if lst is None:
            if list_id <= self.top:
                return False
            lst = self._lists[list_id] = StatusList()
        lst.revoke(index)
        return True

    def lookup(self, list_id: int, index: int, now: int) -> Reason | None:
        """``REVOKED``, ``STATUS_LIST_DROPPED`` (a list not held at or below :attr:`top`,
        or one past its ``expires_at`` and the grace), or ``None``."""
        lst = self._lists.get(list_id)
        if lst is None:
            return Reason.STATUS_LIST_DROPPED if list_id <= self.top else None
        expires = self._expires.get(list_id)
        if expires is not None and now > expires + LIST_GRACE_SECONDS:
            return Reason.STATUS_LIST_DROPPED
        return Reason.REVOKED if lst.is_revoked(index) else None

    def drop_ended(self, now: int) -> list[int]:
        """Forget every list past its ``expires_at`` and the grace at ``now``; their ids."""
        gone = [i for i, e in self._expires.items() if now > e + LIST_GRACE_SECONDS]
        for i in gone:
            del self._lists[i], self._expires[i]
        return gone

    def forget(self, ids: Iterable[int]) -> None:
        """Forget these lists (ended: the issuer found them no longer live)."""
        for i in ids:
            self._lists.pop(i, None)
            self._expires.pop(i, None)

    def undeclared(self) -> list[int]:
        """Ids of the lists held whose ``expires_at`` is not known."""
        return [i for i in self._lists if i not in self._expires]

    def freeze(self, taken_at: int) -> list[StatusListBits]:
        """A copy of every list live at ``taken_at`` (bits copied, nothing compressed): cheap
        enough to take under the owner's lock; sign it outside (:func:`signed_snapshot`).
        ``ValueError`` if a list held has no known ``expires_at``."""
        if self.undeclared():
            raise ValueError("every list of a snapshot needs its expires_at")
        return [
            StatusListBits(i, self._expires[i], self._lists[i].bit_length, self._lists[i].bits)
            for i in sorted(self._lists)
            if self._expires[i] + LIST_GRACE_SECONDS >= taken_at
        ]

    def snapshot(self, issuer_key: PrivateKey, sequence: int, taken_at: int) -> bytes:
        """A signed snapshot (serialized ``SignedStatusSnapshot``) of every list live at
        ``taken_at``; ``ValueError`` if a list held has no known ``expires_at``."""
        return signed_snapshot(self.freeze(taken_at), issuer_key, sequence, taken_at)


def signed_snapshot(
    lists: Iterable[StatusListBits],
    issuer_key: PrivateKey,
    sequence: int,
    taken_at: int,
    compress: Callable[[StatusListBits], bytes] | None = None,
) -> bytes:
    """The signed snapshot (serialized ``SignedStatusSnapshot``) of ``lists`` (increasing
    ids), as of ``sequence`` at ``taken_at``. ``compress``: each list's zlib bits (a cache
    of the issuer's; by default zlib level 9 of its bits)."""
    pack = compress or (lambda x: zlib.compress(x.bits, 9))
    snap = status_pb2.StatusListSnapshot(
        issuer_key_id=issuer_key.public.key_id,
        sequence=sequence,
        taken_at=taken_at,
        lists=[
            status_pb2.StatusListBits(
                list_id=x.list_id,
                expires_at=x.expires_at,
                bit_length=x.bit_length,
                bits_zlib=pack(x),
            )
            for x in lists
        ],
    ).SerializeToString(deterministic=True)
    signed = status_pb2.SignedStatusSnapshot(
        snapshot=snap, signature=issuer_key.sign(keys.STATUS_SNAPSHOT, snap)
    )
    return signed.SerializeToString(deterministic=True)


def _shape(snap: status_pb2.StatusListSnapshot) -> None:
    """The snapshot's caps and order (before its signature is checked)."""
    if snap.bit_length or snap.bits_zlib:
        raise LicentiaError(Reason.MALFORMED, "a snapshot carries its lists in `lists` only")
    if len(snap.lists) > MAX_STATUS_LISTS:
        raise LicentiaError(Reason.TOO_LARGE, "too many status lists")
    total, last = 0, -1
    for x in snap.lists:
        if x.bit_length > MAX_STATUS_BITS:
            raise LicentiaError(Reason.TOO_LARGE, "status list too large")
        total += x.bit_length
        if x.list_id <= last or x.list_id > MAX_LIST_ID:
            raise LicentiaError(Reason.MALFORMED, "status lists are in increasing id order")
        last = x.list_id
    if total > MAX_SNAPSHOT_STATUS_BITS:
        raise LicentiaError(Reason.TOO_LARGE, "status lists too large together")


def _bits(x: status_pb2.StatusListBits) -> StatusListBits:
    """One list's bits, decompressed and checked (MALFORMED)."""
    want = _byte_len(x.bit_length)
    d = zlib.decompressobj()
    try:
        bits = d.decompress(x.bits_zlib, want + 1)
    except zlib.error:
        raise LicentiaError(Reason.MALFORMED, "status bits are not zlib data") from None
    if len(bits) != want or not d.eof or d.unconsumed_tail or d.unused_data:
        raise LicentiaError(Reason.MALFORMED, "status bits do not match the bit length")
    if x.bit_length & 7 and bits[-1] & (0xFF >> (x.bit_length & 7)):
        # One list, one encoding: the bits past bit_length are zero (never set).
        raise LicentiaError(Reason.MALFORMED, "a status bit is set past the bit length")
    return StatusListBits(x.list_id, x.expires_at, x.bit_length, bits)


def verify_snapshot(data: bytes, keys_: IssuerKeyResolver) -> StatusSnapshot:
    """Check a signed snapshot; raises ``LicentiaError`` at the first failure, in the order of
    docs/token-format.md §7: size (TOO_LARGE), canonical parse (MALFORMED), the shape (the
    retired single-list fields set: MALFORMED; more than ``MAX_STATUS_LISTS`` lists, a list
    over ``MAX_STATUS_BITS`` or all over ``MAX_SNAPSHOT_STATUS_BITS``: TOO_LARGE; ids not
    strictly increasing: MALFORMED), the key (UNKNOWN_ISSUER_KEY, also for a key id that is
    not 8 bytes), the signature (BAD_SIGNATURE), the key's window at ``taken_at``
    (ISSUER_KEY_NOT_VALID), then each list's bits (MALFORMED: not exactly
    ``⌈bit_length / 8⌉`` bytes, or a set bit past ``bit_length``).
    """
    if len(data) > MAX_SNAPSHOT_BYTES:
        raise LicentiaError(Reason.TOO_LARGE, "status snapshot too large")
    signed = parse_canonical(data, status_pb2.SignedStatusSnapshot(), "signed snapshot")
    snap = parse_canonical(signed.snapshot, status_pb2.StatusListSnapshot(), "status snapshot")
    _shape(snap)
    issuer = keys_.resolve(snap.issuer_key_id)
    if issuer is None:
        raise LicentiaError(Reason.UNKNOWN_ISSUER_KEY, "snapshot signed by an unknown key")
    if not issuer.public.verify(keys.STATUS_SNAPSHOT, signed.snapshot, signed.signature):
        raise LicentiaError(Reason.BAD_SIGNATURE, "status snapshot signature does not verify")
    if not issuer.may_sign_at(snap.taken_at):
        raise LicentiaError(Reason.ISSUER_KEY_NOT_VALID, "snapshot key not valid at its time")
    lists = tuple(_bits(x) for x in snap.lists)
    return StatusSnapshot(snap.issuer_key_id, snap.sequence, snap.taken_at, lists)


class StatusView:
    """A verifier's view of the status lists, and how fresh it is.

    It answers ``REVOKED`` for a set bit whatever its age (revocation is final),
    ``STATUS_LIST_DROPPED`` for a list it no longer holds (fail closed: only a licence whose
    term has ended names one), and ``STATUS_STALE`` for any other licence once
    ``now - fresh_at`` exceeds ``staleness_bound`` seconds. It is fresh as of the latest
    snapshot, event or heartbeat that it has fully caught up with. Events for a dropped list
    are ignored; a list is forgotten once past its ``expires_at`` and the grace.
    """

    __slots__ = ("_lists", "fresh_at", "sequence", "staleness_bound")

    def __init__(self, snapshot: StatusSnapshot, staleness_bound: int) -> None:
        if staleness_bound <= 0:
            raise ValueError("staleness_bound must be positive")
        self.staleness_bound = staleness_bound
        self._lists = StatusLists(snapshot.lists)
        self.sequence = snapshot.sequence
        self.fresh_at = snapshot.taken_at

    @property
    def list_ids(self) -> list[int]:
        """The ids of the lists the view holds, increasing."""
        return self._lists.ids()

    def replace(self, snapshot: StatusSnapshot) -> None:
        """Resynchronise from a newer snapshot (after a gap); refuses an older one."""
        if snapshot.sequence < self.sequence:
            raise LicentiaError(Reason.STATUS_SEQUENCE_GAP, "snapshot older than the view")
        self._lists = StatusLists(snapshot.lists, self._lists.top)
        self.sequence = snapshot.sequence
        self.fresh_at = max(self.fresh_at, snapshot.taken_at)

    def apply(self, event: StatusEvent) -> None:
        """Apply the next event. A repeat is ignored; a gap raises ``STATUS_SEQUENCE_GAP``
        and the view must be resynchronised from a snapshot."""
        if event.sequence <= self.sequence:
            return
        if event.sequence != self.sequence + 1:
            raise LicentiaError(
                Reason.STATUS_SEQUENCE_GAP,
                f"expected event {self.sequence + 1}, got {event.sequence}",
            )
        self._lists.revoke(event.status_list, event.status_index)
        self.sequence = event.sequence
        self.fresh_at = max(self.fresh_at, event.revoked_at)

    def heartbeat(self, sequence: int, at: int) -> None:
        """The exchange had reached ``sequence`` at ``at``. Refreshes the view only if it
        has every event up to ``sequence``; otherwise raises ``STATUS_SEQUENCE_GAP``. Lists
        ended by ``at`` (and the grace) are forgotten."""
        if sequence > self.sequence:
            raise LicentiaError(
                Reason.STATUS_SEQUENCE_GAP, f"heartbeat at {sequence}, view at {self.sequence}"
            )
        self.fresh_at = max(self.fresh_at, at)
        self._lists.drop_ended(at)

    def is_fresh(self, now: int) -> bool:
        """True while ``now`` is within the staleness bound of the last refresh."""
        return now - self.fresh_at <= self.staleness_bound

    def check(self, status_list: int, status_index: int, now: int) -> Reason | None:
        """``REVOKED``, ``STATUS_LIST_DROPPED``, ``STATUS_STALE``, or ``None`` when the
        licence is known not revoked."""
        reason = self._lists.lookup(status_list, status_index, now)
        if reason is not None:
            return reason
        if now - self.fresh_at > self.staleness_bound:
            return Reason.STATUS_STALE
        return None
