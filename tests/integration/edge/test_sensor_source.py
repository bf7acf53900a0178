"""The MQTT sensor source on a real Mosquitto: stored records, errors back to the sender,
PUBACKs in the order the messages arrived, and redelivery of what could not be stored."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiomqtt

from edge.intake import Intake
from edge.outbox import Outbox
from edge.settings import BackoffSettings, BrokerSettings, SensorTopic
from edge.sources.sensors import SensorSource
from tests.support.broker import Mosquitto
from tests.support.edge import outbox_depth, reading, running_intake, wait_until

SENSORS_ID = "edge-test-sensors"


@asynccontextmanager
async def running_sensors(
    intake: Intake, broker: Mosquitto, topic: str, error_topic: str = "swiftchain-edge/errors"
) -> AsyncIterator[SensorSource]:
    sensors = SensorSource(
        intake,
        broker=BrokerSettings(url=broker.url),
        client_id=SENSORS_ID,
        topics=[SensorTopic(topic=topic, type="city.parking")],
        error_topic=error_topic,
        backoff=BackoffSettings(initial=0.05, maximum=0.2),
    )
    task = asyncio.create_task(sensors.run())
    try:
        await asyncio.wait_for(sensors.connected.wait(), 10)
        yield sensors
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass


async def test_sensor_messages_are_stored_and_bad_ones_answered(tmp_path: Path, broker) -> None:
    async with (
        running_intake(tmp_path) as intake,
        running_sensors(intake, broker, "sensors/parking/+"),
        aiomqtt.Client("127.0.0.1", broker.port, identifier="device-1") as device,
    ):
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
    assert {e["error"] for e in errors} == {"malformed_json", "invalid_payload"}
    assert all(e["topic"] == "sensors/parking/p1" for e in errors)


# -- acknowledgements, read from the broker's own log ---------------------------------------

PUBLISH = re.compile(rf"Sending PUBLISH to {SENSORS_ID} \(d\d, q1, r\d, m(\d+),")
PUBACK = re.compile(rf"Received PUBACK from {SENSORS_ID} \(Mid: (\d+)")


def delivered_and_acked(broker: Mosquitto) -> tuple[list[int], list[int]]:
    """Packet ids of the QoS 1 messages the broker sent the source, and of its PUBACKs,
    each in the order the broker logged them."""
    text = (broker.workdir / "mosquitto.log").read_text(errors="replace")
    return [int(m) for m in PUBLISH.findall(text)], [int(m) for m in PUBACK.findall(text)]


def logging_broker(tmp_path: Path) -> Mosquitto:
    workdir = tmp_path / "logging-mosquitto"
    workdir.mkdir()
    return Mosquitto(workdir, extra_config="log_type all\nlog_dest stderr\n")


def parking(i: int) -> dict[str, Any]:
    return {**reading(i % 10), "payload": {**reading(i % 10)["payload"], "facility": f"p-{i}"}}


async def test_pubacks_follow_the_arrival_order_whatever_order_the_stores_finish(
    tmp_path: Path,
) -> None:
    """MQTT-4.6.0-2. A message of 1000 readings is validated on a worker thread, so the
    single reading after it is stored first; its PUBACK must still wait. The source also
    hears its own error answers (they are under its topic filter): those are acknowledged
    in their turn too, or every later PUBACK would wait for ever."""
    broker = logging_broker(tmp_path)
    broker.start()
    try:
        async with (
            running_intake(tmp_path) as intake,
            running_sensors(intake, broker, "sensors/#", error_topic="sensors/errors"),
            aiomqtt.Client("127.0.0.1", broker.port, identifier="device-1") as device,
        ):
            await device.publish("sensors/p1", json.dumps([parking(i) for i in range(1000)]), 1)
            await device.publish("sensors/p2", json.dumps(parking(1000)), qos=1)
            await device.publish("sensors/p3", b"{nope", qos=1)
            await device.publish("sensors/p4", json.dumps(parking(1001)), qos=1)

            def all_acked() -> bool:
                delivered, acked = delivered_and_acked(broker)
                return len(delivered) == 5 and len(acked) == 5

            await wait_until(lambda: intake.stored_total == 1002, 30)
            await wait_until(all_acked, 10)
    finally:
        broker.stop()
    delivered, acked = delivered_and_acked(broker)
    assert acked == delivered  # the four messages and the echoed error answer, in order


# -- a reading whose store fails ------------------------------------------------------------


def fill_disk_quota(outbox: Outbox) -> None:
    """A quota at the outbox's current size: the next page it needs cannot be had."""
    pages = outbox.conn.execute("PRAGMA page_count").fetchone()[0]
    outbox.conn.execute(f"PRAGMA max_page_count = {pages}")


def lift_disk_quota(outbox: Outbox) -> None:
    outbox.conn.execute("PRAGMA max_page_count = 1073741823")


def stored_facilities(outbox: Outbox) -> list[str]:
    records = outbox.pending_after(0, 1000)
    return [json.loads(r.wire)["body"]["payload"]["facility"] for r in records]


async def test_a_reading_that_cannot_be_stored_is_delivered_again_and_stored_once(
    tmp_path: Path, broker
) -> None:
    async with (
        running_intake(tmp_path) as intake,
        running_sensors(intake, broker, "sensors/parking/+") as sensors,
        aiomqtt.Client("127.0.0.1", broker.port, identifier="device-1") as device,
    ):
        await intake.outbox.call(fill_disk_quota)
        sent = 0
        for i in range(200):  # one at a time until the outbox is full (a few at most)
            await device.publish("sensors/parking/p1", json.dumps(parking(i)), qos=1)
            sent += 1
            await wait_until(lambda n=sent: intake.stored_total == n or sensors.unstored > 0, 10)
            if sensors.unstored:
                break
        assert intake.stored_total == sent - 1
        # Not acknowledged, so the broker delivers it again after each reconnect; the
        # disk is still full, so each delivery fails again.
        await wait_until(lambda: sensors.unstored >= 3 and sensors.connects >= 3, 20)
        assert intake.stored_total == sent - 1
        await intake.outbox.call(lift_disk_quota)
        await wait_until(lambda: intake.stored_total == sent, 20)
        # One more reading, delivered after any (wrong) further copy of the failed one.
        await device.publish("sensors/parking/p1", json.dumps(parking(sent)), qos=1)
        await wait_until(lambda: intake.stored_total >= sent + 1, 10)
        facilities = await intake.outbox.call(stored_facilities)
    assert sorted(facilities) == sorted(f"p-{i}" for i in range(sent + 1))
