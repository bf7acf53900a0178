"""The hub's side of one tlog-witness exchange: the request it sends and what each answer
means; a 200 counts only with the witness's own valid cosignature."""

from __future__ import annotations

import base64

import pytest

from gateway.alliance.submission import (
    MAX_PROOF_HASHES,
    Behind,
    Cosigned,
    Refused,
    read_answer,
    request_body,
)
from ledger.cosignature import CosignerSigner, cosign
from ledger.keys import generate_key
from tests.support.witness import MemoryLog
from witness.request import parse_add_checkpoint

LOG = MemoryLog().grow(9)
NOTE = LOG.note()
WITNESS = CosignerSigner("witness.example/w1", generate_key())
OTHER = CosignerSigner("witness.example/w2", generate_key())


def test_the_request_is_what_a_witness_parses() -> None:
    proof = LOG.proof(4, 9)
    body = request_body(4, proof, NOTE)
    assert body.startswith(b"old 4\n" + base64.b64encode(proof[0]) + b"\n")
    parsed = parse_add_checkpoint(body)
    assert (parsed.old_size, list(parsed.proof), parsed.signed.note) == (4, proof, NOTE)
    assert request_body(0, [], NOTE) == b"old 0\n\n" + NOTE.encode()
    with pytest.raises(ValueError):
        request_body(1, [bytes(32)] * (MAX_PROOF_HASHES + 1), NOTE)


def test_a_cosignature_by_the_witness_counts() -> None:
    line = cosign(NOTE, WITNESS, 1_700_000_000)
    answer = read_answer(200, "text/plain", line.encode(), NOTE, WITNESS.verifier)
    assert answer == Cosigned((line,))
    # Lines of another key beside it are left alone.
    both = cosign(NOTE, OTHER, 1_700_000_000) + line
    assert read_answer(200, "text/plain", both.encode(), NOTE, WITNESS.verifier) == Cosigned(
        (line,)
    )


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (409, b"12\n", Behind(12)),
        (409, b"0\n", Behind(0)),
        (409, b"twelve", Refused),
        (409, b"012\n", Refused),
        (403, b"no valid signature", Refused),
        (404, b"", Refused),
        (422, b"bad proof", Refused),
        (500, b"boom", Refused),
        (200, b"", Refused),
        (200, b"not a line\n", Refused),
    ],
)
def test_every_other_answer(status: int, body: bytes, expected: object) -> None:
    answer = read_answer(status, "text/x.tlog.size", body, NOTE, WITNESS.verifier)
    if isinstance(expected, type):
        assert isinstance(answer, expected) and answer.status == status
    else:
        assert answer == expected


def test_a_200_without_the_witnesses_valid_cosignature_is_refused() -> None:
    other_note = LOG.grow(1).note()
    stale = cosign(other_note, WITNESS, 1_700_000_000)  # over another checkpoint
    answer = read_answer(200, "text/plain", stale.encode(), NOTE, WITNESS.verifier)
    assert isinstance(answer, Refused) and "does not verify" in answer.detail
    foreign = cosign(NOTE, OTHER, 1_700_000_000)
    answer = read_answer(200, "text/plain", foreign.encode(), NOTE, WITNESS.verifier)
    assert isinstance(answer, Refused) and "no cosignature by" in answer.detail
