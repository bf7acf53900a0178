"""The packaged demonstration-zone pilots, and `swiftchain pilot` over them."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pilots import Pilot, load_pilot_text, load_pilots, packaged_definitions
from swiftchain.cli import cli

EXPECTED = {
    "air-quality",
    "traffic-flow",
    "smart-parking",
    "chronic-care",
    "cross-hospital-referral",
}
DEFINITIONS = Path(__file__).resolve().parents[3] / "pilots" / "definitions"


def test_every_packaged_pilot_loads() -> None:
    assert set(load_pilots()) == EXPECTED
    assert len(packaged_definitions()) == len(EXPECTED)


@pytest.mark.parametrize(("name", "raw"), packaged_definitions(), ids=lambda v: str(v)[:30])
def test_each_definition_is_sound(name: str, raw: bytes) -> None:
    pilot = load_pilot_text(raw, name)
    assert name == f"{pilot.id}.yaml"
    held = {role for m in pilot.members for role in m.roles}
    # every role is held by someone, every type is published by someone
    assert held == {r.id for r in pilot.roles}, name
    published = {t for rule in pilot.publish for t in rule.types}
    assert published == {t.id for t in pilot.data_types}, name
    for t in pilot.data_types:
        if t.personal:
            # personal data is never read for research or public health: those get aggregates
            readers = [r for r in pilot.read if t.id in r.types]
            assert not any({"HRESCH", "PUBHLTH"} & set(r.purposes) for r in readers), t.id
        if t.consent_required:
            assert pilot.consent_administrators


def test_health_pilots_keep_health_data_behind_consent() -> None:
    pilots = load_pilots()
    for pilot_id in ("chronic-care", "cross-hospital-referral"):
        pilot: Pilot = pilots[pilot_id]
        clinical = [t for t in pilot.data_types if t.is_fhir and t.id != "fhir.Consent"]
        assert clinical and all(t.consent_required for t in clinical)
        assert all(t.loinc for t in clinical)


def test_cli_check_accepts_the_packaged_files() -> None:
    files = sorted(str(p) for p in DEFINITIONS.glob("*.yaml"))
    result = CliRunner().invoke(cli, ["pilot", "check", *files])
    assert result.exit_code == 0, result.output
    assert result.output.count("ok ") == len(EXPECTED)


def test_cli_check_explains_problems_with_lines(tmp_path: Path) -> None:
    good = DEFINITIONS / "air-quality.yaml"
    bad = tmp_path / "bad.yaml"
    bad.write_text(good.read_text().replace("purposes: [PUBHLTH, THREAT]", "purposes: [PUBHELTH]"))
    result = CliRunner().invoke(cli, ["pilot", "check", str(good), str(bad)])
    assert result.exit_code == 1
    assert f"INVALID  {bad}" in result.output
    assert f"{bad}:65:16: read[1].purposes[0]: 'PUBHELTH' is not an HL7 v3 PurposeOfUse code" in (
        result.output
    )
    assert "1 invalid" in result.output


def test_cli_check_json_and_duplicate_ids(tmp_path: Path) -> None:
    good = DEFINITIONS / "smart-parking.yaml"
    copy = tmp_path / "copy.yaml"
    copy.write_text(good.read_text())
    result = CliRunner().invoke(cli, ["pilot", "check", "--json", str(good), str(copy)])
    assert result.exit_code == 1
    assert "already defined in" in result.output and '"ok": false' in result.output


def test_cli_list_and_show() -> None:
    listed = CliRunner().invoke(cli, ["pilot", "list"])
    assert listed.exit_code == 0
    assert all(pilot_id in listed.output for pilot_id in EXPECTED)
    shown = CliRunner().invoke(cli, ["pilot", "show", "cross-hospital-referral"])
    assert shown.exit_code == 0
    assert "harbour-university-hospital" in shown.output and "ETREAT" in shown.output
    missing = CliRunner().invoke(cli, ["pilot", "show", "nope"])
    assert missing.exit_code == 1
    assert "UnknownPilot: no pilot 'nope'" in missing.output
