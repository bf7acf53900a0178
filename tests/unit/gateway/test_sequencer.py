"""The sequencer on a real SQLite ledger in tmp_path: group commit, receipts only after
commit, duplicates (committed and in flight) and reused sequence numbers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.hub_ledger import HubLedger, open_ledger
from gateway.ingest.checks import Candidate, verify
from gateway.ingest.receipts import ReceiptQueue
from gateway.ingest.sequencer import Sequencer
from gateway.metrics import HubMetrics
from gateway.registry.changes import plan_org_add, plan_source_add
from gateway.settings import HubSettings
from ledger.checkpoint import verify_checkpoint
from ledger.envelope import seal
from ledger.errors import StorageError, StoreError
from ledger.keys import FastVerifier, generate_key, public_key_b64, write_key_pair
from ledger.store import NewEntry
from ledger.suite import ED25519_SHA256

KEY = generate_key()


class Harness:
    def __init__(self, ledger: HubLedger, sequencer: Sequencer) -> None:
        self.ledger = ledger
        self.sequencer = sequencer
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.arrived = asyncio.Event()

    def publish(self, topic: str, payload: bytes) -> bool:
        self.sent.append((topic, json.loads(payload)))
        self.arrived.set()
        return True

    def submit(self, seq: int, record_id: str | None = None) -> str:
        rec = seal(
            pilot="p",
            source="s",
            seq=seq,
            type="t",
            payload={"n": seq},
            signing_key=KEY,
            record_id=record_id,
        )
        self.sequencer.submit(
            verify(
                Candidate(
                    rec,
                    FastVerifier(KEY.public_key()),
                    "swiftchain/v1/p/s/receipts",
                    ED25519_SHA256,
                )
            )
        )
        return rec.header.id

    async def settle(self, count: int) -> None:
        async with asyncio.timeout(5):
            while len(self.sent) < count:
                self.arrived.clear()
                await self.arrived.wait()


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    write_key_pair(tmp_path / "hub.key")
    settings = HubSettings(db_path=tmp_path / "l.db", signing_key=tmp_path / "hub.key")
    ledger = open_ledger(settings)
    metrics = HubMetrics()
    receipts = ReceiptQueue(metrics)
    seq = Sequencer(ledger, receipts, metrics, max_records=100, max_wait_ms=20)
    h = Harness(ledger, seq)
    receipts.attach(h.publish)
    task = asyncio.create_task(seq.run())
    await seq.change_registry(plan_org_add(ledger.registry, "o", name=None, actor="t"))
    await seq.change_registry(
        plan_source_add(
            ledger.registry,
            pilot="p",
            source="s",
            org="o",
            types=["t"],
            public_key=public_key_b64(KEY.public_key()),
            actor="t",
        )
    )
    yield h
    seq.close()
    await task
    seq.shutdown()
    ledger.close()


async def test_one_batch_one_commit_then_receipts(harness: Harness) -> None:
    ids = [harness.submit(i) for i in range(1, 51)]
    assert harness.sent == []  # nothing before the commit
    await harness.settle(50)
    assert [r["id"] for _, r in harness.sent] == ids
    assert {r["status"] for _, r in harness.sent} == {"accepted"}
    indexes = [r["index"] for _, r in harness.sent]
    assert indexes == list(range(3, 53))
    assert harness.sequencer.metrics.batch_size._sum.get() == 3 + 50
    note = harness.sent[-1][1]["checkpoint"]
    cp = verify_checkpoint(note, harness.ledger.signer.verifier)
    assert cp.size == 53
    assert harness.ledger.reader.record_index(ids[0]) == 3


async def test_duplicates_and_reused_seq(harness: Harness) -> None:
    first = harness.submit(1)
    harness.submit(1, record_id=first)  # same record again while in flight
    harness.submit(2)
    await harness.settle(3)
    harness.submit(1, record_id=first)  # again, after commit
    reused = harness.submit(2)  # new record, old seq
    await harness.settle(5)
    by_status = [(r["status"], r.get("index"), r.get("reason")) for _, r in harness.sent]
    assert by_status[0] == ("accepted", 3, None)
    assert ("duplicate", 3, None) in by_status[1:3]
    assert by_status[3] == ("duplicate", 3, None)
    assert by_status[4] == ("rejected", None, "seq_reused")
    assert harness.sent[4][1]["id"] == reused
    assert harness.ledger.writer.size() == 5


async def test_failed_commit_sends_no_receipt_and_recovers(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = harness.ledger.writer.append
    calls = {"n": 0}

    def flaky(batch: Any, **kw: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise StoreError("disk full")
        return real(batch, **kw)

    monkeypatch.setattr(harness.ledger.writer, "append", flaky)
    monkeypatch.setattr("gateway.ingest.sequencer.COMMIT_RETRY_S", 0.01)
    lost = harness.submit(1)
    # Bounded wait for the failed commit (no fixed sleep: a loaded machine is slow).
    for _ in range(500):
        if calls["n"] >= 1 and not harness.sequencer.healthy:
            break
        await asyncio.sleep(0.01)
    assert harness.sent == [] and not harness.sequencer.healthy
    # The agent resends: accepted this time, once.
    harness.submit(1, record_id=lost)
    await harness.settle(1)
    assert harness.sent[0][1]["status"] == "accepted" and harness.sequencer.healthy


async def test_after_close_writes_are_refused_as_storage_unavailable(harness: Harness) -> None:
    # A 503 with Retry-After over HTTP: nothing was written, and another try may succeed.
    harness.sequencer.close()
    with pytest.raises(StorageError, match="shutting down"):
        await harness.sequencer.append([NewEntry("access", b"{}")])


def test_a_hub_refuses_to_run_on_a_mirrors_copy(tmp_path: Path) -> None:
    from gateway.errors import ConfigError
    from ledger.store import LedgerWriter
    from ledger.verify import COPY_META, LEAVES_ONLY

    write_key_pair(tmp_path / "hub.key")
    settings = HubSettings(db_path=tmp_path / "copy.db", signing_key=tmp_path / "hub.key")
    writer = LedgerWriter(settings.db_path, origin=settings.origin)
    writer.set_meta(COPY_META, LEAVES_ONLY)
    writer.close()
    with pytest.raises(ConfigError, match="mirror's leaves-only copy"):
        open_ledger(settings)
