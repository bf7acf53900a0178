"""A member's mirror catching up a long log from a real hub over HTTP: every entry fetched,
checked (leaf hash, record signature, consistency from checkpoint to checkpoint) and stored,
and the copy's tree the hub's, entry for entry; from a hub on each store (the mirror's copy
is its own SQLite file either way).

100,000 records from a hub on SQLite; 20,000 from one on PostgreSQL: the mirror's work is
the same whichever store the hub reads, and what the PostgreSQL run adds, the hub serving
the log page after page and checkpoint after checkpoint from it, 20 pages of 1000 show as
well as 100 (100,000 there took as long as on SQLite, two minutes of the suite's time on a
loaded 2-core machine)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ledger.store import LedgerReader
from ledger.verify import verify_ledger
from mirror.config import LEDGER_FILE
from tests.support.broker import Mosquitto
from tests.support.mirror import MirrorProcess, build_hub_dir, built_hub, make_mirror, wait_for

RECORDS = {"sqlite": 100_000, "postgresql": 20_000}
#: Bounds the catch-up on a loaded 2-core machine (it takes ~15-30 s on a quiet one).
CATCH_UP_S = 600.0


def test_a_mirror_catches_up_a_long_log(
    tmp_path: Path, hub_broker: Mosquitto, store_kind: str, store_settings: dict[str, Any]
) -> None:
    records = RECORDS[store_kind]
    build_hub_dir(tmp_path / "hub", records, store_settings.get("ledger_url"))
    with built_hub(tmp_path / "hub", hub_broker.url, **store_settings) as hub:
        size = hub.get_json("/api/v1/ledger/entries?start=0&end=0")["size"]
        assert size > records
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
    assert report.ok and report.records == records and report.bodies == 0, report.problems
