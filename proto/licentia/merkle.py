"""The transparency log's Merkle tree, exactly as RFC 9162 section 2.1 defines it.

Hashing (RFC 9162 §2.1.1, the same as RFC 6962): a leaf is SHA-256(0x00 || entry), an
interior node SHA-256(0x01 || left || right), and the empty tree SHA-256("").

**Entries or leaf hashes.** The node-level write path, :func:`completed_nodes`, takes
the 32-byte *leaf hash* (what the store keeps as node ``(0, i)``) and refuses anything
else. The checks meant for auditors take the *entry* as published, and hash it:
:func:`verify_inclusion` and :func:`reference_root`; :func:`verify_inclusion_hash` is
for a caller that holds only leaf hashes.

Storage model. The store keeps the hash of every *complete aligned subtree*: node
``(level, index)`` covers leaves ``[index * 2**level, (index + 1) * 2**level)`` and exists
once all of them are appended. Appending leaf ``i`` completes the leaf node ``(0, i)``
and each ancestor whose right edge ``i`` closes (:func:`completed_nodes`): about two
rows per leaf, and never rewritten. Any hash the RFC's recursion needs — a root, a
proof element — is either one such node or, when the range is cut by the tree size,
the right-leaning fold of the complete subtrees it decomposes into (:func:`subtree_hash`).

Reads go through the :class:`Nodes` protocol; every function here asks for all the
nodes it needs in a single :meth:`Nodes.get_many` call, whose keys it computes from
the sizes alone. An inclusion or consistency proof reads one node per proof element
plus the decomposition of at most one partial subtree: at most ``2 * ceil(log2 n)``
nodes. Nothing in this module does I/O.

Verification (:func:`verify_inclusion`, :func:`verify_consistency`) follows the RFC's
algorithms (§2.1.3.2, §2.1.4.2) step by step and never raises: a bad input of any
kind — wrong hash length, size out of range, too long a proof — is simply ``False``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from .errors import LicentiaError, Reason

__all__ = [
    "EMPTY_ROOT",
    "HASH_BYTES",
    "MAX_PROOF_LENGTH",
    "MAX_TREE_SIZE",
    "MemoryNodes",
    "NodeKey",
    "Nodes",
    "completed_nodes",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "reference_root",
    "root",
    "subtree_hash",
    "verify_consistency",
    "verify_inclusion",
    "verify_inclusion_hash",
]


#: SHA-256 output length; every hash in a tree or proof has it.
HASH_BYTES = 32
#: The largest tree (and so the largest index + 1) handled: sizes fit a signed 64-bit
#: integer, as they do in SQLite and in Go's checkpoint parsers.
MAX_TREE_SIZE = 2**63 - 1
#: The longest proof accepted. For trees below 2**63 leaves an inclusion proof has at
#: most 63 elements and a consistency proof at most 64.
MAX_PROOF_LENGTH = 64
#: MTH({}) = SHA-256 of the empty string (RFC 9162 §2.1.1).
EMPTY_ROOT = hashlib.sha256(b"").digest()

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

#: A stored node's coordinates: ``(level, index)``.
NodeKey = tuple[int, int]


def leaf_hash(entry: bytes) -> bytes:
    """MTH({entry}) = SHA-256(0x00 || entry)."""
    return hashlib.sha256(_LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right), the hash of an interior node."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


class Nodes(Protocol):
    """Read access to the stored hashes of complete aligned subtrees.

    Node ``(level, index)`` covers leaves ``[index * 2**level, (index + 1) * 2**level)``.
    Asking for a node that is not stored (not yet complete) is the caller's bug: the
    implementation raises (``KeyError`` for :class:`MemoryNodes`).
    """

    def get(self, level: int, index: int) -> bytes:
        """The hash of node ``(level, index)``."""
        ...

    def get_many(self, keys: Sequence[NodeKey]) -> Mapping[NodeKey, bytes]:
        """The hashes of all ``keys`` (``(level, index)`` pairs), in one round trip."""
        ...


class MemoryNodes:
    """An in-memory :class:`Nodes`, for tests, tools and small logs."""

    __slots__ = ("_nodes",)

    def __init__(self) -> None:
        self._nodes: dict[NodeKey, bytes] = {}

    @classmethod
    def from_entries(cls, entries: Iterable[bytes]) -> MemoryNodes:
        """The nodes of the tree of ``entries`` (raw entries, hashed here), in order."""
        nodes = cls()
        for i, entry in enumerate(entries):
            nodes.put_many(completed_nodes(i, leaf_hash(entry), nodes))
        return nodes

    def get(self, level: int, index: int) -> bytes:
        """The hash of node ``(level, index)``; ``KeyError`` if it is not stored."""
        return self._nodes[(level, index)]

    def get_many(self, keys: Sequence[NodeKey]) -> Mapping[NodeKey, bytes]:
        """The hashes of all ``keys``; ``KeyError`` if one is not stored."""
        return {key: self._nodes[key] for key in keys}

    def put_many(self, nodes: Iterable[tuple[int, int, bytes]]) -> None:
        """Store ``(level, index, hash)`` triples, as :func:`completed_nodes` returns them."""
        for level, index, digest in nodes:
            self._nodes[(level, index)] = digest

    def __len__(self) -> int:
        return len(self._nodes)


# -- building ----------------------------------------------------------------------------


def completed_nodes(index: int, leaf: bytes, nodes: Nodes) -> list[tuple[int, int, bytes]]:
    """The nodes that appending leaf number ``index`` (0-based) completes.

    ``leaf`` is the leaf hash, ``leaf_hash(entry)``. ``nodes`` must hold every node
    completed by leaves ``0 .. index - 1``. The result — ``(level, index, hash)``
    triples, the leaf itself first — is exactly what to store. It reads one left
    sibling per completed ancestor, i.e. the number of trailing 1 bits of ``index``:
    one on average. Raises ``LicentiaError(INVALID_REQUEST)`` for a bad index or a
    leaf hash that is not 32 bytes.
    """
    _check_range(index, 0, MAX_TREE_SIZE - 1, "leaf index")
    if not _is_hash(leaf):
        raise LicentiaError(Reason.INVALID_REQUEST, "a leaf hash is 32 bytes")
    digest = leaf
    out = [(0, index, digest)]
    # Ancestor at level j + 1 is complete when the low j + 1 bits of index are all 1.
    completed = (index ^ (index + 1)).bit_length() - 1
    if completed:
        keys = [(level, (index >> level) - 1) for level in range(completed)]
        siblings = nodes.get_many(keys)
        for level, key in enumerate(keys):
            digest = node_hash(siblings[key], digest)
            out.append((level + 1, index >> (level + 1), digest))
    return out


# -- reading -----------------------------------------------------------------------------


def root(size: int, nodes: Nodes) -> bytes:
    """MTH(D[0:size]): the root of the tree of the first ``size`` entries."""
    _check_range(size, 0, MAX_TREE_SIZE, "tree size")
    return subtree_hash(0, size, nodes)


def subtree_hash(begin: int, end: int, nodes: Nodes) -> bytes:
    """MTH(D[begin:end]), read from the stored complete subtrees.

    Any range RFC 9162's recursion produces qualifies: ``begin`` must be a multiple of
    the largest power of two not above ``end - begin`` (the range then decomposes into
    complete aligned subtrees, at most ``log2`` of them). An empty range hashes to
    :data:`EMPTY_ROOT`. Raises ``LicentiaError(INVALID_REQUEST)`` for other ranges.
    """
    _check_range(end, 0, MAX_TREE_SIZE, "range end")
    _check_range(begin, 0, end, "range begin")
    if begin == end:
        return EMPTY_ROOT
    if begin % (1 << ((end - begin).bit_length() - 1)):
        raise LicentiaError(Reason.INVALID_REQUEST, "range is not made of aligned subtrees")
    keys = _decompose(begin, end)
    return _fold(keys, nodes.get_many(keys))


def inclusion_proof(index: int, size: int, nodes: Nodes) -> list[bytes]:
    """PATH(index, D[0:size]) (RFC 9162 §2.1.3.1), the audit path of entry ``index``.

    Raises ``LicentiaError(INVALID_REQUEST)`` unless ``0 <= index < size``.
    """
    _check_range(size, 1, MAX_TREE_SIZE, "tree size")
    _check_range(index, 0, size - 1, "leaf index")
    parts: list[list[NodeKey]] = []  # from the root down; the proof lists them upwards
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            parts.append(_decompose(lo + k, hi))  # only the first of these can be partial
            hi = lo + k
        else:
            parts.append([_node_key(lo, k)])
            lo += k
    return _fetch(reversed(parts), nodes)


def consistency_proof(old_size: int, new_size: int, nodes: Nodes) -> list[bytes]:
    """PROOF(old_size, D[0:new_size]) (RFC 9162 §2.1.4.1).

    Empty when ``old_size`` is 0 or equal to ``new_size`` (the RFC defines proofs for
    ``0 < old_size < new_size``; the empty tree and a tree itself need none). Raises
    ``LicentiaError(INVALID_REQUEST)`` unless ``0 <= old_size <= new_size``.
    """
    _check_range(new_size, 0, MAX_TREE_SIZE, "new tree size")
    _check_range(old_size, 0, new_size, "old tree size")
    if old_size in (0, new_size):
        return []
    # SUBPROOF(m, D[lo:hi], whole), unrolled: each step keeps the half holding m and
    # records the other half's hash; the innermost result comes first in the proof.
    parts: list[list[NodeKey]] = []
    lo, hi, whole = 0, new_size, True
    while old_size != hi:
        k = _split(hi - lo)
        if old_size - lo <= k:
            parts.append(_decompose(lo + k, hi))  # only the first of these can be partial
            hi = lo + k
        else:
            parts.append([_node_key(lo, k)])
            lo += k
            whole = False
    if not whole:
        # SUBPROOF(m, D[m], false) = {MTH(D[m])}: here [lo, hi) is a complete subtree.
        parts.append([_node_key(lo, hi - lo)])
    return _fetch(reversed(parts), nodes)


# -- verifying ---------------------------------------------------------------------------


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """True only if ``proof`` shows the entry ``leaf`` at ``index`` in the tree ``(size,
    root)``. ``leaf`` is the entry itself, hashed here; never raises.

    The size enters only through the path's shape: a proof can also fit another size
    whose path has the same shape, so take ``size`` and ``root`` from one checkpoint.
    """
    if not isinstance(leaf, bytes):
        return False
    return verify_inclusion_hash(leaf_hash(leaf), index, size, proof, root)


def verify_inclusion_hash(
    leaf_digest: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2: :func:`verify_inclusion` for a 32-byte leaf hash. Never raises."""
    if not (_is_count(size) and _is_count(index) and index < size <= MAX_TREE_SIZE):
        return False
    if not (_is_hash(leaf_digest) and _is_hash(root) and _is_proof(proof)):
        return False
    fn, sn = index, size - 1
    r = leaf_digest
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """True only if ``proof`` shows the tree ``(new_size, new_root)`` extends ``(old_size,
    old_root)`` (RFC 9162 §2.1.4.2). Never raises.

    Beyond the RFC's ``0 < old_size < new_size``: equal sizes need an empty proof and
    equal roots; the empty tree (``old_size`` 0, whose root must be :data:`EMPTY_ROOT`)
    is consistent with every tree, with an empty proof.
    """
    if not (_is_count(old_size) and _is_count(new_size) and old_size <= new_size):
        return False
    if new_size > MAX_TREE_SIZE:
        return False
    if not (_is_hash(old_root) and _is_hash(new_root) and _is_proof(proof)):
        return False
    if old_size == new_size:
        return not proof and old_root == new_root and (old_size > 0 or old_root == EMPTY_ROOT)
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


