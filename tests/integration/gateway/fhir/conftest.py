"""The hub's FHIR facade as third-party clients use it: a hub checking consent at ingest
(``tests/support/access_fixtures.py``), a hospital registered with an ES384 key, and a patient
whose Consent (recorded by the hospital, naming the home device as a source) covers three
readings that came in over real MQTT.

Client assertions are signed here by third-party libraries (PyJWT, Authlib), never by the
hub's own JOSE code, and can carry the HL7 UDAP B2B extension with a purpose of use."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt as pyjwt
import pytest

from tests.support.access import Device, HospitalClient, consent_document
from tests.support.access_fixtures import access_hub, auditor, hospital
from tests.support.hub import ThreadHub

__all__ = ["access_hub", "auditor", "hospital"]

SUBJECT = "pt-fhirclient01"
#: UDAP examples write PurposeOfUse codes as the v3 ActReason OID and the code.
ACT_REASON_OID = "urn:oid:2.16.840.1.113883.5.8"


def b2b(*purposes: str) -> dict[str, Any]:
    """The ``extensions`` claim of a UDAP B2B client assertion naming ``purposes``."""
    return {
        "extensions": {
            "hl7-b2b": {
                "version": "1",
                "organization_id": "urn:swiftchain:org:harbour-peoples-hospital",
                "purpose_of_use": [f"{ACT_REASON_OID}#{p}" for p in purposes],
            }
        }
    }


def pyjwt_assertion(client: HospitalClient, claims: dict[str, Any] | None = None) -> str:
    """A client assertion (RFC 7523) signed with PyJWT and the client's ES384 key."""
    now = int(time.time())
    body = {
        "iss": client.client_id,
        "sub": client.client_id,
        "aud": client.token_url,
        "iat": now,
        "exp": now + 240,
        "jti": uuid.uuid4().hex,
        **(claims or {}),
    }
    pem = client.key.as_pem(private=True)
    return pyjwt.encode(body, pem, algorithm="ES384", headers={"kid": client.kid})


@dataclass
class Patient:
    """A patient with a Consent and three accepted readings."""

    subject: str
    consent_id: str
    device: Device


@pytest.fixture
def patient(access_hub: ThreadHub, hospital: HospitalClient) -> Patient:
    device = Device(access_hub)
    token = hospital.token()
    document = consent_document("c-fhir-1", SUBJECT, sources=[device.source])
    status, _, body = hospital.call("POST", "/fhir/Consent", token, body=document)
    assert status == 201, body
    receipts = asyncio.run(device.publish(SUBJECT, "c-fhir-1", 3))
    assert [r["status"] for r in receipts] == ["accepted"] * 3, receipts
    return Patient(SUBJECT, "c-fhir-1", device)


def new_consent(subject: str, device: Device) -> dict[str, Any]:
    """A Consent for ``subject`` without an id (the hub gives it one on create)."""
    document = consent_document("unused", subject, sources=[device.source])
    document.pop("id")
    return document
