"""Judging a cosigned checkpoint against a trust policy (ledger.quorum.evaluate): k of n,
any/all, nested groups (every subset of the spec example's six witnesses against the rule
it states), duplicate lines, wrong keys, forged key IDs, a cosignature over another
checkpoint, future timestamps, unknown lines ignored, and the log's own signature."""

from __future__ import annotations

import hashlib
from itertools import combinations

import pytest

from ledger.checkpoint import Checkpoint, NoteSigner, sign_checkpoint
from ledger.cosignature import Cosignature, CosignerSigner, CosignerVerifier, attach_cosignatures
from ledger.errors import CheckpointError, PolicyError
from ledger.keys import generate_key
from ledger.policy import TrustPolicy, parse_policy
from ledger.quorum import MAX_FUTURE_S, evaluate
from tests.support.cosigners import T, cosigned, policy_text, witness

ORIGIN = "example.com/log"
LOG = NoteSigner(ORIGIN, generate_key())
NAMES = ("X1", "X2", "X3", "Y1", "Y2", "Y3")
W = {name: witness(f"{name.lower()}.example/w") for name in NAMES}
ROOT = hashlib.sha256(b"root").digest()
NOTE = sign_checkpoint(Checkpoint(ORIGIN, 42, ROOT), LOG)
OTHER_NOTE = sign_checkpoint(Checkpoint(ORIGIN, 43, hashlib.sha256(b"other").digest()), LOG)

SPEC = parse_policy(
    policy_text(
        LOG,
        W,
        "group X-witnesses 2 X1 X2 X3",
        "group Y-witnesses any Y1 Y2 Y3",
        "group X-and-Y all X-witnesses Y-witnesses",
        quorum="X-and-Y",
    )
)


def policy(*rules: str, quorum: str, names: tuple[str, ...] = ("X1", "X2", "X3")) -> TrustPolicy:
    return parse_policy(policy_text(LOG, {n: W[n] for n in names}, *rules, quorum=quorum))


def by(*names: str, note: str = NOTE) -> str:
    return cosigned(note, [W[n] for n in names])


TWO_OF_THREE = policy("group g 2 X1 X2 X3", quorum="g")


@pytest.mark.parametrize(
    ("signers", "met"),
    [
        ((), False),
        (("X1",), False),
        (("X1", "X2"), True),
        (("X2", "X3"), True),
        (("X1", "X2", "X3"), True),
        (("Y1", "Y2"), False),  # witnesses the policy does not know
    ],
)
def test_two_of_three(signers: tuple[str, ...], met: bool) -> None:
    report = evaluate(TWO_OF_THREE, by(*signers))
    assert report.quorum_met is met and report.ok is met
    assert set(report.cosigned) == set(signers) & {"X1", "X2", "X3"}


@pytest.mark.parametrize(
    ("how", "signers", "met"),
    [
        ("any", (), False),
        ("any", ("X3",), True),
        ("all", ("X1", "X2"), False),
        ("all", ("X1", "X2", "X3"), True),
        ("1", ("X2",), True),
        ("3", ("X1", "X3"), False),
    ],
)
def test_any_all_and_numbers(how: str, signers: tuple[str, ...], met: bool) -> None:
    assert evaluate(policy(f"group g {how} X1 X2 X3", quorum="g"), by(*signers)).ok is met


def test_a_single_witness_quorum() -> None:
    p = policy(quorum="X2")
    assert evaluate(p, by("X2")).ok
    report = evaluate(p, by("X1", "X3"))
    assert not report.ok
    assert report.reasons() == ["quorum X2 not met: witness X2 has not cosigned this checkpoint"]


def test_quorum_none_needs_only_the_log() -> None:
    p = policy(quorum="none")
    assert evaluate(p, NOTE).ok
    assert p.describe_quorum() == "no cosignature"


@pytest.mark.parametrize(
    "signers", [s for k in range(len(NAMES) + 1) for s in combinations(NAMES, k)]
)
def test_every_subset_against_the_spec_example(signers: tuple[str, ...]) -> None:
    xs = sum(n.startswith("X") for n in signers)
    ys = sum(n.startswith("Y") for n in signers)
    report = evaluate(SPEC, by(*signers))
    assert report.quorum_met is (xs >= 2 and ys >= 1)
    groups = {g.name: g.met for g in report.groups}
    assert groups == {"X-witnesses": xs >= 2, "Y-witnesses": ys >= 1, "X-and-Y": report.quorum_met}


