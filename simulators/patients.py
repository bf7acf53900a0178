"""Synthetic patients and their consent decisions (plain data; the FHIR comes later).

Patients have local hospital ids (``HOSP-A-000123``) and made-up names built from syllables
that no real register uses; names are for the demo's narration only and never go into a
payload. The first three patients of every roster are fixed characters of the demo story:

0. the *story patient*: hospital-a, hypertensive, readings worsening; consents to treatment
   and public health (not research), then withdraws three quarters of the way through;
1. a patient who *refuses* to share (a deny Consent, and no readings on the network);
2. a patient who also consents to *research*.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from .clock import Window
from .params import (
    CHRONIC_CARE,
    HOSPITAL_A,
    HOSPITAL_B,
    PUBLIC_HEALTH_BUREAU,
    REFERRAL,
    RESEARCH_INSTITUTE,
    new_id,
    rng_for,
)

Trend = Literal["stable", "worsening", "improving"]
Decision = Literal["permit", "deny"]

_GIVEN = ("Ar", "Bel", "Cor", "Dax", "Ela", "Fen", "Gav", "Hal", "Ila", "Jor", "Kes", "Lem")
_GIVEN_END = ("a", "o", "en", "is", "ar", "eth", "ine", "ul")
_FAMILY = ("Ash", "Brook", "Cald", "Dun", "Elm", "Fair", "Glen", "Hart", "Kell", "Lark", "Moss")
_FAMILY_END = ("by", "croft", "dale", "ford", "ham", "ley", "mere", "ton", "wick")


@dataclass(frozen=True)
class Patient:
    local_id: str
    hospital: str
    #: Synthetic; for narration only, never in a payload.
    name: str
    hypertension: bool
    diabetes: bool
    trend: Trend
    #: Chance that a scheduled home reading is taken.
    adherence: float
    #: Home blood pressure (mmHg) at the first day of history, and its drift per day.
    systolic: float
    diastolic: float
    systolic_per_day: float
    #: Fasting glucose (mg/dL) at the first day of history, and its drift per day.
    glucose: float
    glucose_per_day: float

    @property
    def ehr(self) -> str:
        return f"{self.hospital}-ehr"


def _name(rng: random.Random) -> str:
    given = rng.choice(_GIVEN) + rng.choice(_GIVEN_END)
    family = rng.choice(_FAMILY) + rng.choice(_FAMILY_END)
    return f"{given} {family}"


def _patient(
    rng: random.Random,
    number: int,
    hospital: str,
    *,
    conditions: tuple[bool, bool] | None = None,
    trend: Trend | None = None,
    adherence: float | None = None,
) -> Patient:
    if conditions is None:
        roll = rng.random()
        conditions = (True, False) if roll < 0.5 else (False, True) if roll < 0.7 else (True, True)
    hypertension, diabetes = conditions
    if trend is None:
        roll = rng.random()
        trend = "worsening" if roll < 0.3 else "improving" if roll < 0.45 else "stable"
    slope = {"stable": 0.0, "worsening": 1.3, "improving": -0.7}[trend]
    systolic = rng.gauss(142, 9) if hypertension else rng.gauss(124, 7)
    glucose = rng.gauss(150, 18) if diabetes else rng.gauss(95, 6)
    letter = "A" if hospital == HOSPITAL_A else "B"
    return Patient(
        local_id=f"HOSP-{letter}-{number:06d}",
        hospital=hospital,
        name=_name(rng),
        hypertension=hypertension,
        diabetes=diabetes,
        trend=trend,
        adherence=rng.uniform(0.72, 0.97) if adherence is None else adherence,
        systolic=systolic,
        diastolic=systolic * rng.uniform(0.58, 0.66),
        systolic_per_day=slope * rng.uniform(0.8, 1.25) + rng.gauss(0, 0.05),
        glucose=glucose,
        glucose_per_day=(slope * rng.uniform(1.6, 3.0) if diabetes else 0.0) + rng.gauss(0, 0.05),
    )


def roster(seed: int, count: int) -> list[Patient]:
    """``count`` (at least 3) patients; the first three are the story's characters."""
    rng = rng_for(seed, "patients")
    numbers = rng.sample(range(1, 1_000_000), max(count, 3))
    out = [
        _patient(
            rng,
            numbers[0],
            HOSPITAL_A,
            conditions=(True, False),
            trend="worsening",
            adherence=0.93,
        ),
        _patient(rng, numbers[1], HOSPITAL_A),
        _patient(rng, numbers[2], HOSPITAL_B, conditions=(True, True)),
    ]
    for number in numbers[3:]:
        out.append(_patient(rng, number, HOSPITAL_A if rng.random() < 0.6 else HOSPITAL_B))
    return out


