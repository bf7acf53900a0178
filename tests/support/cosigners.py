"""Witness keys and cosigned checkpoints for tests, made with ledger.cosignature (the same
code a witness runs), before the hub collects cosignatures itself."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ledger.checkpoint import NoteSigner
from ledger.cosignature import CosignerSigner, attach_cosignatures, cosign
from ledger.keys import generate_key

#: A fixed cosignature time (2023-11-14), so reports are the same on every run.
T = 1_700_000_000


def witness(name: str) -> CosignerSigner:
    return CosignerSigner(name, generate_key())


def cosigned(note: str, signers: Iterable[CosignerSigner], timestamp: int = T) -> str:
    """``note`` with a cosignature/v1 line by each of ``signers``."""
    lines = [cosign(note, s, timestamp) for s in signers]
    return attach_cosignatures(note, lines) if lines else note


def policy_text(
    log: NoteSigner | None,
    witnesses: Mapping[str, CosignerSigner],
    *rules: str,
    quorum: str,
) -> str:
    """A tlog-policy text: the log, ``witness <name> <vkey>`` lines, then ``rules`` (group
    lines) and the quorum."""
    lines = [] if log is None else [f"log {log.verifier.encode()}"]
    lines += [f"witness {name} {s.verifier.encode()}" for name, s in witnesses.items()]
    return "\n".join([*lines, *rules, f"quorum {quorum}"]) + "\n"
