"""A small log with witnesses, for the agent's quorum tests: a hub key, three witnesses of
two member organisations, a tree of leaves, and the notes, cosignatures, policies and
inclusion proofs built from them (``ledger`` only: the same bytes a real hub and real
witnesses make), in either crypto suite (:func:`log_world`)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from ledger.checkpoint import Checkpoint, NoteSigner, NoteVerifier, sign_checkpoint
from ledger.cosignature import CosignerSigner, attach_cosignatures, cosign
from ledger.hashing import TreeHash
from ledger.keys import generate_key
from ledger.policy import TrustPolicy, parse_policy
from ledger.suite import DEFAULT_SUITE, Suite
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
    #: The log's suite: its tree hashes the leaves and nodes (the hub's key says it).
    suite: Suite = DEFAULT_SUITE
    #: Notes and cosignatures made, by what they sign: SM2 signatures are randomised
    #: (GM/T 0003.2), and the tests compare notes made twice, as Ed25519 ones are.
    _made: dict[tuple[object, ...], str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def hub_key(self) -> NoteVerifier:
        return self.hub.verifier

    @property
    def tree(self) -> TreeHash:
        return self.suite.tree

    def grow(self, n: int) -> None:
        start = len(self.leaves)
        self.leaves.extend(self.tree.leaf(f"record {i}".encode()) for i in range(start, start + n))

    def root(self, size: int) -> bytes:
        return root_of(self.leaves[:size], self.tree)

    def note(
        self, size: int, *, signer: NoteSigner | None = None, root: bytes | None = None
    ) -> str:
        """The hub's signed checkpoint of the first ``size`` leaves."""
        checkpoint = Checkpoint(ORIGIN, size, root if root is not None else self.root(size))
        signer = signer or self.hub
        made = (checkpoint, signer.name, signer.verifier.key_hash)
        if made not in self._made:
            self._made[made] = sign_checkpoint(checkpoint, signer)
        return self._made[made]

    def cosigned(
        self, size: int, by: Sequence[str], *, timestamp: int = NOW, note: str | None = None
    ) -> str:
        """``note`` (default: the hub's of ``size``) with the cosignatures of witnesses ``by``."""
        note = note if note is not None else self.note(size)
        lines = [self._cosign(note, name, timestamp) for name in by]
        return attach_cosignatures(note, lines)

    def _cosign(self, note: str, name: str, timestamp: int) -> str:
        made = (note, name, timestamp)
        if made not in self._made:
            self._made[made] = cosign(note, self.witnesses[name], timestamp)
        return self._made[made]

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
        return [root_of(self.leaves[s:e], self.tree) for s, e in inclusion_ranges(index, size)]

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        ranges = consistency_ranges(first, second)
        return [root_of(self.leaves[s:e], self.tree) for s, e in ranges]


def log_world(suite: Suite = DEFAULT_SUITE) -> LogWorld:
    """A log of ``suite``: its hub's key and its witnesses' of that suite too."""
    return LogWorld(
        hub=NoteSigner(ORIGIN, generate_key(suite)),
        witnesses={
            name: CosignerSigner(f"witness.{name}.example", generate_key(suite))
            for name in WITNESSES
        },
        suite=suite,
    )


def digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()
