"""Reading add-checkpoint bodies (c2sp.org/tlog-witness): the spec's example shape, and a
400 with a reason for every malformed one."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.alliance.submission import request_body as format_add_checkpoint
from tests.support.witness import MemoryLog
from witness.errors import BadRequest
from witness.request import MAX_BODY_BYTES, MAX_PROOF_LINES, parse_add_checkpoint

LOG = MemoryLog().grow(20)
NOTE = LOG.note()
H = base64.b64encode(bytes(32)).decode()


def test_round_trip() -> None:
    proof = LOG.proof(7)
    parsed = parse_add_checkpoint(format_add_checkpoint(7, proof, NOTE))
    assert parsed.old_size == 7 and list(parsed.proof) == proof
    assert parsed.signed.note == NOTE and parsed.signed.checkpoint.size == 20


def test_old_zero_and_no_proof() -> None:
    parsed = parse_add_checkpoint(f"old 0\n\n{NOTE}".encode())
    assert parsed.old_size == 0 and parsed.proof == ()


def test_63_proof_lines_are_allowed_64_are_not() -> None:
    ok = parse_add_checkpoint(("old 1\n" + f"{H}\n" * MAX_PROOF_LINES + "\n" + NOTE).encode())
    assert len(ok.proof) == 63
    with pytest.raises(BadRequest, match="more than 63"):
        parse_add_checkpoint(("old 1\n" + f"{H}\n" * 64 + "\n" + NOTE).encode())


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "'old <size>' line"),
        (b"old 5", "'old <size>' line"),
        (f"old 05\n\n{NOTE}".encode(), "leading zeroes"),
        (f"old -1\n\n{NOTE}".encode(), "leading zeroes"),
        (f"old  1\n\n{NOTE}".encode(), "leading zeroes"),
        (f"Old 1\n\n{NOTE}".encode(), "leading zeroes"),
        (f"old 1 \n\n{NOTE}".encode(), "leading zeroes"),
        (f"old 0x10\n\n{NOTE}".encode(), "leading zeroes"),
        (f"old 9223372036854775808\n\n{NOTE}".encode(), "2\\^63-1"),
        (f"old 1\n{NOTE}".encode(), "base64 32-byte hash"),
        (f"old 1\n{H}\n".encode(), "empty line"),
        (f"old 1\n{H}".encode(), "empty line"),
        (f"old 1\n{H[:-2]}\n\n{NOTE}".encode(), "base64 32-byte hash"),
        (f"old 1\n{base64.b64encode(bytes(31)).decode()}\n\n{NOTE}".encode(), "base64"),
        (f"old 1\n{H} \n\n{NOTE}".encode(), "base64 32-byte hash"),
        (f"old 1\r\n\n{NOTE}".encode(), "leading zeroes"),
        (b"old 1\n\n\xff\xfe", "UTF-8"),
        (b"old 1\n\nnot a checkpoint\n", "malformed"),
        (f"old 1\n\n{NOTE[:-1]}".encode(), "malformed"),
        (f"old 1\n\n{NOTE.split(chr(10) + chr(10))[0]}\n".encode(), "malformed"),
        (b"old 1\n\n" + b"x" * MAX_BODY_BYTES, "larger than"),
    ],
)
def test_malformed_bodies_are_400_with_a_reason(body: bytes, reason: str) -> None:
    with pytest.raises(BadRequest, match=reason) as info:
        parse_add_checkpoint(body)
    assert info.value.status == 400


def test_a_checkpoint_larger_than_2_63_is_refused() -> None:
    note = NOTE.replace("\n20\n", "\n9223372036854775808\n")
    with pytest.raises(BadRequest, match="larger than 2\\^63-1"):
        parse_add_checkpoint(f"old 0\n\n{note}".encode())


@settings(max_examples=200)
@given(body=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_bytes_parse_or_are_a_bad_request(body: bytes) -> None:
    try:
        parse_add_checkpoint(body)
    except BadRequest:
        pass
