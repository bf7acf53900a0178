"""Each fix of the FHIR facade over real HTTP, request by request: the count alone, result
parameters and ``Prefer: handling``, search by POST, 405 for unsupported interactions, 406
for formats the hub does not serve, the read interaction and the Consent search (each gated
and on the log), required bindings of a Consent, the CapabilityStatement's SMART
endpoints, and purpose of use bound into the token."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import pytest

from tests.support.access import HOSPITAL, HospitalClient, consent_document, http
from tests.support.hub import ThreadHub

from .conftest import Patient, b2b, pyjwt_assertion

SEARCH = "/fhir/Observation?subject=Patient/{subject}"


def access_entries(hub: ThreadHub) -> list[dict[str, Any]]:
    return hub.opened_entries("access")


def non_access_entries(hub: ThreadHub) -> int:
    entries = hub.get_json("/api/v1/ledger/entries?start=0&end=1000")["entries"]
    return sum(1 for e in entries if e["kind"] != "access")


def get(
    client: HospitalClient, token: str, path: str, **headers: str
) -> tuple[int, dict[str, str], Any]:
    sent = {"Authorization": f"Bearer {token}", "X-Purpose-Of-Use": "TREAT", **headers}
    return http("GET", client.hub.http_url + path, headers=sent)


def test_count_zero_is_the_total_only(hospital: HospitalClient, patient: Patient) -> None:
    token = hospital.token()
    status, _, bundle = get(hospital, token, SEARCH.format(subject=patient.subject) + "&_count=0")
    assert status == 200, bundle
    assert bundle["total"] == 3 and "entry" not in bundle
    assert [link["relation"] for link in bundle["link"]] == ["self"]


def test_result_parameters_and_handling(hospital: HospitalClient, patient: Patient) -> None:
    token = hospital.token()
    search = SEARCH.format(subject=patient.subject)
    # Supported: _sort, _total, _elements.
    status, _, bundle = get(hospital, token, search + "&_sort=-date&_total=none&_elements=code")
    assert status == 200, bundle
    assert "total" not in bundle
    times = [e["resource"] for e in bundle["entry"]]
    assert all(set(r) == {"resourceType", "id", "meta", "status", "code"} for r in times)
    # Lenient (the default): ignored, named in an outcome entry, left out of the links.
    status, headers, bundle = get(hospital, token, search + "&_pretty=true&_summary=text")
    assert status == 200 and headers["Preference-Applied"] == "handling=lenient"
    (outcome,) = [e for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    assert [i["expression"] for i in outcome["resource"]["issue"]] == [["_pretty"], ["_summary"]]
    assert bundle["total"] == 3 and "_pretty" not in bundle["link"][0]["url"]
    # Strict: a 400 OperationOutcome naming it.
    status, _, refused = get(hospital, token, search + "&_pretty=true", Prefer="handling=strict")
    assert status == 400 and refused["resourceType"] == "OperationOutcome"
    assert "_pretty" in refused["issue"][0]["diagnostics"]


def test_search_by_post_is_the_search_by_get(
    access_hub: ThreadHub, hospital: HospitalClient, patient: Patient
) -> None:
    token = hospital.token()
    form = {"subject": f"Patient/{patient.subject}", "date": "ge2020-01-01", "_count": "2"}
    headers = {
        "Authorization": f"Bearer {token}",
        "X-Purpose-Of-Use": "TREAT",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    status, _, posted = http(
        "POST",
        access_hub.http_url + "/fhir/Observation/_search",
        body=urllib.parse.urlencode(form).encode(),
        headers=headers,
    )
    assert status == 200, posted
    status, _, got = get(hospital, token, "/fhir/Observation?" + urllib.parse.urlencode(form))
    assert [e["resource"] for e in posted["entry"]] == [e["resource"] for e in got["entry"]]
    assert posted["link"] == got["link"] and posted["total"] == 3
    # On the log like a search, with the parameters it was asked with.
    logged = [e for e in access_entries(access_hub) if e["request"].startswith("POST")]
    assert logged[-1]["decision"] == "allow" and logged[-1]["count"] == 2
    assert "subject=Patient" in logged[-1]["request"]
    status, _, outcome = http(
        "POST",
        access_hub.http_url + "/fhir/Observation/_search",
        body=json.dumps(form).encode(),
        headers={**headers, "Content-Type": "application/json"},
    )
    assert status == 415 and outcome["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/fhir/Observation/abc"),
        ("PUT", "/fhir/Observation/abc"),
        ("POST", "/fhir/Observation"),
        ("DELETE", "/fhir/Consent/c-1"),
        ("PATCH", "/fhir/Consent/c-1"),
        ("GET", "/fhir/Observation/abc/_history"),
        ("GET", "/fhir/Observation/$everything"),
        ("GET", "/fhir/Composition/_search"),
    ],
)
def test_unsupported_interactions_on_served_types_are_405(
    access_hub: ThreadHub, hospital: HospitalClient, method: str, path: str
) -> None:
    token = hospital.token()
    status, headers, outcome = http(
        method, access_hub.http_url + path, headers={"Authorization": f"Bearer {token}"}
    )
    assert status == 405, (method, path, outcome)
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "not-supported"
    if method in ("DELETE", "PUT", "PATCH"):
        assert "GET" in headers["Allow"], headers


def test_an_unknown_type_is_still_404(access_hub: ThreadHub) -> None:
    status, _, outcome = http("GET", access_hub.http_url + "/fhir/Patient/abc")
    assert status == 404 and outcome["resourceType"] == "OperationOutcome"


def test_only_json_is_served(hospital: HospitalClient, patient: Patient) -> None:
    token = hospital.token()
    search = SEARCH.format(subject=patient.subject)
    for path, accept in [
        ("/fhir/metadata", "application/fhir+xml"),
        (search, "application/fhir+xml"),
        (search, "application/fhir+json;q=0, text/html"),
        (search + "&_format=xml", "application/fhir+json"),
    ]:
        status, headers, outcome = get(hospital, token, path, Accept=accept)
        assert status == 406, (path, accept, outcome)
        assert outcome["resourceType"] == "OperationOutcome"
        assert headers["Content-Type"].startswith("application/fhir+json")
    for accept in ("application/fhir+json", "application/json", "*/*"):
        assert get(hospital, token, search, Accept=accept)[0] == 200


def test_read_is_gated_and_on_the_log(
    access_hub: ThreadHub, hospital: HospitalClient, patient: Patient
) -> None:
    token = hospital.token()
    status, _, bundle = get(hospital, token, SEARCH.format(subject=patient.subject))
    url = bundle["entry"][0]["fullUrl"]
    path = url.split(access_hub.http_url, 1)[1]
    status, headers, resource = get(hospital, token, path)
    assert status == 200 and resource == bundle["entry"][0]["resource"]
    assert int(headers["X-Ledger-Index"]) >= 0
    read = access_entries(access_hub)[-1]
    assert (read["decision"], read["count"], read["subject"]) == ("allow", 1, patient.subject)
    assert read["request"] == f"GET {path}"
    # Another organisation, not named by the Consent: denied, and the denial is on the log.
    clinic = HospitalClient(access_hub, "seaview-ehr", "seaview-clinic").register()
    status, _, outcome = get(clinic, clinic.token(), path)
    assert status == 403 and outcome["resourceType"] == "OperationOutcome"
    denied = access_entries(access_hub)[-1]
    assert (denied["decision"], denied["client"], denied["subject"]) == (
        "deny",
        "seaview-ehr",
        patient.subject,
    )
    # No purpose, no read; no such resource, a 404; both logged.
    assert get(hospital, token, path, **{"X-Purpose-Of-Use": ""})[0] == 400
    assert get(hospital, token, "/fhir/Observation/no-such-id")[0] == 404
    assert [e["reason"] for e in access_entries(access_hub)[-2:]] == [
        "purpose_missing",
        "not_found",
    ]
    # Withdrawn: the record is no longer readable.
    hospital.call("POST", f"/fhir/Consent/{patient.consent_id}/$withdraw", token)
    status, _, outcome = get(hospital, token, path)
    assert status == 403 and access_entries(access_hub)[-1]["reason"] == "consent_inactive"


def test_consent_search_is_gated_and_on_the_log(
    access_hub: ThreadHub, hospital: HospitalClient, auditor: HospitalClient, patient: Patient
) -> None:
    path = f"/fhir/Consent?patient=Patient/{patient.subject}"
    status, _, bundle = get(hospital, hospital.token("system/Consent.crus"), path)
    assert status == 200, bundle
    assert [e["resource"]["id"] for e in bundle["entry"]] == [patient.consent_id]
    logged = access_entries(access_hub)[-1]
    assert (logged["decision"], logged["type"], logged["count"]) == ("allow", "fhir.Consent", 1)
    # Auditors may look too (without a purpose); a device company may not.
    status, _, bundle = get(auditor, auditor.token("system/*.rs"), path, **{"X-Purpose-Of-Use": ""})
    assert status == 200 and bundle["total"] == 1
    device = HospitalClient(access_hub, "vitalink-gw", "vitalink").register()
    assert get(device, device.token("system/Consent.rs"), path)[0] == 403
    assert access_entries(access_hub)[-1]["decision"] == "deny"


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"status": "not-a-status"}, "Consent.status"),
        ({"provision": {"type": "maybe"}}, "Consent.provision.type"),
    ],
)
def test_a_consent_outside_its_required_bindings_is_refused_and_nothing_committed(
    access_hub: ThreadHub, hospital: HospitalClient, change: dict[str, Any], where: str
) -> None:
    token = hospital.token()
    status, _, _ = hospital.call(
        "POST", "/fhir/Consent", token, body=consent_document("c-bind-1", "pt-bindings01")
    )
    assert status == 201
    before = non_access_entries(access_hub)
    for method, path, consent_id in [
        ("POST", "/fhir/Consent", "c-bind-2"),
        ("PUT", "/fhir/Consent/c-bind-1", "c-bind-1"),
    ]:
        document = consent_document(consent_id, "pt-bindings01")
        for key, value in change.items():
            document[key] = {**document[key], **value} if isinstance(value, dict) else value
        status, _, outcome = hospital.call(method, path, token, body=document)
        assert status == 400, (method, outcome)
        assert outcome["resourceType"] == "OperationOutcome"
        assert where in outcome["issue"][0]["diagnostics"]
    assert non_access_entries(access_hub) == before


def test_the_capability_statement_names_the_token_endpoint_and_every_interaction(
    access_hub: ThreadHub, hospital: HospitalClient
) -> None:
    status, _, metadata = http("GET", access_hub.http_url + "/fhir/metadata")
    assert status == 200
    (oauth,) = metadata["rest"][0]["security"]["extension"]
    assert oauth["url"] == "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
    assert oauth["extension"] == [{"url": "token", "valueUri": hospital.token_url}]
    interactions = {
        r["type"]: {i["code"] for i in r["interaction"]} for r in metadata["rest"][0]["resource"]
    }
    assert interactions == {
        "Observation": {"read", "search-type"},
        "DiagnosticReport": {"read", "search-type"},
        "Composition": {"read", "search-type"},
        "Consent": {"create", "read", "update", "search-type"},
    }
    # Discovery lists what the token endpoint grants, and nothing it would not.
    smart = access_hub.get_json("/.well-known/smart-configuration")
    wide = HospitalClient(access_hub, "wide-ehr", HOSPITAL).register(
        ["system/*.rs", "system/Consent.crus"]
    )
    for scope in smart["scopes_supported"]:
        status, body = wide.token_request(scope=scope)
        assert status == 200 and body["scope"] == scope, (scope, body)
    status, body = wide.token_request(scope="system/Patient.rs")
    assert status == 400 and body["error"] == "invalid_scope"


def b2b_token(client: HospitalClient, *purposes: str) -> str:
    status, body = client.token_request(
        assertion=pyjwt_assertion(client, b2b(*purposes)),
        scope="system/Observation.rs system/Consent.rs",
    )
    assert status == 200, body
    return str(body["access_token"])


def test_purpose_bound_into_the_token_narrowed_never_widened(
    access_hub: ThreadHub, hospital: HospitalClient, patient: Patient
) -> None:
    search = SEARCH.format(subject=patient.subject)
    one = b2b_token(hospital, "TREAT")
    status, _, bundle = hospital.call("GET", search, one, purpose=None)
    assert status == 200 and bundle["total"] == 3
    assert access_entries(access_hub)[-1]["purpose"] == "TREAT"
    # The header may not name a purpose the token was not issued for.
    status, _, outcome = hospital.call("GET", search, one, purpose="ETREAT")
    assert status == 403
    assert outcome["issue"][0]["details"]["coding"][0]["code"] == "purpose_not_in_token"
    assert access_entries(access_hub)[-1]["reason"] == "purpose_not_in_token"
    # Nor on city records.
    status, _, body = hospital.call(
        "GET",
        "/api/v1/records?pilot=chronic-care&type=stats.chronic-care-weekly",
        one,
        purpose="HRESCH",
    )
    assert status == 403 and body["error"] == "purpose_not_in_token"
    # Two purposes: the header picks one of them, and must.
    two = b2b_token(hospital, "TREAT", "CAREMGT")
    assert hospital.call("GET", search, two, purpose="TREAT")[0] == 200
    status, _, outcome = hospital.call("GET", search, two, purpose=None)
    assert status == 400 and "name the one" in outcome["issue"][0]["diagnostics"]
    # A malformed extension gets no token at all.
    status, body = hospital.token_request(
        assertion=pyjwt_assertion(hospital, {"extensions": {"hl7-b2b": {"purpose_of_use": []}}})
    )
    assert status == 400 and body["error"] == "invalid_request"
