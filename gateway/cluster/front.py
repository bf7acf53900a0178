"""A front end's view of the log and its way to the sequencer.

:class:`FrontLedger` is what ``hub.ledger`` is in a front end: a reader of the ledger file,
the registry and the latest head as the sequencer announced them; no writer.
:class:`RemoteSequencer` is what ``hub.sequencer`` is: the same calls as
:class:`gateway.ingest.sequencer.Sequencer` (``submit``, ``append``, ``change_registry``),
carried over the channel. :class:`Follower` applies the state entries of every commit
(registry, consent, client, access, erasure) to this process's state, in log order, so a
front end decides on the same state as the one that made the change.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ledger.checkpoint import NoteVerifier
from ledger.entries import RegistryEntry
from ledger.errors import StorageError, StoreError
from ledger.sealed import PERSON, Opening
from ledger.store import Blinded, Entry, LedgerReader, NewEntry
from ledger.suite import Suite

from ..errors import ConfigError
from ..hub_ledger import LOG_KEY_META, open_key_store
from ..ingest.checkpoints import SignedHead
from ..ingest.checks import Verified
from ..ingest.receipts import ReceiptQueue, receipt_wire
from ..ingest.sequencer import Pending
from ..metrics import HubMetrics
from ..registry.state import Registry
from ..settings import HubSettings
from .errors import ChannelError, PlanConflict
from .wire import (
    Ack,
    Done,
    Failed,
    FrameWriter,
    Head,
    Hello,
    Job,
    Receipts,
    RecordIn,
    Records,
    Sync,
    ToSequencer,
    blind_in,
    entries_back,
    entry_in,
    read_to_front,
)

log = logging.getLogger("swiftchain.hub.front")

#: (index, the leaf as its readers know it, whether its opening is stored blinded).
Apply = Callable[[int, dict[str, Any], bool], None]


@dataclass
class HeadView:
    """The latest checkpoint as the sequencer announced it (``Checkpointer``'s read side)."""

    latest: SignedHead | None = None
    persisted_size: int = -1


@dataclass
class FrontLedger:
    """``hub.ledger`` in a front end."""

    settings: HubSettings
    reader: LedgerReader
    registry: Registry
    verifier: NoteVerifier
    checkpoints: HeadView = field(default_factory=HeadView)
    committed_size: int = 0
    write_failure: str | None = None

    @property
    def suite(self) -> Suite:
        """The log's crypto suite (its ledger's; its log key's too, checked at open)."""
        return self.reader.suite

    def size(self) -> int:
        return self.committed_size

    def catch_up(self) -> None:
        """Apply the registry entries committed since the replay at open (the ones before
        the sequencer's greeting come in no head); those applied already are skipped."""
        for index, leaf in self.reader.leaves("registry"):
            if index > self.registry.applied:
                self.registry.apply(index, json.loads(leaf))
        self.committed_size = max(self.committed_size, self.reader.size())

    def close(self) -> None:
        self.reader.close()
        if self.reader.keys is not None:
            self.reader.keys.close()


def open_front_ledger(settings: HubSettings) -> FrontLedger:
    """Read the ledger the sequencer writes (it created it before any front end starts),
    with its key store."""
    keys = open_key_store(settings)
    try:
        reader = LedgerReader(settings.ledger_location, keys=keys)
    except BaseException:
        keys.close()
        raise
    try:
        stored = reader.meta(LOG_KEY_META)
        if stored is None:
            raise ConfigError(f"{settings.ledger_name} has no log key: is its sequencer running?")
        verifier = NoteVerifier.parse(stored)
        if verifier.suite is not reader.suite:
            raise ConfigError(
                f"{settings.ledger_name} is an {reader.suite.name} log, but its log key is of"
                f" {verifier.suite.name}: not a ledger a hub made"
            )
        registry = Registry.replay(reader.leaves("registry"), settings.pilots, reader.suite)
    except BaseException:
        reader.close()
        keys.close()
        raise
    return FrontLedger(settings, reader, registry, verifier, committed_size=reader.size())


class Follower:
    """Applies each commit's state entries to the appliers registered per kind."""

    def __init__(self, ledger: FrontLedger, metrics: HubMetrics) -> None:
        self.ledger = ledger
        self.metrics = metrics
        self.appliers: dict[str, list[Apply]] = {}
        self.witnesses: dict[str, Any] | None = None
        self.cosigned: str | None = None
        self.published: str | None = None
        self.published_size = 0
        self.applied = ledger.committed_size

    def on(self, kind: str, apply: Apply) -> None:
        self.appliers.setdefault(kind, []).append(apply)

    def registry_entry(self, index: int, view: dict[str, Any], blinded: bool) -> None:
        self.ledger.registry.apply(index, view)
        self.metrics.registry_changes.inc()

    def head(self, head: Head) -> None:
        ledger = self.ledger
        for s in head.state:
            view = json.loads(s.leaf)
            if s.opening is not None:
                view = _opened(view, s.opening)
            for apply in self.appliers.get(s.kind, ()):
                try:
                    apply(s.index, view, s.blinded)
                except Exception:
                    # The log is the truth and this process no longer matches it: stop (its
                    # supervisor restarts it, and a restart replays the log).
                    log.exception("applying entry %d (%s) failed; stopping", s.index, s.kind)
                    os.kill(os.getpid(), signal.SIGTERM)
        if head.note and (
            ledger.checkpoints.latest is None or head.head_size > ledger.checkpoints.latest.size
        ):
            ledger.checkpoints.latest = SignedHead(head.head_size, head.root, head.note)
            self.metrics.checkpoint_signed(head.head_size)
        ledger.checkpoints.persisted_size = max(
            ledger.checkpoints.persisted_size, head.persisted_size
        )
        ledger.committed_size = max(ledger.committed_size, head.size)
        ledger.write_failure = head.write_failure
        self.cosigned = head.cosigned
        self.witnesses = head.witnesses
        if head.published is not None and head.published_size >= self.published_size:
            self.published, self.published_size = head.published, head.published_size
        self.applied = max(self.applied, head.size)


def _opened(leaf: dict[str, Any], raw: bytes) -> dict[str, Any]:
    """The leaf with its opening's fields in place of ``person``, as
    :func:`ledger.sealed.opened` makes it, without checking the opening against the
    commitment: it comes from the sequencer, which committed both (the check would cost
    a canonical encoding and a hash per entry, in every front end)."""
    view = dict(leaf)
    if view.pop(PERSON, None) is None:
        return view
    opening = Opening.decode(raw)
    for name, value in opening.fields.items():
        view.setdefault(name, value)
    return view


class WitnessView:
    """``hub.witnessing`` in a front end: the status the sequencer's witness rounds report."""

    def __init__(self, follower: Follower) -> None:
        self.follower = follower

    def status(self, log_size: int) -> dict[str, Any]:
        return dict(self.follower.witnesses or {})

    @property
    def published(self) -> str | None:
        return self.follower.published

    @property
    def published_size(self) -> int:
        return self.follower.published_size

    def quorum_checkpoint(self) -> str | None:
        return self.follower.cosigned


class RemoteSequencer:
    """``hub.sequencer`` in a front end."""

    def __init__(
        self,
        settings: HubSettings,
        worker: int,
        secret: str,
        follower: Follower,
        receipts: ReceiptQueue,
    ) -> None:
        self.settings = settings
        self.worker = worker
        self.secret = secret
        self.follower = follower
        self.receipts = receipts
        self.cosigned: Callable[[], str | None] = lambda: follower.cosigned
        self._reader: asyncio.StreamReader | None = None
        self._jobs: dict[int, asyncio.Future[list[Entry]]] = {}
        self._ids = itertools.count(1)
        self._records: list[RecordIn] = []
        self._out: FrameWriter | None = None
        self._sent = 0
        self._answered = 0
        self._all_answered = asyncio.Event()
        self._syncs: list[asyncio.Future[int]] = []
        self._closing = False
        self._first: Head | None = None
        #: Set by the first head of a sequencer that holds the log (not a standby's): the
        #: front end then ingests and takes writes (gateway/cluster/standby.py).
        self.active = asyncio.Event()

    # -- connecting -------------------------------------------------------------------------
    async def connect(self) -> None:
        """Reach the sequencer (its supervisor started it first; bounded wait)."""
        path = str(self.settings.sequencer_path)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while True:
            try:
                self._reader, writer = await asyncio.open_unix_connection(path)
                self._out = FrameWriter(writer, before=self._flush_records)
                break
            except OSError as exc:
                if loop.time() > deadline:
                    raise ChannelError(f"cannot reach the sequencer at {path}: {exc}") from None
                await asyncio.sleep(0.1)
        self._send(Hello(self.worker, os.getpid(), self.secret))
        first = await read_to_front(self._reader)
        if not isinstance(first, Head):
            raise ChannelError("the sequencer did not answer with its head")
        self._first = first

    def go_live(self) -> None:
        """Once this process replayed the log (state entries it already has are skipped):
        apply the head it was greeted with; ``run`` then follows every commit."""
        if self._first is not None:
            self._took_head(self._first)
            self._first = None

    # -- the Sequencer calls ----------------------------------------------------------------
    @property
    def write_failure(self) -> str | None:
        return self.follower.ledger.write_failure

    @property
    def healthy(self) -> bool:
        return self.write_failure is None

    @property
    def in_flight(self) -> int:
        return self._sent - self._answered

    def submit(self, v: Verified) -> None:
        p = Pending.of(v, self.receipts)
        self._records.append(RecordIn(p.topic, entry_in(p.entry)))
        self._sent += 1
        if self._out is not None:
            self._out.schedule()

    def _flush_records(self) -> None:
        if self._records and self._out is not None:
            records, self._records = self._records, []
            self._out.send(Records(records))

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
    ) -> list[Entry]:
        """``guard``: what the entries were decided on (``consent:<pilot>:<id>``); if
        another front end changed it since this one last heard, PlanConflict. ``based_on``:
        the log size the decision was made on (by default, what this front end has now;
        a caller that awaited anything since it decided must pass the size it decided on)."""
        job = Job(
            0,
            False,
            [entry_in(e) for e in entries],
            erase=list(erase),
            forget=list(forget),
            blind=[blind_in(b) for b in blind],
            based_on=self.follower.applied if based_on is None else based_on,
            guard=list(guard),
            erase_scopes=list(erase_scopes),
            retire=list(retire),
        )
        done = await self._run(job)
        if committed is not None:
            try:
                committed(done)
            except Exception:
                log.exception("applying committed hub entries failed")
        return done

    async def change_registry(self, entries: Sequence[RegistryEntry]) -> list[Entry]:
        job = Job(
            0,
            True,
            [entry_in(NewEntry("registry", e.leaf())) for e in entries],
            based_on=self.follower.ledger.registry.applied + 1,
        )
        return await self._run(job)

    async def _run(self, job: Job) -> list[Entry]:
        if self._closing or self._out is None:
            raise StorageError("the hub is shutting down")
        job.job = next(self._ids)
        future: asyncio.Future[list[Entry]] = asyncio.get_running_loop().create_future()
        self._jobs[job.job] = future
        self._send(job)
        return await future

    async def sync(self) -> None:
        """A read barrier: until this process applied everything committed so far."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._syncs.append(future)
        self._send(Sync())
        await future

    async def persist_checkpoint(self) -> SignedHead | None:
        """The sequencer stores checkpoints; nothing to do here."""
        return None

    # -- the channel ------------------------------------------------------------------------
    def _send(self, message: ToSequencer) -> None:
        """Queue a frame, after the records batched so far; those of a turn leave in one
        write (:class:`FrameWriter`)."""
        if self._out is None:
            return
        if message.__class__ is not Records:
            self._flush_records()
        self._out.send(message)

    async def run(self) -> None:
        """Read the sequencer's answers until the channel closes; then stop this process."""
        assert self._reader is not None
        try:
            while True:
                message = await read_to_front(self._reader)
                if message is None:
                    raise ChannelError("the sequencer closed the channel")
                if isinstance(message, Receipts):
                    self._receipts(message)
                elif isinstance(message, Head):
                    self._took_head(message)
                elif isinstance(message, Done):
                    future = self._jobs.pop(message.job, None)
                    if future is not None and not future.done():
                        future.set_result(entries_back(message.entries))
                elif isinstance(message, Failed):
                    future = self._jobs.pop(message.job, None)
                    if future is not None and not future.done():
                        future.set_exception(_failure(message))
        except (ChannelError, ConnectionError) as exc:
            self._lost(str(exc))
            if not self._closing:
                log.error("lost the sequencer (%s); stopping this front end", exc)
                os.kill(os.getpid(), signal.SIGTERM)

    def _took_head(self, head: Head) -> None:
        self.follower.head(head)
        if not head.standby and not self.active.is_set():
            self.active.set()
        if head.ack:
            self._send(Ack(head.size))
        syncs, self._syncs = self._syncs, []
        for future in syncs:
            if not future.done():
                future.set_result(head.size)

    def _receipts(self, message: Receipts) -> None:
        checkpoint, cosigned = message.checkpoint, message.cosigned
        send = self.receipts.send_wire
        for topic, status, record_id, index, leaf_hash, reason, detail in message.items:
            if status == "rejected":
                payload = receipt_wire(record_id, status, reason=reason, detail=detail)
            else:
                payload = receipt_wire(record_id, status, index, leaf_hash, checkpoint, cosigned)
            send(topic, status, payload)
        self._answered += len(message.items)
        if self.in_flight <= 0:
            self._all_answered.set()

    def _lost(self, why: str) -> None:
        for future in self._jobs.values():
            if not future.done():
                future.set_exception(StorageError(f"lost the sequencer: {why}"))
        self._jobs.clear()
        for sync in self._syncs:
            if not sync.done():
                sync.set_exception(StorageError(f"lost the sequencer: {why}"))
        self._syncs.clear()

    def close(self) -> None:
        self._closing = True
        if self._out is not None:
            self._out.flush()
            self._out.close()
            self._out = None

    async def drain(self, seconds: float) -> None:
        """Until every record sent has its answer (bounded)."""
        self._flush_records()
        if self.in_flight <= 0:
            return
        self._all_answered.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._all_answered.wait()


def _failure(message: Failed) -> Exception:
    if message.conflict:
        return PlanConflict(message.error)
    return StorageError(message.error) if message.retry else StoreError(message.error)
