"""Applying planned registry entries to a registry in memory, as the hub does after commit."""

from __future__ import annotations

import json

from gateway.registry.state import Registry


def apply_all(registry: Registry, entries: list) -> None:  # type: ignore[type-arg]
    start = registry.applied + 1
    for i, e in enumerate(entries):
        registry.apply(start + i, json.loads(e.leaf()))
