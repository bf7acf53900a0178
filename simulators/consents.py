"""FHIR R4B Consent resources for the consent plans, and their grant/withdraw events.

A permit Consent names who may receive (``provision.actor``, role IRCP, an
``Organization/<org id>``), for which purposes of use (``provision.purpose``, HL7 v3
ActReason) and which resource types (``provision.class``). A refusal is a Consent whose
provision is ``deny`` with no restriction: it denies everything. Withdrawal is the same
Consent with ``status`` ``inactive`` (FHIR R4B Consent.status).

Every Consent is the patient's hospital's (``organization``, the client that records it)
and carries its evidence: ``sourceReference`` to the signed consent form, as the hub
requires of a grant.
"""

from __future__ import annotations

from datetime import datetime

from fhir.resources.R4B.consent import Consent, ConsentProvision, ConsentProvisionActor
from fhir.resources.R4B.period import Period
from fhir.resources.R4B.reference import Reference

from .clock import rfc3339
from .fhir_models import PURPOSE_OF_USE, as_payload, coding, concept, org_ref, patient_ref
from .patients import ConsentPlan
from .scenario import ConsentEvent

VERSION = "2"
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
PARTICIPATION_TYPE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
RESOURCE_TYPES = "http://hl7.org/fhir/resource-types"
_PURPOSE_DISPLAY = {
    "TREAT": "treatment",
    "ETREAT": "emergency treatment",
    "PUBHLTH": "public health",
    "HRESCH": "healthcare research",
}


def consent_resource(plan: ConsentPlan, *, withdrawn: bool = False) -> Consent:
    permit = plan.decision == "permit"
    provision = ConsentProvision(
        type=plan.decision,
        period=Period(start=rfc3339(plan.given)),
        actor=[
            ConsentProvisionActor(
                role=concept(PARTICIPATION_TYPE, "IRCP", "information recipient"),
                reference=org_ref(org),
            )
            for org in plan.actors
        ]
        or None,
        purpose=[coding(PURPOSE_OF_USE, p, _PURPOSE_DISPLAY[p]) for p in plan.purposes] or None,
        class_fhir=[coding(RESOURCE_TYPES, c) for c in plan.classes] or None,
    )
    return Consent(
        id=plan.id,
        status="inactive" if withdrawn else "active",
        scope=concept(CONSENT_SCOPE, "patient-privacy", "Privacy Consent"),
        category=[concept("http://loinc.org", "59284-0", "Patient Consent")],
        patient=patient_ref(plan.patient.local_id),
        dateTime=rfc3339(plan.given),
        organization=[org_ref(plan.patient.hospital)],
        policyRule=concept(ACT_CODE, "OPTIN" if permit else "OPTOUT"),
        # The signed form the hospital keeps (R4B Consent.source[x]): the grant's evidence.
        sourceReference=Reference(reference=f"DocumentReference/form-{plan.id}"),
        provision=provision,
    )


def _event(plan: ConsentPlan, moment: datetime, withdrawn: bool) -> ConsentEvent:
    return ConsentEvent(
        t=rfc3339(moment),
        kind="consent.withdraw" if withdrawn else "consent.grant",
        pilot=plan.pilot,
        source=plan.patient.ehr,
        type="fhir.Consent",
        patient=plan.patient.local_id,
        consent=plan.id,
        payload=as_payload(consent_resource(plan, withdrawn=withdrawn)),
    )


def generate(plans: list[ConsentPlan], end: datetime) -> list[ConsentEvent]:
    """Every plan's grant (permit or refusal) and, inside the window, its withdrawal."""
    events = [_event(p, p.recorded, withdrawn=False) for p in plans if p.recorded < end]
    events += [
        _event(p, p.withdrawn, withdrawn=True)
        for p in plans
        if p.withdrawn is not None and p.withdrawn < end
    ]
    return events
