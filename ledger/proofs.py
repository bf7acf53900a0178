"""Pure verification of RFC 9162 inclusion and consistency proofs.

The algorithms are those of RFC 9162 sections 2.1.3.2 and 2.1.4.2, so a proof this module
accepts is one any RFC 6962/9162 verifier accepts, and vice versa. ``tree`` is the log's
suite's hash (:class:`ledger.hashing.TreeHash`, SHA-256 unless told).
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from .errors import ProofError
from .hashing import HASH_SIZE, SHA256_TREE, TreeHash

#: Tree sizes and indexes are uint64 in RFC 9162; anything else is not a proof parameter.
MAX_TREE_SIZE = 2**64 - 1


def _check_int(value: object, what: str) -> None:
    # bool is an int subclass; True is not an index.
    if type(value) is not int or not 0 <= value <= MAX_TREE_SIZE:
        raise ProofError(f"{what} must be an integer in 0..2^64-1, not {value!r}")


def _check_proof(proof: object) -> None:
    if isinstance(proof, str | bytes) or not isinstance(proof, Sequence):
        raise ProofError("a proof is a sequence of 32-byte hashes")


def _check_hashes(proof: Sequence[bytes]) -> None:
    for i, h in enumerate(proof):
        if not isinstance(h, bytes) or len(h) != HASH_SIZE:
            raise ProofError(f"proof element {i} is not a {HASH_SIZE}-byte hash")


def root_from_inclusion_proof(
    leaf_hash: bytes,
    index: int,
    size: int,
    proof: Sequence[bytes],
    tree: TreeHash = SHA256_TREE,
) -> bytes:
    """The root that ``proof`` implies for ``leaf_hash`` at ``index`` (RFC 9162 2.1.3.2)."""
    _check_int(index, "index")
    _check_int(size, "size")
    _check_proof(proof)
    if not 0 <= index < size:
        raise ProofError(f"index {index} is outside a tree of size {size}")
    _check_hashes([leaf_hash, *proof])
    fn, sn = index, size - 1
    node_hash = tree.node
    r = leaf_hash
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is too short")
    return r


def verify_inclusion(
    leaf_hash: bytes,
    index: int,
    size: int,
    proof: Sequence[bytes],
    root: bytes,
    tree: TreeHash = SHA256_TREE,
) -> None:
    """Raise ProofError unless ``proof`` shows ``leaf_hash`` at ``index`` under ``root``."""
    computed = root_from_inclusion_proof(leaf_hash, index, size, proof, tree)
    _check_hashes([root])
    if not hmac.compare_digest(computed, root):
        raise ProofError("inclusion proof does not lead to the expected root")


def verify_consistency(
    first: int,
    second: int,
    proof: Sequence[bytes],
    first_root: bytes,
    second_root: bytes,
    tree: TreeHash = SHA256_TREE,
) -> None:
    """Raise ProofError unless ``proof`` shows tree ``first`` is a prefix of ``second``."""
    _check_int(first, "first size")
    _check_int(second, "second size")
    _check_proof(proof)
    if not 0 <= first <= second:
        raise ProofError(f"sizes {first} and {second} are not in order")
    _check_hashes([first_root, second_root, *proof])
    if first == second:
        if proof:
            raise ProofError("a proof between equal sizes must be empty")
        if not hmac.compare_digest(first_root, second_root):
            raise ProofError("equal sizes with different roots")
        return
    if first == 0:
        if proof:
            raise ProofError("a proof from the empty tree must be empty")
        return
    if not proof:
        raise ProofError("consistency proof is empty")
    path = list(proof)
    # RFC 9162 2.1.4.2 step 2: if first is an exact power of two, prepend first_root.
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    node_hash = tree.node
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is too short")
    if not hmac.compare_digest(fr, first_root):
        raise ProofError("consistency proof does not lead to the first root")
    if not hmac.compare_digest(sr, second_root):
        raise ProofError("consistency proof does not lead to the second root")
