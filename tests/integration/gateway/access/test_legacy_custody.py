"""A ledger from before custodians were on the log: its ``consent`` entries keep their leaves
(and the ledger verifies), each Consent's custodian is the organisation of the client that
granted it, and a Consent whose granting client is gone can be withdrawn, not changed."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

from gateway.access.consents import consent_bytes
from gateway.access.db import AccessDb
from gateway.smart.assertion import RegisteredClient
from ledger.entries import ConsentEntry
from ledger.store import LedgerWriter, NewEntry
from ledger.verify import verify_ledger
from pilots import parse_consent
from tests.support.access import HOSPITAL, PILOT, HospitalClient, consent_document
from tests.support.broker import Mosquitto
from tests.support.hub import ThreadHub, _handle

UNIVERSITY = "harbour-university-hospital"
ORIGIN = "test.swiftchain/ledger"


def _outcome_reason(body: dict[str, object]) -> str:
    issue = body["issue"][0]  # type: ignore[index]
    return str(issue["details"]["coding"][0]["code"])


def test_consents_of_an_old_ledger_keep_their_custodian(
    tmp_path: Path, hub_broker: Mosquitto
) -> None:
    hub: ThreadHub = _handle(ThreadHub, tmp_path / "hub", hub_broker.url, batch_max_ms=2)
    hub.enforce_consent = True
    peoples = HospitalClient(hub, "php-ehr", HOSPITAL)
    university = HospitalClient(hub, "huh-ehr", UNIVERSITY)
    documents = {
        "c-old-1": consent_document("c-old-1", "pt-legacy001", actors=[HOSPITAL]),
        "c-old-2": consent_document("c-old-2", "pt-legacy002", actors=[HOSPITAL]),
    }
    # What an older hub left behind: the clients, the Consent versions, and grants that
    # name no custodian (c-old-2's client has since been removed).
    access = AccessDb(hub.db_path.with_name(hub.db_path.name + ".access"))
    for client in (peoples, university):
        access.put_client(
            RegisteredClient(
                client.client_id,
                client.org,
                PILOT,
                client.jwks(),
                ("system/*.rs", "system/Consent.cru"),
            )
        )
    entries = []
    granters = ("php-ehr", "gone-ehr")
    for (consent_id, document), actor in zip(documents.items(), granters, strict=True):
        digest, stored = consent_bytes(parse_consent(document))
        access.put_consent(digest, consent_id, PILOT, stored)
        grant = ConsentEntry(
            action="grant",
            at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            actor=actor,
            pilot=PILOT,
            consent=consent_id,
            subject=document["patient"]["reference"].removeprefix("Patient/"),
            status="active",
            resource_hash=digest,
        )
        assert b"custodian" not in grant.leaf()
        entries.append(NewEntry("consent", grant.leaf()))
    access.close()
    writer = LedgerWriter(hub.db_path, origin=ORIGIN)
    try:
        old_leaves = [e.leaf for e in entries]
        writer.append(entries)
    finally:
        writer.close()

    hub.start()
    try:
        mine, theirs = peoples.token(), university.token()
        # c-old-1: php-ehr granted it, so it is the People's Hospital's.
        path = "/fhir/Consent/c-old-1"
        status, _, body = university.call("POST", path + "/$withdraw", theirs)
        assert (status, _outcome_reason(body)) == (403, "consent_not_custodian")
        narrowed = consent_document(
            "c-old-1", "pt-legacy001", actors=[HOSPITAL], purposes=["TREAT"]
        )
        assert peoples.call("PUT", path, mine, body=narrowed)[0] == 200
        # c-old-2: its granting client is gone; withdrawing only narrows, changing is refused.
        path = "/fhir/Consent/c-old-2"
        status, _, body = university.call("PUT", path, theirs, body=documents["c-old-2"])
        assert (status, _outcome_reason(body)) == (403, "consent_custodian_unknown")
        assert university.call("POST", path + "/$withdraw", theirs)[0] == 200

        page = hub.get_json("/api/v1/ledger/entries?start=0&end=100")["entries"]
        leaves = [base64.b64decode(e["leaf"]) for e in page if e["kind"] == "consent"]
        assert leaves[:2] == old_leaves
        later = hub.opened_entries("consent")[2:]
        assert [(e["action"], e["consent"], e.get("custodian")) for e in later] == [
            ("update", "c-old-1", HOSPITAL),
            ("withdraw", "c-old-2", None),
        ]
    finally:
        hub.stop()
    report = verify_ledger(hub.db_path)
    assert report.ok, report
