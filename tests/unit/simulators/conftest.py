from __future__ import annotations

import pytest

from simulators.build import build_scenario, default_scenario
from simulators.scenario import Scenario


@pytest.fixture(scope="session")
def demo() -> Scenario:
    """The demo's default scenario (built once: about a second)."""
    return default_scenario()


@pytest.fixture(scope="session")
def weekend() -> Scenario:
    """A Saturday, small scale, city pilots only."""
    return build_scenario(
        seed=11,
        start="2026-05-09T00:00:00Z",
        hours=24,
        pilots=["traffic-flow", "smart-parking"],
        scale="small",
    )
