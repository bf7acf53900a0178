from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway.registry.state import Registry
from ledger.keys import Ed25519PrivateKey, generate_key
from tests.support.registry import registry_with


@pytest.fixture
def source_key() -> Ed25519PrivateKey:
    return generate_key()


@pytest.fixture
def registry(source_key: Ed25519PrivateKey) -> Iterator[Registry]:
    """city-air/station-1 (may publish city.air-quality) with ``source_key``, valid from 2026."""
    r = registry_with(source_key)
    yield r
