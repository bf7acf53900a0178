"""The agent's quorum decisions (edge/quorum.py): which notes it trusts, which one it goes on
with, which waiting records a checkpoint covers, and whether a proof shows one in it; in
each crypto suite (the log's tree SHA-256 or SM3, its keys Ed25519 or SM2)."""

from __future__ import annotations

import pytest

from edge.quorum import (
    Awaiting,
    Refused,
    TrustedCheckpoint,
    covered,
    extends,
    judge_note,
    newest,
    poll_delay,
    prove,
)
from ledger.checkpoint import NoteSigner, add_cosignature
from ledger.keys import generate_key
from ledger.policy import parse_policy
from ledger.suite import ED25519_SHA256, SM2_SM3, Suite
from tests.support.quorum import NOW, ORIGIN, LogWorld, log_world


@pytest.fixture
def world(suite: Suite) -> LogWorld:
    w = log_world(suite)
    w.grow(10)
    return w


def trusted(world: LogWorld, size: int, by: tuple[str, ...] = ("w1", "w2")) -> TrustedCheckpoint:
    verdict = judge_note(world.cosigned(size, by), world.policy(), world.hub_key, now=NOW)
    assert isinstance(verdict, TrustedCheckpoint), verdict
    return verdict


def waiting(world: LogWorld, index: int, rid: str | None = None) -> Awaiting:
    return Awaiting(rid or f"r{index}", index + 1, index, world.leaves[index], 0.0)


# -- judge_note: the decision table ------------------------------------------------------
# (quorum, cosigned by, trusted?)
TABLE = [
    ("two-orgs", ("w1", "w2"), True),
    ("two-orgs", ("w1", "w3"), True),
    ("two-orgs", ("w1", "w2", "w3"), True),
    ("two-orgs", ("w2", "w3"), False),  # two witnesses, one organisation
    ("two-orgs", ("w1",), False),
    ("two-orgs", (), False),
    ("org-b", ("w3",), True),
    ("org-b", ("w1",), False),
    ("w1", ("w1",), True),
    ("w1", ("w2", "w3"), False),
    ("none", (), True),
]


@pytest.mark.parametrize(("quorum", "by", "ok"), TABLE)
def test_a_note_is_trusted_exactly_when_the_quorum_cosigned_it(
    world: LogWorld, quorum: str, by: tuple[str, ...], ok: bool
) -> None:
    verdict = judge_note(world.cosigned(7, by), world.policy(quorum), world.hub_key, now=NOW)
    if ok:
        assert isinstance(verdict, TrustedCheckpoint)
        assert (verdict.origin, verdict.size, verdict.root_hash) == (ORIGIN, 7, world.root(7))
        assert verdict.cosigned == by
        assert verdict.note == world.cosigned(7, by)
    else:
        assert isinstance(verdict, Refused)
        assert "not met" in verdict.reason


def test_a_refusal_names_the_missing_organisation(world: LogWorld) -> None:
    verdict = judge_note(world.cosigned(7, ("w2", "w3")), world.policy(), world.hub_key, now=NOW)
    assert isinstance(verdict, Refused)
    assert "missing: org-a" in verdict.reason


def test_a_note_not_signed_by_the_pinned_hub_key_is_refused_whatever_its_cosignatures(
    world: LogWorld,
) -> None:
    other = NoteSigner(ORIGIN, generate_key(world.suite))
    note = world.cosigned(7, ("w1", "w2", "w3"), note=world.note(7, signer=other))
    # Even under a policy naming the other key as the log: the pinned key decides.
    policy_text = world.policy_text().replace(world.hub_key.encode(), other.verifier.encode())
    verdict = judge_note(note, parse_policy(policy_text), world.hub_key, now=NOW)
    assert isinstance(verdict, Refused)
    assert "pinned hub key" in verdict.reason


