"""A hostile member organisation against consent custody, on a live hub with the demo's
pilots: rewriting another organisation's Consent to let itself in, undoing a withdrawal,
writing into another hospital's patient's file, and reading past a withdrawal by breaking
the glass. Each is refused with a 403 OperationOutcome (or a ``rejected`` receipt) naming
its reason, and leaves the log as it was.

The rules themselves are decision tables: tests/unit/pilots/test_consent_authority.py
(who may change a Consent), tests/unit/pilots/test_writers.py (who may write about a
patient) and tests/unit/pilots/test_access_table.py (break-glass after a withdrawal).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from ledger.envelope import seal
from tests.support.access import (
    HOSPITAL,
    PILOT,
    Device,
    HospitalClient,
    consent_document,
    observation,
)
from tests.support.hub import MqttPeer, ThreadHub

from .conftest import AttackTally

UNIVERSITY = "harbour-university-hospital"


@pytest.fixture
def university(access_hub: ThreadHub) -> HospitalClient:
    return HospitalClient(access_hub, "huh-ehr", UNIVERSITY).register()


def consent_entries(hub: ThreadHub) -> list[tuple[str, str, str | None]]:
    """(action, consent id, custodian) of every ``consent`` entry on the log."""
    leaves = hub.opened_entries("consent")
    return [(leaf["action"], leaf["consent"], leaf.get("custodian")) for leaf in leaves]


def search(client: HospitalClient, token: str, subject: str, purpose: str = "TREAT") -> Any:
    """(status, reason or total) of an Observation search about ``subject``."""
    path = f"/fhir/Observation?subject=Patient/{subject}"
    status, _, body = client.call("GET", path, token, purpose=purpose)
    if status == 200:
        return status, body["total"]
    return status, reason_of(body)


def reason_of(outcome: dict[str, Any]) -> str:
    assert outcome["resourceType"] == "OperationOutcome", outcome
    return str(outcome["issue"][0]["details"]["coding"][0]["code"])


def refused(client: HospitalClient, method: str, path: str, token: str, body: Any = None) -> str:
    """The reason of a 403 OperationOutcome, the only answer an attack may get."""
    status, _, outcome = client.call(method, path, token, body=body)
    assert status == 403, (status, outcome)
    return reason_of(outcome)


def send(device: Device, subject: str, consent: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Publish one record of ``device`` with this header subject and payload; its receipt."""

    async def go() -> dict[str, Any]:
        async with MqttPeer(device.hub.mqtt_url) as peer:
            device.seq += 1
            record = seal(
                pilot=PILOT,
                source=device.source,
                seq=device.seq,
                type="fhir.Observation",
                payload=payload,
                signing_key=device.key,
                subject=subject,
                consent=consent,
            )
            return await peer.send(record)

    return asyncio.run(go())


def test_another_organisation_cannot_rewrite_a_consent_to_let_itself_in(
    access_hub: ThreadHub,
    hospital: HospitalClient,
    university: HospitalClient,
    attacks: AttackTally,
) -> None:
    subject = "pt-custody001"
    own = university.token()
    recorded = consent_document("c-huh-1", subject, actors=[UNIVERSITY])
    assert university.call("POST", "/fhir/Consent", own, body=recorded)[0] == 201
    device = Device(access_hub, "home-bp-gw-02", org=UNIVERSITY)
    receipts = asyncio.run(device.publish(subject, "c-huh-1", 3))
    assert [r["status"] for r in receipts] == ["accepted"] * 3

    token = hospital.token()
    assert search(hospital, token, subject) == (403, "consent_actor_not_permitted")
    widened = consent_document("c-huh-1", subject, actors=[UNIVERSITY, HOSPITAL])
    path = "/fhir/Consent/c-huh-1"
    assert refused(hospital, "PUT", path, token, widened) == "consent_not_custodian"
    # ... nor the cover-up: putting the old text back.
    assert refused(hospital, "PUT", path, token, recorded) == "consent_not_custodian"
    assert refused(hospital, "POST", path + "/$withdraw", token) == "consent_not_custodian"
    assert search(hospital, token, subject) == (403, "consent_actor_not_permitted")
    # The custodian cannot widen it in place either: that is a new grant.
    assert refused(university, "PUT", path, own, widened) == "consent_widening_needs_grant"
    attacks.tried("consent of another organisation rewritten, restored, withdrawn (HTTP)", 4)

    assert consent_entries(access_hub) == [("grant", "c-huh-1", UNIVERSITY)]
    assert search(university, own, subject) == (200, 3)


def test_a_withdrawal_cannot_be_undone(
    access_hub: ThreadHub,
    hospital: HospitalClient,
    university: HospitalClient,
    attacks: AttackTally,
) -> None:
    subject = "pt-custody002"
    own, token = university.token(), hospital.token()
    shared = consent_document("c-huh-2", subject, actors=[UNIVERSITY, HOSPITAL])
    assert university.call("POST", "/fhir/Consent", own, body=shared)[0] == 201
    device = Device(access_hub, "home-bp-gw-02", org=UNIVERSITY)
    assert [r["status"] for r in asyncio.run(device.publish(subject, "c-huh-2", 2))] == [
        "accepted"
    ] * 2
    assert search(hospital, token, subject) == (200, 2)
    status, _, withdrawn = university.call("POST", "/fhir/Consent/c-huh-2/$withdraw", own)
    assert status == 200 and withdrawn["status"] == "inactive"
    assert search(hospital, token, subject) == (403, "consent_inactive")

    path = "/fhir/Consent/c-huh-2"
    assert refused(hospital, "PUT", path, token, shared) == "consent_not_custodian"
    assert refused(university, "PUT", path, own, shared) == "consent_withdrawn_final"
    attacks.tried("withdrawn consent set active again (HTTP)", 2)
    assert search(hospital, token, subject) == (403, "consent_inactive")
    assert search(university, own, subject) == (403, "consent_inactive")

    # Consenting again is a new Consent with a new id, and the log says it is a grant.
    again = consent_document("c-huh-3", subject, actors=[UNIVERSITY, HOSPITAL])
    assert university.call("POST", "/fhir/Consent", own, body=again)[0] == 201
    assert consent_entries(access_hub) == [
        ("grant", "c-huh-2", UNIVERSITY),
        ("withdraw", "c-huh-2", UNIVERSITY),
        ("grant", "c-huh-3", UNIVERSITY),
    ]
    (late,) = asyncio.run(device.publish(subject, "c-huh-3"))
    assert late["status"] == "accepted"
    # Only what was written under the new Consent: the withdrawn one still covers nothing.
    assert search(hospital, token, subject) == (200, 1)


