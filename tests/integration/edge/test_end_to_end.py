"""The agent against a real hub (``swiftchain hub`` in its own process) and real Mosquitto:
many records from every kind of source arrive exactly once, and nothing is lost when the
broker restarts, the hub is away for a while, or the agent is killed with SIGKILL."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from edge.agent import Agent
from edge.errors import OutboxError
from edge.outbox import Outbox
from edge.settings import load_settings
from edge.sources.stream import StreamSource, file_lines
from edge.status import read_status
from ledger.envelope import utc_now
from tests.support.edge import EdgeProcess, drained, running_agent, wait_until, write_edge_config

try:
    from gateway.app import create_app  # noqa: F401  (the hub these tests need)
    from tests.support.hub import ProcessHub, process_hub
except ImportError as exc:  # pragma: no cover - only before the hub exists
    pytest.skip(
        f"needs the hub: gateway.app.create_app does not import ({exc})", allow_module_level=True
    )

pytestmark = pytest.mark.slow

PILOT = "demo-zone"


@pytest.fixture
def hub(tmp_path: Path, hub_broker: Any) -> Iterator[ProcessHub]:
    h = process_hub(tmp_path / "hub", hub_broker.url, batch_max_ms=5)
    h.start()
    try:
        yield h
    finally:
        h.stop()


def edge_config(
    tmp_path: Path,
    ledger_hub: ProcessHub,
    source: str,
    types: list[str],
    /,
    *,
    pin: bool = True,
    **sections: Any,
) -> Path:
    key, _ = ledger_hub.register_source(PILOT, source, types)
    return write_edge_config(
        tmp_path / source,
        pilot=PILOT,
        source=source,
        key_file=key,
        broker_url=ledger_hub.mqtt_url,
        hub_url=ledger_hub.http_url,
        hub_key=ledger_hub.log_key if pin else None,
        **{"publish": {"republish_after": 2.0, "republish_max": 4.0}, **sections},
    )


def ledger_payloads(hub: ProcessHub, source: str) -> tuple[list[int], list[dict[str, Any]]]:
    """Seqs (in order) and payloads of one source's records on the hub's ledger."""
    rows = hub.source_payloads(PILOT, source)
    return [r[0] for r in rows], [r[1] for r in rows]


def assert_exactly_once(hub: ProcessHub, source: str, markers: set[Any], marker: str) -> None:
    seqs, payloads = ledger_payloads(hub, source)
    assert seqs == list(range(1, len(markers) + 1)), f"{source}: seqs are not 1..{len(markers)}"
    found = [p[marker] if marker in p else p.get("id") for p in payloads]
    assert len(found) == len(set(found)) == len(markers)
    assert set(found) == markers


def delivered(outbox: Path) -> int:
    try:
        return read_status(outbox).delivered_total
    except OutboxError:  # the agent is still creating it
        return 0


def parking(facility: str, i: int) -> dict[str, Any]:
    return {"facility": facility, "observed_at": utc_now(), "capacity": 100_000, "occupied": i}


def observation(n: int, subject: str = "Location/ward-3") -> dict[str, Any]:
    """A FHIR Observation; about a ward (no person, no consent needed) unless told."""
    return {
        "resourceType": "Observation",
        "id": f"obs-{n}",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": subject},
        "effectiveDateTime": utc_now(),
        "valueQuantity": {"value": 60 + n % 40, "unit": "/min"},
    }


async def test_ten_thousand_records_from_every_source_arrive_exactly_once(
    tmp_path: Path, hub: ProcessHub, aiohttp_client: Any
) -> None:
    stream_cfg = edge_config(
        tmp_path, hub, "station-1", ["city.air-quality"], stream={"enabled": False}
    )
    http_cfg = edge_config(
        tmp_path, hub, "ward-3", ["fhir.Observation"], pin=False, http={"enabled": True, "port": 0}
    )
    inbox = tmp_path / "inbox"
    dir_cfg = edge_config(
        tmp_path,
        hub,
        "car-parks",
        ["city.parking"],
        directory={"enabled": True, "path": str(inbox), "poll_interval": 0.1, "settle": 0},
    )
    sensor_cfg = edge_config(
        tmp_path,
        hub,
        "gateway-7",
        ["city.traffic-flow"],
        sensors={
            "enabled": True,
            "topics": [{"topic": "sensors/traffic/+", "type": "city.traffic-flow"}],
        },
    )
    lines = tmp_path / "air.ndjson"
    lines.write_text(
        "".join(
            json.dumps(
                {
                    "type": "city.air-quality",
                    "payload": {"station": "st-1", "observed_at": utc_now(), "pm25": i / 100},
                }
            )
            + "\n"
            for i in range(4000)
        )
    )
    inbox.mkdir()
    for f in range(20):
        (inbox / f"batch-{f:02d}.ndjson").write_text(
            "".join(
                json.dumps({"type": "city.parking", "payload": parking("p-1", f * 100 + i)}) + "\n"
                for i in range(100)
            )
        )
    started = time.monotonic()
    async with (
        running_agent(load_settings(stream_cfg)) as stream_agent,
        running_agent(load_settings(http_cfg)) as http_agent,
        running_agent(load_settings(dir_cfg)) as dir_agent,
        running_agent(load_settings(sensor_cfg)) as sensor_agent,
    ):
        stream = StreamSource(stream_agent.intake, acks=None)
        feeding = asyncio.create_task(stream.run(file_lines(lines)))

        import aiohttp

        async with aiohttp.ClientSession() as session:
            for b in range(20):
                bundle = {
                    "resourceType": "Bundle",
                    "type": "batch",
                    "entry": [{"resource": observation(b * 100 + i)} for i in range(100)],
                }
                async with session.post(
                    f"http://127.0.0.1:{http_agent.http_port}/fhir?consent=consent-7",
                    data=json.dumps(bundle),
                    headers={"Content-Type": "application/fhir+json"},
                ) as resp:
                    assert resp.status == 202, await resp.text()

        assert sensor_agent.sensors is not None
        await asyncio.wait_for(sensor_agent.sensors.connected.wait(), 10)
        async with aiomqtt.Client(
            "127.0.0.1", int(hub.mqtt_url.rsplit(":", 1)[1]), identifier="traffic-device"
        ) as device:
            for i in range(2000):
                reading = {
                    "detector": "d-1",
                    "observed_at": utc_now(),
                    "interval_s": 60,
                    "vehicles": i,
                }
                await device.publish("sensors/traffic/d-1", json.dumps(reading), qos=1)

        await feeding
        for agent in (stream_agent, http_agent, dir_agent, sensor_agent):
            await drained(agent, 120)
        elapsed = time.monotonic() - started

    for cfg in (stream_cfg, http_cfg, dir_cfg, sensor_cfg):
        dead = read_status(load_settings(cfg).outbox_path).dead_letters
        assert not dead, f"{cfg.parent.name}: {dead[0].reason}: {dead[0].detail}"
    assert_exactly_once(hub, "station-1", {i / 100 for i in range(4000)}, "pm25")
    assert_exactly_once(hub, "car-parks", set(range(2000)), "occupied")
    assert_exactly_once(hub, "gateway-7", set(range(2000)), "vehicles")
    assert_exactly_once(hub, "ward-3", {f"obs-{n}" for n in range(2000)}, "id")
    assert sorted(p.name for p in (inbox / "done").iterdir())[0] == "batch-00.ndjson"
    for cfg in (stream_cfg, http_cfg, dir_cfg, sensor_cfg):
        status = read_status(load_settings(cfg).outbox_path)
        assert status.depth == 0 and status.dead_letters_total == 0
        assert status.last_checkpoint is not None
    # The HTTP agent had no pinned key: it trusted the hub's on first use and kept it.
    assert read_status(load_settings(http_cfg).outbox_path).hub_key_pinned == hub.log_key
    print(f"10,000 records from 4 sources in {elapsed:.1f}s")


async def test_personal_records_without_consent_on_file_become_dead_letters(
    tmp_path: Path, hub: ProcessHub
) -> None:
    """The hub refuses records about a person whose Consent it does not hold: the agent keeps
    each one, with the hub's reason, as a dead letter (and the raw patient id never left)."""
    cfg = edge_config(tmp_path, hub, "ward-4", ["fhir.Observation"])
    async with running_agent(load_settings(cfg)) as agent:
        personal = [observation(n, f"Patient/MRN-{n:04d}") for n in range(20)]
        await agent.intake.submit_json(personal, consent="consent-missing")
        await drained(agent, 30)
    status = read_status(load_settings(cfg).outbox_path)
    assert status.dead_letters_total == 20 and status.depth == 0
    assert {d.reason for d in status.dead_letters} == {"consent_required"}
    assert status.last_receipt is not None and status.last_receipt["status"] == "rejected"
    box = Outbox(load_settings(cfg).outbox_path)
    wires = [row[0] for row in box.conn.execute("SELECT wire FROM dead_letters")]
    box.close()
    assert wires and not any(b"MRN-" in w for w in wires)
    assert ledger_payloads(hub, "ward-4") == ([], [])


