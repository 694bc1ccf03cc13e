"""The wallet's commands that make or move an account's keys: ``init`` (a device key and the
paper recovery phrase), ``register`` (which adds the recovery key to the new account),
``recovery add``, ``join`` (a new device, by a pairing code) and ``recover`` (a new device,
from the phrase alone).

The recovery phrase is shown once and never written anywhere: ``init`` keeps only the
recovery key's public key and its proof of possession in the wallet file, for ``register``.
"""

from __future__ import annotations

import getpass
import secrets
import socket
import sys
from pathlib import Path

import nacl.utils

from licentia import keyset, pairwise, phrase
from licentia.errors import LicentiaError
from licentia.keys import PrivateKey, PublicKey

from ..accounts import add_key
from ..channel import ExchangeError
from ..holder import Holder
from . import keystore
from .render import _dict, _out, _when, fingerprint
from .session import MisuseError, OperationFailedError, Session
from .session import ask as _ask

#: How many words the holder types back to show she wrote the phrase down.
CONFIRM_WORDS = 3
#: How many rounds of answers she gets.
CONFIRM_TRIES = 3
RECOVERY_NAME = "paper"

_WARNING = (
    "Write these 12 words on paper, in this order, and keep the paper safe.\n"
    "Anyone with them can take over your account; Licentia never stores them, and they"
    " are not in the wallet file. They are shown this once."
)


def _terminal(s: Session) -> bool:
    """Whether a person can be asked at a terminal (not when stdin carries a passphrase)."""
    return sys.stdin.isatty() and s.args.passphrase_file != "-"  # noqa: S105 - "-" is stdin


def _numbered(words: str) -> str:
    items = [f"{i:>2}. {w:<10}" for i, w in enumerate(words.split(), 1)]
    return "\n".join("  " + "".join(items[r : r + 4]).rstrip() for r in range(0, len(items), 4))


def _show_and_confirm(s: Session, words: str) -> None:
    """Show the phrase (on stdout; with --json on stderr, the document carries it), then,
    unless --yes, ask for three words at random positions, at most three rounds."""
    if not s.args.yes and not _terminal(s):
        # Refused before the phrase is shown: a phrase of nothing would only sit in a log.
        raise OperationFailedError(
            "no terminal to check that you wrote the words down: nothing was created;"
            " scripts use --yes (and --json to capture the phrase)"
        )
    shown = f"Your recovery phrase:\n{_numbered(words)}\n{_WARNING}"
    if not s.args.json:
        print(shown, flush=True)
    elif not s.args.yes:
        print(shown, file=sys.stderr, flush=True)
    if s.args.yes:
        return
    asked = sorted(secrets.SystemRandom().sample(range(1, phrase.PHRASE_WORDS + 1), CONFIRM_WORDS))
    print("To be sure you wrote them down, type the words at these positions.", file=sys.stderr)
    for _ in range(CONFIRM_TRIES):
        answers = {}
        for p in asked:
            answers[p] = _ask(f"Word number {p}: ")
        wrong = phrase.check_confirmation(words, answers)
        if not wrong:
            return
        print(
            "Not the word written at position " + ", ".join(str(p) for p in wrong) + ": check"
            " your paper and try again.",
            file=sys.stderr,
        )
        asked = wrong
    raise OperationFailedError(
        "the words did not match: nothing was created; run the command again for a new phrase"
    )


def _new_phrase(s: Session) -> tuple[str, PrivateKey]:
    entropy = secrets.token_bytes(phrase.ENTROPY_BYTES)
    words = phrase.new_phrase(entropy)
    _show_and_confirm(s, words)
    return words, phrase.recovery_key(entropy)


def _new_passphrase(s: Session) -> str:
    return s.passphrase(twice=True, min_chars=keystore.MIN_PASSPHRASE_CHARS)


def _free(s: Session) -> None:
    if s.wallet.exists() and not s.args.force:
        raise keystore.WalletError(f"{s.wallet} exists: use --force to replace it")


def cmd_init(s: Session) -> None:
    """Create the wallet: a device key, and (unless --no-recovery) the paper phrase."""
    _free(s)
    passphrase = _new_passphrase(s)
    key = PrivateKey.generate()
    words, pending = "", None
    secret = nacl.utils.random(pairwise.HOLDER_SECRET_BYTES)  # without a phrase: random
    if not s.args.no_recovery:
        words, recovery = _new_phrase(s)
        proof = keyset.possession_proof(recovery, key.public.raw)
        pending = keystore.PendingRecovery(recovery.public, proof)
        secret = pairwise.holder_secret_from_entropy(phrase.parse_phrase(words))
    public = keystore.create(
        s.wallet,
        passphrase,
        force=s.args.force,
        key=key,
        pending=pending,
        holder_secret=secret,
    )
    doc = {
        "wallet": str(s.wallet),
        "public_key": public.text,
        "fingerprint": fingerprint(public.raw),
    }
    text = (
        f"Created {s.wallet}\nYour public key: {public.text}\n"
        "Keep your passphrase: without it nobody, not even you, can use this key."
    )
    if words:
        doc["recovery_phrase"] = words
        text += "\nYour recovery key is added to your account when you register."
    else:
        print(
            "Warning: no recovery phrase. If you lose this device (or its passphrase) you"
            " lose the account. Add one any time with 'licentia-wallet recovery add'.",
            file=sys.stderr,
        )
    _out(s.args, doc, text)


