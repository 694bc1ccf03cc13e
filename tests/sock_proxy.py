"""A Unix-socket proxy in front of the test PostgreSQL server, to cut one client off.

``SocketProxy(target_dir)`` listens in a directory of its own on the socket name libpq uses
(``.s.PGSQL.5432``) and forwards every connection to the same name in ``target_dir``. A
replica given ``proxy.url(dbname)`` reaches the database through it, the others directly, so
:meth:`SocketProxy.cut` takes the database away from that replica alone: every connection
through it is closed and new ones are refused until :meth:`SocketProxy.restore`.
"""

from __future__ import annotations

import contextlib
import socket
import tempfile
import threading
from pathlib import Path
from urllib.parse import quote

SOCKET_NAME = ".s.PGSQL.5432"


class SocketProxy:
    """Forwards connections on a socket of its own to ``target_dir``'s PostgreSQL socket."""

    def __init__(self, target_dir: Path) -> None:
        self.target = str(target_dir / SOCKET_NAME)
        self.dir = Path(tempfile.mkdtemp(prefix="pgproxy-"))
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(self.dir / SOCKET_NAME))
        self._listener.listen(64)
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._cut = False
        self._closed = False
        self._thread = threading.Thread(target=self._accept, name="pgproxy", daemon=True)
        self._thread.start()

    def url(self, dbname: str) -> str:
        """A libpq URL for ``dbname`` through this proxy."""
        return f"postgresql://postgres@/{dbname}?host={quote(str(self.dir), safe='')}"

    def cut(self) -> None:
        """Close every connection through the proxy and refuse new ones."""
        with self._lock:
            self._cut = True
            for s in self._open:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self._open.clear()

    def restore(self) -> None:
        """Forward new connections again."""
        with self._lock:
            self._cut = False

    def close(self) -> None:
        """Cut everything and stop listening."""
        self._closed = True
        self.cut()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(timeout=5)
        with contextlib.suppress(OSError):
            (self.dir / SOCKET_NAME).unlink()
            self.dir.rmdir()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                refused = self._cut or self._closed
            if refused:
                client.close()
                continue
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                upstream.connect(self.target)
            except OSError:
                client.close()
                upstream.close()
                continue
            with self._lock:
                self._open.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
            with self._lock:  # each socket is the source of one pump, which closes it
                self._open.discard(src)
            src.close()
