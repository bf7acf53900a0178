"""From an MQTT message to the sequencer: the cheap checks on the event loop, signatures
and commitments in a thread pool (in chunks, one hand-off per chunk), rejections to a
``rejected`` receipt and the dead-letter table. The one place checks become receipts."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Protocol

from ..metrics import HubMetrics
from ..registry.state import Registry
from .checks import (
    Candidate,
    ConsentCheck,
    Rejected,
    Verified,
    no_consent_check,
    precheck,
    receipts_topic,
    topic_parts,
    verify_chunk,
)
from .deadletters import DeadLetters
from .receipts import ReceiptQueue, rejected
from .validity import DEFAULT_TIME_RULES, TimeRules

log = logging.getLogger("swiftchain.hub.intake")


class Submit(Protocol):
    """Where verified records go: the sequencer, here or over the channel."""

    def submit(self, v: Verified) -> None: ...


def hub_clock() -> datetime:
    return datetime.now(UTC)


class Intake:
    def __init__(
        self,
        registry: Registry,
        sequencer: Submit,
        receipts: ReceiptQueue,
        dead_letters: DeadLetters,
        metrics: HubMetrics,
        *,
        max_bytes: int,
        workers: int,
        chunk: int,
        consent_check: ConsentCheck = no_consent_check,
        rules: TimeRules = DEFAULT_TIME_RULES,
        clock: Callable[[], datetime] = hub_clock,
    ) -> None:
        self.registry = registry
        self.sequencer = sequencer
        self.receipts = receipts
        self.dead_letters = dead_letters
        self.metrics = metrics
        self.max_bytes = max_bytes
        self.workers = workers
        self.chunk = chunk
        self.consent_check = consent_check
        self.rules = rules
        self.clock = clock
        # Ed25519 verification releases the GIL, so these threads run it in parallel (SM2's
        # through gmalglib holds it: on an sm2-sm3 log they take turns). With
        # no threads (a front end among several processes, which are the parallelism), the
        # records taken in one turn of the event loop are verified together on it: no
        # hand-off to a thread and back per chunk.
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="verify") if workers else None
        self._inline_due = False
        self._queue: deque[tuple[Candidate, bytes, str]] = deque()
        self._wake = asyncio.Event()
        self._busy = 0
        self._in_hand = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def offer(self, topic: str, raw: bytes) -> None:
        """Take one message from the broker (synchronously, on the event loop)."""
        # The hub's clock, read on arrival: the record's own times are the signer's claims.
        received_at = self.clock()
        try:
            candidate = precheck(
                topic,
                raw,
                self.registry,
                max_bytes=self.max_bytes,
                received_at=received_at,
                rules=self.rules,
                consent_check=self.consent_check,
            )
        except Rejected as exc:
            self.reject(topic, raw, exc)
            return
        self._queue.append((candidate, raw, topic))
        self._idle.clear()
        if self.pool is None:
            if not self._inline_due:
                self._inline_due = True
                asyncio.get_running_loop().call_soon(self._verify_inline)
            return
        self._wake.set()

    def _verify_inline(self) -> None:
        self._inline_due = False
        while self._queue:
            n = min(self.chunk, len(self._queue))
            items = [self._queue.popleft() for _ in range(n)]
            self._hand_on(items, verify_chunk([c for c, _, _ in items]))
        self._idle.set()

    def _hand_on(
        self, items: list[tuple[Candidate, bytes, str]], results: list[Verified | Rejected]
    ) -> None:
        try:
            for (_, raw, topic), result in zip(items, results, strict=True):
                if isinstance(result, Verified):
                    self.sequencer.submit(result)
                else:
                    self.reject(topic, raw, result)
        except Exception:
            # A bug must not stop ingest: these records get no receipt, so their senders
            # resend them; the log records the failure for the operator.
            log.exception("handing on a chunk of %d records failed", len(items))

    def reject(self, topic: str, raw: bytes, exc: Rejected) -> None:
        """Answer on the receipts topic of the topic the message came in on (never on the
        one its header claims: a spoofed header must not reach another source)."""
        self.metrics.rejected.labels(exc.reason).inc()
        self.dead_letters.add(topic, exc.record_id, exc.reason, exc.detail, raw)
        parts = topic_parts(topic)
        if parts is not None:
            self.receipts.send(
                receipts_topic(*parts), rejected(exc.record_id, exc.reason, exc.detail)
            )

    async def run(self) -> None:
        """Verification workers: each takes a chunk, verifies it in the pool, hands on."""
        if self.pool is None:
            await asyncio.Event().wait()  # verified inline, as records arrive
        async with asyncio.TaskGroup() as tg:
            for _ in range(self.workers):
                tg.create_task(self._worker())

    async def _worker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                if self._busy == 0:
                    self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            n = min(self.chunk, len(self._queue))
            items = [self._queue.popleft() for _ in range(n)]
            self._busy += 1
            self._in_hand += n
            try:
                results = await loop.run_in_executor(
                    self.pool, verify_chunk, [c for c, _, _ in items]
                )
                self._hand_on(items, results)
            except Exception:
                # A bug must not stop ingest: these records get no receipt, so their
                # senders resend them; the log records the failure for the operator.
                log.exception("verifying a chunk of %d records failed", len(items))
            finally:
                self._busy -= 1
                self._in_hand -= n

    @property
    def pending(self) -> int:
        """Messages taken but not yet handed to the sequencer or rejected."""
        return len(self._queue) + self._in_hand

    async def drain(self) -> None:
        """Wait until every offered message is verified and handed on."""
        if self._queue or self._busy:
            self._wake.set()
            await self._idle.wait()

    def shutdown(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
