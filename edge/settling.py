"""Settling receipts: batches of receipts judged and applied to the outbox, the sampled
inclusion proofs fetched from the hub and checked against the receipt's checkpoint, and (with
``hub.require_quorum``) the records awaiting quorum settled once a checkpoint that meets the
agent's trust policy covers them and their inclusion in it is proven (edge/quorum.py)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Callable

from ledger.checkpoint import NoteVerifier, parse_checkpoint, verify_checkpoint
from ledger.errors import CheckpointError, ProofError
from ledger.policy import TrustPolicy
from ledger.proofs import verify_inclusion
from transport.backoff import backoff_ceiling

from . import awaiting
from .errors import HubUnavailable, ReceiptError
from .hub import HubClient
from .link import Link
from .logs import log
from .outbox import AsyncOutbox, Outbox
from .quorum import (
    Awaiting,
    Refused,
    TrustedCheckpoint,
    covered,
    extends,
    judge_note,
    newest,
    poll_delay,
)
from .quorum import prove as prove_inclusion
from .receipts import ProofCheck, Receipt, ReceiptJudge, parse_receipt

logger = logging.getLogger("edge.receipts")

MAX_RECEIPT_BATCH = 1000
#: How long the settler lets receipts gather before settling fewer than LINGER_BELOW: a
#: batch costs ~300 µs of CPU whatever its size (the outbox's thread, its transaction, the
#: hub's note checked), and the hub answers every few ms with a few receipts at a time.
SETTLE_LINGER = 0.005
LINGER_BELOW = 100


class Settler:
    """Takes raw receipt messages from the link's queue and settles them in batches."""

    def __init__(
        self,
        outbox: AsyncOutbox,
        judge: ReceiptJudge,
        receipts: asyncio.Queue[bytes],
        link: Link | None = None,
        quorum: QuorumSettler | None = None,
        *,
        linger: float = SETTLE_LINGER,
    ) -> None:
        self.outbox = outbox
        self.judge = judge
        self.receipts = receipts
        self.link = link
        self.linger = linger
        #: Set when the agent requires the quorum: delivered records are held in the outbox
        #: for it, and the receipts' cosigned checkpoints are offered to it.
        self.quorum = quorum
        self.counts: Counter[str] = Counter()
        #: Receipts by the hub's status (and "malformed"), for the agent's /metrics.
        self.statuses: Counter[str] = Counter()
        #: Set after each applied batch (tests and the bench wait on it).
        self.settled = asyncio.Event()

    async def run(self) -> None:
        while True:
            raw = [await self.receipts.get()]
            if self.linger > 0 and self.receipts.qsize() < LINGER_BELOW:
                await asyncio.sleep(self.linger)
            while len(raw) < MAX_RECEIPT_BATCH and not self.receipts.empty():
                raw.append(self.receipts.get_nowait())
            await self.settle(raw)

    async def settle(self, raw: list[bytes]) -> None:
        receipts: list[Receipt] = []
        for message in raw:
            try:
                receipts.append(parse_receipt(message))
            except ReceiptError as exc:
                self.counts["malformed"] += 1
                self.statuses["malformed"] += 1
                log(logger, logging.WARNING, "receipt.malformed", reason=exc.reason)
        if not receipts:
            return
        self.statuses.update(r.status for r in receipts)
        quorum = self.quorum
        if quorum is not None:
            notes = {r.cosigned: None for r in receipts if r.cosigned and r.status != "rejected"}
            for note in notes:
                await quorum.offer(note, "receipt")
        # Checkpoint signatures are checked on the outbox thread, with the batch's rows.
        result = await self.outbox.call(
            Outbox.settle, receipts, self.judge, hold=quorum is not None
        )
        left: list[str] = []
        for receipt, verdict in result.verdicts:
            if verdict.action == "deliver" and quorum is not None:
                if verdict.proof_check is None:
                    # A duplicate without its index: nothing to prove, published again.
                    self.counts["incomplete"] += 1
                    continue
                # Accepted, not yet delivered: no longer in flight, awaiting quorum.
                self.counts["awaiting_quorum"] += 1
                left.append(receipt.id)
                continue
            self.counts[verdict.action] += 1
            if verdict.action == "deliver":
                left.append(receipt.id)
            elif verdict.action == "dead_letter":
                left.append(receipt.id)
                log(
                    logger,
                    logging.WARNING,
                    "record.dead_letter",
                    record=receipt.id,
                    reason=verdict.reason,
                )
            elif verdict.reason != "unknown_record":
                # Not trusted: the record stays in flight and is published again later.
                log(
                    logger,
                    logging.ERROR,
                    "receipt.untrusted",
                    record=receipt.id,
                    status=receipt.status,
                    reason=verdict.reason,
                )
        if self.link is not None:
            self.link.settled(left)
        if quorum is not None:
            quorum.wake.set()
        self.settled.set()


