"""The wallet file: the holder's Ed25519 key, encrypted at rest.

The file is one JSON document::

    {"format": "licentia-wallet/1", "public_key": "ed25519:…",
     "kdf": {"name": "argon2id", "opslimit": 2, "memlimit": 67108864, "salt": "<b64url>"},
     "box": "<b64url of XSalsa20-Poly1305 SecretBox(nonce || ciphertext) of the 32-byte seed
             || the 32-byte holder secret>",
     "account": "ed25519:…",
     "recovery_pending": {"public_key": "ed25519:…", "proof": "<b64url>"},
     "pairing": "XXXX-XXXX"}

``account`` is the account the key belongs to: the key itself for the first device (a file
without the field, from an older wallet, means that), another key for a device that joined
by pairing or a wallet made by ``recover``. ``recovery_pending`` is the recovery key that
``init`` made from the paper phrase and that ``register`` still has to add to the account:
only its public key and its proof of possession (a signature, not a secret). The phrase and
the recovery key itself are never written anywhere.

The **holder secret** (docs/token-format.md §1b), from which the wallet derives its pairwise
key for each licensee, is encrypted in the same box, after the seed. A file from before
pairwise keys has the seed alone: its holder secret is derived from the seed
(:func:`licentia.pairwise.holder_secret_from_device_seed`). A device that joined by pairing
has none yet: ``pairing`` is the code under which the old device leaves it sealed, and the
wallet stores it (and drops ``pairing``) once it has fetched it.

The box key is Argon2id(passphrase, salt) with the limits written beside it, so a wallet made
with stronger limits still opens. The public key is in clear so that the wallet can say whose
it is without the passphrase; opening checks that the decrypted seed gives that key. The file
is created with ``O_EXCL`` and mode 0600 and is never overwritten unless asked; a wallet file
that others may read is refused.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.secret
import nacl.utils
from nacl.pwhash import argon2id

from licentia.encoding import b64url_decode, b64url_encode
from licentia.errors import LicentiaError
from licentia.keys import SEED_BYTES, PrivateKey, PublicKey
from licentia.pairwise import HOLDER_SECRET_BYTES

FORMAT = "licentia-wallet/1"
MIN_PASSPHRASE_CHARS = 8
MAX_WALLET_BYTES = 16 * 1024


class WalletError(Exception):
    """A wallet that cannot be created or opened; the message says why, for people."""


@dataclass(frozen=True)
class PendingRecovery:
    """A recovery key still to be added to the account: its public key and its proof."""

    public: PublicKey
    proof: bytes


@dataclass(frozen=True)
class WalletInfo:
    """What a wallet file says in clear: its key, its account, a pending recovery key, and
    the pairing code under which its holder secret is still to be fetched."""

    public: PublicKey
    account: bytes
    pending: PendingRecovery | None
    pairing: str | None = None


@dataclass(frozen=True)
class Unlocked:
    """A wallet's secrets: the device key, and the holder secret if the file holds one."""

    key: PrivateKey
    holder_secret: bytes | None


@dataclass(frozen=True)
class KdfLimits:
    """Argon2id's work limits."""

    opslimit: int = argon2id.OPSLIMIT_INTERACTIVE
    memlimit: int = argon2id.MEMLIMIT_INTERACTIVE


def _box(passphrase: str, salt: bytes, limits: KdfLimits) -> nacl.secret.SecretBox:
    key = argon2id.kdf(
        nacl.secret.SecretBox.KEY_SIZE,
        passphrase.encode("utf-8"),
        salt,
        opslimit=limits.opslimit,
        memlimit=limits.memlimit,
    )
    return nacl.secret.SecretBox(key)


def create(
    path: Path,
    passphrase: str,
    *,
    force: bool = False,
    key: PrivateKey | None = None,
    limits: KdfLimits | None = None,
    account: bytes = b"",
    pending: PendingRecovery | None = None,
    holder_secret: bytes | None = None,
    pairing: str | None = None,
) -> PublicKey:
    """Write a new wallet holding ``key`` (a fresh one by default); returns its public key.

    Refuses an existing file unless ``force``; the new file is 0600 from its first byte.
    ``account`` is the account id (the key itself by default); ``pending`` a recovery key
    still to be added to the account; ``holder_secret`` the 32-byte holder secret, stored in
    the box with the seed; ``pairing`` the code under which a joined device is still to
    receive it.
    """
    if holder_secret is not None and len(holder_secret) != HOLDER_SECRET_BYTES:
        raise WalletError(f"a holder secret is {HOLDER_SECRET_BYTES} bytes")
    if len(passphrase) < MIN_PASSPHRASE_CHARS:
        raise WalletError(f"the passphrase must have at least {MIN_PASSPHRASE_CHARS} characters")
    key = key or PrivateKey.generate()
    limits = limits or KdfLimits()
    salt = nacl.utils.random(argon2id.SALTBYTES)
    doc = {
        "format": FORMAT,
        "public_key": key.public.text,
        "kdf": {
            "name": "argon2id",
            "opslimit": limits.opslimit,
            "memlimit": limits.memlimit,
            "salt": b64url_encode(salt),
        },
        "box": b64url_encode(
            bytes(_box(passphrase, salt, limits).encrypt(key.seed + (holder_secret or b"")))
        ),
        "account": PublicKey(account or key.public.raw).text,
    }
    if pending is not None:
        doc["recovery_pending"] = _pending_doc(pending)
    if pairing is not None:
        doc["pairing"] = pairing
    _write(path, doc, force=force)
    return key.public


