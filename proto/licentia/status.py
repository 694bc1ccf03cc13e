"""The revocation status list: one bit per licence, snapshots signed by the issuer, events.

Bit ``i`` is bit ``7 - i % 8`` of byte ``i // 8`` (most significant bit first); a set bit
means revoked, and revocation is final, so bits are only ever set. The issuer keeps a
:class:`StatusList`; it publishes signed snapshots (zlib-compressed bits with a sequence
number and a time) and a stream of :class:`StatusEvent` s numbered 1, 2, 3, … with
heartbeats between them; every event and heartbeat on the stream is signed by an issuer key
too (:func:`verify_event`, :func:`verify_heartbeat`), so only the exchange can say what
changed and how fresh a verifier is. A verifier's :class:`StatusView` starts from a
snapshot, applies events strictly in order, and fails closed: past its staleness bound it
answers ``STATUS_STALE`` for every licence whose bit is not set.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import NamedTuple

from . import keys
from .encoding import parse_canonical, u64be
from .errors import LicentiaError, Reason
from .keys import IssuerKey, IssuerKeyResolver, PrivateKey
from .v1 import status_pb2

__all__ = [
    "MAX_SNAPSHOT_BYTES",
    "MAX_STATUS_BITS",
    "Heartbeat",
    "StatusEvent",
    "StatusList",
    "StatusSnapshot",
    "StatusView",
    "signed_heartbeat",
    "verify_event",
    "verify_heartbeat",
    "verify_snapshot",
]


#: The largest status list a verifier accepts (64 Mi licences, 8 MiB of bits).
MAX_STATUS_BITS = 1 << 26
#: The largest signed snapshot accepted from the wire (compressed).
MAX_SNAPSHOT_BYTES = 1 << 23


def _byte_len(bit_length: int) -> int:
    return (bit_length + 7) // 8


@dataclass(frozen=True, slots=True)
class StatusEvent:
    """One revocation: ``status_index`` became revoked at ``revoked_at``."""

    sequence: int
    status_index: int
    revoked_at: int

    @classmethod
    def from_proto(cls, msg: status_pb2.StatusEvent) -> StatusEvent:
        """Parse the wire form (its signature is not checked: see :func:`verify_event`);
        refuses an index beyond ``MAX_STATUS_BITS``."""
        if msg.status_index >= MAX_STATUS_BITS or msg.sequence == 0:
            raise LicentiaError(Reason.MALFORMED, "status event out of range")
        return cls(msg.sequence, msg.status_index, msg.revoked_at)

    def signed(self, issuer_key: PrivateKey) -> status_pb2.StatusEvent:
        """The wire form, signed by ``issuer_key`` (see :func:`verify_event`)."""
        key_id = issuer_key.public.key_id
        message = _event_message(self.sequence, self.status_index, self.revoked_at, key_id)
        return status_pb2.StatusEvent(
            sequence=self.sequence,
            status_index=self.status_index,
            revoked_at=self.revoked_at,
            issuer_key_id=key_id,
            signature=issuer_key.sign(keys.STATUS_EVENT, message),
        )


def _event_message(sequence: int, status_index: int, revoked_at: int, key_id: bytes) -> bytes:
    return u64be(sequence) + u64be(status_index) + u64be(revoked_at) + key_id


def _heartbeat_message(sequence: int, at: int, key_id: bytes, key_set_sha256: bytes) -> bytes:
    return u64be(sequence) + u64be(at) + key_id + key_set_sha256


class Heartbeat(NamedTuple):
    """A verified heartbeat: the list stood at ``sequence`` at ``at``, and the issuer keys
    published then had the digest ``key_set_sha256`` (:meth:`IssuerKeySet.digest`)."""

    sequence: int
    at: int
    key_set_sha256: bytes


def signed_heartbeat(
    issuer_key: PrivateKey, sequence: int, at: int, key_set_sha256: bytes
) -> status_pb2.StatusHeartbeat:
    """A heartbeat — the list stood at ``sequence`` at ``at``, the published keys had the
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
    ``BAD_SIGNATURE`` (an event without a signature too).

    Any published issuer key may sign an event, whatever its ``revoked_at``: the exchange
    signs events with its current key when it sends them, and old events are resent after a
    rotation. A false event can only revoke (fail closed); the heartbeats, whose time is
    checked against the key's window, are what keep a verifier fresh.
    """
    event = StatusEvent.from_proto(msg)
    issuer = _signer(msg.issuer_key_id, keys_, "status event")
    message = _event_message(msg.sequence, msg.status_index, msg.revoked_at, msg.issuer_key_id)
    if not issuer.public.verify(keys.STATUS_EVENT, message, msg.signature):
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
class StatusSnapshot:
    """A verified snapshot: the bits as of ``sequence``, taken at ``taken_at``."""

    issuer_key_id: bytes
    sequence: int
    taken_at: int
    bit_length: int
    bits: bytes


class StatusList:
    """The issuer's status list. Mutable; owned by the exchange."""

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

    def snapshot(self, issuer_key: PrivateKey, sequence: int, taken_at: int) -> bytes:
        """A signed snapshot (serialized ``SignedStatusSnapshot``) of the list as it is now."""
        snap = status_pb2.StatusListSnapshot(
            issuer_key_id=issuer_key.public.key_id,
            sequence=sequence,
            taken_at=taken_at,
            bit_length=self._bit_length,
            bits_zlib=zlib.compress(bytes(self._bits), 9),
        ).SerializeToString(deterministic=True)
        signed = status_pb2.SignedStatusSnapshot(
            snapshot=snap, signature=issuer_key.sign(keys.STATUS_SNAPSHOT, snap)
        )
        return signed.SerializeToString(deterministic=True)


