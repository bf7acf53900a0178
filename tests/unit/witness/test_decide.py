"""The add-checkpoint decision as a table (c2sp.org/tlog-witness, add-checkpoint): each
row a request and what the witness knows, and the answer the spec prescribes."""

from __future__ import annotations

import base64

import pytest

from gateway.alliance.submission import request_body as format_add_checkpoint
from ledger.checkpoint import Checkpoint, NoteSigner, sign_checkpoint
from ledger.keys import generate_key
from ledger.suite import ED25519_SHA256, SM2_SM3, SUITES, Suite
from tests.support.witness import ORIGIN, MemoryLog
from witness.decide import Accepted, LogView, check_signatures, decide
from witness.errors import (
    BadRequest,
    Inconsistent,
    LogConfigError,
    NotTrusted,
    SizeConflict,
    UnknownLog,
)
from witness.request import parse_add_checkpoint


@pytest.fixture
def log(suite: Suite) -> MemoryLog:
    """A log of 40 leaves in ``suite``'s tree, signed with a key of its kind."""
    return MemoryLog.of_suite(suite).grow(40)


def view(size: int, log: MemoryLog) -> LogView:
    return LogView(ORIGIN, (log.signer.verifier,), size, log.root(size))


def judge(body: bytes, known: LogView | None) -> Accepted:
    return decide(parse_add_checkpoint(body), known)


def test_first_checkpoint_from_zero_is_accepted(log: MemoryLog) -> None:
    got = judge(log.request(0, 10), view(0, log))
    assert got.checkpoint == Checkpoint(ORIGIN, 10, log.root(10))
    assert got.body == log.note(10).split("\n\n")[0].encode() + b"\n"
    assert got.log_signatures == (log.note(10).split("\n\n")[1],)


@pytest.mark.parametrize(("old", "new"), [(1, 2), (3, 7), (8, 16), (10, 40), (16, 17), (31, 33)])
def test_growing_with_a_consistency_proof_is_accepted(log: MemoryLog, old: int, new: int) -> None:
    assert judge(log.request(old, new), view(old, log)).checkpoint.size == new


def test_the_same_checkpoint_again_is_accepted(log: MemoryLog) -> None:
    assert judge(log.request(10, 10), view(10, log)).checkpoint.size == 10


def test_the_empty_tree_is_accepted_from_zero(log: MemoryLog) -> None:
    assert judge(log.request(0, 0), view(0, log)).checkpoint.root_hash == log.tree.empty_root


def test_unknown_origin_is_404(log: MemoryLog) -> None:
    with pytest.raises(UnknownLog) as info:
        judge(log.request(0, 5), None)
    assert info.value.status == 404


def test_a_view_of_another_origin_is_404(log: MemoryLog) -> None:
    with pytest.raises(UnknownLog):
        judge(
            log.request(0, 5), LogView("other/log", (log.signer.verifier,), 0, log.tree.empty_root)
        )


def test_no_trusted_signature_is_403(log: MemoryLog) -> None:
    stranger = MemoryLog(key=generate_key(log.suite)).grow(5)
    with pytest.raises(NotTrusted, match="no signature by a trusted key") as info:
        judge(stranger.request(0), view(0, log))
    assert info.value.status == 403


def test_a_trusted_name_and_key_id_with_a_bad_signature_is_403(log: MemoryLog) -> None:
    note = log.note(5)
    body, sig_line = note.split("\n\n")
    name, b64 = sig_line[2:-1].split(" ")
    raw = bytearray(base64.b64decode(b64))
    raw[-1] ^= 1
    forged = f"{body}\n\n— {name} {base64.b64encode(bytes(raw)).decode()}\n"
    with pytest.raises(NotTrusted, match="does not verify"):
        judge(format_add_checkpoint(0, [], forged), view(0, log))


def test_a_bad_trusted_line_beside_a_good_one_is_still_403(log: MemoryLog) -> None:
    note = log.note(5)
    _body, good = note.split("\n\n")
    name, b64 = good[2:-1].split(" ")
    raw = base64.b64decode(b64)
    bad = f"— {name} {base64.b64encode(raw[:4] + bytes(64)).decode()}\n"
    with pytest.raises(NotTrusted):
        judge(format_add_checkpoint(0, [], note + bad), view(0, log))


def test_unknown_signatures_are_ignored(log: MemoryLog) -> None:
    other = NoteSigner("witness.other/w", generate_key(log.suite))
    note = log.note(5) + other.signature_line(log.note(5).split("\n\n")[0].encode() + b"\n")
    stranger_same_name = NoteSigner(ORIGIN, generate_key(log.suite))
    note += stranger_same_name.signature_line(b"whatever\n")
    got = judge(format_add_checkpoint(0, [], note), view(0, log))
    assert got.log_signatures == (log.note(5).split("\n\n")[1],)


def test_any_of_several_trusted_keys_will_do(log: MemoryLog) -> None:
    old_key = MemoryLog(key=generate_key(log.suite))
    known = LogView(ORIGIN, (old_key.signer.verifier, log.signer.verifier), 0, log.tree.empty_root)
    assert judge(log.request(0, 3), known).checkpoint.size == 3


def test_signatures_are_checked_before_sizes(log: MemoryLog) -> None:
    # A request nobody trusted signed learns nothing of the witness's state.
    stranger = MemoryLog(key=generate_key(log.suite)).grow(5)
    with pytest.raises(NotTrusted):
        judge(stranger.request(3), view(0, log))