class InclusionChecker:
    """Fetches and checks the inclusion proofs the settler queued, retrying while the hub is
    away; a proof that does not verify is kept as failed and logged as an error."""

    def __init__(
        self,
        outbox: AsyncOutbox,
        hub: HubClient,
        verifier: NoteVerifier,
        *,
        poll: float = 1.0,
        retry_initial: float = 1.0,
        retry_max: float = 300.0,
    ) -> None:
        self.outbox = outbox
        self.hub = hub
        self.verifier = verifier
        #: The log's tree hash (SHA-256 or SM3), as the pinned hub key's suite says.
        self.tree = verifier.suite.tree
        self.poll = poll
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.verified = 0
        self.failed = 0
        self._attempts: Counter[str] = Counter()

    async def run(self) -> None:
        while True:
            due = await self.outbox.call(Outbox.due_proof_checks, time.time(), 100)
            if not due:
                await asyncio.sleep(self.poll)
                continue
            # The verified ones of a round leave in one transaction (one per proof was most
            # of the checker's cost: measured ~100 µs of CPU each).
            verified: list[str] = []
            fresh: list[tuple[int, str, str]] = []
            for check in due:
                if await self._check(check, fresh):
                    verified.append(check.record_id)
            await self.outbox.call(Outbox.proofs_checked, verified, fresh)
            self.verified += len(verified)

    async def check(self, check: ProofCheck) -> None:
        """Fetch and check one record's proof, and record the outcome."""
        fresh: list[tuple[int, str, str]] = []
        if await self._check(check, fresh):
            await self.outbox.call(Outbox.proofs_checked, [check.record_id], fresh)
            self.verified += 1

    async def _check(self, check: ProofCheck, fresh: list[tuple[int, str, str]]) -> bool:
        """True if the proof verified (the caller records it; a checkpoint fetched for it
        is added to ``fresh``); a retry or a failure is recorded here."""
        try:
            size, root = check.size, check.root
            if size is None or root is None:
                cp = verify_checkpoint(await self.hub.checkpoint(), self.verifier)
                size, root = cp.size, cp.root_hash
                fresh.append((cp.size, cp.root_hash.hex(), cp.origin))
            proof = await self.hub.inclusion_proof(check.index, size)
            if proof.leaf_hash != check.leaf_hash:
                raise ProofError("the hub's leaf at this index is not this record's")
            verify_inclusion(check.leaf_hash, check.index, size, proof.proof, root, self.tree)
        except HubUnavailable as exc:
            self._attempts[check.record_id] += 1
            delay = backoff_ceiling(
                self._attempts[check.record_id],
                initial=self.retry_initial,
                maximum=self.retry_max,
                multiplier=2.0,
            )
            await self.outbox.call(Outbox.proof_retry, check.record_id, time.time() + delay)
            log(logger, logging.INFO, "proof.retry", record=check.record_id, error=str(exc))
            return False
        except (ProofError, CheckpointError) as exc:
            self.failed += 1
            await self.outbox.call(Outbox.proof_failed, check.record_id, str(exc))
            log(
                logger,
                logging.ERROR,
                "proof.failed",
                record=check.record_id,
                index=check.index,
                error=str(exc),
            )
            return False
        self._attempts.pop(check.record_id, None)
        log(logger, logging.DEBUG, "proof.verified", record=check.record_id, index=check.index)
        return True


