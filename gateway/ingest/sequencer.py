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
from typing import Any

from ledger.entries import RegistryEntry
from ledger.errors import StoreError
from ledger.store import Entry, NewEntry, RecordColumns

from ..errors import NotReady
from ..hub_ledger import HubLedger
from ..metrics import HubMetrics
from .checkpoints import SignedHead
from .checks import Verified
from .receipts import Receipt, ReceiptQueue, rejected

log = logging.getLogger("swiftchain.hub.sequencer")

#: Pause after a failed commit before the next attempt (the disk may be full).
COMMIT_RETRY_S = 0.5


@dataclass
class _RegistryJob:
    entries: list[RegistryEntry]
    done: asyncio.Future[list[Entry]]


@dataclass
class _EntryJob:
    """Hub-made entries (consent, access, erasure), the bodies they erase, and what to do
    on the event loop right after the commit, before anyone awaiting them resumes."""

    entries: list[NewEntry]
    erase: list[int]
    done: asyncio.Future[list[Entry]]
    committed: Callable[[list[Entry]], None] | None = None


@dataclass
class _Batch:
    records: list[Verified] = field(default_factory=list)
    jobs: list[_RegistryJob] = field(default_factory=list)
    entry_jobs: list[_EntryJob] = field(default_factory=list)