def test_a_policy_naming_another_log_refuses_the_hubs_note(world: LogWorld) -> None:
    other = NoteSigner("other.example/log", generate_key(world.suite))
    text = world.policy_text().replace(world.hub_key.encode(), other.verifier.encode())
    verdict = judge_note(
        world.cosigned(7, ("w1", "w2")), parse_policy(text), world.hub_key, now=NOW
    )
    assert isinstance(verdict, Refused)
    assert "not a log of the policy" in verdict.reason


def test_a_policy_without_log_lines_takes_the_pinned_hub_key_for_the_log(world: LogWorld) -> None:
    verdict = judge_note(
        world.cosigned(7, ("w1", "w2")), world.policy(log=False), world.hub_key, now=NOW
    )
    assert isinstance(verdict, TrustedCheckpoint)


def test_a_forged_cosignature_by_a_known_witness_rejects_the_whole_note(world: LogWorld) -> None:
    good = world.cosigned(7, ("w1", "w2", "w3"))
    # w3's line, made over another tree's body: a known key whose signature fails.
    forged_line = world.cosigned(6, ("w3",)).rstrip("\n").rsplit("\n", 1)[1]
    lines = good.rstrip("\n").split("\n")
    note = "\n".join([*lines[:-1], forged_line]) + "\n"
    verdict = judge_note(note, world.policy(), world.hub_key, now=NOW)
    assert isinstance(verdict, Refused)
    assert "w3" in verdict.reason


def test_a_cosignature_from_the_future_is_refused(world: LogWorld) -> None:
    note = world.cosigned(7, ("w1", "w2"), timestamp=NOW + 3600)
    assert isinstance(judge_note(note, world.policy(), world.hub_key, now=NOW), Refused)
    # Within the skew margin it counts; with no clock it is not checked.
    near = world.cosigned(7, ("w1", "w2"), timestamp=NOW + 60)
    assert isinstance(judge_note(near, world.policy(), world.hub_key, now=NOW), TrustedCheckpoint)
    assert isinstance(judge_note(note, world.policy(), world.hub_key, now=None), TrustedCheckpoint)


def test_unknown_signers_on_the_note_are_ignored(world: LogWorld) -> None:
    stranger = NoteSigner("stranger.example", generate_key(world.suite))
    note = add_cosignature(world.cosigned(7, ("w1", "w2")), stranger)
    assert isinstance(judge_note(note, world.policy(), world.hub_key, now=NOW), TrustedCheckpoint)


@pytest.mark.parametrize("note", ["", "not a note", "a\n1\nAAAA\n\n"])
def test_what_is_not_a_signed_note_is_refused_not_raised(world: LogWorld, note: str) -> None:
    assert isinstance(judge_note(note, world.policy(), world.hub_key, now=NOW), Refused)


def test_a_tampered_body_is_refused(world: LogWorld) -> None:
    note = world.cosigned(7, ("w1", "w2")).replace("\n7\n", "\n8\n", 1)
    assert isinstance(judge_note(note, world.policy(), world.hub_key, now=NOW), Refused)


# -- newest ----------------------------------------------------------------------------
def test_the_first_trusted_checkpoint_is_taken(world: LogWorld) -> None:
    cp = trusted(world, 5)
    assert newest(None, cp) == (cp, None)


def test_the_larger_tree_wins_and_a_smaller_one_changes_nothing(world: LogWorld) -> None:
    small, large = trusted(world, 5), trusted(world, 8)
    assert newest(small, large) == (large, None)
    assert newest(large, small) == (large, None)


def test_the_same_checkpoint_with_other_witnesses_keeps_the_held_one(world: LogWorld) -> None:
    held, again = trusted(world, 5, ("w1", "w2")), trusted(world, 5, ("w1", "w3"))
    assert newest(held, again) == (held, None)


