"""The sequencer: the log's one writer. It batches verified records (up to N or M ms),
appends each batch in one durable transaction, signs a checkpoint over it, and only then
emits the receipts.

Duplicate ids and reused sequence numbers are decided here, synchronously on the event loop,
against both the committed log and the records already waiting in the batch: no other place
sees every record before it is committed, so no other place can decide them without races.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from ledger.entries import RegistryEntry
from ledger.errors import FencedError, StorageError, StoreError
from ledger.store import Blinded, Entry, NewEntry, RecordColumns

from ..hub_ledger import HubLedger
from ..metrics import HubMetrics
from .checkpoints import SignedHead
from .checks import Verified
from .receipts import Receipt, ReceiptQueue, rejected

log = logging.getLogger("swiftchain.hub.sequencer")

Committed = Callable[[list[Entry], list[NewEntry], SignedHead], None]
"""Called on the event loop after each commit with the stored entries, what they were made
from (openings included) and the head signed over them, before any job's waiter resumes."""

#: Pause after a failed commit before the next attempt (the disk may be full).
COMMIT_RETRY_S = 0.5


@dataclass
class Job:
    """Entries to append in the next group commit (registry changes, or hub-made consent,
    access and erasure entries), the bodies they erase, the openings they forget, and what
    to do on the event loop right after the commit, before anyone awaiting ``done`` resumes."""

    entries: list[NewEntry]
    done: asyncio.Future[list[Entry]]
    erase: list[int] = field(default_factory=list)
    forget: list[int] = field(default_factory=list)
    blind: list[Blinded] = field(default_factory=list)
    committed: Callable[[list[Entry]], None] | None = None
    #: (pilot, subject, Consent) whose data keys go after the commit, and (pilot, type,
    #: day) whose empty keys of earlier days go (LedgerWriter.append).
    erase_scopes: list[tuple[str, str, str]] = field(default_factory=list)
    retire: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass
class _Batch:
    """What the next commit appends, in log order: ``ahead`` (registry changes), the
    records, then ``behind`` (hub-made entries)."""

    ahead: list[Job] = field(default_factory=list)
    records: list[Pending] = field(default_factory=list)
    behind: list[Job] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.ahead or self.records or self.behind)


SeqKey = tuple[str, str, int]
"""(pilot, source, seq): the place in a source's sequence a record claims."""


class ReceiptSink(Protocol):
    """Where a record's receipts go: the hub's MQTT receipt queue, or the front end that
    sent it (``gateway.cluster``), which publishes them."""

    def send(self, topic: str, receipt: Receipt) -> None: ...


@dataclass(frozen=True, slots=True)
class Pending:
    """A verified record on its way to the log: its entry, the receipts topic of the topic
    it came in on, and the sink its receipts go to."""

    entry: NewEntry
    topic: str
    sink: ReceiptSink

    @property
    def columns(self) -> RecordColumns:
        assert self.entry.record is not None
        return self.entry.record

    @classmethod
    def of(cls, v: Verified, sink: ReceiptSink) -> Pending:
        return cls(_record_entry(v), v.receipts_topic, sink)


class InFlight:
    """Records submitted but not yet committed: their ids, with the receipt routes of copies
    that arrived meanwhile, and the sequence numbers they claim."""

    def __init__(self) -> None:
        self._copies: dict[str, list[tuple[str, ReceiptSink]]] = {}
        self._seqs: set[SeqKey] = set()

    def __len__(self) -> int:
        return len(self._copies)

    def hold_copy(self, record_id: str, topic: str, sink: ReceiptSink) -> bool:
        """If ``record_id`` is in flight, keep the copy's route for its duplicate receipt."""
        waiting = self._copies.get(record_id)
        if waiting is None:
            return False
        waiting.append((topic, sink))
        return True

    def claims(self, seq: SeqKey) -> bool:
        return seq in self._seqs

    def take(self, c: RecordColumns) -> None:
        self._copies[c.id] = []
        self._seqs.add((c.pilot, c.source, c.seq))

    def release(self, c: RecordColumns) -> list[tuple[str, ReceiptSink]]:
        """Forget a record (committed or failed); the routes of its copies."""
        self._seqs.discard((c.pilot, c.source, c.seq))
        return self._copies.pop(c.id, [])


