"""The ledger's disk fills: every write path answers 503 ``storage_unavailable`` with
Retry-After, as JSON or as an OperationOutcome, while reads, including a bad range's 400,
go on as before; nothing on the log is lost or damaged.

On each store (tests/faults/world.py, ``Disk``). On SQLite the disk is the hub's
``max_page_count`` quota, which SQLite enforces exactly as a full disk (SQLITE_FULL). On
PostgreSQL it is a real one: the ledger's database in a tablespace on a small tmpfs, in a
cluster of the test's own; mounting it needs root, and the PostgreSQL case skips, saying
so, where it cannot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ledger.verify import verify_ledger
from tests.support.access import HOSPITAL, HospitalClient, consent_document, http
from tests.support.broker import Mosquitto
from tests.support.hub import ThreadHub, _handle

from .world import FULL, Disk

#: Bound on the requests it may take to use up the pages left under the quota.
MAX_WRITES = 300
RECORDS = "/api/v1/records?pilot=chronic-care&type=stats.chronic-care-weekly"


def until_refused(call: Any, served: set[int]) -> tuple[int, dict[str, str], Any]:
    """Repeat a request that writes to the log until it is answered other than ``served``."""
    for _ in range(MAX_WRITES):
        status, headers, body = call()
        if status not in served:
            return status, headers, body
    raise AssertionError(f"the quota was never reached in {MAX_WRITES} requests")


def test_a_full_disk_answers_503_and_reads_go_on(
    tmp_path: Path, hub_broker: Mosquitto, disk: Disk
) -> None:
    hub: ThreadHub = _handle(
        ThreadHub, tmp_path / "hub", hub_broker.url, batch_max_ms=2, **disk.settings
    )
    hub.start()
    try:
        hospital = HospitalClient(hub, "disk-ehr", HOSPITAL).register()
        # A log that has served a while: its tables have pages with room left (a PostgreSQL
        # table not yet written to has none, and its first write would fail at once).
        token = hospital.token()
        for _ in range(3):
            assert hospital.call("GET", RECORDS, token, purpose="HRESCH")[0] in {200, 403}
    finally:
        hub.stop()
    # No room but what the ledger's pages hold: the next pages it needs are refused.
    disk.fill(hub)
    hub.start()
    try:
        token = hospital.token()
        # Each data request commits an access entry before it is answered: a write.
        status, headers, body = until_refused(
            lambda: hospital.call("GET", RECORDS, token, purpose="HRESCH"), {200, 403}
        )
        assert status == 503, body
        assert body["error"] == "storage_unavailable" and FULL.search(body["detail"]), body
        assert int(headers["Retry-After"]) > 0
        # A Consent is a FHIR write: the same, as an OperationOutcome.
        consents = iter(range(MAX_WRITES))
        status, headers, outcome = until_refused(
            lambda: hospital.call(
                "POST",
                "/fhir/Consent",
                token,
                body=consent_document(f"c-full-{next(consents)}", "pt-full0001"),
            ),
            {201},
        )
        assert status == 503, outcome
        assert outcome["resourceType"] == "OperationOutcome"
        (issue,) = outcome["issue"]
        assert issue["code"] == "transient" and issue["details"]["coding"][0]["code"] == (
            "storage_unavailable"
        )
        assert int(headers["Retry-After"]) > 0
        # Reads need no new page: they go on, and a range outside the log is still a 400.
        status, _, page = http("GET", f"{hub.http_url}/api/v1/ledger/entries?start=0&end=3")
        assert status == 200 and len(page["entries"]) == 3, page
        size = page["size"]
        status, _, body = http(
            "GET", f"{hub.http_url}/api/v1/ledger/proof/inclusion?index={size}&size={size + 5}"
        )
        assert status == 400 and body["error"] == "bad_parameter", body
    finally:
        hub.stop()
    report = verify_ledger(hub.ledger_location)
    assert report.ok, report.problems[:5]
