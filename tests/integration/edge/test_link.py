"""The MQTT link on a real Mosquitto, with the test playing the hub on the wire: the window,
republishing without a receipt, settling by receipts, and reconnecting after a broker restart."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiomqtt

from edge.agent import Agent
from edge.outbox import Outbox
from edge.settings import load_settings
from ledger.checkpoint import Checkpoint, NoteSigner, sign_checkpoint
from ledger.envelope import parse_record, utc_now
from ledger.hashing import leaf_hash
from ledger.keys import generate_key
from tests.support.edge import running_agent, wait_until, write_edge_config

HUB = NoteSigner("test.hub/log", generate_key())
PILOT, SOURCE = "city-air", "station-9"
RECORDS = f"swiftchain/v1/{PILOT}/{SOURCE}/records"
RECEIPTS = f"swiftchain/v1/{PILOT}/{SOURCE}/receipts"


class WireHub:
    """The test's stand-in on the broker: collects published records, answers on demand."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.seen: list[dict[str, Any]] = []
        self.client: aiomqtt.Client | None = None

    def receipt(self, record: dict[str, Any], index: int, status: str = "accepted") -> bytes:
        header = parse_record(json.dumps(record).encode()).header
        note = sign_checkpoint(Checkpoint("test.hub/log", index + 1, bytes(32)), HUB)
        body: dict[str, Any] = {"id": header.id, "status": status}
        if status == "accepted":
            body |= {
                "index": index,
                "leaf_hash": leaf_hash(header.canonical()).hex(),
                "checkpoint": note,
            }
        else:
            body |= {"reason": "unknown_type", "detail": "not registered"}
        return json.dumps(body).encode()

    async def answer(self, record: dict[str, Any], index: int, status: str = "accepted") -> None:
        assert self.client is not None
        await self.client.publish(RECEIPTS, self.receipt(record, index, status), qos=1)


@asynccontextmanager
async def wire_hub(port: int) -> AsyncIterator[WireHub]:
    hub = WireHub(port)
    async with aiomqtt.Client("127.0.0.1", port, identifier="wire-hub") as client:
        hub.client = client
        await client.subscribe(RECORDS, qos=1)

        async def collect() -> None:
            async for m in client.messages:
                hub.seen.append(json.loads(m.payload))  # type: ignore[arg-type]

        task = asyncio.create_task(collect())
        try:
            yield hub
        finally:
            task.cancel()


def air(i: int) -> dict[str, Any]:
    return {
        "type": "city.air-quality",
        "payload": {"station": "st-9", "observed_at": utc_now(), "pm25": float(i)},
    }


def config(tmp_path: Path, broker_url: str, **publish: Any) -> Path:
    return write_edge_config(
        tmp_path / "edge",
        pilot=PILOT,
        source=SOURCE,
        broker_url=broker_url,
        hub_key=HUB.verifier.encode(),
        publish={"window": 5, "republish_after": 0.5, "republish_max": 1.0, **publish},
        hub={"proof_check": "never"},
    )


async def depth(agent: Agent) -> int:
    return await agent.outbox.call(Outbox.depth)


async def test_window_receipts_and_dead_letters(tmp_path: Path, broker) -> None:
    settings = load_settings(config(tmp_path, broker.url, republish_after=30))
    async with wire_hub(broker.port) as hub, running_agent(settings) as agent:
        await agent.intake.submit_json([air(i) for i in range(12)])
        await wait_until(lambda: len(hub.seen) >= 5, 10)
        await asyncio.sleep(0.3)
        assert len(hub.seen) == 5  # the window: no more without receipts
        first = list(hub.seen)
        for i, record in enumerate(first[:4]):
            await hub.answer(record, i)
        await hub.answer(first[4], 0, status="rejected")
        await wait_until(lambda: len(hub.seen) >= 10, 10)
        assert await depth(agent) == 7
        status = agent.settler.counts if agent.settler else {}
        assert status["deliver"] == 4 and status["dead_letter"] == 1
    seqs = [r["header"]["seq"] for r in hub.seen]
    assert seqs[:10] == list(range(1, 11))


