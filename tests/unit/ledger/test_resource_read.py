"""``LedgerQueries.resource``: the record the FHIR read interaction serves, by the stored
resource's own ``id`` (the newest of several is the current version), or by its record id
where the resource has none; never an erased body, another pilot's or another type's; and
through the resource-id index, not a scan; on both stores."""

from __future__ import annotations

import json

from ledger.schema import RESOURCE_ID
from ledger.store import LedgerReader
from tests.support.ledger_builder import LedgerBuilder

OBS = "fhir.Observation"


def test_a_resource_is_found_by_its_id_or_its_record_id(store_url: str, store_kind: str) -> None:
    b = LedgerBuilder(store_url, pilot="chronic-care")
    b.register_source()
    first = b.append_record(
        {"resourceType": "Observation", "id": "bp-1", "v": 1},
        type=OBS,
        subject="pt-00000001",
        consent="c-1",
    )
    newer = b.append_record(
        {"resourceType": "Observation", "id": "bp-1", "v": 2},
        type=OBS,
        subject="pt-00000001",
        consent="c-1",
    )
    anonymous = b.append_record(
        {"resourceType": "Observation"}, type=OBS, subject="pt-00000002", consent="c-2"
    )
    b.append_record(
        {"resourceType": "Observation", "id": "gone"},
        type=OBS,
        subject="pt-00000003",
        consent="c-3",
    )
    gone = b.writer.size() - 1
    b.erase(gone)
    b.close()
    with LedgerReader(store_url) as reader:
        found = reader.resource(pilot="chronic-care", data_type=OBS, resource_id="bp-1")
        assert found is not None and found.index == newer != first
        assert found.subject == "pt-00000001"
        record_id = reader.entries(anonymous, anonymous + 1)[0].leaf
        by_record = reader.resource(
            pilot="chronic-care",
            data_type=OBS,
            resource_id=json.loads(record_id)["id"],
        )
        assert by_record is not None and by_record.index == anonymous
        for pilot, data_type, rid in [
            ("chronic-care", OBS, "gone"),
            ("air-quality", OBS, "bp-1"),
            ("chronic-care", "fhir.DiagnosticReport", "bp-1"),
            ("chronic-care", OBS, "nope"),
        ]:
            assert reader.resource(pilot=pilot, data_type=data_type, resource_id=rid) is None
        if store_kind == "sqlite":
            plan = reader.conn.execute(
                "EXPLAIN QUERY PLAN SELECT idx FROM bodies INDEXED BY bodies_by_resource_id"
                f" WHERE {RESOURCE_ID} = ? AND key_id IS NULL",
                ("bp-1",),
            ).fetchall()
        else:
            # A table this small is read whole unless the planner is told not to: what is
            # asserted is that the index serves the query.
            reader.conn.execute("SET enable_seqscan = off")
            plan = reader.conn.execute(
                "EXPLAIN SELECT idx FROM bodies b WHERE b.resource_id = ?", ("bp-1",)
            ).fetchall()
        assert "bodies_by_resource_id" in str(plan)
