"""One hub: every part built from settings and wired together. The application's cleanup
contexts (``app.py``) start and stop the parts in order; tests and the CLI use the same."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from ledger.entries import RegistryEntry
from ledger.store import Entry

from .errors import NotReady
from .hub_ledger import HubLedger, open_ledger
from .ingest.checks import ConsentCheck, no_consent_check
from .ingest.deadletters import DeadLetters
from .ingest.intake import Intake
from .ingest.link import MqttLink
from .ingest.receipts import ReceiptQueue
from .ingest.sequencer import Sequencer
from .metrics import HubMetrics
from .registry.state import Registry
from .settings import HubSettings

log = logging.getLogger("swiftchain.hub")

Plan = Callable[[Registry], list[RegistryEntry]]


class Hub:
    def __init__(self, settings: HubSettings, consent_check: ConsentCheck = no_consent_check):
        self.settings = settings
        self.consent_check = consent_check
        self.metrics = HubMetrics()
        self.receipts = ReceiptQueue(self.metrics)
        self.link = MqttLink(settings, self.receipts, self.metrics)
        self._ledger: HubLedger | None = None
        self._sequencer: Sequencer | None = None
        self._intake: Intake | None = None
        self._dead_letters: DeadLetters | None = None
        self._registry_lock = asyncio.Lock()
        self.draining = False

    # -- lifecycle (called by the cleanup contexts) ---------------------------------------
    def open(self) -> None:
        s = self.settings
        self._ledger = open_ledger(s)
        self._dead_letters = DeadLetters(s.dead_letters, s.dead_letter_max)
        self._sequencer = Sequencer(
            self._ledger,
            self.receipts,
            self.metrics,
            max_records=s.batch_max_records,
            max_wait_ms=s.batch_max_ms,
        )
        self._intake = Intake(
            self._ledger.registry,
            self._sequencer,
            self.receipts,
            self._dead_letters,
            self.metrics,
            max_bytes=s.max_record_bytes,
            workers=s.verify_workers,
            chunk=s.verify_chunk,
            consent_check=self.consent_check,
        )
        head = self._ledger.checkpoints.latest
        if head is not None:
            self.metrics.checkpoint_signed(head.size)
        log.info(
            "ledger %s open: %d entries, %d sources",
            s.db_path,
            self._ledger.writer.size(),
            len(self._ledger.registry.sources),
        )

    def close(self) -> None:
        if self._intake is not None:
            self._intake.shutdown()
        if self._sequencer is not None:
            self._sequencer.shutdown()
        if self._dead_letters is not None:
            self._dead_letters.write(self._dead_letters.take())
            self._dead_letters.close()
        if self._ledger is not None:
            self._ledger.close()

    # -- parts ----------------------------------------------------------------------------
    @property
    def ledger(self) -> HubLedger:
        if self._ledger is None:
            raise NotReady("the ledger is not open yet")
        return self._ledger

    @property
    def sequencer(self) -> Sequencer:
        if self._sequencer is None:
            raise NotReady("the sequencer is not running yet")
        return self._sequencer

    @property
    def intake(self) -> Intake:
        if self._intake is None:
            raise NotReady("the intake is not running yet")
        return self._intake

    @property
    def dead_letters(self) -> DeadLetters:
        if self._dead_letters is None:
            raise NotReady("the dead-letter table is not open yet")
        return self._dead_letters

    @property
    def registry(self) -> Registry:
        return self.ledger.registry

    def not_ready_because(self) -> str | None:
        if self.draining:
            return "draining for shutdown"
        if self._ledger is None or self._sequencer is None:
            return "ledger not open"
        if self._sequencer.write_failure is not None:
            return f"the ledger cannot be written: {self._sequencer.write_failure}"
        if not self.link.connected.is_set():
            return "not connected to the MQTT broker"
        return None

    async def change_registry(self, plan: Plan) -> list[Entry]:
        """Plan a change against the current registry and commit it; one at a time, so
        two changes never plan against the same state."""
        async with self._registry_lock:
            entries = plan(self.registry)
            return await self.sequencer.change_registry(entries)
