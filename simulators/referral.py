"""``fhir.DiagnosticReport``, ``fhir.Observation``, ``fhir.Composition``: what one hospital
sends another when it refers a patient.

Each referral carries a lab report (a DiagnosticReport whose ``result`` points at its
Observations, sent just before it) and, for about half of them, a discharge summary (a
Composition, LOINC 18842-5). The sending hospital's EHR is the source; the patient's referral
Consent lets the receiving hospital read them for treatment. Referrals happen mostly in
working hours.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from fhir.resources.R4B.composition import Composition, CompositionSection
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.narrative import Narrative
from fhir.resources.R4B.observation import Observation, ObservationReferenceRange
from fhir.resources.R4B.reference import Reference
from fhir.resources.R4B.resource import Resource

from .clock import Window, hour_of_day, rfc3339
from .fhir_models import (
    OBSERVATION_CATEGORY,
    as_payload,
    concept,
    loinc,
    org_ref,
    patient_ref,
    quantity,
)
from .params import HOSPITAL_A, HOSPITAL_B, REFERRAL, Scale, new_id, rng_for
from .patients import ConsentPlan, Patient
from .scenario import RecordEvent

VERSION = "1"
PILOT = REFERRAL
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
DIAGNOSTIC_SERVICE = "http://terminology.hl7.org/CodeSystem/v2-0074"


@dataclass(frozen=True)
class LabTest:
    code: str
    display: str
    unit: str
    low: float
    high: float
    decimals: int

    def value(self, rng: random.Random, patient: Patient) -> float:
        if self.code == "4548-4":  # HbA1c: high for diabetic patients
            centre = 7.8 if patient.diabetes else 5.3
            spread = 0.9 if patient.diabetes else 0.3
        elif self.code == "2345-7" and patient.diabetes:
            centre, spread = 165.0, 35.0
        else:
            centre, spread = (self.low + self.high) / 2, (self.high - self.low) / 3
        return round(max(rng.gauss(centre, spread), 0.1), self.decimals)


LAB_TESTS = (
    LabTest("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", 4.0, 5.6, 1),
    LabTest("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 0.6, 1.2, 2),
    LabTest("2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L", 3.5, 5.1, 1),
    LabTest("2951-2", "Sodium [Moles/volume] in Serum or Plasma", "mmol/L", 136, 145, 0),
    LabTest("2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mg/dL", 70, 99, 0),
    LabTest("6690-2", "Leukocytes [#/volume] in Blood", "10*3/uL", 4.0, 11.0, 1),
    LabTest("777-3", "Platelets [#/volume] in Blood", "10*3/uL", 150, 400, 0),
    LabTest("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 12.0, 17.5, 1),
)


@dataclass(frozen=True)
class Referral:
    plan: ConsentPlan
    sent: datetime

    @property
    def sender(self) -> str:
        return self.plan.patient.hospital

    @property
    def receiver(self) -> str:
        return HOSPITAL_B if self.sender == HOSPITAL_A else HOSPITAL_A


def plan_referrals(
    seed: int, window: Window, scale: Scale, plans: list[ConsentPlan]
) -> list[Referral]:
    """When each referral is sent (time order), each about a patient with a referral Consent."""
    rng = rng_for(seed, "referral.plan")
    if not plans:
        return []
    count = max(1, round(scale.referrals_per_day * window.seconds / 86_400))
    out = []
    for _ in range(count):
        plan = rng.choice(plans)
        for _attempt in range(20):
            sent = window.at(rng.uniform(0.02, 0.98))
            if 8 <= hour_of_day(sent) < 19 or rng.random() < 0.1:
                break
        out.append(Referral(plan, max(sent, plan.recorded + timedelta(minutes=1))))
    out.sort(key=lambda r: r.sent)
    return out


def _interpretation(test: LabTest, value: float) -> str:
    return "H" if value > test.high else "L" if value < test.low else "N"


def _lab_observation(
    rng: random.Random, test: LabTest, patient: Patient, sender: str, taken: str, issued: str
) -> tuple[str, Observation]:
    """The result's interpretation flag (H, L or N) and the result."""
    value = test.value(rng, patient)
    flag = _interpretation(test, value)
    return flag, Observation(
        id=new_id(rng, "obs"),
        status="final",
        category=[concept(OBSERVATION_CATEGORY, "laboratory", "Laboratory")],
        code=loinc(test.code, test.display),
        subject=patient_ref(patient.local_id),
        effectiveDateTime=taken,
        issued=issued,
        performer=[org_ref(sender)],
        valueQuantity=quantity(value, test.unit),
        interpretation=[concept(INTERPRETATION, flag)],
        referenceRange=[
            ObservationReferenceRange(
                low=quantity(test.low, test.unit), high=quantity(test.high, test.unit)
            )
        ],
    )


