"""Applying planned registry entries to a registry in memory, as the hub does after commit."""

from __future__ import annotations

import json

from gateway.registry.changes import plan_org_add, plan_source_add
from gateway.registry.state import Registry
from ledger.keys import PrivateKey, public_key_b64
from ledger.suite import DEFAULT_SUITE, Suite


def apply_all(registry: Registry, entries: list) -> None:  # type: ignore[type-arg]
    start = registry.applied + 1
    for i, e in enumerate(entries):
        registry.apply(start + i, json.loads(e.leaf()))


def registry_with(key: PrivateKey, suite: Suite = DEFAULT_SUITE) -> Registry:
    """city-air/station-1 (may publish city.air-quality from 2026) with ``key``, on a log
    of ``suite``."""
    r = Registry(suite=suite)
    apply_all(r, plan_org_add(r, "city", name="City", actor="test"))
    apply_all(
        r,
        plan_source_add(
            r,
            pilot="city-air",
            source="station-1",
            org="city",
            types=["city.air-quality"],
            public_key=public_key_b64(key.public_key()),
            actor="test",
            valid_from="2026-01-01T00:00:00Z",
        ),
    )
    return r
