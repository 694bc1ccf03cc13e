"""Seen nonces shared by the processes of one server (``licentia-server --processes N``).

Every process of a multi-process server checks Verify's signed calls and presentations
itself, from memory, as one process does; a nonce seen by one process must be refused by all
of them, whichever one the kernel hands a replay's connection to. So the processes share one
table in memory: a ``memfd`` (anonymous shared memory, gone with the last process holding
it), made by the first process and passed to each worker as an open file descriptor.

The table is a fixed array of buckets of :data:`BUCKET_SLOTS` slots; a slot holds a 16-byte
fingerprint of a key (BLAKE2b, in a namespace per kind of nonce) and the Unix second it
expires at (0: never used). A key may sit in either of two buckets chosen by its fingerprint
(two choices keep the buckets even: the table fills almost whole before one overflows). An
expired slot is free again. A key is recorded only if neither bucket holds it alive, and
only if one of its buckets has a free slot: a table full of live nonces refuses (fails
closed), as :class:`licentia.nonces.MemoryNonceStore` does.

Across processes the two buckets are locked with POSIX record locks on their byte ranges
(``fcntl.lockf``, released by the kernel if a process dies holding one), within a process
with a lock of its own (record locks belong to the process, not to a thread).
"""

from __future__ import annotations

import fcntl
import hashlib
import mmap
import os
import struct
import threading

#: Slots in one bucket.
BUCKET_SLOTS = 8
#: Bytes of one slot: the fingerprint, then the expiry (signed 64-bit, little-endian).
SLOT_BYTES = 24
BUCKET_BYTES = BUCKET_SLOTS * SLOT_BYTES
#: Default buckets: 2**18 x 8 = 2,097,152 nonces live at once (48 MiB, touched as used),
#: twice what one process's memory store holds (a request's and a presentation's per Verify).
DEFAULT_BUCKETS = 1 << 18
_SLOT = struct.Struct("<16sq")
_BUCKET = struct.Struct("<" + "16sq" * BUCKET_SLOTS)


class SharedNonceTable:
    """The table itself; :meth:`view` gives a :class:`licentia.nonces.NonceStore` on it."""

    def __init__(self, fd: int, buckets: int) -> None:
        if buckets < 1:
            raise ValueError("the table needs at least one bucket")
        size = buckets * BUCKET_BYTES
        if os.fstat(fd).st_size != size:
            raise ValueError(f"the shared nonce table is not {size} bytes")
        self.fd = fd
        self.buckets = buckets
        self._map = mmap.mmap(fd, size)
        self._lock = threading.Lock()

    @classmethod
    def create(cls, buckets: int = DEFAULT_BUCKETS) -> SharedNonceTable:
        """A new, empty table (its descriptor is not inherited: pass it with ``pass_fds``)."""
        fd = os.memfd_create("licentia-nonces")
        try:
            os.ftruncate(fd, buckets * BUCKET_BYTES)
            return cls(fd, buckets)
        except BaseException:
            os.close(fd)
            raise

    def view(self, namespace: bytes) -> SharedNonces:
        """A nonce store for one kind of nonce (``b"request"``, ``b"presentation"``)."""
        return SharedNonces(self, namespace)

    def close(self) -> None:
        """Unmap the table and close its descriptor."""
        self._map.close()
        os.close(self.fd)

    def add_if_new(self, fingerprint: bytes, expires_at: int, now: int) -> bool:
        """Record ``fingerprint`` until ``expires_at``; False for a live repeat or when both
        of its buckets are full of live ones."""
        first = int.from_bytes(fingerprint[:8], "little") % self.buckets
        second = int.from_bytes(fingerprint[8:], "little") % self.buckets
        order = sorted({first, second})  # one order everywhere: no deadlock
        with self._lock:
            for b in order:
                fcntl.lockf(self.fd, fcntl.LOCK_EX, BUCKET_BYTES, b * BUCKET_BYTES)
            try:
                return self._add(fingerprint, expires_at, now, order)
            finally:
                for b in reversed(order):
                    fcntl.lockf(self.fd, fcntl.LOCK_UN, BUCKET_BYTES, b * BUCKET_BYTES)

    def _add(self, fingerprint: bytes, expires_at: int, now: int, buckets: list[int]) -> bool:
        m = self._map
        best, best_free = -1, 0
        for b in buckets:
            base = b * BUCKET_BYTES
            slots = _BUCKET.unpack_from(m, base)  # fingerprint, expiry, fingerprint, ...
            free, first_free = 0, -1
            for i in range(BUCKET_SLOTS):
                if slots[2 * i + 1] > now:
                    if slots[2 * i] == fingerprint:
                        return False  # a live repeat
                else:
                    free += 1
                    if first_free < 0:
                        first_free = base + i * SLOT_BYTES
            if free > best_free:
                best, best_free = first_free, free
        if best < 0:
            return False  # full of live nonces: fail closed
        _SLOT.pack_into(m, best, fingerprint, expires_at)
        return True


class SharedNonces:
    """A :class:`licentia.nonces.NonceStore` over a :class:`SharedNonceTable`, its keys in
    ``namespace``."""

    __slots__ = ("_person", "table")

    def __init__(self, table: SharedNonceTable, namespace: bytes) -> None:
        self.table = table
        self._person = hashlib.blake2b(namespace, digest_size=16).digest()

    def add_if_new(self, key: bytes, expires_at: int, now: int) -> bool:
        """Record ``key`` until ``expires_at``; False if it is live already (a replay) or
        the table is full."""
        fingerprint = hashlib.blake2b(key, digest_size=16, person=self._person).digest()
        return self.table.add_if_new(fingerprint, expires_at, now)
