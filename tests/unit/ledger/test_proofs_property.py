"""Every inclusion and consistency proof for random trees up to a few thousand leaves verifies,
and a changed proof element, index, size or root does not.

Proofs come from ``ledger.tree`` over a store-like node map (what ``LedgerWriter`` persists:
each leaf hash and each node ``Frontier.append`` closes) and from a real ``LedgerWriter``
file; they are checked against an independent recursive RFC 9162 reference (MTH, PATH, PROOF
straight from the definitions in sections 2.1.1, 2.1.3.1 and 2.1.4.1), for each suite's hash
(SHA-256, and SM3 in its place on an ``sm2-sm3`` log).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.errors import ProofError
from ledger.hashing import SHA256_TREE, SM3_TREE, TreeHash
from ledger.proofs import root_from_inclusion_proof, verify_consistency, verify_inclusion
from ledger.store import LedgerReader, LedgerWriter, NewEntry
from ledger.suite import SUITES, suite_named
from ledger.tree import (
    Frontier,
    Node,
    consistency_ranges,
    hashes_for_ranges,
    inclusion_ranges,
    largest_power_of_two_below,
    range_nodes,
)

MAX_SIZE = 3000


class Model:
    """One suite's tree over MAX_SIZE leaves: the store-like node map and the reference."""

    def __init__(self, tree: TreeHash) -> None:
        self.tree = tree
        self.leaf_hashes = [tree.leaf(i.to_bytes(4, "big")) for i in range(MAX_SIZE)]
        self.nodes: dict[Node, bytes] = {}
        f = Frontier(tree=tree)
        for index, lh in enumerate(self.leaf_hashes):
            self.nodes[(0, index)] = lh
            for level, h in enumerate(f.append(lh), start=1):
                self.nodes[(level, index >> level)] = h
        self.mth = cache(self._mth)

    def lookup(self, wanted: list[Node]) -> Mapping[Node, bytes]:
        return {n: self.nodes[n] for n in wanted if n in self.nodes}

    def proof(self, ranges: list[tuple[int, int]]) -> list[bytes]:
        return hashes_for_ranges(ranges, self.lookup, self.tree)

    # -- the reference: RFC 9162 2.1 definitions, recursive, memoised over [start, end) ------
    def _mth(self, start: int, end: int) -> bytes:
        if end - start == 1:
            return self.leaf_hashes[start]
        k = largest_power_of_two_below(end - start)
        return self.tree.node(self.mth(start, start + k), self.mth(start + k, end))

    def ref_path(self, m: int, start: int, end: int) -> list[bytes]:
        if end - start == 1:
            return []
        k = largest_power_of_two_below(end - start)
        if m < k:
            return [*self.ref_path(m, start, start + k), self.mth(start + k, end)]
        return [*self.ref_path(m - k, start + k, end), self.mth(start, start + k)]

    def ref_subproof(self, m: int, start: int, end: int, complete: bool) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if complete else [self.mth(start, end)]
        k = largest_power_of_two_below(n)
        if m <= k:
            return [*self.ref_subproof(m, start, start + k, complete), self.mth(start + k, end)]
        return [*self.ref_subproof(m - k, start + k, end, False), self.mth(start, start + k)]

    def root(self, size: int) -> bytes:
        return self.mth(0, size)


MODELS = {suite.name: Model(suite.tree) for suite in SUITES.values()}


@pytest.fixture(scope="module", params=list(MODELS))
def model(request: pytest.FixtureRequest) -> Model:
    """Each suite's tree in turn: SHA-256 (RFC 9162) and SM3 in its place (sm2-sm3)."""
    return MODELS[request.param]


sizes = st.integers(min_value=1, max_value=MAX_SIZE)


