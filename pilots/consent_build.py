"""Building FHIR R4B ``Consent`` resources for tests, simulators and consent
administrators' tools, with ``fhir.resources.R4B`` models only.

A consent made here is what :func:`pilots.consent.decide_consent` reads: the root provision
is the grant (no ``type``, as R4B requires), nested provisions are the exceptions.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.consent import Consent, ConsentProvision, ConsentProvisionActor
from fhir.resources.R4B.period import Period
from fhir.resources.R4B.reference import Reference

from .errors import ConsentError
from .periods import aware
from .terminology import (
    ACT_CODE_SYSTEM,
    ACT_REASON_SYSTEM,
    CONSENT_SCOPE_SYSTEM,
    DATA_TYPE_SYSTEM,
    LOINC_SYSTEM,
    PURPOSES_OF_USE,
    RESOURCE_TYPES_SYSTEM,
    is_loinc_code,
)

ConsentStatus = Literal["draft", "proposed", "active", "rejected", "inactive", "entered-in-error"]
STATUSES: tuple[ConsentStatus, ...] = (
    "draft",
    "proposed",
    "active",
    "rejected",
    "inactive",
    "entered-in-error",
)

_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_ORG_ID = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
_PARTICIPATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"


@dataclass(frozen=True, slots=True)
class ProvisionRule:
    """One nested provision: an exception to the grant (a ``deny`` by default), with its own
    criteria (empty = any) and its own exceptions."""

    type: Literal["permit", "deny"] = "deny"
    actors: Sequence[str] = ()
    purposes: Sequence[str] = ()
    data_types: Sequence[str] = ()
    codes: Sequence[str] = ()
    start: datetime | None = None
    end: datetime | None = None
    provisions: Sequence[ProvisionRule] = ()


def make_consent(
    *,
    consent_id: str,
    subject: str,
    recorded_at: datetime,
    actors: Sequence[str] = (),
    purposes: Sequence[str] = (),
    data_types: Sequence[str] = (),
    codes: Sequence[str] = (),
    start: datetime | None = None,
    end: datetime | None = None,
    status: ConsentStatus = "active",
    custodian: str | None = None,
    exceptions: Sequence[ProvisionRule] = (),
    sources: Sequence[str] = (),
    evidence: str | None = None,
) -> Consent:
    """A privacy Consent by ``Patient/<subject>`` granting ``actors`` (organisation ids)
    access to ``data_types`` (pilot ids such as ``fhir.Observation``) for ``purposes``
    (PurposeOfUse codes) between ``start`` and ``end``, with ``exceptions`` as nested
    provisions. Empty sequences mean "any". Raises ConsentError for bad values.

    ``sources`` are source ids of the pilot, besides the custodian's own, that may write
    about the patient (``Device/<id>`` actors of the root provision). ``evidence`` is a
    reference to what attests the patient's agreement (``Consent.sourceReference``, e.g.
    ``DocumentReference/<id>`` of the signed form): the hub records no grant without it.
    """
    if sources and not actors:
        # The root's actors are also who may read: Device actors alone would admit nobody.
        raise ConsentError("a Consent that names sources names its recipients (actors) too")
    for source in sources:
        if not _FHIR_ID.match(source):
            raise ConsentError(f"source {source!r} is not a FHIR id ([A-Za-z0-9-.]{{1,64}})")
    if not _FHIR_ID.match(consent_id):
        raise ConsentError(f"consent id {consent_id!r} is not a FHIR id ([A-Za-z0-9-.]{{1,64}})")
    if not _FHIR_ID.match(subject):
        raise ConsentError(f"subject {subject!r} is not a FHIR id ([A-Za-z0-9-.]{{1,64}})")
    if status not in STATUSES:
        raise ConsentError(f"status {status!r} is not one of {', '.join(STATUSES)}")
    aware("recorded_at", recorded_at)
    root = _provision(
        ProvisionRule(
            type="permit",
            actors=actors,
            purposes=purposes,
            data_types=data_types,
            codes=codes,
            start=start,
            end=end,
            provisions=exceptions,
        ),
        root=True,
    )
    if sources:
        root.actor = [*(root.actor or ()), *(_source_actor(s) for s in sources)]
    return Consent(
        id=consent_id,
        status=status,
        scope=CodeableConcept(coding=[Coding(system=CONSENT_SCOPE_SYSTEM, code="patient-privacy")]),
        category=[
            CodeableConcept(
                coding=[Coding(system=LOINC_SYSTEM, code="59284-0", display="Patient Consent")]
            )
        ],
        patient=Reference(reference=f"Patient/{subject}"),
        dateTime=recorded_at,
        performer=[Reference(reference=f"Patient/{subject}")],
        organization=[_organization(custodian)] if custodian is not None else None,
        policyRule=CodeableConcept(
            coding=[Coding(system=ACT_CODE_SYSTEM, code="OPTIN", display="opt-in")]
        ),
        sourceReference=Reference(reference=evidence) if evidence is not None else None,
        provision=root,
    )


def with_status(consent: Consent, status: ConsentStatus) -> Consent:
    """A copy of ``consent`` with another status (``inactive`` withdraws it)."""
    if status not in STATUSES:
        raise ConsentError(f"status {status!r} is not one of {', '.join(STATUSES)}")
    document = consent.model_dump(mode="json")
    document["status"] = status
    changed: Consent = Consent.model_validate(document)
    return changed


def _provision(rule: ProvisionRule, *, root: bool = False) -> ConsentProvision:
    for code in rule.purposes:
        if code not in PURPOSES_OF_USE:
            raise ConsentError(f"{code!r} is not an HL7 v3 PurposeOfUse code")
    for code in rule.codes:
        if not is_loinc_code(code):
            raise ConsentError(f"{code!r} is not a LOINC code")
    period = None
    if rule.start is not None or rule.end is not None:
        period = Period(
            start=aware("start", rule.start) if rule.start is not None else None,
            end=aware("end", rule.end) if rule.end is not None else None,
        )
    classes: list[Coding] = []
    for type_id in rule.data_types:
        classes.append(Coding(system=DATA_TYPE_SYSTEM, code=type_id))
        if type_id.startswith("fhir."):
            classes.append(Coding(system=RESOURCE_TYPES_SYSTEM, code=type_id[len("fhir.") :]))
    return ConsentProvision(
        # R4B: type is "not permitted in root rule, required in all nested rules".
        type=None if root else rule.type,
        period=period,
        actor=[
            ConsentProvisionActor(
                role=CodeableConcept(
                    coding=[
                        Coding(
                            system=_PARTICIPATION_SYSTEM,
                            code="IRCP",
                            display="information recipient",
                        )
                    ]
                ),
                reference=_organization(org),
            )
            for org in rule.actors
        ]
        or None,
        purpose=[
            Coding(system=ACT_REASON_SYSTEM, code=code, display=PURPOSES_OF_USE[code])
            for code in rule.purposes
        ]
        or None,
        class_fhir=classes or None,
        code=[
            CodeableConcept(coding=[Coding(system=LOINC_SYSTEM, code=code)]) for code in rule.codes
        ]
        or None,
        provision=[_provision(child) for child in rule.provisions] or None,
    )


def _source_actor(source: str) -> ConsentProvisionActor:
    # v3-ParticipationType AUT (author, originator): the source originates the records.
    return ConsentProvisionActor(
        role=CodeableConcept(
            coding=[Coding(system=_PARTICIPATION_SYSTEM, code="AUT", display="author")]
        ),
        reference=Reference(reference=f"Device/{source}"),
    )


def _organization(org: str) -> Reference:
    if not _ORG_ID.match(org):
        raise ConsentError(f"organisation id {org!r} is not a slug (a-z, 0-9, -)")
    return Reference(reference=f"Organization/{org}")
