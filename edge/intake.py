"""The one way into the outbox: every source calls :meth:`Intake.submit`.

A submission (one HTTP request, one file, a few stream lines) is validated and prepared in
the caller's task, then handed to the committer, which seals the records of many submissions
with consecutive seq numbers and stores them in one durable transaction (group commit: one
fsync for many records). ``submit`` returns once its records are on disk; if any of them is
invalid, it raises InvalidInput and nothing of the submission is stored.

A relayed device record is stored once: its id and the hash of the device's header are
stored with it (the outbox's ``relayed`` table), so the same record again is answered with
the seq it got the first time (``Stored.duplicate``), and another record under that id is
refused (``relay_conflict``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .datatypes import TypeRegistry
from .drafts import Draft, Prepared, drafts_from_json, prepare
from .errors import EdgeError, InvalidInput
from .logs import log
from .outbox import AsyncOutbox, Outbox
from .pseudonym import Pseudonymiser
from .relay import Relay
from .signer import Sealed, Signer

logger = logging.getLogger("edge.intake")

#: Submissions larger than this are validated on a worker thread, not on the event loop.
INLINE_PREPARE = 32


@dataclass(frozen=True)
class Stored:
    """A record now durably in the outbox."""

    id: str
    seq: int
    type_id: str
    #: A device record relayed before: stored then, under ``seq``; nothing stored now.
    duplicate: bool = False


@dataclass(eq=False)
class _Submission:
    records: list[Prepared]
    ingest_key: str | None
    done: asyncio.Future[list[Stored]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


@dataclass
class _Sealing:
    """One submission's part of a batch: its new records, the answer for each of its
    records (new or relayed before), and the (id, origin hash, seq) of what it relays."""

    sealed: list[Sealed] = field(default_factory=list)
    answers: list[Stored] = field(default_factory=list)
    relayed: list[tuple[str, bytes, int]] = field(default_factory=list)


class AlreadyIngested(EdgeError):
    """This submission's idempotency key is already in the outbox (e.g. a file seen before)."""


