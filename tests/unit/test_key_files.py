"""The exchange's key files are created all or nothing: a crash at any step of writing one
leaves no key file or the whole one, so the exchange always starts again."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from licentia.services import issuer


class Crash(BaseException):
    """The process dies here (a BaseException: no ``except Exception`` catches it)."""


def _crash_on(monkeypatch: pytest.MonkeyPatch, name: str, nth: int = 1) -> None:
    """Make ``os.<name>`` die on its ``nth`` call."""
    real: Callable[..., Any] = getattr(os, name)
    calls = [0]

    def dying(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == nth:
            raise Crash(name)
        return real(*args, **kwargs)

    monkeypatch.setattr(os, name, dying)


@pytest.mark.parametrize("step", ["open", "write", "fsync", "link", "close"])
def test_a_crash_while_creating_a_key_file_leaves_none_or_all_of_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    path = tmp_path / "operator.key"
    with monkeypatch.context() as m:
        _crash_on(m, step)
        with pytest.raises(Crash):
            issuer.key_file(path, create=True)
    # What a crash left: no key file, or a whole one; and the exchange starts again.
    assert not path.exists() or len(path.read_bytes()) == 32
    key = issuer.key_file(path, create=True)
    assert key is not None
    assert issuer.key_file(path, create=False) is not None
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # The temporary file of the crashed attempt does not linger with a secret in it, except
    # when the crash hit before it could be removed (then it is not the key file's name).
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".tmp")] == ["operator.key"]


def test_a_key_file_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "log.key"
    first = issuer.key_file(path, create=True)
    assert first is not None
    with pytest.raises(FileExistsError):
        issuer._write_seed(path, bytes(32))
    again = issuer.key_file(path, create=True)
    assert again is not None
    assert again.public == first.public
    assert [p.name for p in tmp_path.iterdir()] == ["log.key"]


def test_a_short_key_file_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "operator.key"
    path.write_bytes(b"short")
    path.chmod(0o600)
    with pytest.raises(Exception, match="damaged"):
        issuer.key_file(path, create=True)


def test_temporary_key_files_left_by_a_crash_are_removed_at_the_next_start(
    tmp_path: Path,
) -> None:
    stale = tmp_path / ".operator.key.0011223344556677.tmp"
    stale.write_bytes(bytes(32))
    old = stale.stat().st_mtime - issuer.STALE_TEMP_SECONDS - 5
    os.utime(stale, (old, old))
    fresh = tmp_path / ".log.key.8899aabbccddeeff.tmp"  # another process writing right now
    fresh.write_bytes(bytes(32))
    other = tmp_path / "notes.tmp"  # not a key file: never touched
    other.write_text("keep")
    assert issuer.key_file(tmp_path / "operator.key", create=True) is not None
    assert not stale.exists()
    assert fresh.exists()
    assert other.exists()


def test_a_replica_without_the_current_keys_secret_is_unavailable(tmp_path: Path) -> None:
    """A replica whose issuer-keys directory lacks the key rotated in at another replica
    cannot sign: UNAVAILABLE with what to do (it was INTERNAL), so a client retries
    elsewhere."""
    from licentia.errors import LicentiaError, Reason
    from licentia.services.store import SqliteStore

    store = SqliteStore(tmp_path / "db")
    now = 1_800_000_000
    issuer.Keyring(tmp_path / "a", store, lambda: now).load(now, create=True)
    other = issuer.Keyring(tmp_path / "b", store, lambda: now)
    other.load(now, create=False)
    with pytest.raises(LicentiaError) as refused:
        other.current(now)
    assert refused.value.reason is Reason.UNAVAILABLE
    assert "copy the key file" in str(refused.value)
    store.close()
