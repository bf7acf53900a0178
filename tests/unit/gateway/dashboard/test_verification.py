"""The in-hub incremental verifier: new entries only, against the signed checkpoint, on each
crypto suite (its tree hash is the verifier key's)."""

from __future__ import annotations

import pytest

from gateway.dashboard.verification import IncrementalVerifier
from ledger.checkpoint import Checkpoint, NoteSigner, sign_checkpoint
from ledger.hashing import SHA256_TREE, SM3_TREE, TreeHash
from ledger.keys import generate_key
from ledger.queries import TailEntry
from ledger.suite import Suite
from ledger.tree import root_of

ORIGIN = "test.swiftchain/ledger"


@pytest.fixture
def signer(suite: Suite) -> NoteSigner:
    return NoteSigner(ORIGIN, generate_key(suite))


@pytest.fixture
def tree(signer: NoteSigner) -> TreeHash:
    """The tree hash of the test's log: its signer's suite's."""
    return signer.verifier.suite.tree


def rows(start: int, end: int, tree: TreeHash) -> list[TailEntry]:
    out = []
    for i in range(start, end):
        leaf = f'{{"n":{i}}}'.encode()
        out.append(TailEntry(i, "record", leaf, tree.leaf(leaf), 0.0))
    return out


def note(signer: NoteSigner, size: int, origin: str = ORIGIN) -> str:
    tree = signer.verifier.suite.tree
    root = root_of((r.leaf_hash for r in rows(0, size, tree)), tree)
    return sign_checkpoint(Checkpoint(origin, size, root), signer)


def test_verifies_in_steps_up_to_each_checkpoint(signer: NoteSigner, tree: TreeHash) -> None:
    v = IncrementalVerifier(signer.verifier, ORIGIN)
    v.feed(rows(0, 5, tree))
    v.check(note(signer, 5))
    assert v.ok and v.verified_size == 5
    v.feed(rows(5, 13, tree))
    assert v.size == 13 and v.verified_size == 5
    v.check(note(signer, 13))
    assert v.ok and v.verified_size == 13 and v.checkpoints == 2


def test_a_changed_leaf_is_caught_at_its_index(signer: NoteSigner, tree: TreeHash) -> None:
    v = IncrementalVerifier(signer.verifier, ORIGIN)
    batch = rows(0, 6, tree)
    batch[3] = TailEntry(3, "record", b'{"n":"changed"}', batch[3].leaf_hash, 0.0)
    v.feed(batch)
    assert v.failure is not None and v.failure.index == 3
    assert v.size == 3
    v.feed(rows(6, 8, tree))  # nothing more is checked after a failure
    assert v.size == 3


def test_a_leaf_rewritten_with_its_hash_breaks_the_root(signer: NoteSigner, tree: TreeHash) -> None:
    v = IncrementalVerifier(signer.verifier, ORIGIN)
    batch = rows(0, 4, tree)
    forged = b'{"n":"forged"}'
    batch[2] = TailEntry(2, "record", forged, tree.leaf(forged), 0.0)
    v.feed(batch)
    assert v.ok
    v.check(note(signer, 4))
    assert v.failure is not None and v.failure.what.startswith("root differs")
    assert v.verified_size == 0


def test_a_missing_entry_is_named(signer: NoteSigner, tree: TreeHash) -> None:
    v = IncrementalVerifier(signer.verifier, ORIGIN)
    v.feed(rows(0, 2, tree) + rows(3, 4, tree))
    assert v.failure is not None and v.failure.index == 2 and "missing" in v.failure.what


def test_a_checkpoint_by_another_key_or_log_fails(signer: NoteSigner, tree: TreeHash) -> None:
    stranger = NoteSigner(ORIGIN, generate_key(signer.verifier.suite))
    v = IncrementalVerifier(signer.verifier, ORIGIN)
    v.feed(rows(0, 3, tree))
    v.check(note(stranger, 3))
    assert v.failure is not None and "signature" in v.failure.what

    other = IncrementalVerifier(signer.verifier, ORIGIN)
    other.feed(rows(0, 3, tree))
    other.check(note(NoteSigner("other.log/x", signer.private_key), 3, origin="other.log/x"))
    assert other.failure is not None


def test_leaves_hashed_in_another_suites_tree_fail(signer: NoteSigner, tree: TreeHash) -> None:
    other = SHA256_TREE if tree is SM3_TREE else SM3_TREE
    v = IncrementalVerifier(signer.verifier, ORIGIN)
    v.feed(rows(0, 3, other))
    assert v.failure is not None and v.failure.index == 0 and "leaf hash" in v.failure.what
