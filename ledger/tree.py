"""RFC 9162 Merkle tree arithmetic over stored complete subtrees.

A *node* ``(level, index)`` is the root of the complete subtree over leaves
``[index << level, (index + 1) << level)``; level 0 is a leaf hash. The store keeps every
node once it is complete, so any tree head or proof is assembled from O(log n) stored
hashes and nothing is ever rehashed from the leaves.

The proof shapes follow RFC 9162 section 2.1.3.1 (PATH) and 2.1.4.1 (SUBPROOF): each proof
element is MTH of one range of leaves, and every such range is either a complete subtree or
the right edge ``[start, size)`` of the tree, which splits into complete subtrees by the
binary digits of its length.

The hash is a log's suite's (:class:`ledger.hashing.TreeHash`): SHA-256 by default, SM3 on
an ``sm2-sm3`` log.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from .errors import ProofError
from .hashing import HASH_SIZE, NODE_PREFIX, SHA256_TREE, TreeHash

Node = tuple[int, int]
"""(level, index) of a complete subtree."""

Range = tuple[int, int]
"""[start, end) of leaf indexes."""


def _check_ints(*values: object) -> None:
    # bool is an int subclass; True is not an index.
    if any(type(v) is not int for v in values):
        raise ProofError(f"tree sizes and indexes are integers, not {values!r}")


def largest_power_of_two_below(n: int) -> int:
    """k such that k < n <= 2k (RFC 9162 section 2.1.1); n must be > 1."""
    return 1 << ((n - 1).bit_length() - 1)


def range_nodes(start: int, end: int) -> list[Node]:
    """The complete subtrees whose MTH make up MTH(D[start:end]), left to right.

    Valid for the ranges RFC 9162 recursion produces: ``start`` is a multiple of a power of
    two at least as large as the range, so the pieces shrink from left to right.
    """
    _check_ints(start, end)
    if not 0 <= start < end:
        raise ProofError(f"empty or negative range [{start}, {end})")
    nodes: list[Node] = []
    while start < end:
        size = end - start
        level = size.bit_length() - 1
        if start & ((1 << level) - 1):
            raise ProofError(f"range [{start}, {end}) is not aligned")
        nodes.append((level, start >> level))
        start += 1 << level
    return nodes


def fold_right(hashes: Sequence[bytes], tree: TreeHash = SHA256_TREE) -> bytes:
    """MTH of a right-edge range from its complete subtrees (largest first)."""
    if not hashes:
        return tree.empty_root
    acc = hashes[-1]
    node = tree.node
    for h in reversed(hashes[:-1]):
        acc = node(h, acc)
    return acc


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The leaf ranges whose MTH form PATH(index, D[0:size]), in proof order (leaf upwards)."""
    _check_ints(index, size)
    if not 0 <= index < size:
        raise ProofError(f"index {index} is outside a tree of size {size}")
    out: list[Range] = []
    start, end = 0, size
    while end - start > 1:
        k = largest_power_of_two_below(end - start)
        if index < start + k:
            out.append((start + k, end))
            end = start + k
        else:
            out.append((start, start + k))
            start += k
    out.reverse()
    return out


def consistency_ranges(first: int, second: int) -> list[Range]:
    """The leaf ranges whose MTH form PROOF(first, D[0:second]) (RFC 9162 2.1.4.1)."""
    _check_ints(first, second)
    if not 0 < first <= second:
        raise ProofError(f"no consistency proof from size {first} to size {second}")
    if first == second:
        return []
    out: list[Range] = []
    start, end, m, complete = 0, second, first, True
    # SUBPROOF(m, D[start:end], complete), unrolled; elements are appended deepest last,
    # so the list is reversed at the end to match the RFC's order.
    while True:
        n = end - start
        if m == n:
            if not complete:
                out.append((start, end))
            break
        k = largest_power_of_two_below(n)
        if m <= k:
            out.append((start + k, end))
            end = start + k
        else:
            out.append((start, start + k))
            start += k
            m -= k
            complete = False
    out.reverse()
    return out


def nodes_for_ranges(ranges: Iterable[Range]) -> list[list[Node]]:
    return [range_nodes(s, e) for s, e in ranges]


def hashes_for_ranges(
    ranges: Sequence[Range],
    lookup: Callable[[list[Node]], Mapping[Node, bytes]],
    tree: TreeHash = SHA256_TREE,
) -> list[bytes]:
    """MTH of each range, fetching every needed node in one ``lookup`` call."""
    per_range = nodes_for_ranges(ranges)
    wanted = sorted({n for nodes in per_range for n in nodes})
    found = lookup(wanted)
    try:
        return [fold_right([found[n] for n in nodes], tree) for nodes in per_range]
    except KeyError as missing:
        raise ProofError(f"node {missing.args[0]} is not stored") from None


@dataclass
class Frontier:
    """The right edge of a growing tree: the roots of its complete subtrees, largest first.

    ``append`` returns every node the new leaf completes, so a store can persist them; the
    root of the whole tree is the fold of the frontier.
    """

    size: int = 0
    hashes: list[bytes] = field(default_factory=list)
    tree: TreeHash = SHA256_TREE

    @classmethod
    def from_nodes(
        cls,
        size: int,
        lookup: Callable[[list[Node]], Mapping[Node, bytes]],
        tree: TreeHash = SHA256_TREE,
    ) -> Frontier:
        if size == 0:
            return cls(tree=tree)
        nodes = range_nodes(0, size)
        found = lookup(nodes)
        return cls(size, [found[n] for n in nodes], tree)

    def append(self, leaf_hash: bytes) -> list[bytes]:
        """Add one leaf; return the hashes of the subtrees it completes, level 1 upwards.

        The node at level L in the result is ``(L, index >> L)`` for the new leaf's index.
        """
        index = self.size
        closed = []
        acc = leaf_hash
        hashes = self.hashes
        node = self.tree.node
        # Each trailing 1 bit of the old size is a complete sibling to merge with.
        while index & 1:
            acc = node(hashes.pop(), acc)
            closed.append(acc)
            index >>= 1
        hashes.append(acc)
        self.size += 1
        return closed

    def extend(self, leaf_hashes: Iterable[bytes]) -> list[bytes]:
        """``append`` for many leaves: for each, the hashes it closes, concatenated (level 1
        first; empty for a leaf at an even index). One call per batch keeps the store's
        append path free of per-leaf method calls. On error the frontier is unchanged."""
        out = []
        hashes = list(self.hashes)
        pop, push = hashes.pop, hashes.append
        digest = self.tree.digest
        index = self.size
        try:
            for acc in leaf_hashes:
                if type(acc) is not bytes or len(acc) != HASH_SIZE:
                    raise TypeError
                closed = b""
                n = index
                # Each trailing 1 bit of the index is a complete sibling to merge with.
                while n & 1:
                    acc = digest(NODE_PREFIX + pop() + acc)
                    closed += acc
                    n >>= 1
                push(acc)
                out.append(closed)
                index += 1
        except TypeError:
            raise ProofError(f"leaf hashes are {HASH_SIZE} bytes each") from None
        self.hashes, self.size = hashes, index
        return out

    def root(self) -> bytes:
        return fold_right(self.hashes, self.tree)

    def copy(self) -> Frontier:
        return Frontier(self.size, list(self.hashes), self.tree)


def root_of(leaf_hashes: Iterable[bytes], tree: TreeHash = SHA256_TREE) -> bytes:
    """MTH of a whole list of leaf hashes (reference implementation for tests and tools)."""
    f = Frontier(tree=tree)
    for h in leaf_hashes:
        f.append(h)
    return f.root()