def _add_pending(s: Session, pending: keystore.PendingRecovery) -> None:
    """Add the recovery key ``init`` made to the account (if not there yet), then forget it."""
    current = s.holder.key_set().current
    if current.key(pending.public.raw) is None:
        if current.recovery is not None:
            raise OperationFailedError("the account already has another recovery key")
        entry = keyset.AccountKey(pending.public.raw, keyset.RECOVERY, RECOVERY_NAME)
        change = add_key(current, s.key, entry.to_proto(pending.proof), at=s.holder.clock())
        s.holder.change_key_set(change)
    keystore.update(s.wallet, clear_pending=True)


def _retry_hint(e: Exception) -> OperationFailedError:
    why = f"{e.reason.name}: {e}" if isinstance(e, LicentiaError | ExchangeError) else str(e)
    return OperationFailedError(
        f"your recovery key could not be added to your account ({why});"
        " try again with 'licentia-wallet recovery add'"
    )


def cmd_register(s: Session) -> None:
    """Register as a holder; then add the recovery key ``init`` made (retried when the
    account exists already and that key is still pending)."""
    pending = keystore.info(s.wallet).pending
    try:
        profile = s.holder.register(
            s.args.handle, s.args.name or "", show_display_name=s.args.show_name
        )
    except ExchangeError as e:
        if e.reason.name != "ALREADY_EXISTS" or pending is None:
            raise
        try:
            s.holder.key_set()  # this key's account exists: only the recovery key is missing
        except ExchangeError:
            raise e from None
        _add_pending(s, pending)
        _out(s.args, {"recovery_key_added": True}, "Already registered; added your recovery key.")
        return
    doc = _dict(profile)
    if pending is not None:
        print(f"Registered as {profile.handle}.", file=sys.stderr)
        try:
            _add_pending(s, pending)
        except (ExchangeError, LicentiaError, OperationFailedError) as e:
            raise _retry_hint(e) from None
        doc["recovery_key_added"] = True
    extra = " Your recovery key (the paper phrase) is in your account." if pending else ""
    _out(s.args, doc, f"Registered as {profile.handle}.{extra}")


def cmd_recovery_add(s: Session) -> None:
    """Add the pending recovery key; or, for a wallet without one, make a new phrase."""
    pending = keystore.info(s.wallet).pending
    if pending is not None:
        try:
            _add_pending(s, pending)
        except (ExchangeError, LicentiaError) as e:
            raise _retry_hint(e) from None
        _out(s.args, {"recovery_key_added": True}, "Added your recovery key to your account.")
        return
    current = s.holder.key_set().current
    if current.recovery is not None:
        raise OperationFailedError(
            f"your account has a recovery key already (fingerprint"
            f" {fingerprint(current.recovery.public)})"
        )
    words, recovery = _new_phrase(s)
    s.holder.add_recovery_key(recovery, RECOVERY_NAME)
    _out(
        s.args,
        {"recovery_key_added": True, "recovery_phrase": words},
        "Added your recovery key to your account.",
    )


def cmd_join(s: Session) -> None:
    """On a new device: a new wallet whose key joins the account of a pairing code."""
    _free(s)
    passphrase = _new_passphrase(s)
    key = PrivateKey.generate()
    joined = s.connect(key).join_pairing(s.args.code, s.args.name)
    keystore.create(
        s.wallet,
        passphrase,
        force=s.args.force,
        key=key,
        account=joined.account,
        pairing=s.args.code,  # where the other device leaves the holder secret, sealed
    )
    fp = fingerprint(key.public.raw)
    _out(
        s.args,
        {
            "wallet": str(s.wallet),
            "public_key": key.public.text,
            "fingerprint": fp,
            "account": PublicKey(joined.account).text,
            "expires_at": joined.expires_at,
        },
        f"Created {s.wallet} for this device ({s.args.name}), fingerprint {fp}.\n"
        f"Now confirm on your other device before {_when(joined.expires_at)}: it shows the"
        f" fingerprint of the device that joined; check that it is {fp}"
        f" ('licentia-wallet devices approve {s.args.code}' there if it is not waiting).",
    )


