from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.broker import Mosquitto
from tests.support.city import ORIGIN, seed_consents_and_access
from tests.support.hub import ThreadHub, thread_hub


@pytest.fixture
def seeded() -> dict[str, int]:
    """Filled in by ``seeded_hub``: what the seeded consent and access entries add up to."""
    return {}


@pytest.fixture
def seeded_hub(
    tmp_path: Path, hub_broker: Mosquitto, seeded: dict[str, int]
) -> Iterator[ThreadHub]:
    """A running hub whose ledger already holds consent and access entries."""
    seeded.update(seed_consents_and_access(tmp_path / "hub" / "ledger.db"))
    with thread_hub(tmp_path / "hub", hub_broker.url, origin=ORIGIN, batch_max_ms=2) as hub:
        yield hub