def test_a_source_cannot_write_into_another_hospitals_patient(
    access_hub: ThreadHub, hospital: HospitalClient, attacks: AttackTally
) -> None:
    subject, other = "pt-custody004", "pt-custody005"
    token = hospital.token()
    for consent_id, who in (("c-php-4", subject), ("c-php-5", other)):
        body = consent_document(consent_id, who, actors=[HOSPITAL])
        assert hospital.call("POST", "/fhir/Consent", token, body=body)[0] == 201
    when = "2026-05-01T08:00:00Z"

    # The other hospital's home gateway, naming this patient's Consent.
    intruder = Device(access_hub, "home-bp-gw-02", org=UNIVERSITY)
    receipt = send(intruder, subject, "c-php-4", observation(subject, 250, when))
    assert (receipt["status"], receipt["reason"]) == ("rejected", "source_not_permitted")
    # The hospital's own source, with a header and a payload about different people.
    ward = Device(access_hub, "php-ward-monitor", org=HOSPITAL)
    swapped = send(ward, subject, "c-php-4", observation(other, 250, when))
    assert (swapped["status"], swapped["reason"]) == ("rejected", "subject_mismatch")
    anonymous = {k: v for k, v in observation(subject, 250, when).items() if k != "subject"}
    unnamed = send(ward, subject, "c-php-4", anonymous)
    assert (unnamed["status"], unnamed["reason"]) == ("rejected", "subject_mismatch")
    attacks.tried("records about another organisation's patient or another subject (MQTT)", 3)

    good = send(ward, subject, "c-php-4", observation(subject, 128, when))
    assert good["status"] == "accepted", good
    status, _, bundle = hospital.call("GET", f"/fhir/Observation?subject=Patient/{subject}", token)
    assert status == 200 and bundle["total"] == 1
    assert bundle["entry"][0]["resource"]["valueQuantity"]["value"] == 128
    assert search(hospital, token, other) == (200, 0)


def test_break_glass_does_not_reach_past_a_withdrawal(
    access_hub: ThreadHub,
    hospital: HospitalClient,
    university: HospitalClient,
    auditor: HospitalClient,
    attacks: AttackTally,
) -> None:
    subject = "pt-custody006"
    own, token = university.token(), hospital.token()
    body = consent_document("c-huh-6", subject, actors=[UNIVERSITY])
    assert university.call("POST", "/fhir/Consent", own, body=body)[0] == 201
    device = Device(access_hub, "home-bp-gw-02", org=UNIVERSITY)
    assert [r["status"] for r in asyncio.run(device.publish(subject, "c-huh-6", 2))] == [
        "accepted"
    ] * 2
    # Never named in the Consent, the other hospital may break the glass while it stands...
    assert search(hospital, token, subject, "ETREAT") == (200, 2)
    assert university.call("POST", "/fhir/Consent/c-huh-6/$withdraw", own)[0] == 200
    # ... and from the very next request after the withdrawal, not even in an emergency.
    assert search(hospital, token, subject, "ETREAT") == (
        403,
        "consent_withdrawn_denies_break_glass",
    )
    attacks.tried("break-glass read after a withdrawal (HTTP)")

    status, _, audit = auditor.call("GET", f"/api/v1/audit?subject={subject}", auditor.token())
    assert status == 200, audit
    glass = [(e["decision"], e["reason"], e["break_glass_read"]) for e in audit["entries"]]
    assert glass == [
        ("allow", "break_glass_override", True),
        ("deny", "consent_withdrawn_denies_break_glass", False),
    ]
    assert audit["break_glass_reads"] == 1


async def test_a_put_racing_a_withdrawal_does_not_undo_it(
    access_hub: ThreadHub, hospital: HospitalClient, attacks: AttackTally
) -> None:
    """A PUT decided on the state a withdrawal is replacing would put it back: Consent
    changes are decided and committed one at a time."""
    token = await asyncio.to_thread(hospital.token)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}
    base = access_hub.http_url + "/fhir/Consent"
    statuses = []
    async with aiohttp.ClientSession(headers=headers) as http:

        async def call(method: str, path: str, body: Any = None) -> int:
            data = None if body is None else json.dumps(body)
            async with http.request(method, base + path, data=data) as response:
                await response.read()
                return response.status

        for i in range(10):
            consent_id, document = f"c-race-{i}", consent_document(f"c-race-{i}", f"pt-race{i:05d}")
            assert await call("POST", "", document) == 201
            statuses += await asyncio.gather(
                call("POST", f"/{consent_id}/$withdraw"), call("PUT", f"/{consent_id}", document)
            )
            async with http.get(f"{base}/{consent_id}") as response:
                assert (await response.json(content_type=None))["status"] == "inactive"
    assert set(statuses) <= {200, 403}
    attacks.tried("consent re-activated by a PUT racing its withdrawal (HTTP)", 10)
