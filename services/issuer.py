"""The exchange's issuer keys: secret seeds in files (0600), public windows in the store.

Each key's 32-byte seed lives in ``<keys dir>/<key id hex>.key``, created with ``O_EXCL`` and
mode 0600 and never overwritten. The store publishes every key with its signing window; a
rotation starts a new key and ends the current one's window, and the old key stays
published so that what it signed keeps verifying.

Each key's content root (docs/token-format.md §12.3) is kept beside its seed as
``<key id hex>.root`` (DER, public), written whenever the keyring holds the secret and the
key's window changes (its creation, its retirement). The root is deterministic but only the
secret can make it, so keeping it is what lets an operator destroy a retired key's secret —
which it should, since a retired secret could still mint content certificates — while the
exchange keeps publishing the root that files signed under it chain to. Why a file beside
the seed rather than a column in the store: the root is made where the secret is, by the
process that holds it when the window changes (``rotate-key``, or a running exchange picking
the rotation up), and it travels with the key files an operator already copies to replicas;
a store column would need a schema migration on both stores for 4 KiB of public,
self-verifying bytes (a replica checks a kept root against the published key and window
before it publishes it, so a stale or foreign file is ignored).
"""

from __future__ import annotations

import os
import secrets
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

from nacl.signing import SigningKey

from licentia import content_certs
from licentia.errors import LicentiaError, Reason
from licentia.keys import IssuerKey, IssuerKeySet, PrivateKey, PublicKey

from .model import IssuerKeyRow
from .store import Store


def _write_synced(path: Path, data: bytes, place: Callable[[Path, Path], None]) -> None:
    """Write ``data`` (0600) under a temporary name beside ``path``, sync it, put it in place
    with ``place(tmp, path)`` (``os.link``: never over an existing file; ``os.replace``: over
    it), then sync the directory; the temporary name is removed whatever happens."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        place(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _sync_directory(path.parent)


def _write_seed(path: Path, seed: bytes) -> None:
    """Create ``path`` (0600) holding ``seed``, all or nothing.

    The seed is written and synced under a temporary name, then linked into place — which
    fails if ``path`` exists, as ``O_EXCL`` does — and the directory is synced. A crash at
    any moment leaves either no key file or the whole one: never a short file that would
    stop the exchange from starting again ("key file … is damaged")."""
    _write_synced(path, seed, os.link)


#: A temporary key file older than this is left from a crash (writing one takes
#: milliseconds): it is removed, since it holds a secret seed.
STALE_TEMP_SECONDS = 60.0


def _remove_stale_temps(directory: Path) -> None:
    """Remove the temporary key files (``.NAME.key.*.tmp``) a crash left in ``directory``."""
    if not directory.is_dir():
        return
    horizon = time.time() - STALE_TEMP_SECONDS
    for temp in [*directory.glob(".*.key.*.tmp"), *directory.glob(".*.root.*.tmp")]:
        try:
            if temp.stat().st_mtime < horizon:
                temp.unlink()
        except FileNotFoundError:
            pass  # another process removed it first


def _sync_directory(directory: Path) -> None:
    """Make the directory's entries durable (a new file's name survives a power loss)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_root(path: Path, der: bytes) -> None:
    """Replace ``path`` with ``der`` (a public certificate, kept 0600 as everything in the
    data directory: its readers are the exchange's own), all or nothing: written
    and synced under a temporary name, renamed into place, the directory synced."""
    _write_synced(path, der, os.replace)


def _read_seed(path: Path) -> bytes:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise LicentiaError(
            Reason.INTERNAL, f"key file {path.name} must be readable by its owner only"
        )
    seed = path.read_bytes()
    if len(seed) != 32:
        raise LicentiaError(Reason.INTERNAL, f"issuer key file {path.name} is damaged")
    return seed