@st.composite
def index_and_size(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(sizes)
    return draw(st.integers(min_value=0, max_value=size - 1)), size


@st.composite
def two_sizes(draw: st.DrawFn) -> tuple[int, int]:
    second = draw(sizes)
    return draw(st.integers(min_value=1, max_value=second)), second


def test_tree_root_matches_reference_for_edge_sizes(model: Model) -> None:
    for size in (1, 2, 3, 4, 5, 7, 8, 9, 1023, 1024, 1025, MAX_SIZE):
        assert model.proof([(0, size)]) == [model.root(size)]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(index_and_size())
def test_every_inclusion_proof_verifies(model: Model, case: tuple[int, int]) -> None:
    index, size = case
    proof = model.proof(inclusion_ranges(index, size))
    assert proof == model.ref_path(index, 0, size)
    verify_inclusion(model.leaf_hashes[index], index, size, proof, model.root(size), model.tree)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(two_sizes())
def test_every_consistency_proof_verifies(model: Model, case: tuple[int, int]) -> None:
    first, second = case
    proof = model.proof(consistency_ranges(first, second))
    assert proof == (model.ref_subproof(first, 0, second, True) if first < second else [])
    verify_consistency(first, second, proof, model.root(first), model.root(second), model.tree)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(index_and_size(), st.data())
def test_changed_inclusion_proof_fails(
    model: Model, case: tuple[int, int], data: st.DataObject
) -> None:
    tree = model.tree
    index, size = case
    lh = model.leaf_hashes[index]
    proof = model.proof(inclusion_ranges(index, size))
    good_root = model.root(size)
    if proof:
        i = data.draw(st.integers(0, len(proof) - 1), label="element")
        byte = data.draw(st.integers(0, 31), label="byte")
        bad = list(proof)
        bad[i] = bad[i][:byte] + bytes([bad[i][byte] ^ 1]) + bad[i][byte + 1 :]
        with pytest.raises(ProofError):
            verify_inclusion(lh, index, size, bad, good_root, tree)
        with pytest.raises(ProofError):
            verify_inclusion(lh, index, size, proof[:-1], good_root, tree)
    with pytest.raises(ProofError):
        verify_inclusion(lh, index, size, [*proof, good_root], good_root, tree)
    # Another index (same leaf hash, as in transparency-dev's probes).
    other = data.draw(st.integers(0, MAX_SIZE).filter(lambda j: j != index), label="index")
    with pytest.raises(ProofError):
        verify_inclusion(lh, other, size, proof, good_root, tree)
    # Another size, against the root of the tree of that size.
    new_size = data.draw(st.integers(1, MAX_SIZE).filter(lambda n: n != size), label="size")
    with pytest.raises(ProofError):
        verify_inclusion(lh, index, new_size, proof, model.root(new_size), tree)
    # Another root.
    with pytest.raises(ProofError):
        verify_inclusion(lh, index, size, proof, bytes([good_root[0] ^ 0x80]) + good_root[1:], tree)
    # Another leaf.
    with pytest.raises(ProofError):
        verify_inclusion(tree.leaf(b"not in the log"), index, size, proof, good_root, tree)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(two_sizes(), st.data())
def test_changed_consistency_proof_fails(
    model: Model, case: tuple[int, int], data: st.DataObject
) -> None:
    tree, root = model.tree, model.root
    first, second = case
    proof = model.proof(consistency_ranges(first, second))
    r1, r2 = root(first), root(second)
    if proof:
        i = data.draw(st.integers(0, len(proof) - 1), label="element")
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 0x10]) + bad[i][1:]
        with pytest.raises(ProofError):
            verify_consistency(first, second, bad, r1, r2, tree)
        with pytest.raises(ProofError):
            verify_consistency(first, second, proof[:-1], r1, r2, tree)
    with pytest.raises(ProofError):
        verify_consistency(first, second, [*proof, r2], r1, r2, tree)
    # Other sizes, each with the true root of the tree of that size.
    m = data.draw(st.integers(1, MAX_SIZE).filter(lambda x: x != first), label="first")
    n = data.draw(st.integers(1, MAX_SIZE).filter(lambda x: x != second), label="second")
    if m <= second:
        with pytest.raises(ProofError):
            verify_consistency(m, second, proof, root(m), r2, tree)
    if first <= n:
        with pytest.raises(ProofError):
            verify_consistency(first, n, proof, r1, root(n), tree)
    flipped = bytes([r1[5] ^ 4])
    with pytest.raises(ProofError):
        verify_consistency(first, second, proof, r1[:5] + flipped + r1[6:], r2, tree)
    if first != second:  # equal sizes need equal roots, checked by the first-root change above
        with pytest.raises(ProofError):
            verify_consistency(first, second, proof, r1, r2[:-1] + bytes([r2[-1] ^ 1]), tree)


