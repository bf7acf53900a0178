"""``fhir.Observation``: home blood pressure and glucose readings of chronic-care patients.

Hypertensive patients measure blood pressure (LOINC 85354-9 panel: 8480-6 systolic, 8462-4
diastolic) each morning and evening, the morning one higher (morning surge); diabetic patients
measure glucose fasting in the morning and after dinner in the evening, in mg/dL (LOINC
2339-0) at hospital-a and mmol/L (15074-8) at hospital-b. Values drift by day with each
patient's trend; readings are skipped (adherence) and whole days missed.

Each patient's own home device (:mod:`simulators.devices`: an opaque id, a key of its own)
uploads a reading a few minutes after it is taken, sealed by the device and relayed by the
patient's hospital's agent; readings from before the scenario (``history_days``) go up in
the device's first sync just after its patient's Consent is recorded. Only readings covered
by an active permit Consent are sent: none for patients who refused, none after a withdrawal.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from fhir.resources.R4B.observation import Observation, ObservationComponent
from fhir.resources.R4B.reference import Reference

from .clock import Window, rfc3339
from .devices import device_id, relay_of
from .fhir_models import OBSERVATION_CATEGORY, as_payload, concept, loinc, patient_ref, quantity
from .params import CHRONIC_CARE, HOSPITAL_A, Scale, new_id, rng_for
from .patients import ConsentPlan, Patient
from .scenario import DeviceInfo, RecordEvent

VERSION = "2"
PILOT = CHRONIC_CARE
TYPE = "fhir.Observation"
#: mg/dL per mmol/L of glucose.
GLUCOSE_MG_PER_MMOL = 18.016
P_MISSED_DAY = 0.06
#: When the first sync of patient i happens: this long after the start, plus 7 s x i.
FIRST_SYNC = timedelta(minutes=10)


def blood_pressure(
    patient: Patient, rng: random.Random, when: datetime, systolic: int, diastolic: int
) -> Observation:
    return Observation(
        id=new_id(rng, "obs"),
        status="final",
        category=[concept(OBSERVATION_CATEGORY, "vital-signs", "Vital Signs")],
        code=loinc("85354-9", "Blood pressure panel with all children optional"),
        subject=patient_ref(patient.local_id),
        effectiveDateTime=rfc3339(when),
        device=Reference(display="Home blood pressure monitor"),
        component=[
            ObservationComponent(
                code=loinc("8480-6", "Systolic blood pressure"),
                valueQuantity=quantity(systolic, "mmHg", "mm[Hg]"),
            ),
            ObservationComponent(
                code=loinc("8462-4", "Diastolic blood pressure"),
                valueQuantity=quantity(diastolic, "mmHg", "mm[Hg]"),
            ),
        ],
    )


def glucose(patient: Patient, rng: random.Random, when: datetime, mg_dl: float) -> Observation:
    if patient.hospital == HOSPITAL_A:
        code = loinc("2339-0", "Glucose [Mass/volume] in Blood")
        value = quantity(round(mg_dl), "mg/dL")
    else:
        code = loinc("15074-8", "Glucose [Moles/volume] in Blood")
        value = quantity(round(mg_dl / GLUCOSE_MG_PER_MMOL, 1), "mmol/L", "mmol/L")
    return Observation(
        id=new_id(rng, "obs"),
        status="final",
        category=[concept(OBSERVATION_CATEGORY, "laboratory", "Laboratory")],
        code=code,
        subject=patient_ref(patient.local_id),
        effectiveDateTime=rfc3339(when),
        device=Reference(display="Home blood glucose meter"),
        valueQuantity=value,
    )


def _readings(
    patient: Patient, rng: random.Random, first_day: datetime, end: datetime
) -> list[tuple[datetime, Observation]]:
    """Every reading the patient takes from ``first_day`` until ``end``, in time order."""
    out: list[tuple[datetime, Observation]] = []
    day = first_day
    while day < end:
        days = (day - first_day).days
        if rng.random() >= P_MISSED_DAY:
            for morning in (True, False):
                hour = rng.uniform(6.5, 8.5) if morning else rng.uniform(19.0, 22.0)
                when = (day + timedelta(hours=hour)).replace(microsecond=0)
                if patient.hypertension and rng.random() < patient.adherence:
                    surge = 6.0 if morning else 0.0
                    sys = patient.systolic + patient.systolic_per_day * days + surge
                    sys += rng.gauss(0, 6)
                    dia = patient.diastolic + 0.5 * patient.systolic_per_day * days + surge / 2
                    dia = min(dia + rng.gauss(0, 5), sys - 25)
                    out.append((when, blood_pressure(patient, rng, when, round(sys), round(dia))))
                if patient.diabetes and rng.random() < patient.adherence:
                    # Evening readings are two hours after dinner: higher than fasting.
                    mg = patient.glucose + patient.glucose_per_day * days
                    mg = (mg if morning else mg * 1.25) + rng.gauss(0, 12)
                    when += timedelta(minutes=rng.randint(3, 12))
                    out.append((when, glucose(patient, rng, when, max(mg, 45.0))))
        day += timedelta(days=1)
    return out


def generate(
    seed: int, window: Window, scale: Scale, plans: list[ConsentPlan]
) -> list[RecordEvent]:
    """Home readings of every patient with a chronic-care plan (``plans`` in roster order)."""
    rng = rng_for(seed, PILOT)
    first_day = window.start.replace(hour=0, minute=0, second=0) - timedelta(
        days=scale.history_days
    )
    events = []
    for i, plan in enumerate(plans):
        patient = plan.patient
        sync = plan.recorded + FIRST_SYNC + timedelta(seconds=7 * i)
        for taken, obs in _readings(patient, rng, first_day, window.end):
            upload = max(sync, taken + timedelta(seconds=rng.randint(60, 1800)))
            if upload >= window.end or not plan.covers(upload):
                continue
            events.append(
                RecordEvent(
                    t=rfc3339(upload),
                    kind="record",
                    pilot=PILOT,
                    source=device_id(seed, PILOT, patient),
                    type=TYPE,
                    patient=patient.local_id,
                    consent=plan.id,
                    payload=as_payload(obs),
                )
            )
    return events


def devices(seed: int, plans: list[ConsentPlan]) -> dict[str, DeviceInfo]:
    """The home device of every patient with a chronic-care plan, by device id."""
    out = {}
    for plan in plans:
        device = device_id(seed, PILOT, plan.patient)
        out[device] = DeviceInfo(pilot=PILOT, device=device, relay=relay_of(plan.patient))
    return out