def verify_snapshot(data: bytes, keys_: IssuerKeyResolver) -> StatusSnapshot:
    """Check a signed snapshot; raises ``LicentiaError`` at the first failure, in the order of
    docs/token-format.md §7: size (TOO_LARGE), canonical parse (MALFORMED), ``bit_length``
    (TOO_LARGE), the key (UNKNOWN_ISSUER_KEY, also for a key id that is not 8 bytes), the
    signature (BAD_SIGNATURE), the key's window at ``taken_at`` (ISSUER_KEY_NOT_VALID), then
    the bits (MALFORMED: not exactly ``⌈bit_length / 8⌉`` bytes, or a set bit past ``bit_length``).
    """
    if len(data) > MAX_SNAPSHOT_BYTES:
        raise LicentiaError(Reason.TOO_LARGE, "status snapshot too large")
    signed = parse_canonical(data, status_pb2.SignedStatusSnapshot(), "signed snapshot")
    snap = parse_canonical(signed.snapshot, status_pb2.StatusListSnapshot(), "status snapshot")
    if snap.bit_length > MAX_STATUS_BITS:
        raise LicentiaError(Reason.TOO_LARGE, "status list too large")
    issuer = keys_.resolve(snap.issuer_key_id)
    if issuer is None:
        raise LicentiaError(Reason.UNKNOWN_ISSUER_KEY, "snapshot signed by an unknown key")
    if not issuer.public.verify(keys.STATUS_SNAPSHOT, signed.snapshot, signed.signature):
        raise LicentiaError(Reason.BAD_SIGNATURE, "status snapshot signature does not verify")
    if not issuer.may_sign_at(snap.taken_at):
        raise LicentiaError(Reason.ISSUER_KEY_NOT_VALID, "snapshot key not valid at its time")
    want = _byte_len(snap.bit_length)
    d = zlib.decompressobj()
    try:
        bits = d.decompress(snap.bits_zlib, want + 1)
    except zlib.error:
        raise LicentiaError(Reason.MALFORMED, "status bits are not zlib data") from None
    if len(bits) != want or not d.eof or d.unconsumed_tail or d.unused_data:
        raise LicentiaError(Reason.MALFORMED, "status bits do not match the bit length")
    if snap.bit_length & 7 and bits[-1] & (0xFF >> (snap.bit_length & 7)):
        # One list, one snapshot: the bits past bit_length are zero (the list never sets them).
        raise LicentiaError(Reason.MALFORMED, "a status bit is set past the bit length")
    return StatusSnapshot(snap.issuer_key_id, snap.sequence, snap.taken_at, snap.bit_length, bits)


class StatusView:
    """A verifier's view of the status list, and how fresh it is.

    It answers ``REVOKED`` for a set bit whatever its age (revocation is final) and
    ``STATUS_STALE`` for any other licence once ``now - fresh_at`` exceeds
    ``staleness_bound`` seconds. It is fresh as of the latest snapshot, event or heartbeat
    that it has fully caught up with.
    """

    __slots__ = ("_list", "fresh_at", "sequence", "staleness_bound")

    def __init__(self, snapshot: StatusSnapshot, staleness_bound: int) -> None:
        if staleness_bound <= 0:
            raise ValueError("staleness_bound must be positive")
        self.staleness_bound = staleness_bound
        self._list = StatusList(snapshot.bits, snapshot.bit_length)
        self.sequence = snapshot.sequence
        self.fresh_at = snapshot.taken_at

    def replace(self, snapshot: StatusSnapshot) -> None:
        """Resynchronise from a newer snapshot (after a gap); refuses an older one."""
        if snapshot.sequence < self.sequence:
            raise LicentiaError(Reason.STATUS_SEQUENCE_GAP, "snapshot older than the view")
        self._list = StatusList(snapshot.bits, snapshot.bit_length)
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
        self._list.revoke(event.status_index)
        self.sequence = event.sequence
        self.fresh_at = max(self.fresh_at, event.revoked_at)

    def heartbeat(self, sequence: int, at: int) -> None:
        """The exchange had reached ``sequence`` at ``at``. Refreshes the view only if it
        has every event up to ``sequence``; otherwise raises ``STATUS_SEQUENCE_GAP``."""
        if sequence > self.sequence:
            raise LicentiaError(
                Reason.STATUS_SEQUENCE_GAP, f"heartbeat at {sequence}, view at {self.sequence}"
            )
        self.fresh_at = max(self.fresh_at, at)

    def is_fresh(self, now: int) -> bool:
        """True while ``now`` is within the staleness bound of the last refresh."""
        return now - self.fresh_at <= self.staleness_bound

    def check(self, index: int, now: int) -> Reason | None:
        """``REVOKED``, ``STATUS_STALE``, or ``None`` when the licence is known not revoked."""
        if self._list.is_revoked(index):
            return Reason.REVOKED
        if now - self.fresh_at > self.staleness_bound:
            return Reason.STATUS_STALE
        return None
