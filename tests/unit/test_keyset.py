"""Key sets: each kind of change, who may sign it, and every way a chain can be wrong."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import pytest

from licentia import keyset
from licentia.errors import LicentiaError, Reason
from licentia.keys import PrivateKey
from licentia.keyset import KeySet
from licentia.v1 import accounts_pb2

NOW = 1_800_000_000
LAPTOP = PrivateKey.from_seed(b"\x01" * 32)
PHONE = PrivateKey.from_seed(b"\x02" * 32)
PAPER = PrivateKey.from_seed(b"\x03" * 32)
THIEF = PrivateKey.from_seed(b"\x04" * 32)
NEW_LAPTOP = PrivateKey.from_seed(b"\x05" * 32)
NEW_PAPER = PrivateKey.from_seed(b"\x06" * 32)
ACCOUNT = LAPTOP.public.raw


def entry(
    key: PrivateKey, role: int, name: str = "", *, proof: bool = True
) -> accounts_pb2.AccountKey:
    """The wire form of a key joining ACCOUNT's set (with its proof)."""
    return accounts_pb2.AccountKey(
        public_key=key.public.raw,
        role=cast(Any, role),
        name=name,
        proof=keyset.possession_proof(key, ACCOUNT) if proof else b"",
    )


def kept(s: KeySet) -> list[accounts_pb2.AccountKey]:
    return [k.to_proto() for k in s.keys]


def paper(s: KeySet) -> accounts_pb2.AccountKey:
    """The set's recovery key, kept as it is."""
    return next(k for k in kept(s) if k.role == keyset.RECOVERY)


def add(
    s: KeySet, signer: PrivateKey, key: PrivateKey, role: int = keyset.DEVICE
) -> accounts_pb2.SignedKeySetChange:
    return keyset.make_change(s, signer, keyset.ADD_KEY, [*kept(s), entry(key, role)], at=NOW)


def remove(
    s: KeySet, signer: PrivateKey, key: PrivateKey, cause: int = keyset.COMPROMISED
) -> accounts_pb2.SignedKeySetChange:
    rest = [k for k in kept(s) if k.public_key != key.public.raw]
    return keyset.make_change(s, signer, keyset.REMOVE_KEY, rest, at=NOW, cause=cause)


def refused(reason: Reason, s: KeySet, signed: accounts_pb2.SignedKeySetChange) -> None:
    with pytest.raises(LicentiaError) as e:
        keyset.apply_change(s, signed)
    assert e.value.reason == reason, str(e.value)


@pytest.fixture
def three() -> KeySet:
    """LAPTOP (the account key), PHONE, and PAPER as the recovery key."""
    s = keyset.genesis(ACCOUNT)
    s = keyset.apply_change(s, add(s, LAPTOP, PAPER, keyset.RECOVERY))
    return keyset.apply_change(s, add(s, LAPTOP, PHONE))


def test_an_account_starts_as_its_own_device_key_and_grows_by_signed_changes(
    three: KeySet,
) -> None:
    g = keyset.genesis(ACCOUNT)
    assert (g.sequence, [k.public for k in g.keys]) == (0, [ACCOUNT])
    assert g.head == keyset.genesis_digest(ACCOUNT)
    assert three.sequence == 2
    assert {k.public for k in three.devices} == {LAPTOP.public.raw, PHONE.public.raw}
    assert three.recovery is not None
    assert three.recovery.public == PAPER.public.raw


def test_a_chain_verifies_from_the_account_id_alone(three: KeySet) -> None:
    s1 = keyset.genesis(ACCOUNT)
    c1 = add(s1, LAPTOP, PAPER, keyset.RECOVERY)
    s2 = keyset.apply_change(s1, c1)
    c2 = add(s2, LAPTOP, PHONE)
    sets = keyset.verify_chain(ACCOUNT, [c1, c2])
    assert sets[-1] == three
    assert sets[-1].head == keyset.change_digest(c2.change)
    with pytest.raises(LicentiaError) as e:  # reordered
        keyset.verify_chain(ACCOUNT, [c2, c1])
    assert e.value.reason == Reason.KEY_SET_CONFLICT
    with pytest.raises(LicentiaError) as e:  # another account's chain
        keyset.verify_chain(PHONE.public.raw, [c1, c2])
    assert e.value.reason == Reason.KEY_SET_INVALID


