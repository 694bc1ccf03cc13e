"""The exchange's key files are created all or nothing: a crash at any step of writing one
leaves no key file or the whole one, so the exchange always starts again."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from nacl.signing import SigningKey

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


def test_a_retired_keys_root_is_kept_so_its_secret_can_be_destroyed(tmp_path: Path) -> None:
    """A retired key's content root stays published with its secret destroyed (it was not:
    operators had to keep every retired secret, which could still mint certificates), from
    the ``.root`` file kept beside it; a file that is not exactly that root is not
    published; a withdrawn key's root goes with it."""
    from licentia import content_certs
    from licentia.services.store import SqliteStore

    store = SqliteStore(tmp_path / "db")
    now = 1_800_000_000
    keys_dir = tmp_path / "keys"
    ring = issuer.Keyring(keys_dir, store, lambda: now)
    ring.load(now)
    (old,) = ring.key_set
    old_secret = ring.current(now)
    assert (keys_dir / f"{old.key_id.hex()}.root").read_bytes() == ring.content_roots()[0]
    ring.rotate(now)
    retired = ring.key_set.resolve(old.key_id)
    assert retired is not None
    assert retired.not_after == now + 1
    roots = ring.content_roots()
    assert content_certs.trusted_roots(roots, ring.key_set) == roots
    assert len(roots) == 2
    kept = keys_dir / f"{old.key_id.hex()}.root"
    assert kept.read_bytes() == roots[0]  # the retired form, written at the rotation
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600  # public, kept private as the whole data dir

    # The operator destroys the retired secret: every replica still publishes both roots.
    (keys_dir / f"{old.key_id.hex()}.key").unlink()
    fresh = issuer.Keyring(keys_dir, store, lambda: now)
    fresh.load(now, create=False)
    assert fresh.content_roots() == roots
    assert fresh.private(old.key_id) is None

    # A kept file that is not exactly the retired key's root for its window is not published:
    # the root of its current days (NO_END), another key's root, a cut one, garbage.
    signing = SigningKey(old_secret.seed)
    current_form = content_certs.root_certificate(signing, old.key_id, now, None)
    for bad in (current_form, roots[1], roots[0][:-1], b"\x30" * 300):
        kept.write_bytes(bad)
        again = issuer.Keyring(keys_dir, store, lambda: now)
        again.load(now, create=False)
        assert again.content_roots() == [roots[1]], bad[:8]

    # Withdrawn: its root leaves with it.
    kept.write_bytes(roots[0])
    fresh.withdraw(old.key_id, now)
    assert not kept.exists()
    assert fresh.content_roots() == [roots[1]]
    store.close()
