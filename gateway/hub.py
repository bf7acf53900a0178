"""One hub: every part built from settings and wired together. The application's cleanup
contexts (``app.py``) start and stop the parts in order; tests and the CLI use the same."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from ledger.checkpoint import NoteVerifier
from ledger.entries import RegistryEntry
from ledger.store import Blinded, Entry, LedgerReader, NewEntry
from ledger.suite import Suite

from .alliance.setup import open_witnessing
from .alliance.witnessing import Witnessing
from .cluster.errors import PlanConflict
from .cluster.front import Follower, RemoteSequencer, WitnessView, open_front_ledger
from .errors import NotReady
from .hub_ledger import HubLedger, open_ledger
from .ingest.checkpoints import SignedHead
from .ingest.checks import ConsentCheck, Verified, no_consent_check
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

#: How often a registry change planned on a registry another front end changed meanwhile
#: is planned again before the admin gets the error.
REPLANS = 5


class Heads(Protocol):
    @property
    def latest(self) -> SignedHead | None: ...
    @property
    def persisted_size(self) -> int: ...


class LedgerPort(Protocol):
    """``hub.ledger``: the sequencer's own (embedded) or a front end's view."""

    @property
    def reader(self) -> LedgerReader: ...
    @property
    def registry(self) -> Registry: ...
    @property
    def verifier(self) -> NoteVerifier: ...
    @property
    def suite(self) -> Suite: ...
    @property
    def checkpoints(self) -> Heads: ...
    def size(self) -> int: ...
    def close(self) -> None: ...


class SequencerPort(Protocol):
    """``hub.sequencer``: the log's writer in this process, or the way to it."""

    @property
    def write_failure(self) -> str | None: ...
    @property
    def healthy(self) -> bool: ...
    @property
    def in_flight(self) -> int: ...
    def submit(self, v: Verified) -> None: ...
    async def append(
        self,
        entries: Sequence[NewEntry],
        *,
        erase: Sequence[int] = (),
        forget: Sequence[int] = (),
        blind: Sequence[Blinded] = (),
        committed: Callable[[list[Entry]], None] | None = None,
        guard: Sequence[str] = (),
        erase_scopes: Sequence[tuple[str, str, str]] = (),
        retire: Sequence[tuple[str, str, str]] = (),
        based_on: int | None = None,
    ) -> list[Entry]: ...
    async def change_registry(self, entries: Sequence[RegistryEntry]) -> list[Entry]: ...
    async def persist_checkpoint(self) -> SignedHead | None: ...


