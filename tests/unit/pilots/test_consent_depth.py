"""How deeply a Consent's provisions may nest: up to ``MAX_PROVISION_DEPTH`` levels parse
and decide as before; one more is a ``ConsentError`` naming the depth, however deep (a
200-level Consent used to overflow the stack in the model's validation)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from pilots import decide_consent, parse_consent
from pilots.consent import MAX_PROVISION_DEPTH
from pilots.errors import ConsentError


def nested(levels: int) -> dict[str, Any]:
    """A Consent whose root provision carries ``levels - 1`` nested exceptions, one in each."""
    provision: dict[str, Any] = {"type": "deny", "actor": []}
    for _ in range(levels - 2):
        provision = {"type": "permit", "provision": [provision]}
    root: dict[str, Any] = {"provision": [provision]} if levels > 1 else {}
    return {
        "resourceType": "Consent",
        "id": "deep",
        "status": "active",
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "patient-privacy",
                }
            ]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": "Patient/pt-00000001"},
        "provision": root,
    }


@pytest.mark.parametrize("levels", [1, 2, MAX_PROVISION_DEPTH])
def test_provisions_up_to_the_cap_parse(levels: int) -> None:
    consent = parse_consent(json.dumps(nested(levels)))
    decision = decide_consent(
        consent,
        org="hosp-a",
        purpose="TREAT",
        data_type="fhir.Observation",
        at=datetime(2026, 1, 1, tzinfo=UTC),
        subject="pt-00000001",
    )
    assert decision.reason.value  # decided, whichever way


def deep_text(levels: int) -> str:
    """``nested(levels)`` as JSON text, written out (``json.dumps`` itself recurses)."""
    shell = json.dumps(nested(1))
    inner = (
        '{"type": "permit", "provision": [' * (levels - 1)
        + '{"type": "deny"}'
        + "]}" * (levels - 1)
    )
    return shell.replace('"provision": {}', f'"provision": {inner}')


@pytest.mark.parametrize("levels", [MAX_PROVISION_DEPTH + 1, 200, 400])
def test_provisions_past_the_cap_are_refused_by_name(levels: int) -> None:
    # Shallow enough for the JSON parser: the provision cap, not a generic limit, answers.
    with pytest.raises(ConsentError, match=f"nested more than {MAX_PROVISION_DEPTH} levels"):
        parse_consent(deep_text(levels))


def test_the_cap_counts_the_deepest_branch() -> None:
    document = nested(MAX_PROVISION_DEPTH)
    document["provision"]["provision"].append(nested(MAX_PROVISION_DEPTH + 1)["provision"])
    with pytest.raises(ConsentError, match="nested more than"):
        parse_consent(document)
    document["provision"]["provision"].pop()
    document["provision"]["provision"].append({"type": "permit"})
    assert parse_consent(document).provision is not None
