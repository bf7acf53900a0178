"""Hostile FHIR inputs that looked valid: a search ``date`` before year 1000 (its bound was
written without zero padding and compared as text, so ``lt0999`` matched every record), and
a Consent whose provisions nest 200 levels deep (the model's validation overflowed the stack:
a 500). Each is answered exactly: the search finds only what is that old, the Consent is a
400 OperationOutcome naming the depth, and nothing but ``access`` entries is appended."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from pilots.consent import MAX_PROVISION_DEPTH
from tests.support.access import ATTACK_SUBJECT as SUBJECT
from tests.support.access import Device, HospitalClient, consent_document, http
from tests.support.hub import ThreadHub

from .conftest import AttackTally
from .test_http import non_access_entries

SEARCH = f"/fhir/Observation?subject=Patient/{SUBJECT}"


def test_a_date_before_year_1000_does_not_match_today(
    access_hub: ThreadHub, hospital: HospitalClient, attacks: AttackTally
) -> None:
    token = hospital.token()
    device = Device(access_hub)
    # The Consent names the home device, so its readings may be written about the patient.
    document = consent_document("c-dates-1", SUBJECT, sources=[device.source])
    status, _, body = hospital.call("POST", "/fhir/Consent", token, body=document)
    assert status == 201, body
    (receipt,) = asyncio.run(device.publish(SUBJECT, "c-dates-1"))
    assert receipt["status"] == "accepted", receipt

    found = {}
    for date in ("lt0999", "le0999-12-31", "lt0999-01-01T00:00:00Z", "ge0999", "gt0001"):
        status, _, bundle = hospital.call("GET", f"{SEARCH}&date={date}", token)
        assert status == 200, (date, bundle)
        found[date] = bundle["total"]
    assert found == {
        "lt0999": 0,
        "le0999-12-31": 0,
        "lt0999-01-01T00:00:00Z": 0,
        "ge0999": 1,
        "gt0001": 1,
    }
    for date in ("lt0000", "0000-01-01", "ge0001-01-01T00:00:00%2B01:00"):
        status, _, outcome = hospital.call("GET", f"{SEARCH}&date={date}", token)
        assert status == 400, (date, outcome)
        assert outcome["resourceType"] == "OperationOutcome"
        assert "0001-01-01 to 9999-12-31" in outcome["issue"][0]["diagnostics"]
    attacks.tried("search dates before year 1000 (HTTP)", 8)


def deep_consent(consent_id: str, levels: int) -> bytes:
    """A valid Consent whose root provision nests ``levels - 1`` exceptions, one in each
    (written out as text: ``json.dumps`` itself recurses)."""
    document: dict[str, Any] = consent_document(consent_id, SUBJECT)
    inner = (
        '{"type": "permit", "provision": [' * (levels - 2)
        + '{"type": "deny"}'
        + "]}" * (levels - 2)
    )
    document["provision"].pop("provision", None)
    text = json.dumps(document)
    return text.replace('"provision": {', f'"provision": {{"provision": [{inner}], ', 1).encode()


def test_deeply_nested_consent_provisions_are_a_400(
    access_hub: ThreadHub, hospital: HospitalClient, attacks: AttackTally
) -> None:
    token = hospital.token()
    status, _, body = hospital.call(
        "POST", "/fhir/Consent", token, body=consent_document("c-deep-1", SUBJECT)
    )
    assert status == 201, body
    before = non_access_entries(access_hub)
    headers = {
        "Authorization": f"Bearer {token}",
        "X-Purpose-Of-Use": "TREAT",
        "Content-Type": "application/fhir+json",
    }
    targets = [("POST", "/fhir/Consent", "c-deep-2"), ("PUT", "/fhir/Consent/c-deep-1", "c-deep-1")]
    for levels in (MAX_PROVISION_DEPTH + 1, 200):
        for method, path, consent_id in targets:
            status, _, outcome = http(
                method,
                access_hub.http_url + path,
                body=deep_consent(consent_id, levels),
                headers=headers,
            )
            assert status == 400, (levels, method, status, str(outcome)[:300])
            assert outcome["resourceType"] == "OperationOutcome"
            assert (
                f"nested more than {MAX_PROVISION_DEPTH} levels"
                in (outcome["issue"][0]["diagnostics"])
            )
    attacks.tried("deeply nested Consent provisions (HTTP)", 2 * len(targets))
    assert non_access_entries(access_hub) == before
    # As deep as the cap allows is still a Consent.
    status, _, outcome = http(
        "POST",
        access_hub.http_url + "/fhir/Consent",
        body=deep_consent("c-deep-3", MAX_PROVISION_DEPTH),
        headers=headers,
    )
    assert status == 201, outcome
