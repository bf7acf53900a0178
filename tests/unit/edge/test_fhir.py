from __future__ import annotations

import json

import pytest

from edge.errors import InvalidInput
from edge.fhir import Issue, fhir_model, observed_time, operation_outcome, outcome_for, to_utc


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2026-05-01T10:30:00+02:00", "2026-05-01T08:30:00.000000Z"),
        ("2026-05-01T08:30:00Z", "2026-05-01T08:30:00.000000Z"),
        ("2026-05-01", None),  # a date has no time to put on a record
        ("2026-05-01T08:30:00", None),  # no offset: unknown zone
        ("garbage", None),
    ],
)
def test_fhir_times_in_utc(text: str, utc: str | None) -> None:
    assert to_utc(text) == utc


def test_observed_time_prefers_the_effective_time() -> None:
    resource = {
        "issued": "2026-05-02T00:00:00Z",
        "effectivePeriod": {"start": "2026-05-01T00:00:00Z"},
    }
    assert observed_time(resource) == "2026-05-01T00:00:00.000000Z"
    assert observed_time({"status": "final"}) is None


def test_model_lookup_refuses_odd_names() -> None:
    assert fhir_model("Observation") is not None
    assert fhir_model("../../os") is None
    assert fhir_model("NoSuchResource") is None


def test_operation_outcomes_are_r4b_json() -> None:
    body = json.loads(operation_outcome([Issue("error", "invalid", "bad", "Bundle.entry[2]")]))
    assert body == {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "invalid",
                "diagnostics": "bad",
                "expression": ["Bundle.entry[2]"],
            }
        ],
    }


def test_errors_map_to_issue_types() -> None:
    body = json.loads(outcome_for(InvalidInput("unknown_type", "no such type")))
    assert body["issue"][0]["code"] == "not-supported"
