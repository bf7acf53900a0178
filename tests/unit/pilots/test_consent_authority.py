# ruff: noqa: E501  (the decision table is kept one change per line, to be read as a table)
"""Who may record, change and withdraw a Consent: caller x change x stored state x proposed
version -> allow/deny and why. Read it as the specification of consent custody.

Each row is ``decide_consent_change(pilot, org, change, stored, proposed)``. The stored
Consent (``BASE``) was recorded by the People's Hospital for patient ``p-001``: both
hospitals may read Observations for TREAT and CAREMGT in 2025-2026, except glucose readings.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fhir.resources.R4B.consent import Consent

from pilots import (
    ConsentRecordRule,
    Pilot,
    ProvisionRule,
    StoredConsent,
    decide_consent,
    decide_consent_change,
    load_pilots,
    make_consent,
    with_status,
)
from pilots.consent_authority import ENTRY_ACTIONS, covered_types, recordable_types
from pilots.consent_widening import widenings

PEOPLES = "harbour-peoples-hospital"
UNIVERSITY = "harbour-university-hospital"
CLINIC = "seaview-clinic"
OBS = "fhir.Observation"
REPORT = "fhir.DiagnosticReport"
SUMMARY = "fhir.Composition"
GLUCOSE = "2339-0"
HBA1C = "4548-4"
FORM = "DocumentReference/signed-form-001"


def _consent(**overrides: object) -> Consent:
    values: dict[str, object] = {
        "consent_id": "c-001",
        "subject": "p-001",
        "recorded_at": datetime(2025, 1, 1, tzinfo=UTC),
        "actors": [PEOPLES, UNIVERSITY],
        "purposes": ["TREAT", "CAREMGT"],
        "data_types": [OBS],
        "start": datetime(2025, 1, 1, tzinfo=UTC),
        "end": datetime(2026, 12, 31, tzinfo=UTC),
        "exceptions": [ProvisionRule(codes=[GLUCOSE])],
        "evidence": FORM,
    }
    values.update(overrides)
    return make_consent(**values)  # type: ignore[arg-type]


BASE = _consent()
STORED: dict[str, StoredConsent | None] = {
    "none": None,
    "active": StoredConsent(PEOPLES, "active", BASE),
    "withdrawn": StoredConsent(PEOPLES, "inactive", with_status(BASE, "inactive")),
    "in-error": StoredConsent(PEOPLES, "entered-in-error", with_status(BASE, "entered-in-error")),
    "draft": StoredConsent(PEOPLES, "draft", with_status(BASE, "draft")),
    "legacy": StoredConsent(None, "active", BASE),
    "erased": StoredConsent(PEOPLES, "active", None),
}
PROPOSED: dict[str, Consent | None] = {
    "-": None,
    "same": BASE,
    "own-org": _consent(custodian=PEOPLES),
    "other-org": _consent(custodian=UNIVERSITY),
    "no-evidence": _consent(evidence=None),
    "fewer-actors": _consent(actors=[PEOPLES]),
    "add-actor": _consent(actors=[PEOPLES, UNIVERSITY, CLINIC]),
    "any-actor": _consent(actors=[]),
    "add-source": _consent(sources=["home-bp-gw-02"]),
    "fewer-purposes": _consent(purposes=["TREAT"]),
    "add-purpose": _consent(purposes=["TREAT", "CAREMGT", "COC"]),
    "any-purpose": _consent(purposes=[]),
    "add-class": _consent(data_types=[OBS, REPORT]),
    "any-class": _consent(data_types=[]),
    "shorter": _consent(end=datetime(2025, 12, 31, tzinfo=UTC)),
    "later-end": _consent(end=datetime(2027, 12, 31, tzinfo=UTC)),
    "open-end": _consent(end=None),
    "earlier-start": _consent(start=datetime(2024, 1, 1, tzinfo=UTC)),
    "add-deny": _consent(
        exceptions=[ProvisionRule(codes=[GLUCOSE]), ProvisionRule(actors=[UNIVERSITY])]
    ),
    "drop-exception": _consent(exceptions=[]),
    "edit-exception": _consent(exceptions=[ProvisionRule(codes=[GLUCOSE, HBA1C])]),
    "add-permit": _consent(
        exceptions=[ProvisionRule(codes=[GLUCOSE]), ProvisionRule(type="permit", actors=[CLINIC])]
    ),
    "add-deny-permit": _consent(
        exceptions=[
            ProvisionRule(codes=[GLUCOSE]),
            ProvisionRule(actors=[UNIVERSITY], provisions=[ProvisionRule(type="permit")]),
        ]
    ),
    "inactive": with_status(BASE, "inactive"),
    "inactive-wider": with_status(_consent(actors=[]), "inactive"),
    "draft": with_status(BASE, "draft"),
    "reports-only": _consent(data_types=[REPORT]),
    "all-types": _consent(data_types=[]),
}

# fmt: off
TABLE = [
    # pilot,                 org,        change,     stored,      proposed,          allowed, reason
    # -- who administers consents at all ----------------------------------------------------
    ("chronic-care",         "vitalink", "create",   "none",      "same",            False, "not_consent_admin"),
    ("chronic-care",         "parkwise", "create",   "none",      "same",            False, "not_a_member"),
    ("chronic-care",         "health-commission", "withdraw", "active", "-",         False, "not_consent_admin"),
    # -- a grant: in the recorder's own name, with its evidence -------------------------------
    ("chronic-care",         PEOPLES,    "create",   "none",      "same",            True,  "consent_grant"),
    ("chronic-care",         PEOPLES,    "create",   "none",      "own-org",         True,  "consent_grant"),
    ("chronic-care",         PEOPLES,    "create",   "none",      "other-org",       False, "consent_organization_mismatch"),
    ("chronic-care",         PEOPLES,    "create",   "none",      "no-evidence",     False, "consent_evidence_missing"),
    ("chronic-care",         CLINIC,     "create",   "none",      "same",            True,  "consent_grant"),
    ("chronic-care",         PEOPLES,    "create",   "active",    "same",            False, "consent_widening_needs_grant"),
    # -- which roles may record consents for which data --------------------------------------
    ("referral/obs-only",    PEOPLES,    "create",   "none",      "same",            True,  "consent_grant"),
    ("referral/obs-only",    PEOPLES,    "create",   "none",      "reports-only",    False, "role_may_not_record_consent"),
    ("referral/obs-only",    PEOPLES,    "create",   "none",      "all-types",       False, "role_may_not_record_consent"),
    ("cross-hospital-referral", PEOPLES, "create",   "none",      "all-types",       True,  "consent_grant"),
    # -- only the custodian changes or withdraws ------------------------------------------------
    ("chronic-care",         UNIVERSITY, "update",   "active",    "add-actor",       False, "consent_not_custodian"),
    ("chronic-care",         UNIVERSITY, "update",   "active",    "same",            False, "consent_not_custodian"),
    ("chronic-care",         UNIVERSITY, "update",   "withdrawn", "same",            False, "consent_not_custodian"),
    ("chronic-care",         UNIVERSITY, "withdraw", "active",    "-",               False, "consent_not_custodian"),
    ("chronic-care",         CLINIC,     "update",   "active",    "inactive",        False, "consent_not_custodian"),
    ("chronic-care",         PEOPLES,    "withdraw", "active",    "-",               True,  "consent_withdraw"),
    ("chronic-care",         PEOPLES,    "withdraw", "withdrawn", "-",               True,  "consent_withdraw"),
    ("chronic-care",         PEOPLES,    "update",   "none",      "same",            False, "consent_missing"),
    # -- custodian unknown (an old ledger): withdraw yes, change no ----------------------------
    ("chronic-care",         UNIVERSITY, "withdraw", "legacy",    "-",               True,  "consent_withdraw"),
    ("chronic-care",         UNIVERSITY, "update",   "legacy",    "fewer-actors",    False, "consent_custodian_unknown"),
    # -- a withdrawn Consent stays withdrawn ----------------------------------------------------
    ("chronic-care",         PEOPLES,    "update",   "withdrawn", "same",            False, "consent_withdrawn_final"),
    ("chronic-care",         PEOPLES,    "update",   "withdrawn", "inactive",        False, "consent_withdrawn_final"),
    ("chronic-care",         PEOPLES,    "update",   "in-error",  "same",            False, "consent_withdrawn_final"),
    ("chronic-care",         PEOPLES,    "update",   "draft",     "same",            False, "consent_widening_needs_grant"),
    ("chronic-care",         PEOPLES,    "update",   "draft",     "draft",           True,  "consent_update"),
    # -- an update only narrows -----------------------------------------------------------------
    ("chronic-care",         PEOPLES,    "update",   "active",    "same",            True,  "consent_update"),
    ("chronic-care",         PEOPLES,    "update",   "active",    "own-org",         True,  "consent_update"),
    ("chronic-care",         PEOPLES,    "update",   "active",    "no-evidence",     True,  "consent_update"),
    ("chronic-care",         PEOPLES,    "update",   "active",    "fewer-actors",    True,  "consent_update"),
    ("chronic-care",         PEOPLES,    "update",   "active",    "fewer-purposes",  True,  "consent_update"),
    ("chronic-care",         PEOPLES,    "update",   "active",    "shorter",         True,  "consent_update"),
    ("chronic-care",         PEOPLES,    "update",   "active",    "add-deny",        True,  "consent_update"),
    ("chronic-care",         PEOPLES,    "update",   "active",    "inactive",        True,  "consent_withdraw"),
    ("chronic-care",         PEOPLES,    "update",   "active",    "inactive-wider",  True,  "consent_withdraw"),
    ("chronic-care",         PEOPLES,    "update",   "active",    "draft",           True,  "consent_withdraw"),
    ("chronic-care",         PEOPLES,    "update",   "active",    "other-org",       False, "consent_organization_mismatch"),
    ("chronic-care",         PEOPLES,    "update",   "active",    "add-actor",       False, "consent_widening_needs_grant"),
    ("chronic-care",         PEOPLES,    "update",   "active",    "any-actor",       False, "consent_widening_needs_grant"),
    ("chronic-care",         PEOPLES,    "update",   "active",    "add-source",      False, "consent_widening_needs_grant"),
    ("chronic-care",         PEOPLES,    "update",   "active",    "add-purpose",     False, "consent_widening_needs_grant"),
    ("chronic-care",         PEOPLES,    "update",   "active",    "any-purpose",     False, "consent_widening_needs_grant"),
    ("chronic-care",         PEOPLES,    "update",   "active",    "add-class",       False, "consent_widening_needs_grant"),
    ("chronic-care",         PEOPLES,    "update",   "active",    "any-class",       False, "consent_widening_needs_grant"),
    ("chronic-care",         PEOPLES,    "update",   "active",    "later-end",       False, "consent_widening_needs_grant"),
    ("chronic-care",         PEOPLES,    "update",   "active",    "open-end",        False, "consent_widening_needs_grant"),
    ("chronic-care",         PEOPLES,    "update",   "active",    "earlier-start",   False, "consent_widening_needs_grant"),
    ("chronic-care",         PEOPLES,    "update",   "active",    "drop-exception",  False, "consent_widening_needs_grant"),
    ("chronic-care",         PEOPLES,    "update",   "active",    "edit-exception",  False, "consent_widening_needs_grant"),
    ("chronic-care",         PEOPLES,    "update",   "active",    "add-permit",      False, "consent_widening_needs_grant"),
    ("chronic-care",         PEOPLES,    "update",   "active",    "add-deny-permit", False, "consent_widening_needs_grant"),
    ("chronic-care",         PEOPLES,    "update",   "erased",    "same",            False, "consent_widening_needs_grant"),
]
# fmt: on


@pytest.fixture(scope="module")
def pilots() -> dict[str, Pilot]:
    loaded = load_pilots()
    referral = loaded["cross-hospital-referral"]
    obs_only = referral.model_copy(
        update={"record_consent": (ConsentRecordRule(role="consent-admin", types=(OBS,)),)}
    )
    return {**loaded, "referral/obs-only": obs_only}


@pytest.mark.parametrize(
    ("pilot_id", "org", "change", "stored", "proposed", "allowed", "reason"),
    TABLE,
    ids=[f"{r[0]}|{r[1]}|{r[2]}|{r[3]}|{r[4]}" for r in TABLE],
)
def test_consent_change_decision(
    pilots: dict[str, Pilot],
    pilot_id: str,
    org: str,
    change: str,
    stored: str,
    proposed: str,
    allowed: bool,
    reason: str,
) -> None:
    decision = decide_consent_change(
        pilots[pilot_id],
        org=org,
        change=change,  # type: ignore[arg-type]
        stored=STORED[stored],
        proposed=PROPOSED[proposed],
    )
    assert (decision.allowed, decision.reason) == (allowed, reason), decision.detail
    assert decision.detail
    if decision.allowed:
        assert decision.reason in ENTRY_ACTIONS


def test_every_widening_is_named(pilots: dict[str, Pilot]) -> None:
    """The refusal says what would have widened, so the administrator knows what to do."""
    found = widenings(BASE, PROPOSED["add-actor"])  # type: ignore[arg-type]
    assert found == [f"provision.actor: adds Organization/{CLINIC}"]
    found = widenings(BASE, PROPOSED["open-end"])  # type: ignore[arg-type]
    assert found == ["provision.period.end: open, later than 2026-12-31T00:00:00+00:00"]
    assert widenings(BASE, BASE) == []
    decision = decide_consent_change(
        pilots["chronic-care"],
        org=PEOPLES,
        change="update",
        stored=STORED["active"],
        proposed=PROPOSED["add-source"],
    )
    assert "Device/home-bp-gw-02" in decision.detail


def test_recordable_and_covered_types(pilots: dict[str, Pilot]) -> None:
    chronic, obs_only = pilots["chronic-care"], pilots["referral/obs-only"]
    assert recordable_types(chronic, PEOPLES) == {OBS}
    assert recordable_types(chronic, "vitalink") == frozenset()
    assert recordable_types(obs_only, PEOPLES) == {OBS}
    assert recordable_types(pilots["cross-hospital-referral"], PEOPLES) == {OBS, REPORT, SUMMARY}
    referral = pilots["cross-hospital-referral"]
    assert covered_types(referral, PROPOSED["all-types"]) == {OBS, REPORT, SUMMARY}  # type: ignore[arg-type]
    assert covered_types(referral, PROPOSED["reports-only"]) == {REPORT}  # type: ignore[arg-type]


REQUESTS = [
    (org, purpose, data_type, at, codes)
    for org in (PEOPLES, UNIVERSITY, CLINIC, "harbour-cdc")
    for purpose in ("TREAT", "CAREMGT", "COC", "ETREAT")
    for data_type in (OBS, REPORT)
    for at in (
        datetime(2024, 6, 1, tzinfo=UTC),
        datetime(2025, 6, 1, tzinfo=UTC),
        datetime(2026, 6, 1, tzinfo=UTC),
        datetime(2027, 6, 1, tzinfo=UTC),
    )
    for codes in (None, ["85354-9"], [GLUCOSE], [HBA1C])
]


@pytest.mark.parametrize("name", [n for n, c in PROPOSED.items() if c is not None])
def test_what_passes_as_narrowing_never_permits_more(name: str) -> None:
    """Soundness of the widening check: where an update is accepted as narrowing, no request
    the new version permits was denied by the stored one."""
    proposed = PROPOSED[name]
    assert proposed is not None
    if widenings(BASE, proposed):
        return
    for org, purpose, data_type, at, codes in REQUESTS:
        ask = {"org": org, "purpose": purpose, "data_type": data_type, "at": at}
        new = decide_consent(proposed, subject="p-001", codes=codes, **ask)  # type: ignore[arg-type]
        old = decide_consent(BASE, subject="p-001", codes=codes, **ask)  # type: ignore[arg-type]
        assert old.allowed or not new.allowed, (ask, codes, new.detail)