class Keyring:
    """The issuer keys of one exchange: signs with the current key, publishes all of them."""

    def __init__(self, keys_dir: Path, store: Store, clock: Callable[[], int]) -> None:
        self.keys_dir = keys_dir
        self.store = store
        self.clock = clock
        self._lock = threading.Lock()
        # The published set and the secrets held, swapped together as one value so that a
        # reader never pairs a new set with old secrets (a refresh runs beside the signers).
        self._keys: tuple[IssuerKeySet, dict[bytes, PrivateKey]] = (IssuerKeySet([]), {})
        #: Content roots made so far, by (key id, not_before, not_after): deterministic, so
        #: made once per window (a retirement changes the window, hence the root).
        self._roots: dict[tuple[bytes, int, int | None], bytes] = {}
        #: The windows whose root this keyring has written to its ``.root`` file.
        self._kept: set[tuple[bytes, int, int | None]] = set()

    def load(self, now: int, *, create: bool = True) -> None:
        """Load every published key; create the first key on a new exchange."""
        _remove_stale_temps(self.keys_dir)
        with self._lock:
            if create and not self.store.issuer_keys():
                self._new_key(now)
            self._reload()

    def _new_key(self, now: int, *, at_once: bool = False) -> PublicKey:
        self.keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = PrivateKey.generate()
        _write_seed(self.keys_dir / f"{key.public.key_id.hex()}.key", key.seed)
        # Windows never overlap nor come out empty. A key in use may already have signed
        # licences stamped with this second, so its successor starts at the next one (unless
        # there is nothing to succeed, or the key in use was just withdrawn: ``at_once``).
        existing = self.store.issuer_keys()
        first = now if at_once or not existing else now + 1
        start = max([first, *(r.not_before + 1 for r in existing)])
        self.store.rotate_issuer_key(IssuerKeyRow(key.public.key_id, key.public.raw, start))
        return key.public

    def _reload(self) -> None:
        rows = self.store.issuer_keys()
        published = IssuerKeySet(
            IssuerKey(PublicKey(r.public_key), r.not_before, r.not_after or None) for r in rows
        )
        private: dict[bytes, PrivateKey] = {}
        for r in rows:
            path = self.keys_dir / f"{r.key_id.hex()}.key"
            if path.exists():
                key = PrivateKey.from_seed(_read_seed(path))
                if key.public.raw != r.public_key:
                    raise LicentiaError(Reason.INTERNAL, f"issuer key file {path.name} mismatch")
                private[r.key_id] = key
        self._keys = (published, private)
        for k in published:
            if k.key_id in private:
                self._keep_root(k)

    def _root_path(self, key_id: bytes) -> Path:
        return self.keys_dir / f"{key_id.hex()}.root"

    def _keep_root(self, key: IssuerKey) -> None:
        """Write the root of ``key`` (whose secret is held) for its current window to its
        ``.root`` file, once per window: at its creation, and again when it retires (its
        window gets an end). A keys directory this process may not write is left as it is
        (the root is still published from the secret)."""
        window = (key.key_id, key.not_before, key.not_after)
        if window in self._kept:
            return
        root = self.content_root(key)
        path = self._root_path(key.key_id)
        if root is None:
            return
        try:
            if not path.exists() or path.read_bytes() != root:
                _write_root(path, root)
        except OSError:
            return
        self._kept.add(window)

    def rotate(self, now: int) -> PublicKey:
        """Start a new key at ``now`` (or the next free second); the old one stays
        published, retired from then on. Returns the new key."""
        with self._lock:
            new = self._new_key(now)
            self._reload()
            return new

    def withdraw(self, key_id: bytes, now: int) -> PublicKey | None:
        """Withdraw a compromised key: unpublish it and destroy its secret file, so every
        licence it signed fails with UNKNOWN_ISSUER_KEY. When it is the key in use, a new
        key is rotated in first (returned); otherwise returns None."""
        with self._lock:
            key = self._keys[0].resolve(key_id)
            if key is None:
                raise LicentiaError(Reason.NOT_FOUND, "no published issuer key with that id")
            self.store.withdraw_issuer_key(key_id, now)
            (self.keys_dir / f"{key_id.hex()}.key").unlink(missing_ok=True)
            self._root_path(key_id).unlink(missing_ok=True)
            if self.keys_dir.is_dir():
                _sync_directory(self.keys_dir)  # the destruction is durable too
            replacement = self._new_key(now, at_once=True) if key.not_after is None else None
            self._reload()
            return replacement

    def missing_secrets(self, now: int) -> list[bytes]:
        """The ids of the published keys that may sign at ``now`` or later (the current key,
        and one rotated in to start next) whose secret file this keyring does not hold."""
        published, private = self._keys
        return [
            k.key_id
            for k in published
            if (k.not_after is None or k.not_after > now) and k.key_id not in private
        ]

    def current(self, at: int | None = None) -> PrivateKey:
        """The key that signs at ``at`` (default now): the one whose window holds that time
        (a key rotated in starts at the next second). A licence stamped ``issued_at`` is
        signed with ``current(issued_at)``, so its key was valid at that stamp."""
        now = self.clock() if at is None else at
        published, private = self._keys
        for key in published:
            if key.may_sign_at(now) and key.key_id in private:
                return private[key.key_id]
        raise LicentiaError(
            Reason.UNAVAILABLE,
            "this replica holds no secret for the exchange's current issuer key (rotated at"
            " another replica?): try another replica; its operator must copy the key file",
        )

    def private(self, key_id: bytes) -> PrivateKey | None:
        """The secret key with this id, if this exchange holds it and it may sign now."""
        published, private = self._keys
        key = published.resolve(key_id)
        if key is None or not key.may_sign_at(self.clock()):
            return None
        return private.get(key_id)

    def resolve(self, key_id: bytes) -> IssuerKey | None:
        """The published key with this id (the verification engine's key resolver)."""
        return self._keys[0].resolve(key_id)

    def content_root(self, key: IssuerKey) -> bytes | None:
        """The content root certificate of a published key for its published window (DER,
        deterministic: :func:`licentia.content_certs.root_certificate`): made from its
        secret when this exchange holds it, else read from its ``.root`` file when that is
        exactly the root of this key and window (a retired key's secret destroyed, its root
        kept); None otherwise."""
        window = (key.key_id, key.not_before, key.not_after)
        root = self._roots.get(window)
        if root is not None:
            return root
        secret = self._keys[1].get(key.key_id)
        if secret is not None:
            root = content_certs.root_certificate(
                SigningKey(secret.seed), key.key_id, key.not_before, key.not_after
            )
        else:
            root = self._kept_root(key)
            if root is None:
                return None
        self._roots[window] = root
        return root

    def _kept_root(self, key: IssuerKey) -> bytes | None:
        """The root in ``key``'s ``.root`` file if it is that key's for its published window
        and its self-signature verifies (the checkers' own test); None otherwise."""
        try:
            der = self._root_path(key.key_id).read_bytes()[: content_certs.MAX_CERT_BYTES + 1]
        except OSError:
            return None
        ok = content_certs.trusted_roots([der], IssuerKeySet([key]))
        return der if ok == [der] else None

    def content_roots(self) -> list[bytes]:
        """The content roots of every published key, current and retired, in the key set's
        order (``GetIssuerKeys``): made from the secrets held, or read from the roots kept
        of the keys whose secret is gone (:meth:`content_root`)."""
        roots = (self.content_root(k) for k in self._keys[0])
        return [r for r in roots if r is not None]

    @property
    def key_set(self) -> IssuerKeySet:
        """Every published key (what verifiers trust)."""
        return self._keys[0]

    def refresh(self) -> None:
        """Re-read the published keys (a replica following another process's rotation)."""
        with self._lock:
            self._reload()


class ExchangeKeyError(ValueError):
    """A replica's keys are not the exchange's (or are missing): it must not start."""


def key_file(path: Path, *, create: bool) -> PrivateKey | None:
    """A key of the exchange kept as its seed in ``path`` (0600): the operator key, the log key.
    Created on first start when ``create``; None if absent otherwise."""
    _remove_stale_temps(path.parent)
    if not path.exists():
        if not create:
            return None
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        _write_seed(path, PrivateKey.generate().seed)
    return PrivateKey.from_seed(_read_seed(path))