def test_nested_reasons_name_each_unmet_group() -> None:
    report = evaluate(SPEC, by("X1", "Y2"))
    assert report.reasons() == [
        "quorum X-and-Y not met: 1 of the 2 needed of 2 (X-witnesses, Y-witnesses) witnessed "
        "it; missing: X-witnesses",
        "group X-witnesses not met: 1 of the 2 needed of 3 (X1, X2, X3) witnessed it; "
        "missing: X2, X3",
    ]


def test_deeper_nesting() -> None:
    p = policy(
        "group a any X1",
        "group b all a X2",
        "group c 1 b X3",
        quorum="c",
    )
    assert evaluate(p, by("X1", "X2")).ok
    assert evaluate(p, by("X3")).ok
    assert not evaluate(p, by("X1")).ok
    assert not evaluate(p, by("X2")).ok


def test_two_lines_by_one_witness_count_once() -> None:
    twice = attach_cosignatures(by("X1"), [cosigned(NOTE, [W["X1"]], T + 5).split("\n")[-2]])
    assert twice.count("x1.example/w") == 2
    report = evaluate(TWO_OF_THREE, twice)
    assert report.cosigned == ("X1",) and not report.quorum_met
    assert report.witnesses[0].timestamp == T


def test_a_key_with_the_witness_name_but_another_key_is_ignored() -> None:
    # Same name, another key: another key ID, so not this witness's line (signed-note).
    impostor = CosignerSigner(W["X1"].name, generate_key())
    note = cosigned(by("X2"), [impostor])
    report = evaluate(TWO_OF_THREE, note)
    assert report.witnesses[0].status == "absent"
    assert report.ignored_lines == 1 and not report.quorum_met
    assert not report.invalid


def test_a_forged_key_id_is_an_invalid_cosignature_and_rejects_the_note() -> None:
    # The line claims X1's name and key ID, but another key signed it.
    other = CosignerSigner(W["X1"].name, generate_key())
    real = other.cosign(NOTE.partition("\n\n")[0].encode() + b"\n", T)
    forged = Cosignature(real.name, W["X1"].verifier.key_id, real.timestamp, real.signature)
    note = attach_cosignatures(by("X2", "X3"), [forged.line()])
    report = evaluate(TWO_OF_THREE, note)
    assert report.quorum_met  # X2 and X3 verify ...
    assert not report.ok  # ... but a failing signature by a known key rejects the note
    assert report.witnesses[0].status == "invalid"
    assert "does not verify" in report.reasons()[0]
    assert "rejected whole" in report.reasons()[0]


def test_a_cosignature_over_another_checkpoint_is_refused() -> None:
    copied = cosigned(OTHER_NOTE, [W["X1"]]).split("\n")[-2]
    note = attach_cosignatures(by("X2"), [copied])
    report = evaluate(TWO_OF_THREE, note)
    assert [w.status for w in report.witnesses] == ["invalid", "cosigned", "absent"]
    assert not report.ok and not report.quorum_met


def test_a_malformed_line_with_a_witness_key_id_is_invalid() -> None:
    import base64

    key_id = W["X1"].verifier.key_id
    line = f"— {W['X1'].name} {base64.b64encode(key_id + b'short').decode()}"
    report = evaluate(TWO_OF_THREE, by("X2", "X3") + line + "\n")
    assert report.witnesses[0].status == "invalid"
    assert "malformed" in report.witnesses[0].detail and not report.ok


def test_unknown_lines_are_ignored() -> None:
    strangers = [witness(f"stranger{i}.example") for i in range(3)]
    note = cosigned(by("X1", "X2"), strangers)
    report = evaluate(TWO_OF_THREE, note)
    assert report.ok and report.ignored_lines == 3
    assert "  3 signature line(s) of unknown keys ignored" in report.summary()


