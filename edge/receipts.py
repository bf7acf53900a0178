"""Receipts from the hub and what the agent makes of each (pure decisions).

docs/wire.md, "Receipts": the edge deletes a record from its outbox only on ``accepted`` or
``duplicate``; ``rejected`` moves it to the dead letters with its reason. Before trusting an
``accepted`` receipt the agent checks the checkpoint's signature with the pinned hub key and
that the receipt's leaf hash is the one it computed; a receipt that fails is ignored, so the
record stays in the outbox and is published again.
"""

from __future__ import annotations

import hmac
import random
from collections import OrderedDict
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ledger.checkpoint import Checkpoint, NoteVerifier, parse_checkpoint
from ledger.envelope import HexDigest, RecordId, describe_validation_error
from ledger.errors import CheckpointError
from ledger.keys import FastVerifier

from .errors import ReceiptError

MAX_RECEIPT_BYTES = 128 * 1024


class Receipt(BaseModel):
    """``{id, status, index?, leaf_hash?, checkpoint?, cosigned?, reason?, detail?}`` from the hub.

    Unknown fields are ignored rather than refused: receipts are only read, never stored or
    signed, and a hub that adds a field must not make every agent drop its receipts.
    """

    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)

    id: RecordId
    status: Literal["accepted", "duplicate", "rejected"]
    index: Annotated[int, Field(ge=0)] | None = None
    leaf_hash: HexDigest | None = None
    checkpoint: Annotated[str, Field(max_length=64 * 1024)] | None = None
    #: The newest checkpoint the hub has that meets its trust policy, with the witnesses'
    #: cosignatures (it may be of a smaller tree than ``index``); judged by the agent's own
    #: policy when it requires the quorum (edge/quorum.py), ignored otherwise.
    cosigned: Annotated[str, Field(max_length=64 * 1024)] | None = None
    reason: Annotated[str, Field(max_length=128)] | None = None
    detail: Annotated[str, Field(max_length=4096)] | None = None


def parse_receipt(raw: bytes) -> Receipt:
    """A receipt from an MQTT message; ReceiptError if it is not one.

    Plain ``json.loads`` under a size bound (not the envelope's stricter parser): receipts
    are small, flat and many, and nothing in one is trusted before its checks.
    """
    if len(raw) > MAX_RECEIPT_BYTES:
        raise ReceiptError("malformed_receipt", "receipt is too large")
    try:
        return Receipt.model_validate_json(raw)
    except ValidationError as exc:
        raise ReceiptError("malformed_receipt", describe_validation_error(exc)) from None


@dataclass(frozen=True)
class ProofCheck:
    """An inclusion proof to fetch and check: the record's leaf at ``index`` under the
    checkpoint of ``size`` and ``root`` (both None: under whatever checkpoint is newest)."""

    record_id: str
    seq: int
    index: int
    leaf_hash: bytes
    size: int | None
    root: bytes | None


@dataclass(frozen=True)
class Verdict:
    """What to do with the record a receipt is about."""

    action: Literal["deliver", "dead_letter", "ignore"]
    reason: str = ""
    detail: str = ""
    proof_check: ProofCheck | None = None
    checkpoint: Checkpoint | None = None


@dataclass(frozen=True)
class Expected:
    """What the agent knows of the record a receipt names (from its outbox); ``earlier``:
    the leaf hashes of its seals under keys it had before (any of them may be on the log)."""

    seq: int
    leaf_hash: bytes
    earlier: tuple[bytes, ...] = ()

    def ours(self, leaf_hash: bytes) -> bool:
        if hmac.compare_digest(leaf_hash, self.leaf_hash):
            return True
        return any(hmac.compare_digest(leaf_hash, h) for h in self.earlier)


class ProofPolicy:
    """Whether to check an accepted record's inclusion proof: always, never, or sampled."""

    def __init__(
        self,
        mode: Literal["always", "sampled", "never"],
        rate: float = 0.05,
        rng: random.Random | None = None,
    ) -> None:
        self.mode = mode
        self.rate = rate
        # The hub must not guess which records get checked: a system RNG by default.
        self._rng = rng or random.SystemRandom()

    def wants_proof(self) -> bool:
        if self.mode == "always":
            return True
        if self.mode == "never":
            return False
        return self._rng.random() < self.rate