def fan_out(
    records: Sequence[Pending],
    stored: Sequence[Entry],
    head: SignedHead,
    in_flight: InFlight,
    cosigned: str | None = None,
) -> list[tuple[ReceiptSink, str, Receipt]]:
    """The receipts of committed records, in order: ``accepted`` to each record's sender,
    then ``duplicate`` (same index) to each copy that arrived while it was in flight."""
    out: list[tuple[ReceiptSink, str, Receipt]] = []
    note = head.note
    for p, entry in zip(records, stored, strict=True):
        c = p.columns
        # Built without validation: every field comes from the store or the signed head.
        fields = {
            "id": c.id,
            "status": "accepted",
            "index": entry.index,
            "leaf_hash": entry.leaf_hash.hex(),
            "checkpoint": note,
            "cosigned": cosigned,
        }
        out.append((p.sink, p.topic, Receipt.model_construct(**fields)))  # type: ignore[arg-type]
        copies = in_flight.release(c)
        if copies:
            duplicate = Receipt.model_construct(**{**fields, "status": "duplicate"})  # type: ignore[arg-type]
            out.extend((sink, topic, duplicate) for topic, sink in copies)
    return out


class Sequencer:
    def __init__(
        self,
        ledger: HubLedger,
        receipts: ReceiptQueue,
        metrics: HubMetrics,
        *,
        max_records: int,
        max_wait_ms: float,
        on_committed: Committed | None = None,
    ) -> None:
        self.ledger = ledger
        self.receipts = receipts
        self.metrics = metrics
        self.max_records = max_records
        self.max_wait = max_wait_ms / 1000
        self.on_committed = on_committed
        #: The newest checkpoint meeting the witness quorum, for receipts (the hub's
        #: witness client sets it; no witnesses: none).
        self.cosigned: Callable[[], str | None] = lambda: None
        # SQLite commits block for an fsync: one thread, so appends stay in order.
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="sequencer")
        self._batch = _Batch()
        self._oldest: float | None = None
        self._in_flight = InFlight()
        self._wake = asyncio.Event()
        self._full = asyncio.Event()
        self._closing = False
        #: Why the ledger cannot be written now (the last commit failed), or None.
        self.write_failure: str | None = ledger.write_failure
        metrics.log_size.set(ledger.writer.size())

    @property
    def healthy(self) -> bool:
        return self.write_failure is None

    # -- intake ---------------------------------------------------------------------------
    def submit(self, v: Verified) -> None:
        """Queue a verified record of this process's intake (receipts to its queue)."""
        self.offer(Pending.of(v, self.receipts))

    def offer(self, p: Pending) -> None:
        """Queue a record, or answer at once if a record in flight has its id or seq (the
        log itself is asked once per batch, just before its commit: :meth:`_settle_used`)."""
        c = p.columns
        if self._in_flight.hold_copy(c.id, p.topic, p.sink):
            return
        if self._in_flight.claims((c.pilot, c.source, c.seq)):
            p.sink.send(p.topic, self._seq_reused(c))
            return
        self._in_flight.take(c)
        self._batch.records.append(p)
        self._arrived()

    def _settle_used(self, records: list[Pending]) -> list[Pending]:
        """Answer the records whose id is on the log already (``duplicate``, to them and
        their copies) or whose seq another record on the log has (``seq_reused``); the rest,
        to commit. Two queries per batch, not two per record."""
        reader = self.ledger.reader
        known = reader.known_records(p.columns.id for p in records)
        used = reader.used_seqs(
            (p.columns.pilot, p.columns.source, p.columns.seq)
            for p in records
            if p.columns.id not in known
        )
        if not known and not used:
            return records
        fresh: list[Pending] = []
        for p in records:
            c = p.columns
            index = known.get(c.id)
            if index is not None:
                self.metrics.duplicates.inc()
                answer = self._duplicate(c.id, index)
            elif (c.pilot, c.source, c.seq) in used:
                answer = self._seq_reused(c)
            else:
                fresh.append(p)
                continue
            copies = self._in_flight.release(c)
            p.sink.send(p.topic, answer)
            for topic, sink in copies:
                self.metrics.duplicates.inc()
                sink.send(topic, answer)
        return fresh

    def _seq_reused(self, c: RecordColumns) -> Receipt:
        self.metrics.rejected.labels("seq_reused").inc()
        detail = f"seq {c.seq} of {c.pilot}/{c.source} is already used by another record"
        return rejected(c.id, "seq_reused", detail)

    async def change_registry(self, entries: Sequence[RegistryEntry]) -> list[Entry]:
        """Append registry entries through the same writer; returns them once committed
        and applied to the registry."""
        return await self.append_registry([NewEntry("registry", e.leaf()) for e in entries])

    async def append_registry(self, entries: Sequence[NewEntry]) -> list[Entry]:
        """Registry entries ahead of the next batch's records, applied to the registry."""
        job = self._job(list(entries), self._apply_registry)
        self._batch.ahead.append(job)
        self._arrived()
        return await job.done

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
        """Append hub-made entries (erasing the records at ``erase`` and forgetting the
        openings at ``forget``; destroying the data keys of ``erase_scopes`` and the empty
        ones ``retire`` names: :meth:`ledger.store.LedgerWriter.append`) in the next group
        commit; returns them once durable.
        ``committed`` runs on the event loop straight after the commit, so state derived
        from the log (consents) never lags what the log says. ``guard`` matters to front
        ends only (``gateway.cluster``): in one process, the callers' locks serialise the
        decisions it names."""
        job = self._job(list(entries), committed, erase)
        job.forget.extend(forget)
        job.blind.extend(blind)
        job.erase_scopes.extend(erase_scopes)
        job.retire.extend(retire)
        self._batch.behind.append(job)
        self._arrived()
        return await job.done

    def _job(
        self,
        entries: list[NewEntry],
        committed: Callable[[list[Entry]], None] | None,
        erase: Sequence[int] = (),
    ) -> Job:
        if self._closing:
            # Worth retrying (on this hub restarted, or another): nothing of it was written.
            raise StorageError("the hub is shutting down")
        loop = asyncio.get_running_loop()
        return Job(entries, loop.create_future(), list(erase), committed=committed)

    def _arrived(self) -> None:
        if self._oldest is None:
            self._oldest = time.monotonic()
        self._wake.set()
        if len(self._batch.records) >= self.max_records:
            self._full.set()

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    # -- the writer loop -------------------------------------------------------------------
    async def run(self) -> None:
        """Commit batches until ``close`` is called and nothing is left."""
        while True:
            if not self._batch:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            if not self._closing and len(self._batch.records) < self.max_records:
                remaining = (self._oldest or 0) + self.max_wait - time.monotonic()
                if remaining > 0:
                    self._full.clear()
                    try:
                        async with asyncio.timeout(remaining):
                            await self._full.wait()
                    except TimeoutError:
                        pass
            await self._commit_next()

    def close(self) -> None:
        """Stop taking records once what is queued is committed."""
        self._closing = True
        self._wake.set()
        self._full.set()

    def _take_batch(self) -> _Batch:
        """Every job and up to ``max_records`` records; the rest wait for the next commit."""
        batch = self._batch
        self._batch = _Batch(records=batch.records[self.max_records :])
        self._oldest = time.monotonic() if self._batch.records else None
        return _Batch(batch.ahead, batch.records[: self.max_records], batch.behind)

    async def _commit_next(self) -> None:
        batch = self._take_batch()
        if batch.records:
            try:
                batch.records = self._settle_used(batch.records)
            except StoreError as exc:
                # The store does not answer (a database restarting): as a failed commit.
                self._failed(batch, exc)
                await asyncio.sleep(COMMIT_RETRY_S)
                return
            if not batch:
                return
        entries = [e for job in batch.ahead for e in job.entries]
        entries.extend(p.entry for p in batch.records)
        entries.extend(e for job in batch.behind for e in job.entries)
        erase = [i for job in (*batch.ahead, *batch.behind) for i in job.erase]
        forget = [i for job in (*batch.ahead, *batch.behind) for i in job.forget]
        blind = [b for job in (*batch.ahead, *batch.behind) for b in job.blind]
        erase_scopes = [s for job in (*batch.ahead, *batch.behind) for s in job.erase_scopes]
        retire = [r for job in (*batch.ahead, *batch.behind) for r in job.retire]
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        try:
            stored = await loop.run_in_executor(
                self.executor,
                partial(
                    self.ledger.writer.append,
                    entries,
                    erase=erase,
                    forget=forget,
                    blind=blind,
                    erase_scopes=erase_scopes,
                    retire=retire,
                ),
            )
        except StoreError as exc:
            self._failed(batch, exc)
            if isinstance(exc, FencedError):
                # Another hub holds the log now (ledger/lease.py): this one stops writing
                # for good; its records come back to the new holder from their agents.
                raise
            await asyncio.sleep(COMMIT_RETRY_S)
            return
        if self.write_failure is not None:
            log.info("the ledger takes writes again")
        self.write_failure = None
        self.metrics.commit_seconds.observe(time.perf_counter() - started)
        if not stored:
            # Jobs with no entries of their own (openings blinded late, keys retired): the
            # log did not grow, so no head to sign.
            _complete(batch.behind, stored, _complete(batch.ahead, stored, 0))
            return
        self.metrics.batch_size.observe(len(stored))
        size = stored[-1].index + 1
        self.metrics.log_size.set(size)
        head = self.ledger.checkpoints.sign(size, self.ledger.writer.current_root())
        self.metrics.checkpoint_signed(head.size)
        # Registry changes first: later records were checked against the older state,
        # which is what the log order says too.
        position = _complete(batch.ahead, stored, 0)
        self._send_receipts(batch.records, stored[position : position + len(batch.records)], head)
        _complete(batch.behind, stored, position + len(batch.records))
        if self.on_committed is not None:
            self.on_committed(stored, entries, head)

    def _apply_registry(self, done: list[Entry]) -> None:
        for entry in done:
            self.ledger.registry.apply(entry.index, _leaf_fields(entry))
            self.metrics.registry_changes.inc()

    def _send_receipts(self, records: list[Pending], stored: list[Entry], head: SignedHead) -> None:
        receipts = fan_out(records, stored, head, self._in_flight, self.cosigned())
        for sink, topic, receipt in receipts:
            sink.send(topic, receipt)
        self.metrics.accepted.inc(len(records))
        self.metrics.duplicates.inc(len(receipts) - len(records))

    def _failed(self, batch: _Batch, exc: StoreError) -> None:
        # No receipt: the agents keep the records and resend them, which is safe because
        # nothing of the batch was written.
        log.error("commit of %d records failed: %s", len(batch.records), exc)
        self.write_failure = str(exc)
        self.metrics.commit_failures.inc()
        for p in batch.records:
            self._in_flight.release(p.columns)
        for job in (*batch.ahead, *batch.behind):
            if not job.done.done():
                job.done.set_exception(exc)

    def _duplicate(self, record_id: str, index: int) -> Receipt:
        head = self.ledger.checkpoints.latest
        covering = head.note if head is not None and head.size > index else None
        return Receipt(
            id=record_id,
            status="duplicate",
            index=index,
            leaf_hash=self.ledger.reader.entry(index).leaf_hash.hex(),
            checkpoint=covering,
            cosigned=self.cosigned(),
        )

    async def persist_checkpoint(self) -> SignedHead | None:
        """Store the latest signed checkpoint if the store lacks it (through the writer
        thread, so it never interleaves with an append)."""
        head = self.ledger.checkpoints.persist_due()
        if head is None:
            return None
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(
            self.executor, self.ledger.writer.add_checkpoint, head.size, head.root, head.note
        )
        self.ledger.checkpoints.persisted(head)
        return head

    def shutdown(self) -> None:
        self.executor.shutdown(wait=True)


def _complete(jobs: list[Job], stored: list[Entry], position: int) -> int:
    """Hand each job its stored entries from ``position`` on; the position after them."""
    for job in jobs:
        done = stored[position : position + len(job.entries)]
        position += len(job.entries)
        if job.committed is not None:
            try:
                job.committed(done)
            except Exception:
                log.exception("applying committed hub entries failed")
        if not job.done.done():
            job.done.set_result(done)
    return position


def _record_entry(v: Verified) -> NewEntry:
    return NewEntry.of_record(v.record, v.leaf, v.payload)


def _leaf_fields(entry: Entry) -> dict[str, Any]:
    value = json.loads(entry.leaf)
    return value if isinstance(value, dict) else {}
