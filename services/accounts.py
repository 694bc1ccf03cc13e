"""AccountService: an account's key set, its signed chained changes, pairing a new device, and
the consents one key gave.

The rules of a change are the protocol's (:mod:`licentia.keyset`); the store applies a change
in one transaction with its log entry and its consequences (:meth:`~.store.base.
AccountsStore.change_key_set`). What this servicer adds: who may ask (a key of the account,
its recovery key included, for the key-set calls), the change's clock (its ``at`` within the
request window), pairing codes, and publishing the revocations a compromised licensee key
causes on the revocation feed at once.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any, cast

from licentia import keyset, pairwise
from licentia.errors import LicentiaError, Reason
from licentia.keys import verify_signature
from licentia.request import DEFAULT_WINDOW_SECONDS
from licentia.token import StandingRule
from licentia.v1 import accounts_pb2

from . import convert
from .deps import Deps
from .model import KeySetState, Role
from .rpc import Call, Method
from .transparency import evidence

#: A pairing code lasts this long.
PAIRING_SECONDS = 600
#: Crockford's base32 alphabet (no I, L, O, U): codes read aloud and typed without confusion.
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
#: How long a pairing keeps the sealed holder secret for the joined device, from the moment
#: the old device left it (the joined device fetches it at its first command that needs it).
SEALED_SECONDS = 7 * 24 * 3600
#: Characters of a pairing code (40 bits).
CODE_CHARS = 8
#: ListConsents answers at most this many licences.
MAX_CONSENTS = 1000


def new_code() -> str:
    """A fresh pairing code, ``XXXX-XXXX``."""
    chars = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_CHARS))
    return f"{chars[:4]}-{chars[4:]}"


def normal_code(text: str) -> str:
    """A typed code in its stored form: upper case, dashes and spaces dropped, the letters
    people confuse read as Crockford does (O→0, I and L→1); INVALID_REQUEST if it is not
    a code."""
    raw = text.upper().replace("-", "").replace(" ", "")
    raw = raw.translate(str.maketrans("OIL", "011"))
    if len(raw) != CODE_CHARS or any(c not in CODE_ALPHABET for c in raw):
        raise LicentiaError(Reason.INVALID_REQUEST, "a pairing code is 8 characters, XXXX-XXXX")
    return f"{raw[:4]}-{raw[4:]}"


def key_set_to(state: KeySetState, caller: bytes) -> accounts_pb2.GetKeySetResponse:
    """The wire form of an account's key set and chain."""
    return accounts_pb2.GetKeySetResponse(
        account=state.current.account,
        sequence=state.current.sequence,
        keys=[k.to_proto() for k in state.current.keys],
        removed=[
            accounts_pb2.RemovedKey(
                public_key=k.public_key,
                role=cast(Any, k.role),
                name=k.name,
                sequence=k.removed_seq,
                removed_at=k.removed_at,
                cause=cast(Any, k.cause),
            )
            for k in sorted(state.keys, key=lambda k: (k.removed_seq, k.public_key))
            if k.removed_at
        ],
        changes=[accounts_pb2.SignedKeySetChange.FromString(c) for c in state.changes],
        caller_key=caller,
    )


