"""Patient data: valid FHIR R4B, ready for an edge agent, consented, and drifting."""

from __future__ import annotations

from collections import defaultdict
from statistics import linear_regression, mean

import pytest
from fhir.resources.R4B import get_fhir_model_class

from edge.datatypes import TypeRegistry
from edge.drafts import drafts_from_json, prepare
from edge.pseudonym import Pseudonymiser
from simulators.clock import parse_utc
from simulators.params import HOSPITAL_A, SCALES
from simulators.patients import roster
from simulators.scenario import ConsentEvent, QueryEvent, RecordEvent, Scenario


def _fhir(scenario: Scenario) -> list[RecordEvent | ConsentEvent]:
    return [
        e
        for e in scenario.events
        if isinstance(e, RecordEvent | ConsentEvent) and e.type.startswith("fhir.")
    ]


def test_every_fhir_payload_validates_as_r4b(demo: Scenario) -> None:
    resources = _fhir(demo)
    assert {e.type for e in resources} == {
        "fhir.Observation",
        "fhir.DiagnosticReport",
        "fhir.Composition",
        "fhir.Consent",
    }
    for e in resources:
        model = get_fhir_model_class(e.payload["resourceType"])
        resource = model.model_validate(e.payload)
        assert resource.model_dump(exclude_none=True)["id"] == e.payload["id"]


def test_every_record_is_what_an_edge_agent_accepts(demo: Scenario) -> None:
    registry = TypeRegistry()
    pseudonyms = Pseudonymiser(b"k" * 32, "chronic-care")
    for e in demo.events:
        if not isinstance(e, RecordEvent):
            continue
        (draft,) = drafts_from_json(e.submission())
        prepared = prepare(draft, registry, pseudonyms)
        if e.patient is None:
            assert prepared.subject is None
        else:
            # The local id leaves the agent only as its pseudonym, never in the payload.
            assert prepared.subject == pseudonyms.pseudonym(e.patient)
            assert prepared.consent == e.consent
            assert e.patient not in str(prepared.payload)


def test_personal_records_cite_a_consent_in_force(demo: Scenario) -> None:
    granted: dict[str, ConsentEvent] = {}
    withdrawn: dict[str, str] = {}
    for e in demo.events:
        if isinstance(e, ConsentEvent):
            if e.kind == "consent.grant":
                granted[e.consent] = e
            else:
                assert e.consent in granted and e.payload["status"] == "inactive"
                withdrawn[e.consent] = e.t
        elif isinstance(e, RecordEvent) and e.patient is not None:
            assert e.consent is not None
            grant = granted[e.consent]  # recorded before the record
            assert grant.patient == e.patient and grant.pilot == e.pilot
            assert grant.payload["provision"]["type"] == "permit"
            assert e.consent not in withdrawn
            assert f"Patient/{e.patient}" == grant.payload["patient"]["reference"]
    refusals = [g for g in granted.values() if g.payload["provision"]["type"] == "deny"]
    assert refusals and withdrawn
    refusers = {g.patient for g in refusals}
    assert not any(isinstance(e, RecordEvent) and e.patient in refusers for e in demo.events)


def test_purposes_and_actors_are_coded(demo: Scenario) -> None:
    purposes: set[str] = set()
    for e in demo.events:
        if isinstance(e, ConsentEvent) and e.payload["provision"]["type"] == "permit":
            provision = e.payload["provision"]
            purposes |= {p["code"] for p in provision["purpose"]}
            assert all(
                a["reference"]["reference"].startswith("Organization/") for a in provision["actor"]
            )
    assert purposes == {"TREAT", "PUBHLTH", "HRESCH"}


def _systolic(e: RecordEvent) -> float | None:
    if e.payload["code"]["coding"][0]["code"] != "85354-9":
        return None
    (systolic,) = [
        c["valueQuantity"]["value"]
        for c in e.payload["component"]
        if c["code"]["coding"][0]["code"] == "8480-6"
    ]
    return float(systolic)


