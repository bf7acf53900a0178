"""What an operator sees on ``/metrics`` during an incident: the broker going away and
coming back, rejections by reason, commit latency, and the checkpoint's age; on each store."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger.keys import load_private_key
from tests.support.broker import Mosquitto
from tests.support.hub import MqttPeer, ThreadHub, thread_hub
from tests.support.records import PILOT, SOURCE, TOPIC, TYPE, make


def metric(hub: ThreadHub, name: str) -> float:
    for line in hub.get_text("/metrics").splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no metric {name}")


def wait_metric(hub: ThreadHub, name: str, value: float, within: float = 20) -> None:
    deadline = time.monotonic() + within
    while metric(hub, name) != value:
        assert time.monotonic() < deadline, f"{name} never became {value}"
        time.sleep(0.1)


@pytest.fixture
def running_hub(
    tmp_path: Path, hub_broker: Mosquitto, store_settings: dict[str, Any]
) -> Iterator[ThreadHub]:
    """The whole hub of ``tests/conftest.py``'s ``running_hub``, on each store."""
    with thread_hub(tmp_path / "hub", hub_broker.url, batch_max_ms=2, **store_settings) as hub:
        yield hub


async def test_incident_metrics(running_hub: ThreadHub, hub_broker: Mosquitto) -> None:
    key = load_private_key(running_hub.register_source(PILOT, SOURCE, [TYPE])[0])
    async with MqttPeer(running_hub.mqtt_url) as peer:
        assert (await peer.send(make(key, 1)))["status"] == "accepted"
        await peer.publish(TOPIC, b"not json")
        await peer.wait_for(2)
    text = running_hub.get_text("/metrics")
    assert 'swiftchain_records_rejected_total{reason="malformed_json"} 1.0' in text
    assert metric(running_hub, "swiftchain_commit_seconds_count") >= 1
    assert 'swiftchain_commit_seconds_bucket{le="0.01"}' in text
    # The checkpoint was signed just now, and ages while nothing more arrives.
    age = metric(running_hub, "swiftchain_checkpoint_age_seconds")
    assert 0 <= age < 5
    await asyncio.sleep(0.3)
    assert metric(running_hub, "swiftchain_checkpoint_age_seconds") > age
    assert metric(running_hub, "swiftchain_checkpoint_size") == metric(
        running_hub, "swiftchain_log_size"
    )
    # The broker goes away: the hub says so, and says when it is back.
    assert metric(running_hub, "swiftchain_mqtt_connected") == 1
    hub_broker.stop(kill=True)
    wait_metric(running_hub, "swiftchain_mqtt_connected", 0)
    assert running_hub.request("GET", "/readyz")[0] == 503
    hub_broker.start()
    wait_metric(running_hub, "swiftchain_mqtt_connected", 1)
    assert metric(running_hub, "swiftchain_mqtt_errors_total") >= 1
    assert metric(running_hub, "swiftchain_mqtt_connects_total") >= 2
