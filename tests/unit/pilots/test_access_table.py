# ruff: noqa: E501  (the decision table is kept one request per line, to be read as a table)
"""The access decision table: role x data type x purpose x consent state -> allow/deny and
why. Read it as the specification of the access decision for the packaged pilots.

Each row is one request ``decide_access(pilot, org, data_type, purpose, consent)`` at
2025-09-01 for patient ``p-001``. Consent states are built in ``CONSENTS`` below.
``chronic-care/allow`` is chronic care with ``break_glass_after_withdrawal: allow``.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fhir.resources.R4B.consent import Consent

from pilots import Pilot, ProvisionRule, decide_access, load_pilots, make_consent, with_status

AT = datetime(2025, 9, 1, 9, 30, tzinfo=UTC)
PATIENT = "p-001"
PEOPLES = "harbour-peoples-hospital"
UNIVERSITY = "harbour-university-hospital"
CLINIC = "seaview-clinic"
OBS = "fhir.Observation"
REPORT = "fhir.DiagnosticReport"
SUMMARY = "fhir.Composition"
STATS = "stats.chronic-care-weekly"


def _consent(**overrides: object) -> Consent:
    values: dict[str, object] = {
        "consent_id": "c-001",
        "subject": PATIENT,
        "recorded_at": datetime(2025, 1, 1, tzinfo=UTC),
        "actors": [PEOPLES, UNIVERSITY, CLINIC],
        "purposes": ["TREAT", "CAREMGT"],
        "data_types": [OBS, REPORT, SUMMARY],
        "start": datetime(2025, 1, 1, tzinfo=UTC),
        "end": datetime(2026, 12, 31, tzinfo=UTC),
    }
    values.update(overrides)
    return make_consent(**values)  # type: ignore[arg-type]


ACTIVE = _consent()
CONSENTS: dict[str, Consent | None] = {
    "none": None,
    "active": ACTIVE,
    "expired": _consent(end=datetime(2025, 6, 30, tzinfo=UTC)),
    "not-yet": _consent(start=datetime(2025, 10, 1, tzinfo=UTC)),
    "withdrawn": with_status(ACTIVE, "inactive"),
    "draft": with_status(ACTIVE, "draft"),
    "proposed": with_status(ACTIVE, "proposed"),
    "rejected": with_status(ACTIVE, "rejected"),
    "in-error": with_status(ACTIVE, "entered-in-error"),
    "deny-university": _consent(exceptions=[ProvisionRule(actors=[UNIVERSITY])]),
    "deny-glucose": _consent(exceptions=[ProvisionRule(codes=["2339-0"])]),
    "deny-etreat": _consent(exceptions=[ProvisionRule(purposes=["ETREAT"])]),
    "with-etreat": _consent(purposes=["TREAT", "CAREMGT", "ETREAT"]),
    "clinic-only": _consent(actors=[CLINIC]),
    "caremgt-only": _consent(purposes=["CAREMGT"]),
    "summaries-only": _consent(data_types=[SUMMARY]),
    "other-patient": _consent(subject="p-999"),
}

# fmt: off
TABLE = [
    # pilot,        org,                     type,   purpose,   consent,          allowed, reason,                          break_glass
    # -- chronic care: policy lets treating roles read Observations for TREAT/CAREMGT -------
    ("chronic-care", PEOPLES,               OBS,    "TREAT",   "active",          True,  "consent_permits",               False),
    ("chronic-care", UNIVERSITY,            OBS,    "CAREMGT", "active",          True,  "consent_permits",               False),
    ("chronic-care", CLINIC,                OBS,    "TREAT",   "active",          True,  "consent_permits",               False),
    ("chronic-care", PEOPLES,               OBS,    "TREAT",   "none",            False, "consent_missing",               False),
    ("chronic-care", PEOPLES,               OBS,    "TREAT",   "expired",         False, "consent_expired",               False),
    ("chronic-care", PEOPLES,               OBS,    "TREAT",   "not-yet",         False, "consent_not_yet_valid",         False),
    ("chronic-care", PEOPLES,               OBS,    "TREAT",   "withdrawn",       False, "consent_inactive",              False),
    ("chronic-care", PEOPLES,               OBS,    "TREAT",   "draft",           False, "consent_draft",                 False),
    ("chronic-care", PEOPLES,               OBS,    "TREAT",   "proposed",        False, "consent_proposed",              False),
    ("chronic-care", PEOPLES,               OBS,    "TREAT",   "rejected",        False, "consent_rejected",              False),
    ("chronic-care", PEOPLES,               OBS,    "TREAT",   "in-error",        False, "consent_entered_in_error",      False),
    ("chronic-care", UNIVERSITY,            OBS,    "TREAT",   "deny-university", False, "consent_denied",                False),
    ("chronic-care", PEOPLES,               OBS,    "TREAT",   "deny-university", True,  "consent_permits",               False),
    ("chronic-care", PEOPLES,               OBS,    "TREAT",   "clinic-only",     False, "consent_actor_not_permitted",   False),
    ("chronic-care", CLINIC,                OBS,    "TREAT",   "clinic-only",     True,  "consent_permits",               False),
    ("chronic-care", PEOPLES,               OBS,    "TREAT",   "caremgt-only",    False, "consent_purpose_not_permitted", False),
    ("chronic-care", PEOPLES,               OBS,    "CAREMGT", "caremgt-only",    True,  "consent_permits",               False),
    ("chronic-care", PEOPLES,               OBS,    "TREAT",   "summaries-only",  False, "consent_class_not_permitted",   False),
    ("chronic-care", PEOPLES,               OBS,    "TREAT",   "other-patient",   False, "consent_subject_mismatch",      False),
    # without the record's codes, a deny on glucose readings may apply: deny
    ("chronic-care", PEOPLES,               OBS,    "TREAT",   "deny-glucose",    False, "consent_denied",                False),
    # -- chronic care: policy denies before consent is asked --------------------------------
    ("chronic-care", CLINIC,                OBS,    "HRESCH",  "active",          False, "purpose_not_allowed",           False),
    ("chronic-care", "vitalink",            OBS,    "TREAT",   "active",          False, "no_read_rule",                  False),
    ("chronic-care", "urban-health-institute", OBS, "HRESCH",  "active",          False, "no_read_rule",                  False),
    ("chronic-care", "harbour-cdc",         OBS,    "PUBHLTH", "active",          False, "no_read_rule",                  False),
    ("chronic-care", "zone-operator",       OBS,    "HOPERAT", "active",          False, "no_read_rule",                  False),
    ("chronic-care", "parkwise",            OBS,    "TREAT",   "active",          False, "not_a_member",                  False),
    ("chronic-care", PEOPLES,               OBS,    "TRET",    "active",          False, "unknown_purpose",               False),
    ("chronic-care", PEOPLES,               "city.parking", "TREAT", "active",    False, "unknown_data_type",             False),
    # -- break-glass (ETREAT): only where the pilot allows it, always flagged ----------------
    ("chronic-care", PEOPLES,               OBS,    "ETREAT",  "none",            True,  "break_glass_override",          True),
    ("chronic-care", PEOPLES,               OBS,    "ETREAT",  "active",          True,  "break_glass_override",          True),
    # a withdrawal is also a refusal of break-glass, unless the pilot says otherwise
    ("chronic-care", PEOPLES,               OBS,    "ETREAT",  "withdrawn",       False, "consent_withdrawn_denies_break_glass", True),
    ("chronic-care", "harbour-university-hospital", OBS, "ETREAT", "withdrawn",   False, "consent_withdrawn_denies_break_glass", True),
    ("chronic-care/allow", PEOPLES,         OBS,    "ETREAT",  "withdrawn",       True,  "break_glass_after_withdrawal",  True),
    ("chronic-care/allow", PEOPLES,         OBS,    "ETREAT",  "none",            True,  "break_glass_override",          True),
    ("chronic-care/allow", PEOPLES,         OBS,    "ETREAT",  "deny-etreat",     False, "consent_denies_break_glass",    True),
    ("chronic-care/allow", PEOPLES,         OBS,    "TREAT",   "withdrawn",       False, "consent_inactive",              False),
    ("chronic-care", PEOPLES,               OBS,    "ETREAT",  "expired",         True,  "break_glass_override",          True),
    ("chronic-care", PEOPLES,               OBS,    "ETREAT",  "rejected",        True,  "break_glass_override",          True),
    ("chronic-care", PEOPLES,               OBS,    "ETREAT",  "with-etreat",     True,  "consent_permits",               True),
    ("chronic-care", PEOPLES,               OBS,    "ETREAT",  "deny-etreat",     False, "consent_denies_break_glass",    True),
    ("chronic-care", UNIVERSITY,            OBS,    "ETREAT",  "deny-university", True,  "break_glass_override",          True),
    ("chronic-care", CLINIC,                OBS,    "ETREAT",  "active",          False, "break_glass_not_allowed",       True),
    # -- chronic care: de-identified aggregates need no consent -----------------------------
    ("chronic-care", "urban-health-institute", STATS, "HRESCH", "none",           True,  "read_allowed",                  False),
    ("chronic-care", "harbour-cdc",         STATS,  "PUBHLTH", "none",            True,  "read_allowed",                  False),
    ("chronic-care", "harbour-cdc",         STATS,  "HRESCH",  "none",            False, "purpose_not_allowed",           False),
    ("chronic-care", PEOPLES,               STATS,  "TREAT",   "none",            False, "purpose_not_allowed",           False),
    # -- cross-hospital referral --------------------------------------------------------------
    ("cross-hospital-referral", UNIVERSITY, SUMMARY, "TREAT",  "active",          True,  "consent_permits",               False),
    ("cross-hospital-referral", UNIVERSITY, REPORT, "COC",     "active",          False, "consent_purpose_not_permitted", False),
    ("cross-hospital-referral", UNIVERSITY, SUMMARY, "TREAT",  "withdrawn",       False, "consent_inactive",              False),
    ("cross-hospital-referral", PEOPLES,    REPORT, "TREAT",   "summaries-only",  False, "consent_class_not_permitted",   False),
    ("cross-hospital-referral", PEOPLES,    SUMMARY, "TREAT",  "summaries-only",  True,  "consent_permits",               False),
    ("cross-hospital-referral", UNIVERSITY, REPORT, "ETREAT",  "none",            True,  "break_glass_override",          True),
    ("cross-hospital-referral", UNIVERSITY, REPORT, "ETREAT",  "withdrawn",       False, "consent_withdrawn_denies_break_glass", True),
    ("cross-hospital-referral", UNIVERSITY, SUMMARY, "ETREAT", "active",          False, "break_glass_not_allowed",       True),
    ("cross-hospital-referral", CLINIC,     SUMMARY, "TREAT",  "active",          False, "not_a_member",                  False),
    ("cross-hospital-referral", "health-commission", SUMMARY, "TREAT", "active",  False, "no_read_rule",                  False),
    # -- city pilots: non-personal, no consent ------------------------------------------------
    ("air-quality",  "harbour-cdc",         "city.air-quality", "PUBHLTH", "none", True,  "read_allowed",                 False),
    ("air-quality",  "harbour-cdc",         "city.air-quality", "GOV",     "none", False, "purpose_not_allowed",          False),
    ("air-quality",  "urban-health-institute", "city.air-quality", "HRESCH", "none", True, "read_allowed",                 False),
    ("air-quality",  "parkwise",            "city.air-quality", "HOPERAT", "none", False, "not_a_member",                 False),
    ("air-quality",  "harbour-cdc",         "city.air-quality", "ETREAT",  "none", False, "break_glass_not_allowed",      True),
    ("traffic-flow", "env-bureau",          "city.traffic-flow", "GOV",    "none", True,  "read_allowed",                 False),
    ("traffic-flow", "roadsense",           "city.traffic-flow", "GOV",    "none", False, "no_read_rule",                 False),
    ("smart-parking", "parkwise",           "city.parking", "HOPERAT",     "none", True,  "read_allowed",                 False),
    ("smart-parking", "transport-bureau",   "city.parking", "HRESCH",      "none", False, "purpose_not_allowed",          False),
]
# fmt: on


@pytest.fixture(scope="module")
def pilots() -> dict[str, Pilot]:
    loaded = load_pilots()
    allow = loaded["chronic-care"].model_copy(update={"break_glass_after_withdrawal": "allow"})
    return {**loaded, "chronic-care/allow": allow}


@pytest.mark.parametrize(
    ("pilot_id", "org", "data_type", "purpose", "consent", "allowed", "reason", "break_glass"),
    TABLE,
    ids=[f"{r[0]}|{r[1]}|{r[2]}|{r[3]}|{r[4]}" for r in TABLE],
)
def test_access_decision(
    pilots: dict[str, Pilot],
    pilot_id: str,
    org: str,
    data_type: str,
    purpose: str,
    consent: str,
    allowed: bool,
    reason: str,
    break_glass: bool,
) -> None:
    decision = decide_access(
        pilots[pilot_id],
        org=org,
        data_type=data_type,
        purpose=purpose,
        at=AT,
        subject=PATIENT,
        consent=CONSENTS[consent],
    )
    assert (decision.allowed, decision.reason, decision.break_glass) == (
        allowed,
        reason,
        break_glass,
    ), decision.detail
    assert bool(decision) is allowed
    assert decision.detail


def test_per_record_codes_let_other_readings_through(pilots: dict[str, Pilot]) -> None:
    """With the record's LOINC codes known, a deny on glucose spares blood pressure."""
    ask = {
        "org": PEOPLES,
        "data_type": OBS,
        "purpose": "TREAT",
        "at": AT,
        "subject": PATIENT,
        "consent": CONSENTS["deny-glucose"],
    }
    bp = decide_access(pilots["chronic-care"], codes=["85354-9"], **ask)  # type: ignore[arg-type]
    glucose = decide_access(pilots["chronic-care"], codes=["2339-0"], **ask)  # type: ignore[arg-type]
    assert (bp.allowed, bp.reason) == (True, "consent_permits")
    assert (glucose.allowed, glucose.reason) == (False, "consent_denied")


def test_personal_data_without_a_subject_is_denied(pilots: dict[str, Pilot]) -> None:
    d = decide_access(pilots["chronic-care"], org=PEOPLES, data_type=OBS, purpose="TREAT", at=AT)
    assert (d.allowed, d.reason) == (False, "consent_missing")