def test_a_second_root_for_the_same_size_is_a_split_view(world: LogWorld) -> None:
    held = trusted(world, 5)
    forked = world.cosigned(5, ("w1", "w2"), note=world.note(5, root=b"\x01" * 32))
    other = judge_note(forked, world.policy(), world.hub_key, now=NOW)
    assert isinstance(other, TrustedCheckpoint)
    kept, problem = newest(held, other)
    assert kept is held
    assert problem is not None and "split view" in problem


def test_another_origin_is_not_followed(world: LogWorld) -> None:
    held = trusted(world, 5)
    stranger = TrustedCheckpoint("other/log", 9, b"\x02" * 32, "", ("w1",))
    kept, problem = newest(held, stranger)
    assert kept is held
    assert problem is not None and "other/log" in problem


# -- covered ---------------------------------------------------------------------------
def test_nothing_is_covered_without_a_trusted_checkpoint(world: LogWorld) -> None:
    records = [waiting(world, i) for i in range(3)]
    assert covered(records, None) == ([], records)


@pytest.mark.parametrize("size", [0, 1, 4, 5, 9, 10])
def test_a_checkpoint_covers_exactly_the_indexes_below_its_size(world: LogWorld, size: int) -> None:
    records = [waiting(world, i) for i in (9, 0, 4, 5)]
    cp = TrustedCheckpoint(ORIGIN, size, world.root(size), "", ())
    inside, outside = covered(records, cp)
    assert [r.index for r in inside] == [i for i in (9, 0, 4, 5) if i < size]
    assert [r.index for r in outside] == [i for i in (9, 0, 4, 5) if i >= size]


# -- prove -----------------------------------------------------------------------------
@pytest.mark.parametrize(("index", "size"), [(0, 1), (0, 10), (3, 7), (6, 7), (9, 10), (4, 8)])
def test_the_hubs_proof_settles_a_covered_record(world: LogWorld, index: int, size: int) -> None:
    cp = trusted(world, size)
    record = waiting(world, index)
    proof = world.inclusion_proof(index, size)
    assert (
        prove(
            record,
            cp,
            leaf_hash=record.leaf_hash,
            index=index,
            size=size,
            proof=proof,
            tree=world.tree,
        )
        is None
    )


def test_a_record_the_checkpoint_does_not_cover_is_not_proven(world: LogWorld) -> None:
    cp = trusted(world, 5)
    record = waiting(world, 7)
    problem = prove(
        record, cp, leaf_hash=record.leaf_hash, index=7, size=10, proof=[], tree=world.tree
    )
    assert problem is not None and "does not cover" in problem


def test_a_proof_for_another_tree_or_index_is_not_taken(world: LogWorld) -> None:
    cp = trusted(world, 7)
    record = waiting(world, 3)
    bigger = world.inclusion_proof(3, 10)
    problem = prove(
        record, cp, leaf_hash=record.leaf_hash, index=3, size=10, proof=bigger, tree=world.tree
    )
    assert problem is not None and "tree of 10" in problem
    other = world.inclusion_proof(2, 7)
    problem = prove(
        record, cp, leaf_hash=world.leaves[2], index=2, size=7, proof=other, tree=world.tree
    )
    assert problem is not None and "index 2" in problem


def test_a_leaf_that_is_not_the_records_is_not_taken(world: LogWorld) -> None:
    cp = trusted(world, 7)
    record = waiting(world, 3)
    proof = world.inclusion_proof(3, 7)
    problem = prove(
        record, cp, leaf_hash=world.leaves[4], index=3, size=7, proof=proof, tree=world.tree
    )
    assert problem is not None and "not this record's" in problem


def test_a_proof_that_does_not_reach_the_quorum_root_is_not_taken(world: LogWorld) -> None:
    cp = trusted(world, 7)
    record = waiting(world, 3)
    proof = world.inclusion_proof(3, 7)
    wrong = [proof[0][::-1], *proof[1:]]
    problem = prove(
        record, cp, leaf_hash=record.leaf_hash, index=3, size=7, proof=wrong, tree=world.tree
    )
    assert problem is not None and "does not verify" in problem
    short = prove(
        record, cp, leaf_hash=record.leaf_hash, index=3, size=7, proof=proof[:-1], tree=world.tree
    )
    assert short is not None


