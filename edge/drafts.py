"""From what a source received to records ready to seal (pure; no I/O).

A source hands over JSON values; each becomes one or more *drafts* (a type id, a payload and
what the sender said about it), and each draft a *prepared record*: validated against its
type, the person pseudonymised, the consent and the observation time settled. If any part of
a submission is invalid, the whole submission is refused and nothing is stored.

A personal device's sealed envelope (``{"header", "body", "sig"}``) is a draft too: a relay
agent checks it (:mod:`edge.relay`) and prepares the same reading for its own seal.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ledger.envelope import FhirId, TypeId, UtcTimestamp, describe_validation_error, utc_now

from .datatypes import TypeRegistry
from .errors import InvalidInput
from .fhir import bundle_entries, observed_time, patient_id, replace_patient, strings
from .pseudonym import Pseudonymiser
from .relay import Relay, Relayed, is_envelope, open_envelope

#: A raw id this short could appear inside unrelated values, so only exact matches count.
MIN_SUBSTRING_CHECK = 4


class Wrapped(BaseModel):
    """``{"type", "payload", ...}``: how non-FHIR sources name a record's type and context."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    type: TypeId
    payload: dict[str, Any]
    #: Local patient identifier; pseudonymised here, never sent.
    patient: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    consent: FhirId | None = None
    observed_at: UtcTimestamp | None = None


@dataclass(frozen=True)
class Draft:
    type_id: str
    payload: dict[str, Any]
    where: str = ""
    patient: str | None = None
    consent: str | None = None
    observed_at: str | None = None
    #: Bundle-local Patient fullUrls -> local patient ids (for ``urn:uuid:`` references).
    local_patients: dict[str, str] = field(default_factory=dict)
    #: A personal device's sealed envelope, for a relay agent to check and seal again.
    envelope: dict[str, Any] | None = None


@dataclass(frozen=True)
class Prepared:
    """A record ready to seal: everything of the header but seq, id, key and commitment."""

    type_id: str
    payload: dict[str, Any]
    subject: str | None
    consent: str | None
    observed_at: str
    #: Set for a device's reading this agent relays: the id, salts and origin it keeps.
    relayed: Relayed | None = None


def _join(where: str, inner: str) -> str:
    return f"{where}{inner}" if inner.startswith("[") or not where else f"{where}.{inner}"


def drafts_from_json(
    value: Any, *, default_type: str | None = None, consent: str | None = None, where: str = ""
) -> Iterator[Draft]:
    """The drafts in one JSON value: a FHIR resource, a Bundle (split into its entries),
    ``{"type", "payload", ...}``, a device's sealed envelope ``{"header", "body", "sig"}``,
    a bare payload of ``default_type``, or a list of these."""
    if isinstance(value, list):
        if not value:
            raise InvalidInput("empty", "an empty list holds no records", where=where or None)
        for i, item in enumerate(value):
            yield from drafts_from_json(
                item, default_type=default_type, consent=consent, where=f"{where}[{i}]"
            )
        return
    if not isinstance(value, dict):
        raise InvalidInput("unknown_shape", "a record is a JSON object", where=where or None)
    if is_envelope(value):
        header = value["header"]
        stated = header.get("type") if isinstance(header, dict) else None
        type_id = stated if isinstance(stated, str) else "envelope"
        yield Draft(type_id, {}, where or type_id, envelope=value)
        return
    resource_type = value.get("resourceType")
    if resource_type is not None:
        if not isinstance(resource_type, str):
            raise InvalidInput("invalid_fhir", "resourceType is a string", where=where or None)
        if resource_type == "Bundle":
            yield from _bundle_drafts(value, consent, where)
        else:
            yield Draft(f"fhir.{resource_type}", value, where or resource_type, consent=consent)
        return
    if "type" in value and "payload" in value:
        try:
            wrapped = Wrapped.model_validate(value)
        except ValidationError as exc:
            raise InvalidInput(
                "invalid_wrapper", describe_validation_error(exc), where=where or None
            ) from None
        yield Draft(
            wrapped.type,
            wrapped.payload,
            where or wrapped.type,
            patient=wrapped.patient,
            consent=wrapped.consent or consent,
            observed_at=wrapped.observed_at,
        )
        return
    if default_type is not None:
        yield Draft(default_type, value, where or default_type, consent=consent)
        return
    raise InvalidInput(
        "unknown_shape",
        'expected a FHIR resource, a Bundle, or {"type": ..., "payload": ...}',
        where=where or None,
    )


