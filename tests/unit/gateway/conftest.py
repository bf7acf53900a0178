from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway.registry.changes import plan_org_add, plan_source_add
from gateway.registry.state import Registry
from ledger.keys import Ed25519PrivateKey, generate_key, public_key_b64
from tests.support.registry import apply_all


@pytest.fixture
def source_key() -> Ed25519PrivateKey:
    return generate_key()


@pytest.fixture
def registry(source_key: Ed25519PrivateKey) -> Iterator[Registry]:
    """city-air/station-1 (may publish city.air-quality) with ``source_key``, valid from 2026."""
    r = Registry()
    apply_all(r, plan_org_add(r, "city", name="City", actor="test"))
    apply_all(
        r,
        plan_source_add(
            r,
            pilot="city-air",
            source="station-1",
            org="city",
            types=["city.air-quality"],
            public_key=public_key_b64(source_key.public_key()),
            actor="test",
            valid_from="2026-01-01T00:00:00Z",
        ),
    )
    yield r
