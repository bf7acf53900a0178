"""The receipt decision table: what the agent does with each receipt it gets."""

from __future__ import annotations

import json
import random

import pytest

from edge.errors import ReceiptError
from edge.receipts import Expected, ProofPolicy, Receipt, ReceiptJudge, parse_receipt
from ledger.checkpoint import (
    Checkpoint,
    NoteSigner,
    add_cosignature,
    sign_checkpoint,
    verify_checkpoint,
)
from ledger.errors import CheckpointError
from ledger.keys import generate_key

RID = "01a22614-deca-70f3-9ce2-45218b355d34"
LEAF = bytes(range(32))
OTHER_LEAF = bytes(32)
HUB = NoteSigner("test.hub/log", generate_key())
IMPOSTOR = NoteSigner("test.hub/log", generate_key())


def note(size: int = 10, signer: NoteSigner = HUB) -> str:
    return sign_checkpoint(Checkpoint("test.hub/log", size, bytes([7]) * 32), signer)


def receipt(status: str = "accepted", **fields: object) -> Receipt:
    base: dict[str, object] = {"id": RID, "status": status}
    if status == "accepted":
        base.update(index=3, leaf_hash=LEAF.hex(), checkpoint=note())
    base.update(fields)
    return Receipt.model_validate(base)


def judge(mode: str = "never") -> ReceiptJudge:
    return ReceiptJudge(HUB.verifier, ProofPolicy(mode))  # type: ignore[arg-type]


EXPECTED = Expected(seq=4, leaf_hash=LEAF)


def test_a_good_accepted_receipt_delivers_the_record() -> None:
    v = judge().judge(receipt(), EXPECTED)
    assert v.action == "deliver"
    assert v.checkpoint is not None and v.checkpoint.size == 10
    assert v.proof_check is None


def test_always_asks_for_the_inclusion_proof_under_the_receipts_checkpoint() -> None:
    v = judge("always").judge(receipt(), EXPECTED)
    assert v.proof_check is not None
    assert (v.proof_check.index, v.proof_check.size, v.proof_check.seq) == (3, 10, 4)
    assert v.proof_check.leaf_hash == LEAF


def test_sampling_checks_about_the_rate() -> None:
    j = ReceiptJudge(HUB.verifier, ProofPolicy("sampled", 0.25, random.Random(1)))
    checked = sum(j.judge(receipt(), EXPECTED).proof_check is not None for _ in range(2000))
    assert 400 < checked < 600


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"checkpoint": note(signer=IMPOSTOR)}, "bad_checkpoint"),
        ({"checkpoint": "not a note"}, "bad_checkpoint"),
        ({"leaf_hash": OTHER_LEAF.hex()}, "leaf_hash_mismatch"),
        ({"checkpoint": None}, "incomplete_receipt"),
        ({"index": None}, "incomplete_receipt"),
    ],
)
def test_untrusted_accepted_receipts_are_ignored(fields: dict[str, object], reason: str) -> None:
    v = judge().judge(receipt(**fields), EXPECTED)
    assert (v.action, v.reason) == ("ignore", reason)


def test_a_checkpoint_that_does_not_cover_the_record_forces_a_proof_check() -> None:
    v = judge("never").judge(receipt(index=12), EXPECTED)
    assert v.action == "deliver"
    assert v.proof_check is not None and v.proof_check.size is None


def test_rejected_records_become_dead_letters_with_the_hubs_reason() -> None:
    v = judge().judge(receipt("rejected", reason="bad_signature", detail="nope"), EXPECTED)
    assert (v.action, v.reason, v.detail) == ("dead_letter", "bad_signature", "nope")


def test_a_duplicate_delivers() -> None:
    assert judge().judge(receipt("duplicate"), EXPECTED).action == "deliver"


def test_a_duplicate_of_a_different_record_is_kept_as_a_dead_letter() -> None:
    v = judge().judge(receipt("duplicate", index=3, leaf_hash=OTHER_LEAF.hex()), EXPECTED)
    assert (v.action, v.reason) == ("dead_letter", "duplicate_mismatch")


def test_receipts_for_records_not_in_the_outbox_are_ignored() -> None:
    assert judge().judge(receipt(), None).action == "ignore"


def test_verified_notes_are_cached() -> None:
    j = judge()
    text = note(size=99)
    first = j.checkpoint(text)
    assert j.checkpoint(text) is first


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[]",
        json.dumps({"id": "nope", "status": "accepted"}).encode(),
        json.dumps({"id": RID, "status": "maybe"}).encode(),
        json.dumps({"id": RID, "status": "accepted", "index": -1}).encode(),
        b"{" * 200_000,
    ],
)
def test_malformed_receipts(raw: bytes) -> None:
    with pytest.raises(ReceiptError):
        parse_receipt(raw)


def test_unknown_receipt_fields_are_ignored() -> None:
    raw = json.dumps({"id": RID, "status": "duplicate", "hub_worker": 3}).encode()
    assert parse_receipt(raw).status == "duplicate"


RESEALED = Expected(seq=4, leaf_hash=OTHER_LEAF, earlier=(LEAF,))


@pytest.mark.parametrize("status", ["accepted", "duplicate"])
def test_a_receipt_for_an_earlier_seal_settles_a_resealed_record(status: str) -> None:
    """Re-sealed with a new key after its first seal landed: the log holds the first."""
    r = receipt(status, index=3, leaf_hash=LEAF.hex(), checkpoint=note())
    v = judge("always").judge(r, RESEALED)
    assert v.action == "deliver"
    # The inclusion proof is checked for the leaf the log holds.
    assert v.proof_check is not None and v.proof_check.leaf_hash == LEAF


def test_a_duplicate_of_no_seal_of_ours_is_still_a_mismatch() -> None:
    stranger = bytes([9]) * 32
    r = receipt("duplicate", index=3, leaf_hash=stranger.hex(), checkpoint=note())
    v = judge().judge(r, RESEALED)
    assert (v.action, v.reason) == ("dead_letter", "duplicate_mismatch")


def _tampered(text: str) -> str:
    origin, size, rest = text.split("\n", 2)
    return f"{origin}\n{int(size) + 1}\n{rest}"


def _cosigned(text: str) -> str:
    return add_cosignature(text, NoteSigner("witness.example/w1", generate_key()))


@pytest.mark.parametrize(
    "text",
    [
        note(),
        note(signer=IMPOSTOR),
        _tampered(note()),
        _cosigned(note()),
        _cosigned(note(signer=IMPOSTOR)),
        note(signer=NoteSigner("other.hub/log", HUB.private_key)),
        note().replace("\n\n", "\n"),
    ],
)
def test_the_judge_trusts_exactly_the_notes_verify_checkpoint_does(text: str) -> None:
    try:
        expected: object = verify_checkpoint(text, HUB.verifier)
    except CheckpointError as exc:
        expected = str(exc)
    try:
        found: object = judge().checkpoint(text)
    except ReceiptError as exc:
        found = exc.detail
    assert found == expected
