"""FHIR R4B at the edge: model lookup and validation, Bundle splitting, the patient a
resource is about, its observation time, and OperationOutcome answers.

Everything here is pure; models come from ``fhir.resources.R4B`` only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ValidationError

from ledger.envelope import describe_validation_error

from .errors import InvalidInput

_RESOURCE_TYPE = re.compile(r"^[A-Z][A-Za-z]{1,63}$")
PATIENT_PREFIX = "Patient/"
#: Bundle types whose entries are independent resources, each its own record.
SPLIT_BUNDLE_TYPES = frozenset({"collection", "batch", "transaction"})
#: Elements that point at the patient a resource is about (FHIR R4B), in order of preference.
PATIENT_ELEMENTS = ("subject", "patient", "beneficiary")
#: Elements holding when a resource's fact happened, in order of preference.
TIME_ELEMENTS = (
    "effectiveDateTime",
    "effectiveInstant",
    "effectivePeriod.start",
    "issued",
    "performedDateTime",
    "performedPeriod.start",
    "occurrenceDateTime",
    "recordedDate",
    "onsetDateTime",
    "period.start",
    "authoredOn",
    "dateTime",
    "date",
    "meta.lastUpdated",
)


@lru_cache(maxsize=256)
def fhir_model(resource_type: str) -> type[BaseModel] | None:
    """The R4B model class of ``resource_type``, or None if FHIR R4B has no such resource."""
    if not _RESOURCE_TYPE.match(resource_type):
        return None
    # Imported here: an agent with only sensor types never loads the FHIR models (~5 MB).
    from fhir.resources.R4B import get_fhir_model_class

    try:
        model: type[BaseModel] = get_fhir_model_class(resource_type)
    except (ValueError, KeyError, ImportError):
        return None
    return model


def validate_resource(resource: dict[str, Any], resource_type: str) -> None:
    """Raise InvalidInput unless ``resource`` is a valid R4B ``resource_type`` resource."""
    if resource.get("resourceType") != resource_type:
        raise InvalidInput(
            "invalid_fhir",
            f"resourceType is {resource.get('resourceType')!r}, expected {resource_type!r}",
            where=resource_type,
        )
    model = fhir_model(resource_type)
    if model is None:
        raise InvalidInput("invalid_fhir", f"{resource_type!r} is not a FHIR R4B resource type")
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        raise InvalidInput(
            "invalid_fhir", describe_validation_error(exc), where=resource_type
        ) from None


@dataclass(frozen=True)
class BundleEntry:
    resource: dict[str, Any]
    full_url: str | None
    where: str


def bundle_entries(bundle: dict[str, Any]) -> Iterator[BundleEntry]:
    """The resources of a collection/batch/transaction Bundle, with their fullUrls."""
    kind = bundle.get("type")
    if kind not in SPLIT_BUNDLE_TYPES:
        raise InvalidInput(
            "unsupported_bundle",
            f"Bundle.type {kind!r} is not one of {', '.join(sorted(SPLIT_BUNDLE_TYPES))}",
            where="Bundle.type",
        )
    entries = bundle.get("entry", [])
    if not isinstance(entries, list) or not entries:
        raise InvalidInput("invalid_fhir", "a Bundle needs a non-empty entry list", where="Bundle")
    for i, entry in enumerate(entries):
        where = f"Bundle.entry[{i}]"
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            raise InvalidInput("invalid_fhir", "every entry carries a resource", where=where)
        full_url = entry.get("fullUrl")
        yield BundleEntry(resource, full_url if isinstance(full_url, str) else None, where)


def patient_id(
    resource: dict[str, Any], local_patients: dict[str, str] | None = None
) -> str | None:
    """The local identifier of the patient ``resource`` is about, or None.

    A Patient is about itself (its ``id``, else its first identifier value); other resources
    name their patient in ``subject``/``patient``/``beneficiary``, as ``Patient/<id>``, a
    Bundle-local ``urn:uuid:`` reference (``local_patients`` maps those to ids) or a logical
    reference by identifier.
    """
    if resource.get("resourceType") == "Patient":
        if isinstance(resource.get("id"), str):
            return str(resource["id"])
        for ident in resource.get("identifier") or []:
            if isinstance(ident, dict) and isinstance(ident.get("value"), str):
                return str(ident["value"])
        return None
    for element in PATIENT_ELEMENTS:
        ref = resource.get(element)
        if not isinstance(ref, dict):
            continue
        reference = ref.get("reference")
        if isinstance(reference, str):
            if reference.startswith(PATIENT_PREFIX):
                return reference[len(PATIENT_PREFIX) :]
            if local_patients and reference in local_patients:
                return local_patients[reference]
        ident = ref.get("identifier")
        if ref.get("type") in (None, "Patient") and isinstance(ident, dict):
            value = ident.get("value")
            if isinstance(value, str):
                return value
    return None


def replace_patient(
    resource: dict[str, Any], raw_id: str, pseudonym: str, system: str, local_urls: set[str]
) -> dict[str, Any]:
    """A copy of ``resource`` with every pointer to the local patient id replaced by the
    pseudonym: references (``Patient/<id>`` and Bundle-local ``urn:uuid:``s), identifiers
    whose value is the id (their system becomes ``system``), and a Patient's own ``id``."""
    patient_refs = {PATIENT_PREFIX + raw_id, *local_urls}

    def walk(value: Any, key: str | None) -> Any:
        if isinstance(value, dict):
            if value.get("value") == raw_id and key == "identifier":
                # An Identifier (FHIR datatype) carrying the local id.
                out = {k: walk(v, k) for k, v in value.items() if k != "assigner"}
                out["value"] = pseudonym
                out["system"] = system
                return out
            return {k: walk(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, key) for v in value]
        if key == "reference" and value in patient_refs:
            return PATIENT_PREFIX + pseudonym
        return value

    out: dict[str, Any] = {k: walk(v, k) for k, v in resource.items()}
    if out.get("resourceType") == "Patient" and out.get("id") == raw_id:
        out["id"] = pseudonym
    return out


def strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string in a JSON value with its path (for the no-raw-identifier check)."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from strings(v, f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from strings(v, f"{path}[{i}]")


def _lookup(resource: dict[str, Any], dotted: str) -> Any:
    value: Any = resource
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def to_utc(text: str) -> str | None:
    """A FHIR dateTime/instant with a time and an offset, as RFC 3339 UTC; else None."""
    if "T" not in text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def observed_time(resource: dict[str, Any]) -> str | None:
    """When the resource's fact happened, from its first usable time element, in UTC."""
    for element in TIME_ELEMENTS:
        value = _lookup(resource, element)
        if isinstance(value, str) and (moment := to_utc(value)) is not None:
            return moment
    return None


@dataclass(frozen=True)
class Issue:
    severity: str
    code: str
    diagnostics: str
    where: str | None = None


def operation_outcome(issues: list[Issue]) -> bytes:
    """An R4B OperationOutcome as JSON bytes."""
    from fhir.resources.R4B.operationoutcome import OperationOutcome, OperationOutcomeIssue

    outcome = OperationOutcome(
        issue=[
            OperationOutcomeIssue(
                severity=i.severity,
                code=i.code,
                diagnostics=i.diagnostics,
                expression=[i.where] if i.where else None,
            )
            for i in issues
        ]
    )
    return outcome.model_dump_json(exclude_none=True).encode()


#: InvalidInput reasons -> OperationOutcome issue codes (FHIR IssueType value set).
ISSUE_CODES = {
    "malformed_json": "structure",
    "too_deep": "structure",
    "oversize": "too-long",
    "unknown_type": "not-supported",
    "unsupported_bundle": "not-supported",
    "unsupported_media_type": "not-supported",
    "consent_required": "required",
    "pseudonymisation_unavailable": "exception",
    "identifier_in_payload": "security",
}


def outcome_for(error: InvalidInput) -> bytes:
    code = ISSUE_CODES.get(error.reason, "invalid")
    return operation_outcome([Issue("error", code, f"{error.reason}: {error.detail}", error.where)])
