"""The hospital story with fhirpy, and a token that Authlib's OAuth 2.0 client fetched with
a ``private_key_jwt`` assertion carrying the purpose of use (UDAP B2B): the token endpoint
found in the CapabilityStatement, then search, page, count, sort, read by ``fullUrl``,
Consent create, search and withdraw -- no custom header, no special handling."""

from __future__ import annotations

import time
from typing import Any

import pytest
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import ForbiddenError, OperationOutcome
from joserfc.jwk import ECKey

from tests.support.access import HospitalClient
from tests.support.hub import ThreadHub

from .conftest import Patient, b2b, new_consent

SMART_OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"


def token_endpoint(fhir: SyncFHIRClient) -> str:
    """Where a SMART client finds the token endpoint: the oauth-uris extension."""
    metadata = fhir.execute("metadata", method="get")
    (oauth,) = [
        e for e in metadata["rest"][0]["security"]["extension"] if e["url"] == SMART_OAUTH_URIS
    ]
    return str(next(e["valueUri"] for e in oauth["extension"] if e["url"] == "token"))


def authlib_token(hospital: HospitalClient, token_url: str, scope: str, **claims: Any) -> str:
    auth = PrivateKeyJWT(
        token_url,
        alg="ES384",
        headers={"kid": hospital.kid},
        # SMART: an assertion lives at most five minutes (Authlib's default is an hour).
        claims={"exp": int(time.time()) + 240, **claims},
    )
    # Authlib signs EC keys it is given as key objects (a PEM string it reads as RSA).
    key = ECKey.import_key(hospital.key.as_pem(private=True))
    session = OAuth2Session(hospital.client_id, key, token_endpoint_auth_method=auth)
    token = session.fetch_token(token_url, grant_type="client_credentials", scope=scope)
    return str(token["access_token"])


def test_fhirpy_runs_the_story(
    access_hub: ThreadHub, hospital: HospitalClient, patient: Patient
) -> None:
    base = access_hub.http_url + "/fhir"
    anonymous = SyncFHIRClient(base)
    token_url = token_endpoint(anonymous)
    assert token_url == hospital.token_url
    token = authlib_token(
        hospital,
        token_url,
        "system/Observation.rs system/Consent.crus",
        **b2b("TREAT"),
    )
    fhir = SyncFHIRClient(base, authorization=f"Bearer {token}")
    readings = fhir.resources("Observation").search(subject=f"Patient/{patient.subject}")

    # Count (_count=0, and fhirpy's own _totalMethod, which the hub ignores and says so).
    assert readings.count() == 3
    # A page, then every page through the next links.
    assert len(readings.limit(2).fetch()) == 2
    every = readings.limit(2).fetch_all()
    assert len(every) == 3 and len({r.id for r in every}) == 3
    # Sorted by date both ways.
    oldest_first = [r.effectiveDateTime for r in readings.sort("date").fetch_all()]
    newest_first = [r.effectiveDateTime for r in readings.sort("-date").fetch_all()]
    assert oldest_first == sorted(oldest_first) and newest_first == oldest_first[::-1]
    # Only some elements: the rest is left out and the resource says so.
    (slim, *_) = readings.elements("valueQuantity").limit(1).fetch()
    assert "valueQuantity" in slim and "subject" not in slim
    assert slim["meta"]["tag"][0]["code"] == "SUBSETTED"

    # Every fullUrl resolves to the resource the Bundle carried.
    bundle = readings.limit(3).fetch_raw()
    for entry in bundle["entry"]:
        read = fhir.execute(entry["fullUrl"], method="get")
        assert read["id"] == entry["resource"]["id"]
        assert read["subject"] == {"reference": f"Patient/{patient.subject}"}
    assert fhir.reference("Observation", every[0].id).to_resource().id == every[0].id

    # Consents: create one, find it by patient, withdraw it.
    created = fhir.resource("Consent", **new_consent(patient.subject, patient.device))
    created.save()
    assert created.id and created.status == "active"
    consents = fhir.resources("Consent").search(patient=f"Patient/{patient.subject}").fetch()
    assert {c.id for c in consents} == {patient.consent_id, created.id}
    for consent_id in (created.id, patient.consent_id):
        withdrawn = fhir.execute(f"Consent/{consent_id}/$withdraw", method="post")
        assert withdrawn["status"] == "inactive"
    active = fhir.resources("Consent").search(patient=f"Patient/{patient.subject}")
    assert active.search(status="active").count() == 0

    # Withdrawn: the very next search is refused, with an OperationOutcome.
    with pytest.raises(ForbiddenError, match="OperationOutcome"):
        readings.fetch()
    # An interaction the hub does not offer is a 405 OperationOutcome, not a 404.
    with pytest.raises(OperationOutcome, match="not-supported"):
        fhir.delete("Observation", every[0].id)
