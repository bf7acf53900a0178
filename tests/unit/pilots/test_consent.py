"""decide_consent on FHIR R4B Consents: provisions, periods, nesting, parsing, hashing."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from fhir.resources.R4B.consent import Consent
from hypothesis import given
from hypothesis import strategies as st

from ledger.canonical import canonical_json
from pilots import (
    ConsentError,
    ProvisionRule,
    consent_hash,
    decide_consent,
    make_consent,
    parse_consent,
    with_status,
)
from pilots.consent import consent_json, denies_by_name
from pilots.terminology import PURPOSES_OF_USE

AT = datetime(2025, 9, 1, 9, 30, tzinfo=UTC)
JAN1 = datetime(2025, 1, 1, tzinfo=UTC)
ORGS = ["hosp-a", "hosp-b", "clinic-c", "lab-d"]
TYPES = ["fhir.Observation", "fhir.DiagnosticReport", "fhir.Composition", "city.parking"]
PURPOSES = sorted(PURPOSES_OF_USE)


def consent(**overrides: Any) -> Consent:
    values: dict[str, Any] = {"consent_id": "c1", "subject": "p1", "recorded_at": JAN1}
    values.update(overrides)
    return make_consent(**values)


def ask(c: Consent | None, **overrides: Any) -> tuple[bool, str]:
    values: dict[str, Any] = {
        "org": "hosp-a",
        "purpose": "TREAT",
        "data_type": "fhir.Observation",
        "at": AT,
        "subject": "p1",
    }
    values.update(overrides)
    d = decide_consent(c, **values)
    return d.allowed, d.reason.value


def raw(document: dict[str, Any]) -> Consent:
    base: dict[str, Any] = {
        "resourceType": "Consent",
        "id": "r1",
        "status": "active",
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "patient-privacy",
                }
            ]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": "Patient/p1"},
    }
    base.update(document)
    return parse_consent(base)


# -- the grant ------------------------------------------------------------------------------


def test_an_unrestricted_active_consent_permits() -> None:
    assert ask(consent()) == (True, "consent_permits")


def test_period_bounds_are_inclusive_of_the_end() -> None:
    c = consent(start=JAN1, end=datetime(2025, 9, 1, 9, 30, tzinfo=UTC))
    assert ask(c) == (True, "consent_permits")
    assert ask(c, at=AT + timedelta(seconds=1)) == (False, "consent_expired")
    assert ask(c, at=JAN1 - timedelta(microseconds=1)) == (False, "consent_not_yet_valid")


def test_a_date_only_end_covers_the_whole_day() -> None:
    c = raw({"provision": {"period": {"start": "2025", "end": "2025-09-01"}}})
    assert ask(c, at=datetime(2025, 9, 1, 23, 59, 59, tzinfo=UTC)) == (True, "consent_permits")
    assert ask(c, at=datetime(2025, 9, 2, tzinfo=UTC)) == (False, "consent_expired")
    assert ask(c, at=datetime(2024, 12, 31, 23, tzinfo=UTC)) == (False, "consent_not_yet_valid")


def test_a_month_precision_period() -> None:
    c = raw({"provision": {"period": {"start": "2025-02", "end": "2025-12"}}})
    assert ask(c, at=datetime(2025, 12, 31, 23, tzinfo=UTC))[0]
    assert ask(c, at=datetime(2026, 1, 1, tzinfo=UTC)) == (False, "consent_expired")
    assert ask(c, at=datetime(2025, 1, 31, tzinfo=UTC)) == (False, "consent_not_yet_valid")


def test_offsets_are_respected() -> None:
    plus8 = timezone(timedelta(hours=8))
    c = consent(end=datetime(2025, 9, 1, 17, 30, tzinfo=plus8))  # = 09:30 UTC
    assert ask(c, at=AT)[0]
    assert not ask(c, at=AT + timedelta(seconds=1))[0]


def test_actor_purpose_class_and_subject() -> None:
    c = consent(actors=["hosp-a"], purposes=["TREAT"], data_types=["fhir.Observation"])
    assert ask(c)[0]
    assert ask(c, org="hosp-b") == (False, "consent_actor_not_permitted")
    assert ask(c, purpose="HRESCH") == (False, "consent_purpose_not_permitted")
    assert ask(c, data_type="fhir.Composition") == (False, "consent_class_not_permitted")
    assert ask(c, subject="p2") == (False, "consent_subject_mismatch")


def test_class_by_fhir_resource_type_alone() -> None:
    c = raw(
        {
            "provision": {
                "class": [{"system": "http://hl7.org/fhir/resource-types", "code": "Observation"}]
            }
        }
    )
    assert ask(c)[0]
    assert ask(c, data_type="fhir.Composition") == (False, "consent_class_not_permitted")
    # our own namespaces are never FHIR resource types
    assert ask(c, data_type="city.parking") == (False, "consent_class_not_permitted")


def test_codings_of_another_system_do_not_count() -> None:
    c = raw(
        {
            "provision": {
                "purpose": [{"system": "http://example.org/purposes", "code": "TREAT"}],
            }
        }
    )
    assert ask(c) == (False, "consent_purpose_not_permitted")


def test_absolute_references_name_the_same_resources() -> None:
    c = raw(
        {
            "patient": {"reference": "https://hub.example/fhir/Patient/p1"},
            "provision": {
                "actor": [
                    {
                        "role": {"text": "recipient"},
                        "reference": {"reference": "https://hub.example/fhir/Organization/hosp-a"},
                    }
                ]
            },
        }
    )
    assert ask(c)[0]
    assert ask(c, org="osp-a") == (False, "consent_actor_not_permitted")


def test_codes_restrict_the_grant_per_record() -> None:
    c = consent(codes=["85354-9"])
    assert ask(c, codes=["85354-9", "8480-6"])[0]
    assert ask(c, codes=["2339-0"]) == (False, "consent_code_not_permitted")
    assert ask(c) == (False, "consent_code_not_permitted")  # codes unknown: no permit


def test_data_period_limits_which_records() -> None:
    c = raw({"provision": {"dataPeriod": {"start": "2025-03-01", "end": "2025-06-30"}}})
    assert ask(c, observed_at=datetime(2025, 4, 1, tzinfo=UTC))[0]
    assert ask(c, observed_at=datetime(2025, 7, 1, tzinfo=UTC)) == (False, "consent_data_period")
    assert ask(c) == (False, "consent_data_period")


def test_action_must_be_listed() -> None:
    action = "http://terminology.hl7.org/CodeSystem/consentaction"
    c = raw({"provision": {"action": [{"coding": [{"system": action, "code": "collect"}]}]}})
    assert ask(c) == (False, "consent_action_not_permitted")
    c = raw({"provision": {"action": [{"coding": [{"system": action, "code": "access"}]}]}})
    assert ask(c)[0]


# -- status, scope, shape -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        ("draft", "consent_draft"),
        ("proposed", "consent_proposed"),
        ("rejected", "consent_rejected"),
        ("inactive", "consent_inactive"),
        ("entered-in-error", "consent_entered_in_error"),
    ],
)
def test_only_active_consents_permit(status: str, reason: str) -> None:
    assert ask(with_status(consent(), status)) == (False, reason)  # type: ignore[arg-type]


def test_missing_consent_scope_and_provision() -> None:
    assert ask(None) == (False, "consent_missing")
    treatment = {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "treatment"}
        ]
    }
    assert ask(raw({"scope": treatment, "provision": {}})) == (False, "consent_wrong_scope")
    assert ask(raw({})) == (False, "consent_no_provision")


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ConsentError, match="timezone-aware"):
        ask(consent(), at=datetime(2025, 9, 1))


# -- nested provisions ----------------------------------------------------------------------


def test_a_matching_deny_wins_and_others_are_untouched() -> None:
    c = consent(exceptions=[ProvisionRule(actors=["hosp-b"])])
    assert ask(c, org="hosp-b") == (False, "consent_denied")
    assert ask(c, org="hosp-a") == (True, "consent_permits")


def test_deny_wins_over_a_sibling_permit() -> None:
    c = consent(
        exceptions=[
            ProvisionRule(type="permit", actors=["hosp-b"]),
            ProvisionRule(type="deny", actors=["hosp-b"]),
        ]
    )
    assert ask(c, org="hosp-b") == (False, "consent_denied")


def test_a_permit_nested_in_a_deny_makes_an_exception_to_the_exception() -> None:
    c = consent(
        exceptions=[
            ProvisionRule(
                actors=["hosp-b"],
                provisions=[ProvisionRule(type="permit", purposes=["CAREMGT"])],
            )
        ]
    )
    assert ask(c, org="hosp-b", purpose="TREAT") == (False, "consent_denied")
    assert ask(c, org="hosp-b", purpose="CAREMGT") == (True, "consent_permits")


def test_a_time_boxed_deny() -> None:
    c = consent(
        exceptions=[
            ProvisionRule(
                start=datetime(2025, 8, 1, tzinfo=UTC), end=datetime(2025, 8, 31, tzinfo=UTC)
            )
        ]
    )
    assert ask(c, at=datetime(2025, 8, 15, tzinfo=UTC)) == (False, "consent_denied")
    assert ask(c, at=AT) == (True, "consent_permits")


def test_an_untyped_nested_provision_counts_as_deny() -> None:
    c = raw({"provision": {"provision": [{"actor": []}]}})
    assert ask(c) == (False, "consent_denied")


def test_a_root_deny_is_an_opt_out_with_permitted_exceptions() -> None:
    purpose = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}
    c = raw(
        {"provision": {"type": "deny", "provision": [{"type": "permit", "purpose": [purpose]}]}}
    )
    assert ask(c) == (True, "consent_permits")
    assert ask(c, purpose="CAREMGT") == (False, "consent_denied")


def test_denies_by_name_finds_an_explicit_refusal_wherever_it_is() -> None:
    c = consent(
        purposes=["TREAT"], exceptions=[ProvisionRule(purposes=["ETREAT"], actors=["hosp-b"])]
    )
    common = {"purpose": "ETREAT", "data_type": "fhir.Observation", "at": AT, "subject": "p1"}
    assert denies_by_name(c, org="hosp-b", **common)  # type: ignore[arg-type]
    assert not denies_by_name(c, org="hosp-a", **common)  # type: ignore[arg-type]
    assert not denies_by_name(with_status(c, "inactive"), org="hosp-b", **common)  # type: ignore[arg-type]


# -- properties -----------------------------------------------------------------------------

orgs = st.sampled_from(ORGS)
types = st.sampled_from(TYPES)
purposes = st.sampled_from(PURPOSES)


@given(
    granted_orgs=st.lists(orgs, unique=True),
    granted_purposes=st.lists(purposes, unique=True, max_size=4),
    granted_types=st.lists(types, unique=True),
    org=orgs,
    purpose=purposes,
    data_type=types,
)
def test_a_grant_permits_exactly_what_it_lists(
    granted_orgs: list[str],
    granted_purposes: list[str],
    granted_types: list[str],
    org: str,
    purpose: str,
    data_type: str,
) -> None:
    c = consent(actors=granted_orgs, purposes=granted_purposes, data_types=granted_types)
    expected = (
        (not granted_orgs or org in granted_orgs)
        and (not granted_purposes or purpose in granted_purposes)
        and (not granted_types or data_type in granted_types)
    )
    allowed, _ = ask(c, org=org, purpose=purpose, data_type=data_type)
    assert allowed is expected


@given(
    denied=st.lists(orgs, min_size=1, unique=True),
    denied_purposes=st.lists(purposes, unique=True, max_size=3),
    org=orgs,
    purpose=purposes,
)
def test_adding_a_deny_never_widens_access(
    denied: list[str], denied_purposes: list[str], org: str, purpose: str
) -> None:
    before = ask(consent(), org=org, purpose=purpose)[0]
    rule = ProvisionRule(actors=denied, purposes=denied_purposes)
    after = ask(consent(exceptions=[rule]), org=org, purpose=purpose)[0]
    assert after <= before
    hit = org in denied and (not denied_purposes or purpose in denied_purposes)
    assert after is (before and not hit)


@given(offset=st.integers(min_value=-400 * 86400, max_value=400 * 86400))
def test_the_period_decides_by_at_alone(offset: int) -> None:
    start, end = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 12, 31, 12, tzinfo=UTC)
    at = datetime(2025, 6, 1, tzinfo=UTC) + timedelta(seconds=offset)
    allowed, reason = ask(consent(start=start, end=end), at=at)
    assert allowed is (start <= at < end + timedelta(seconds=1))
    if not allowed:
        assert reason == ("consent_not_yet_valid" if at < start else "consent_expired")


# -- building, parsing, hashing -------------------------------------------------------------


def test_made_consents_are_valid_r4b_and_round_trip() -> None:
    c = consent(
        actors=["hosp-a"],
        purposes=["TREAT"],
        data_types=["fhir.Observation"],
        codes=["8480-6"],
        start=JAN1,
        custodian="hosp-a",
        exceptions=[ProvisionRule(actors=["hosp-b"])],
    )
    document = consent_json(c)
    assert document["resourceType"] == "Consent"
    assert "type" not in document["provision"]  # R4B: no type on the root
    assert document["provision"]["provision"][0]["type"] == "deny"
    again = parse_consent(json.dumps(document))
    assert consent_hash(again) == consent_hash(c)


def test_consent_hash_is_sha256_of_jcs() -> None:
    c = consent()
    assert consent_hash(c) == hashlib.sha256(canonical_json(consent_json(c))).hexdigest()
    assert consent_hash(with_status(c, "inactive")) != consent_hash(c)
    # key order in the source JSON does not matter
    document = consent_json(c)
    reordered = dict(reversed(list(document.items())))
    assert consent_hash(parse_consent(reordered)) == consent_hash(c)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{", "not JSON"),
        ('{"resourceType": "Patient"}', "not a FHIR Consent"),
        ('{"resourceType": "Consent", "status": 7}', "not a valid R4B Consent"),
    ],
)
def test_parse_consent_errors(value: str, message: str) -> None:
    with pytest.raises(ConsentError, match=message):
        parse_consent(value)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"purposes": ["TRET"]}, "PurposeOfUse"),
        ({"actors": ["Hosp A"]}, "not a slug"),
        ({"codes": ["1234-5"]}, "LOINC"),
        ({"subject": "p 1"}, "FHIR id"),
        ({"recorded_at": datetime(2025, 1, 1)}, "timezone-aware"),
        ({"start": datetime(2025, 1, 1)}, "timezone-aware"),
        ({"status": "paused"}, "status"),
    ],
)
def test_make_consent_refuses_bad_values(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConsentError, match=message):
        consent(**overrides)