class Sequencer:
    def __init__(
        self,
        ledger: HubLedger,
        receipts: ReceiptQueue,
        metrics: HubMetrics,
        *,
        max_records: int,
        max_wait_ms: float,
        on_committed: Callable[[], None] | None = None,
    ) -> None:
        self.ledger = ledger
        self.receipts = receipts
        self.metrics = metrics
        self.max_records = max_records
        self.max_wait = max_wait_ms / 1000
        self.on_committed = on_committed
        # SQLite commits block for an fsync: one thread, so appends stay in order.
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="sequencer")
        self._batch = _Batch()
        self._oldest: float | None = None
        # id -> receipt topics of copies that arrived while the original is in flight.
        self._pending_ids: dict[str, list[str]] = {}
        self._pending_seqs: set[tuple[str, str, int]] = set()
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
        """Queue a verified record, or answer at once if its id or seq is already used."""
        h = v.record.header
        waiting = self._pending_ids.get(h.id)
        if waiting is not None:
            waiting.append(v.receipts_topic)
            return
        reader = self.ledger.reader
        index = reader.record_index(h.id)
        if index is not None:
            self.metrics.duplicates.inc()
            self.receipts.send(v.receipts_topic, self._duplicate(h.id, index))
            return
        seq_key = (h.pilot, h.source, h.seq)
        if seq_key in self._pending_seqs or reader.seq_index(*seq_key) is not None:
            self.metrics.rejected.labels("seq_reused").inc()
            detail = f"seq {h.seq} of {h.pilot}/{h.source} is already used by another record"
            self.receipts.send(v.receipts_topic, rejected(h.id, "seq_reused", detail))
            return
        self._pending_ids[h.id] = []
        self._pending_seqs.add(seq_key)
        self._batch.records.append(v)
        self._arrived()

    async def change_registry(self, entries: Sequence[RegistryEntry]) -> list[Entry]:
        """Append registry entries through the same writer; returns them once committed."""
        if self._closing:
            raise _shutting_down()
        job = _RegistryJob(list(entries), asyncio.get_running_loop().create_future())
        self._batch.jobs.append(job)
        self._arrived()
        return await job.done

    async def append(
        self,
        entries: Sequence[NewEntry],
        *,
        erase: Sequence[int] = (),
        committed: Callable[[list[Entry]], None] | None = None,
    ) -> list[Entry]:
        """Append hub-made entries (and erase bodies) in the next group commit; returns
        them once durable. ``committed`` runs on the event loop straight after the commit,
        so state derived from the log (consents) never lags what the log says."""
        if self._closing:
            raise _shutting_down()
        job = _EntryJob(
            list(entries), list(erase), asyncio.get_running_loop().create_future(), committed
        )
        self._batch.entry_jobs.append(job)
        self._arrived()
        return await job.done

    def _arrived(self) -> None:
        if self._oldest is None:
            self._oldest = time.monotonic()
        self._wake.set()
        if len(self._batch.records) >= self.max_records:
            self._full.set()

    @property
    def in_flight(self) -> int:
        return len(self._pending_ids)

    # -- the writer loop -------------------------------------------------------------------
    async def run(self) -> None:
        """Commit batches until ``close`` is called and nothing is left."""
        while True:
            if not self._batch.records and not self._batch.jobs and not self._batch.entry_jobs:
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

    async def _commit_next(self) -> None:
        batch = self._batch
        records = batch.records[: self.max_records]
        self._batch = _Batch(batch.records[self.max_records :], [])
        self._oldest = time.monotonic() if self._batch.records else None
        jobs = batch.jobs
        entry_jobs = batch.entry_jobs
        entries: list[NewEntry] = [
            NewEntry("registry", e.leaf()) for job in jobs for e in job.entries
        ]
        entries.extend(_record_entry(v) for v in records)
        n_records = len(entries)
        for ej in entry_jobs:
            entries.extend(ej.entries)
        erase = [i for ej in entry_jobs for i in ej.erase]
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        try:
            stored = await loop.run_in_executor(
                self.executor, partial(self.ledger.writer.append, entries, erase=erase)
            )
        except StoreError as exc:
            self._failed(records, jobs, exc)
            for ej in entry_jobs:
                if not ej.done.done():
                    ej.done.set_exception(_unwritable(exc))
            await asyncio.sleep(COMMIT_RETRY_S)
            return
        if self.write_failure is not None:
            log.info("the ledger takes writes again")
        self.write_failure = None
        self.metrics.commit_seconds.observe(time.perf_counter() - started)
        self.metrics.batch_size.observe(len(stored))
        size = stored[-1].index + 1
        self.metrics.log_size.set(size)
        head = self.ledger.checkpoints.sign(size, self.ledger.writer.current_root())
        self.metrics.checkpoint_signed(head.size)
        # Registry changes first: later records were checked against the older state,
        # which is what the log order says too.
        position = 0
        for job in jobs:
            done = stored[position : position + len(job.entries)]
            position += len(job.entries)
            for entry in done:
                self.ledger.registry.apply(entry.index, _leaf_fields(entry))
                self.metrics.registry_changes.inc()
            if not job.done.done():
                job.done.set_result(done)
        self._receipts(records, stored[position:n_records], head)
        position = n_records
        for ej in entry_jobs:
            done = stored[position : position + len(ej.entries)]
            position += len(ej.entries)
            if ej.committed is not None:
                try:
                    ej.committed(done)
                except Exception:
                    log.exception("applying committed hub entries failed")
            if not ej.done.done():
                ej.done.set_result(done)
        if self.on_committed is not None:
            self.on_committed()

    def _receipts(self, records: list[Verified], stored: list[Entry], head: SignedHead) -> None:
        send = self.receipts.send
        accepted = 0
        for v, entry in zip(records, stored, strict=True):
            h = v.record.header
            leaf_hash = entry.leaf_hash.hex()
            send(
                v.receipts_topic,
                Receipt(
                    id=h.id,
                    status="accepted",
                    index=entry.index,
                    leaf_hash=leaf_hash,
                    checkpoint=head.note,
                ),
            )
            accepted += 1
            self._pending_seqs.discard((h.pilot, h.source, h.seq))
            for topic in self._pending_ids.pop(h.id, ()):
                self.metrics.duplicates.inc()
                send(
                    topic,
                    Receipt(
                        id=h.id,
                        status="duplicate",
                        index=entry.index,
                        leaf_hash=leaf_hash,
                        checkpoint=head.note,
                    ),
                )
        self.metrics.accepted.inc(accepted)

    def _failed(self, records: list[Verified], jobs: list[_RegistryJob], exc: StoreError) -> None:
        # No receipt: the agents keep the records and resend them, which is safe because
        # nothing of the batch was written.
        log.error("commit of %d records failed: %s", len(records), exc)
        self.write_failure = str(exc)
        self.metrics.commit_failures.inc()
        for v in records:
            h = v.record.header
            self._pending_ids.pop(h.id, None)
            self._pending_seqs.discard((h.pilot, h.source, h.seq))
        for job in jobs:
            if not job.done.done():
                job.done.set_exception(_unwritable(exc))

    def _duplicate(self, record_id: str, index: int) -> Receipt:
        head = self.ledger.checkpoints.latest
        covering = head.note if head is not None and head.size > index else None
        return Receipt(
            id=record_id,
            status="duplicate",
            index=index,
            leaf_hash=self.ledger.reader.entry(index).leaf_hash.hex(),
            checkpoint=covering,
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


def _unwritable(exc: StoreError) -> NotReady:
    """What an HTTP caller waiting on a failed commit gets: 503, try again later (a full
    disk is the operator's to fix; nothing of the request was written)."""
    return NotReady(f"the ledger cannot be written now: {exc}", code="ledger_unavailable")


def _shutting_down() -> NotReady:
    return NotReady("the hub is shutting down; try again when it is back", code="shutting_down")


def _record_entry(v: Verified) -> NewEntry:
    h = v.record.header
    return NewEntry(
        "record",
        v.leaf,
        sig=v.record.sig,
        record=RecordColumns(
            h.id, h.pilot, h.source, h.seq, h.type, h.subject, h.consent, h.observed_at, h.key
        ),
        payload=v.payload,
        salt=v.record.body.salt,
    )


def _leaf_fields(entry: Entry) -> dict[str, Any]:
    value = json.loads(entry.leaf)
    return value if isinstance(value, dict) else {}