class WitnessPort(Protocol):
    """The witnesses as /readyz, the dashboard and the checkpoint route see them."""

    def status(self, log_size: int) -> dict[str, Any]: ...
    @property
    def published(self) -> str | None: ...
    @property
    def published_size(self) -> int: ...


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
        *,
        front: tuple[int, str] | None = None,
    ):
        """``late_delivery``: each pilot's late-delivery window, from its definition.
        ``front``: (index, the run's secret) when this process is one of the hub's front
        ends (``gateway.cluster``); None: the whole hub in this process."""
        self.settings = settings
        self.front = front
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
        self._front_ledger: LedgerPort | None = None
        self._remote: RemoteSequencer | None = None
        self.follower: Follower | None = None
        self._intake: Intake | None = None
        #: The alliance's witnesses, when the settings name a trust policy.
        self.witnessing: Witnessing | None = None
        self._dead_letters: DeadLetters | None = None
        self._registry_lock = asyncio.Lock()
        self.drain: Drain | None = None

    # -- lifecycle (called by the cleanup contexts) ---------------------------------------
    async def start(self) -> None:
        if self.front is None:
            self.open()
        else:
            await self.open_front()

    async def open_front(self) -> None:
        """Reach the sequencer, then read the log it writes (its greeting first, so no
        commit falls between what this process read and what it is told of)."""
        assert self.front is not None
        s = self.settings
        worker, secret = self.front
        front = open_front_ledger(s)
        follower = Follower(front, self.metrics)
        follower.on("registry", follower.registry_entry)
        remote = RemoteSequencer(s, worker, secret, follower, self.receipts)
        try:
            await remote.connect()
            # Commits between the replay and the greeting are in no head: read them.
            front.catch_up()
        except BaseException:
            front.close()
            raise
        self._front_ledger, self._remote, self.follower = front, remote, follower
        self._dead_letters = DeadLetters(s.dead_letter_location(), s.dead_letter_max)
        self._intake = Intake(
            front.registry,
            remote,
            self.receipts,
            self._dead_letters,
            self.metrics,
            max_bytes=s.max_record_bytes,
            workers=s.verify_workers,
            chunk=s.verify_chunk,
            consent_check=self.consent_check,
            rules=self.time_rules,
        )
        log.info("front end %d: ledger %s at %d entries", worker, s.ledger_name, front.size())

    def open(self) -> None:
        s = self.settings
        # On PostgreSQL a hub in one process waits for the log's lease as long as its holder
        # lives (a standby that serves nothing until it holds it).
        self._ledger = open_ledger(s, wait_s=None)
        self._dead_letters = DeadLetters(s.dead_letter_location(), s.dead_letter_max)
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
            s.ledger_name,
            self._ledger.writer.size(),
            len(self._ledger.registry.sources),
        )

    def close(self) -> None:
        if self._intake is not None:
            self._intake.shutdown()
        if self._sequencer is not None:
            self._sequencer.shutdown()
        if self._remote is not None:
            self._remote.close()
        if self._front_ledger is not None:
            self._front_ledger.close()
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
        committing = self.sequencer.in_flight if self._ledger or self._remote else 0
        return taken + committing + self.link.unsent()

    # -- parts ----------------------------------------------------------------------------
    @property
    def ledger(self) -> LedgerPort:
        if self._front_ledger is not None:
            return self._front_ledger
        if self._ledger is None:
            raise NotReady("the ledger is not open yet")
        return self._ledger

    @property
    def sequencer(self) -> SequencerPort:
        if self._remote is not None:
            return self._remote
        if self._sequencer is None:
            raise NotReady("the sequencer is not running yet")
        return self._sequencer

    @property
    def local_sequencer(self) -> Sequencer | None:
        """The sequencer, when it runs in this process."""
        return self._sequencer

    @property
    def remote(self) -> RemoteSequencer | None:
        """The way to the sequencer, when this process is a front end."""
        return self._remote

    @property
    def standby(self) -> bool:
        """Whether this is a front end of a standby hub (another hub holds the log)."""
        return self._remote is not None and not self._remote.active.is_set()

    @property
    def ingests(self) -> bool:
        """Whether this process takes records from the broker: the embedded hub, and every
        front end when the broker has shared subscriptions (which spread the records over
        them); without them, the first front end only (each would get every record)."""
        return self.front is None or self.settings.mqtt_shared_subscription or self.front[0] == 0

    @property
    def witness_status(self) -> WitnessPort | None:
        """What /readyz and the dashboard say of the witnesses."""
        if self.follower is not None:
            return WitnessView(self.follower) if self.settings.trust_policy else None
        return self.witnessing

    async def sync(self) -> None:
        """A read barrier: this process knows every entry committed before the call."""
        if self._remote is not None:
            await self._remote.sync()

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
        if self._ledger is None and self._front_ledger is None:
            return "ledger not open"
        if self.standby:
            return "standby: another hub holds the log; this one serves the public log only"
        failure = self.sequencer.write_failure
        if failure is not None:
            return f"the ledger cannot be written: {failure}"
        if self.ingests and not self.link.connected.is_set():
            return "not connected to the MQTT broker"
        return None

    async def change_registry(self, plan: Plan) -> list[Entry]:
        """Plan a change against the current registry and commit it; one at a time, so
        two changes never plan against the same state."""
        async with self._registry_lock:
            for attempt in range(REPLANS):
                entries = plan(self.registry)
                try:
                    return await self.sequencer.change_registry(entries)
                except PlanConflict:
                    if attempt == REPLANS - 1:
                        raise
                    await self.sync()
            raise AssertionError("unreachable")
