"""Reading an add-checkpoint request body (c2sp.org/tlog-witness, "add-checkpoint"):

    old <size>\\n
    <base64 hash>\\n        (zero to 63 consistency-proof lines)
    \\n
    <signed checkpoint note>

Pure: bytes in, an ``AddCheckpoint`` or ``BadRequest`` out. Signatures and consistency are
judged later (``witness.decide``)."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from ledger.checkpoint import SignedCheckpoint, parse_checkpoint
from ledger.errors import CheckpointError
from ledger.hashing import HASH_SIZE

from .errors import BadRequest

#: "The client MUST NOT send more than 63 consistency proof lines."
MAX_PROOF_LINES = 63
#: Tree sizes are stored as SQLite INTEGERs (signed 64-bit).
MAX_SIZE = 2**63 - 1
#: 63 proof lines and a checkpoint note of ledger.checkpoint.MAX_NOTE_BYTES, with room.
MAX_BODY_BYTES = 80 * 1024

_OLD = re.compile(r"old (0|[1-9][0-9]{0,19})")
_HASH_B64 = re.compile(r"[A-Za-z0-9+/]{43}=")


@dataclass(frozen=True)
class AddCheckpoint:
    old_size: int
    proof: tuple[bytes, ...]
    signed: SignedCheckpoint
    """The submitted checkpoint, parsed; its note text is ``signed.note``."""


def parse_add_checkpoint(body: bytes) -> AddCheckpoint:
    """The request in ``body``; BadRequest saying what is wrong with it otherwise."""
    if len(body) > MAX_BODY_BYTES:
        raise BadRequest(f"the request body is larger than {MAX_BODY_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the request body is not UTF-8 text") from None
    first, sep, rest = text.partition("\n")
    if not sep:
        raise BadRequest("the request starts with an 'old <size>' line ending in a newline")
    old = _OLD.fullmatch(first)
    if old is None:
        raise BadRequest(
            "the first line must be 'old <size>' in decimal without leading zeroes, "
            f"not {first[:40]!r}"
        )
    old_size = int(old.group(1))
    if old_size > MAX_SIZE:
        raise BadRequest(f"old size {old_size} is larger than 2^63-1")
    proof: list[bytes] = []
    while True:
        line, sep, rest = rest.partition("\n")
        if not sep:
            raise BadRequest("the proof lines end with an empty line before the checkpoint")
        if line == "":
            break
        if len(proof) == MAX_PROOF_LINES:
            raise BadRequest(f"more than {MAX_PROOF_LINES} consistency proof lines")
        proof.append(_hash(line, len(proof) + 1))
    try:
        signed = parse_checkpoint(rest)
    except CheckpointError as exc:
        raise BadRequest(f"the checkpoint is malformed: {exc}") from None
    if signed.checkpoint.size > MAX_SIZE:
        raise BadRequest(f"checkpoint size {signed.checkpoint.size} is larger than 2^63-1")
    return AddCheckpoint(old_size, tuple(proof), signed)


def _hash(line: str, number: int) -> bytes:
    if not _HASH_B64.fullmatch(line):
        raise BadRequest(f"proof line {number} is not a base64 32-byte hash")
    try:
        raw = base64.b64decode(line, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"proof line {number} is not valid base64") from None
    assert len(raw) == HASH_SIZE
    return raw