async def test_records_without_a_receipt_are_published_again(tmp_path: Path, broker) -> None:
    settings = load_settings(config(tmp_path, broker.url))
    async with wire_hub(broker.port) as hub, running_agent(settings) as agent:
        (stored,) = await agent.intake.submit_json(air(1))
        await wait_until(lambda: len(hub.seen) >= 3, 10)
        assert {r["header"]["id"] for r in hub.seen} == {stored.id}
        await hub.answer(hub.seen[0], 0)
        await wait_until(lambda: agent.link is not None and not agent.link.inflight, 10)
        assert await depth(agent) == 0
        assert agent.link is not None and agent.link.republished_total >= 2


async def test_forged_receipts_do_not_settle_anything(tmp_path: Path, broker) -> None:
    settings = load_settings(config(tmp_path, broker.url, republish_after=30))
    async with wire_hub(broker.port) as hub, running_agent(settings) as agent:
        await agent.intake.submit_json(air(1))
        await wait_until(lambda: len(hub.seen) == 1, 10)
        forged = json.loads(hub.receipt(hub.seen[0], 0))
        forged["checkpoint"] = sign_checkpoint(
            Checkpoint("test.hub/log", 1, bytes(32)), NoteSigner("test.hub/log", generate_key())
        )
        assert hub.client is not None
        await hub.client.publish(RECEIPTS, json.dumps(forged), qos=1)
        await hub.client.publish(RECEIPTS, b"garbage", qos=1)
        assert agent.settler is not None
        await wait_until(
            lambda: agent.settler.counts["ignore"] + agent.settler.counts["malformed"] == 2, 10
        )
        assert await depth(agent) == 1


async def test_the_link_reconnects_after_a_broker_restart(tmp_path: Path, broker) -> None:
    settings = load_settings(config(tmp_path, broker.url, window=100))
    async with running_agent(settings) as agent:
        await wait_until(lambda: agent.link is not None and agent.link.connected.is_set(), 10)
        broker.stop()
        await wait_until(lambda: agent.link is not None and not agent.link.connected.is_set(), 10)
        await agent.intake.submit_json([air(i) for i in range(20)])  # stored while offline
        broker.start()
        async with wire_hub(broker.port) as hub:
            await wait_until(lambda: len({r["header"]["seq"] for r in hub.seen}) == 20, 20)
            for i, record in enumerate({r["header"]["id"]: r for r in hub.seen}.values()):
                await hub.answer(record, i)
            await wait_until(
                lambda: agent.settler is not None and agent.settler.counts["deliver"] == 20, 10
            )
        assert agent.link is not None and agent.link.connects >= 2
        assert await depth(agent) == 0


async def test_an_idle_agent_waits_for_records_instead_of_polling(tmp_path: Path, broker) -> None:
    settings = load_settings(config(tmp_path, broker.url, republish_after=30))
    async with wire_hub(broker.port) as hub, running_agent(settings) as agent:
        await agent.intake.submit_json(air(1))
        await wait_until(lambda: len(hub.seen) == 1, 10)
        await hub.answer(hub.seen[0], 0)
        await wait_until(lambda: agent.link is not None and not agent.link.inflight, 10)
        # Everything settled: now count what the agent asks its outbox while idle.
        statements: list[str] = []
        await agent.outbox.call(lambda box: box.conn.set_trace_callback(statements.append))
        await asyncio.sleep(2.0)
        await agent.outbox.call(lambda box: box.conn.set_trace_callback(None))
    # About one look a second for new records (the wait's bound), not a loop on the outbox
    # (which had a settled receipt wake the publisher for ever after).
    looks = [s for s in statements if "FROM outbox" in s]
    assert len(looks) <= 10, f"{len(looks)} outbox queries in 2 s of idling"
