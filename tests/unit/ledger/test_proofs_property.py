"""Every inclusion and consistency proof for random trees up to a few thousand leaves verifies,
and a changed proof element, index, size or root does not.

Proofs come from ``ledger.tree`` over a store-like node map (what ``LedgerWriter`` persists:
each leaf hash and each node ``Frontier.append`` closes) and from a real ``LedgerWriter``
file; they are checked against an independent recursive RFC 9162 reference (MTH, PATH, PROOF
straight from the definitions in sections 2.1.1, 2.1.3.1 and 2.1.4.1).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.errors import ProofError
from ledger.hashing import leaf_hash, node_hash
from ledger.proofs import root_from_inclusion_proof, verify_consistency, verify_inclusion
from ledger.store import LedgerReader, LedgerWriter, NewEntry
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
LEAF_HASHES = [leaf_hash(i.to_bytes(4, "big")) for i in range(MAX_SIZE)]


def _node_map() -> dict[Node, bytes]:
    nodes: dict[Node, bytes] = {}
    f = Frontier()
    for index, lh in enumerate(LEAF_HASHES):
        nodes[(0, index)] = lh
        for level, h in enumerate(f.append(lh), start=1):
            nodes[(level, index >> level)] = h
    return nodes


NODES = _node_map()


def lookup(wanted: list[Node]) -> Mapping[Node, bytes]:
    return {n: NODES[n] for n in wanted if n in NODES}


# -- the reference: RFC 9162 2.1 definitions, recursive, memoised over [start, end) ----------
@cache
def mth(start: int, end: int) -> bytes:
    if end - start == 1:
        return LEAF_HASHES[start]
    k = largest_power_of_two_below(end - start)
    return node_hash(mth(start, start + k), mth(start + k, end))


def ref_path(m: int, start: int, end: int) -> list[bytes]:
    if end - start == 1:
        return []
    k = largest_power_of_two_below(end - start)
    if m < k:
        return [*ref_path(m, start, start + k), mth(start + k, end)]
    return [*ref_path(m - k, start + k, end), mth(start, start + k)]


def ref_subproof(m: int, start: int, end: int, complete: bool) -> list[bytes]:
    n = end - start
    if m == n:
        return [] if complete else [mth(start, end)]
    k = largest_power_of_two_below(n)
    if m <= k:
        return [*ref_subproof(m, start, start + k, complete), mth(start + k, end)]
    return [*ref_subproof(m - k, start + k, end, False), mth(start, start + k)]


def root(size: int) -> bytes:
    return mth(0, size)


sizes = st.integers(min_value=1, max_value=MAX_SIZE)


@st.composite
def index_and_size(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(sizes)
    return draw(st.integers(min_value=0, max_value=size - 1)), size


@st.composite
def two_sizes(draw: st.DrawFn) -> tuple[int, int]:
    second = draw(sizes)
    return draw(st.integers(min_value=1, max_value=second)), second


def test_tree_root_matches_reference_for_edge_sizes() -> None:
    for size in (1, 2, 3, 4, 5, 7, 8, 9, 1023, 1024, 1025, MAX_SIZE):
        assert hashes_for_ranges([(0, size)], lookup) == [root(size)]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(index_and_size())
def test_every_inclusion_proof_verifies(case: tuple[int, int]) -> None:
    index, size = case
    proof = hashes_for_ranges(inclusion_ranges(index, size), lookup)
    assert proof == ref_path(index, 0, size)
    verify_inclusion(LEAF_HASHES[index], index, size, proof, root(size))


@settings(max_examples=300, deadline=None, derandomize=True)
@given(two_sizes())
def test_every_consistency_proof_verifies(case: tuple[int, int]) -> None:
    first, second = case
    proof = hashes_for_ranges(consistency_ranges(first, second), lookup)
    assert proof == (ref_subproof(first, 0, second, True) if first < second else [])
    verify_consistency(first, second, proof, root(first), root(second))


@settings(max_examples=200, deadline=None, derandomize=True)
@given(index_and_size(), st.data())
def test_changed_inclusion_proof_fails(case: tuple[int, int], data: st.DataObject) -> None:
    index, size = case
    lh = LEAF_HASHES[index]
    proof = hashes_for_ranges(inclusion_ranges(index, size), lookup)
    good_root = root(size)
    if proof:
        i = data.draw(st.integers(0, len(proof) - 1), label="element")
        byte = data.draw(st.integers(0, 31), label="byte")
        bad = list(proof)
        bad[i] = bad[i][:byte] + bytes([bad[i][byte] ^ 1]) + bad[i][byte + 1 :]
        with pytest.raises(ProofError):
            verify_inclusion(lh, index, size, bad, good_root)
        with pytest.raises(ProofError):
            verify_inclusion(lh, index, size, proof[:-1], good_root)
    with pytest.raises(ProofError):
        verify_inclusion(lh, index, size, [*proof, good_root], good_root)
    # Another index (same leaf hash, as in transparency-dev's probes).
    other = data.draw(st.integers(0, MAX_SIZE).filter(lambda j: j != index), label="index")
    with pytest.raises(ProofError):
        verify_inclusion(lh, other, size, proof, good_root)
    # Another size, against the root of the tree of that size.
    new_size = data.draw(st.integers(1, MAX_SIZE).filter(lambda n: n != size), label="size")
    with pytest.raises(ProofError):
        verify_inclusion(lh, index, new_size, proof, root(new_size))
    # Another root.
    with pytest.raises(ProofError):
        verify_inclusion(lh, index, size, proof, bytes([good_root[0] ^ 0x80]) + good_root[1:])
    # Another leaf.
    with pytest.raises(ProofError):
        verify_inclusion(leaf_hash(b"not in the log"), index, size, proof, good_root)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(two_sizes(), st.data())
def test_changed_consistency_proof_fails(case: tuple[int, int], data: st.DataObject) -> None:
    first, second = case
    proof = hashes_for_ranges(consistency_ranges(first, second), lookup)
    r1, r2 = root(first), root(second)
    if proof:
        i = data.draw(st.integers(0, len(proof) - 1), label="element")
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 0x10]) + bad[i][1:]
        with pytest.raises(ProofError):
            verify_consistency(first, second, bad, r1, r2)
        with pytest.raises(ProofError):
            verify_consistency(first, second, proof[:-1], r1, r2)
    with pytest.raises(ProofError):
        verify_consistency(first, second, [*proof, r2], r1, r2)
    # Other sizes, each with the true root of the tree of that size.
    m = data.draw(st.integers(1, MAX_SIZE).filter(lambda x: x != first), label="first")
    n = data.draw(st.integers(1, MAX_SIZE).filter(lambda x: x != second), label="second")
    if m <= second:
        with pytest.raises(ProofError):
            verify_consistency(m, second, proof, root(m), r2)
    if first <= n:
        with pytest.raises(ProofError):
            verify_consistency(first, n, proof, r1, root(n))
    flipped = bytes([r1[5] ^ 4])
    with pytest.raises(ProofError):
        verify_consistency(first, second, proof, r1[:5] + flipped + r1[6:], r2)
    if first != second:  # equal sizes need equal roots, checked by the first-root change above
        with pytest.raises(ProofError):
            verify_consistency(first, second, proof, r1, r2[:-1] + bytes([r2[-1] ^ 1]))


def test_root_from_inclusion_proof_is_the_reference_root() -> None:
    for size in (1, 6, 100, MAX_SIZE):
        for index in {0, size // 2, size - 1}:
            proof = ref_path(index, 0, size)
            assert root_from_inclusion_proof(LEAF_HASHES[index], index, size, proof) == root(size)


# -- through a real ledger, on each store -----------------------------------------------------
STORE_SIZE = 2100


@pytest.fixture(scope="module")
def reader(module_store_url: str) -> Iterator[LedgerReader]:
    path = module_store_url
    writer = LedgerWriter(path, origin="swiftchain.test/proofs")
    leaves = [i.to_bytes(4, "big") for i in range(STORE_SIZE)]
    # Uneven batches, so that batch boundaries fall everywhere in the tree.
    start = 0
    for step in (1, 2, 3, 250, 1000, 7, 837):
        writer.append([NewEntry("access", leaf) for leaf in leaves[start : start + step]])
        start += step
    assert start == STORE_SIZE
    assert writer.current_root() == root(STORE_SIZE)
    writer.close()
    with LedgerReader(path) as r:
        yield r


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(index_and_size().filter(lambda c: c[1] <= STORE_SIZE), two_sizes())
def test_store_proofs_verify(
    reader: LedgerReader, incl: tuple[int, int], cons: tuple[int, int]
) -> None:
    index, size = incl
    assert reader.root(size) == root(size)
    proof = reader.inclusion_proof(index, size)
    assert proof == ref_path(index, 0, size)
    verify_inclusion(LEAF_HASHES[index], index, size, proof, reader.root(size))
    first, second = cons
    if second <= STORE_SIZE:
        cproof = reader.consistency_proof(first, second)
        verify_consistency(first, second, cproof, reader.root(first), reader.root(second))


def test_store_node_hashes_match_the_tree(reader: LedgerReader) -> None:
    wanted = [n for n in NODES if ((n[1] + 1) << n[0]) <= STORE_SIZE]
    assert reader.nodes(wanted) == {n: NODES[n] for n in wanted}
    assert range_nodes(0, STORE_SIZE) == [(11, 0), (5, 64), (4, 130), (2, 524)]
