"""Pilot policy decisions other than the access table: publish, roles, consent
administration, audit, and deny-by-default over the whole request space."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pilots import (
    Pilot,
    allowed_purposes,
    can_audit,
    can_manage_consent,
    decide_publish,
    decide_read,
    load_pilots,
    readable_types,
    roles_of,
)
from pilots.terminology import BREAK_GLASS, PURPOSES_OF_USE

PILOTS = load_pilots()
CHRONIC = PILOTS["chronic-care"]


@pytest.mark.parametrize(
    ("pilot_id", "org", "data_type", "allowed", "reason"),
    [
        ("chronic-care", "vitalink", "fhir.Observation", True, "publish_allowed"),
        ("chronic-care", "vitalink", "fhir.Consent", False, "publish_not_allowed"),
        ("chronic-care", "seaview-clinic", "fhir.Consent", True, "publish_allowed"),
        (
            "chronic-care",
            "urban-health-institute",
            "stats.chronic-care-weekly",
            False,
            "publish_not_allowed",
        ),
        (
            "chronic-care",
            "harbour-peoples-hospital",
            "stats.chronic-care-weekly",
            True,
            "publish_allowed",
        ),
        ("chronic-care", "vitalink", "city.parking", False, "unknown_data_type"),
        ("air-quality", "env-bureau", "city.air-quality", True, "publish_allowed"),
        ("air-quality", "harbour-cdc", "city.air-quality", False, "publish_not_allowed"),
        ("smart-parking", "parkwise", "city.parking", True, "publish_allowed"),
        ("smart-parking", "env-bureau", "city.parking", False, "not_a_member"),
        ("traffic-flow", "roadsense", "city.traffic-flow", True, "publish_allowed"),
        (
            "cross-hospital-referral",
            "harbour-university-hospital",
            "fhir.Composition",
            True,
            "publish_allowed",
        ),
        (
            "cross-hospital-referral",
            "health-commission",
            "fhir.Composition",
            False,
            "publish_not_allowed",
        ),
    ],
)
def test_decide_publish(
    pilot_id: str, org: str, data_type: str, allowed: bool, reason: str
) -> None:
    d = decide_publish(PILOTS[pilot_id], org, data_type)
    assert (d.allowed, d.reason) == (allowed, reason), d.detail


def test_roles_of() -> None:
    assert roles_of(CHRONIC, "harbour-peoples-hospital") == {
        "treating-hospital",
        "consent-admin",
        "statistics-producer",
    }
    assert roles_of(CHRONIC, "nobody") == frozenset()


@pytest.mark.parametrize(
    ("org", "manage", "audit"),
    [
        ("harbour-peoples-hospital", "consent_admin", "not_auditor"),
        ("seaview-clinic", "consent_admin", "not_auditor"),
        ("health-commission", "not_consent_admin", "auditor"),
        ("zone-operator", "not_consent_admin", "not_auditor"),
        ("vitalink", "not_consent_admin", "not_auditor"),
        ("parkwise", "not_a_member", "not_a_member"),
    ],
)
def test_consent_administration_and_audit(org: str, manage: str, audit: str) -> None:
    assert can_manage_consent(CHRONIC, org).reason == manage
    assert can_audit(CHRONIC, org).reason == audit
    assert can_manage_consent(CHRONIC, org).allowed is (manage == "consent_admin")
    assert can_audit(CHRONIC, org).allowed is (audit == "auditor")


def test_allowed_purposes_and_readable_types() -> None:
    assert allowed_purposes(CHRONIC, "harbour-peoples-hospital", "fhir.Observation") == {
        "TREAT",
        "CAREMGT",
        BREAK_GLASS,
    }
    assert allowed_purposes(CHRONIC, "seaview-clinic", "fhir.Observation") == {
        "TREAT",
        "CAREMGT",
    }
    assert allowed_purposes(CHRONIC, "nobody", "fhir.Observation") == frozenset()
    assert readable_types(CHRONIC, "urban-health-institute", "HRESCH") == {
        "stats.chronic-care-weekly"
    }
    assert readable_types(CHRONIC, "zone-operator", "HOPERAT") == frozenset()


def test_decision_as_dict() -> None:
    d = decide_read(CHRONIC, "harbour-peoples-hospital", "fhir.Observation", "ETREAT")
    assert d.as_dict() == {
        "allowed": True,
        "reason": "break_glass",
        "detail": d.detail,
        "break_glass": True,
    }


# -- properties over the request space ------------------------------------------------------

pilots = st.sampled_from(sorted(PILOTS.values(), key=lambda p: p.id))
purposes = st.sampled_from(sorted(PURPOSES_OF_USE))
names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-.", min_size=1, max_size=20)


@given(pilot=pilots, data=st.data())
def test_a_read_is_allowed_exactly_when_a_rule_grants_it(pilot: Pilot, data: st.DataObject) -> None:
    org = data.draw(st.sampled_from([m.org for m in pilot.members]) | names)
    data_type = data.draw(st.sampled_from([t.id for t in pilot.data_types]) | names)
    purpose = data.draw(purposes | names)
    d = decide_read(pilot, org, data_type, purpose)
    member = pilot.member(org)
    granted = member is not None and any(
        rule.role in member.roles
        and data_type in rule.types
        and (purpose in rule.purposes or (purpose == BREAK_GLASS and rule.break_glass))
        for rule in pilot.read
    )
    assert d.allowed is granted, d.detail
    assert d.break_glass is (purpose == BREAK_GLASS)
    assert d.allowed is (purpose in allowed_purposes(pilot, org, data_type))


@given(pilot=pilots, org=names, data_type=names)
def test_strangers_may_do_nothing(pilot: Pilot, org: str, data_type: str) -> None:
    if pilot.member(org) is not None:
        return
    assert decide_read(pilot, org, data_type, "TREAT").reason == "not_a_member"
    assert decide_publish(pilot, org, data_type).reason == "not_a_member"
    assert not can_manage_consent(pilot, org)
    assert not can_audit(pilot, org)
