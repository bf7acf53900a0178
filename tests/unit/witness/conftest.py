from __future__ import annotations

import pytest

from ledger.suite import Suite, suite_named


@pytest.fixture(params=["ed25519-sha256", "sm2-sm3"])
def suite(request: pytest.FixtureRequest) -> Suite:
    """The log's crypto suite, for a test that holds on both."""
    return suite_named(request.param)
