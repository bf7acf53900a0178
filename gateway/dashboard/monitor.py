"""The dashboard's one background task: once a second it samples the hub's counters, reads
the entries the newest checkpoint covers that it has not seen yet, folds them into the tally,
re-verifies them, and publishes a fresh snapshot for the summary endpoint and every stream.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections import deque
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from ledger.store import LedgerReader

from ..hub import Hub
from .summary import COUNTER_WINDOW_S, HubSample, build_summary, public_summary
from .tally import CITY_TYPES, LogTally, consent_states, fold, forget_lines
from .verification import IncrementalVerifier

log = logging.getLogger("swiftchain.hub.dashboard")

#: Entries read per query, and the time one tick may spend catching up on a long log.
CHUNK = 5000
CATCH_UP_BUDGET_S = 0.3


class DashboardMonitor:
    def __init__(
        self,
        hub: Hub,
        *,
        interval_s: float = 1.0,
        max_streams: int = 32,
        max_streams_per_peer: int = 4,
    ) -> None:
        self.hub = hub
        self.interval_s = interval_s
        self.max_streams = max_streams
        self.max_streams_per_peer = max_streams_per_peer
        self.streams = 0
        self.streams_by_peer: dict[str, int] = {}
        """Open streams by the peer's address (so that one client cannot hold them all)."""
        self.tally = LogTally()
        self.verifier: IncrementalVerifier | None = None
        self.samples: deque[HubSample] = deque(maxlen=math.ceil(COUNTER_WINDOW_S / interval_s) + 5)
        self.snapshot: dict[str, Any] | None = None
        self.event: bytes = b""
        """The snapshot as one Server-Sent Event, encoded once for every stream."""
        self.public_snapshot: dict[str, Any] | None = None
        self.public_event: bytes = b""
        """The same for streams without the admin token (:func:`public_summary`)."""
        self.version = 0
        self.stopping = False
        self._ticked = asyncio.Event()
        self._head_size: int | None = None
        self._head_since: float | None = None
        self._reader: LedgerReader | None = None
        # SQLite reads and leaf hashing block: one thread of our own, off the event loop,
        # and never the sequencer's.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="dashboard")

    # -- lifecycle -------------------------------------------------------------------------
    def open(self) -> None:
        ledger = self.hub.ledger
        # The process's key store (the access openings and city bodies it shows are sealed).
        self._reader = LedgerReader(self.hub.settings.ledger_location, keys=ledger.reader.keys)
        self.tally.suite = self._reader.suite
        self.verifier = IncrementalVerifier(ledger.verifier, self.hub.settings.origin)
        stored = self._reader.latest_checkpoint()
        head = ledger.checkpoints.latest
        if stored is not None and head is not None and stored.size == head.size:
            self._head_size, self._head_since = head.size, stored.created_at

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.tick()
            except Exception:
                log.exception("dashboard tick failed; retrying next second")

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def end_streams(self) -> None:
        """Let every open stream finish (on shutdown, so the server need not wait)."""
        self.stopping = True
        self._wake()

    # -- one tick --------------------------------------------------------------------------
    async def tick(self) -> None:
        head = self.hub.ledger.checkpoints.latest
        now = time.time()
        if head is not None and head.size != self._head_size:
            self._head_size, self._head_since = head.size, now
        if head is not None:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._executor, self._advance, head.size, head.note)
        self.samples.append(self._sample(time.time()))
        assert self.verifier is not None
        self.snapshot = build_summary(
            origin=self.hub.settings.origin,
            samples=self.samples,
            tally=self.tally,
            verifier=self.verifier,
            head_since=self._head_since,
            witnesses=self._witnesses(),
            suite=self.tally.suite,
        )
        self.version += 1
        self.public_snapshot = public_summary(self.snapshot)
        self.event = _event(self.version, self.snapshot)
        self.public_event = _event(self.version, self.public_snapshot)
        self._wake()

    def _witnesses(self) -> dict[str, Any] | None:
        witnessing = self.hub.witness_status
        if witnessing is None:
            return None
        return witnessing.status(self.hub.ledger.size())

    async def next_tick(self) -> None:
        """Wait for the next snapshot (or shutdown; at most two intervals)."""
        ticked = self._ticked
        try:
            async with asyncio.timeout(2 * self.interval_s):
                await ticked.wait()
        except TimeoutError:
            pass

    def _wake(self) -> None:
        self._ticked.set()
        self._ticked = asyncio.Event()

    def _advance(self, head_size: int, head_note: str) -> None:
        """Fold and verify entries up to the newest checkpoint (in the executor)."""
        assert self._reader is not None and self.verifier is not None
        reader = self._reader
        deadline = time.monotonic() + CATCH_UP_BUDGET_S
        while self.tally.size < head_size and time.monotonic() < deadline:
            start = self.tally.size
            end = head_size
            note: str | None = head_note
            if end - start > CHUNK:
                end, note = start + CHUNK, None
                stored = reader.checkpoint_within(start, end)
                if stored is not None:
                    end, note = stored.size, stored.note
            # Bodies only of the non-personal city records the charts draw: a personal
            # record's body is never read by the dashboard at all.
            rows = reader.tail(start, end, bodies_of=CITY_TYPES)
            if not rows:
                return
            fold(self.tally, rows)
            self.verifier.feed(rows)
            if note is not None and self.verifier.size == end:
                self.verifier.check(note)
        if self.tally.consents_stale:
            self._consents_changed(reader)

    def _consents_changed(self, reader: LedgerReader) -> None:
        """Count the consents again, up to the entries folded (in the executor): a v2 consent
        leaf names its Consent in its opening only, and a withdrawal with erasure blinds the
        openings of the Consent's entries, so no running fold stays right."""
        folded = self.tally.size
        leaves = [(i, leaf) for i, leaf in reader.leaves("consent") if i < folded]
        held = reader.openings([i for i, _ in leaves])
        self.tally.consents = consent_states(leaves, held, reader.suite)
        # An erasure blinds the openings of the person's access entries too: their lines
        # for operators say whom and why no more.
        lines = reader.openings([d.index for d in self.tally.access if d.sealed])
        forget_lines(self.tally, lines)
        self.tally.consents_stale = False

    def _sample(self, at: float) -> HubSample:
        hub, m = self.hub, self.hub.metrics
        # Counted by every process of the hub (the sequencer counts commits and accepted
        # records, each front end its rejections and receipts).
        all_of = m.combined()
        head = hub.ledger.checkpoints.latest
        buckets, commit_sum, commit_count = _histogram(all_of(m.commit_seconds))
        return HubSample(
            at=at,
            log_size=hub.ledger.size(),
            head_size=None if head is None else head.size,
            head_root=None if head is None else head.root,
            persisted_size=max(hub.ledger.checkpoints.persisted_size, 0),
            connected=hub.link.connected.is_set(),
            healthy=hub.sequencer.healthy,
            draining=hub.draining,
            commit_queue=hub.sequencer.in_flight,
            receipt_queue=len(hub.receipts),
            receipts_dropped=_total(all_of(m.receipts_dropped)),
            accepted=_total(all_of(m.accepted)),
            duplicates=_total(all_of(m.duplicates)),
            rejected=_by_label(all_of(m.rejected), "reason"),
            commit_failures=_total(all_of(m.commit_failures)),
            commit_buckets=buckets,
            commit_sum=commit_sum,
            commit_count=commit_count,
            mqtt_errors=_total(all_of(m.mqtt_errors)),
            mqtt_connects=_total(all_of(m.mqtt_connects)),
        )


def _event(version: int, snapshot: dict[str, Any]) -> bytes:
    data = json.dumps(snapshot, separators=(",", ":"))
    return f"id: {version}\nevent: summary\ndata: {data}\n\n".encode()


# -- reading prometheus-client metrics back ----------------------------------------------------


class Collectable(Protocol):
    """A metric, or the same metric summed over the hub's processes."""

    def collect(self) -> Iterable[Any]: ...


def _total(counter: Collectable) -> float:
    for metric in counter.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                return float(sample.value)
    return 0.0


def _by_label(counter: Collectable, label: str) -> dict[str, float]:
    return {
        sample.labels[label]: float(sample.value)
        for metric in counter.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    }


def _histogram(histogram: Collectable) -> tuple[tuple[tuple[float, float], ...], float, float]:
    buckets: list[tuple[float, float]] = []
    total = count = 0.0
    for metric in histogram.collect():
        for sample in metric.samples:
            if sample.name.endswith("_bucket"):
                buckets.append((float(sample.labels["le"]), float(sample.value)))
            elif sample.name.endswith("_sum"):
                total = float(sample.value)
            elif sample.name.endswith("_count"):
                count = float(sample.value)
    return tuple(sorted(buckets)), total, count
