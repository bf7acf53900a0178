"""Fixtures of the access tests (a hub checking consent at ingest, a registered hospital and
auditor), shared with the security suite by importing them into a conftest."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.access import AUDITOR, HOSPITAL, HospitalClient
from tests.support.broker import Mosquitto
from tests.support.hub import ThreadHub, _handle


@pytest.fixture
def access_hub(tmp_path: Path, hub_broker: Mosquitto) -> Iterator[ThreadHub]:
    """A hub that checks consent at ingest (as ``swiftchain hub`` does), on its own broker."""
    hub: ThreadHub = _handle(ThreadHub, tmp_path / "hub", hub_broker.url, batch_max_ms=2)
    hub.start()
    try:
        yield hub
    finally:
        hub.stop()


@pytest.fixture
def hospital(access_hub: ThreadHub) -> HospitalClient:
    return HospitalClient(access_hub, "php-ehr", HOSPITAL).register()


@pytest.fixture
def auditor(access_hub: ThreadHub) -> HospitalClient:
    return HospitalClient(access_hub, "commission-audit", AUDITOR, alg="EdDSA").register(
        ["system/*.rs"]
    )
