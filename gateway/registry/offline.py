"""Registry changes with no hub running: applied straight to the ledger under the writer
lock (on PostgreSQL, the log's lease; a running hub takes them through its admin API
instead), and the registry as the ledger has it. Either way a change is a ``registry``
entry on the log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ledger.errors import StoreError
from ledger.store import LedgerReader, NewEntry

from ..hub_ledger import open_ledger
from ..settings import HubSettings
from .changes import Change, plan
from .state import Registry


def apply_to_file(settings: HubSettings, change: Change, actor: str) -> list[dict[str, Any]]:
    """Append the change to the ledger file directly (fails if a hub holds the file)."""
    ledger = open_ledger(settings)
    try:
        entries = plan(change.body, ledger.registry, actor)
        stored = ledger.writer.append([NewEntry("registry", e.leaf()) for e in entries])
        head = ledger.checkpoints.sign(ledger.writer.size(), ledger.writer.current_root())
        ledger.writer.add_checkpoint(head.size, head.root, head.note)
        return [
            {"index": e.index, "leaf_hash": bytes(e.leaf_hash).hex(), "entry": json.loads(e.leaf)}
            for e in stored
        ]
    finally:
        ledger.close()


def read_registry(settings: HubSettings) -> Registry:
    """The registry as the ledger file has it (read-only; works while a hub runs)."""
    location = settings.ledger_location
    empty = Registry(configured_pilots=frozenset(settings.pilots))
    if isinstance(location, Path) and not location.exists():
        return empty
    try:
        reader = LedgerReader(location)
    except StoreError:
        if isinstance(location, Path):
            raise
        return empty  # a database without the ledger's tables yet
    with reader:
        return Registry.replay(reader.leaves("registry"), settings.pilots, reader.suite)
