"""Fixtures of the hub's integration tests (the shared ones are in ``tests/conftest.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.suite import Suite
from tests.support.broker import Mosquitto
from tests.support.hub import ThreadHub, thread_hub


@pytest.fixture
def suite_hub(tmp_path: Path, hub_broker: Mosquitto, suite: Suite) -> Iterator[ThreadHub]:
    """``running_hub`` on each crypto suite in turn: its hub key, and so its log, of
    ``suite``; ``register_source`` and ``rotate_key`` make source keys of the same kind."""
    with thread_hub(tmp_path / "hub", hub_broker.url, suite=suite, batch_max_ms=2) as hub:
        yield hub