def test_old_larger_than_the_checkpoint_is_400(log: MemoryLog) -> None:
    body = format_add_checkpoint(12, [], log.note(10))
    with pytest.raises(BadRequest, match="larger than the checkpoint size") as info:
        judge(body, view(12, log))
    assert info.value.status == 400


@pytest.mark.parametrize(("known", "old"), [(10, 0), (0, 10), (10, 5), (5, 10)])
def test_old_not_the_cosigned_size_is_409_with_that_size(
    log: MemoryLog, known: int, old: int
) -> None:
    with pytest.raises(SizeConflict) as info:
        judge(log.request(old, 20), view(known, log))
    assert info.value.status == 409 and info.value.known_size == known


def test_size_zero_with_another_root_is_422(log: MemoryLog) -> None:
    note = sign_checkpoint(Checkpoint(ORIGIN, 0, bytes(32)), log.signer)
    with pytest.raises(Inconsistent, match="empty tree") as info:
        judge(format_add_checkpoint(0, [], note), view(0, log))
    assert info.value.status == 422


def test_a_proof_from_zero_is_422(log: MemoryLog) -> None:
    body = format_add_checkpoint(0, [bytes(32)], log.note(5))
    with pytest.raises(Inconsistent, match="from size 0"):
        judge(body, view(0, log))


def test_same_size_another_root_is_a_split_view_422(log: MemoryLog) -> None:
    fork = log.fork(6).grow(4)
    with pytest.raises(Inconsistent, match="split view"):
        judge(fork.request(10, 10), view(10, log))


def test_same_size_with_a_proof_is_422(log: MemoryLog) -> None:
    body = format_add_checkpoint(10, [bytes(32)], log.note(10))
    with pytest.raises(Inconsistent, match="equal sizes"):
        judge(body, view(10, log))


def test_a_fork_after_the_cosigned_size_is_422(log: MemoryLog) -> None:
    # Same origin and key, a different tree after leaf 6: no proof from 10 can reach it.
    fork = log.fork(6).grow(14)
    with pytest.raises(Inconsistent, match="consistency proof"):
        judge(fork.request(10, 20), view(10, log))


@pytest.mark.parametrize("mutation", ["flip", "drop", "extra", "empty", "swap"])
def test_a_bad_consistency_proof_is_422(log: MemoryLog, mutation: str) -> None:
    proof = log.proof(10, 20)
    if mutation == "flip":
        proof[0] = bytes([proof[0][0] ^ 1]) + proof[0][1:]
    elif mutation == "drop":
        proof = proof[:-1]
    elif mutation == "extra":
        proof = [*proof, bytes(32)]
    elif mutation == "empty":
        proof = []
    else:
        proof = list(reversed(proof))
    with pytest.raises(Inconsistent):
        judge(format_add_checkpoint(10, proof, log.note(20)), view(10, log))


def test_a_proof_for_other_sizes_is_422(log: MemoryLog) -> None:
    body = format_add_checkpoint(10, log.proof(9, 20), log.note(20))
    with pytest.raises(Inconsistent):
        judge(body, view(10, log))


def test_check_signatures_returns_each_verified_line_once(log: MemoryLog) -> None:
    note = log.note(5)
    line = note.split("\n\n")[1]
    request = parse_add_checkpoint(format_add_checkpoint(0, [], note + line))
    assert check_signatures(request, (log.signer.verifier,)) == (line,)


def _other(suite: Suite) -> Suite:
    (other,) = (s for s in SUITES.values() if s is not suite)
    return other


def test_a_proof_in_the_other_suites_hash_is_422(log: MemoryLog) -> None:
    # The same leaf hashes, the tree's nodes hashed with the other suite's hash: an
    # sm2-sm3 log is proven in SM3 only, an ed25519-sha256 one in SHA-256 only.
    other = MemoryLog(key=generate_key(_other(log.suite)), leaves=list(log.leaves))
    assert other.proof(10, 20) != log.proof(10, 20)
    with pytest.raises(Inconsistent, match="consistency proof"):
        judge(format_add_checkpoint(10, other.proof(10, 20), log.note(20)), view(10, log))
    assert judge(log.request(10, 20), view(10, log)).checkpoint.size == 20


def test_size_zero_with_the_other_suites_empty_root_is_422(log: MemoryLog) -> None:
    empty = _other(log.suite).tree.empty_root
    note = sign_checkpoint(Checkpoint(ORIGIN, 0, empty), log.signer)
    with pytest.raises(Inconsistent, match="empty tree"):
        judge(format_add_checkpoint(0, [], note), view(0, log))


def test_a_view_is_of_its_keys_suite_and_of_one_suite_only() -> None:
    ed, sm2 = (MemoryLog.of_suite(s).signer.verifier for s in (ED25519_SHA256, SM2_SM3))
    assert LogView(ORIGIN, (sm2,), 0, SM2_SM3.tree.empty_root).suite is SM2_SM3
    assert LogView(ORIGIN, (ed,), 0, ED25519_SHA256.tree.empty_root).suite is ED25519_SHA256
    with pytest.raises(LogConfigError, match="several crypto suites"):
        LogView(ORIGIN, (ed, sm2), 0, ED25519_SHA256.tree.empty_root)
    with pytest.raises(LogConfigError, match="no trusted key"):
        _ = LogView(ORIGIN, (), 0, ED25519_SHA256.tree.empty_root).suite
