"""The agent's "require the quorum" decisions, pure (no I/O, no clock: ``now`` is a value).

With ``hub.require_quorum`` on, an accepted (or duplicate) receipt counts as delivered only
once a checkpoint that meets the agent's own trust policy (c2sp.org/tlog-policy, judged by
:func:`ledger.quorum.evaluate`) covers the record's index and the record's inclusion in that
checkpoint's tree is proven against its root (RFC 9162, 2.1.3.2). Until then the record
waits in the outbox, "awaiting quorum". The shells that fetch notes and proofs and move
records are ``edge/settling.py`` (:class:`edge.settling.QuorumSettler`) and the outbox.

Three questions, one function each:

- :func:`judge_note`: does this signed note meet the policy (signed by the pinned hub key,
  and by the quorum of witnesses)? A :class:`TrustedCheckpoint`, or :class:`Refused` with
  the policy's reasons;
- :func:`newest`: of the trusted checkpoint held and a new one, which to go on with (a
  second tree of the same size under another root is a fork: never adopted);
- :func:`covered` and :func:`prove`: which waiting records this checkpoint covers, and
  whether a proof from the hub shows one of them in its tree.

Proofs are checked in the log's tree (``tree``: SHA-256 or SM3, RFC 9162 2.1.1), which the
pinned hub key tells: :attr:`ledger.checkpoint.NoteVerifier.suite`.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from ledger.checkpoint import NoteVerifier, verify_checkpoint
from ledger.errors import CheckpointError, PolicyError, ProofError
from ledger.hashing import TreeHash
from ledger.policy import TrustPolicy
from ledger.proofs import verify_consistency, verify_inclusion
from ledger.quorum import MAX_FUTURE_S, evaluate
from transport.backoff import backoff_ceiling

__all__ = [
    "Awaiting",
    "Refused",
    "TrustedCheckpoint",
    "covered",
    "judge_note",
    "newest",
    "poll_delay",
    "prove",
]


@dataclass(frozen=True)
class TrustedCheckpoint:
    """A checkpoint note that met the agent's trust policy."""

    origin: str
    size: int
    root_hash: bytes
    note: str
    cosigned: tuple[str, ...]
    """The policy's witnesses whose cosignature verified."""

    def covers(self, index: int) -> bool:
        """Is leaf ``index`` in this checkpoint's tree (indexes 0 .. size-1)?"""
        return 0 <= index < self.size


@dataclass(frozen=True)
class Refused:
    """A note the agent does not trust, and why (the policy's reasons, most basic first)."""

    reasons: tuple[str, ...]

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


@dataclass(frozen=True)
class Awaiting:
    """A record the hub accepted that waits for a quorum checkpoint covering ``index``:
    ``leaf_hash`` is the leaf the receipt named (this record's, checked by the receipt judge)."""

    record_id: str
    seq: int
    index: int
    leaf_hash: bytes
    since: float
    attempts: int = 0


def judge_note(
    note: str,
    policy: TrustPolicy,
    hub_key: NoteVerifier,
    *,
    now: int | None,
    max_future_s: int = MAX_FUTURE_S,
) -> TrustedCheckpoint | Refused:
    """Does signed checkpoint ``note`` meet ``policy``?

    It must verify under the pinned ``hub_key`` (the agent's trust in the hub is not widened
    by a policy), and meet the policy: a log of the policy signed it (the hub key stands for
    the log when the policy names none), no known key's signature fails, and the quorum of
    witnesses cosigned it, none with a timestamp after ``now + max_future_s``.
    """
    try:
        verify_checkpoint(note, hub_key)
    except CheckpointError as exc:
        return Refused((f"not a checkpoint signed by the pinned hub key: {exc}",))
    try:
        report = evaluate(
            policy,
            note,
            now=now,
            max_future_s=max_future_s,
            log_key=None if policy.logs else hub_key,
        )
    except (CheckpointError, PolicyError) as exc:
        return Refused((str(exc),))
    if not report.ok:
        return Refused(tuple(report.reasons()))
    return TrustedCheckpoint(report.origin, report.size, report.root_hash, note, report.cosigned)