class ReceiptJudge:
    """Decides each receipt; remembers recently verified checkpoint notes (the hub signs one
    per batch, so most receipts of a batch carry the same note)."""

    def __init__(self, verifier: NoteVerifier, policy: ProofPolicy, cache_size: int = 64) -> None:
        self.verifier = verifier
        self.policy = policy
        self._verified: OrderedDict[str, Checkpoint] = OrderedDict()
        self._cache_size = cache_size
        self._key_hash = verifier.key_hash
        self._signature = FastVerifier(verifier.public_key)

    def checkpoint(self, note: str) -> Checkpoint:
        """The checkpoint of ``note`` if the pinned hub key signed it; ReceiptError if not."""
        found = self._verified.get(note)
        if found is not None:
            self._verified.move_to_end(note)
            return found
        try:
            found = self._verify(note)
        except CheckpointError as exc:
            raise ReceiptError("bad_checkpoint", str(exc)) from None
        self._verified[note] = found
        if len(self._verified) > self._cache_size:
            self._verified.popitem(last=False)
        return found

    def _verify(self, note: str) -> Checkpoint:
        """``ledger.checkpoint.verify_checkpoint(note, self.verifier)``, the signature checked
        through :class:`ledger.keys.FastVerifier` (libsodium for an Ed25519 hub key, gmalglib
        for an SM2 one) with the key hash computed once: the hub signs a note per batch, so
        one is checked every few receipts (measured, Ed25519: ~114 µs a note that way, ~60 µs
        here)."""
        signed = parse_checkpoint(note)
        body = signed.checkpoint.body()
        name = self.verifier.name
        for signer, key_hash, signature in signed.signatures:
            if signer == name and key_hash == self._key_hash:
                if not self._signature.is_valid(signature, body):
                    raise CheckpointError(f"signature by {name} does not verify")
                return signed.checkpoint
        raise CheckpointError(f"checkpoint carries no signature by {name}")

    def judge(self, receipt: Receipt, expected: Expected | None) -> Verdict:
        if expected is None:
            return Verdict("ignore", "unknown_record", "no such record in the outbox")
        if receipt.status == "rejected":
            return Verdict(
                "dead_letter", receipt.reason or "rejected", receipt.detail or "rejected by hub"
            )
        logged = expected.leaf_hash
        if receipt.leaf_hash is not None and expected.ours(bytes.fromhex(receipt.leaf_hash)):
            # This seal, or one under an earlier key (the record was re-sealed after it
            # landed): either way the log holds this record, under that leaf hash.
            logged = bytes.fromhex(receipt.leaf_hash)
        elif receipt.leaf_hash is not None:
            if receipt.status == "duplicate":
                # The ledger holds a different record under this one's id or seq: deleting
                # ours would lose it, so keep it where an operator sees it.
                return Verdict(
                    "dead_letter",
                    "duplicate_mismatch",
                    "the hub reports a duplicate whose leaf hash is not this record's",
                )
            return Verdict("ignore", "leaf_hash_mismatch", "receipt leaf hash is not ours")
        if receipt.status == "duplicate":
            return self._duplicate(receipt, expected, logged)
        return self._accepted(receipt, expected, logged)

    def _accepted(self, receipt: Receipt, expected: Expected, logged: bytes) -> Verdict:
        if receipt.index is None or receipt.checkpoint is None:
            return Verdict("ignore", "incomplete_receipt", "accepted without index or checkpoint")
        try:
            cp = self.checkpoint(receipt.checkpoint)
        except ReceiptError as exc:
            return Verdict("ignore", exc.reason, exc.detail)
        check = self._proof(receipt, expected, logged, cp)
        return Verdict("deliver", proof_check=check, checkpoint=cp)

    def _duplicate(self, receipt: Receipt, expected: Expected, logged: bytes) -> Verdict:
        cp = None
        if receipt.checkpoint is not None:
            try:
                cp = self.checkpoint(receipt.checkpoint)
            except ReceiptError as exc:
                return Verdict("ignore", exc.reason, exc.detail)
        check = self._proof(receipt, expected, logged, cp) if receipt.index is not None else None
        return Verdict("deliver", proof_check=check, checkpoint=cp)

    def _proof(
        self, receipt: Receipt, expected: Expected, logged: bytes, cp: Checkpoint | None
    ) -> ProofCheck | None:
        assert receipt.index is not None
        covers = cp is not None and cp.size > receipt.index
        # A checkpoint that does not cover the record gets it checked whatever the policy.
        if covers and not self.policy.wants_proof():
            return None
        return ProofCheck(
            receipt.id,
            expected.seq,
            receipt.index,
            logged,
            cp.size if covers and cp is not None else None,
            cp.root_hash if covers and cp is not None else None,
        )
