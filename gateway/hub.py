"""One hub: every part built from settings and wired together. The application's cleanup
contexts (``app.py``) start and stop the parts in order; tests and the CLI use the same."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from ledger.entries import RegistryEntry
from ledger.store import Entry

from .alliance.setup import open_witnessing
from .alliance.witnessing import Witnessing
from .errors import NotReady
from .hub_ledger import HubLedger, open_ledger
from .ingest.checks import ConsentCheck, no_consent_check
from .ingest.deadletters import DeadLetters
from .ingest.intake import Intake
from .ingest.link import MqttLink
from .ingest.receipts import ReceiptQueue
from .ingest.sequencer import Sequencer
from .ingest.validity import TimeRules
from .metrics import HubMetrics
from .registry.state import Registry
from .settings import HubSettings

log = logging.getLogger("swiftchain.hub")

Plan = Callable[[Registry], list[RegistryEntry]]


@dataclass
class Drain:
    """The stop's one budget (``drain_timeout_s``, from the signal on): HTTP, the intake,
    the last commits and the receipts each take what the steps before them left."""

    budget_s: float
    began: float = field(default_factory=time.monotonic)
    #: A step ran out of time.
    cut: bool = False
    #: Records taken but not receipted when the broker link closed (their agents resend).
    unreceipted: int = 0

    def left(self) -> float:
        return max(0.0, self.began + self.budget_s - time.monotonic())

    def elapsed(self) -> float:
        return time.monotonic() - self.began

    def outcome(self) -> str:
        if self.cut or self.unreceipted:
            return (
                f"drain cut at {self.elapsed():.1f} s with {self.unreceipted} records"
                " unreceipted, they will be resent"
            )
        return f"drained in {self.elapsed():.1f} s"


class Hub:
    def __init__(
        self,
        settings: HubSettings,
        consent_check: ConsentCheck = no_consent_check,
        late_delivery: Mapping[str, timedelta] | None = None,
    ):
        """``late_delivery``: each pilot's late-delivery window, from its definition."""
        self.settings = settings
        self.consent_check = consent_check
        self.time_rules = TimeRules(
            max_clock_skew=timedelta(seconds=settings.max_clock_skew_s),
            late_delivery=dict(late_delivery or {}),
        )
        self.metrics = HubMetrics()
        self.receipts = ReceiptQueue(self.metrics)
        self.link = MqttLink(settings, self.receipts, self.metrics)
        self._ledger: HubLedger | None = None
        self._sequencer: Sequencer | None = None
        self._intake: Intake | None = None
        #: The alliance's witnesses, when the settings name a trust policy.
        self.witnessing: Witnessing | None = None
        self._dead_letters: DeadLetters | None = None
        self._registry_lock = asyncio.Lock()
        self.drain: Drain | None = None

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
            rules=self.time_rules,
        )
        self.witnessing = open_witnessing(s, self._ledger, self.metrics)
        if self.witnessing is not None:
            self._sequencer.cosigned = self.witnessing.quorum_checkpoint
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

    def begin_drain(self) -> Drain:
        """Start the stop's clock (once; every step of the stop calls it)."""
        if self.drain is None:
            self.drain = Drain(self.settings.drain_timeout_s)
            log.info("draining for shutdown, for at most %.1f s", self.settings.drain_timeout_s)
        return self.drain

    @property
    def draining(self) -> bool:
        return self.drain is not None

    def unreceipted(self) -> int:
        """Records taken from the broker that have no receipt on its way yet."""
        taken = self._intake.pending if self._intake is not None else 0
        committing = self._sequencer.in_flight if self._sequencer is not None else 0
        return taken + committing + self.link.unsent()

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
