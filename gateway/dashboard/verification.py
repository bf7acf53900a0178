"""The hub re-verifying its own log as it grows, over new entries only.

Each leaf's stored hash is recomputed from its exact bytes (RFC 9162 2.1.1, in the hash of
the log's suite, which its verifier key tells: SHA-256, or SM3 on ``sm2-sm3``), the leaves are
folded into a ``Frontier`` of our own (never the writer's), and whenever the frontier reaches
the size of a signed checkpoint, the note's signature is checked with the hub's verifier key
and its root compared with ours. "Verified up to N" means: the first N entries hash to the
root that a valid checkpoint signs. The whole-file verifier (``swiftchain ledger verify``)
stays the authority; this is the cheap live signal the dashboard turns red.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ledger.checkpoint import NoteVerifier, verify_checkpoint
from ledger.errors import LedgerError
from ledger.queries import TailEntry
from ledger.tree import Frontier


@dataclass(frozen=True)
class Failure:
    index: int
    what: str


@dataclass
class IncrementalVerifier:
    verifier: NoteVerifier
    origin: str
    #: The leaves hashed so far, in the tree hash of the log's suite (the verifier key's).
    frontier: Frontier = field(init=False)
    verified_size: int = 0
    """Entries covered by the last checkpoint whose signature and root matched."""
    checkpoints: int = 0
    """Checkpoints checked so far."""
    failure: Failure | None = None

    def __post_init__(self) -> None:
        self.frontier = Frontier(tree=self.verifier.suite.tree)

    @property
    def size(self) -> int:
        """Leaves hashed so far (the next index expected)."""
        return self.frontier.size

    @property
    def ok(self) -> bool:
        return self.failure is None

    def feed(self, rows: Sequence[TailEntry]) -> None:
        """Recompute the leaf hashes of the next entries; stop at the first that differs."""
        if self.failure is not None:
            return
        for row in rows:
            if row.index != self.frontier.size:
                self._fail(self.frontier.size, f"entry {self.frontier.size} is missing")
                return
            computed = self.frontier.tree.leaf(bytes(row.leaf))
            if computed != bytes(row.leaf_hash):
                self._fail(row.index, "stored leaf hash differs from the hash of the leaf bytes")
                return
            self.frontier.append(computed)

    def check(self, note: str) -> None:
        """Check a signed checkpoint of exactly ``size`` entries against our own root."""
        if self.failure is not None:
            return
        try:
            checkpoint = verify_checkpoint(note, self.verifier)
        except LedgerError as exc:
            self._fail(self.frontier.size, f"checkpoint signature: {exc}")
            return
        if checkpoint.origin != self.origin:
            self._fail(checkpoint.size, f"checkpoint is of {checkpoint.origin!r}")
        elif checkpoint.size != self.frontier.size:
            raise ValueError(f"checkpoint of size {checkpoint.size} checked at {self.size}")
        elif checkpoint.root_hash != self.frontier.root():
            self._fail(checkpoint.size, "root differs from the signed checkpoint")
        else:
            self.verified_size = checkpoint.size
            self.checkpoints += 1

    def _fail(self, index: int, what: str) -> None:
        self.failure = Failure(index, what)
