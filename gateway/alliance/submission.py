"""One tlog-witness exchange, as pure functions: the ``add-checkpoint`` request body and
what the witness's answer means (c2sp.org/tlog-witness, "add-checkpoint").

The request is ``old <size>``, one line per consistency-proof hash (standard base64), an
empty line, then the signed checkpoint note. A 200 answer is one or more signature lines
(cosignature/v1, c2sp.org/tlog-cosignature) to append to the note; 409 says the witness's
latest size is not ``old`` and gives it in the body (``text/x.tlog.size``); 403, 404, 400
and 422 are refusals the hub must not retry unchanged.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

from ledger.cosignature import (
    CosignatureError,
    CosignatureMismatch,
    CosignerVerifier,
    note_body,
    parse_cosignature_lines,
    verify_cosignature,
)

#: The spec caps a consistency proof at 63 hashes (a tree of 2^63 leaves needs no more).
MAX_PROOF_HASHES = 63
#: Bytes of a witness answer the hub reads (cosignature lines are ~120 bytes each).
MAX_ANSWER_BYTES = 64 * 1024


def request_body(old: int, proof: Sequence[bytes], note: str) -> bytes:
    """The ``add-checkpoint`` body for a witness whose latest size is ``old``."""
    if len(proof) > MAX_PROOF_HASHES:
        raise ValueError(f"a consistency proof has at most {MAX_PROOF_HASHES} hashes")
    lines = [f"old {old}\n"]
    lines.extend(base64.b64encode(h).decode("ascii") + "\n" for h in proof)
    return ("".join(lines) + "\n" + note).encode()


@dataclass(frozen=True)
class Cosigned:
    """The witness cosigned: its verified signature lines, to append to the note."""

    lines: tuple[str, ...]


@dataclass(frozen=True)
class Behind:
    """409: the witness's latest size is ``size``; submit again from there."""

    size: int


@dataclass(frozen=True)
class Refused:
    """Any other answer, or a 200 whose lines are not this witness's valid cosignature."""

    status: int
    detail: str


Answer = Cosigned | Behind | Refused


def read_answer(
    status: int, content_type: str, body: bytes, note: str, witness: CosignerVerifier
) -> Answer:
    """What a witness's HTTP answer to ``note`` means; a 200 counts only with a valid
    cosignature/v1 line by ``witness`` over the note's body."""
    text = body[:MAX_ANSWER_BYTES].decode("utf-8", errors="replace")
    if status == 409:
        try:
            return Behind(_size(text))
        except ValueError:
            return Refused(409, f"a 409 without a tree size ({content_type or 'no type'})")
    if status != 200:
        return Refused(status, text.strip()[:200] or f"HTTP {status}")
    try:
        cosignatures = parse_cosignature_lines(text)
    except CosignatureError as exc:
        return Refused(200, f"not cosignature lines: {exc}")
    body_bytes = note_body(note)
    mine = []
    for cosignature in cosignatures:
        try:
            verify_cosignature(body_bytes, cosignature, witness)
        except CosignatureMismatch as exc:
            return Refused(200, f"the cosignature {exc}")
        except CosignatureError:
            continue  # another key's line: not ours to judge (c2sp.org/signed-note)
        mine.append(cosignature.line())
    if not mine:
        return Refused(200, f"no cosignature by {witness.name}")
    return Cosigned(tuple(mine))


def _size(text: str) -> int:
    value = text.strip()
    if not value.isdigit() or (len(value) > 1 and value.startswith("0")) or len(value) > 20:
        raise ValueError(value)
    return int(value)