def test_home_readings_drift_with_each_patients_trend(demo: Scenario) -> None:
    patients = {p.local_id: p for p in roster(demo.header.seed, SCALES["default"].patients)}
    series: dict[str, list[tuple[float, float]]] = defaultdict(list)
    start = parse_utc(demo.header.start)
    for e in demo.events:
        if isinstance(e, RecordEvent) and e.pilot == "chronic-care":
            value = _systolic(e)
            if value is not None and e.patient is not None:
                days = (parse_utc(e.payload["effectiveDateTime"]) - start).total_seconds() / 86400
                series[e.patient].append((days, value))
    slopes: dict[str, list[float]] = defaultdict(list)
    for patient, points in series.items():
        slope, _ = linear_regression([d for d, _ in points], [v for _, v in points])
        slopes[patients[patient].trend].append(slope)
        if patient == next(iter(patients)):  # the story patient: visibly worsening
            assert slope > 0.7 and len(points) >= 15
    worsening, stable, improving = (
        mean(slopes[trend]) for trend in ("worsening", "stable", "improving")
    )
    assert worsening > 0.9  # mmHg a day
    assert abs(stable) < 0.3
    assert improving < -0.3


def test_readings_are_morning_and_evening_with_missed_days(demo: Scenario) -> None:
    days_with_readings: dict[str, set[object]] = defaultdict(set)
    count = 0
    for e in demo.events:
        if isinstance(e, RecordEvent) and e.pilot == "chronic-care":
            taken = parse_utc(e.payload["effectiveDateTime"])
            hour = taken.hour + taken.minute / 60
            assert 6.5 <= hour < 9 or 19 <= hour < 22.5
            assert parse_utc(e.t) > taken  # uploaded after it was measured
            if _systolic(e) is not None and e.patient is not None:
                days_with_readings[e.patient].add(taken.date())
                count += 1
    days = SCALES["default"].history_days + 1
    assert count < 0.9 * 2 * days * len(days_with_readings)  # readings are skipped
    assert min(len(d) for d in days_with_readings.values()) < days - 1  # and days missed


@pytest.mark.parametrize(
    ("hospital", "code", "unit"), [("A", "2339-0", "mg/dL"), ("B", "15074-8", "mmol/L")]
)
def test_glucose_is_coded_per_hospital(demo: Scenario, hospital: str, code: str, unit: str) -> None:
    glucose = [
        e.payload
        for e in demo.events
        if isinstance(e, RecordEvent)
        and e.pilot == "chronic-care"
        and e.patient is not None
        and e.patient.startswith(f"HOSP-{hospital}-")
        and e.payload["code"]["coding"][0]["code"] in ("2339-0", "15074-8")
    ]
    assert glucose
    assert {(g["code"]["coding"][0]["code"], g["valueQuantity"]["unit"]) for g in glucose} == {
        (code, unit)
    }


def test_referrals_send_lab_results_before_their_report(demo: Scenario) -> None:
    sent: dict[str, RecordEvent] = {}
    reports = summaries = 0
    for e in demo.events:
        if not (isinstance(e, RecordEvent) and e.pilot == "cross-hospital-referral"):
            continue
        if e.type == "fhir.Observation":
            sent[e.payload["id"]] = e
        elif e.type == "fhir.DiagnosticReport":
            reports += 1
            for ref in e.payload["result"]:
                result = sent[ref["reference"].removeprefix("Observation/")]
                assert result.patient == e.patient and result.source == e.source
        else:
            summaries += 1
            assert e.payload["type"]["coding"][0]["code"] == "18842-5"
    assert reports >= 5 and summaries >= 1


def test_story_queries_follow_the_consents(demo: Scenario) -> None:
    queries = [e for e in demo.events if isinstance(e, QueryEvent)]
    withdrawals = {
        e.patient: e.t
        for e in demo.events
        if isinstance(e, ConsentEvent) and e.kind == "consent.withdraw"
    }
    doctor = [q for q in queries if q.payload.org == HOSPITAL_A]
    assert [q.payload.expect for q in doctor] == ["allow", "deny"]
    allowed, denied = doctor
    assert allowed.patient == denied.patient and allowed.patient is not None
    assert allowed.t < withdrawals[allowed.patient] < denied.t
    researcher = next(q for q in queries if q.payload.org == "urban-health-institute")
    assert researcher.payload.expect == "deny" and researcher.patient == allowed.patient
