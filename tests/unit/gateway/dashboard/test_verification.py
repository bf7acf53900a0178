"""The in-hub incremental verifier: new entries only, against the signed checkpoint."""

from __future__ import annotations

import pytest

from gateway.dashboard.verification import IncrementalVerifier
from ledger.checkpoint import Checkpoint, NoteSigner, sign_checkpoint
from ledger.hashing import leaf_hash
from ledger.keys import generate_key
from ledger.queries import TailEntry
from ledger.tree import root_of

ORIGIN = "test.swiftchain/ledger"


@pytest.fixture
def signer() -> NoteSigner:
    return NoteSigner(ORIGIN, generate_key())


def rows(start: int, end: int) -> list[TailEntry]:
    out = []
    for i in range(start, end):
        leaf = f'{{"n":{i}}}'.encode()
        out.append(TailEntry(i, "record", leaf, leaf_hash(leaf), 0.0))
    return out


def note(signer: NoteSigner, size: int, origin: str = ORIGIN) -> str:
    root = root_of(r.leaf_hash for r in rows(0, size))
    return sign_checkpoint(Checkpoint(origin, size, root), signer)


def test_verifies_in_steps_up_to_each_checkpoint(signer: NoteSigner) -> None:
    v = IncrementalVerifier(signer.verifier, ORIGIN)
    v.feed(rows(0, 5))
    v.check(note(signer, 5))
    assert v.ok and v.verified_size == 5
    v.feed(rows(5, 13))
    assert v.size == 13 and v.verified_size == 5
    v.check(note(signer, 13))
    assert v.ok and v.verified_size == 13 and v.checkpoints == 2


def test_a_changed_leaf_is_caught_at_its_index(signer: NoteSigner) -> None:
    v = IncrementalVerifier(signer.verifier, ORIGIN)
    batch = rows(0, 6)
    batch[3] = TailEntry(3, "record", b'{"n":"changed"}', batch[3].leaf_hash, 0.0)
    v.feed(batch)
    assert v.failure is not None and v.failure.index == 3
    assert v.size == 3
    v.feed(rows(6, 8))  # nothing more is checked after a failure
    assert v.size == 3


def test_a_leaf_rewritten_with_its_hash_breaks_the_root(signer: NoteSigner) -> None:
    v = IncrementalVerifier(signer.verifier, ORIGIN)
    batch = rows(0, 4)
    forged = b'{"n":"forged"}'
    batch[2] = TailEntry(2, "record", forged, leaf_hash(forged), 0.0)
    v.feed(batch)
    assert v.ok
    v.check(note(signer, 4))
    assert v.failure is not None and v.failure.what.startswith("root differs")
    assert v.verified_size == 0


def test_a_missing_entry_is_named(signer: NoteSigner) -> None:
    v = IncrementalVerifier(signer.verifier, ORIGIN)
    v.feed(rows(0, 2) + rows(3, 4))
    assert v.failure is not None and v.failure.index == 2 and "missing" in v.failure.what


def test_a_checkpoint_by_another_key_or_log_fails(signer: NoteSigner) -> None:
    stranger = NoteSigner(ORIGIN, generate_key())
    v = IncrementalVerifier(signer.verifier, ORIGIN)
    v.feed(rows(0, 3))
    v.check(note(stranger, 3))
    assert v.failure is not None and "signature" in v.failure.what

    other = IncrementalVerifier(signer.verifier, ORIGIN)
    other.feed(rows(0, 3))
    other.check(note(NoteSigner("other.log/x", signer.private_key), 3, origin="other.log/x"))
    assert other.failure is not None