def _pending_doc(pending: PendingRecovery) -> dict[str, str]:
    return {"public_key": pending.public.text, "proof": b64url_encode(pending.proof)}


def _write(path: Path, doc: dict[str, Any], *, force: bool) -> None:
    data = (json.dumps(doc, indent=2) + "\n").encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    target = path
    if force and path.exists():
        target = path.with_name(path.name + ".new")
        target.unlink(missing_ok=True)
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise WalletError(f"{path} exists: use --force to replace it") from None
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    if target != path:
        os.replace(target, path)


def public_key(path: Path) -> PublicKey:
    """Whose wallet this is, without the passphrase."""
    return _parse(path)[0]


def info(path: Path) -> WalletInfo:
    """The key, the account and the pending recovery key, without the passphrase."""
    doc = _document(path)
    try:
        public = PublicKey.from_text(doc["public_key"])
        account = PublicKey.from_text(doc.get("account", doc["public_key"])).raw
        raw = doc.get("recovery_pending")
        pending = (
            None
            if raw is None
            else PendingRecovery(
                PublicKey.from_text(raw["public_key"]), b64url_decode(raw["proof"])
            )
        )
        pairing = doc.get("pairing")
        if pairing is not None and not isinstance(pairing, str):
            raise TypeError
    except (ValueError, KeyError, TypeError, LicentiaError):
        raise WalletError(f"{path} is not a Licentia wallet (damaged?)") from None
    return WalletInfo(public, account, pending, pairing)


def update(path: Path, *, account: bytes | None = None, clear_pending: bool = False) -> None:
    """Record the account id, or forget the pending recovery key (once it is added); the
    file is replaced whole, 0600, never half written."""
    doc = _document(path)
    if account is not None:
        doc["account"] = PublicKey(account).text
    if clear_pending:
        doc.pop("recovery_pending", None)
    _write(path, doc, force=True)


def _document(path: Path) -> dict[str, Any]:
    _parse(path)  # the checks: mode, size, format
    doc = json.loads(path.read_bytes())
    if not isinstance(doc, dict):
        raise WalletError(f"{path} is not a Licentia wallet")
    return doc


def _parse(path: Path) -> tuple[PublicKey, bytes, KdfLimits, bytes]:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise WalletError(f"no wallet at {path}: create one with 'licentia-wallet init'") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise WalletError(
            f"{path} can be read by others (mode {stat.S_IMODE(st.st_mode):o}): "
            f"run 'chmod 600 {path}'"
        )
    if st.st_size > MAX_WALLET_BYTES:
        raise WalletError(f"{path} is not a Licentia wallet")
    try:
        doc = json.loads(path.read_bytes())
        if doc["format"] != FORMAT or doc["kdf"]["name"] != "argon2id":
            raise WalletError(f"{path} is not a wallet this version can read")
        kdf = doc["kdf"]
        limits = KdfLimits(int(kdf["opslimit"]), int(kdf["memlimit"]))
        if not (
            argon2id.OPSLIMIT_MIN <= limits.opslimit <= argon2id.OPSLIMIT_MAX
            and argon2id.MEMLIMIT_MIN <= limits.memlimit <= 4 * argon2id.MEMLIMIT_SENSITIVE
        ):
            raise WalletError(f"{path} asks for unreasonable key-derivation limits")
        return (
            PublicKey.from_text(doc["public_key"]),
            b64url_decode(kdf["salt"]),
            limits,
            b64url_decode(doc["box"]),
        )
    except (ValueError, KeyError, TypeError, LicentiaError):
        raise WalletError(f"{path} is not a Licentia wallet (damaged?)") from None


def open_wallet(path: Path, passphrase: str) -> PrivateKey:
    """The holder's key; ``WalletError`` for a wrong passphrase or a damaged file."""
    return unlock(path, passphrase).key


def unlock(path: Path, passphrase: str) -> Unlocked:
    """The device key and the holder secret stored with it (``None`` in a file from before
    pairwise keys, or a joined device's that has not received it yet); ``WalletError`` for
    a wrong passphrase or a damaged file."""
    public, salt, limits, box = _parse(path)
    try:
        plain = _box(passphrase, salt, limits).decrypt(box)
    except (nacl.exceptions.CryptoError, nacl.exceptions.ValueError, ValueError):
        raise WalletError("wrong passphrase (or a damaged wallet file)") from None
    if len(plain) not in (SEED_BYTES, SEED_BYTES + HOLDER_SECRET_BYTES):
        raise WalletError(f"{path} is damaged: its box holds {len(plain)} bytes")
    key = PrivateKey.from_seed(plain[:SEED_BYTES])
    if key.public != public:
        raise WalletError(f"{path} is damaged: its key does not match its public key")
    return Unlocked(key, bytes(plain[SEED_BYTES:]) or None)


def store_holder_secret(path: Path, passphrase: str, holder_secret: bytes) -> None:
    """Put ``holder_secret`` in the wallet's box beside its seed (a fresh nonce, the same
    passphrase and salt) and forget the pairing it came through; the file is replaced whole,
    0600, never half written."""
    if len(holder_secret) != HOLDER_SECRET_BYTES:
        raise WalletError(f"a holder secret is {HOLDER_SECRET_BYTES} bytes")
    key = unlock(path, passphrase).key
    _, salt, limits, _ = _parse(path)
    doc = _document(path)
    sealed = _box(passphrase, salt, limits).encrypt(key.seed + holder_secret)
    doc["box"] = b64url_encode(bytes(sealed))
    doc.pop("pairing", None)
    _write(path, doc, force=True)
