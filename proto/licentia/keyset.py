"""Key sets: an account's device keys and recovery key, changed only by signed, chained records.

An account is named by the key that registered it (its *account id*). Its key set starts as
that key alone, a device key (the *genesis*, implied by the id: no record). Every change is a
:class:`~licentia.v1.accounts_pb2.KeySetChange` carrying the account, its ``sequence`` (1 for
the first change), the digest of the change before it (:func:`genesis_digest` for the
first), its kind, the whole set after it, and (for removals) the cause; it is signed by one
key of the set it replaces under the ``licentia.v1.key-set-change`` domain. Every key that
joins a set proves possession with its own signature over the account and itself
(:func:`possession_proof`), so nobody can bind someone else's key.

The rules of each kind (:func:`apply_change`, docs/token-format.md "Key sets"):

- ``ADD_KEY``: the set gains exactly one key; signed by any key of the set. A recovery key
  joins only a set without one (rotating it is ``RECOVER``'s).
- ``REMOVE_KEY``: the set loses exactly one device key, with a cause (retired or
  compromised); signed by another key of the set. The last way in (a last device key and no
  recovery key) cannot leave.
- ``RECOVER``: signed by the set's recovery key; the new set keeps at least one device key
  and at most one recovery key (the same, a new one, or none); a cause is required when
  keys leave.

Anyone holding the chain checks it with :func:`verify_chain`: a client that trusts an
account id can verify every later set without trusting the exchange (as TUF's root
rotation), and the public log carries every change (as Key Transparency).
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from google.protobuf.message import DecodeError

from . import keys
from .errors import LicentiaError, Reason
from .keys import PrivateKey, PublicKey, verify_signature
from .v1 import accounts_pb2

__all__ = [
    "CHANGE_DOMAIN",
    "MAX_CHAIN",
    "MAX_KEYS",
    "MAX_NAME_CHARS",
    "POSSESSION_DOMAIN",
    "AccountKey",
    "Change",
    "KeySet",
    "apply_change",
    "apply_decoded",
    "change_digest",
    "check_name",
    "decode_change",
    "genesis",
    "genesis_digest",
    "make_change",
    "possession_proof",
    "removed_by",
    "stated_by",
    "verify_chain",
]

#: The signature domain of a key-set change.
CHANGE_DOMAIN = keys.KEY_SET_CHANGE
#: The signature domain of a proof of possession.
POSSESSION_DOMAIN = keys.KEY_POSSESSION
#: Not a signature domain: hashed with an account id into the first change's ``previous``.
GENESIS_PREFIX = b"licentia.v1.key-set-genesis"
#: Not a signature domain: hashed with a change's bytes into the next one's ``previous``.
CHAIN_PREFIX = b"licentia.v1.key-set-chain"
#: At most this many keys in a set.
MAX_KEYS = 16
#: A chain is at most this long (a change past it is refused; GetKeySet lists all of it).
MAX_CHAIN = 1024
#: A key's name is at most this many characters.
MAX_NAME_CHARS = 64
#: A serialized change is at most this many bytes (16 keys with proofs fit in 2 KiB).
MAX_CHANGE_BYTES = 4096

DEVICE = accounts_pb2.KEY_ROLE_DEVICE
RECOVERY = accounts_pb2.KEY_ROLE_RECOVERY
ADD_KEY = accounts_pb2.KEY_SET_CHANGE_KIND_ADD_KEY
REMOVE_KEY = accounts_pb2.KEY_SET_CHANGE_KIND_REMOVE_KEY
RECOVER = accounts_pb2.KEY_SET_CHANGE_KIND_RECOVER
RETIRED = accounts_pb2.KEY_REMOVAL_CAUSE_RETIRED
COMPROMISED = accounts_pb2.KEY_REMOVAL_CAUSE_COMPROMISED


def _invalid(message: str) -> LicentiaError:
    return LicentiaError(Reason.KEY_SET_INVALID, message)


def _unauthorised(message: str) -> LicentiaError:
    return LicentiaError(Reason.KEY_SET_UNAUTHORISED, message)


def check_name(name: str) -> None:
    """A key's name: at most 64 characters, no control or invisible format characters."""
    if len(name) > MAX_NAME_CHARS or any(unicodedata.category(c) in ("Cc", "Cf") for c in name):
        raise _invalid(f"a key's name is at most {MAX_NAME_CHARS} printable characters")


@dataclass(frozen=True, slots=True)
class AccountKey:
    """One key of a set: its public key, its role, a name for people."""

    public: bytes
    role: int
    name: str = ""

    @property
    def is_device(self) -> bool:
        """True for a device (or service) key."""
        return self.role == DEVICE

    @property
    def is_recovery(self) -> bool:
        """True for the recovery key."""
        return self.role == RECOVERY

    def to_proto(self, proof: bytes = b"") -> accounts_pb2.AccountKey:
        """The wire form (with ``proof`` for a key that joins)."""
        return accounts_pb2.AccountKey(
            public_key=self.public, role=cast(Any, self.role), name=self.name, proof=proof
        )


