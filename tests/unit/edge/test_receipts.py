"""The receipt decision table: what the agent does with each receipt it gets, in each crypto
suite (the hub's checkpoint signature Ed25519 or SM2)."""

from __future__ import annotations

import json
import random
from collections.abc import Callable

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
from ledger.suite import SUITES, Suite

RID = "01a22614-deca-70f3-9ce2-45218b355d34"
LEAF = bytes(range(32))
OTHER_LEAF = bytes(32)
#: The hub's key and an impostor's of the same name, per suite.
HUBS = {name: NoteSigner("test.hub/log", generate_key(s)) for name, s in SUITES.items()}
IMPOSTORS = {name: NoteSigner("test.hub/log", generate_key(s)) for name, s in SUITES.items()}


def note(suite: Suite, size: int = 10, signer: NoteSigner | None = None) -> str:
    signer = signer or HUBS[suite.name]
    return sign_checkpoint(Checkpoint("test.hub/log", size, bytes([7]) * 32), signer)


def receipt(suite: Suite, status: str = "accepted", /, **fields: object) -> Receipt:
    base: dict[str, object] = {"id": RID, "status": status}
    if status == "accepted":
        base.update(index=3, leaf_hash=LEAF.hex(), checkpoint=note(suite))
    base.update(fields)
    return Receipt.model_validate(base)


def judge(suite: Suite, mode: str = "never") -> ReceiptJudge:
    return ReceiptJudge(HUBS[suite.name].verifier, ProofPolicy(mode))  # type: ignore[arg-type]


EXPECTED = Expected(seq=4, leaf_hash=LEAF)


def test_a_good_accepted_receipt_delivers_the_record(suite: Suite) -> None:
    v = judge(suite).judge(receipt(suite), EXPECTED)
    assert v.action == "deliver"
    assert v.checkpoint is not None and v.checkpoint.size == 10
    assert v.proof_check is None


def test_always_asks_for_the_inclusion_proof_under_the_receipts_checkpoint(
    suite: Suite,
) -> None:
    v = judge(suite, "always").judge(receipt(suite), EXPECTED)
    assert v.proof_check is not None
    assert (v.proof_check.index, v.proof_check.size, v.proof_check.seq) == (3, 10, 4)
    assert v.proof_check.leaf_hash == LEAF


def test_sampling_checks_about_the_rate(suite: Suite) -> None:
    j = ReceiptJudge(HUBS[suite.name].verifier, ProofPolicy("sampled", 0.25, random.Random(1)))
    checked = sum(j.judge(receipt(suite), EXPECTED).proof_check is not None for _ in range(2000))
    assert 400 < checked < 600


Fields = Callable[[Suite], dict[str, object]]


def _impostors(suite: Suite) -> dict[str, object]:
    return {"checkpoint": note(suite, signer=IMPOSTORS[suite.name])}


def _other_suites_note(suite: Suite) -> str:
    """A note of the same log name signed by the hub key of the other suite."""
    other = next(name for name in HUBS if name != suite.name)
    return note(suite, signer=HUBS[other])


def _other_suites_hub(suite: Suite) -> dict[str, object]:
    return {"checkpoint": _other_suites_note(suite)}


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        (_impostors, "bad_checkpoint"),
        (_other_suites_hub, "bad_checkpoint"),
        (lambda _: {"checkpoint": "not a note"}, "bad_checkpoint"),
        (lambda _: {"leaf_hash": OTHER_LEAF.hex()}, "leaf_hash_mismatch"),
        (lambda _: {"checkpoint": None}, "incomplete_receipt"),
        (lambda _: {"index": None}, "incomplete_receipt"),
    ],
    ids=["impostor", "other suite", "not a note", "other leaf", "no checkpoint", "no index"],
)
def test_untrusted_accepted_receipts_are_ignored(suite: Suite, fields: Fields, reason: str) -> None:
    v = judge(suite).judge(receipt(suite, **fields(suite)), EXPECTED)
    assert (v.action, v.reason) == ("ignore", reason)


