"""What every party's client does with its account's key set, built once for the sync and the
asyncio clients (:class:`~.party.PartyClient`, :class:`~.party.AsyncPartyClient`).

An account is named by the key that registered it; its key set (device keys, a recovery key)
changes only by changes signed by the set they replace (:mod:`licentia.keyset`). The builders
here make those changes from a set the client has *verified*: :func:`verified` replays the
chain the exchange sends from the account id alone and refuses a set the chain does not
prove, so a client never signs on top of a set the exchange made up.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from licentia import keyset
from licentia.errors import LicentiaError, Reason
from licentia.keys import PrivateKey, PublicKey
from licentia.keyset import KeySet
from licentia.methods import path
from licentia.v1 import accounts_pb2

__all__ = [
    "CHANGE_KEY_SET",
    "GET_KEY_SET",
    "GET_LOG_KEY",
    "GET_PAIRING",
    "JOIN_PAIRING",
    "LIST_CONSENTS",
    "SEAL_PAIRING",
    "START_PAIRING",
    "ChangeSummary",
    "VerifiedKeySet",
    "add_key",
    "key_text",
    "recover",
    "remove_key",
    "summarise",
    "verified",
]

GET_KEY_SET = path(accounts_pb2, "GetKeySet")
CHANGE_KEY_SET = path(accounts_pb2, "ChangeKeySet")
START_PAIRING = path(accounts_pb2, "StartPairing")
JOIN_PAIRING = path(accounts_pb2, "JoinPairing")
GET_PAIRING = path(accounts_pb2, "GetPairing")
SEAL_PAIRING = path(accounts_pb2, "SealPairing")
LIST_CONSENTS = path(accounts_pb2, "ListConsents")
GET_LOG_KEY = path(accounts_pb2, "GetLogKey")


@dataclass(frozen=True, slots=True)
class VerifiedKeySet:
    """An account's key set as its chain proves it, with what the exchange said about it."""

    #: The set the chain ends with.
    current: KeySet
    #: Every set of the chain, from the genesis (``sets[n]`` after change ``n``).
    sets: tuple[KeySet, ...]
    #: The exchange's answer, as received.
    answer: accounts_pb2.GetKeySetResponse


def verified(answer: accounts_pb2.GetKeySetResponse) -> VerifiedKeySet:
    """Replay the chain in ``answer`` from its account id: every change must be signed by the
    set before it (:func:`licentia.keyset.verify_chain`), and the current set the exchange
    states must be the one the chain ends with. Raises ``LicentiaError`` (the chain's reason,
    or KEY_SET_INVALID for a stated set the chain does not prove)."""
    sets = keyset.verify_chain(answer.account, answer.changes)
    current = sets[-1]
    stated = {(k.public_key, k.role) for k in answer.keys}
    if stated != {(k.public, k.role) for k in current.keys} or answer.sequence != current.sequence:
        raise LicentiaError(
            Reason.KEY_SET_INVALID,
            "the exchange states a key set its signed chain does not prove",
        )
    return VerifiedKeySet(current, tuple(sets), answer)


def _kept(s: KeySet) -> list[accounts_pb2.AccountKey]:
    return [k.to_proto() for k in s.keys]


def add_key(
    current: KeySet,
    signer: PrivateKey,
    key: PrivateKey | accounts_pb2.AccountKey,
    *,
    role: int = keyset.DEVICE,
    name: str = "",
    at: int,
) -> accounts_pb2.SignedKeySetChange:
    """The change adding ``key`` (a private key, whose proof is made here; or a joining
    device's ``AccountKey`` with its proof, from a pairing), signed by ``signer``."""
    if isinstance(key, PrivateKey):
        entry = accounts_pb2.AccountKey(
            public_key=key.public.raw,
            role=role,  # type: ignore[arg-type]
            name=name,
            proof=keyset.possession_proof(key, current.account),
        )
    else:
        entry = key
    return keyset.make_change(current, signer, keyset.ADD_KEY, [*_kept(current), entry], at=at)


def remove_key(
    current: KeySet, signer: PrivateKey, public: bytes, *, compromised: bool, at: int
) -> accounts_pb2.SignedKeySetChange:
    """The change removing the device key ``public``, as compromised or as retired."""
    if current.key(public) is None:
        raise LicentiaError(Reason.NOT_FOUND, "that key is not in the account's set")
    rest = [k for k in _kept(current) if k.public_key != public]
    cause = keyset.COMPROMISED if compromised else keyset.RETIRED
    return keyset.make_change(current, signer, keyset.REMOVE_KEY, rest, at=at, cause=cause)


