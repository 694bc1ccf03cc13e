"""The transparency log's Merkle tree and signed checkpoints, against published vectors.

Vectors: tests/vectors/merkle/ (README.md there says where each one comes from).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from licentia import checkpoint, merkle
from licentia.checkpoint import Checkpoint
from licentia.errors import LicentiaError, Reason
from licentia.keys import PrivateKey, PublicKey

VECTORS = Path(__file__).parents[1] / "vectors" / "merkle"
TREE: dict[str, Any] = json.loads((VECTORS / "rfc6962.json").read_text())
NOTES: dict[str, Any] = json.loads((VECTORS / "signed-note.json").read_text(encoding="utf-8"))

LEAVES = [bytes.fromhex(x) for x in TREE["leaves"]]
HASHES = [merkle.leaf_hash(entry) for entry in LEAVES]
ROOTS = [bytes.fromhex(x) for x in TREE["roots"]]
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")
NODES = merkle.MemoryNodes.from_entries(LEAVES)


def _hexes(proof: Sequence[bytes]) -> list[str]:
    return [p.hex() for p in proof]


def _flip(data: bytes, bit: int) -> bytes:
    return bytes([data[0] ^ (1 << bit)]) + data[1:]


# -- hashing and building ----------------------------------------------------------------


def test_hashes_are_rfc6962() -> None:
    assert TREE["empty_root"] == merkle.EMPTY_ROOT.hex()
    assert merkle.leaf_hash(b"").hex() == TREE["node_hashes"][0][0]
    assert merkle.node_hash(merkle.leaf_hash(b""), merkle.leaf_hash(b"\x00")) == ROOTS[2]


def test_every_complete_subtree_is_stored_with_the_published_hash() -> None:
    expected = {
        (level, i): bytes.fromhex(h)
        for level, row in enumerate(TREE["node_hashes"])
        for i, h in enumerate(row)
    }
    assert len(NODES) == len(expected) == 15
    assert NODES.get_many(list(expected)) == expected
    for (level, i), digest in expected.items():
        assert NODES.get(level, i) == digest


def test_completed_nodes_returns_the_leaf_and_the_ancestors_it_closes() -> None:
    nodes = merkle.MemoryNodes()
    levels = []
    for i, leaf in enumerate(HASHES):
        done = merkle.completed_nodes(i, leaf, nodes)
        assert done[0] == (0, i, leaf)
        assert [(lvl, idx) for lvl, idx, _ in done] == [(k, i >> k) for k in range(len(done))]
        levels.append(len(done) - 1)
        nodes.put_many(done)
    assert levels == [0, 1, 0, 2, 0, 1, 0, 3]


def test_completed_nodes_refuses_a_bad_index_or_an_entry_for_a_leaf_hash() -> None:
    for index, leaf in ((-1, SOME_HASH), (merkle.MAX_TREE_SIZE, SOME_HASH), (0, b"entry")):
        with pytest.raises(LicentiaError) as e:
            merkle.completed_nodes(index, leaf, merkle.MemoryNodes())
        assert e.value.reason is Reason.INVALID_REQUEST


def test_a_missing_node_is_the_stores_error() -> None:
    with pytest.raises(KeyError):
        merkle.completed_nodes(1, SOME_HASH, merkle.MemoryNodes())  # leaf 0 was never stored


@pytest.mark.parametrize("size", range(9))
def test_roots_match_the_vectors_and_the_definition(size: int) -> None:
    assert merkle.root(size, NODES) == ROOTS[size]
    assert merkle.reference_root(LEAVES[:size]) == ROOTS[size]


def test_subtree_hash_of_ranges_the_recursion_produces() -> None:
    assert merkle.subtree_hash(4, 7, NODES) == merkle.reference_root(LEAVES[4:7])
    assert merkle.subtree_hash(6, 7, NODES) == HASHES[6]
    assert merkle.subtree_hash(0, 6, NODES) == ROOTS[6]
    assert merkle.subtree_hash(3, 3, NODES) == merkle.EMPTY_ROOT
    for begin, end in ((1, 3), (2, 6), (-1, 2), (3, 2), (0, merkle.MAX_TREE_SIZE + 1)):
        with pytest.raises(LicentiaError) as e:
            merkle.subtree_hash(begin, end, NODES)
        assert e.value.reason is Reason.INVALID_REQUEST


# -- inclusion ---------------------------------------------------------------------------


def _inclusion_probes(
    index: int, size: int, proof: list[bytes], root: bytes, leaf: bytes
) -> list[tuple[str, int, int, list[bytes], bytes, bytes]]:
    """Corruptions of a valid proof, after transparency-dev/merkle's verify_test.go."""
    probes = [
        ("index - 1", index - 1, size, proof, root, leaf),
        ("index + 1", index + 1, size, proof, root, leaf),
        ("index ^ 2", index ^ 2, size, proof, root, leaf),
        ("size * 2", index, size * 2, proof, root, leaf),
        ("size // 2", index, size // 2, proof, root, leaf),
        ("wrong leaf", index, size, proof, root, b"WrongLeaf"),
        ("empty root", index, size, proof, merkle.EMPTY_ROOT, leaf),
        ("random root", index, size, proof, SOME_HASH, leaf),
        ("trailing garbage", index, size, [*proof, b""], root, leaf),
        ("trailing root", index, size, [*proof, root], root, leaf),
        ("preceding garbage", index, size, [b"", *proof], root, leaf),
        ("preceding root", index, size, [root, *proof], root, leaf),
    ]
    for i in range(len(proof)):
        wrong = [*proof[:i], _flip(proof[i], 3), *proof[i + 1 :]]
        probes.append((f"proof[{i}] bit 3", index, size, wrong, root, leaf))
    if proof:
        probes.append(("removed component", index, size, proof[:-1], root, leaf))
    if len(proof) > 1:
        probes.append(
            ("inserted component", index, size, [proof[0], SOME_HASH, *proof[1:]], root, leaf)
        )
    return probes


@pytest.mark.parametrize(
    "case", TREE["inclusion_proofs"], ids=lambda c: f"{c['index']}-of-{c['size']}"
)
def test_inclusion_proofs_match_the_vectors(case: dict[str, Any]) -> None:
    index, size = case["index"], case["size"]
    proof = merkle.inclusion_proof(index, size, NODES)
    assert _hexes(proof) == case["proof"]
    assert merkle.verify_inclusion(LEAVES[index], index, size, proof, ROOTS[size])
    assert merkle.verify_inclusion_hash(HASHES[index], index, size, proof, ROOTS[size])
    # An entry's hash passed as the entry (or the reverse) does not verify.
    assert not merkle.verify_inclusion(HASHES[index], index, size, proof, ROOTS[size])
    assert not merkle.verify_inclusion_hash(LEAVES[index], index, size, proof, ROOTS[size])
    for desc, i, n, p, r, leaf in _inclusion_probes(index, size, proof, ROOTS[size], HASHES[index]):
        assert not merkle.verify_inclusion_hash(leaf, i, n, p, r), desc


def test_every_inclusion_proof_of_the_reference_tree_verifies() -> None:
    for size in range(1, 9):
        for index in range(size):
            proof = merkle.inclusion_proof(index, size, NODES)
            assert merkle.verify_inclusion(LEAVES[index], index, size, proof, ROOTS[size])


def test_a_proof_binds_the_size_only_through_its_shape() -> None:
    """RFC 9162 verification learns the size only from the audit path's shape: entry 0's
    path in a 3-entry tree has the shape of its path in a 4-entry tree, so it verifies
    under either size. What binds a root to its size is the signed checkpoint."""
    proof = merkle.inclusion_proof(0, 3, NODES)
    assert merkle.verify_inclusion(LEAVES[0], 0, 3, proof, ROOTS[3])
    assert merkle.verify_inclusion(LEAVES[0], 0, 4, proof, ROOTS[3])
    assert not merkle.verify_inclusion(LEAVES[0], 0, 5, proof, ROOTS[3])
    assert not merkle.verify_inclusion(LEAVES[0], 0, 2, proof, ROOTS[3])


def test_inclusion_proof_arguments_out_of_range() -> None:
    for index, size in ((0, 0), (1, 1), (8, 8), (-1, 4), (0, merkle.MAX_TREE_SIZE + 1)):
        with pytest.raises(LicentiaError) as e:
            merkle.inclusion_proof(index, size, NODES)
        assert e.value.reason is Reason.INVALID_REQUEST


def test_inclusion_in_a_one_entry_tree() -> None:
    digest = merkle.leaf_hash(b"data")
    assert merkle.verify_inclusion(b"data", 0, 1, [], digest)
    assert merkle.verify_inclusion_hash(digest, 0, 1, [], digest)
    assert not merkle.verify_inclusion(b"data", 0, 1, [], b"")
    assert not merkle.verify_inclusion_hash(b"", 0, 1, [], digest)
    assert not merkle.verify_inclusion_hash(b"", 0, 1, [], b"")


@pytest.mark.parametrize(("index", "size"), [(0, 0), (1, 0), (2, 1), (1, 1), (-1, 1)])
def test_inclusion_out_of_range_is_refused(index: int, size: int) -> None:
    for root in (merkle.EMPTY_ROOT, b""):
        for leaf in (SOME_HASH, b""):
            assert not merkle.verify_inclusion_hash(leaf, index, size, [], root)


def test_malformed_inclusion_inputs_are_refused_without_raising() -> None:
    proof = merkle.inclusion_proof(5, 8, NODES)
    good = (LEAVES[5], 5, 8, proof, ROOTS[8])
    assert merkle.verify_inclusion(*good)
    bad: list[tuple[Any, ...]] = [
        ("text", 5, 8, proof, ROOTS[8]),  # the entry is not bytes
        (HASHES[5], 5, 8, proof, ROOTS[8]),  # its leaf hash, not the entry
        (LEAVES[5], 5.0, 8, proof, ROOTS[8]),
        (LEAVES[5], True, 8, proof, ROOTS[8]),
        (LEAVES[5], 5, "8", proof, ROOTS[8]),
        (LEAVES[5], 5, 8, b"".join(proof), ROOTS[8]),  # bytes is a sequence of ints
        (LEAVES[5], 5, 8, [p.hex() for p in proof], ROOTS[8]),
        (LEAVES[5], 5, 8, [proof[0], bytearray(proof[1]), proof[2]], ROOTS[8]),
        (LEAVES[5], 5, 8, [*proof[:2], proof[2][:31]], ROOTS[8]),
        (LEAVES[5], 5, 8, [*proof[:2], proof[2] + b"\x00"], ROOTS[8]),
        (LEAVES[5], 5, 8, iter(proof), ROOTS[8]),
        (LEAVES[5], 5, 8, None, ROOTS[8]),
        (LEAVES[5], 5, 8, proof, ROOTS[8][:31]),
        (LEAVES[5], 5, 8, proof, ROOTS[8].hex()),
        (LEAVES[5], 5, 8, proof, None),
    ]
    for args in bad:
        assert not merkle.verify_inclusion(*args), args


class _HugeProof(Sequence[bytes]):
    """A proof far over the cap whose elements must never be read."""

    def __len__(self) -> int:
        return 10**9

    def __getitem__(self, i: Any) -> Any:
        raise AssertionError("an over-long proof was read")


def test_an_over_long_proof_is_refused_unread() -> None:
    assert not merkle.verify_inclusion(b"x", 0, 8, _HugeProof(), ROOTS[8])
    assert not merkle.verify_inclusion_hash(SOME_HASH, 0, 8, _HugeProof(), ROOTS[8])
    assert not merkle.verify_consistency(3, 8, ROOTS[3], ROOTS[8], _HugeProof())


def test_elements_past_the_end_of_the_path_are_refused() -> None:
    # Entry 1 with its sibling would hash to the 2-entry root; claimed at index 0 of a
    # 1-entry tree, the path ends before the proof does (RFC 9162: "if sn is 0, fail").
    assert merkle.node_hash(HASHES[0], HASHES[1]) == ROOTS[2]
    assert not merkle.verify_inclusion(LEAVES[1], 0, 1, [HASHES[0]], ROOTS[2])
    # The same for consistency: the 7-to-8 proof is the 3-to-4 proof of the right half
    # plus its left sibling, which would fold the 3/4 roots of that half into the 7/8 roots.
    proof = merkle.consistency_proof(7, 8, NODES)
    assert merkle.consistency_proof(3, 4, merkle.MemoryNodes.from_entries(LEAVES[4:])) == proof[:-1]
    assert not merkle.verify_consistency(3, 4, ROOTS[7], ROOTS[8], proof)


def test_proof_length_and_tree_size_are_capped() -> None:
    index = merkle.MAX_TREE_SIZE - 1
    assert not merkle.verify_inclusion(
        b"x", index, merkle.MAX_TREE_SIZE, [SOME_HASH] * 63, SOME_HASH
    )
    assert not merkle.verify_inclusion(SOME_HASH, 0, 2**63, [SOME_HASH] * 63, SOME_HASH)
    long_proof = [SOME_HASH] * (merkle.MAX_PROOF_LENGTH + 1)
    assert not merkle.verify_inclusion(SOME_HASH, 0, merkle.MAX_TREE_SIZE, long_proof, SOME_HASH)
    assert not merkle.verify_consistency(1, merkle.MAX_TREE_SIZE, SOME_HASH, SOME_HASH, long_proof)
    assert not merkle.verify_consistency(1, 2**63, SOME_HASH, SOME_HASH, [SOME_HASH] * 63)


def test_the_largest_tree_verifies_a_full_length_proof() -> None:
    # The path of the last entry of a 2**62-entry tree has 62 elements, all on the left.
    size, index, leaf = 2**62, 2**62 - 1, b"last"
    proof = [bytes([i]) * 32 for i in range(62)]
    root = merkle.leaf_hash(leaf)
    for sibling in proof:
        root = merkle.node_hash(sibling, root)
    assert merkle.verify_inclusion(leaf, index, size, proof, root)
    assert not merkle.verify_inclusion(leaf, index - 1, size, proof, root)


# -- consistency -------------------------------------------------------------------------


def _consistency_probes(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: list[bytes]
) -> list[tuple[str, int, int, bytes, bytes, list[bytes]]]:
    """Corruptions of a valid proof, after transparency-dev/merkle's verify_test.go."""
    probes = [
        ("old - 1", old - 1, new, old_root, new_root, proof),
        ("old + 1", old + 1, new, old_root, new_root, proof),
        ("old ^ 2", old ^ 2, new, old_root, new_root, proof),
        ("new * 2", old, new * 2, old_root, new_root, proof),
        ("new // 2", old, new // 2, old_root, new_root, proof),
        ("wrong old root", old, new, b"WrongRoot", new_root, proof),
        ("wrong new root", old, new, old_root, b"WrongRoot", proof),
        ("other old root", old, new, SOME_HASH, new_root, proof),
        ("other new root", old, new, old_root, SOME_HASH, proof),
        ("swapped roots", old, new, new_root, old_root, proof),
        ("empty proof", old, new, old_root, new_root, []),
        ("trailing garbage", old, new, old_root, new_root, [*proof, b""]),
        ("trailing old root", old, new, old_root, new_root, [*proof, old_root]),
        ("trailing new root", old, new, old_root, new_root, [*proof, new_root]),
        ("preceding garbage", old, new, old_root, new_root, [b"", *proof]),
        ("preceding old root", old, new, old_root, new_root, [old_root, *proof]),
        ("preceding new root", old, new, old_root, new_root, [new_root, *proof]),
        ("preceding proof[0]", old, new, old_root, new_root, [proof[0], *proof]),
        ("truncated", old, new, old_root, new_root, proof[:-1]),
    ]
    for i in range(len(proof)):
        wrong = [*proof[:i], _flip(proof[i], 4), *proof[i + 1 :]]
        probes.append((f"proof[{i}] bit 4", old, new, old_root, new_root, wrong))
    return probes


@pytest.mark.parametrize(
    "case", TREE["consistency_proofs"], ids=lambda c: f"{c['old_size']}-to-{c['new_size']}"
)
def test_consistency_proofs_match_the_vectors(case: dict[str, Any]) -> None:
    old, new = case["old_size"], case["new_size"]
    proof = merkle.consistency_proof(old, new, NODES)
    assert _hexes(proof) == case["proof"]
    assert merkle.verify_consistency(old, new, ROOTS[old], ROOTS[new], proof)
    if proof:
        for desc, m, n, r1, r2, p in _consistency_probes(old, new, ROOTS[old], ROOTS[new], proof):
            assert not merkle.verify_consistency(m, n, r1, r2, p), desc


def test_every_consistency_proof_of_the_reference_tree_verifies() -> None:
    for new in range(9):
        for old in range(new + 1):
            proof = merkle.consistency_proof(old, new, NODES)
            assert merkle.verify_consistency(old, new, ROOTS[old], ROOTS[new], proof), (old, new)


def test_trivial_consistency_proofs_are_empty() -> None:
    assert merkle.consistency_proof(0, 0, NODES) == []
    assert merkle.consistency_proof(0, 8, NODES) == []
    assert merkle.consistency_proof(5, 5, NODES) == []


def test_consistency_proof_arguments_out_of_range() -> None:
    for old, new in ((2, 1), (-1, 3), (0, -1), (1, merkle.MAX_TREE_SIZE + 1)):
        with pytest.raises(LicentiaError) as e:
            merkle.consistency_proof(old, new, NODES)
        assert e.value.reason is Reason.INVALID_REQUEST


EMPTY = merkle.EMPTY_ROOT


@pytest.mark.parametrize(
    ("old", "new", "old_root", "new_root", "proof", "valid"),
    [
        # Sizes that are always consistent, with an empty proof.
        (0, 0, EMPTY, EMPTY, [], True),
        (0, 1, EMPTY, ROOTS[1], [], True),
        (0, 8, EMPTY, SOME_HASH, [], True),
        (1, 1, ROOTS[1], ROOTS[1], [], True),
        (7, 7, SOME_HASH, SOME_HASH, [], True),
        # ... but the empty tree has one root, and equal sizes have equal roots.
        (0, 0, SOME_HASH, SOME_HASH, [], False),
        (0, 1, SOME_HASH, ROOTS[1], [], False),
        (0, 0, EMPTY, SOME_HASH, [], False),
        (1, 1, ROOTS[1], ROOTS[2], [], False),
        # Roots match but the proof is not empty.
        (0, 0, EMPTY, EMPTY, [EMPTY], False),
        (0, 1, EMPTY, EMPTY, [EMPTY], False),
        (1, 1, EMPTY, EMPTY, [EMPTY], False),
        # Time travel to the past.
        (1, 0, ROOTS[1], EMPTY, [], False),
        (2, 1, ROOTS[2], ROOTS[1], [], False),
        # An empty proof between different sizes.
        (1, 2, ROOTS[1], ROOTS[2], [], False),
        # Negative sizes and wrong hash lengths.
        (-1, 2, ROOTS[1], ROOTS[2], [], False),
        (0, 0, b"", b"", [], False),
        (3, 3, b"abc", b"abc", [], False),
    ],
)
def test_consistency_edge_cases(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: list[bytes], valid: bool
) -> None:
    assert merkle.verify_consistency(old, new, old_root, new_root, proof) is valid


def test_malformed_consistency_inputs_are_refused_without_raising() -> None:
    proof = merkle.consistency_proof(6, 8, NODES)
    assert merkle.verify_consistency(6, 8, ROOTS[6], ROOTS[8], proof)
    bad: list[tuple[Any, ...]] = [
        (6.0, 8, ROOTS[6], ROOTS[8], proof),
        (6, True, ROOTS[6], ROOTS[8], proof),
        (6, 8, ROOTS[6].hex(), ROOTS[8], proof),
        (6, 8, ROOTS[6], None, proof),
        (6, 8, ROOTS[6], ROOTS[8], b"".join(proof)),
        (6, 8, ROOTS[6], ROOTS[8], [p[:16] for p in proof]),
        (6, 8, ROOTS[6], ROOTS[8], None),
    ]
    for args in bad:
        assert not merkle.verify_consistency(*args), args


# -- signed notes and checkpoints ---------------------------------------------------------

GO = NOTES["go_note"]
SUMDB = NOTES["sumdb_checkpoint"]
LOG_KEY = PrivateKey.from_seed(b"\x0b" * 32)
ORIGIN = "licentia.example/log"


def _go_private_key() -> PrivateKey:
    # PRIVATE+KEY+<name>+<key id>+base64(0x01 || seed)
    raw = base64.b64decode(GO["skey"].split("+", 4)[4])
    assert raw[0] == 0x01
    return PrivateKey.from_seed(raw[1:])


def test_go_verifier_key_parses_and_is_reproduced() -> None:
    name, key_id, public = checkpoint.parse_vkey(GO["vkey"])
    assert (name, key_id.hex()) == ("PeterNeumann", "c74f20a3")
    assert public == _go_private_key().public
    assert checkpoint.key_id(name, public) == key_id
    assert checkpoint.vkey(name, public) == GO["vkey"]


def test_go_signed_note_is_reproduced_byte_for_byte() -> None:
    assert checkpoint.sign_note(GO["text"], "PeterNeumann", _go_private_key()) == GO["note"]


def test_go_signed_note_opens() -> None:
    name, _, public = checkpoint.parse_vkey(GO["vkey"])
    assert checkpoint.open_note(GO["note"], name, public) == GO["text"]
    assert checkpoint.open_note(GO["note"].encode(), name, public) == GO["text"]


def test_other_signers_are_ignored() -> None:
    peter_name, _, peter = checkpoint.parse_vkey(GO["vkey"])
    enoch_name, _, enoch = checkpoint.parse_vkey(GO["other_vkey"])
    both = GO["note"] + GO["other_signature_line"]
    assert checkpoint.open_note(both, peter_name, peter) == GO["text"]
    assert checkpoint.open_note(both, enoch_name, enoch) == GO["text"]
    # A known name under another key (a rotated key, say) is someone else: ignored.
    stranger = PrivateKey.from_seed(b"\x09" * 32).public
    with pytest.raises(LicentiaError) as e:
        checkpoint.open_note(both, peter_name, stranger)
    assert e.value.reason is Reason.BAD_SIGNATURE


def test_the_last_blank_line_separates_the_signatures() -> None:
    text = "a poem\n\nwith a blank line\n\n— and a dash\n"
    note = checkpoint.sign_note(text, "k", LOG_KEY)
    assert checkpoint.open_note(note, "k", LOG_KEY.public) == text


def test_a_line_by_another_key_of_the_same_name_is_ignored() -> None:
    """signed-note: verifiers MUST ignore unknown keys even if they share a name."""
    rotated = PrivateKey.from_seed(b"\x0d" * 32)
    other_line = checkpoint.sign_note("hello\n", "k", rotated)[len("hello\n\n") :]
    note = checkpoint.sign_note("hello\n", "k", LOG_KEY) + other_line
    assert checkpoint.open_note(note, "k", LOG_KEY.public) == "hello\n"
    assert checkpoint.open_note(note, "k", rotated.public) == "hello\n"


def test_go_invalid_signature_is_refused() -> None:
    name, _, public = checkpoint.parse_vkey(GO["vkey"])
    sig_line = GO["note"][len(GO["text"]) + 1 :]
    mangled = GO["text"] + "\n" + sig_line[:60] + "ABCD" + sig_line[60:]
    with pytest.raises(LicentiaError) as e:
        checkpoint.open_note(mangled, name, public)
    assert e.value.reason is Reason.BAD_SIGNATURE


def test_a_bad_signature_by_the_key_spoils_a_good_one() -> None:
    good = checkpoint.sign_note("hello\n", "k", LOG_KEY)
    other = checkpoint.sign_note("bye\n", "k", LOG_KEY)
    wrong_line = other[len("bye\n\n") :]
    with pytest.raises(LicentiaError) as e:
        checkpoint.open_note(good + wrong_line, "k", LOG_KEY.public)
    assert e.value.reason is Reason.BAD_SIGNATURE


@pytest.mark.parametrize(
    "suffix",
    [
        "",  # no signature block
        "\n",  # a blank line and no signature
        "\nSIG_NO_NEWLINE",
        "\nSIG\nUnexpected line.\n",
        "\n— Bad Name B64M=\n",
        "\n— PeterNeumann\n",
        "\n— PeterNeumann \n",
        "\n- PeterNeumann B64M=\n",  # a hyphen, not an em dash
        "\n—  PeterNeumann B64M=\n",
        "\n— PeterNeumann B64M\n",  # padding missing
        "\n— PeterNeumann B64N=\n",  # the unused bits of the last character set
        "\n— PeterNeumann x08=\n",
        "\nSIG\r\n",
        "\nSIG\n\n",
    ],
)
def test_malformed_notes_are_refused(suffix: str) -> None:
    sig_line = GO["note"][len(GO["text"]) + 1 :]
    sig_b64 = sig_line.rsplit(" ", 1)[1][:-3]  # without its last character, "=" and newline
    note = GO["text"] + suffix.replace("SIG", sig_line.rstrip("\n")).replace("B64", sig_b64)
    name, _, public = checkpoint.parse_vkey(GO["vkey"])
    assert checkpoint.open_note(f"{GO['text']}\n— PeterNeumann {sig_b64}M=\n", name, public)
    with pytest.raises(LicentiaError) as e:
        checkpoint.open_note(note, name, public)
    assert e.value.reason is Reason.MALFORMED


@pytest.mark.parametrize("prefix", ["\x01", "\x00", "\t", "\udcff"])
def test_notes_with_control_characters_or_bad_utf8_are_refused(prefix: str) -> None:
    name, _, public = checkpoint.parse_vkey(GO["vkey"])
    with pytest.raises(LicentiaError) as e:
        checkpoint.open_note(prefix + GO["note"], name, public)
    assert e.value.reason is Reason.MALFORMED
    with pytest.raises(LicentiaError):
        checkpoint.open_note(b"\xff" + GO["note"].encode(), name, public)


def test_signature_count_and_note_size_are_capped() -> None:
    name, _, public = checkpoint.parse_vkey(GO["vkey"])
    sig_line = GO["note"][len(GO["text"]) + 1 :]
    assert checkpoint.open_note(GO["text"] + "\n" + sig_line * 100, name, public) == GO["text"]
    with pytest.raises(LicentiaError) as e:
        checkpoint.open_note(GO["text"] + "\n" + sig_line * 101, name, public)
    assert e.value.reason is Reason.TOO_LARGE
    padding = "x" * checkpoint.MAX_NOTE_BYTES + "\n"
    for big in (padding + GO["note"], (padding + GO["note"]).encode()):
        with pytest.raises(LicentiaError) as e:
            checkpoint.open_note(big, name, public)
        assert e.value.reason is Reason.TOO_LARGE
    with pytest.raises(LicentiaError) as e:
        checkpoint.sign_note(padding, "k", LOG_KEY)
    assert e.value.reason is Reason.TOO_LARGE


def test_sign_note_refuses_what_is_not_a_note_text() -> None:
    for text in ("no newline", "", "nul\x00byte\n", "tab\tchar\n", "\udcff\n"):
        with pytest.raises(LicentiaError):
            checkpoint.sign_note(text, "k", LOG_KEY)
    for name in ("", "a b", "a+b", "a\u00a0b", "a\nb", "a\x01b"):
        with pytest.raises(LicentiaError):
            checkpoint.sign_note("text\n", name, LOG_KEY)


def test_vkey_manglings_are_refused() -> None:
    """Every proper substring and every one-character change of a vkey is refused."""
    text = GO["vkey"]
    for i in range(len(text) + 1):
        for j in range(i + 1, len(text) + 1):
            if (i, j) != (0, len(text)):
                with pytest.raises(LicentiaError):
                    checkpoint.parse_vkey(text[i:j])
    for i in range(len(text)):
        with pytest.raises(LicentiaError):
            checkpoint.parse_vkey(text[:i] + chr(ord(text[i]) + 1) + text[i + 1 :])
    # A wrong-length key and an unknown algorithm, each with its key id recomputed.
    for bad in (
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW\n",
    ):
        with pytest.raises(LicentiaError) as e:
            checkpoint.parse_vkey(bad)
        assert e.value.reason is Reason.MALFORMED


def test_the_go_checksum_database_checkpoint_opens() -> None:
    name, _, public = checkpoint.parse_vkey(SUMDB["vkey"])
    cp = checkpoint.open_checkpoint(SUMDB["note"], name, public, SUMDB["origin"])
    assert cp == Checkpoint(SUMDB["origin"], SUMDB["size"], base64.b64decode(SUMDB["root_base64"]))
    assert SUMDB["note"].startswith(cp.body())
    with pytest.raises(LicentiaError) as e:
        checkpoint.open_checkpoint(SUMDB["note"], name, public, "go.sum database tree2")
    assert e.value.reason is Reason.MALFORMED
    with pytest.raises(LicentiaError) as e:
        checkpoint.open_checkpoint(SUMDB["note"], "sum.golang.org2", public, SUMDB["origin"])
    assert e.value.reason is Reason.BAD_SIGNATURE


def test_checkpoint_body_format() -> None:
    cp = Checkpoint(ORIGIN, 0, merkle.EMPTY_ROOT)
    assert cp.body() == f"{ORIGIN}\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"
    with_ext = Checkpoint(ORIGIN, 8, ROOTS[8], ("ext one", "ext two"))
    assert with_ext.body().endswith("\next one\next two\n")


def test_checkpoint_round_trip_keeps_extensions() -> None:
    cp = Checkpoint("licentia.example/lög", 8, ROOTS[8], ("an extension",))
    note = checkpoint.sign_checkpoint(cp, ORIGIN, LOG_KEY)
    assert checkpoint.open_checkpoint(note, ORIGIN, LOG_KEY.public, cp.origin) == cp
    name, key_id, public = checkpoint.parse_vkey(checkpoint.vkey(ORIGIN, LOG_KEY.public))
    assert (name, public) == (ORIGIN, LOG_KEY.public)
    assert note.endswith("\n")
    assert f"\n\n— {ORIGIN} " in note
    assert base64.b64decode(note.rsplit(" ", 1)[1])[:4] == key_id


@pytest.mark.parametrize(
    "body",
    [
        f"{ORIGIN}\n8\n",  # too few lines
        f"{ORIGIN}\n08\n{base64.b64encode(ROOTS[8]).decode()}\n",  # a leading zero
        f"{ORIGIN}\n+8\n{base64.b64encode(ROOTS[8]).decode()}\n",
        f"{ORIGIN}\n 8\n{base64.b64encode(ROOTS[8]).decode()}\n",
        f"{ORIGIN}\n８\n{base64.b64encode(ROOTS[8]).decode()}\n",  # a non-ASCII digit
        f"{ORIGIN}\n-1\n{base64.b64encode(ROOTS[8]).decode()}\n",
        f"{ORIGIN}\n{2**63}\n{base64.b64encode(ROOTS[8]).decode()}\n",
        f"{ORIGIN}\n{'9' * 30}\n{base64.b64encode(ROOTS[8]).decode()}\n",
        f"{ORIGIN}\n8\n{base64.b64encode(ROOTS[8][:31]).decode()}\n",  # a 31-byte root
        f"{ORIGIN}\n8\n{base64.urlsafe_b64encode(ROOTS[8]).decode()}\n",  # base64url
        f"{ORIGIN}\n8\n{base64.b64encode(ROOTS[8]).decode().rstrip('=')}\n",  # no padding
        f"{ORIGIN}\n8\n{base64.b64encode(ROOTS[8]).decode()[:-2]}V=\n",  # non-canonical
        f"{ORIGIN}\n8\n{base64.b64encode(ROOTS[8]).decode()}\n\nextension\n",  # empty line
        f"other.example/log\n8\n{base64.b64encode(ROOTS[8]).decode()}\n",  # another log
        f"{ORIGIN} \n8\n{base64.b64encode(ROOTS[8]).decode()}\n",
    ],
)
def test_malformed_checkpoints_are_refused_even_when_signed(body: str) -> None:
    note = checkpoint.sign_note(body, ORIGIN, LOG_KEY)
    with pytest.raises(LicentiaError) as e:
        checkpoint.open_checkpoint(note, ORIGIN, LOG_KEY.public, ORIGIN)
    assert e.value.reason is Reason.MALFORMED


def test_checkpoint_values_are_checked() -> None:
    bad: list[tuple[Any, ...]] = [
        ("", 1, ROOTS[1]),
        ("a\nb", 1, ROOTS[1]),
        ("a\x00", 1, ROOTS[1]),
        (ORIGIN, -1, ROOTS[1]),
        (ORIGIN, merkle.MAX_TREE_SIZE + 1, ROOTS[1]),
        (ORIGIN, True, ROOTS[1]),
        (ORIGIN, 1.0, ROOTS[1]),
        (ORIGIN, 1, ROOTS[1][:31]),
        (ORIGIN, 1, ROOTS[1].hex()),
        (ORIGIN, 1, ROOTS[1], ("",)),
        (ORIGIN, 1, ROOTS[1], ("a\nb",)),
        (ORIGIN, 1, ROOTS[1], ["list"]),
    ]
    for args in bad:
        with pytest.raises(LicentiaError) as e:
            Checkpoint(*args)
        assert e.value.reason is Reason.MALFORMED, args


def test_a_checkpoint_from_another_key_is_refused() -> None:
    note = checkpoint.sign_checkpoint(Checkpoint(ORIGIN, 1, ROOTS[1]), ORIGIN, LOG_KEY)
    impostor = PublicKey(PrivateKey.from_seed(b"\x0c" * 32).public.raw)
    with pytest.raises(LicentiaError) as e:
        checkpoint.open_checkpoint(note, ORIGIN, impostor, ORIGIN)
    assert e.value.reason is Reason.BAD_SIGNATURE
