"""A member's mirror catching up a log of 100,000 entries from a real hub over HTTP: every
entry fetched, checked (leaf hash, record signature, consistency from checkpoint to
checkpoint) and stored, and the copy's tree the hub's, entry for entry; from a hub on each
store (the mirror's copy is its own SQLite file either way)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ledger.store import LedgerReader
from ledger.verify import verify_ledger
from mirror.config import LEDGER_FILE
from tests.support.broker import Mosquitto
from tests.support.mirror import MirrorProcess, build_hub_dir, built_hub, make_mirror, wait_for

RECORDS = 100_000
#: Bounds the catch-up on a loaded 2-core machine (it takes ~15-30 s on a quiet one).
CATCH_UP_S = 600.0


def test_a_mirror_catches_up_100k_entries(
    tmp_path: Path, hub_broker: Mosquitto, store_settings: dict[str, Any]
) -> None:
    build_hub_dir(tmp_path / "hub", RECORDS, store_settings.get("ledger_url"))
    with built_hub(tmp_path / "hub", hub_broker.url, **store_settings) as hub:
        size = hub.get_json("/api/v1/ledger/entries?start=0&end=0")["size"]
        assert size > RECORDS
        mirror = MirrorProcess(make_mirror(tmp_path / "mirror", hub), poll_s=0.05)
        mirror.start()
        try:
            wait_for(lambda: mirror.status()["verified"] == size, "caught up", CATCH_UP_S)
        finally:
            mirror.stop()
        hub_root = hub.hub.ledger.reader.root(size)
    copy = tmp_path / "mirror" / LEDGER_FILE
    with LedgerReader(copy) as reader:
        assert reader.size() == size and reader.root(size) == hub_root
    report = verify_ledger(copy)
    assert report.ok and report.records == RECORDS and report.bodies == 0, report.problems