def test_root_from_inclusion_proof_is_the_reference_root(model: Model) -> None:
    for size in (1, 6, 100, MAX_SIZE):
        for index in {0, size // 2, size - 1}:
            proof = model.ref_path(index, 0, size)
            got = root_from_inclusion_proof(
                model.leaf_hashes[index], index, size, proof, model.tree
            )
            assert got == model.root(size)


def test_the_two_suites_trees_differ() -> None:
    """SM3 really is in SHA-256's place: no root of one suite is the other's."""
    sha, sm3 = MODELS["ed25519-sha256"], MODELS["sm2-sm3"]
    for size in (1, 2, 3, 1024, MAX_SIZE):
        assert sha.root(size) != sm3.root(size)
    assert SHA256_TREE.empty_root != SM3_TREE.empty_root


# -- through a real ledger, on each store -----------------------------------------------------
STORE_SIZE = 2100


@pytest.fixture(scope="module")
def reader(module_store_url: str, model: Model) -> Iterator[LedgerReader]:
    name = _suite(model)
    # One ledger per suite in the module's store: a log's suite is fixed at its creation.
    if module_store_url.startswith("postgresql"):
        path = f"{module_store_url}?schema=proofs_{name.replace('-', '_')}"
    else:
        path = module_store_url.replace("ledger.db", f"{name}.db")
    writer = LedgerWriter(path, origin="swiftchain.test/proofs", suite=suite_named(name))
    leaves = [i.to_bytes(4, "big") for i in range(STORE_SIZE)]
    # Uneven batches, so that batch boundaries fall everywhere in the tree.
    start = 0
    for step in (1, 2, 3, 250, 1000, 7, 837):
        writer.append([NewEntry("access", leaf) for leaf in leaves[start : start + step]])
        start += step
    assert start == STORE_SIZE
    assert writer.current_root() == model.root(STORE_SIZE)
    writer.close()
    with LedgerReader(path) as r:
        assert r.suite.tree is model.tree
        yield r


def _suite(model: Model) -> str:
    return next(name for name, m in MODELS.items() if m is model)


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(index_and_size().filter(lambda c: c[1] <= STORE_SIZE), two_sizes())
def test_store_proofs_verify(
    reader: LedgerReader, model: Model, incl: tuple[int, int], cons: tuple[int, int]
) -> None:
    index, size = incl
    tree = model.tree
    assert reader.root(size) == model.root(size)
    proof = reader.inclusion_proof(index, size)
    assert proof == model.ref_path(index, 0, size)
    verify_inclusion(model.leaf_hashes[index], index, size, proof, reader.root(size), tree)
    first, second = cons
    if second <= STORE_SIZE:
        cproof = reader.consistency_proof(first, second)
        verify_consistency(first, second, cproof, reader.root(first), reader.root(second), tree)


def test_store_node_hashes_match_the_tree(reader: LedgerReader, model: Model) -> None:
    wanted = [n for n in model.nodes if ((n[1] + 1) << n[0]) <= STORE_SIZE]
    assert reader.nodes(wanted) == {n: model.nodes[n] for n in wanted}
    assert range_nodes(0, STORE_SIZE) == [(11, 0), (5, 64), (4, 130), (2, 524)]