def possession_proof(key: PrivateKey, account: bytes) -> bytes:
    """``key``'s proof that it may join ``account``'s set (docs/token-format.md)."""
    return key.sign(POSSESSION_DOMAIN, account + key.public.raw)


def genesis_digest(account: bytes) -> bytes:
    """The ``previous`` of an account's first change: SHA-256(genesis prefix || 0x00 ||
    account)."""
    return hashlib.sha256(GENESIS_PREFIX + b"\x00" + account).digest()


def change_digest(change: bytes) -> bytes:
    """The ``previous`` of the change after ``change`` (its exact bytes): SHA-256(chain
    prefix || 0x00 || change)."""
    return hashlib.sha256(CHAIN_PREFIX + b"\x00" + change).digest()


@dataclass(frozen=True, slots=True)
class KeySet:
    """An account's key set after ``sequence`` changes; ``head`` is what the next one names
    as ``previous``."""

    account: bytes
    sequence: int
    head: bytes
    keys: tuple[AccountKey, ...]

    def key(self, public: bytes) -> AccountKey | None:
        """The key of this set with these bytes, if any."""
        for k in self.keys:
            if k.public == public:
                return k
        return None

    @property
    def devices(self) -> tuple[AccountKey, ...]:
        """The device keys."""
        return tuple(k for k in self.keys if k.is_device)

    @property
    def recovery(self) -> AccountKey | None:
        """The recovery key, if the set has one."""
        return next((k for k in self.keys if k.is_recovery), None)


def genesis(account: bytes) -> KeySet:
    """The set every account starts with: its own key, a device key."""
    PublicKey(account)  # 32 bytes
    return KeySet(account, 0, genesis_digest(account), (AccountKey(account, DEVICE),))


@dataclass(frozen=True, slots=True)
class Change:
    """A signed change, parsed (not yet checked against a set)."""

    signed: accounts_pb2.SignedKeySetChange
    change: accounts_pb2.KeySetChange


def decode_change(signed: accounts_pb2.SignedKeySetChange) -> Change:
    """Parse a signed change strictly (KEY_SET_INVALID): bounded, no unknown fields, in the
    canonical encoding (so that one change has one digest)."""
    raw = signed.change
    if not raw or len(raw) > MAX_CHANGE_BYTES:
        raise _invalid(f"a key-set change is 1 to {MAX_CHANGE_BYTES} bytes")
    msg = accounts_pb2.KeySetChange()
    try:
        msg.ParseFromString(raw)
    except (DecodeError, RecursionError, ValueError):
        raise _invalid("the key-set change is not a valid KeySetChange") from None
    size = msg.ByteSize()
    msg.DiscardUnknownFields()
    if msg.ByteSize() != size or msg.SerializeToString(deterministic=True) != raw:
        raise _invalid("the key-set change is not in its canonical encoding")
    if len(signed.signer) != keys.PUBLIC_KEY_BYTES or len(signed.signature) != 64:
        raise _invalid("a key-set change names a 32-byte signer and a 64-byte signature")
    return Change(signed, msg)


def _parse_keys(change: accounts_pb2.KeySetChange) -> tuple[AccountKey, ...]:
    if not 1 <= len(change.keys) <= MAX_KEYS:
        raise _invalid(f"a key set has 1 to {MAX_KEYS} keys")
    out: list[AccountKey] = []
    seen: set[bytes] = set()
    for k in change.keys:
        if len(k.public_key) != keys.PUBLIC_KEY_BYTES:
            raise _invalid("a key is 32 bytes")
        if k.public_key in seen:
            raise _invalid("a key appears twice in the set")
        if k.role not in (DEVICE, RECOVERY):
            raise _invalid("a key's role is DEVICE or RECOVERY")
        check_name(k.name)
        seen.add(k.public_key)
        out.append(AccountKey(k.public_key, k.role, k.name))
    if sum(1 for k in out if k.is_recovery) > 1:
        raise _invalid("a key set has at most one recovery key")
    return tuple(out)


def apply_change(current: KeySet, signed: accounts_pb2.SignedKeySetChange) -> KeySet:
    """The set after ``signed``, or a refusal: KEY_SET_INVALID (malformed, or a rule of its
    kind broken), KEY_SET_CONFLICT (not the next change of this chain: replayed, reordered
    or forked), KEY_SET_UNAUTHORISED (not signed by a key of ``current`` allowed to make it,
    or a joining key without its proof), LAST_KEY (it would leave no way in)."""
    return apply_decoded(current, decode_change(signed))


def stated_by(signed: accounts_pb2.SignedKeySetChange) -> KeySet:
    """The set a change states, unchecked: for a store that checked the change when it took
    it (:func:`apply_change`) and reads its chain's last change to know where it stands."""
    c = decode_change(signed).change
    keys_ = tuple(AccountKey(k.public_key, k.role, k.name) for k in c.keys)
    return KeySet(c.account, c.sequence, change_digest(signed.change), keys_)