def _narrative(text: str) -> Narrative:
    return Narrative(
        status="generated", div=f'<div xmlns="http://www.w3.org/1999/xhtml"><p>{text}</p></div>'
    )


def _discharge_summary(
    rng: random.Random, referral: Referral, flags: list[str], date: str
) -> Composition:
    patient = referral.plan.patient
    reasons = []
    if patient.hypertension:
        reasons.append("blood pressure above target on home monitoring")
    if patient.diabetes:
        reasons.append("glycaemic control needing review")
    flagged = sum(flag != "N" for flag in flags)
    sections = [
        (
            "Hospital course",
            f"Admitted for {' and '.join(reasons)}. Medication adjusted; "
            f"observed {rng.randint(2, 6)} days; stable at discharge.",
        ),
        (
            "Results",
            f"{len(flags)} laboratory results, {flagged} outside the reference range.",
        ),
        (
            "Plan",
            f"Referred to {referral.receiver} outpatient clinic for follow-up in "
            f"{rng.choice((1, 2, 4))} weeks; continue home monitoring.",
        ),
    ]
    return Composition(
        id=new_id(rng, "doc"),
        status="final",
        type=loinc("18842-5", "Discharge summary"),
        subject=patient_ref(patient.local_id),
        date=date,
        author=[org_ref(referral.sender)],
        title="Discharge summary",
        custodian=org_ref(referral.sender),
        section=[
            CompositionSection(title=title, text=_narrative(text)) for title, text in sections
        ],
    )


def generate(
    seed: int, window: Window, scale: Scale, plans: list[ConsentPlan]
) -> list[RecordEvent]:
    rng = rng_for(seed, PILOT)
    events = []
    for referral in plan_referrals(seed, window, scale, plans):
        patient = referral.plan.patient
        taken = rfc3339(referral.sent - timedelta(hours=rng.uniform(4, 40)))
        issued = rfc3339(referral.sent - timedelta(minutes=rng.uniform(20, 180)))
        tests = rng.sample(LAB_TESTS, rng.randint(3, len(LAB_TESTS)))
        labs = [_lab_observation(rng, t, patient, referral.sender, taken, issued) for t in tests]
        flags = [flag for flag, _ in labs]
        results = [obs for _, obs in labs]
        report = DiagnosticReport(
            id=new_id(rng, "dr"),
            status="final",
            category=[concept(DIAGNOSTIC_SERVICE, "LAB", "Laboratory")],
            code=loinc("11502-2", "Laboratory report"),
            subject=patient_ref(patient.local_id),
            effectiveDateTime=taken,
            issued=issued,
            performer=[org_ref(referral.sender)],
            result=[Reference(reference=f"Observation/{r.id}") for r in results],
            conclusion=f"Referral to {referral.receiver}: laboratory results at discharge.",
        )
        resources: list[Resource] = [*results, report]
        if rng.random() < 0.5:
            resources.append(_discharge_summary(rng, referral, flags, rfc3339(referral.sent)))
        for resource in resources:
            events.append(_event(referral, resource))
    return events


def _event(referral: Referral, resource: Resource) -> RecordEvent:
    payload = as_payload(resource)
    return RecordEvent(
        t=rfc3339(referral.sent),
        kind="record",
        pilot=PILOT,
        source=f"{referral.sender}-ehr",
        type=f"fhir.{payload['resourceType']}",
        patient=referral.plan.patient.local_id,
        consent=referral.plan.id,
        payload=payload,
    )