def newest(
    held: TrustedCheckpoint | None, candidate: TrustedCheckpoint
) -> tuple[TrustedCheckpoint | None, str | None]:
    """The trusted checkpoint to go on with, and a problem to report (or None).

    The larger tree wins. A candidate of the same size and origin under another root is a
    split view of the log, cosigned by a quorum all the same: the agent keeps what it held,
    settles nothing more on either, and reports it. (A larger tree is not checked for
    consistency with a smaller one here: every record is proven in the tree it settles on.)
    """
    if held is None:
        return candidate, None
    if candidate.origin != held.origin:
        return held, (
            f"a checkpoint of origin {candidate.origin!r} met the policy, but this agent "
            f"follows {held.origin!r}"
        )
    if candidate.size == held.size and not hmac.compare_digest(candidate.root_hash, held.root_hash):
        return held, (
            f"two checkpoints of size {held.size} met the policy with different roots "
            f"({held.root_hash.hex()[:16]}… and {candidate.root_hash.hex()[:16]}…): the log "
            "shows a split view"
        )
    return (candidate if candidate.size > held.size else held), None


def extends(
    held: TrustedCheckpoint, candidate: TrustedCheckpoint, proof: Sequence[bytes], tree: TreeHash
) -> str | None:
    """Why the larger trusted ``candidate`` does not extend the ``held`` one (RFC 9162 2.1.4
    consistency, from the hub's ``proof``, in the log's ``tree``), or None when it does: a
    log that met the quorum twice with histories that diverge shows a split view even at
    different sizes."""
    if held.size == 0:
        return None  # the empty tree is a prefix of every tree
    try:
        verify_consistency(
            held.size, candidate.size, proof, held.root_hash, candidate.root_hash, tree
        )
    except ProofError as exc:
        return (
            f"the checkpoint of size {candidate.size} met the policy but does not extend the"
            f" trusted one of size {held.size} ({exc}): the log shows a split view"
        )
    return None


def covered(
    awaiting: Sequence[Awaiting], checkpoint: TrustedCheckpoint | None
) -> tuple[list[Awaiting], list[Awaiting]]:
    """(the records ``checkpoint`` covers, those it does not), each in the given order."""
    if checkpoint is None:
        return [], list(awaiting)
    inside = [a for a in awaiting if checkpoint.covers(a.index)]
    outside = [a for a in awaiting if not checkpoint.covers(a.index)]
    return inside, outside


def prove(
    record: Awaiting,
    checkpoint: TrustedCheckpoint,
    *,
    leaf_hash: bytes,
    index: int,
    size: int,
    proof: Sequence[bytes],
    tree: TreeHash,
) -> str | None:
    """Does the hub's inclusion proof (its ``leaf_hash`` at ``index`` in the tree of ``size``,
    with ``proof`` hashes) show ``record`` in ``checkpoint``'s tree? None when it does, else
    why not (RFC 9162, 2.1.3.2: the root recomputed from the proof, in the log's ``tree``,
    must be the checkpoint's)."""
    if not checkpoint.covers(record.index):
        return f"checkpoint of size {checkpoint.size} does not cover index {record.index}"
    if index != record.index or size != checkpoint.size:
        return (
            f"the hub answered for index {index} in a tree of {size}, not index "
            f"{record.index} in the tree of {checkpoint.size} asked for"
        )
    if not hmac.compare_digest(leaf_hash, record.leaf_hash):
        return f"the hub's leaf at index {record.index} is not this record's"
    try:
        verify_inclusion(
            record.leaf_hash, record.index, checkpoint.size, list(proof), checkpoint.root_hash, tree
        )
    except ProofError as exc:
        return f"inclusion proof does not verify against the quorum checkpoint: {exc}"
    return None


def poll_delay(failures: int, *, interval: float, maximum: float) -> float:
    """How long to wait before asking the hub for its cosigned checkpoint again: ``interval``
    while it answers, doubling per failure in a row up to ``maximum`` while it does not."""
    if failures <= 0:
        return interval
    return max(
        interval,
        backoff_ceiling(failures, initial=interval, maximum=maximum, multiplier=2.0),
    )
