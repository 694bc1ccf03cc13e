"""One wallet command's session: the wallet file, the passphrase, the holder SDK's client."""

from __future__ import annotations

import argparse
import getpass
import ssl
import sys
from collections.abc import Sequence
from pathlib import Path

from licentia import pairwise
from licentia.errors import LicentiaError
from licentia.keys import PrivateKey

from ..channel import ExchangeError
from ..holder import Holder
from . import keystore

PROG = "licentia-wallet"
DEFAULT_WALLET = Path.home() / ".licentia" / "wallet.json"
DEFAULT_SERVER = "127.0.0.1:7700"


class OperationFailedError(Exception):
    """An operation that failed: printed as ``licentia-wallet: error: …``, exit 1."""


class MisuseError(OperationFailedError):
    """A command used wrongly in a way argparse cannot see: exit 2."""


class Session:
    """One command's wallet and connection."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.wallet: Path = args.wallet
        self._key: PrivateKey | None = None
        self._passphrase: str | None = None
        self._secret: bytes | None = None
        self._holder: Holder | None = None
        self._others: list[Holder] = []

    def passphrase(self, *, twice: bool = False, min_chars: int = 0) -> str:
        """From --passphrase-file (or stdin with '-'), else asked on the terminal. A new
        passphrase (``twice``) is typed twice; one too short (under ``min_chars``) or typed
        differently the second time is asked again, up to :data:`NEW_PASSPHRASE_TRIES` times.
        """
        source = self.args.passphrase_file
        if source is not None:
            text = sys.stdin.readline() if source == "-" else _read_first_line(Path(source))
            text = text.rstrip("\r\n")
            if len(text) < min_chars:
                raise keystore.WalletError(_too_short(min_chars))
            return text
        if not sys.stdin.isatty():
            raise OperationFailedError(
                "no terminal to ask the passphrase: use --passphrase-file PATH or -"
            )
        if not twice:
            return getpass.getpass("Wallet passphrase: ")
        problem = ""
        for _ in range(NEW_PASSPHRASE_TRIES):
            first = getpass.getpass("New wallet passphrase: ")
            if len(first) < min_chars:
                problem = _too_short(min_chars)
            elif getpass.getpass("Again, to be sure: ") != first:
                problem = "the two passphrases differ"
            else:
                return first
            print(f"{problem}: try again.", file=sys.stderr)
        raise OperationFailedError(f"{problem}; nothing was done")

    @property
    def key(self) -> PrivateKey:
        """The holder's key, unlocked once per command."""
        if self._key is None:
            keystore.public_key(self.wallet)  # say what is wrong with the file before asking
            self._passphrase = self.passphrase()
            unlocked = keystore.unlock(self.wallet, self._passphrase)
            self._key, self._secret = unlocked.key, unlocked.holder_secret
        return self._key

    @property
    def holder_secret(self) -> bytes:
        """The holder secret, from which each licensee's pairwise key is derived
        (docs/token-format.md §1b): the one in the wallet file; for a device that joined by
        pairing, fetched (and stored) once the other device has left it; for a file from
        before pairwise keys, derived from its device seed."""
        key = self.key
        if self._secret is not None:
            return self._secret
        code = keystore.info(self.wallet).pairing
        if code is None:
            return pairwise.holder_secret_from_device_seed(key.seed)
        try:
            secret = self.holder.pairing_secret(code)
        except ExchangeError as e:
            if e.reason.name != "NOT_FOUND":
                raise
            secret = None
        except LicentiaError as e:
            raise OperationFailedError(
                f"the holder secret left for this device does not open ({e}): pair it again"
            ) from None
        if secret is None:
            raise OperationFailedError(
                "this device has not received your holder secret yet: approve it on your other"
                f" device ('licentia-wallet devices approve {code}' there), then try again"
                " (if the pairing has expired: on this device 'licentia-wallet join NEWCODE"
                " --name NAME --force' with a new code, then remove this device's old key)"
            )
        assert self._passphrase is not None  # set with the key
        keystore.store_holder_secret(self.wallet, self._passphrase, secret)
        self._secret = secret
        return secret

    @property
    def holder(self) -> Holder:
        """The holder SDK's client of the exchange, signing with the wallet's key, for the
        account the wallet file names."""
        if self._holder is None:
            account = keystore.info(self.wallet).account
            self._holder = self.connect(self.key)
            self._holder.account = account
        return self._holder

    def connect(self, key: PrivateKey) -> Holder:
        """Another client of the exchange, signing with ``key`` (a recovery key, a new
        device's); closed with the session."""
        client = Holder.connect(
            self.args.server, key, tls_ca=trusted_roots(self.args), insecure=self.args.insecure
        )
        self._others.append(client)
        return client

    def close(self) -> None:
        """Close the channels."""
        for client in self._others:
            client.close()


