"""From source JSON to prepared records: shapes, validation, pseudonymisation, consent."""

from __future__ import annotations

import json
from typing import Any

import pytest

from edge.datatypes import TypeRegistry
from edge.drafts import Draft, drafts_from_json, prepare
from edge.errors import InvalidInput, UnknownType
from edge.pseudonym import Pseudonymiser
from tests.support.drafts import NOW, air, observation


def one(value: Any, **kw: Any) -> Draft:
    drafts = list(drafts_from_json(value, **kw))
    assert len(drafts) == 1
    return drafts[0]


# -- shapes ------------------------------------------------------------------------------


def test_a_fhir_resource_names_its_own_type() -> None:
    assert one(observation()).type_id == "fhir.Observation"


def test_a_wrapped_payload_names_type_patient_and_consent() -> None:
    d = one({"type": "city.parking", "payload": {"x": 1}, "consent": "c-9"})
    assert (d.type_id, d.payload, d.consent) == ("city.parking", {"x": 1}, "c-9")


def test_a_bare_payload_takes_the_default_type() -> None:
    assert one(air(), default_type="city.air-quality").type_id == "city.air-quality"


def test_lists_and_bundles_are_split_with_locations() -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": observation()}, {"resource": observation("MRN-2")}],
    }
    drafts = list(drafts_from_json([bundle, {"type": "city.air-quality", "payload": air()}]))
    assert [d.where for d in drafts] == ["[0].Bundle.entry[0]", "[0].Bundle.entry[1]", "[1]"]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ([], "empty"),
        ("text", "unknown_shape"),
        ({"station": "st-1"}, "unknown_shape"),
        ({"resourceType": 5}, "invalid_fhir"),
        ({"type": "city.parking", "payload": [], "extra": 1}, "invalid_wrapper"),
        ({"resourceType": "Bundle", "type": "document", "entry": []}, "unsupported_bundle"),
        ({"resourceType": "Bundle", "type": "batch", "entry": []}, "invalid_fhir"),
        ({"resourceType": "Bundle", "type": "batch", "entry": [{"fullUrl": "x"}]}, "invalid_fhir"),
    ],
)
def test_unusable_shapes_are_refused(value: Any, reason: str) -> None:
    with pytest.raises(InvalidInput) as err:
        list(drafts_from_json(value))
    assert err.value.reason == reason


# -- validation --------------------------------------------------------------------------


def test_city_records_carry_no_subject_and_their_own_time(registry: TypeRegistry) -> None:
    p = prepare(one({"type": "city.air-quality", "payload": air()}), registry, None)
    assert (p.subject, p.consent, p.observed_at) == (None, None, NOW)


def test_invalid_fhir_is_refused_with_its_location(
    registry: TypeRegistry, pseudonymiser: Pseudonymiser
) -> None:
    bad = observation()
    del bad["code"]
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [{"resource": bad}]}
    with pytest.raises(InvalidInput) as err:
        prepare(one(bundle), registry, pseudonymiser, "c-1")
    assert err.value.reason == "invalid_fhir"
    assert err.value.where is not None and err.value.where.startswith("Bundle.entry[0]")
    assert "code" in err.value.detail


def test_unknown_types_are_refused(registry: TypeRegistry) -> None:
    with pytest.raises(UnknownType):
        prepare(Draft("city.noise", {}), registry, None)
    with pytest.raises(UnknownType):
        prepare(Draft("fhir.NotAResource", {"resourceType": "NotAResource"}), registry, None)


def test_the_pilots_type_list_limits_the_agent() -> None:
    only_air = TypeRegistry(allowed=["city.air-quality"])
    prepare(Draft("city.air-quality", air()), only_air, None)
    with pytest.raises(UnknownType):
        prepare(Draft("city.parking", {}), only_air, None)


def test_sensor_types_cannot_carry_a_patient(registry: TypeRegistry) -> None:
    draft = one({"type": "city.air-quality", "payload": air(), "patient": "MRN-1"})
    with pytest.raises(InvalidInput, match="subject_not_allowed"):
        prepare(draft, registry, None)


