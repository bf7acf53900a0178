"""The hospital story with SMART's fhirclient, which discovers the token endpoint from
``/fhir/metadata`` (the ``oauth-uris`` extension) and asks for a token with a client
assertion, here signed by PyJWT and carrying the purpose of use (UDAP B2B): search, page,
count, sort, read by id and by ``fullUrl``, Consent create, search and withdraw."""

from __future__ import annotations

import pytest
from fhirclient import client as smart_client
from fhirclient.models.bundle import Bundle
from fhirclient.models.consent import Consent
from fhirclient.models.observation import Observation
from fhirclient.server import FHIRPermissionDeniedException

from tests.support.access import HospitalClient
from tests.support.hub import ThreadHub

from .conftest import Patient, b2b, new_consent, pyjwt_assertion


def smart(hub: ThreadHub, hospital: HospitalClient) -> smart_client.FHIRClient:
    settings = {
        "app_id": hospital.client_id,
        "api_base": hub.http_url + "/fhir",
        "jwt_token": pyjwt_assertion(hospital, b2b("TREAT")),
        "scope": "system/Observation.rs system/Consent.crus",
    }
    fhir = smart_client.FHIRClient(settings=settings)
    # A backend service: no patient picked at launch (else fhirclient asks for launch/patient).
    fhir.wants_patient = False
    assert not fhir.prepare()  # read the CapabilityStatement: auth is OAuth2, no token yet
    assert fhir.server.auth._token_uri == hospital.token_url
    fhir.authorize()
    assert fhir.ready
    return fhir


def test_fhirclient_runs_the_story(
    access_hub: ThreadHub, hospital: HospitalClient, patient: Patient
) -> None:
    fhir = smart(access_hub, hospital)
    server = fhir.server
    subject = f"Patient/{patient.subject}"

    # Pages of two through the next links.
    pages = list(Observation.where({"subject": subject, "_count": "2"}).perform_iter(server))
    assert [len(page.entry or []) for page in pages] == [2, 1]
    assert pages[0].total == 3
    # The count alone.
    (counted,) = Observation.where({"subject": subject, "_summary": "count"}).perform_iter(server)
    assert counted.total == 3 and not counted.entry
    # Newest first.
    newest = list(
        Observation.where({"subject": subject, "_sort": "-date"}).perform_resources_iter(server)
    )
    times = [o.effectiveDateTime.isostring for o in newest]
    assert times == sorted(times, reverse=True) and len(times) == 3

    # Read by id, and by each entry's fullUrl.
    first = newest[0]
    assert Observation.read(first.id, server).id == first.id
    for entry in pages[0].entry:
        assert server.request_json(entry.fullUrl)["id"] == entry.resource.id

    # Consents: create one (the hub names it), find both of the patient's, withdraw.
    created = Consent(new_consent(patient.subject, patient.device))
    answer = created.create(server)
    assert answer["status"] == "active"
    consents = list(Consent.where({"patient": subject}).perform_resources_iter(server))
    assert {c.id for c in consents} == {patient.consent_id, answer["id"]}
    for consent_id in (answer["id"], patient.consent_id):
        withdrawn = server.post_json(f"Consent/{consent_id}/$withdraw", {}).json()
        assert withdrawn["status"] == "inactive"
    search = Consent.where({"patient": subject, "status": "active"})
    (none_active,) = search.perform_iter(server)
    assert none_active.total == 0

    # Withdrawn: the very next search is refused.
    with pytest.raises(FHIRPermissionDeniedException):
        Bundle.read_from(f"Observation?subject={subject}", server)
