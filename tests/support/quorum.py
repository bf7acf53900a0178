"""A small log with witnesses, for the agent's quorum tests: a hub key, three witnesses of
two member organisations, a tree of leaves, and the notes, cosignatures, policies and
inclusion proofs built from them (``ledger`` only: the same bytes a real hub and real
witnesses make)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from ledger.checkpoint import Checkpoint, NoteSigner, NoteVerifier, sign_checkpoint
from ledger.cosignature import CosignerSigner, attach_cosignatures, cosign
from ledger.hashing import leaf_hash
from ledger.keys import generate_key
from ledger.policy import TrustPolicy, parse_policy
from ledger.tree import consistency_ranges, inclusion_ranges, root_of

ORIGIN = "test.swiftchain/ledger"
#: Witness name -> the member organisation running it.
WITNESSES = {"w1": "org-a", "w2": "org-b", "w3": "org-b"}
NOW = 1_800_000_000


@dataclass
class LogWorld:
    hub: NoteSigner = field(default_factory=lambda: NoteSigner(ORIGIN, generate_key()))
    witnesses: dict[str, CosignerSigner] = field(
        default_factory=lambda: {
            name: CosignerSigner(f"witness.{name}.example", generate_key()) for name in WITNESSES
        }
    )
    leaves: list[bytes] = field(default_factory=list)

    @property
    def hub_key(self) -> NoteVerifier:
        return self.hub.verifier

    def grow(self, n: int) -> None:
        start = len(self.leaves)
        self.leaves.extend(leaf_hash(f"record {i}".encode()) for i in range(start, start + n))

    def root(self, size: int) -> bytes:
        return root_of(self.leaves[:size])

    def note(
        self, size: int, *, signer: NoteSigner | None = None, root: bytes | None = None
    ) -> str:
        """The hub's signed checkpoint of the first ``size`` leaves."""
        checkpoint = Checkpoint(ORIGIN, size, root if root is not None else self.root(size))
        return sign_checkpoint(checkpoint, signer or self.hub)

    def cosigned(
        self, size: int, by: Sequence[str], *, timestamp: int = NOW, note: str | None = None
    ) -> str:
        """``note`` (default: the hub's of ``size``) with the cosignatures of witnesses ``by``."""
        note = note if note is not None else self.note(size)
        lines = [cosign(note, self.witnesses[name], timestamp) for name in by]
        return attach_cosignatures(note, lines)

    def policy_text(self, quorum: str = "two-orgs", *, log: bool = True) -> str:
        """w1 (org-a), w2 and w3 (org-b); groups org-a (any w1), org-b (any w2 w3),
        two-orgs (2 of org-a org-b); ``quorum`` any of those, a witness or none."""
        lines = [f"log {self.hub_key.encode()}"] if log else []
        lines += [f"witness {n} {s.verifier.encode()}" for n, s in self.witnesses.items()]
        lines += [
            "group org-a any w1",
            "group org-b any w2 w3",
            "group two-orgs 2 org-a org-b",
            f"quorum {quorum}",
        ]
        return "\n".join(lines) + "\n"

    def policy(self, quorum: str = "two-orgs", *, log: bool = True) -> TrustPolicy:
        return parse_policy(self.policy_text(quorum, log=log))

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        return [root_of(self.leaves[s:e]) for s, e in inclusion_ranges(index, size)]

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        return [root_of(self.leaves[s:e]) for s, e in consistency_ranges(first, second)]


def digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()
