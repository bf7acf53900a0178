"""Pilot definitions from YAML: every problem reported at its file:line:column."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from pilots import PilotDefinitionError, load_pilot, load_pilot_text, load_pilots

GOOD = """\
id: test-pilot
name: Test pilot
zone: Test zone
roles:
  - id: hospital
  - id: admin
members:
  - org: hosp-a
    name: Hospital A
    kind: hospital
    roles: [hospital, admin]
data_types:
  - id: fhir.Observation
    name: Reading
    personal: true
    consent_required: true
    retention: P15Y
    loinc: [8480-6]
publish:
  - role: hospital
    types: [fhir.Observation]
read:
  - role: hospital
    types: [fhir.Observation]
    purposes: [TREAT]
    break_glass: true
consent_administrators: [admin]
auditors: [admin]
"""


def problems(text: str) -> list[str]:
    with pytest.raises(PilotDefinitionError) as caught:
        load_pilot_text(textwrap.dedent(text), "t.yaml")
    return [str(p) for p in caught.value.problems]


def edited(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new, 1)


def test_the_good_definition_loads() -> None:
    pilot = load_pilot_text(GOOD)
    assert pilot.id == "test-pilot"
    assert pilot.data_type("fhir.Observation") is not None
    assert pilot.data_types[0].retention.iso() == "P15Y"
    assert pilot.member("hosp-a") is not None and pilot.member("nobody") is None


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "name: Test pilot\n",
            "name: Test pilot\ncolour: red\n",
            "t.yaml:3:1: colour: unknown key 'colour'",
        ),
        (
            "    kind: hospital\n",
            "    knid: hospital\n",
            "t.yaml:10:5: members[0].knid: unknown key 'knid'; did you mean 'kind'?",
        ),
        (
            "kind: hospital",
            "kind: hospitl",
            "t.yaml:10:11: members[0].kind: Input should be 'city-bureau', 'hospital', "
            "'research-institute', 'operator', 'company' or 'clinic'; got 'hospitl'",
        ),
        (
            "purposes: [TREAT]",
            "purposes: [TRET]",
            "t.yaml:25:16: read[0].purposes[0]: 'TRET' is not an HL7 v3 PurposeOfUse code "
            "(did you mean TREAT?)",
        ),
        (
            "purposes: [TREAT]",
            "purposes: [TREAT, ETREAT]",
            "t.yaml:23:5: read[0]: ETREAT is break-glass: remove it from purposes, "
            "set break_glass: true",
        ),
        (
            "retention: P15Y",
            "retention: fifteen years",
            "t.yaml:17:16: data_types[0].retention: 'fifteen years' is not an ISO 8601 duration",
        ),
        (
            "loinc: [8480-6]",
            "loinc: [8480-5]",
            "t.yaml:18:13: data_types[0].loinc[0]: '8480-5' is not a LOINC code",
        ),
        (
            "id: fhir.Observation",
            "id: fhir.Observaton",
            "t.yaml:13:5: data_types[0]: 'Observaton' is not a FHIR R4B resource type",
        ),
        ("id: test-pilot", "id: Test_Pilot", "t.yaml:1:5: id: 'Test_Pilot' is not a slug"),
        (
            "    personal: true\n",
            "",
            "t.yaml:13:5: data_types[0].personal: required key 'personal' missing",
        ),
        (
            "    roles: [hospital, admin]",
            "    roles: []",
            "t.yaml:11:12: members[0].roles: must not be empty",
        ),
        (
            "consent_required: true",
            "consent_required: yes please",
            "t.yaml:16:23: data_types[0].consent_required: Input should be a valid boolean; "
            "got 'yes please'",
        ),
    ],
)
def test_field_problems_name_their_line(old: str, new: str, expected: str) -> None:
    found = problems(edited(old, new))
    assert any(p.startswith(expected) for p in found), found


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "roles: [hospital, admin]",
            "roles: [hospital, admn]",
            "t.yaml:11:23: members[0].roles[1]: role 'admn' is not defined "
            "(roles: admin, hospital)",
        ),
        (
            "  - role: hospital\n    types: [fhir.Observation]\n    purposes",
            "  - role: hospital\n    types: [fhir.Consent]\n    purposes",
            "t.yaml:24:13: read[0].types[0]: data type 'fhir.Consent' is not defined",
        ),
        (
            "auditors: [admin]",
            "auditors: [auditor]",
            "t.yaml:28:12: auditors[0]: role 'auditor' is not defined",
        ),
        (
            "consent_administrators: [admin]\n",
            "",
            "t.yaml:1:1: consent_administrators: some data types require consent",
        ),
        (
            "  - id: admin\n",
            "  - id: admin\n  - id: admin\n",
            "t.yaml:7:9: roles[2].id: id 'admin' is defined more than once",
        ),
    ],
)
def test_reference_problems_name_their_line(old: str, new: str, expected: str) -> None:
    found = problems(edited(old, new))
    assert any(p.startswith(expected) for p in found), found


def test_break_glass_is_only_for_personal_data() -> None:
    text = edited(
        "personal: true\n    consent_required: true", "personal: false\n    consent_required: false"
    )
    assert problems(text) == [
        "t.yaml:24:13: read[0].types[0]: break_glass is for personal data; "
        "'fhir.Observation' is not personal"
    ]


def test_consent_required_needs_personal() -> None:
    found = problems(edited("personal: true", "personal: false"))
    assert found == [
        "t.yaml:13:5: data_types[0]: consent_required is only for personal data: set personal: true"
    ]


def test_all_problems_are_reported_in_line_order() -> None:
    text = edited("kind: hospital", "kind: spaceport").replace("TREAT]", "TRET]")
    found = problems(text)
    assert [p.split(":")[1] for p in found] == ["10", "25"]


def test_yaml_syntax_errors_name_their_line() -> None:
    found = problems("id: x\nname: [unclosed\nzone: z\n")
    assert len(found) == 1 and found[0].startswith("t.yaml:")
    assert "not valid YAML" in found[0]


def test_duplicate_keys_are_refused() -> None:
    assert problems("id: a\nname: n\nid: b\n")[0] == "t.yaml:3:1: id: key given twice"


def test_yaml_booleans_as_keys_are_explained() -> None:
    found = problems("id: a\nno: 1\n")
    assert found[0].startswith("t.yaml:2:1: key False is not text (YAML reads yes/no")


@pytest.mark.parametrize("text", ["", "# nothing\n", "- a\n- b\n", "just text\n"])
def test_a_definition_is_a_mapping(text: str) -> None:
    assert "a pilot definition is a mapping" in problems(text)[0]


def test_not_utf8() -> None:
    with pytest.raises(PilotDefinitionError, match="not UTF-8"):
        load_pilot_text(b"id: \xff\n", "t.yaml")


def test_alias_bombs_are_stopped() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 8):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    found = problems("\n".join(lines) + "\n")
    assert "too large" in found[0]


def test_merge_keys_work(tmp_path: Path) -> None:
    text = GOOD.replace(
        "members:\n  - org: hosp-a\n    name: Hospital A\n    kind: hospital\n",
        "base: &base\n  kind: hospital\nmembers:\n  - org: hosp-a\n    name: Hospital A\n"
        "    <<: *base\n",
    )
    # the merge key works; the anchor's own top-level key is then refused by name
    found = problems(text)
    assert found == [found[0]] and "unknown key 'base'" in found[0]


def test_load_pilot_reads_files_and_names_them(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(edited("kind: hospital", "kind: spaceport"))
    with pytest.raises(PilotDefinitionError) as caught:
        load_pilot(path)
    assert str(caught.value).startswith(f"{path}:10:11: members[0].kind")
    with pytest.raises(PilotDefinitionError, match="cannot read"):
        load_pilot(tmp_path / "missing.yaml")


def test_load_pilots_from_a_directory(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "notes.txt").write_text("not a pilot")
    assert list(load_pilots(tmp_path)) == ["test-pilot"]
    (tmp_path / "b.yaml").write_text(GOOD)
    with pytest.raises(PilotDefinitionError, match=r"already defined in .*a\.yaml"):
        load_pilots(tmp_path)
    with pytest.raises(PilotDefinitionError, match="not a directory"):
        load_pilots(tmp_path / "nope")


def test_late_delivery_window_defaults_to_ten_minutes() -> None:
    assert load_pilot_text(GOOD).late_delivery_window == timedelta(minutes=10)


@pytest.mark.parametrize(
    ("text", "window", "iso"),
    [
        ("PT10M", timedelta(minutes=10), "PT10M"),
        ("PT90S", timedelta(seconds=90), "PT1M30S"),
        ("PT1H", timedelta(hours=1), "PT1H"),
        ("PT0S", timedelta(0), "PT0S"),
    ],
)
def test_late_delivery_window_forms(text: str, window: timedelta, iso: str) -> None:
    pilot = load_pilot_text(GOOD + f"late_delivery_window: {text}\n")
    assert pilot.late_delivery_window == window
    assert pilot.model_dump(mode="json")["late_delivery_window"] == iso


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("ten minutes", "'ten minutes' is not an ISO 8601 duration of hours, minutes or seconds"),
        ("P1M", "'P1M' is not an ISO 8601 duration of hours, minutes or seconds"),
        ("PT2H", "a late-delivery window is for records in flight: between PT0S and PT1H"),
        ("P7D", "a late-delivery window is for records in flight"),
        ("P999999999D", "a late-delivery window is for records in flight"),
    ],
)
def test_late_delivery_window_problems_name_their_line(value: str, message: str) -> None:
    found = problems(GOOD + f"late_delivery_window: {value}\n")
    assert found[0].startswith(f"t.yaml:29:23: late_delivery_window: {message}"), found


def test_a_number_of_seconds_is_not_a_window() -> None:
    found = problems(GOOD + "late_delivery_window: 600\n")
    assert found[0].startswith("t.yaml:29:23: late_delivery_window: 600 is not an ISO 8601"), found


def test_consent_recording_and_break_glass_after_withdrawal_load() -> None:
    text = GOOD + (
        "record_consent:\n  - role: admin\n    types: [fhir.Observation]\n"
        "break_glass_after_withdrawal: allow\n"
    )
    pilot = load_pilot_text(text)
    assert pilot.record_consent[0].role == "admin"
    assert pilot.break_glass_after_withdrawal == "allow"
    assert load_pilot_text(GOOD).break_glass_after_withdrawal == "refuse"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            "break_glass_after_withdrawal: alow\n",
            "t.yaml:29:31: break_glass_after_withdrawal: Input should be 'refuse' or 'allow'; "
            "got 'alow'",
        ),
        (
            "break_glass_after_withdrawal: true\n",
            "t.yaml:29:31: break_glass_after_withdrawal: Input should be 'refuse' or 'allow'",
        ),
        (
            "record_consent:\n  - role: hospital\n    types: [fhir.Observation]\n",
            "t.yaml:30:11: record_consent[0].role: role 'hospital' records consents but is not "
            "among consent_administrators (admin)",
        ),
        (
            "record_consent:\n  - role: nurse\n    types: [fhir.Observation]\n",
            "t.yaml:30:11: record_consent[0].role: role 'nurse' is not defined",
        ),
        (
            "record_consent:\n  - role: admin\n    types: [fhir.Observaton]\n",
            "t.yaml:31:13: record_consent[0].types[0]: data type 'fhir.Observaton' is not defined",
        ),
        (
            "record_consent:\n  - role: admin\n    types: []\n",
            "t.yaml:31:12: record_consent[0].types: must not be empty",
        ),
        (
            "record_consent:\n  - role: admin\n    typs: [fhir.Observation]\n",
            "t.yaml:31:5: record_consent[0].typs: unknown key 'typs'; did you mean 'types'?",
        ),
    ],
)
def test_consent_recording_problems_name_their_line(extra: str, expected: str) -> None:
    found = problems(GOOD + extra)
    assert any(p.startswith(expected) for p in found), found


def test_consent_recording_is_for_types_that_need_consent() -> None:
    text = (
        GOOD.replace(
            "publish:",
            "  - id: stats.weekly\n    name: Weekly\n    personal: false\n"
            "    consent_required: false\n    retention: P1Y\npublish:",
        )
        + "record_consent:\n  - role: admin\n    types: [fhir.Observation, stats.weekly]\n"
    )
    found = problems(text)
    assert found == [
        "t.yaml:36:31: record_consent[0].types[1]: data type 'stats.weekly' needs no consent "
        "(consent_required: false)"
    ], found