@dataclass(frozen=True)
class ConsentPlan:
    """One patient's Consent for one pilot, and what happens to it in the scenario."""

    id: str
    patient: Patient
    pilot: str
    decision: Decision
    #: HL7 PurposeOfUse codes permitted (empty for a refusal).
    purposes: tuple[str, ...]
    #: Organisations the Consent lets receive the data.
    actors: tuple[str, ...]
    #: FHIR resource types it covers.
    classes: tuple[str, ...]
    #: When the patient signed (before any reading it covers).
    given: datetime
    #: When the hospital records it on the network (the grant event's time).
    recorded: datetime
    withdrawn: datetime | None = None

    def covers(self, moment: datetime) -> bool:
        """Records uploaded at ``moment`` may cite this Consent."""
        if self.decision != "permit" or moment < self.recorded:
            return False
        return self.withdrawn is None or moment < self.withdrawn


def _other(hospital: str) -> str:
    return HOSPITAL_B if hospital == HOSPITAL_A else HOSPITAL_A


def plan_consents(
    seed: int, window: Window, patients: list[Patient], history_days: int
) -> list[ConsentPlan]:
    """Chronic-care Consents for every patient (index order), recorded one every 2 s from the
    start; the story characters' decisions are fixed, the others' drawn."""
    rng = rng_for(seed, "consents")
    plans = []
    for i, patient in enumerate(patients):
        given = window.start - timedelta(
            days=history_days + rng.randint(1, 60), hours=rng.uniform(8, 17)
        )
        given = given.replace(microsecond=0)
        recorded = window.start + timedelta(seconds=2 * i)
        withdrawn: datetime | None = None
        if i == 0:
            decision: Decision = "permit"
            purposes: tuple[str, ...] = ("TREAT", "PUBHLTH")
            withdrawn = window.at(0.75)
        elif i == 1:
            decision, purposes = "deny", ()
        elif i == 2:
            decision, purposes = "permit", ("TREAT", "PUBHLTH", "HRESCH")
        elif rng.random() < 0.08:
            decision, purposes = "deny", ()
        else:
            decision = "permit"
            purposes = ("TREAT",)
            purposes += ("PUBHLTH",) if rng.random() < 0.55 else ()
            purposes += ("HRESCH",) if rng.random() < 0.35 else ()
            if rng.random() < 0.1:
                withdrawn = window.at(rng.uniform(0.3, 0.9))
        actors: tuple[str, ...] = ()
        if decision == "permit":
            actors = (patient.hospital,)
            if i == 0 or rng.random() < 0.5:
                actors += (_other(patient.hospital),)
            actors += (PUBLIC_HEALTH_BUREAU,) if "PUBHLTH" in purposes else ()
            actors += (RESEARCH_INSTITUTE,) if "HRESCH" in purposes else ()
        plans.append(
            ConsentPlan(
                id=new_id(rng, "cns"),
                patient=patient,
                pilot=CHRONIC_CARE,
                decision=decision,
                purposes=purposes,
                actors=actors,
                classes=("Observation",) if decision == "permit" else (),
                given=given,
                recorded=recorded,
                withdrawn=withdrawn,
            )
        )
    return plans


def plan_referral_consents(
    seed: int, window: Window, chronic: list[ConsentPlan], count: int
) -> list[ConsentPlan]:
    """Referral Consents (treatment by both hospitals) for up to ``count`` patients who
    share their chronic-care data; recorded after the chronic-care ones."""
    rng = rng_for(seed, "consents.referral")
    candidates = [p for p in chronic if p.decision == "permit" and p.withdrawn is None]
    chosen = rng.sample(candidates, min(count, len(candidates)))
    chosen.sort(key=lambda p: chronic.index(p))
    offset = 2 * len(chronic)
    return [
        ConsentPlan(
            id=new_id(rng, "cns"),
            patient=p.patient,
            pilot=REFERRAL,
            decision="permit",
            purposes=("TREAT",),
            actors=(HOSPITAL_A, HOSPITAL_B),
            classes=("DiagnosticReport", "Observation", "Composition"),
            given=p.given,
            recorded=window.start + timedelta(seconds=offset + 2 * i),
        )
        for i, p in enumerate(chosen)
    ]
