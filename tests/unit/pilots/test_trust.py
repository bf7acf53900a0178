"""The trust policy as a file (pilots.trust): the YAML form with member organisations as
groups, every problem at its file:line:column like a pilot definition's, the text form
through the same loader, and telling a policy from a pilot definition."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.checkpoint import Checkpoint, NoteSigner, sign_checkpoint
from ledger.keys import generate_key
from ledger.policy import Group, format_policy, parse_policy
from ledger.quorum import evaluate
from pilots.errors import PilotDefinitionError
from pilots.trust import is_trust_policy, load_trust_policy, load_trust_policy_text
from tests.support.cosigners import cosigned, policy_text, witness

ORIGIN = "harbour.swiftchain/ledger"
LOG = NoteSigner(ORIGIN, generate_key())
CDC = witness("witness.harbour-cdc.example")
HPH1 = witness("w1.harbour-peoples-hospital.example")
HPH2 = witness("w2.harbour-peoples-hospital.example")
CLINIC = witness("witness.seaview-clinic.example")

YAML = f"""\
# The alliance's trust policy: any two member organisations.
description: Harbour City alliance ledger
log:
  key: {LOG.verifier.encode()}
  origin: {ORIGIN}
  url: https://hub.harbour.example
witnesses:
  - key: {CDC.verifier.encode()}
    operator: harbour-cdc
  - name: hph-1
    key: {HPH1.verifier.encode()}
    operator: harbour-peoples-hospital
  - name: hph-2
    key: {HPH2.verifier.encode()}
    operator: harbour-peoples-hospital
    url: https://w2.harbour-peoples-hospital.example
  - name: clinic
    key: {CLINIC.verifier.encode()}
    operator: seaview-clinic
groups:
  - name: two-organisations
    threshold: 2
    members: [harbour-cdc, harbour-peoples-hospital, seaview-clinic]
