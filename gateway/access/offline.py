"""Client changes with no hub running: a revocation appended straight to the ledger file
under the writer lock (a running hub takes it through its admin API instead), and the
clients as the access store has them. Either way a revocation is a ``client`` entry on the
log, and the access store follows it."""

from __future__ import annotations

import json
from typing import Any

from ledger.envelope import utc_now
from ledger.store import NewEntry

from ..hub_ledger import open_ledger
from ..settings import HubSettings
from .db import AccessDb, ClientRow
from .revocation import ClientRevoke, plan_revocation, replay_revocations


def revoke_in_files(settings: HubSettings, change: ClientRevoke, actor: str) -> dict[str, Any]:
    """Append the revocation to the ledger file, then record it in the access store (fails
    with HubRunningError if a hub holds the ledger); the committed entry."""
    ledger = open_ledger(settings)
    try:
        db = AccessDb(settings.access_location())
        try:
            replay_revocations(db, ledger.reader.leaves("client"))
            entry = plan_revocation(db.client_row(change.client_id), change, actor, utc_now())
            (stored,) = ledger.writer.append([NewEntry("client", entry.leaf())])
            head = ledger.checkpoints.sign(ledger.writer.size(), ledger.writer.current_root())
            ledger.writer.add_checkpoint(head.size, head.root, head.note)
            # After the entry: were this lost, the next hub start rebuilds it from the log.
            db.record_revocation(entry, stored.index)
        finally:
            db.close()
    finally:
        ledger.close()
    return {
        "index": stored.index,
        "leaf_hash": bytes(stored.leaf_hash).hex(),
        "entry": json.loads(stored.leaf),
    }


def read_clients(settings: HubSettings) -> list[ClientRow]:
    """Every registered client with its state, as the access store has it (works while a
    hub runs)."""
    db = AccessDb(settings.access_location())
    try:
        return db.clients()
    finally:
        db.close()
