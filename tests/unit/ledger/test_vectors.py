"""The standard Certificate Transparency test vectors (RFC 6962 / RFC 9162 trees).

Leaves, node hashes and roots are the published ones from transparency-dev/merkle
``testonly/constants.go`` (LeafInputs, NodeHashes, RootHashes); the inclusion and consistency
proofs are its ``testonly/reference_test.go`` (TestRefInclusionProof, TestRefConsistencyProof)
and ``proof/verify_test.go`` (inclusionProofs, consistencyProofs; there ``leaf`` is 1-based).
The corruption probes follow ``corruptInclusionProof`` / ``corruptConsistencyProof`` there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest

from ledger.errors import ProofError
from ledger.hashing import EMPTY_ROOT, leaf_hash, node_hash
from ledger.proofs import root_from_inclusion_proof, verify_consistency, verify_inclusion
from ledger.tree import (
    Frontier,
    Node,
    consistency_ranges,
    hashes_for_ranges,
    inclusion_ranges,
    root_of,
)

h = bytes.fromhex

LEAVES = [
    h(""),
    h("00"),
    h("10"),
    h("2021"),
    h("3031"),
    h("40414243"),
    h("5051525354555657"),
    h("606162636465666768696a6b6c6d6e6f"),
]

#: RootHashes(): MTH of the first n leaves, n = 0..8.
ROOTS = [
    h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    h("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    h("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
    h("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
    h("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
    h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
]

#: NodeHashes(): [level][index] of every complete subtree of the 8-leaf tree.
NODE_HASHES = [
    [
        h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
        h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
        h("0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7"),
        h("07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7"),
        h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        h("4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658"),
        h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
        h("46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"),
    ],
    [
        h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
        h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
        h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
    ],
    [
        h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
    ],
    [h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")],
]

# (index (0-based), size, proof): TestRefInclusionProof plus proof/verify_test.go.
INCLUSION = [
    (0, 1, []),
    (0, 2, [h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7")]),
    (1, 2, [h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")]),
    (2, 3, [h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (
        1,
        5,
        [
            h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        0,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        5,
        8,
        [
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (
        2,
        3,
        [h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")],
    ),
]

# (size1, size2, proof): TestRefConsistencyProof plus proof/verify_test.go.
CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        2,
        5,
        [
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        6,
        8,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (
        6,
        7,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
]

#: sha256SomeHash of proof/verify_test.go: a well-formed hash no tree here has.
SOME_HASH = h("abacaba000000000000000000000000000000000000000000060061e00123456")


def _lookup() -> Callable[[list[Node]], Mapping[Node, bytes]]:
    nodes = {(level, i): v for level, row in enumerate(NODE_HASHES) for i, v in enumerate(row)}
    return lambda wanted: {n: nodes[n] for n in wanted if n in nodes}


def test_empty_tree_root() -> None:
    assert EMPTY_ROOT == ROOTS[0]
    assert root_of([]) == ROOTS[0]


@pytest.mark.parametrize("size", range(1, 9))
def test_root_of_every_prefix(size: int) -> None:
    assert root_of(leaf_hash(x) for x in LEAVES[:size]) == ROOTS[size]


def test_root_of_all_eight() -> None:
    assert root_of(leaf_hash(x) for x in LEAVES).hex() == (
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    )


def test_leaf_hashes_and_frontier_nodes_match_node_hashes() -> None:
    assert [leaf_hash(x) for x in LEAVES] == NODE_HASHES[0]
    f = Frontier()
    seen: dict[Node, bytes] = {}
    for index, leaf in enumerate(LEAVES):
        for level, closed in enumerate(f.append(leaf_hash(leaf)), start=1):
            seen[(level, index >> level)] = closed
    for level in (1, 2, 3):
        assert [seen[(level, i)] for i in range(len(NODE_HASHES[level]))] == NODE_HASHES[level]
    assert node_hash(NODE_HASHES[2][0], NODE_HASHES[2][1]) == ROOTS[8]


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_inclusion_vector_is_built_and_verifies(index: int, size: int, proof: list[bytes]) -> None:
    built = hashes_for_ranges(inclusion_ranges(index, size), _lookup())
    assert built == proof
    lh = leaf_hash(LEAVES[index])
    assert root_from_inclusion_proof(lh, index, size, proof) == ROOTS[size]
    verify_inclusion(lh, index, size, proof, ROOTS[size])


@pytest.mark.parametrize(("first", "second", "proof"), CONSISTENCY)
def test_consistency_vector_is_built_and_verifies(
    first: int, second: int, proof: list[bytes]
) -> None:
    assert hashes_for_ranges(consistency_ranges(first, second), _lookup()) == proof
    verify_consistency(first, second, proof, ROOTS[first], ROOTS[second])


def _flip(proof: list[bytes], i: int, bit: int) -> list[bytes]:
    out = list(proof)
    out[i] = bytes([out[i][0] ^ bit]) + out[i][1:]
    return out


Probe = tuple[int, int, bytes, bytes, list[bytes]]


def _inclusion_probes(
    index: int, size: int, proof: list[bytes], root: bytes, lh: bytes
) -> list[Probe]:
    probes: list[Probe] = [
        (index - 1, size, root, lh, proof),
        (index + 1, size, root, lh, proof),
        (index ^ 2, size, root, lh, proof),
        (index, size * 2, root, lh, proof),
        (index, size // 2, root, lh, proof),
        (index, size, root, b"WrongLeaf", proof),
        (index, size, EMPTY_ROOT, lh, proof),
        (index, size, SOME_HASH, lh, proof),
        (index, size, root, lh, [*proof, b""]),
        (index, size, root, lh, [*proof, root]),
        (index, size, root, lh, [b"", *proof]),
        (index, size, root, lh, [root, *proof]),
    ]
    probes += [(index, size, root, lh, _flip(proof, i, 8)) for i in range(len(proof))]
    if proof:
        probes.append((index, size, root, lh, proof[:-1]))
    if len(proof) > 1:
        probes.append((index, size, root, lh, [proof[0], SOME_HASH, *proof[1:]]))
    return probes


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_corrupted_inclusion_proofs_fail(index: int, size: int, proof: list[bytes]) -> None:
    lh = leaf_hash(LEAVES[index])
    for i, n, root, leaf, bad in _inclusion_probes(index, size, proof, ROOTS[size], lh):
        with pytest.raises(ProofError):
            verify_inclusion(leaf, i, n, bad, root)


@pytest.mark.parametrize(("first", "second", "proof"), [c for c in CONSISTENCY if c[2]])
def test_corrupted_consistency_proofs_fail(first: int, second: int, proof: list[bytes]) -> None:
    r1, r2 = ROOTS[first], ROOTS[second]
    probes = [
        (first - 1, second, r1, r2, proof),
        (first + 1, second, r1, r2, proof),
        (first ^ 2, second, r1, r2, proof),
        (first, second * 2, r1, r2, proof),
        (first, second // 2, r1, r2, proof),
        (first, second, b"WrongRoot", r2, proof),
        (first, second, r1, b"WrongRoot", proof),
        (first, second, r2, r1, proof),
        (first, second, r1, r2, []),
        (first, second, r1, r2, [*proof, b""]),
        (first, second, r1, r2, [*proof, r1]),
        (first, second, r1, r2, [*proof, r2]),
        (first, second, r1, r2, [b"", *proof]),
        (first, second, r1, r2, [r1, *proof]),
        (first, second, r1, r2, [r2, *proof]),
        (first, second, r1, r2, [proof[0], *proof]),
        (first, second, r1, r2, proof[:-1]),
    ]
    probes += [(first, second, r1, r2, _flip(proof, i, 16)) for i in range(len(proof))]
    for m, n, a, b, bad in probes:
        with pytest.raises(ProofError):
            verify_consistency(m, n, bad, a, b)


# TestVerifyConsistency's fixed cases whose roots are real hashes (our verifier also refuses
# roots that are not 32 bytes, which the Go test's "don't care" roots are not).
@pytest.mark.parametrize(
    ("first", "second", "root1", "root2", "proof", "ok"),
    [
        (0, 0, EMPTY_ROOT, SOME_HASH, [], False),
        (1, 1, EMPTY_ROOT, SOME_HASH, [], False),
        (0, 0, SOME_HASH, SOME_HASH, [], True),
        (0, 1, SOME_HASH, EMPTY_ROOT, [], True),
        (1, 1, EMPTY_ROOT, EMPTY_ROOT, [], True),
        (1, 0, SOME_HASH, EMPTY_ROOT, [], False),
        (2, 1, SOME_HASH, EMPTY_ROOT, [], False),
        (1, 2, SOME_HASH, EMPTY_ROOT, [], False),
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
        (0, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
        (1, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
    ],
)
def test_fixed_consistency_cases(
    first: int, second: int, root1: bytes, root2: bytes, proof: list[bytes], ok: bool
) -> None:
    if ok:
        verify_consistency(first, second, proof, root1, root2)
    else:
        with pytest.raises(ProofError):
            verify_consistency(first, second, proof, root1, root2)


@pytest.mark.parametrize(("index", "size"), [(0, 0), (1, 0), (2, 1)])
def test_inclusion_outside_the_tree_fails(index: int, size: int) -> None:
    with pytest.raises(ProofError):
        verify_inclusion(SOME_HASH, index, size, [], EMPTY_ROOT)


def test_single_entry_tree() -> None:
    lh = leaf_hash(b"data")
    verify_inclusion(lh, 0, 1, [], lh)
    for leaf, root in ((lh, b""), (b"", lh), (b"", b"")):
        with pytest.raises(ProofError):
            verify_inclusion(leaf, 0, 1, [], root)
