"""The holder's key-set check of the wallet's audit (clients/auditor/keysets.py), on chains
built here: each way the exchange's answer can differ from the logged chain is one problem."""

from __future__ import annotations

from licentia import keyset
from licentia.clients import accounts
from licentia.clients.auditor.keysets import check_holder_chain
from licentia.keys import PrivateKey
from licentia.v1 import accounts_pb2

NOW = 1_800_000_000
ME = PrivateKey.from_seed(b"\x31" * 32)
PHONE = PrivateKey.from_seed(b"\x32" * 32)
PAPER = PrivateKey.from_seed(b"\x33" * 32)


def _chain() -> list[accounts_pb2.SignedKeySetChange]:
    start = keyset.genesis(ME.public.raw)
    first = accounts.add_key(start, ME, PAPER, role=keyset.RECOVERY, name="paper", at=NOW)
    after = keyset.apply_change(start, first)
    return [first, accounts.add_key(after, ME, PHONE, name="phone", at=NOW + 60)]


def _answer(changes: list[accounts_pb2.SignedKeySetChange]) -> accounts_pb2.GetKeySetResponse:
    sets = keyset.verify_chain(ME.public.raw, changes)
    return accounts_pb2.GetKeySetResponse(
        account=ME.public.raw,
        sequence=sets[-1].sequence,
        keys=[k.to_proto() for k in sets[-1].keys],
        changes=changes,
    )


def _logged(changes: list[accounts_pb2.SignedKeySetChange]) -> list[tuple[int, bytes]]:
    return [(10 + n, c.SerializeToString(deterministic=True)) for n, c in enumerate(changes)]


def test_an_honest_chain_has_no_problem_and_lists_each_change() -> None:
    chain = _chain()
    found = check_holder_chain(ME.public.raw, _answer(chain), _logged(chain))
    assert found.problems == []
    assert [c["kind"] for c in found.changes] == ["ADD_KEY", "ADD_KEY"]
    assert found.changes[1]["added"] == [
        {"role": "device", "key": PHONE.public.text, "name": "phone"}
    ]
    assert found.lines[0] == "Your key set: 2 change(s) in the public log:"
    assert found.lines[1].startswith("  #1 2027-01-15 08:00 UTC: ADD_KEY adds recovery key")


def test_a_change_shown_but_never_logged_is_a_problem() -> None:
    chain = _chain()
    found = check_holder_chain(ME.public.raw, _answer(chain), _logged(chain[:1]))
    assert (
        "the exchange shows your key set's change #2, which is not in the public log"
        in found.problems
    )


def test_a_change_that_differs_from_the_logged_one_is_a_problem() -> None:
    chain = _chain()
    other = accounts.add_key(
        keyset.verify_chain(ME.public.raw, chain[:1])[-1], ME, PHONE, name="laptop", at=NOW + 60
    )
    found = check_holder_chain(ME.public.raw, _answer([chain[0], other]), _logged(chain))
    assert found.problems[0] == (
        "change #2 of your key set differs from the one in the public log (entry 11)"
    )


def test_a_wallet_key_outside_the_logged_set_is_a_problem() -> None:
    chain = _chain()
    stranger = PrivateKey.from_seed(b"\x34" * 32)
    found = check_holder_chain(stranger.public.raw, _answer(chain), _logged(chain))
    assert found.problems == [
        f"the key this wallet signs with ({stranger.public.text}) is not in your key set as"
        " the public log has it"
    ]


def test_a_stated_sequence_other_than_the_logged_one_is_a_problem() -> None:
    chain = _chain()
    answer = _answer(chain)
    answer.sequence = 5
    found = check_holder_chain(ME.public.raw, answer, _logged(chain))
    assert found.problems == [
        "the exchange says your key set is at change #5; the public log has 2"
    ]
