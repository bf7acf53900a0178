"""A standby hub's sequencer: the log on PostgreSQL is another hub's to write; this one
follows it for its own front ends and takes the lease over once that hub is gone.

While it waits:

- it reads what the active hub commits, from the database, every ``POLL_S``, and sends its
  front ends the same :class:`~.wire.Head` an active sequencer sends after a commit (the
  state entries with their openings), marked ``standby``: front ends keep their registry,
  consents and clients current, so that a takeover needs no replay;
- its front ends serve the public log (checkpoints, entries, proofs, the registry) and
  refuse everything else with 503: no MQTT ingest (records go to the active hub's front
  ends), no writes, and no reads of a person's data (this hub's view of a withdrawal lags
  the active hub's by up to ``POLL_S``, and such a read must not);
- it tries the lease (:class:`ledger.lease.Lease`) every ``POLL_S``; once it holds it, the
  sequencer process opens the writer and continues the tree from what is durable.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ledger.errors import StorageError, StoreError
from ledger.lease import Lease
from ledger.store import MAX_ENTRIES_PAGE, LedgerReader

from ..hub_ledger import open_key_store
from ..ingest.checkpoints import SignedHead
from ..settings import HubSettings
from .wire import Head, StateEntry

log = logging.getLogger("swiftchain.hub.standby")

#: How often a standby reads the log's new entries and tries the lease.
POLL_S = 0.25
#: Entry kinds front ends keep state from (as :data:`.channel.STATE_KINDS`).
_STATE_KINDS = frozenset({"registry", "consent", "client", "access", "erasure"})


class Standby:
    """The log as a standby follows it (its sequencer's side)."""

    def __init__(self, settings: HubSettings) -> None:
        self.settings = settings
        self.reader: LedgerReader | None = None
        self.size = 0
        self.latest: SignedHead | None = None
        self.cosigned: str | None = None

    def _open(self) -> LedgerReader | None:
        if self.reader is None:
            # The openings of the entries it passes on are sealed: with the key store.
            keys = open_key_store(self.settings)
            try:
                self.reader = LedgerReader(self.settings.ledger_location, keys=keys)
            except StoreError:
                keys.close()
                return None  # no ledger yet: the active hub makes it
            self.size = 0
        return self.reader

    def poll(self) -> list[StateEntry] | None:
        """The state entries committed since the last poll, or None if nothing changed.
        Blocking: run it in a thread."""
        reader = self._open()
        if reader is None:
            return None
        size = reader.size()
        stored = reader.latest_checkpoint()
        latest = (
            SignedHead(stored.size, bytes(stored.root), stored.note) if stored is not None else None
        )
        cosigned = reader.quorum_checkpoint()
        if size <= self.size and latest == self.latest and cosigned == self.cosigned:
            return None
        state: list[StateEntry] = []
        start = self.size
        while start < size:
            end = min(size, start + MAX_ENTRIES_PAGE)
            entries = [e for e in reader.entries(start, end) if e.kind in _STATE_KINDS]
            openings = reader.openings([e.index for e in entries])
            blinded = reader.blinded_among([e.index for e in entries])
            for e in entries:
                opening = openings.get(e.index)
                state.append(
                    StateEntry(
                        e.index,
                        e.kind,
                        e.leaf,
                        opening.encode() if opening is not None else None,
                        e.index in blinded,
                    )
                )
            start = end
        self.size = max(self.size, size)
        if latest is not None and (self.latest is None or latest.size >= self.latest.size):
            self.latest = latest
        self.cosigned = cosigned
        return state

    def head(self, state: list[StateEntry], ack: bool) -> Head:
        latest = self.latest
        return Head(
            size=self.size,
            head_size=latest.size if latest is not None else 0,
            root=latest.root if latest is not None else b"",
            note=latest.note if latest is not None else "",
            persisted_size=latest.size if latest is not None else -1,
            cosigned=self.cosigned,
            write_failure=None,
            witnesses=None,
            state=state,
            ack=False,
            standby=True,
        )

    async def wait_for_lease(self, lease: Lease, broadcast: Any) -> None:
        """Follow the log and try the lease until it is taken; ``broadcast(state)`` sends
        each poll's news to the front ends."""
        told = False
        while True:
            try:
                state = await asyncio.to_thread(self.poll)
                if state is not None:
                    broadcast(state)
                if await asyncio.to_thread(lease.try_acquire, []):
                    return
                if not told:
                    holder = (await asyncio.to_thread(lease.state)).holder
                    log.info("standby: the log is held by %s; following it", holder)
                    told = True
            except StorageError as exc:
                log.warning("standby: the database does not answer (%s); retrying", exc)
            await asyncio.sleep(POLL_S)

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
            if self.reader.keys is not None:
                self.reader.keys.close()
            self.reader = None