def apply_decoded(current: KeySet, parsed: Change) -> KeySet:
    """:func:`apply_change` for a change already decoded (:func:`decode_change`)."""
    signed = parsed.signed
    c = parsed.change
    if c.account != current.account:
        raise _invalid("the change is for another account")
    if c.sequence != current.sequence + 1 or c.previous != current.head:
        raise LicentiaError(
            Reason.KEY_SET_CONFLICT,
            f"the change is not the next of the chain (it is #{c.sequence} after a change the"
            f" set does not end with; the set is at #{current.sequence}): read the set again",
        )
    if current.sequence >= MAX_CHAIN:
        raise _invalid(f"a key set's chain is at most {MAX_CHAIN} changes")
    signer = current.key(signed.signer)
    if signer is None:
        raise _unauthorised("the change is not signed by a key of the set it replaces")
    if not verify_signature(signed.signer, CHANGE_DOMAIN, signed.change, signed.signature):
        raise _unauthorised("the change's signature does not verify")
    if c.kind == REMOVE_KEY and not c.keys:
        raise LicentiaError(Reason.LAST_KEY, "the last way into the account cannot leave")
    new_keys = _parse_keys(c)
    old = {k.public: k for k in current.keys}
    new = {k.public: k for k in new_keys}
    for public, k in new.items():
        before = old.get(public)
        if before is not None and before.role != k.role:
            raise _invalid("a key's role cannot change")
    joined = [j for j in c.keys if j.public_key not in old]
    left = [old[p] for p in old if p not in new]
    for j in joined:
        if not verify_signature(j.public_key, POSSESSION_DOMAIN, c.account + j.public_key, j.proof):
            raise _unauthorised("a key that joins the set must prove possession of itself")
    renamed = any(new[p].name != old[p].name for p in new if p in old)
    if c.kind == ADD_KEY:
        if len(joined) != 1 or left or renamed or c.cause:
            raise _invalid("ADD_KEY adds exactly one key and changes nothing else")
        if joined[0].role == RECOVERY and current.recovery is not None:
            raise _invalid("the set has a recovery key: replace it with RECOVER")
    elif c.kind == REMOVE_KEY:
        if len(left) != 1 or joined or renamed:
            raise _invalid("REMOVE_KEY removes exactly one key and changes nothing else")
        if not left[0].is_device:
            raise _invalid("the recovery key leaves only by RECOVER, signed by itself")
        if left[0].public == signer.public:
            raise _unauthorised("a key cannot remove itself: sign with another key of the set")
        if c.cause not in (RETIRED, COMPROMISED):
            raise _invalid("a removal says why: RETIRED or COMPROMISED")
        if not any(k.is_device or k.is_recovery for k in new_keys):
            raise LicentiaError(Reason.LAST_KEY, "the last way into the account cannot leave")
    elif c.kind == RECOVER:
        if not signer.is_recovery:
            raise _unauthorised("RECOVER is signed by the set's recovery key")
        if not any(k.is_device for k in new_keys):
            raise _invalid("a recovered set has a device key")
        if left and c.cause not in (RETIRED, COMPROMISED):
            raise _invalid("keys that leave in a recovery need a cause: RETIRED or COMPROMISED")
        if not left and c.cause:
            raise _invalid("a cause is given only when keys leave")
    else:
        raise _invalid("unknown key-set change kind")
    return KeySet(c.account, c.sequence, change_digest(signed.change), new_keys)


def removed_by(current: KeySet, after: KeySet) -> tuple[AccountKey, ...]:
    """The keys of ``current`` that ``after`` no longer has."""
    kept = {k.public for k in after.keys}
    return tuple(k for k in current.keys if k.public not in kept)


def verify_chain(
    account: bytes, changes: Iterable[accounts_pb2.SignedKeySetChange]
) -> list[KeySet]:
    """Every set of ``account``'s chain from its genesis, checking each change against the set
    before it; raises as :func:`apply_change` does, on the first change that fails."""
    sets = [genesis(account)]
    for n, signed in enumerate(changes, start=1):
        if n > MAX_CHAIN:
            raise _invalid(f"a key set's chain is at most {MAX_CHAIN} changes")
        sets.append(apply_change(sets[-1], signed))
    return sets


def make_change(
    current: KeySet,
    signer: PrivateKey,
    kind: int,
    keys_after: Iterable[accounts_pb2.AccountKey],
    *,
    at: int,
    cause: int = 0,
) -> accounts_pb2.SignedKeySetChange:
    """Build and sign the next change of ``current`` (the caller states the whole set after
    it, with proofs for the keys that join)."""
    change = accounts_pb2.KeySetChange(
        account=current.account,
        sequence=current.sequence + 1,
        previous=current.head,
        kind=cast(Any, kind),
        keys=list(keys_after),
        cause=cast(Any, cause),
        at=at,
    )
    raw = change.SerializeToString(deterministic=True)
    return accounts_pb2.SignedKeySetChange(
        change=raw, signer=signer.public.raw, signature=signer.sign(CHANGE_DOMAIN, raw)
    )