class AccountService:
    """The servicer of accounts' key sets."""

    def __init__(self, deps: Deps) -> None:
        self.d = deps

    def methods(self) -> Mapping[str, Method]:
        """The handlers, by method name."""
        return {
            "GetKeySet": Method(self.get_key_set),
            "ChangeKeySet": Method(self.change_key_set),
            "StartPairing": Method(self.start_pairing),
            "JoinPairing": Method(self.join_pairing),
            "GetPairing": Method(self.get_pairing),
            "SealPairing": Method(self.seal_pairing),
            "ListConsents": Method(self.list_consents),
            "GetLogKey": Method(self.get_log_key),
        }

    def get_log_key(
        self, req: accounts_pb2.GetLogKeyRequest, call: Call
    ) -> accounts_pb2.GetLogKeyResponse:
        """The caller's account's log key and entry count: what its audit needs to find and
        open its sealed entries (a recovery key may ask: a recovered wallet audits too)."""
        party, _ = self.d.caller(call, recovery=True)
        log_key, entries = self.d.store.account_log(party.key)
        return accounts_pb2.GetLogKeyResponse(log_key=log_key, entries=entries)

    def get_key_set(
        self, req: accounts_pb2.GetKeySetRequest, call: Call
    ) -> accounts_pb2.GetKeySetResponse:
        """The caller's account: its set, removed keys and chain."""
        party, key = self.d.caller(call, recovery=True)
        return key_set_to(self.d.store.key_set(party.key), key.public_key)

    def change_key_set(
        self, req: accounts_pb2.ChangeKeySetRequest, call: Call
    ) -> accounts_pb2.ChangeKeySetResponse:
        """Apply one signed change of the caller's account's set."""
        party, key = self.d.caller(call, recovery=True)
        if not req.HasField("change"):
            raise LicentiaError(Reason.INVALID_REQUEST, "a signed change is required")
        change = keyset.decode_change(req.change).change
        if change.account != party.key:
            raise LicentiaError(
                Reason.KEY_SET_INVALID, "the change is for another account than the caller's"
            )
        if abs(change.at - call.now) > DEFAULT_WINDOW_SECONDS:
            raise LicentiaError(
                Reason.KEY_SET_INVALID,
                f"the change's time is more than {DEFAULT_WINDOW_SECONDS} s from the"
                " exchange's: check this machine's clock",
            )
        done = self.d.store.change_key_set(
            party.key, req.change, call.now, evidence(call), nonces=call.spends
        )
        self.d.forget_keys()
        if done.revocations:
            self.d.hub.publish(list(done.revocations))
        return accounts_pb2.ChangeKeySetResponse(
            key_set=key_set_to(done.state, key.public_key),
            licences_revoked=len(done.revocations),
        )

    def start_pairing(
        self, req: accounts_pb2.StartPairingRequest, call: Call
    ) -> accounts_pb2.StartPairingResponse:
        """A device of the account opens a pairing."""
        party = self.d.party(call)
        expires = call.now + PAIRING_SECONDS
        for _ in range(3):  # a taken code (one in 10^12 per open pairing) is drawn again
            code = new_code()
            try:
                self.d.store.start_pairing(code, party.key, expires, call.now, nonces=call.spends)
            except LicentiaError as e:
                if e.reason != Reason.ALREADY_EXISTS:
                    raise
                continue
            return accounts_pb2.StartPairingResponse(code=code, expires_at=expires)
        raise LicentiaError(Reason.UNAVAILABLE, "no free pairing code: try again")

    def join_pairing(
        self, req: accounts_pb2.JoinPairingRequest, call: Call
    ) -> accounts_pb2.JoinPairingResponse:
        """A new device offers its key under a code (first without its proof, to learn the
        account; then with it)."""
        assert call.caller is not None  # a signed call
        code = normal_code(req.code)
        k = req.key
        if k.public_key != call.caller.raw or k.role != keyset.DEVICE:
            raise LicentiaError(
                Reason.INVALID_REQUEST, "the joining key is a DEVICE key that signs this call"
            )
        keyset.check_name(k.name)
        if self.d.store.key_owner(k.public_key) is not None:
            raise LicentiaError(Reason.ALREADY_EXISTS, "this key is (or was) a key of an account")
        found = self.d.store.pairing(code, call.now)
        if found is None:
            raise LicentiaError(Reason.NOT_FOUND, "no such pairing code (or it has expired)")
        account, expires, joined = found
        if not k.proof:
            return accounts_pb2.JoinPairingResponse(
                account=account, expires_at=expires, joined=joined is not None
            )
        if not verify_signature(
            k.public_key, keyset.POSSESSION_DOMAIN, account + k.public_key, k.proof
        ):
            raise LicentiaError(
                Reason.KEY_SET_UNAUTHORISED, "the proof of possession does not verify"
            )
        account, expires = self.d.store.join_pairing(
            code, k.SerializeToString(deterministic=True), call.now, nonces=call.spends
        )
        return accounts_pb2.JoinPairingResponse(account=account, expires_at=expires, joined=True)

    def get_pairing(
        self, req: accounts_pb2.GetPairingRequest, call: Call
    ) -> accounts_pb2.GetPairingResponse:
        """Who joined the caller's pairing; to the joined key itself (once it is in the
        account), the holder secret sealed to it."""
        assert call.caller is not None  # a signed call
        party = self.d.party(call)
        code = normal_code(req.code)
        found = self.d.store.pairing(code, call.now)
        if found is None or found[0] != party.key:
            raise LicentiaError(Reason.NOT_FOUND, "no such pairing code (or it has expired)")
        out = accounts_pb2.GetPairingResponse(expires_at=found[1])
        if found[2] is not None:
            out.key.ParseFromString(found[2])
            if out.key.public_key == call.caller.raw:
                out.sealed_secret = self.d.store.pairing_secret(code, call.now) or b""
        return out

    def seal_pairing(
        self, req: accounts_pb2.SealPairingRequest, call: Call
    ) -> accounts_pb2.SealPairingResponse:
        """Leave the holder secret, sealed to the joined key (now in the account), for the
        joined device to fetch; the exchange relays the ciphertext alone."""
        assert call.caller is not None  # a signed call
        party = self.d.party(call)
        if len(req.sealed_secret) != pairwise.SEALED_SECRET_BYTES:
            raise LicentiaError(
                Reason.INVALID_REQUEST,
                f"a sealed holder secret is {pairwise.SEALED_SECRET_BYTES} bytes",
            )
        code = normal_code(req.code)
        found = self.d.store.pairing(code, call.now)
        if found is None or found[0] != party.key or found[2] is None:
            raise LicentiaError(Reason.NOT_FOUND, "no device has joined this pairing")
        if accounts_pb2.AccountKey.FromString(found[2]).public_key == call.caller.raw:
            raise LicentiaError(Reason.INVALID_REQUEST, "the joined device cannot seal to itself")
        ends = self.d.store.seal_pairing(
            code,
            party.key,
            found[2],
            req.sealed_secret,
            call.now + SEALED_SECONDS,
            call.now,
            nonces=call.spends,
        )
        return accounts_pb2.SealPairingResponse(expires_at=ends)

    def list_consents(
        self, req: accounts_pb2.ListConsentsRequest, call: Call
    ) -> accounts_pb2.ListConsentsResponse:
        """What one key of the caller's (holder) account consented to, still in force."""
        holder = self.d.party(call, Role.HOLDER)
        owner = self.d.store.key_owner(req.public_key) if len(req.public_key) == 32 else None
        if owner is None or owner[0].key != holder.key:
            raise LicentiaError(Reason.NOT_FOUND, "no such key in this account")
        rows = self.d.store.consents_of(
            holder.key, req.public_key, req.since, call.now, MAX_CONSENTS + 1
        )
        rules = []
        for r in self.d.store.rules(holder.key):
            if r.withdrawn_at or r.created_at < req.since:
                continue
            try:
                signer = StandingRule.decode(r.rule).holder.raw
            except LicentiaError:
                continue
            if signer == req.public_key:
                rules.append(convert.rule_to(r))
        return accounts_pb2.ListConsentsResponse(
            licences=[convert.licence_to(x, call.now, to_holder=True) for x in rows[:MAX_CONSENTS]],
            rules=rules,
            truncated=len(rows) > MAX_CONSENTS,
        )