async def _submit_in_chunks(
    agent: Agent, source_records: list[dict[str, Any]], chunk: int = 100, pause: float = 0.02
) -> None:
    for i in range(0, len(source_records), chunk):
        await agent.intake.submit_json(source_records[i : i + chunk])
        await asyncio.sleep(pause)


def air_records(n: int) -> list[dict[str, Any]]:
    return [
        {
            "type": "city.air-quality",
            "payload": {"station": "st-2", "observed_at": utc_now(), "pm25": i / 100},
        }
        for i in range(n)
    ]


async def test_broker_stop_and_start_mid_stream(
    tmp_path: Path, hub: ProcessHub, hub_broker: Any
) -> None:
    cfg = edge_config(
        tmp_path, hub, "station-2", ["city.air-quality"], hub={"proof_check": "always"}
    )
    async with running_agent(load_settings(cfg)) as agent:
        submitting = asyncio.create_task(_submit_in_chunks(agent, air_records(3000)))
        await wait_until(
            lambda: agent.settler is not None and agent.settler.counts["deliver"] > 300, 30
        )
        hub_broker.stop()
        await asyncio.sleep(1.5)
        hub_broker.start()
        await submitting
        await drained(agent, 90)
        assert agent.link is not None and agent.link.connects >= 2
        assert agent.checker is not None
        await wait_until(
            lambda: read_status(agent.settings.outbox_path).proof_checks_pending == 0, 60
        )
    assert_exactly_once(hub, "station-2", {i / 100 for i in range(3000)}, "pm25")
    status = read_status(load_settings(cfg).outbox_path)
    assert status.proofs_verified >= 3000 - 10 and status.proof_checks_failed == 0