def test_a_checkpoint_that_does_not_cover_the_record_forces_a_proof_check(suite: Suite) -> None:
    v = judge(suite, "never").judge(receipt(suite, index=12), EXPECTED)
    assert v.action == "deliver"
    assert v.proof_check is not None and v.proof_check.size is None


def test_rejected_records_become_dead_letters_with_the_hubs_reason(suite: Suite) -> None:
    r = receipt(suite, "rejected", reason="bad_signature", detail="nope")
    v = judge(suite).judge(r, EXPECTED)
    assert (v.action, v.reason, v.detail) == ("dead_letter", "bad_signature", "nope")


def test_a_duplicate_delivers(suite: Suite) -> None:
    assert judge(suite).judge(receipt(suite, "duplicate"), EXPECTED).action == "deliver"


def test_a_duplicate_of_a_different_record_is_kept_as_a_dead_letter(suite: Suite) -> None:
    r = receipt(suite, "duplicate", index=3, leaf_hash=OTHER_LEAF.hex())
    v = judge(suite).judge(r, EXPECTED)
    assert (v.action, v.reason) == ("dead_letter", "duplicate_mismatch")


def test_receipts_for_records_not_in_the_outbox_are_ignored(suite: Suite) -> None:
    assert judge(suite).judge(receipt(suite), None).action == "ignore"


def test_verified_notes_are_cached(suite: Suite) -> None:
    j = judge(suite)
    text = note(suite, size=99)
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
def test_a_receipt_for_an_earlier_seal_settles_a_resealed_record(suite: Suite, status: str) -> None:
    """Re-sealed with a new key after its first seal landed: the log holds the first."""
    r = receipt(suite, status, index=3, leaf_hash=LEAF.hex(), checkpoint=note(suite))
    v = judge(suite, "always").judge(r, RESEALED)
    assert v.action == "deliver"
    # The inclusion proof is checked for the leaf the log holds.
    assert v.proof_check is not None and v.proof_check.leaf_hash == LEAF


def test_a_duplicate_of_no_seal_of_ours_is_still_a_mismatch(suite: Suite) -> None:
    stranger = bytes([9]) * 32
    r = receipt(suite, "duplicate", index=3, leaf_hash=stranger.hex(), checkpoint=note(suite))
    v = judge(suite).judge(r, RESEALED)
    assert (v.action, v.reason) == ("dead_letter", "duplicate_mismatch")


def _tampered(text: str) -> str:
    origin, size, rest = text.split("\n", 2)
    return f"{origin}\n{int(size) + 1}\n{rest}"


def _cosigned(text: str, suite: Suite) -> str:
    return add_cosignature(text, NoteSigner("witness.example/w1", generate_key(suite)))


def _renamed(suite: Suite) -> str:
    return note(suite, signer=NoteSigner("other.hub/log", HUBS[suite.name].private_key))


Note = Callable[[Suite], str]
NOTES: dict[str, Note] = {
    "good": lambda s: note(s),
    "impostor": lambda s: note(s, signer=IMPOSTORS[s.name]),
    "tampered": lambda s: _tampered(note(s)),
    "cosigned": lambda s: _cosigned(note(s), s),
    "impostor cosigned": lambda s: _cosigned(note(s, signer=IMPOSTORS[s.name]), s),
    "other name": _renamed,
    "no blank line": lambda s: note(s).replace("\n\n", "\n"),
    "other suite's hub": _other_suites_note,
}


@pytest.mark.parametrize("make", list(NOTES.values()), ids=list(NOTES))
def test_the_judge_trusts_exactly_the_notes_verify_checkpoint_does(
    suite: Suite, make: Note
) -> None:
    text = make(suite)
    verifier = HUBS[suite.name].verifier
    try:
        expected: object = verify_checkpoint(text, verifier)
    except CheckpointError as exc:
        expected = str(exc)
    try:
        found: object = judge(suite).checkpoint(text)
    except ReceiptError as exc:
        found = exc.detail
    assert found == expected
