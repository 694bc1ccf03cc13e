"""Hypothesis properties of the transparency log: the tree, its proofs, and checkpoints.

Trees of up to 200 entries are built leaf by leaf with ``completed_nodes`` and checked
against the RFC 9162 definitions written out plainly below (MTH, PATH, SUBPROOF).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from licentia import checkpoint, merkle
from licentia.checkpoint import Checkpoint
from licentia.errors import LicentiaError
from licentia.keys import PrivateKey

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MAX_ENTRIES = 200
LOG_KEY = PrivateKey.from_seed(b"\x0b" * 32)


class CountingNodes:
    """A :class:`merkle.Nodes` that counts the nodes read."""

    def __init__(self, inner: merkle.MemoryNodes) -> None:
        self.inner = inner
        self.reads = 0

    def get(self, level: int, index: int) -> bytes:
        self.reads += 1
        return self.inner.get(level, index)

    def get_many(self, keys: Sequence[merkle.NodeKey]) -> Mapping[merkle.NodeKey, bytes]:
        self.reads += len(keys)
        return self.inner.get_many(keys)


# -- RFC 9162 §2.1, by the letter ---------------------------------------------------------


def _k(n: int) -> int:
    """The largest power of two smaller than n."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n])."""
    n = len(leaves)
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return [*ref_path(m, leaves[:k]), merkle.reference_root(leaves[k:])]
    return [*ref_path(m - k, leaves[k:]), merkle.reference_root(leaves[:k])]


