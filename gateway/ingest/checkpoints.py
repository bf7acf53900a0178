"""Signed checkpoints (C2SP tlog-checkpoint) of the hub's log.

The sequencer signs one right after every committed batch (one signature per batch, Ed25519
or SM2 as the hub key is: ``NoteSigner`` takes either),
so every ``accepted`` receipt carries a checkpoint that covers its index. The newest is kept
in memory and served; ``persist_due`` hands it to the store at most once per interval, which
keeps the extra fsyncs off the ingest path while a checkpoint is still written at least every
second while the log grows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ledger.checkpoint import Checkpoint, NoteSigner, sign_checkpoint


@dataclass(frozen=True)
class SignedHead:
    size: int
    root: bytes
    note: str


class Checkpointer:
    def __init__(self, origin: str, signer: NoteSigner, persisted_size: int = -1) -> None:
        self.origin = origin
        self.signer = signer
        self.latest: SignedHead | None = None
        self.persisted_size = persisted_size

    def sign(self, size: int, root: bytes) -> SignedHead:
        """Sign the tree head of ``size`` entries and make it the latest."""
        if self.latest is not None and self.latest.size == size:
            return self.latest
        note = sign_checkpoint(Checkpoint(self.origin, size, root), self.signer)
        head = SignedHead(size, root, note)
        if self.latest is None or size > self.latest.size:
            self.latest = head
        return head

    def adopt(self, head: SignedHead) -> None:
        """Take a checkpoint already in the store (at startup)."""
        self.latest = head
        self.persisted_size = head.size

    def persist_due(self) -> SignedHead | None:
        """The latest head if the store does not have it yet."""
        if self.latest is not None and self.latest.size > self.persisted_size:
            return self.latest
        return None

    def persisted(self, head: SignedHead) -> None:
        self.persisted_size = max(self.persisted_size, head.size)


class StoreNotice:
    """Says once that the latest checkpoint cannot be stored (a full disk), and once that
    it is stored again; the housekeeping loops of the hub and its sequencer retry it every
    interval."""

    def __init__(self, log: logging.Logger) -> None:
        self.log = log
        self.failing: str | None = None

    def failed(self, exc: Exception) -> None:
        if self.failing is None:
            self.log.warning("cannot store the latest checkpoint: %s; retrying", exc)
        self.failing = str(exc)

    def stored(self) -> None:
        if self.failing is not None:
            self.log.info("the latest checkpoint is stored again")
        self.failing = None
