from __future__ import annotations

import pytest

from ledger.suite import ED25519_SHA256, SM2_SM3, Suite
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


@pytest.fixture(params=[ED25519_SHA256, SM2_SM3], ids=[ED25519_SHA256.name, SM2_SM3.name])
def suite(request: pytest.FixtureRequest) -> Suite:
    """Each crypto suite in turn: a test taking it runs once per suite (the project-wide
    fixture's name and params, here for the tests of this folder)."""
    value: Suite = request.param
    return value