quorum: two-organisations
"""

NOTE = sign_checkpoint(Checkpoint(ORIGIN, 9, b"\x07" * 32), LOG)


def problems(text: str, file: str = "alliance.yaml") -> list[str]:
    with pytest.raises(PilotDefinitionError) as caught:
        load_trust_policy_text(text, file, yaml=True)
    return [str(p) for p in caught.value.problems]


def test_the_yaml_form() -> None:
    policy = load_trust_policy_text(YAML, yaml=True)
    assert policy.logs[0].origin == ORIGIN and policy.logs[0].url == "https://hub.harbour.example"
    assert [w.name for w in policy.witnesses] == [CDC.name, "hph-1", "hph-2", "clinic"]
    assert [w.operator for w in policy.witnesses] == [
        "harbour-cdc",
        "harbour-peoples-hospital",
        "harbour-peoples-hospital",
        "seaview-clinic",
    ]
    # Each organisation named stands for "any of its witnesses".
    assert policy.groups == (
        Group("harbour-cdc", 1, (CDC.name,), "any"),
        Group("harbour-peoples-hospital", 1, ("hph-1", "hph-2"), "any"),
        Group("seaview-clinic", 1, ("clinic",), "any"),
        Group(
            "two-organisations", 2, ("harbour-cdc", "harbour-peoples-hospital", "seaview-clinic")
        ),
    )
    assert policy.quorum == "two-organisations"


@pytest.mark.parametrize(
    ("signers", "met"),
    [
        ((HPH1, HPH2), False),  # two witnesses, one organisation
        ((HPH1, CDC), True),
        ((CLINIC, HPH2), True),
        ((CDC,), False),
    ],
)
def test_a_quorum_of_organisations(signers: tuple[object, ...], met: bool) -> None:
    policy = load_trust_policy_text(YAML, yaml=True)
    assert evaluate(policy, cosigned(NOTE, signers)).ok is met  # type: ignore[arg-type]


def test_the_yaml_and_text_forms_agree() -> None:
    policy = load_trust_policy_text(YAML, yaml=True)
    again = parse_policy(format_policy(policy))
    assert again.groups == policy.groups and again.quorum == policy.quorum
    assert [w.key for w in again.witnesses] == [w.key for w in policy.witnesses]


def test_the_text_form_through_the_loader(tmp_path: Path) -> None:
    text = policy_text(LOG, {"cdc": CDC}, quorum="cdc")
    path = tmp_path / "alliance.policy"
    path.write_text(text)
    assert load_trust_policy(path).quorum == "cdc"
    assert load_trust_policy_text(text).quorum == "cdc"  # guessed from its first line
    path.write_text(text + "quorum cdc\n")
    with pytest.raises(PilotDefinitionError) as caught:
        load_trust_policy(path)
    assert [str(p) for p in caught.value.problems] == [
        f"{path}:4:1: a second quorum line (the quorum is already cdc)"
    ]


def test_yaml_by_suffix(tmp_path: Path) -> None:
    path = tmp_path / "alliance.yml"
    path.write_text(YAML)
    assert load_trust_policy(path).quorum == "two-organisations"


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(PilotDefinitionError, match="cannot read"):
        load_trust_policy(tmp_path / "missing.yaml")


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize(
    ("change", "needle", "message"),
    [
        (
            ("  - name: hph-1", "  - nmae: hph-1"),
            "nmae: hph-1",
            "unknown key 'nmae'; did you mean 'name'?",
        ),
        (("threshold: 2", "threshold: true"), "threshold: true", "True is not a threshold"),
        (
            ("threshold: 2", "threshold: 4"),
            "threshold: 4",
            "threshold 4 is not between 1",
        ),
        (("threshold: 2", "threshold: 0"), "threshold: 0", "0 is not a threshold"),
        (("threshold: 2", "threshold: some"), "threshold: some", "'some' is not a threshold"),
        (
            ("seaview-clinic]", "seaview-clinc]"),
            "members: [harbour-cdc",
            "'seaview-clinc' is not a witness",
        ),
        (("quorum: two-organisations", "quorum: three"), "quorum: three", "quorum 'three' is not"),
        (
            (f"origin: {ORIGIN}", "origin: other/log"),
            "key: " + LOG.verifier.encode(),
            "is not the key's name",
        ),
        ((f"key: {LOG.verifier.encode()}", "key: junk"), "key: junk", "verifier key reads"),
        (
            (f"key: {HPH2.verifier.encode()}", f"key: {HPH1.verifier.encode()}"),
            "- name: hph-2",
            "same public key as witness hph-1",
        ),
        (
            (f"key: {CLINIC.verifier.encode()}", f"key: {LOG.verifier.encode()}"),
            f"key: {LOG.verifier.encode()}",
            "not a cosigner key",
        ),
        (
            ("operator: seaview-clinic", "operator: Seaview Clinic"),
            "operator: Seaview Clinic",
            "is not a slug",
        ),
        (
            ("  - name: clinic", "  - name: hph-1"),
            "  - name: hph-1\n    key: " + CLINIC.verifier.encode(),
            "'hph-1' is already defined",
        ),
    ],
)
def test_problems_at_their_line(change: tuple[str, str], needle: str, message: str) -> None:
    text = YAML.replace(*change, 1)
    assert text != YAML
    found = problems(text)
    assert len(found) == 1, found
    first_line = needle.split("\n")[0]
    candidates = [i for i, line in enumerate(text.splitlines(), 1) if first_line in line]
    if "\n" in needle:
        candidates = [text[: text.index(needle)].count("\n") + 1]
    assert any(found[0].startswith(f"alliance.yaml:{n}:") for n in candidates), found
    assert message in found[0], found


def test_a_witness_in_two_groups_is_refused_at_the_member() -> None:
    text = YAML.replace(
        "quorum: two-organisations",
        "  - name: hospital-only\n    threshold: any\n    members: [hph-1]\n"
        "quorum: two-organisations",
    )
    found = problems(text)
    assert (
        len(found) == 1
        and "hph-1 is already a member of group harbour-peoples-hospital" in found[0]
    )
    assert found[0].startswith(f"alliance.yaml:{line_of(text, 'members: [hph-1]')}:")


def test_quorum_may_name_an_organisation_or_none() -> None:
    text = YAML.split("groups:")[0] + "quorum: harbour-peoples-hospital\n"
    policy = load_trust_policy_text(text, yaml=True)
    assert policy.group("harbour-peoples-hospital") is not None
    assert (
        load_trust_policy_text(YAML.split("witnesses:")[0] + "quorum: none\n", yaml=True).quorum
        == "none"
    )


def test_not_a_mapping_and_missing_quorum() -> None:
    assert problems("- a\n- b\n") == [
        "alliance.yaml:1:1: a trust policy is a mapping of keys (log, witnesses, ...);"
        " this is a list"
    ]
    assert problems("description: x\n")[0].endswith("required key 'quorum' missing")


def test_one_mistake_one_message() -> None:
    text = YAML.replace(f"key: {CDC.verifier.encode()}", "key: junk")
    found = problems(text)
    # The CDC witness is refused; the group naming its organisation is not reported again.
    assert len(found) == 1, found
    assert "verifier key reads" in found[0]


def test_telling_a_policy_from_a_pilot() -> None:
    assert is_trust_policy("alliance.yaml", YAML.encode())
    assert is_trust_policy("x.txt", b"anything")
    assert is_trust_policy("alliance", b"# comment\n\nlog abc\n")
    pilot = Path("pilots/definitions/air-quality.yaml")
    assert not is_trust_policy(pilot, pilot.read_bytes())
