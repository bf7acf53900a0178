from __future__ import annotations

from typing import Any

import pytest

from edge.datatypes import TypeRegistry
from edge.pseudonym import Pseudonymiser

NOW = "2026-05-01T08:30:00Z"


@pytest.fixture
def registry() -> TypeRegistry:
    return TypeRegistry()


@pytest.fixture
def pseudonymiser() -> Pseudonymiser:
    return Pseudonymiser(bytes(range(32)), "hospital-a")


def observation(patient: str = "MRN-4711", **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": "obs-1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/{patient}", "display": "Heart rate of a patient"},
        "effectiveDateTime": "2026-05-01T10:30:00+02:00",
        "valueQuantity": {"value": 72, "unit": "/min"},
        **extra,
    }


def air(**extra: Any) -> dict[str, Any]:
    return {"station": "st-1", "observed_at": NOW, "pm25": 12.5, **extra}
