"""Witness test helpers: a small in-memory log (RFC 9162 reference definitions, signed
checkpoints) for the pure decisions, and the add-checkpoint body a log sends."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.alliance.submission import request_body as format_add_checkpoint
from ledger.checkpoint import Checkpoint, NoteSigner, sign_checkpoint
from ledger.hashing import EMPTY_ROOT, leaf_hash, node_hash
from ledger.keys import Ed25519PrivateKey, generate_key
from ledger.tree import largest_power_of_two_below

ORIGIN = "swiftchain.test/log"


@dataclass
class MemoryLog:
    """A log of ``size`` synthetic leaves; ``fork`` gives the same origin and key a different
    history from a given size on (a split view)."""

    origin: str = ORIGIN
    key: Ed25519PrivateKey = field(default_factory=generate_key)
    leaves: list[bytes] = field(default_factory=list)
    salt: bytes = b"main"

    @property
    def signer(self) -> NoteSigner:
        return NoteSigner(self.origin, self.key)

    def grow(self, n: int) -> MemoryLog:
        start = len(self.leaves)
        self.leaves += [leaf_hash(self.salt + b"%d" % i) for i in range(start, start + n)]
        return self

    def fork(self, at: int, salt: bytes = b"fork") -> MemoryLog:
        return MemoryLog(self.origin, self.key, self.leaves[:at], salt)

    def _mth(self, start: int, end: int) -> bytes:
        if end - start == 1:
            return self.leaves[start]
        k = largest_power_of_two_below(end - start)
        return node_hash(self._mth(start, start + k), self._mth(start + k, end))

    def root(self, size: int | None = None) -> bytes:
        size = len(self.leaves) if size is None else size
        return EMPTY_ROOT if size == 0 else self._mth(0, size)

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
        size = len(self.leaves) if size is None else size
        return sign_checkpoint(
            Checkpoint(self.origin, size, self.root(size)), signer or self.signer
        )

    def request(self, old: int, size: int | None = None) -> bytes:
        """The add-checkpoint body from ``old`` to ``size`` (default: all leaves)."""
        size = len(self.leaves) if size is None else size
        return format_add_checkpoint(old, self.proof(old, size), self.note(size))
