"""The demo's forger: one record's leaf edited in a copy of the ledger, caught by the
verifier at that index, the live ledger untouched."""

from __future__ import annotations

from pathlib import Path

from ledger.store import LedgerReader
from ledger.verify import verify_ledger
from swiftchain.demo.story import tamper_copy
from tests.support.ledger_builder import LedgerBuilder


def test_the_forger_edits_the_middle_record_of_a_copy_only(tmp_path: Path) -> None:
    live, copy = tmp_path / "l.db", tmp_path / "tampered-copy.db"
    builder = LedgerBuilder(live)
    builder.register_source()
    builder.append_records(9)
    builder.close()
    with LedgerReader(live) as reader:
        records = [index for index, _ in reader.leaves("record")]
        before = reader.entry(records[4]).leaf
    index = tamper_copy(live, copy)
    assert index == records[len(records) // 2]
    report = verify_ledger(copy)
    assert not report.ok and report.first_bad_index == index
    with LedgerReader(copy) as reader:
        assert reader.entry(index).leaf != before
    assert verify_ledger(live).ok
    with LedgerReader(live) as reader:
        assert reader.entry(index).leaf == before
