from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.broker import Mosquitto


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