def test_replayed_and_forked_changes_are_conflicts(three: KeySet) -> None:
    s = keyset.genesis(ACCOUNT)
    first = add(s, LAPTOP, PAPER, keyset.RECOVERY)
    refused(Reason.KEY_SET_CONFLICT, three, first)  # replayed
    fork_a = remove(three, LAPTOP, PHONE)
    fork_b = add(three, PHONE, NEW_LAPTOP)
    after_a = keyset.apply_change(three, fork_a)
    refused(Reason.KEY_SET_CONFLICT, after_a, fork_b)  # the other branch of a fork
    gap = add(after_a, LAPTOP, NEW_LAPTOP)
    refused(Reason.KEY_SET_CONFLICT, three, gap)  # one missing between


def test_a_removed_key_signs_no_change(three: KeySet) -> None:
    after = keyset.apply_change(three, remove(three, LAPTOP, PHONE))
    refused(Reason.KEY_SET_UNAUTHORISED, after, add(after, PHONE, THIEF))


def test_a_stranger_or_a_bad_signature_changes_nothing(three: KeySet) -> None:
    refused(Reason.KEY_SET_UNAUTHORISED, three, add(three, THIEF, THIEF))
    good = add(three, PHONE, NEW_LAPTOP)
    bad = accounts_pb2.SignedKeySetChange(
        change=good.change, signer=good.signer, signature=bytes(64)
    )
    refused(Reason.KEY_SET_UNAUTHORISED, three, bad)
    claimed = accounts_pb2.SignedKeySetChange(  # PHONE's signature claimed as LAPTOP's
        change=good.change, signer=LAPTOP.public.raw, signature=good.signature
    )
    refused(Reason.KEY_SET_UNAUTHORISED, three, claimed)


def test_a_key_joins_only_with_its_own_proof_for_this_account(three: KeySet) -> None:
    no_proof = keyset.make_change(
        three,
        PHONE,
        keyset.ADD_KEY,
        [*kept(three), entry(NEW_LAPTOP, keyset.DEVICE, proof=False)],
        at=NOW,
    )
    refused(Reason.KEY_SET_UNAUTHORISED, three, no_proof)
    other = accounts_pb2.AccountKey(
        public_key=NEW_LAPTOP.public.raw,
        role=keyset.DEVICE,
        proof=keyset.possession_proof(NEW_LAPTOP, PHONE.public.raw),  # for another account
    )
    wrong = keyset.make_change(three, PHONE, keyset.ADD_KEY, [*kept(three), other], at=NOW)
    refused(Reason.KEY_SET_UNAUTHORISED, three, wrong)


def test_a_device_cannot_rotate_or_remove_the_recovery_key(three: KeySet) -> None:
    refused(Reason.KEY_SET_INVALID, three, add(three, LAPTOP, NEW_PAPER, keyset.RECOVERY))
    refused(Reason.KEY_SET_INVALID, three, remove(three, LAPTOP, PAPER))
    swap = keyset.make_change(
        three,
        LAPTOP,
        keyset.RECOVER,
        [entry(LAPTOP, keyset.DEVICE), entry(NEW_PAPER, keyset.RECOVERY)],
        at=NOW,
        cause=keyset.COMPROMISED,
    )
    refused(Reason.KEY_SET_UNAUTHORISED, three, swap)


def test_a_key_cannot_remove_itself_and_a_removal_says_why(three: KeySet) -> None:
    refused(Reason.KEY_SET_UNAUTHORISED, three, remove(three, PHONE, PHONE))
    refused(Reason.KEY_SET_INVALID, three, remove(three, LAPTOP, PHONE, cause=0))


def test_the_last_way_in_cannot_leave() -> None:
    s = keyset.genesis(ACCOUNT)
    s = keyset.apply_change(s, add(s, LAPTOP, PHONE))
    s = keyset.apply_change(s, remove(s, PHONE, LAPTOP))
    empty = keyset.make_change(s, PHONE, keyset.REMOVE_KEY, [], at=NOW, cause=keyset.RETIRED)
    refused(Reason.LAST_KEY, s, empty)


def test_with_a_recovery_key_the_last_device_may_leave(three: KeySet) -> None:
    s = keyset.apply_change(three, remove(three, LAPTOP, PHONE))
    s = keyset.apply_change(s, remove(s, PAPER, LAPTOP))
    assert [k.public for k in s.keys] == [PAPER.public.raw]
    back = keyset.make_change(
        s, PAPER, keyset.RECOVER, [entry(NEW_LAPTOP, keyset.DEVICE), kept(s)[0]], at=NOW
    )
    assert keyset.apply_change(s, back).devices[0].public == NEW_LAPTOP.public.raw