# -- pseudonymisation ---------------------------------------------------------------------


def test_the_patient_becomes_a_pseudonym_everywhere(
    registry: TypeRegistry, pseudonymiser: Pseudonymiser
) -> None:
    p = prepare(one(observation()), registry, pseudonymiser, "consent-1")
    assert p.subject == pseudonymiser.pseudonym("MRN-4711")
    assert p.payload["subject"]["reference"] == f"Patient/{p.subject}"
    assert "MRN-4711" not in json.dumps(p.payload)
    assert p.consent == "consent-1"
    assert p.observed_at == "2026-05-01T08:30:00.000000Z"  # +02:00 in UTC


def test_a_patient_resource_and_its_identifiers_are_pseudonymised(
    registry: TypeRegistry, pseudonymiser: Pseudonymiser
) -> None:
    patient = {
        "resourceType": "Patient",
        "id": "MRN-4711",
        "identifier": [{"system": "urn:hospital-a:mrn", "value": "MRN-4711"}],
        "gender": "female",
    }
    p = prepare(one(patient), registry, pseudonymiser, "consent-1")
    assert p.payload["id"] == p.subject
    assert p.payload["identifier"] == [{"system": pseudonymiser.system, "value": p.subject}]


def test_bundle_local_patient_references_are_resolved_and_replaced(
    registry: TypeRegistry, pseudonymiser: Pseudonymiser
) -> None:
    url = "urn:uuid:6b4a0c6e-0000-4000-8000-000000000001"
    obs = observation()
    obs["subject"] = {"reference": url}
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": url, "resource": {"resourceType": "Patient", "id": "MRN-9"}},
            {"resource": obs},
        ],
    }
    prepared = [prepare(d, registry, pseudonymiser, "c-1") for d in drafts_from_json(bundle)]
    expected = pseudonymiser.pseudonym("MRN-9")
    assert [p.subject for p in prepared] == [expected, expected]
    assert prepared[1].payload["subject"]["reference"] == f"Patient/{expected}"


def test_a_raw_identifier_left_elsewhere_in_the_payload_is_refused(
    registry: TypeRegistry, pseudonymiser: Pseudonymiser
) -> None:
    leaky = observation(note=[{"text": "patient MRN-4711 was calm"}])
    with pytest.raises(InvalidInput) as err:
        prepare(one(leaky), registry, pseudonymiser, "c-1")
    assert err.value.reason == "identifier_in_payload"
    assert err.value.where == "Observation.note[0].text"
    assert "MRN-4711" not in str(err.value)


def test_personal_data_needs_a_consent(
    registry: TypeRegistry, pseudonymiser: Pseudonymiser
) -> None:
    with pytest.raises(InvalidInput, match="consent_required"):
        prepare(one(observation()), registry, pseudonymiser, None)
    given = prepare(one(observation(), consent="c-7"), registry, pseudonymiser, "default")
    assert given.consent == "c-7"


def test_personal_data_needs_a_pseudonymisation_key(registry: TypeRegistry) -> None:
    with pytest.raises(InvalidInput) as err:
        prepare(one(observation()), registry, None, "c-1")
    assert (err.value.reason, err.value.status) == ("pseudonymisation_unavailable", 503)


def test_a_wrapped_local_patient_id_is_pseudonymised(
    registry: TypeRegistry, pseudonymiser: Pseudonymiser
) -> None:
    obs = observation()
    del obs["subject"]
    wrapped = {"type": "fhir.Observation", "payload": obs, "patient": "local-77", "consent": "c"}
    p = prepare(one(wrapped), registry, pseudonymiser)
    assert p.subject == pseudonymiser.pseudonym("local-77")


def test_non_personal_fhir_resources_have_no_subject(
    registry: TypeRegistry, pseudonymiser: Pseudonymiser
) -> None:
    org = {"resourceType": "Organization", "id": "org-1", "name": "City Hospital"}
    assert prepare(one(org), registry, pseudonymiser).subject is None
