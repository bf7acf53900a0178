"""The hub as a real process (``swiftchain hub --config``): kill -9 mid-stream, SIGTERM
drain, and a broker restart under a running hub."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

from ledger.envelope import SignedRecord, seal
from ledger.keys import load_private_key
from ledger.store import LedgerReader
from ledger.verify import verify_ledger
from tests.support.broker import Mosquitto
from tests.support.hub import MqttPeer, ProcessHub, process_hub, thread_hub

PILOT, SOURCE, TYPE = "city-air", "station-1", "city.air-quality"


def stream(key_path: Path, n: int) -> list[SignedRecord]:
    key = load_private_key(key_path)
    return [
        seal(pilot=PILOT, source=SOURCE, seq=i, type=TYPE, payload={"pm25": i}, signing_key=key)
        for i in range(1, n + 1)
    ]


def settled(peer: MqttPeer, record_id: str) -> dict[str, Any] | None:
    for r in peer.by_id.get(record_id, []):
        if r["status"] in ("accepted", "duplicate"):
            return r
    return None


async def publish_paced(peer: MqttPeer, records: list[SignedRecord], per_ms: int = 1) -> None:
    for i, rec in enumerate(records):
        try:
            await peer.publish(f"swiftchain/v1/{PILOT}/{SOURCE}/records", rec.to_wire())
        except Exception:
            await asyncio.sleep(0.05)
        if i % 20 == 0:
            await asyncio.sleep(per_ms * 20 / 1000)


async def resend_until_settled(
    peer: MqttPeer, records: list[SignedRecord], wait_s: float = 60
) -> None:
    """What an agent does: resend whatever has no accepted/duplicate receipt yet."""
    async with asyncio.timeout(wait_s):
        while missing := [r for r in records if settled(peer, r.header.id) is None]:
            for rec in missing:
                await peer.publish(f"swiftchain/v1/{PILOT}/{SOURCE}/records", rec.to_wire())
            await asyncio.sleep(1.0)


def assert_log_holds(db: Path, peer: MqttPeer, records: list[SignedRecord]) -> None:
    report = verify_ledger(db)
    assert report.ok, report.problems
    with LedgerReader(db) as reader:
        for rec in records:
            for r in peer.by_id.get(rec.header.id, []):
                if r["status"] == "accepted":
                    assert reader.record_index(rec.header.id) == r["index"]
                    assert bytes(reader.entry(r["index"]).leaf_hash).hex() == r["leaf_hash"]
        ids = [row[0] for row in reader.conn.execute("SELECT id FROM records")]
    assert len(ids) == len(set(ids)) == len(records)  # nothing duplicated, nothing lost


async def test_kill_9_mid_stream_loses_no_accepted_record(
    tmp_path: Path, hub_broker: Mosquitto
) -> None:
    hub: ProcessHub = process_hub(tmp_path / "hub", hub_broker.url)
    hub.start()
    try:
        key_path, _ = hub.register_source(PILOT, SOURCE, [TYPE])
        records = stream(key_path, 1500)
        async with MqttPeer(hub.mqtt_url) as peer:
            sender = asyncio.create_task(publish_paced(peer, records))
            await peer.wait_until(lambda: peer.accepted() >= 300)
            hub.kill()
            accepted_before = {r["id"] for _, r in peer.receipts if r["status"] == "accepted"}
            await sender
            hub.start()
            await resend_until_settled(peer, records)
            # Everything accepted before the crash is still there, at the same index.
            for rid in accepted_before:
                assert settled(peer, rid) is not None
        hub.terminate()
        assert_log_holds(hub.db_path, peer, records)
        assert 300 <= len(accepted_before) < 1500
    finally:
        hub.stop()


async def test_sigterm_drains_in_flight_records(tmp_path: Path, hub_broker: Mosquitto) -> None:
    hub = process_hub(tmp_path / "hub", hub_broker.url)
    hub.start()
    try:
        key_path, _ = hub.register_source(PILOT, SOURCE, [TYPE])
        records = stream(key_path, 2000)
        async with MqttPeer(hub.mqtt_url) as peer:
            sender = asyncio.create_task(publish_paced(peer, records, per_ms=0))
            await peer.wait_for(200)
            assert hub.proc is not None
            hub.proc.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(hub.proc.wait, 30)
            hub.proc = None
            await sender
            await asyncio.sleep(0.5)  # let the last receipts arrive
        assert code == 0, hub.log_text()[-3000:]
        assert "hub stopped cleanly" in hub.log_text()
        # Drained: every record on the log got its accepted receipt before the hub left.
        with LedgerReader(hub.db_path) as reader:
            on_log = {row[0] for row in reader.conn.execute("SELECT id FROM records")}
        receipted = {r["id"] for _, r in peer.receipts if r["status"] == "accepted"}
        assert on_log == receipted
        assert verify_ledger(hub.db_path).ok
    finally:
        hub.stop()


async def test_broker_restart_and_queued_messages(tmp_path: Path, hub_broker: Mosquitto) -> None:
    with thread_hub(tmp_path / "hub", hub_broker.url) as hub:
        key_path, _ = hub.register_source(PILOT, SOURCE, [TYPE])
        records = stream(key_path, 3)
        async with MqttPeer(hub.mqtt_url) as peer:
            assert (await peer.send(records[0]))["status"] == "accepted"
        hub_broker.stop()
        hub_broker.start()
        await asyncio.to_thread(hub.wait_ready)
        async with MqttPeer(hub.mqtt_url) as peer:
            assert (await peer.send(records[1]))["status"] == "accepted"
    # Hub down, broker up: its persistent session collects the record until it is back.
    async with MqttPeer(hub_broker.url) as peer:
        await peer.publish(f"swiftchain/v1/{PILOT}/{SOURCE}/records", records[2].to_wire())
        hub.start()
        try:
            receipt = await peer.receipt(records[2].header.id, wait_s=10)
        finally:
            hub.stop()
    assert receipt["status"] == "accepted"
