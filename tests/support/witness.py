"""Witness test helpers: a small in-memory log (RFC 9162 reference definitions, signed
checkpoints) for the pure decisions, and the add-checkpoint body a log sends. The log's hash
is its key's suite's (SHA-256 for an Ed25519 key, SM3 for an SM2 one)."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.alliance.submission import request_body as format_add_checkpoint
from ledger.checkpoint import Checkpoint, NoteSigner, sign_checkpoint
from ledger.hashing import TreeHash
from ledger.keys import PrivateKey, generate_key
from ledger.suite import Suite, suite_of
from ledger.tree import largest_power_of_two_below

ORIGIN = "swiftchain.test/log"


@dataclass
class MemoryLog:
    """A log of ``size`` synthetic leaves; ``fork`` gives the same origin and key a different
    history from a given size on (a split view)."""

    origin: str = ORIGIN
    key: PrivateKey = field(default_factory=generate_key)
    leaves: list[bytes] = field(default_factory=list)
    salt: bytes = b"main"
    notes: dict[Checkpoint, str] = field(default_factory=dict, repr=False)

    @classmethod
    def of_suite(cls, suite: Suite) -> MemoryLog:
        return cls(key=generate_key(suite))

    @property
    def suite(self) -> Suite:
        return suite_of(self.key)

    @property
    def tree(self) -> TreeHash:
        return self.suite.tree

    @property
    def signer(self) -> NoteSigner:
        return NoteSigner(self.origin, self.key)

    def grow(self, n: int) -> MemoryLog:
        start = len(self.leaves)
        self.leaves += [self.tree.leaf(self.salt + b"%d" % i) for i in range(start, start + n)]
        return self

    def fork(self, at: int, salt: bytes = b"fork") -> MemoryLog:
        return MemoryLog(self.origin, self.key, self.leaves[:at], salt)

    def _mth(self, start: int, end: int) -> bytes:
        if end - start == 1:
            return self.leaves[start]
        k = largest_power_of_two_below(end - start)
        return self.tree.node(self._mth(start, start + k), self._mth(start + k, end))

    def root(self, size: int | None = None) -> bytes:
        size = len(self.leaves) if size is None else size
        return self.tree.empty_root if size == 0 else self._mth(0, size)

    def _subproof(self, m: int, start: int, end: int, complete: bool) -> list[bytes]:
        # RFC 9162 2.1.4.1 SUBPROOF.
        n = end - start
        if m == n:
            return [] if complete else [self._mth(start, end)]
        k = largest_power_of_two_below(n)
        if m <= k:
            return [*self._subproof(m, start, start + k, complete), self._mth(start + k, end)]
        return [*self._subproof(m - k, start + k, end, False), self._mth(start, start + k)]

    def proof(self, first: int, second: int | None = None) -> list[bytes]:
        second = len(self.leaves) if second is None else second
        if first == 0 or first == second:
            return []
        return self._subproof(first, 0, second, True)

    def note(self, size: int | None = None, *, signer: NoteSigner | None = None) -> str:
        """The log's signed checkpoint of ``size``: one note per tree head, as a log serves
        it (an SM2 signature is randomised, so signing again would give another note)."""
        size = len(self.leaves) if size is None else size
        checkpoint = Checkpoint(self.origin, size, self.root(size))
        if signer is not None:
            return sign_checkpoint(checkpoint, signer)
        if checkpoint not in self.notes:
            self.notes[checkpoint] = sign_checkpoint(checkpoint, self.signer)
        return self.notes[checkpoint]

    def request(self, old: int, size: int | None = None) -> bytes:
        """The add-checkpoint body from ``old`` to ``size`` (default: all leaves)."""
        size = len(self.leaves) if size is None else size
        return format_add_checkpoint(old, self.proof(old, size), self.note(size))
