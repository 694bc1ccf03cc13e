"""Whether anything was committed to a SQLite database in WAL mode since a given moment,
known without a statement: read from the WAL-index header in the database's ``-shm`` file.

Every process and connection using a database in WAL mode shares its wal-index, a memory
map of the ``-shm`` file, whose first 96 bytes are two copies of a 48-byte header
(https://www.sqlite.org/walformat.html, "The WAL-Index Format"): the format's version, a
change counter, the frame count (``mxFrame``), salts and checksums. A writer rewrites it at
every commit (the second copy, a memory barrier, then the first), and a reader's snapshot is
what the header says when its statement begins; a WAL reset changes the salts. So while the
header's bytes are the same, nothing has been committed, by this process or any other, and a
value read from the database since the header had those bytes is still the database's.
Reading the header is a copy from memory: no system call, no statement, and so no release of
the GIL (each SQLite step releases and retakes it; under load each retake waits behind the
server's other threads).

A :class:`WalVersion` maps the header read-only. It is opened only after the store's own
connection has opened the wal-index (SQLite truncates the ``-shm`` file only when a connection
finds no other using it, which cannot happen while the store is open), and closed with the
store. :meth:`WalVersion.current` answers ``None`` whenever it cannot vouch for the bytes
(no ``-shm`` file, not yet initialised, an unknown version, the two copies differing in the
middle of a commit): the caller then reads the database.
"""

from __future__ import annotations

import mmap
import os
import struct
import threading
from pathlib import Path

#: The wal-index format this reads (``WALINDEX_MAX_VERSION``), at offset 0 of each copy.
WALINDEX_VERSION = 3007000
#: One copy of the header, and both.
_HEADER = 48
_BOTH = 2 * _HEADER


class WalVersion:
    """The wal-index header of one database, read-only (see the module's docstring)."""

    def __init__(self, database: Path) -> None:
        self._map: mmap.mmap | None = None
        self._lock = threading.Lock()
        shm = database.with_name(database.name + "-shm")
        try:
            fd = os.open(shm, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            return  # not in WAL mode, or the index lives in heap memory: no header here
        try:
            if os.fstat(fd).st_size >= _BOTH:
                self._map = mmap.mmap(fd, _BOTH, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            self._map = None
        finally:
            os.close(fd)

    def current(self) -> bytes | None:
        """The header's bytes now, or ``None`` when they cannot vouch for the database's
        state (then read the database)."""
        m = self._map
        if m is None:
            return None
        try:
            head = m[:_BOTH]
        except ValueError:  # closed meanwhile
            return None
        first = head[:_HEADER]
        if first != head[_HEADER:]:
            return None  # a commit is rewriting it
        version, _, _, is_init = struct.unpack_from("=IIIB", first)
        if version != WALINDEX_VERSION or is_init != 1:
            return None
        return first

    def close(self) -> None:
        """Unmap the header (:meth:`current` answers ``None`` from then on)."""
        with self._lock:
            m, self._map = self._map, None
        if m is not None:
            m.close()
