"""The data directory is the exchange's alone (issue 16, item 2): the directory 0700 and every
file in it 0600 whatever the umask, and a directory others may write to is refused."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import grpc  # type: ignore[import-untyped]

from licentia.keys import PrivateKey

from .exchange_harness import Party, SignedChannel, register_holder, wait_for


def _modes(root: Path) -> dict[str, str]:
    """Every path under ``root`` (and ``root``) with its permission bits, in octal."""
    out = {".": oct(stat.S_IMODE(root.stat().st_mode))}
    for p in sorted(root.rglob("*")):
        out[str(p.relative_to(root))] = oct(stat.S_IMODE(p.stat().st_mode))
    return out


_SERVER = (sys.executable, "-m", "licentia.services.server")


def _permissive() -> None:
    os.umask(0)


def test_the_server_keeps_its_data_private_under_a_permissive_umask(tmp_path: Path) -> None:
    data, port_file = tmp_path / "data", tmp_path / "port"
    cmd = [sys.executable, "-m", "licentia.services.server", "--data-dir", str(data)]
    proc = subprocess.Popen(
        [*cmd, "--listen", "127.0.0.1:0", "--port-file", str(port_file)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_permissive,  # noqa: PLW1509
    )
    try:
        wait_for(lambda: port_file.exists() and bool(port_file.read_text().strip()), 30)
        with grpc.insecure_channel(f"127.0.0.1:{port_file.read_text().strip()}") as ch:
            key = PrivateKey.generate()
            register_holder(Party(key, SignedChannel(ch, key)))  # the WAL has pages
        modes = _modes(data)
        assert {"licentia.db", "licentia.db-wal", "licentia.db-shm", "issuer-keys"} <= set(modes)
        dirs = {n for n in modes if (data / n).is_dir()}
        assert {n: m for n, m in modes.items() if n in dirs} == dict.fromkeys(dirs, "0o700")
        assert {n: m for n, m in modes.items() if n not in dirs} == {
            n: "0o600" for n in modes if n not in dirs
        }
        assert oct(stat.S_IMODE(port_file.stat().st_mode)) == "0o600"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


#: Builds the exchange in this very process (no server command) under umask 0: the store and
#: the keys make their files private themselves.
_BUILD = """
import os, sys
from pathlib import Path
os.umask(0)
from licentia.services.app import build
app = build(Path(sys.argv[1]))
app.close()
"""


def test_the_store_and_keys_are_private_without_the_server_command(tmp_path: Path) -> None:
    data = tmp_path / "nested" / "data"
    subprocess.run([sys.executable, "-c", _BUILD, str(data)], check=True, timeout=60)
    modes = _modes(data)
    dirs = {n for n in modes if (data / n).is_dir()}
    assert "licentia.db" in modes
    assert {n: m for n, m in modes.items() if n in dirs} == dict.fromkeys(dirs, "0o700")
    assert {n: m for n, m in modes.items() if n not in dirs} == {
        n: "0o600" for n in modes if n not in dirs
    }


def test_a_data_directory_others_may_write_to_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    os.chmod(data, 0o777)
    out = subprocess.run(
        [*_SERVER, "--data-dir", str(data), "--listen", "127.0.0.1:0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 2
    assert "may be written by others" in out.stderr
    assert list(data.iterdir()) == []  # nothing created in it


def test_files_left_readable_by_an_earlier_version_are_tightened(tmp_path: Path) -> None:
    data = tmp_path / "data"
    subprocess.run([sys.executable, "-c", _BUILD, str(data)], check=True, timeout=60)
    os.chmod(data, 0o755)
    os.chmod(data / "licentia.db", 0o644)
    subprocess.run([sys.executable, "-c", _BUILD, str(data)], check=True, timeout=60)
    assert oct(stat.S_IMODE(data.stat().st_mode)) == "0o700"
    assert oct(stat.S_IMODE((data / "licentia.db").stat().st_mode)) == "0o600"
