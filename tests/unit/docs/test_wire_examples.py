"""The examples in docs/wire.md are true: the envelope parses, its commitment and signature
hold, its JCS(header) and leaf hash are the ones printed, the receipts are valid receipts
for both hub and agent, the checkpoint verifies under the verifier key shown, and every
reason a ``rejected`` receipt can carry is explained."""

from __future__ import annotations

import json
import re

import pytest

from edge.receipts import parse_receipt
from gateway.ingest.checks import REASONS
from gateway.ingest.receipts import Receipt
from ledger.checkpoint import NoteVerifier, verify_checkpoint
from ledger.envelope import SignedRecord, check_commitment, check_signature, parse_record
from ledger.hashing import leaf_hash
from ledger.keys import (
    Ed25519PrivateKey,
    b64url_encode,
    key_id,
    public_key_b64,
    public_key_from_b64,
)

from .pages import code_blocks, code_names, first_column, read, section

PAGE = read("docs/wire.md")


def _found(pattern: str) -> str:
    m = re.search(pattern, PAGE)
    assert m, f"docs/wire.md no longer has {pattern!r}"
    return m.group(1)


def _block(lang: str, starts: str) -> str:
    for block_lang, body in code_blocks(PAGE):
        if block_lang == lang and body.lstrip().startswith(starts):
            return body
    raise AssertionError(f"docs/wire.md has no {lang or 'plain'} block starting {starts!r}")


@pytest.fixture(scope="module")
def record() -> SignedRecord:
    return parse_record(_block("json", '{\n  "header"').encode())


def test_the_example_envelope_holds(record: SignedRecord) -> None:
    public_b64 = _found(r"public key, base64url: `([A-Za-z0-9_-]{43})`")
    # The page says which private key made it: bytes 0x00..0x1f.
    private = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    assert public_key_b64(private.public_key()) == public_b64
    public = public_key_from_b64(public_b64)
    assert record.header.key == key_id(public)
    assert record.body.salt == "A" * 22  # 16 zero bytes
    check_commitment(record)
    check_signature(record.header.canonical(), record.sig, public)


def test_the_example_leaf_and_its_hash(record: SignedRecord) -> None:
    leaf = _block("", '{"commitment"').strip().encode()
    assert leaf == record.header.canonical()
    printed = _found(r"its leaf hash, SHA-256\(0x00 ‖ leaf\):\s*`([0-9a-f]{64})`")
    assert leaf_hash(leaf).hex() == printed


def test_the_example_receipts_and_checkpoint(record: SignedRecord) -> None:
    lines = _block("json", '{"id"').strip().splitlines()
    receipts = [Receipt.model_validate(json.loads(line)) for line in lines]
    for line in lines:
        assert parse_receipt(line.encode()).id == record.header.id
    accepted = next(r for r in receipts if r.status == "accepted")
    assert accepted.leaf_hash == leaf_hash(record.header.canonical()).hex()
    note = _block("", "swiftchain.local/ledger\n").strip("\n") + "\n"
    assert accepted.checkpoint == note
    verifier = NoteVerifier.parse(_found(r"verifies under\s*`([^`]+)`"))
    checkpoint = verify_checkpoint(note, verifier)
    assert accepted.index is not None and accepted.index < checkpoint.size
    rejected = next(r for r in receipts if r.status == "rejected")
    assert rejected.reason in REASONS


def test_every_rejection_reason_is_explained() -> None:
    table = section(PAGE, "Why a record is rejected")
    explained = [name for cell in first_column(table) for name in code_names(cell)]
    assert sorted(explained) == sorted(REASONS)


def test_the_example_about_a_person_names_nobody_in_its_leaf() -> None:
    blocks = [b for lang, b in code_blocks(PAGE) if lang == "json" and '"person": "' in b]
    assert blocks, "docs/wire.md has no example of a record about a person"
    record = parse_record(blocks[0].encode())
    check_commitment(record)
    private = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    check_signature(record.header.canonical(), record.sig, private.public_key())
    assert record.body.person is not None and record.body.person.salt == b64url_encode(
        bytes([1] * 16)
    )
    leaf = record.header.canonical()
    assert record.subject is not None and record.consent is not None
    assert record.subject.encode() not in leaf and record.consent.encode() not in leaf