def _read_phrase(s: Session) -> str:
    source = s.args.phrase_file
    if source == "-" and s.args.passphrase_file == "-":  # noqa: S105 - "-" is stdin
        raise MisuseError("the phrase and the passphrase cannot both come from stdin")
    if source == "-":
        return sys.stdin.readline()
    if source is not None:
        try:
            return Path(source).read_text(encoding="utf-8")
        except OSError as e:
            raise OperationFailedError(f"cannot read the phrase file: {e.strerror}") from None
    if not sys.stdin.isatty():
        raise OperationFailedError("no terminal to ask the phrase: use --phrase-file PATH or -")
    return getpass.getpass("Your 12 words (not shown as you type): ")


def _device_name() -> str:
    name = "".join(c for c in socket.gethostname() if c.isprintable())[: keyset.MAX_NAME_CHARS]
    return name or "recovered device"


def _recovering(s: Session, recovery: PrivateKey) -> Holder:
    """The client signing with the recovery key, once the phrase is known to be for an
    account of this exchange (and, with --handle, the expected one)."""
    client = s.connect(recovery)
    try:
        client.key_set()
    except ExchangeError as e:
        if e.reason.name in ("UNKNOWN_KEY", "KEY_REMOVED"):
            raise OperationFailedError(
                "this phrase belongs to no account on this exchange"
                + (" (any more: it was replaced)" if e.reason.name == "KEY_REMOVED" else "")
                + "; nothing was changed"
            ) from None
        raise
    if s.args.handle:
        handle = client.profile().handle
        if handle != s.args.handle:
            raise OperationFailedError(
                f"this phrase is for another account (handle {handle}), not {s.args.handle};"
                " nothing was changed"
            )
    return client


def cmd_recover(s: Session) -> None:
    """On a new machine: from the phrase, replace every device of the account with a new one."""
    _free(s)  # an existing wallet is said before anything is asked
    text = _read_phrase(s)
    try:
        entropy = phrase.parse_phrase(text)
    except phrase.PhraseError as e:
        raise OperationFailedError(
            f"the recovery phrase is not right: {e}; nothing was sent to the exchange"
        ) from None
    client = _recovering(s, phrase.recovery_key(entropy))
    passphrase = _new_passphrase(s)
    device = PrivateKey.generate()
    name = s.args.name or _device_name()
    compromised = not s.args.retired
    new_words, new_recovery = "", None
    # The phrase gives back the holder secret, so the same pairwise keys (token-format §1b).
    secret = pairwise.holder_secret_from_entropy(entropy)
    if s.args.new_phrase:  # the old phrase was seen: a new one replaces it in the same change
        new_words, new_key = _new_phrase(s)
        new_recovery = (new_key, RECOVERY_NAME)
        # Whoever saw the old phrase could compute every pseudonym of the old secret: the
        # new phrase's secret is used from now on (new pseudonyms for new licences).
        secret = pairwise.holder_secret_from_entropy(phrase.parse_phrase(new_words))
    done = client.recover(device, name, compromised=compromised, new_recovery=new_recovery).key_set
    keystore.create(
        s.wallet,
        passphrase,
        force=s.args.force,
        key=device,
        account=done.account,
        holder_secret=secret,
    )
    gone = [k for k in done.removed if k.sequence == done.sequence and k.role == keyset.DEVICE]
    cause = "compromised" if compromised else "retired"
    lines = [
        f"Recovered your account. Created {s.wallet}: this device ({name}) is in, fingerprint"
        f" {fingerprint(device.public.raw)}.",
        *(
            f"Removed {k.name or 'the first device'} ({fingerprint(k.public_key)}) as {cause}."
            for k in gone
        ),
    ]
    if new_words:
        lines.append("Your old phrase no longer works: the new one is your recovery key now.")
    if compromised:
        lines += [
            "The old devices are refused from now on; what they approved stays in force until"
            " you revoke it.",
            "Next steps:",
            *(
                f"  - review, then revoke, what {k.name or 'the first device'} approved:"
                f" licentia-wallet devices revoke-consents {fingerprint(k.public_key)}"
                for k in gone
            ),
            "  - check where your earnings may go: licentia-wallet payouts list"
            " (and 'licentia-wallet payouts cancel REFERENCE' for one you did not add)",
        ]
    else:
        lines.append("The old devices were retired: what they approved stays valid.")
    _out(
        s.args,
        {
            "wallet": str(s.wallet),
            "public_key": device.public.text,
            "fingerprint": fingerprint(device.public.raw),
            "account": PublicKey(done.account).text,
            "removed": [
                {
                    "public_key": PublicKey(k.public_key).text,
                    "fingerprint": fingerprint(k.public_key),
                    "name": k.name,
                }
                for k in gone
            ],
            "cause": cause,
            **({"recovery_phrase": new_words} if new_words else {}),
        },
        "\n".join(lines),
    )