@pytest.mark.parametrize(
    ("timestamp", "now", "ok"),
    [
        (T, T, True),
        (T + MAX_FUTURE_S, T, True),
        (T + MAX_FUTURE_S + 1, T, False),
        (T + 10**9, None, True),  # no clock given: not checked
        (1, T, True),  # old is fine: a kept proof is years old
    ],
)
def test_timestamps(timestamp: int, now: int | None, ok: bool) -> None:
    note = cosigned(NOTE, [W["X1"]], timestamp)
    report = evaluate(policy(quorum="X1"), note, now=now)
    assert report.ok is ok
    if not ok:
        assert "timestamped in the future" in report.witnesses[0].detail


def test_the_log_signature_is_required() -> None:
    stranger_log = NoteSigner(ORIGIN, generate_key())
    note = cosigned(sign_checkpoint(Checkpoint(ORIGIN, 42, ROOT), stranger_log), [W["X1"]])
    report = evaluate(policy(quorum="X1"), note)
    assert report.quorum_met and not report.ok
    assert report.log_key is None
    assert report.reasons() == [
        f"the log's signature does not verify: checkpoint carries no signature by {ORIGIN}"
    ]


def test_the_origin_must_be_a_log_of_the_policy() -> None:
    elsewhere = NoteSigner("elsewhere.example/log", generate_key())
    note = sign_checkpoint(Checkpoint("elsewhere.example/log", 1, ROOT), elsewhere)
    report = evaluate(policy(quorum="none"), note)
    assert not report.ok
    assert "origin 'elsewhere.example/log' is not a log of the policy" in report.reasons()[0]


def test_a_tampered_body_fails_the_log_and_every_cosignature() -> None:
    note = by("X1", "X2").replace("\n42\n", "\n41\n", 1)
    report = evaluate(TWO_OF_THREE, note)
    assert report.log_problem is not None
    assert [w.status for w in report.witnesses] == ["invalid", "invalid", "absent"]


def test_a_policy_without_logs_needs_a_log_key() -> None:
    p = parse_policy(policy_text(None, {"X1": W["X1"]}, quorum="X1"))
    note = by("X1")
    assert "names no log" in evaluate(p, note).reasons()[0]
    assert evaluate(p, note, log_key=LOG.verifier).ok


def test_the_log_key_is_not_an_ignored_line() -> None:
    assert evaluate(TWO_OF_THREE, by("X1", "X2")).ignored_lines == 0


def test_report_as_dict_and_summary() -> None:
    report = evaluate(SPEC, by("X1", "X2", "Y3"), now=T)
    d = report.as_dict()
    assert d["ok"] is True and d["size"] == 42 and d["cosigned"] == ["X1", "X2", "Y3"]
    assert d["reasons"] == [] and d["log_key"] == LOG.verifier.encode()
    lines = report.summary()
    assert lines[0] == f"checkpoint {ORIGIN} at size 42"
    assert f"  witness X1: cosigned at {T}" in lines
    assert "  witness X3: no cosignature" in lines
    assert lines[-1].startswith("  quorum met: X-and-Y: all of (")


def test_operators_show_in_the_report() -> None:
    from ledger.policy import PolicyBuilder

    b = PolicyBuilder()
    b.add_log(LOG.verifier)
    b.add_witness("cdc", W["X1"].verifier, operator="harbour-cdc")
    b.set_quorum("cdc")
    report = evaluate(b.build(), by("X1"))
    assert report.witnesses[0].operator == "harbour-cdc"
    assert "  witness cdc (harbour-cdc): cosigned at 1700000000" in report.summary()


def test_bad_input() -> None:
    with pytest.raises(CheckpointError):
        evaluate(TWO_OF_THREE, "not a note")
    with pytest.raises(PolicyError):
        evaluate("policy", NOTE)  # type: ignore[arg-type]


def test_witness_key_names_need_not_match_policy_names() -> None:
    # The policy's names are local; lines are matched by the key's name and ID.
    assert W["X1"].name != "X1"
    assert isinstance(SPEC.witness("X1").key, CosignerVerifier)  # type: ignore[union-attr]
    assert evaluate(SPEC, by("X1", "X3", "Y1")).ok