#: Records read (and proofs fetched) per round of the quorum settler at most.
QUORUM_BATCH = 500
#: Inclusion proofs fetched at once.
QUORUM_PROOFS_AT_ONCE = 8


class QuorumSettler:
    """Settles the records awaiting quorum: keeps the newest checkpoint that met the trust
    policy (from receipts' ``cosigned``, or fetched from the hub's
    ``/api/v1/ledger/checkpoint`` while records wait uncovered: every ``interval`` seconds,
    backing off to ``maximum`` while the hub does not answer), proves each covered record's
    inclusion in it, and lets the proven ones leave the outbox. A note that fails the policy
    is never trusted: it is logged with the policy's reasons, and records keep waiting."""

    def __init__(
        self,
        outbox: AsyncOutbox,
        hub: HubClient,
        policy: TrustPolicy,
        verifier: NoteVerifier,
        *,
        interval: float = 2.0,
        maximum: float = 60.0,
        batch: int = QUORUM_BATCH,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.outbox = outbox
        self.hub = hub
        self.policy = policy
        self.verifier = verifier
        #: The log's tree hash (SHA-256 or SM3), as the pinned hub key's suite says.
        self.tree = verifier.suite.tree
        self.interval = interval
        self.maximum = maximum
        self.batch = batch
        self.clock = clock
        #: The newest checkpoint that met the policy.
        self.trusted: TrustedCheckpoint | None = None
        #: Set when a second checkpoint of the held size met the policy under another root:
        #: nothing settles any more (fail closed) until an operator looks.
        self.split_view: str | None = None
        self.wake = asyncio.Event()
        self.settled_total = 0
        self.refused_total = 0
        self.proofs_failed = 0
        self.fetches = 0
        self.fetch_failures = 0
        """Failed fetches in a row (0 while the hub answers)."""
        self._judged: OrderedDict[str, bool] = OrderedDict()
        self._last_refusal = ""
        self._next_fetch = 0.0

    async def offer(self, note: str, came_from: str) -> bool:
        """Judge ``note`` (cosigned by witnesses, say the hub or a receipt) against the
        policy; adopt it when it is trusted and newer. True when it is trusted."""
        known = self._judged.get(note)
        if known is not None:
            self._judged.move_to_end(note)
            return known
        verdict = judge_note(note, self.policy, self.verifier, now=int(self.clock()))
        self._judged[note] = not isinstance(verdict, Refused)
        if len(self._judged) > 64:
            self._judged.popitem(last=False)
        if isinstance(verdict, Refused):
            await self._refused(note, verdict.reason, came_from)
            return False
        held, problem = newest(self.trusted, verdict)
        if problem is None and held is verdict and self.trusted is not None and self.trusted.size:
            # A larger tree is taken only once it is proven to extend the one held (the
            # empty tree is a prefix of every tree: nothing to prove).
            try:
                proof = await self.hub.consistency_proof(self.trusted.size, verdict.size)
            except HubUnavailable as exc:
                self._judged.pop(note, None)  # judged again when it comes back
                log(logger, logging.WARNING, "quorum.consistency_unavailable", detail=str(exc))
                return True
            problem = extends(self.trusted, verdict, proof, self.tree)
            if problem is not None:
                held = self.trusted
        if problem is not None:
            self.split_view = problem
            await self.outbox.call(awaiting.quorum_refused, verdict.size, problem)
            log(logger, logging.ERROR, "quorum.split_view", detail=problem, came_from=came_from)
        if held is not self.trusted and held is not None:
            self.trusted = held
            await self.outbox.call(awaiting.quorum_trusted, held)
            log(
                logger,
                logging.INFO,
                "quorum.checkpoint",
                size=held.size,
                cosigned=",".join(held.cosigned),
                came_from=came_from,
            )
            self.wake.set()
        return True

    async def _refused(self, note: str, reason: str, came_from: str) -> None:
        self.refused_total += 1
        try:
            size: int | None = parse_checkpoint(note).checkpoint.size
        except CheckpointError:
            size = None
        await self.outbox.call(awaiting.quorum_refused, size, reason)
        # Once per distinct reason: the hub's note is refused again at every poll.
        if reason != self._last_refusal:
            self._last_refusal = reason
            log(
                logger,
                logging.WARNING,
                "quorum.refused",
                size=size,
                reason=reason,
                came_from=came_from,
            )

    async def run(self) -> None:
        stored = await self.outbox.call(Outbox.meta, "quorum_note")
        if stored is not None:
            # Judged again: the policy in force now decides, not the one it met then.
            await self.offer(stored, "outbox")
        while True:
            moved = await self.round()
            if moved:
                continue
            # Woken by a receipt or a newly trusted checkpoint; else look again after an
            # interval (a fetch itself is due only at its own, backed-off, time).
            self.wake.clear()
            try:
                await asyncio.wait_for(self.wake.wait(), self.interval)
            except TimeoutError:
                pass

    async def round(self) -> bool:
        """One pass over the due records: fetch a newer trusted checkpoint if some are not
        covered (and a fetch is due), then prove and settle the covered ones. True when a
        record settled or was rescheduled (so another pass may find more)."""
        due = await self.outbox.call(awaiting.awaiting_quorum, self.clock(), self.batch)
        if not due:
            return False
        inside, outside = covered(due, self.trusted)
        if outside and time.monotonic() >= self._next_fetch:
            await self.fetch()
            inside, outside = covered(due, self.trusted)
        if not inside or self.split_view is not None or self.trusted is None:
            return False
        checkpoint = self.trusted
        proven: list[str] = []
        for start in range(0, len(inside), QUORUM_PROOFS_AT_ONCE):
            chunk = inside[start : start + QUORUM_PROOFS_AT_ONCE]
            results = await asyncio.gather(*(self._prove(r, checkpoint) for r in chunk))
            proven.extend(r.record_id for r, ok in zip(chunk, results, strict=True) if ok)
        if proven:
            gone = await self.outbox.call(awaiting.quorum_settled, proven, checkpoint)
            self.settled_total += gone
            log(
                logger,
                logging.INFO,
                "quorum.settled",
                records=gone,
                size=checkpoint.size,
                cosigned=",".join(checkpoint.cosigned),
            )
        return True

    async def fetch(self) -> None:
        """Ask the hub for its newest cosigned checkpoint and offer it."""
        self.fetches += 1
        try:
            note = await self.hub.checkpoint()
        except HubUnavailable as exc:
            self.fetch_failures += 1
            delay = poll_delay(self.fetch_failures, interval=self.interval, maximum=self.maximum)
            self._next_fetch = time.monotonic() + delay
            log(
                logger,
                logging.INFO,
                "quorum.fetch_retry",
                error=str(exc),
                retry_in=round(delay, 3),
            )
            return
        self.fetch_failures = 0
        self._next_fetch = time.monotonic() + self.interval
        await self.offer(note, "hub")

    async def _prove(self, record: Awaiting, checkpoint: TrustedCheckpoint) -> bool:
        try:
            proof = await self.hub.inclusion_proof(record.index, checkpoint.size)
        except HubUnavailable as exc:
            delay = poll_delay(record.attempts + 1, interval=self.interval, maximum=self.maximum)
            await self.outbox.call(awaiting.quorum_retry, record.record_id, self.clock() + delay)
            log(logger, logging.INFO, "quorum.proof_retry", record=record.record_id, error=str(exc))
            return False
        problem = prove_inclusion(
            record,
            checkpoint,
            leaf_hash=proof.leaf_hash,
            index=proof.index,
            size=proof.size,
            proof=proof.proof,
            tree=self.tree,
        )
        if problem is not None:
            self.proofs_failed += 1
            await self.outbox.call(awaiting.quorum_failed, record.record_id, problem)
            log(
                logger,
                logging.ERROR,
                "quorum.proof_failed",
                record=record.record_id,
                index=record.index,
                size=checkpoint.size,
                error=problem,
            )
            return False
        return True
