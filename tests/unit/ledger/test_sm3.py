"""SM3 (GM/T 0004-2012) and the SM3 tree of the ``sm2-sm3`` suite (RFC 9162 section 2.1.1
with SM3 in SHA-256's place).

The digests are GM/T 0004-2012 Appendix A's two examples; the empty tree's root, SM3(""),
is checked against two implementations independent of ledger.hashing's (cryptography's
OpenSSL): gmalglib's C and Tongsuo's, before the value is asserted.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import gmalglib.sm3
import pytest
from tongsuopy.crypto import hashes as tongsuo_hashes  # type: ignore[import-untyped]

from ledger.errors import ProofError
from ledger.hashing import (
    EMPTY_ROOT,
    SHA256_TREE,
    SM3_TREE,
    TreeHash,
    leaf_hash,
    node_hash,
    sha256_digest,
    sm3_digest,
)
from tests.unit.ledger.test_vectors import LEAVES, ROOTS

h = bytes.fromhex

#: GM/T 0004-2012 Appendix A.1 and A.2.
SM3_VECTORS = [
    (b"abc", h("66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0")),
    (b"abcd" * 16, h("debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732")),
]
SM3_EMPTY = h("1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b")


def gmalglib_sm3(data: bytes) -> bytes:
    return bytes(gmalglib.sm3.SM3(data).digest())


def tongsuo_sm3(data: bytes) -> bytes:
    ctx = tongsuo_hashes.Hash(tongsuo_hashes.SM3())
    ctx.update(data)
    return bytes(ctx.finalize())


IMPLEMENTATIONS: dict[str, Callable[[bytes], bytes]] = {
    "ledger (cryptography)": sm3_digest,
    "SM3_TREE.digest": SM3_TREE.digest,
    "gmalglib": gmalglib_sm3,
    "tongsuopy": tongsuo_sm3,
}


@pytest.mark.parametrize("name", IMPLEMENTATIONS)
@pytest.mark.parametrize(("message", "digest"), SM3_VECTORS)
def test_gmt_0004_appendix_a(name: str, message: bytes, digest: bytes) -> None:
    assert IMPLEMENTATIONS[name](message) == digest


def test_empty_tree_root_is_sm3_of_nothing() -> None:
    # Two implementations that share no code with cryptography's agree on SM3("") first.
    assert gmalglib_sm3(b"") == tongsuo_sm3(b"") == SM3_EMPTY
    assert sm3_digest(b"") == SM3_EMPTY
    assert SM3_TREE.empty_root == SM3_EMPTY
    assert SHA256_TREE.empty_root == EMPTY_ROOT


def test_sm3_agrees_across_libraries_on_random_inputs() -> None:
    rng = random.Random(20120321)  # GM/T 0004's date of issue: any fixed seed would do
    # Every length around SM3's 64-byte block and its 8-byte length field, then some more.
    lengths = [*range(130), 447, 448, 511, 512, 4095, 4096, 65536]
    for n in lengths:
        data = rng.randbytes(n)
        digest = sm3_digest(data)
        assert len(digest) == 32
        assert gmalglib_sm3(data) == digest, n
        assert tongsuo_sm3(data) == digest, n


def test_sm3_is_not_sha256() -> None:
    for message, digest in SM3_VECTORS:
        assert sha256_digest(message) != digest


@pytest.mark.parametrize(
    ("tree", "digest"),
    [(SHA256_TREE, sha256_digest), (SM3_TREE, gmalglib_sm3)],
    ids=["sha256", "sm3"],
)
def test_leaf_and_node_are_domain_separated(
    tree: TreeHash, digest: Callable[[bytes], bytes]
) -> None:
    for data in (b"", b"\x00", b"abc", bytes(range(256))):
        assert tree.leaf(data) == digest(b"\x00" + data)
    left, right = digest(b"left"), digest(b"right")
    assert tree.node(left, right) == digest(b"\x01" + left + right)
    assert tree.node(right, left) != tree.node(left, right)
    # A leaf never hashes like a node over the same bytes (the second preimage guard).
    assert tree.leaf(left + right) != tree.node(left, right)


def test_sha256_tree_is_the_module_functions() -> None:
    for data in LEAVES:
        assert SHA256_TREE.leaf(data) == leaf_hash(data)
    a, b = leaf_hash(b"a"), leaf_hash(b"b")
    assert SHA256_TREE.node(a, b) == node_hash(a, b)


def reference_mth(leaves: Sequence[bytes], digest: Callable[[bytes], bytes]) -> bytes:
    """RFC 9162 section 2.1.1's MTH, spelled out, over any hash."""
    n = len(leaves)
    if n == 0:
        return digest(b"")
    if n == 1:
        return digest(b"\x00" + leaves[0])
    k = 1
    while k * 2 < n:
        k *= 2
    return digest(b"\x01" + reference_mth(leaves[:k], digest) + reference_mth(leaves[k:], digest))


def tree_mth(leaves: Sequence[bytes], tree: TreeHash) -> bytes:
    """The same recursion through a TreeHash's own leaf, node and empty root."""
    n = len(leaves)
    if n == 0:
        return tree.empty_root
    if n == 1:
        return tree.leaf(leaves[0])
    k = 1
    while k * 2 < n:
        k *= 2
    return tree.node(tree_mth(leaves[:k], tree), tree_mth(leaves[k:], tree))


def test_reference_mth_reproduces_the_published_sha256_roots() -> None:
    for n, root in enumerate(ROOTS):
        assert reference_mth(LEAVES[:n], sha256_digest) == root
        assert tree_mth(LEAVES[:n], SHA256_TREE) == root


def test_sm3_tree_roots_of_the_ct_leaves() -> None:
    sm3_roots = [tree_mth(LEAVES[:n], SM3_TREE) for n in range(len(LEAVES) + 1)]
    for n, root in enumerate(sm3_roots):
        assert root == reference_mth(LEAVES[:n], gmalglib_sm3)
        assert root == reference_mth(LEAVES[:n], tongsuo_sm3)
        assert root != ROOTS[n]
    assert len(set(sm3_roots)) == len(sm3_roots)
    # Three leaves by hand: MTH = node(node(leaf0, leaf1), leaf2).
    l0, l1, l2 = (gmalglib_sm3(b"\x00" + d) for d in LEAVES[:3])
    assert sm3_roots[3] == gmalglib_sm3(b"\x01" + gmalglib_sm3(b"\x01" + l0 + l1) + l2)


@pytest.mark.parametrize("tree", [SHA256_TREE, SM3_TREE], ids=["sha256", "sm3"])
def test_non_bytes_are_proof_errors(tree: TreeHash) -> None:
    for bad in ("text", 5, None):
        with pytest.raises(ProofError):
            tree.leaf(bad)  # type: ignore[arg-type]
        with pytest.raises(ProofError):
            tree.node(bytes(32), bad)  # type: ignore[arg-type]