def test_recovery_replaces_every_device_and_may_rotate_itself(three: KeySet) -> None:
    rec = keyset.make_change(
        three,
        PAPER,
        keyset.RECOVER,
        [entry(NEW_LAPTOP, keyset.DEVICE, "new"), entry(NEW_PAPER, keyset.RECOVERY, "paper")],
        at=NOW,
        cause=keyset.COMPROMISED,
    )
    after = keyset.apply_change(three, rec)
    assert [k.public for k in after.keys] == [NEW_LAPTOP.public.raw, NEW_PAPER.public.raw]
    assert {k.public for k in keyset.removed_by(three, after)} == {
        LAPTOP.public.raw,
        PHONE.public.raw,
        PAPER.public.raw,
    }
    no_cause = keyset.make_change(
        three, PAPER, keyset.RECOVER, [entry(NEW_LAPTOP, keyset.DEVICE)], at=NOW
    )
    refused(Reason.KEY_SET_INVALID, three, no_cause)
    no_device = keyset.make_change(
        three, PAPER, keyset.RECOVER, [paper(three)], at=NOW, cause=keyset.RETIRED
    )
    refused(Reason.KEY_SET_INVALID, three, no_device)  # kept: the paper key alone


def test_a_recovery_racing_a_thiefs_change_one_wins_and_the_thief_cannot_undo_it(
    three: KeySet,
) -> None:
    thief = add(three, LAPTOP, THIEF)  # the stolen laptop adds the thief's device
    rec = keyset.make_change(
        three,
        PAPER,
        keyset.RECOVER,
        [entry(NEW_LAPTOP, keyset.DEVICE), paper(three)],
        at=NOW,
        cause=keyset.COMPROMISED,
    )
    after_thief = keyset.apply_change(three, thief)
    refused(Reason.KEY_SET_CONFLICT, after_thief, rec)  # she reads again and recovers again
    rec2 = keyset.make_change(
        after_thief,
        PAPER,
        keyset.RECOVER,
        [entry(NEW_LAPTOP, keyset.DEVICE), paper(three)],
        at=NOW,
        cause=keyset.COMPROMISED,
    )
    final = keyset.apply_change(after_thief, rec2)
    assert final.key(THIEF.public.raw) is None
    assert final.key(LAPTOP.public.raw) is None
    refused(Reason.KEY_SET_UNAUTHORISED, final, add(final, THIEF, THIEF))


@pytest.mark.parametrize(
    "mutate",
    [
        lambda c: c.keys.append(c.keys[0]),  # a key twice
        lambda c: c.keys[0].__setattr__("role", 0),  # no role
        lambda c: c.keys[0].__setattr__("name", "a\x00b"),  # a control character
        lambda c: c.keys[0].__setattr__("name", "x" * 65),  # too long
        lambda c: c.keys[0].__setattr__("public_key", b"\x01" * 31),  # not a key
        lambda c: c.__setattr__("kind", 9),  # unknown kind
        lambda c: c.__setattr__("cause", keyset.RETIRED),  # a cause on an addition
    ],
)
def test_malformed_changes_are_invalid(
    three: KeySet, mutate: Callable[[accounts_pb2.KeySetChange], object]
) -> None:
    good = add(three, PHONE, NEW_LAPTOP)
    c = accounts_pb2.KeySetChange.FromString(good.change)
    mutate(c)
    raw = c.SerializeToString(deterministic=True)
    signed = accounts_pb2.SignedKeySetChange(
        change=raw, signer=PHONE.public.raw, signature=PHONE.sign(keyset.CHANGE_DOMAIN, raw)
    )
    refused(Reason.KEY_SET_INVALID, three, signed)


def test_undecodable_oversized_or_non_canonical_bytes_are_invalid(three: KeySet) -> None:
    good = add(three, PHONE, NEW_LAPTOP)
    for raw in (b"", b"\xff\xff", b"\x0a" * 5000, good.change + b"\x98\x06\x01"):
        signed = accounts_pb2.SignedKeySetChange(
            change=raw, signer=PHONE.public.raw, signature=PHONE.sign(keyset.CHANGE_DOMAIN, raw)
        )
        refused(Reason.KEY_SET_INVALID, three, signed)
    short = accounts_pb2.SignedKeySetChange(change=good.change, signer=b"\x01", signature=b"")
    refused(Reason.KEY_SET_INVALID, three, short)


def test_seventeen_keys_are_too_many() -> None:
    s = keyset.genesis(ACCOUNT)
    for i in range(15):
        s = keyset.apply_change(s, add(s, LAPTOP, PrivateKey.from_seed(bytes([100 + i]) * 32)))
    assert len(s.keys) == 16
    refused(Reason.KEY_SET_INVALID, s, add(s, LAPTOP, THIEF))