class Intake:
    def __init__(
        self,
        outbox: AsyncOutbox,
        signer: Signer,
        registry: TypeRegistry,
        pseudonymiser: Pseudonymiser | None,
        *,
        default_consent: str | None = None,
        max_batch: int = 1000,
        relay: Relay | None = None,
    ) -> None:
        self.outbox = outbox
        self.signer = signer
        self.registry = registry
        self.pseudonymiser = pseudonymiser
        self.default_consent = default_consent
        self.relay = relay
        self.max_batch = max_batch
        self._queue: asyncio.Queue[_Submission] = asyncio.Queue()
        #: Set whenever new records are stored; the publisher waits on it.
        self.stored = asyncio.Event()
        self._next_seq: int | None = None
        self.stored_total = 0

    # -- for sources -----------------------------------------------------------------------
    def prepare(self, drafts: Sequence[Draft]) -> list[Prepared]:
        """Validate and prepare every draft; InvalidInput at the first bad one."""
        return [
            prepare(d, self.registry, self.pseudonymiser, self.default_consent, self.relay)
            for d in drafts
        ]

    async def submit(
        self, drafts: Sequence[Draft], *, ingest_key: str | None = None
    ) -> list[Stored]:
        """Store the drafts' records durably; raises InvalidInput (nothing stored) or
        AlreadyIngested (``ingest_key`` was stored before, nothing stored now)."""
        if not drafts:
            raise InvalidInput("empty", "nothing to store")
        if len(drafts) > INLINE_PREPARE:
            # FHIR validation is ~100 µs a resource: keep big Bundles off the event loop.
            prepared = await asyncio.to_thread(self.prepare, drafts)
        else:
            prepared = self.prepare(drafts)
        return await asyncio.shield(self.enqueue(prepared, ingest_key=ingest_key))

    def enqueue(
        self, prepared: list[Prepared], *, ingest_key: str | None = None
    ) -> asyncio.Future[list[Stored]]:
        """Hand prepared records to the committer: what :meth:`submit` does once they are
        prepared, for a source that prepares many submissions itself (the stream source: a
        task per line would cost more than the line). The future is done once they are
        stored (or with the InvalidInput or AlreadyIngested that refused them)."""
        if not prepared:
            raise InvalidInput("empty", "nothing to store")
        submission = _Submission(prepared, ingest_key)
        self._queue.put_nowait(submission)  # unbounded: never full
        return submission.done

    async def submit_json(
        self,
        value: Any,
        *,
        default_type: str | None = None,
        consent: str | None = None,
        ingest_key: str | None = None,
    ) -> list[Stored]:
        drafts = list(drafts_from_json(value, default_type=default_type, consent=consent))
        return await self.submit(drafts, ingest_key=ingest_key)

    # -- the committer ---------------------------------------------------------------------
    async def run(self) -> None:
        """Commit queued submissions until cancelled."""
        if self._next_seq is None:
            self._next_seq = await self.outbox.call(Outbox.last_seq) + 1
        while True:
            batch = [await self._queue.get()]
            size = len(batch[0].records)
            while size < self.max_batch and not self._queue.empty():
                sub = self._queue.get_nowait()
                batch.append(sub)
                size += len(sub.records)
            await self._commit(batch)

    async def _commit(self, batch: list[_Submission]) -> None:
        assert self._next_seq is not None
        first = self._next_seq
        ids = [r.relayed.record_id for s in batch for r in s.records if r.relayed is not None]
        known = await self.outbox.call(Outbox.relayed, ids) if ids else {}
        # Signatures (Ed25519, SM2) and JCS are CPU work: seal on a worker thread so the loop
        # keeps serving.
        plans, failed = await asyncio.to_thread(self._seal_batch, batch, first, known)
        for s, exc in failed.items():
            _fail(s.done, exc)
        ok = [s for s in batch if s in plans]
        keys = [(s.ingest_key, len(plans[s].sealed)) for s in ok if s.ingest_key]
        records = [r for s in ok for r in plans[s].sealed]
        relayed = [row for s in ok for row in plans[s].relayed]
        if not records:
            # Nothing new (every record was relayed before): the answers are the earlier ones.
            for s in ok:
                s.done.set_result(plans[s].answers)
            return
        try:
            seen = await self.outbox.call(_store_new, records, keys, relayed)
        except Exception as exc:
            for s in ok:
                _fail(s.done, exc)
            log(logger, logging.ERROR, "outbox.store_failed", records=len(records), error=str(exc))
            return
        if seen:
            # Some idempotency keys were stored before, so nothing was written: refuse those
            # submissions and commit the others again.
            for s in ok:
                if s.ingest_key in seen:
                    _fail(s.done, AlreadyIngested(s.ingest_key))
            retry = [s for s in ok if not s.done.done()]
            if retry:
                await self._commit(retry)
            return
        self._next_seq = first + len(records)
        self.stored_total += len(records)
        for s in ok:
            if not s.done.done():
                s.done.set_result(plans[s].answers)
        self.stored.set()
        log(logger, logging.DEBUG, "outbox.stored", records=len(records), last_seq=records[-1].seq)

    def _seal_batch(
        self,
        batch: list[_Submission],
        first: int,
        known: dict[str, tuple[bytes, int]],
    ) -> tuple[dict[_Submission, _Sealing], dict[_Submission, InvalidInput]]:
        """Seal each submission with consecutive seqs; a submission that cannot be sealed
        fails alone and leaves its seqs to the next one (no gaps, no reuse). ``known``: the
        (origin hash, seq) of device records relayed before, by id."""
        seq = first
        known = dict(known)
        plans: dict[_Submission, _Sealing] = {}
        failed: dict[_Submission, InvalidInput] = {}
        for s in batch:
            try:
                plan, claimed = self._seal_one(s.records, seq, known)
            except InvalidInput as exc:
                failed[s] = exc
                continue
            known.update(claimed)
            plans[s] = plan
            seq += len(plan.sealed)
        return plans, failed

    def _seal_one(
        self, records: list[Prepared], first: int, known: dict[str, tuple[bytes, int]]
    ) -> tuple[_Sealing, dict[str, tuple[bytes, int]]]:
        plan = _Sealing()
        claimed: dict[str, tuple[bytes, int]] = {}
        for i, record in enumerate(records):
            try:
                relayed = record.relayed
                if relayed is not None:
                    prior = claimed.get(relayed.record_id) or known.get(relayed.record_id)
                    if prior is not None:
                        if prior[0] != relayed.origin_hash:
                            raise InvalidInput(
                                "relay_conflict",
                                f"record {relayed.record_id} was relayed before with other"
                                " content; a device gives every reading an id of its own",
                                status=409,
                            )
                        plan.answers.append(
                            Stored(relayed.record_id, prior[1], record.type_id, duplicate=True)
                        )
                        continue
                sealed = self.signer.seal(record, first + len(plan.sealed))
            except InvalidInput as exc:
                raise exc.at(f"[{i}]") if len(records) > 1 else exc from None
            plan.sealed.append(sealed)
            plan.answers.append(Stored(sealed.id, sealed.seq, sealed.type_id))
            if relayed is not None:
                claimed[relayed.record_id] = (relayed.origin_hash, sealed.seq)
                plan.relayed.append((relayed.record_id, relayed.origin_hash, sealed.seq))
        return plan, claimed


def _fail(future: asyncio.Future[list[Stored]], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


def _store_new(
    outbox: Outbox,
    records: list[Sealed],
    keys: list[tuple[str, int]],
    relayed: list[tuple[str, bytes, int]],
) -> set[str]:
    """Store unless an idempotency key is already there; return the keys that were."""
    seen = {k for k, _ in keys if outbox.ingested(k)}
    if not seen:
        outbox.store(records, keys, relayed)
    return seen
