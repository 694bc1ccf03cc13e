"""A party's key kept between runs: an encrypted key file, or an environment secret.

An advertiser's (or a platform's) key is its identity at the exchange: its balance, its
licences and its presentations are bound to it, so a program must keep the same key from one
run to the next. :func:`load_or_create_key` gives it, in this order:

1. the environment variable ``env`` (default ``LICENTIA_ADVERTISER_KEY``; a platform passes
   ``LICENTIA_PLATFORM_KEY``) when set: the key's 32-byte seed in base64url (no padding),
   as :func:`seed_text` prints it — for containers and CI, where a secret store sets it;
2. else the key file at ``path``, opened with the passphrase;
3. else (no file yet, and ``create``) a new key, written to ``path``.

The key file is the wallet's own format (``licentia-wallet/1``: the seed under Argon2id +
XSalsa20-Poly1305 SecretBox, the public key in clear, mode 0600 from its first byte, a file
others may read refused), written and read by the wallet's
:mod:`licentia.clients.wallet.keystore`, not a copy of it. The passphrase is the
``passphrase`` argument, else the environment variable ``LICENTIA_KEY_PASSPHRASE``, else it is
asked on the terminal (twice for a new file); with none of these it is an error, never an
unencrypted file.
"""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

from licentia.encoding import b64url_decode, b64url_encode
from licentia.errors import LicentiaError
from licentia.keys import PrivateKey

from .wallet import keystore
from .wallet.keystore import KdfLimits, WalletError

__all__ = [
    "ADVERTISER_KEY_ENV",
    "PASSPHRASE_ENV",
    "PLATFORM_KEY_ENV",
    "KeyFileError",
    "load_or_create_key",
    "seed_text",
]

#: The environment variable holding an advertiser's seed (base64url).
ADVERTISER_KEY_ENV = "LICENTIA_ADVERTISER_KEY"
#: The environment variable holding a platform's seed (base64url).
PLATFORM_KEY_ENV = "LICENTIA_PLATFORM_KEY"
#: The environment variable holding the key file's passphrase.
PASSPHRASE_ENV = "LICENTIA_KEY_PASSPHRASE"  # noqa: S105 (a variable name, not a secret)


class KeyFileError(Exception):
    """The key cannot be had: the message says why and what to do, for people."""


def seed_text(key: PrivateKey) -> str:
    """The key's seed as the environment variable takes it (base64url, 43 characters). It
    is the secret key itself: keep it in a secret store, never in a log or a repository."""
    return b64url_encode(key.seed)


def _from_env(env: str, value: str) -> PrivateKey:
    try:
        return PrivateKey.from_seed(b64url_decode(value.strip()))
    except LicentiaError:
        raise KeyFileError(
            f"{env} is not a key: it holds the 32-byte seed in base64url (43 characters)"
        ) from None


def _passphrase(given: str | None, path: Path, *, new: bool) -> str:
    if given is not None:
        return given
    env = os.environ.get(PASSPHRASE_ENV)
    if env:
        return env
    if not sys.stdin.isatty():
        raise KeyFileError(
            f"the key file {path} needs a passphrase: pass one, or set {PASSPHRASE_ENV}"
        )
    first = getpass.getpass(f"passphrase for {path}: ")
    if new and getpass.getpass("the same passphrase again: ") != first:
        raise KeyFileError("the two passphrases differ")
    return first


def load_or_create_key(
    path: Path | str,
    *,
    passphrase: str | None = None,
    env: str = ADVERTISER_KEY_ENV,
    create: bool = True,
    limits: KdfLimits | None = None,
) -> PrivateKey:
    """The party's key: from the environment variable ``env`` if set, else from the key
    file ``path`` (created with a new key on first use when ``create``). ``limits`` are
    Argon2id's for a new file (the wallet's defaults otherwise). Raises
    :class:`KeyFileError` (a wrong passphrase, a damaged or exposed file, a bad seed)."""
    value = os.environ.get(env)
    if value:
        return _from_env(env, value)
    path = Path(path).expanduser()
    try:
        if path.exists():
            return keystore.open_wallet(path, _passphrase(passphrase, path, new=False))
        if not create:
            raise KeyFileError(f"no key file at {path}, and {env} is not set")
        key = PrivateKey.generate()
        keystore.create(path, _passphrase(passphrase, path, new=True), key=key, limits=limits)
    except WalletError as e:
        raise KeyFileError(str(e)) from None
    return key
