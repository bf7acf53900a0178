"""The MQTT sensor source on a real Mosquitto: stored records, errors back to the sender."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiomqtt

from edge.settings import BackoffSettings, BrokerSettings, SensorTopic
from edge.sources.sensors import SensorSource
from tests.support.edge import outbox_depth, reading, running_intake, wait_until


async def test_sensor_messages_are_stored_and_bad_ones_answered(tmp_path: Path, broker) -> None:
    async with running_intake(tmp_path) as intake:
        sensors = SensorSource(
            intake,
            broker=BrokerSettings(url=broker.url),
            client_id="edge-test-sensors",
            topics=[SensorTopic(topic="sensors/parking/+", type="city.parking")],
            error_topic="swiftchain-edge/errors",
            backoff=BackoffSettings(initial=0.05, maximum=0.2),
        )
        task = asyncio.create_task(sensors.run())
        await asyncio.wait_for(sensors.connected.wait(), 10)
        async with aiomqtt.Client("127.0.0.1", broker.port, identifier="device-1") as device:
            await device.subscribe("swiftchain-edge/errors/#", qos=1)
            await device.publish("sensors/parking/p1", json.dumps(reading(3)["payload"]), qos=1)
            await device.publish("sensors/parking/p1", json.dumps(reading(4)), qos=1)
            await device.publish("sensors/parking/p1", b"{nope", qos=1)
            await device.publish("sensors/parking/p1", json.dumps({"capacity": 1}), qos=1)
            errors = []
            async with asyncio.timeout(10):
                async for message in device.messages:
                    errors.append(json.loads(message.payload))  # type: ignore[arg-type]
                    if len(errors) == 2:
                        break
        await wait_until(lambda: outbox_depth(tmp_path / "outbox.db") == 2, 10)
        task.cancel()
    assert {e["error"] for e in errors} == {"malformed_json", "invalid_payload"}
    assert all(e["topic"] == "sensors/parking/p1" for e in errors)
