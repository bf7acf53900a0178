"""The witness's decision on an add-checkpoint request, as a pure function of the request
and what the witness knows of the log (c2sp.org/tlog-witness, "add-checkpoint"). Each
refusal is the ``Rejection`` whose HTTP status the spec prescribes; acceptance returns the
checkpoint to cosign. Persisting it (atomically, a compare-and-swap on the size the decision
was made against) is ``witness.store``'s part.

A log's tree hash is its crypto suite's, which its verifier key tells
(:attr:`ledger.checkpoint.NoteVerifier.suite`): SHA-256 for an Ed25519 key, SM3 (GM/T 0004)
for an SM2 one, in RFC 9162's construction either way (:mod:`ledger.suite`)."""

from __future__ import annotations

import base64
import hmac
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature

from ledger.checkpoint import SIG_PREFIX, Checkpoint, NoteVerifier
from ledger.cosignature import note_body
from ledger.errors import ProofError
from ledger.proofs import verify_consistency
from ledger.suite import Suite

from .errors import BadRequest, Inconsistent, LogConfigError, NotTrusted, SizeConflict, UnknownLog
from .request import AddCheckpoint


@dataclass(frozen=True)
class LogView:
    """A witnessed log as the witness knows it: its trusted keys and the size and root of the
    latest checkpoint cosigned for it (0 and the empty root before the first). Its keys are
    of one crypto suite, the log's."""

    origin: str
    keys: tuple[NoteVerifier, ...]
    size: int
    root: bytes

    def __post_init__(self) -> None:
        if len({key.suite.name for key in self.keys}) > 1:
            raise LogConfigError(
                f"the keys of {self.origin!r} are of several crypto suites; a log has one"
            )

    @property
    def suite(self) -> Suite:
        """The log's crypto suite, its keys' (its tree's hash, its empty root)."""
        if not self.keys:
            raise LogConfigError(f"the log {self.origin!r} has no trusted key")
        return self.keys[0].suite


def check_signatures(request: AddCheckpoint, keys: tuple[NoteVerifier, ...]) -> tuple[str, ...]:
    """The signature lines of trusted keys on the checkpoint, each verified; NotTrusted when
    there is none, or when a line with a trusted key's name and key ID fails to verify (such
    a note is malformed, c2sp.org/signed-note). Lines by unknown keys are ignored."""
    body = note_body(request.signed.note)
    verified: list[str] = []
    for name, key_hash, signature in request.signed.signatures:
        for key in keys:
            if name != key.name or key_hash != key.key_hash:
                continue
            try:
                key.public_key.verify(signature, body)
            except InvalidSignature:
                raise NotTrusted(f"the signature by trusted key {name} does not verify") from None
            line = f"{SIG_PREFIX}{name} {base64.b64encode(key_hash + signature).decode()}\n"
            if line not in verified:
                verified.append(line)
    if not verified:
        origin = request.signed.checkpoint.origin
        raise NotTrusted(f"the checkpoint carries no signature by a trusted key of {origin}")
    return tuple(verified)


@dataclass(frozen=True)
class Accepted:
    checkpoint: Checkpoint
    body: bytes
    """The checkpoint's note text, exactly as signed."""
    log_signatures: tuple[str, ...]
    """The log's signature lines that verified, to serve with the cosignature."""


def decide(request: AddCheckpoint, log: LogView | None) -> Accepted:
    """The checkpoint to cosign, or the Rejection the spec prescribes for ``request``.

    ``log`` is None when the witness does not witness the checkpoint's origin."""
    checkpoint = request.signed.checkpoint
    if log is None:
        raise UnknownLog(f"this witness does not witness the log {checkpoint.origin!r}")
    if log.origin != checkpoint.origin:
        raise UnknownLog(f"the checkpoint is for {checkpoint.origin!r}, not {log.origin!r}")
    log_signatures = check_signatures(request, log.keys)
    accepted = Accepted(checkpoint, note_body(request.signed.note), log_signatures)
    old, size, root = request.old_size, checkpoint.size, checkpoint.root_hash
    if old > size:
        raise BadRequest(f"old size {old} is larger than the checkpoint size {size}")
    if old != log.size:
        raise SizeConflict(log.size)
    tree = log.suite.tree
    if size == 0 and not hmac.compare_digest(root, tree.empty_root):
        # RFC 9162 2.1.1: the empty tree's hash is the hash of the empty string (the suite's).
        raise Inconsistent("a checkpoint of size 0 must have the empty tree's root")
    if old == 0:
        if request.proof:
            raise Inconsistent("a proof from size 0 must be empty")
        return accepted
    if old == size:
        if not hmac.compare_digest(root, log.root):
            raise Inconsistent(
                f"size {size} was cosigned with another root hash: a split view of the log"
            )
        if request.proof:
            raise Inconsistent("a proof between equal sizes must be empty")
        return accepted
    try:
        verify_consistency(old, size, list(request.proof), log.root, root, tree)
    except ProofError as exc:
        raise Inconsistent(f"the consistency proof from {old} to {size} fails: {exc}") from None
    return accepted
