from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.support.broker import Mosquitto
from tests.support.hub import ThreadHub, thread_hub

# Speed is for bench/, never for a test: hypothesis' 200 ms deadline per example failed
# property tests on a loaded machine, so no deadline and no too-slow health check.
settings.register_profile("swiftchain", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("swiftchain")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A Mosquitto of the test's own on a free loopback port."""
    workdir = tmp_path / "mosquitto"
    workdir.mkdir()
    m = Mosquitto(workdir)
    m.start()
    try:
        yield m
    finally:
        m.stop()


# -- the ledger hub (tests/support/hub.py) ---------------------------------------------------


@pytest.fixture
def hub_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A Mosquitto of the hub test's own (hubs use shared subscriptions: a broker shared with
    other tests' hubs would split their records)."""
    workdir = tmp_path / "hub-mosquitto"
    workdir.mkdir()
    m = Mosquitto(workdir)
    m.start()
    try:
        yield m
    finally:
        m.stop()


@pytest.fixture
def running_hub(tmp_path: Path, hub_broker: Mosquitto) -> Iterator[ThreadHub]:
    """A whole hub (own broker, ledger in tmp_path) serving real HTTP and MQTT on loopback:
    ``.http_url``, ``.mqtt_url``, ``.log_key``, ``.register_source(pilot, source, types)``."""
    with thread_hub(tmp_path / "hub", hub_broker.url, batch_max_ms=2) as hub:
        yield hub
