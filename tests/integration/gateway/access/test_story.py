"""The whole story over real HTTP and real MQTT: a hospital gets a token with a signed
assertion, records a patient's consent, the patient's device readings come in through the
broker, the hospital reads them; the consent is withdrawn with erasure, the same query is
denied, the audit shows both decisions, the bodies are gone and the ledger verifies. On each
store: the hub's ledger, access store and dead letters in SQLite files, or all three in a
PostgreSQL database; and on each crypto suite, whose hash and signatures every commitment,
proof and record is in."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger.sealed import Opening
from ledger.suite import ED25519_SHA256, SM2_SM3, Suite
from ledger.verify import verify_ledger
from tests.support.access import Device, HospitalClient, consent_document
from tests.support.broker import Mosquitto
from tests.support.hub import ThreadHub, _handle
from tests.support.ledger_builder import tampering
from tests.support.postgres import tables_naming

SUBJECT = "pt-7f3a9c21"


@pytest.fixture
def access_hub(
    tmp_path: Path, hub_broker: Mosquitto, store_settings: dict[str, Any], suite: Suite
) -> Iterator[ThreadHub]:
    """The access tests' hub (``hospital`` and ``auditor`` register with it), on each store
    and crypto suite."""
    hub: ThreadHub = _handle(
        ThreadHub, tmp_path / "hub", hub_broker.url, suite=suite, batch_max_ms=2, **store_settings
    )
    hub.start()
    try:
        yield hub
    finally:
        hub.stop()


def test_consent_withdrawal_story(
    access_hub: ThreadHub, hospital: HospitalClient, auditor: HospitalClient
) -> None:
    device = Device(access_hub)
    token = hospital.token()
    # Before any consent, a record about the patient is refused at ingest.
    (refused,) = asyncio.run(device.publish(SUBJECT, "c-bp-1"))
    assert refused["status"] == "rejected" and refused["reason"] == "consent_required"

    # The hospital records the consent; it names the patient's home device (a source of
    # VitaLink, not of the hospital) as one that may write about the patient.
    status, headers, body = hospital.call(
        "POST",
        "/fhir/Consent",
        token,
        body=consent_document("c-bp-1", SUBJECT, sources=[device.source]),
    )
    assert status == 201, body
    assert int(headers["X-Ledger-Index"]) >= 0

    receipts = asyncio.run(device.publish(SUBJECT, "c-bp-1", 3))
    assert [r["status"] for r in receipts] == ["accepted"] * 3

    query = f"/fhir/Observation?subject=Patient/{SUBJECT}&date=ge2020-01-01&_count=2"
    status, _, bundle = hospital.call("GET", query, token)
    assert status == 200, bundle
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    assert bundle["total"] == 3 and len(bundle["entry"]) == 2
    assert {link["relation"] for link in bundle["link"]} == {"self", "next"}
    next_url = next(link["url"] for link in bundle["link"] if link["relation"] == "next")
    status, _, page2 = hospital.call("GET", next_url.split(access_hub.http_url, 1)[1], token)
    assert status == 200 and len(page2["entry"]) == 1
    assert page2["entry"][0]["resource"]["subject"]["reference"] == f"Patient/{SUBJECT}"

    if isinstance(where := access_hub.ledger_location, str):
        # Until the erasure, the database names them (the check after it is not blind).
        assert "ledger.records" in tables_naming(where, [SUBJECT])
    # The bodies are stored sealed, each day's under the data key of the person's Consent.
    keys = access_hub.hub.ledger.reader.keys
    assert keys is not None
    with tampering(access_hub.ledger_location) as conn:
        marks = ",".join("?" * len(receipts))
        sealed_under = {
            int(k)
            for (k,) in conn.execute(
                f"SELECT key_id FROM bodies WHERE idx IN ({marks})", [r["index"] for r in receipts]
            ).fetchall()
        }
    assert sealed_under and set(keys.keys(sealed_under)) == sealed_under

    # Withdrawn with erasure: the very next request is denied.
    status, headers, withdrawn = hospital.call(
        "POST", "/fhir/Consent/c-bp-1/$withdraw?erase=true", token
    )
    assert status == 200, withdrawn
    assert withdrawn["status"] == "inactive" and headers["X-Erased-Bodies"] == "3"
    status, _, outcome = hospital.call("GET", query, token)
    assert status == 403
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "forbidden"

    # The audit shows every decision, each with its log index and an inclusion proof.
    audit_token = auditor.token("system/*.rs")
    status, _, audit = auditor.call("GET", f"/api/v1/audit?subject={SUBJECT}", audit_token)
    assert status == 200, audit
    decisions = [(e["decision"], e["client"], e["purpose"]) for e in audit["entries"]]
    assert decisions == [
        ("allow", "php-ehr", "TREAT"),
        ("allow", "php-ehr", "TREAT"),
        ("deny", "php-ehr", "TREAT"),
    ]
    assert audit["entries"][-1]["reason"] == "consent_inactive"
    last = audit["entries"][-1]
    proof = access_hub.get_json(
        f"/api/v1/ledger/proof/inclusion?index={last['index']}&size={audit['log_size']}"
    )
    assert proof["leaf_hash"] == last["leaf_hash"]

    # New records naming the withdrawn consent are refused at ingest.
    (late,) = asyncio.run(device.publish(SUBJECT, "c-bp-1"))
    assert late["status"] == "rejected" and late["reason"] == "consent_not_active"

    # Each decision of the view opens its public leaf: the person can check it themselves.
    for entry in audit["entries"]:
        (public,) = access_hub.get_json(
            f"/api/v1/ledger/entries?start={entry['index']}&end={entry['index'] + 1}"
        )["entries"]
        leaf = json.loads(base64.b64decode(public["leaf"]))
        assert SUBJECT not in json.dumps(leaf) and "reason" not in leaf
        opening = Opening(entry["opening"]["salt"], entry["opening"]["fields"])
        assert opening.fields["subject"] == SUBJECT
        # In the log's suite's hash (SM3 on sm2-sm3), and in no other.
        other = SM2_SM3 if access_hub.suite is ED25519_SHA256 else ED25519_SHA256
        assert opening.opens(leaf["person"], access_hub.suite)
        assert not opening.opens(leaf["person"], other)

    # The bodies are gone, their hashes stay, and the ledger verifies.
    reader = access_hub.hub.ledger.reader
    assert all(reader.body(r["index"]) is None for r in receipts)
    # Their data keys are destroyed: a copy of the bodies kept anywhere no longer opens.
    assert keys.keys(sealed_under) == {}
    assert all(reader.entry(r["index"]).leaf_hash.hex() == r["leaf_hash"] for r in receipts)
    # A later request about the erased person is logged, and blinded like the rest.
    assert hospital.call("GET", query, token)[0] == 403
    access_hub.stop()
    report = verify_ledger(access_hub.ledger_location)
    assert report.ok and report.erased == 3, report
    assert report.suite == access_hub.suite.name
    with access_hub.key_store() as key_store:
        checked = verify_ledger(access_hub.ledger_location, keys=key_store)
    assert checked.ok and checked.unopened == 0 and checked.erased == 3, checked

    # No file of the hub names the person or their Consent any more...
    for path in sorted(access_hub.config_path.parent.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            for needle in (SUBJECT, "c-bp-1"):
                assert needle.encode() not in data, (path.name, needle)
    # ...nor any table of its PostgreSQL database (ledger, access store, dead letters)...
    if isinstance(where, str):
        assert tables_naming(where, [SUBJECT, "c-bp-1"]) == []
    # ...and a hub started afresh still shows them every decision about them.
    access_hub.start()
    status, _, again = auditor.call("GET", f"/api/v1/audit?subject={SUBJECT}", auditor.token())
    assert status == 200, again
    seen = [(e["decision"], e["client"], e["reason"]) for e in again["entries"]]
    assert seen[:3] == [
        (d, c, e["reason"]) for (d, c, _), e in zip(decisions, audit["entries"], strict=True)
    ]
    assert seen[3:] == [
        ("allow", auditor.client_id, "auditor"),  # the first view, itself a read about them
        ("deny", "php-ehr", "consent_inactive"),  # the request after the erasure
    ]