def ref_subproof(m: int, leaves: Sequence[bytes], whole: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b)."""
    n = len(leaves)
    if m == n:
        return [] if whole else [merkle.reference_root(leaves)]
    k = _k(n)
    if m <= k:
        return [*ref_subproof(m, leaves[:k], whole), merkle.reference_root(leaves[k:])]
    return [*ref_subproof(m - k, leaves[k:], False), merkle.reference_root(leaves[:k])]


def path_shape(m: int, n: int) -> tuple[str, ...]:
    """Where each PATH(m, D[n]) element sits: the only thing a verifier learns from m, n."""
    if n == 1:
        return ()
    k = _k(n)
    return (*path_shape(m, k), "R") if m < k else (*path_shape(m - k, n - k), "L")


def subproof_shape(m: int, n: int, whole: bool = True) -> tuple[str, ...]:
    """Where each SUBPROOF(m, D[n], b) element sits (T: the old tree's own subtree)."""
    if m == n:
        return () if whole else ("T",)
    k = _k(n)
    if m <= k:
        return (*subproof_shape(m, k, whole), "R")
    return (*subproof_shape(m - k, n - k, False), "L")


# -- strategies --------------------------------------------------------------------------


@st.composite
def trees(draw: st.DrawFn, min_size: int = 0) -> tuple[list[bytes], CountingNodes]:
    """Distinct entries, and the nodes built by appending them one by one."""
    n = draw(st.integers(min_size, MAX_ENTRIES))
    salt = draw(st.binary(max_size=4))
    leaves = [salt + i.to_bytes(2, "big") for i in range(n)]
    nodes = merkle.MemoryNodes()
    counting = CountingNodes(nodes)
    for i, entry in enumerate(leaves):
        nodes.put_many(merkle.completed_nodes(i, merkle.leaf_hash(entry), counting))
    assert counting.reads < max(n, 1)  # amortised: under one read per append
    counting.reads = 0
    return leaves, counting


def _log2_ceil(n: int) -> int:
    return (n - 1).bit_length()


def _flip(data: bytes, byte: int, bit: int) -> bytes:
    i = byte % len(data)
    return data[:i] + bytes([data[i] ^ (1 << bit)]) + data[i + 1 :]


# -- the tree ----------------------------------------------------------------------------


@SETTINGS
@given(trees(), st.data())
def test_roots_are_the_merkle_tree_hash(
    tree: tuple[list[bytes], CountingNodes], data: st.DataObject
) -> None:
    leaves, nodes = tree
    n = len(leaves)
    assert len(nodes.inner) == 2 * n - bin(n).count("1")  # every complete subtree, once
    for size in {n, data.draw(st.integers(0, n)), data.draw(st.integers(0, n))}:
        nodes.reads = 0
        assert merkle.root(size, nodes) == merkle.reference_root(leaves[:size])
        assert nodes.reads == bin(size).count("1")


@SETTINGS
@given(trees(min_size=1), st.data())
def test_inclusion_proofs_are_the_rfc_path_and_verify(
    tree: tuple[list[bytes], CountingNodes], data: st.DataObject
) -> None:
    leaves, nodes = tree
    n = len(leaves)
    size = data.draw(st.integers(1, n))
    root = merkle.reference_root(leaves[:size])
    bound = 2 * _log2_ceil(size)
    for index in range(size):
        nodes.reads = 0
        proof = merkle.inclusion_proof(index, size, nodes)
        assert nodes.reads <= bound
        assert len(proof) <= _log2_ceil(size)
        assert merkle.verify_inclusion(leaves[index], index, size, proof, root)
    # Against the definition, for a few indexes (the definition is quadratic).
    for index in data.draw(st.lists(st.integers(0, size - 1), min_size=1, max_size=3)):
        assert merkle.inclusion_proof(index, size, nodes) == ref_path(index, leaves[:size])


@SETTINGS
@given(trees(min_size=1), st.data())
def test_altered_inclusion_proofs_fail(
    tree: tuple[list[bytes], CountingNodes], data: st.DataObject
) -> None:
    leaves, nodes = tree
    n = len(leaves)
    size = data.draw(st.integers(1, n))
    index = data.draw(st.integers(0, size - 1))
    root = merkle.root(size, nodes)
    proof = merkle.inclusion_proof(index, size, nodes)
    leaf = leaves[index]
    assert merkle.verify_inclusion(leaf, index, size, proof, root)

    for i in range(len(proof)):
        byte, bit = data.draw(st.integers(0, 31)), data.draw(st.integers(0, 7))
        altered = [*proof[:i], _flip(proof[i], byte, bit), *proof[i + 1 :]]
        assert not merkle.verify_inclusion(leaf, index, size, altered, root)
    if proof:
        assert not merkle.verify_inclusion(leaf, index, size, proof[:-1], root)
        assert (
            not merkle.verify_inclusion(leaf, index, size, proof[::-1], root)
            or len(set(proof)) == 1
        )
    assert not merkle.verify_inclusion(leaf, index, size, [*proof, root], root)
    assert not merkle.verify_inclusion(leaf + b"!", index, size, proof, root)
    assert not merkle.verify_inclusion(merkle.leaf_hash(leaf), index, size, proof, root)
    digest = merkle.leaf_hash(leaf)
    assert merkle.verify_inclusion_hash(digest, index, size, proof, root)
    flipped = _flip(digest, data.draw(st.integers(0, 31)), data.draw(st.integers(0, 7)))
    assert not merkle.verify_inclusion_hash(flipped, index, size, proof, root)
    other = data.draw(st.integers(0, MAX_ENTRIES))
    if other != index:
        assert not merkle.verify_inclusion(leaf, other, size, proof, root)
    # Another size passes only where the audit path has exactly the same shape: the root
    # binds the size only through the signed checkpoint that carries both.
    other_size = data.draw(st.integers(index + 1, 2 * MAX_ENTRIES))
    same_shape = path_shape(index, other_size) == path_shape(index, size)
    assert merkle.verify_inclusion(leaf, index, other_size, proof, root) is same_shape


@SETTINGS
@given(trees(min_size=1), st.data())
def test_consistency_proofs_are_the_rfc_subproof_and_verify(
    tree: tuple[list[bytes], CountingNodes], data: st.DataObject
) -> None:
    leaves, nodes = tree
    n = len(leaves)
    new = data.draw(st.integers(0, n))
    new_root = merkle.reference_root(leaves[:new])
    bound = 2 * _log2_ceil(max(new, 1))
    for old in range(new + 1):
        nodes.reads = 0
        proof = merkle.consistency_proof(old, new, nodes)
        assert nodes.reads <= bound
        assert len(proof) <= merkle.MAX_PROOF_LENGTH
        old_root = merkle.root(old, nodes.inner)
        assert merkle.verify_consistency(old, new, old_root, new_root, proof), (old, new)
    for old in data.draw(st.lists(st.integers(1, max(new, 1)), min_size=1, max_size=3)):
        if old <= new:
            expected = ref_subproof(old, leaves[:new], True)
            assert merkle.consistency_proof(old, new, nodes) == expected


@SETTINGS
@given(trees(min_size=2), st.data())
def test_altered_consistency_proofs_fail(
    tree: tuple[list[bytes], CountingNodes], data: st.DataObject
) -> None:
    leaves, nodes = tree
    n = len(leaves)
    new = data.draw(st.integers(2, n))
    old = data.draw(st.integers(1, new - 1))
    old_root, new_root = merkle.root(old, nodes), merkle.root(new, nodes)
    proof = merkle.consistency_proof(old, new, nodes)
    assert merkle.verify_consistency(old, new, old_root, new_root, proof)

    for i in range(len(proof)):
        byte, bit = data.draw(st.integers(0, 31)), data.draw(st.integers(0, 7))
        altered = [*proof[:i], _flip(proof[i], byte, bit), *proof[i + 1 :]]
        assert not merkle.verify_consistency(old, new, old_root, new_root, altered)
    assert not merkle.verify_consistency(old, new, old_root, new_root, proof[:-1])
    assert not merkle.verify_consistency(old, new, old_root, new_root, [*proof, new_root])
    assert not merkle.verify_consistency(old, new, new_root, old_root, proof)
    assert not merkle.verify_consistency(old, new, _flip(old_root, 0, 0), new_root, proof)
    assert not merkle.verify_consistency(old, new, old_root, _flip(new_root, 0, 0), proof)
    # Other sizes pass only where the proof has exactly the same shape (see above).
    other_old = data.draw(st.integers(0, 2 * MAX_ENTRIES))
    other_new = data.draw(st.integers(0, 2 * MAX_ENTRIES))
    for m, k in ((other_old, new), (old, other_new), (other_old, other_new)):
        if (m, k) == (old, new):
            continue
        passes = merkle.verify_consistency(m, k, old_root, new_root, proof)
        assert passes is (0 < m < k and subproof_shape(m, k) == subproof_shape(old, new))


# -- checkpoints -------------------------------------------------------------------------

_line = st.text(st.characters(codec="utf-8", min_codepoint=0x20), min_size=1, max_size=40)
_key_name = st.text(
    st.characters(
        codec="utf-8", exclude_categories=["Zs", "Zl", "Zp", "Cc"], exclude_characters="+"
    ),
    min_size=1,
    max_size=20,
)
checkpoints = st.builds(
    Checkpoint,
    origin=_line,
    size=st.integers(0, merkle.MAX_TREE_SIZE),
    root=st.binary(min_size=32, max_size=32),
    extensions=st.lists(_line, max_size=3).map(tuple),
)


@SETTINGS
@given(checkpoints, _key_name)
def test_checkpoint_round_trip(cp: Checkpoint, name: str) -> None:
    note = checkpoint.sign_checkpoint(cp, name, LOG_KEY)
    assert checkpoint.open_checkpoint(note, name, LOG_KEY.public, cp.origin) == cp
    assert checkpoint.open_checkpoint(note.encode(), name, LOG_KEY.public, cp.origin) == cp
    parsed_name, _, public = checkpoint.parse_vkey(checkpoint.vkey(name, LOG_KEY.public))
    assert (parsed_name, public) == (name, LOG_KEY.public)


@settings(max_examples=300, deadline=None)
@given(checkpoints, st.data())
def test_any_changed_byte_is_refused(cp: Checkpoint, data: st.DataObject) -> None:
    raw = checkpoint.sign_checkpoint(cp, "log.example", LOG_KEY).encode()
    position = data.draw(st.integers(0, len(raw) - 1))
    value = data.draw(st.integers(0, 255).filter(lambda b: b != raw[position]))
    changed = raw[:position] + bytes([value]) + raw[position + 1 :]
    try:
        checkpoint.open_checkpoint(changed, "log.example", LOG_KEY.public, cp.origin)
    except LicentiaError:
        return
    raise AssertionError(f"accepted a note changed at byte {position}")


@SETTINGS
@given(checkpoints, _line)
def test_a_wrong_origin_is_refused(cp: Checkpoint, origin: str) -> None:
    note = checkpoint.sign_checkpoint(cp, "log.example", LOG_KEY)
    if origin != cp.origin:
        try:
            checkpoint.open_checkpoint(note, "log.example", LOG_KEY.public, origin)
        except LicentiaError:
            return
        raise AssertionError("accepted a checkpoint of another log")
