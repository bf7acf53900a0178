"""Small builders over ``fhir.resources.R4B`` models, and the codes the generators use.

Payloads are built from the R4B model classes and serialised with the model's own JSON, so
every one is a valid R4B resource by construction.
"""

from __future__ import annotations

import json
from typing import Any

from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.quantity import Quantity
from fhir.resources.R4B.reference import Reference
from fhir.resources.R4B.resource import Resource

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
PURPOSE_OF_USE = "http://terminology.hl7.org/CodeSystem/v3-ActReason"


def coding(system: str, code: str, display: str | None = None) -> Coding:
    return Coding(system=system, code=code, display=display)


def concept(
    system: str, code: str, display: str | None = None, text: str | None = None
) -> CodeableConcept:
    return CodeableConcept(coding=[coding(system, code, display)], text=text)


def loinc(code: str, display: str) -> CodeableConcept:
    return concept(LOINC, code, display)


def quantity(value: float | int, unit: str, code: str | None = None) -> Quantity:
    return Quantity(value=value, unit=unit, system=UCUM, code=code or unit)


def patient_ref(local_id: str) -> Reference:
    """``Patient/<local id>``: the edge agent replaces it with the pilot's pseudonym."""
    return Reference(reference=f"Patient/{local_id}")


def org_ref(org: str) -> Reference:
    return Reference(reference=f"Organization/{org}")


def as_payload(resource: Resource) -> dict[str, Any]:
    """The resource as the JSON value its model serialises it to."""
    value: dict[str, Any] = json.loads(resource.model_dump_json(exclude_none=True))
    return value