async def test_hub_away_for_a_while(tmp_path: Path, hub: ProcessHub) -> None:
    cfg = edge_config(tmp_path, hub, "station-3", ["city.air-quality"])
    async with running_agent(load_settings(cfg)) as agent:
        submitting = asyncio.create_task(_submit_in_chunks(agent, air_records(3000)))
        await wait_until(
            lambda: agent.settler is not None and agent.settler.counts["deliver"] > 300, 30
        )
        assert hub.terminate() == 0
        await asyncio.sleep(4)  # records pile up; none is settled
        assert await agent.outbox.call(Outbox.depth) > 0
        hub.start()
        await submitting
        await drained(agent, 90)
    assert_exactly_once(hub, "station-3", {i / 100 for i in range(3000)}, "pm25")


async def test_agent_killed_with_sigkill_mid_stream_loses_nothing(
    tmp_path: Path, hub: ProcessHub, edge_processes: list[EdgeProcess]
) -> None:
    inbox = tmp_path / "inbox"
    cfg = edge_config(
        tmp_path,
        hub,
        "car-parks-2",
        ["city.parking"],
        directory={"enabled": True, "path": str(inbox), "poll_interval": 0.05, "settle": 0},
    )
    inbox.mkdir()
    for f in range(30):
        (inbox / f"batch-{f:02d}.ndjson").write_text(
            "".join(
                json.dumps({"type": "city.parking", "payload": parking("p-2", f * 100 + i)}) + "\n"
                for i in range(100)
            )
        )
    agent = EdgeProcess(cfg)
    edge_processes.append(agent)
    agent.start()
    outbox = load_settings(cfg).outbox_path
    await wait_until(lambda: delivered(outbox) > 200, 60)
    assert agent.proc is not None
    agent.proc.send_signal(signal.SIGKILL)
    agent.proc.wait(10)
    killed_at = read_status(outbox)
    assert killed_at.delivered_total < 3000  # it really died mid-stream
    agent.start()
    await wait_until(
        lambda: not list(inbox.glob("*.ndjson")) and read_status(outbox).depth == 0,
        90,
        interval=0.2,
    )
    agent.terminate()
    assert_exactly_once(hub, "car-parks-2", set(range(3000)), "occupied")
    assert read_status(outbox).last_seq == 3000
