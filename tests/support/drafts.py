"""Inputs for the agent's pure steps: a FHIR Observation with a raw patient id, an air reading."""

from __future__ import annotations

from typing import Any

NOW = "2026-05-01T08:30:00Z"


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