def recover(
    current: KeySet,
    recovery: PrivateKey,
    devices: Iterable[tuple[PrivateKey, str]],
    *,
    compromised: bool,
    at: int,
    new_recovery: tuple[PrivateKey, str] | None = None,
) -> accounts_pb2.SignedKeySetChange:
    """The change by which the recovery key replaces every device with ``devices`` (and
    itself with ``new_recovery`` when given); the devices that leave go as compromised or
    as retired."""
    mine = current.recovery
    if mine is None or mine.public != recovery.public.raw:
        raise LicentiaError(Reason.KEY_SET_UNAUTHORISED, "this is not the account's recovery key")
    keys: list[accounts_pb2.AccountKey] = [
        accounts_pb2.AccountKey(
            public_key=k.public.raw,
            role=keyset.DEVICE,
            name=name,
            proof=keyset.possession_proof(k, current.account),
        )
        for k, name in devices
    ]
    if new_recovery is None:
        keys.append(mine.to_proto())
    else:
        k, name = new_recovery
        keys.append(
            accounts_pb2.AccountKey(
                public_key=k.public.raw,
                role=keyset.RECOVERY,
                name=name,
                proof=keyset.possession_proof(k, current.account),
            )
        )
    leaving = {k.public for k in current.keys} - {k.public_key for k in keys}
    cause = (keyset.COMPROMISED if compromised else keyset.RETIRED) if leaving else 0
    return keyset.make_change(current, recovery, keyset.RECOVER, keys, at=at, cause=cause)


_KINDS: dict[int, str] = {
    keyset.ADD_KEY: "ADD_KEY",
    keyset.REMOVE_KEY: "REMOVE_KEY",
    keyset.RECOVER: "RECOVER",
}
_CAUSES: dict[int, str] = {keyset.RETIRED: "retired", keyset.COMPROMISED: "compromised"}
_ROLES: dict[int, str] = {keyset.DEVICE: "device", keyset.RECOVERY: "recovery"}


@dataclass(frozen=True, slots=True)
class ChangeSummary:
    """What one logged change does to the set before it, in people's words (parsed leniently:
    a summary, not a verdict; :func:`licentia.keyset.apply_change` is the verdict)."""

    kind: str
    #: ``(role, key text, name)`` of each key that joins / leaves.
    added: tuple[tuple[str, str, str], ...]
    removed: tuple[tuple[str, str, str], ...]
    cause: str
    at: int
    signer: str
    sequence: int

    def words(self) -> str:
        """``ADD_KEY adds device key ed25519:… "phone"``, and so on."""
        parts = [f'adds {r} key {k} "{n}"' for r, k, n in self.added]
        parts += [f'removes {r} key {k} "{n}"' for r, k, n in self.removed]
        what = ", ".join(parts) or "changes no key"
        cause = f" ({self.cause})" if self.cause else ""
        return f"{self.kind} {what}{cause}, signed by {self.signer}"

    def to_json(self) -> dict[str, object]:
        """The JSON form."""
        return {
            "kind": self.kind,
            "sequence": self.sequence,
            "added": [{"role": r, "key": k, "name": n} for r, k, n in self.added],
            "removed": [{"role": r, "key": k, "name": n} for r, k, n in self.removed],
            "cause": self.cause,
            "at": self.at,
            "signer": self.signer,
        }


def key_text(raw: bytes) -> str:
    """A raw public key as ``ed25519:…`` (or its hex, when it is not 32 bytes)."""
    try:
        return PublicKey(raw).text
    except (LicentiaError, ValueError):
        return raw.hex()


def summarise(before: KeySet, signed: accounts_pb2.SignedKeySetChange) -> ChangeSummary:
    """What ``signed`` does to ``before`` (the keys it adds and removes, its cause, time and
    signer), read without checking it."""
    change = accounts_pb2.KeySetChange()
    try:
        change.ParseFromString(signed.change)
    except Exception:  # noqa: BLE001 - a summary of unreadable bytes is empty
        change = accounts_pb2.KeySetChange()
    old = {k.public: k for k in before.keys}
    new = {k.public_key: k for k in change.keys}
    added = tuple(
        (_ROLES.get(k.role, "unknown"), key_text(p), k.name) for p, k in new.items() if p not in old
    )
    removed = tuple(
        (_ROLES.get(k.role, "unknown"), key_text(p), k.name) for p, k in old.items() if p not in new
    )
    return ChangeSummary(
        _KINDS.get(change.kind, f"kind {int(change.kind)}"),
        added,
        removed,
        _CAUSES.get(change.cause, ""),
        change.at,
        key_text(signed.signer),
        change.sequence,
    )
