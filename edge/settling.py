"""Settling receipts: batches of receipts judged and applied to the outbox, and the sampled
inclusion proofs fetched from the hub and checked against the receipt's checkpoint."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter

from ledger.checkpoint import NoteVerifier, verify_checkpoint
from ledger.errors import CheckpointError, ProofError
from ledger.proofs import verify_inclusion
from transport.backoff import backoff_ceiling

from .errors import HubUnavailable, ReceiptError
from .hub import HubClient
from .link import Link
from .logs import log
from .outbox import AsyncOutbox, Outbox
from .receipts import ProofCheck, Receipt, ReceiptJudge, parse_receipt

logger = logging.getLogger("edge.receipts")

MAX_RECEIPT_BATCH = 1000


class Settler:
    """Takes raw receipt messages from the link's queue and settles them in batches."""

    def __init__(
        self,
        outbox: AsyncOutbox,
        judge: ReceiptJudge,
        receipts: asyncio.Queue[bytes],
        link: Link | None = None,
    ) -> None:
        self.outbox = outbox
        self.judge = judge
        self.receipts = receipts
        self.link = link
        self.counts: Counter[str] = Counter()
        #: Receipts by the hub's status (and "malformed"), for the agent's /metrics.
        self.statuses: Counter[str] = Counter()
        #: Set after each applied batch (tests and the bench wait on it).
        self.settled = asyncio.Event()

    async def run(self) -> None:
        while True:
            raw = [await self.receipts.get()]
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
        # Checkpoint signatures are checked on the outbox thread, with the batch's rows.
        result = await self.outbox.call(Outbox.settle, receipts, self.judge)
        left: list[str] = []
        for receipt, verdict in result.verdicts:
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
            for check in due:
                await self.check(check)

    async def check(self, check: ProofCheck) -> None:
        try:
            size, root = check.size, check.root
            fresh = None
            if size is None or root is None:
                cp = verify_checkpoint(await self.hub.checkpoint(), self.verifier)
                size, root = cp.size, cp.root_hash
                fresh = (cp.size, cp.root_hash.hex(), cp.origin)
            proof = await self.hub.inclusion_proof(check.index, size)
            if proof.leaf_hash != check.leaf_hash:
                raise ProofError("the hub's leaf at this index is not this record's")
            verify_inclusion(check.leaf_hash, check.index, size, proof.proof, root)
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
            return
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
            return
        self._attempts.pop(check.record_id, None)
        self.verified += 1
        await self.outbox.call(Outbox.proof_checked, check.record_id, fresh)
        log(logger, logging.DEBUG, "proof.verified", record=check.record_id, index=check.index)
