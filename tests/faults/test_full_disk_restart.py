"""A hub restarted on a full disk comes up: it listens, says on ``/readyz`` why it is not
ready, serves the log to readers, and refuses writes with a clear 503 (HTTP) or no receipt
(MQTT), losing nothing; once the quota is raised everything refused goes in exactly once.

On each store, the disk as in tests/faults/world.py's ``Disk``: SQLite's ``max_page_count``
quota, or a tablespace on a small tmpfs for PostgreSQL (skipped, saying why, where none
can be mounted)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from ledger.checkpoint import Checkpoint, NoteSigner, sign_checkpoint
from ledger.errors import StoreError
from ledger.keys import load_private_key
from ledger.store import LedgerReader, LedgerWriter
from ledger.verify import verify_ledger
from tests.support.broker import Mosquitto
from tests.support.hub import MqttPeer, ProcessHub, process_hub
from tests.support.records import PILOT, SOURCE, TOPIC, TYPE, make

from .world import FULL, SETTLE_S, Disk, metric, page_count

ORIGIN = "test.swiftchain/ledger"


def wait_json(hub: ProcessHub, path: str, want: Any, within: float = SETTLE_S) -> Any:
    """Until GET ``path`` answers as ``want(status, body)`` says (bounded); a refused or
    cut connection is waited out too (a hub just started; that none of its processes died
    meanwhile each test checks in the hub's log)."""
    deadline = time.monotonic() + within
    while True:
        try:
            status, body = hub.request("GET", path)
        except OSError as exc:  # urllib's URLError, a reset connection
            status, body = 0, repr(exc)
        if status and want(status, body):
            return body
        assert time.monotonic() < deadline, (path, status, body)
        time.sleep(0.2)


def assert_no_process_died(hub: ProcessHub) -> None:
    """The supervisor logs every sequencer or front end that exits under it: none did (a
    killed hub's die with their supervisor, unlogged)."""
    exits = [line for line in hub.log_text().splitlines() if "exited (status" in line]
    assert not exits, exits[:3]


def signed_size(hub: ProcessHub) -> int:
    """The tree size of the hub's latest signed checkpoint (C2SP: the note's second line)."""
    return int(hub.get_text("/api/v1/ledger/checkpoint").splitlines()[1])


def assert_serves_reads_refuses_writes(hub: ProcessHub, size: int) -> None:
    ready = wait_json(hub, "/readyz", lambda s, b: s == 503 and "written" in b["detail"])
    assert ready["error"] == "not_ready" and FULL.search(ready["detail"]), ready
    # Readers are served: the signed head (from memory if the disk has no room for it),
    # the entries and their proofs.
    head = signed_size(hub)
    assert head >= size
    assert len(hub.get_json(f"/api/v1/ledger/entries?start=0&end={size}")["entries"]) == size
    hub.get_json(f"/api/v1/ledger/proof/inclusion?index=0&size={head}")
    # A write is refused with its reason, never a 500 or a 400 (a small one may still fit
    # in a page's last bytes: the disk fills up to the last one).
    for n in range(100):
        status, answer = hub.request(
            "POST", "/api/v1/admin/registry/orgs", {"org": f"late-org-{n}", "name": "Late"}
        )
        if status != 201:
            break
    assert status == 503 and answer["error"] == "storage_unavailable", (status, answer)
    assert FULL.search(answer["detail"]), answer


async def test_restarted_on_a_full_ledger_it_serves_reads_and_refuses_writes(
    tmp_path: Path, hub_broker: Mosquitto, disk: Disk
) -> None:
    hub = process_hub(tmp_path / "hub", hub_broker.url, **disk.settings)
    hub.start()
    try:
        key = load_private_key(hub.register_source(PILOT, SOURCE, [TYPE])[0])
        records = [make(key, seq) for seq in range(1, 401)]
        async with MqttPeer(hub.mqtt_url) as peer:
            # The first record on its own while there is room (a PostgreSQL table not yet
            # written to has no page with room in it), then a disk a little fuller than
            # that, and the rest streamed until the disk is full and a commit fails.
            assert (await peer.send(records[0]))["status"] == "accepted"
            disk.fill(hub, spare_pages=2)
            hub.kill()
            hub.start()
            for rec in records[1:]:
                await peer.publish(TOPIC, rec.to_wire())
            await asyncio.to_thread(
                lambda: wait_json(
                    hub,
                    "/metrics",
                    lambda s, b: metric(hub, "swiftchain_commit_failures_total") > 0,
                )
            )
            hub.kill()
            with LedgerReader(hub.ledger_location) as reader:
                size = reader.size()
            accepted = {r["id"] for _, r in peer.receipts if r["status"] == "accepted"}
            assert 0 < len(accepted) < len(records)

            # The same full disk at the next start: the hub comes up all the same.
            hub.start(wait=False)
            await asyncio.to_thread(hub.wait_listening)
            for rec in records:
                if rec.header.id not in accepted:
                    await peer.publish(TOPIC, rec.to_wire())
            await asyncio.to_thread(assert_serves_reads_refuses_writes, hub, size)
            # Refused means no receipt, so the senders keep their records (a last small
            # batch may still fit, and a record committed before the kill is a duplicate:
            # never a rejection).
            late = [r for _, r in peer.receipts if r["id"] not in accepted]
            assert all(r["status"] in ("accepted", "duplicate") for r in late), late[:3]
            assert len({r["id"] for r in late}) < len(records) - len(accepted)

            # The operator raises the quota: what was refused goes in, exactly once.
            hub.kill()
            disk.clear(hub)
            hub.start()
            for rec in records:
                if rec.header.id not in accepted:
                    await peer.publish(TOPIC, rec.to_wire())
            await peer.wait_until(
                lambda: len({r["id"] for _, r in peer.receipts}) == len(records), SETTLE_S
            )
        hub.terminate()
        with LedgerReader(hub.ledger_location) as reader:
            ids = [row[0] for row in reader.conn.execute("SELECT id FROM records")]
        assert sorted(ids) == sorted(r.header.id for r in records)
        assert verify_ledger(hub.ledger_location).ok
        assert_no_process_died(hub)
    finally:
        hub.stop()


def fill_checkpoints(hub: ProcessHub, disk: Disk) -> None:
    """What a crash on a full disk leaves: entries no stored checkpoint covers, and no room
    for one more checkpoint (the disk left so for the hub's next start)."""
    signer = NoteSigner(ORIGIN, load_private_key(hub.config_path.parent / "hub.key"))
    where = hub.ledger_location
    # SQLite's quota is the writer's own setting, as it is the hub's.
    quota = page_count(where) if isinstance(where, Path) else None
    disk.fill(hub)
    writer = LedgerWriter(where, origin=ORIGIN, max_page_count=quota)
    try:
        # Earlier tree heads, each a true checkpoint of the log, until the disk is full.
        for size in range(1, writer.size() - 1):
            root = writer.root(size)
            note = sign_checkpoint(Checkpoint(ORIGIN, size, root), signer)
            try:
                writer.add_checkpoint(size, root, note)
            except StoreError:
                break
        else:
            raise AssertionError("the checkpoints never filled the disk")
    finally:
        writer.close()


async def test_a_checkpoint_it_cannot_store_at_start_does_not_stop_it(
    tmp_path: Path, hub_broker: Mosquitto, disk: Disk
) -> None:
    # Checkpoints are stored at start only, so the last records have none stored.
    hub = process_hub(tmp_path / "hub", hub_broker.url, checkpoint_interval_s=3600, **disk.settings)
    hub.start()
    try:
        key = load_private_key(hub.register_source(PILOT, SOURCE, [TYPE])[0])
        async with MqttPeer(hub.mqtt_url) as peer:
            for seq in range(1, 201):
                assert (await peer.send(make(key, seq)))["status"] == "accepted"
        hub.kill()
        fill_checkpoints(hub, disk)
        with LedgerReader(hub.ledger_location) as reader:
            size = reader.size()
            stored = reader.latest_checkpoint()
        assert stored is not None and stored.size < size

        hub.start(wait=False)
        await asyncio.to_thread(hub.wait_listening)
        ready = hub.request("GET", "/readyz")
        assert ready[0] == 503 and "cannot store checkpoint" in ready[1]["detail"], ready
        # The head the disk had no room for is signed and served all the same.
        assert signed_size(hub) == size
        await asyncio.to_thread(assert_serves_reads_refuses_writes, hub, size)

        hub.kill()
        disk.clear(hub)
        hub.start()
        hub.get_json("/readyz")
        hub.terminate()
        with LedgerReader(hub.ledger_location) as reader:
            latest = reader.latest_checkpoint()
            assert latest is not None and latest.size == reader.size() >= size
        assert verify_ledger(hub.ledger_location).ok
        assert_no_process_died(hub)
    finally:
        hub.stop()