def _bundle_drafts(bundle: dict[str, Any], consent: str | None, where: str) -> Iterator[Draft]:
    try:
        entries = list(bundle_entries(bundle))
    except InvalidInput as exc:
        raise exc.at(where) if where else exc from None
    local_patients = {
        e.full_url: pid
        for e in entries
        if e.full_url and e.resource.get("resourceType") == "Patient"
        if (pid := patient_id(e.resource)) is not None
    }
    for e in entries:
        rt = e.resource.get("resourceType")
        entry_where = _join(where, e.where)
        if not isinstance(rt, str):
            raise InvalidInput(
                "invalid_fhir", "every resource has a resourceType", where=entry_where
            )
        if rt == "Bundle":
            raise InvalidInput("unsupported_bundle", "Bundles inside Bundles", where=entry_where)
        yield Draft(
            f"fhir.{rt}", e.resource, entry_where, consent=consent, local_patients=local_patients
        )


def prepare(
    draft: Draft,
    registry: TypeRegistry,
    pseudonymiser: Pseudonymiser | None,
    default_consent: str | None = None,
    relay: Relay | None = None,
) -> Prepared:
    """Validate, pseudonymise and complete one draft; InvalidInput (located) if it cannot.
    A device's envelope is checked against ``relay`` (refused if the agent is none)."""
    try:
        if draft.envelope is not None:
            return _prepare_relayed(draft.envelope, registry, relay)
        return _prepare(draft, registry, pseudonymiser, default_consent)
    except InvalidInput as exc:
        if exc.where and draft.where and exc.where.startswith(draft.where):
            raise
        raise exc.at(draft.where) if draft.where else exc from None


def _prepare(
    draft: Draft,
    registry: TypeRegistry,
    pseudonymiser: Pseudonymiser | None,
    default_consent: str | None,
) -> Prepared:
    data_type = registry.resolve(draft.type_id)
    payload = draft.payload
    data_type.validate(payload)
    observed = draft.observed_at
    if data_type.is_fhir:
        raw_id = draft.patient or patient_id(payload, draft.local_patients)
        observed = observed or observed_time(payload)
    else:
        if draft.patient is not None:
            raise InvalidInput("subject_not_allowed", f"{draft.type_id} records are not personal")
        raw_id = None
        stated = payload.get("observed_at")
        observed = observed or (stated if isinstance(stated, str) else None)
    subject = consent = None
    if raw_id is not None:
        if pseudonymiser is None:
            raise InvalidInput(
                "pseudonymisation_unavailable",
                "this agent has no pseudonymisation key, so it cannot take personal data",
                status=503,
            )
        subject = pseudonymiser.pseudonym(raw_id)
        urls = {u for u, pid in draft.local_patients.items() if pid == raw_id}
        payload = replace_patient(payload, raw_id, subject, pseudonymiser.system, urls)
        _check_no_raw_id(payload, raw_id)
        consent = draft.consent or _own_consent_id(payload) or default_consent
        if consent is None:
            raise InvalidInput(
                "consent_required",
                "a record about a patient must name the Consent that covers it",
                status=422,
            )
    return Prepared(draft.type_id, payload, subject, consent, observed or utc_now())


def _prepare_relayed(
    envelope: dict[str, Any], registry: TypeRegistry, relay: Relay | None
) -> Prepared:
    reading = open_envelope(envelope, relay)
    data_type = registry.resolve(reading.type_id)
    payload = reading.payload
    data_type.validate(payload)
    if not data_type.is_fhir:
        if reading.subject is not None:
            raise InvalidInput("subject_not_allowed", f"{reading.type_id} records are not personal")
    else:
        # The device names its patient by pseudonym (the hospital enrolled it so); the
        # payload and the sealed person must agree, or the record files under someone else.
        named = patient_id(payload)
        if named is not None and named != reading.subject:
            raise InvalidInput(
                "subject_mismatch",
                "the payload's patient is not the person the envelope is sealed about"
                if reading.subject is not None
                else "a reading about a patient carries body.person (subject and consent)",
            )
    return Prepared(
        reading.type_id,
        payload,
        reading.subject,
        reading.consent,
        reading.observed_at,
        relayed=reading.relayed,
    )


def _own_consent_id(payload: dict[str, Any]) -> str | None:
    if payload.get("resourceType") == "Consent" and isinstance(payload.get("id"), str):
        return str(payload["id"])
    return None


def _check_no_raw_id(payload: dict[str, Any], raw_id: str) -> None:
    for path, text in strings(payload):
        if text == raw_id or (len(raw_id) >= MIN_SUBSTRING_CHECK and raw_id in text):
            raise InvalidInput(
                "identifier_in_payload",
                "the local patient identifier also appears here; remove it so that it "
                "does not leave the agent",
                where=path,
            )