# -- the definition, for tests -----------------------------------------------------------


def reference_root(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of the entries ``leaves`` by the plain recursive definition (RFC 9162
    §2.1.1), hashing each entry; for tests and audits of small logs."""
    n = len(leaves)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hash(leaves[0])
    k = _split(n)
    return node_hash(reference_root(leaves[:k]), reference_root(leaves[k:]))


# -- helpers -----------------------------------------------------------------------------


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def _node_key(begin: int, width: int) -> NodeKey:
    """The key of the complete aligned subtree ``[begin, begin + width)``."""
    level = width.bit_length() - 1
    return (level, begin >> level)


def _decompose(begin: int, end: int) -> list[NodeKey]:
    """The complete aligned subtrees covering ``[begin, end)``, left to right."""
    keys: list[NodeKey] = []
    n = end - begin
    for level in range(n.bit_length() - 1, -1, -1):
        if n >> level & 1:
            keys.append((level, begin >> level))
            begin += 1 << level
    return keys


def _fold(keys: Sequence[NodeKey], hashes: Mapping[NodeKey, bytes]) -> bytes:
    """MTH of a range from its decomposition: the right-leaning fold of its subtrees."""
    digest = hashes[keys[-1]]
    for key in reversed(keys[:-1]):
        digest = node_hash(hashes[key], digest)
    return digest


def _fetch(parts: Iterable[list[NodeKey]], nodes: Nodes) -> list[bytes]:
    """One hash per part (a decomposed range), with a single read of all their nodes."""
    ordered = list(parts)
    hashes = nodes.get_many([key for part in ordered for key in part])
    return [_fold(part, hashes) for part in ordered]


def _check_range(value: int, low: int, high: int, what: str) -> None:
    if not _is_count(value) or not low <= value <= high:
        raise LicentiaError(Reason.INVALID_REQUEST, f"{what} out of range")


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_BYTES


def _is_proof(proof: object) -> bool:
    if not isinstance(proof, Sequence) or isinstance(proof, (bytes, bytearray, str)):
        return False
    return len(proof) <= MAX_PROOF_LENGTH and all(_is_hash(p) for p in proof)