def test_a_true_proof_for_a_leaf_of_a_checkpoint_the_quorum_did_not_sign_fails(
    world: LogWorld,
) -> None:
    # The hub's tree changed under the record: the proof is of its current tree, the root
    # of the cosigned checkpoint is another.
    cp = TrustedCheckpoint(ORIGIN, 7, b"\x03" * 32, "", ("w1", "w2"))
    record = waiting(world, 3)
    proof = world.inclusion_proof(3, 7)
    assert prove(
        record, cp, leaf_hash=record.leaf_hash, index=3, size=7, proof=proof, tree=world.tree
    )


# -- poll_delay ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("failures", "expected"),
    [(0, 2.0), (1, 4.0), (2, 8.0), (3, 16.0), (4, 30.0), (50, 30.0), (10**6, 30.0)],
)
def test_polling_backs_off_while_the_hub_does_not_answer(failures: int, expected: float) -> None:
    assert poll_delay(failures, interval=2.0, maximum=30.0) == expected


def test_polling_never_goes_below_its_interval() -> None:
    assert poll_delay(3, interval=5.0, maximum=1.0) == 5.0
    assert poll_delay(-1, interval=5.0, maximum=60.0) == 5.0


# -- a larger trusted tree must extend the one held ---------------------------------------------
def test_a_larger_tree_that_extends_the_held_one_is_taken(world: LogWorld) -> None:
    held, larger = trusted(world, 4), trusted(world, 9)
    assert extends(held, larger, world.consistency_proof(4, 9), world.tree) is None
    # the empty tree is every prefix
    assert extends(trusted(world, 0), larger, [], world.tree) is None


def test_a_larger_tree_with_another_history_is_a_split_view(world: LogWorld) -> None:
    held = trusted(world, 4)
    fork = LogWorld(
        hub=world.hub, witnesses=world.witnesses, leaves=list(world.leaves), suite=world.suite
    )
    fork.leaves[2] = b"\x07" * 32  # entry 2 rewritten, then the log grown on from there
    forked = judge_note(fork.cosigned(9, ("w1", "w2")), world.policy(), world.hub_key, now=NOW)
    assert isinstance(forked, TrustedCheckpoint)
    for proof in (fork.consistency_proof(4, 9), world.consistency_proof(4, 9), []):
        problem = extends(held, forked, proof, world.tree)
        assert problem is not None and "split view" in problem
    # Nor does a made-up proof make an honest larger tree acceptable when it is not one.
    assert extends(held, trusted(world, 9), [b"\x00" * 32], world.tree) is not None


# -- the log's tree: proofs are checked in its suite's hash, not another's -------------------
def _other(suite: Suite) -> Suite:
    return SM2_SM3 if suite is ED25519_SHA256 else ED25519_SHA256


def test_a_proof_is_checked_in_the_logs_own_tree(world: LogWorld) -> None:
    cp = trusted(world, 7)
    record = waiting(world, 3)
    proof = world.inclusion_proof(3, 7)
    found = {
        suite.name: prove(
            record, cp, leaf_hash=record.leaf_hash, index=3, size=7, proof=proof, tree=suite.tree
        )
        for suite in (world.suite, _other(world.suite))
    }
    assert found[world.suite.name] is None
    wrong = found[_other(world.suite).name]
    assert wrong is not None and "does not verify" in wrong


def test_consistency_is_checked_in_the_logs_own_tree(world: LogWorld) -> None:
    held, larger = trusted(world, 3), trusted(world, 9)
    proof = world.consistency_proof(3, 9)
    assert extends(held, larger, proof, world.tree) is None
    problem = extends(held, larger, proof, _other(world.suite).tree)
    assert problem is not None and "split view" in problem