#: How many times a new passphrase is asked when it is too short or typed differently.
NEW_PASSPHRASE_TRIES = 3


def _too_short(min_chars: int) -> str:
    return f"the passphrase must have at least {min_chars} characters"


def trusted_roots(args: argparse.Namespace) -> bytes | None:
    """The PEM certificates the TLS connection to the exchange trusts: ``--tls-ca`` (or
    ``LICENTIA_TLS_CA``), else the system's CA store; ``None`` (no TLS) with ``--insecure``."""
    if args.insecure:
        if args.tls_ca:
            raise MisuseError("--insecure turns TLS off: it goes with no --tls-ca")
        return None
    if args.tls_ca:
        path, what = Path(args.tls_ca), "--tls-ca (or LICENTIA_TLS_CA)"
    else:
        found = ssl.get_default_verify_paths().cafile
        if found is None:
            raise OperationFailedError(
                "no system CA store found to check the exchange's certificate: name one with"
                " --tls-ca FILE (or LICENTIA_TLS_CA), or --insecure for a local exchange"
            )
        path, what = Path(found), "the system CA store"
    try:
        pem = path.read_bytes()
    except OSError as e:
        raise OperationFailedError(f"cannot read {what} {path}: {e.strerror}") from None
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        raise OperationFailedError(f"{what} {path} holds no PEM certificate")
    return pem


def _read_first_line(path: Path) -> str:
    try:
        with path.open(encoding="utf-8") as f:
            return f.readline()
    except OSError as e:
        raise OperationFailedError(f"cannot read the passphrase file: {e.strerror}") from None


def _pick(ids: Sequence[bytes], text: str, what: str) -> bytes:
    """The one id that ``text`` (hex, or a prefix of at least 6 hex digits) names.

    The exchange's ids begin with the second they were made (docs/token-format.md §3.1), so
    ids made close together share their first digits: a prefix that names several is
    refused with the ids it names, to be typed longer."""
    text = text.strip().lower()
    found = [i for i in ids if i.hex() == text] or (
        [i for i in ids if i.hex().startswith(text)] if len(text) >= 6 else []
    )
    if len(found) > 1:
        shown = ", ".join(i.hex()[:16] + "…" for i in found[:5])
        more = f" and {len(found) - 5} more" if len(found) > 5 else ""
        raise OperationFailedError(
            f"{text!r} begins {len(found)} ids ({shown}{more}): type more of the {what}'s id"
        )
    if not found:
        raise OperationFailedError(f"no single {what} {text!r}: see the list for its id")
    return found[0]


def ask(prompt: str) -> str:
    """One answer typed at the terminal; the prompt goes to stderr (stdout may be JSON)."""
    print(prompt, end="", file=sys.stderr, flush=True)
    return input("")  # the prompt is printed above, on stderr


def _confirm(s: Session, question: str) -> None:
    """Ask ``question`` (y/N), after the passphrase (one order everywhere); --yes answers."""
    _ = s.key  # unlocks the wallet: the passphrase is asked first
    if s.args.yes:
        return
    if not sys.stdin.isatty() or s.args.passphrase_file == "-":  # noqa: S105 - "-" is stdin
        raise OperationFailedError("confirm with --yes (no terminal to ask)")
    if ask(f"{question} [y/N] ").strip().lower() not in ("y", "yes"):
        raise OperationFailedError("nothing done")
