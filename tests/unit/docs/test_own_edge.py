"""docs/own-edge.md is what the agent does: the pseudonym it prints is the agent's for that
key and identifier, the pseudonym identifier system and the patient rewrite are the agent's,
the key id it prints is that key's, and a record made the way it says verifies."""

from __future__ import annotations

import base64
import hashlib
import json
import os

from edge.fhir import replace_patient
from edge.pseudonym import Pseudonymiser
from ledger.canonical import canonical_json
from ledger.envelope import check_commitment, check_signature, parse_record
from ledger.keys import Ed25519PrivateKey, key_id

from .pages import read

PAGE = read("docs/own-edge.md")
KEY = bytes(range(32))


def test_the_pseudonym_and_its_rewrite_are_the_agents() -> None:
    pseudonyms = Pseudonymiser(KEY, "chronic-care")
    pseudonym = pseudonyms.pseudonym("MRN-000123")
    assert pseudonym in PAGE
    assert pseudonyms.system == "urn:swiftchain:chronic-care:pseudonym"
    assert "urn:swiftchain:{pilot}:pseudonym" in PAGE
    resource = {
        "resourceType": "Observation",
        "subject": {"reference": "Patient/MRN-000123"},
        "identifier": [{"system": "urn:local", "value": "MRN-000123", "assigner": {}}],
    }
    out = replace_patient(resource, "MRN-000123", pseudonym, pseudonyms.system, set())
    assert out["subject"] == {"reference": f"Patient/{pseudonym}"}
    assert out["identifier"] == [{"system": pseudonyms.system, "value": pseudonym}]


def test_a_record_made_as_the_page_says_verifies() -> None:
    private = Ed25519PrivateKey.from_private_bytes(KEY)
    kid = hashlib.sha256(private.public_key().public_bytes_raw()).hexdigest()[:16]
    assert kid == key_id(private.public_key()) and f"`{kid}`" in PAGE
    payload = {"resourceType": "Observation", "id": "bp-1", "status": "final"}
    salt = os.urandom(16)
    header = {
        "v": 1,
        "id": "0196a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
        "pilot": "chronic-care",
        "source": "own-edge",
        "seq": 1,
        "type": "fhir.Observation",
        "subject": "ad29be3aa86ba9019c4a977389e76f122c23865c3c3b113f7d9149b19faaaaff",
        "consent": "c-1",
        "observed_at": "2026-05-04T08:30:00Z",
        "commitment": hashlib.sha256(salt + canonical_json(payload)).hexdigest(),
        "key": kid,
    }
    signed_bytes = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    wire = {
        "header": header,
        "body": {"payload": payload, "salt": b64(salt)},
        "sig": b64(private.sign(signed_bytes)),
    }
    record = parse_record(json.dumps(wire).encode())
    assert record.header.canonical() == signed_bytes
    check_commitment(record)
    check_signature(record.header.canonical(), record.sig, private.public_key())
