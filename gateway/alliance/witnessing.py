"""The hub collects cosignatures: each new checkpoint goes to every witness of the trust
policy that has a URL, in parallel; what comes back is verified and published with the
checkpoint, and the newest checkpoint that meets the policy's quorum is what receipts and
agents that require the quorum are given (docs/alliance.md, "The hub and its witnesses").

A round takes the newest signed head at most once per ``witness_interval_s``, so witnesses
see a checkpoint a second or so behind the log, never one request per commit. A witness that
is down or slow costs its own request's timeout and nothing else: ingest never waits for a
round. A witness remembers the last size it cosigned; a hub that does not know it (after a
restart) submits ``old 0`` and learns it from the 409 (c2sp.org/tlog-witness,
"add-checkpoint"), then proves consistency from there. A witness that holds a larger tree
than the hub's is a fork or a rollback: said on /readyz and in the log, and never resolved
by the hub on its own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import aiohttp

from ledger.checkpoint import NoteVerifier
from ledger.cosignature import attach_cosignatures
from ledger.errors import LedgerError
from ledger.policy import TrustPolicy, Witness
from ledger.quorum import QuorumReport, evaluate
from ledger.store import LedgerReader

from ..ingest.checkpoints import Checkpointer, SignedHead
from ..metrics import HubMetrics
from .submission import MAX_ANSWER_BYTES, Behind, Cosigned, Refused, read_answer, request_body

log = logging.getLogger("swiftchain.hub.witnesses")

#: Submissions of one checkpoint to one witness in a round: the first may learn the size
#: (409), the second proves from it; a third 409 means the witness moved meanwhile.
ATTEMPTS = 3


@dataclass
class WitnessState:
    """What the hub knows of one witness, for /readyz, /metrics and the dashboard."""

    witness: Witness
    known_size: int | None = None
    """The witness's latest size as it said (a 200 or a 409); None until it said."""
    cosigned_size: int | None = None
    cosigned_at: float | None = None
    reachable: bool = False
    error: str | None = None

    def public(self, log_size: int, now: float) -> dict[str, Any]:
        w = self.witness
        return {
            "name": w.name,
            "operator": w.operator,
            "url": w.url,
            "reachable": self.reachable,
            "cosigned_size": self.cosigned_size,
            "lag_entries": None if self.cosigned_size is None else log_size - self.cosigned_size,
            "lag_s": None if self.cosigned_at is None else round(now - self.cosigned_at, 1),
            "error": self.error,
        }


@dataclass
class Witnessing:
    policy: TrustPolicy
    log_key: NoteVerifier
    checkpoints: Checkpointer
    reader: LedgerReader
    metrics: HubMetrics
    interval_s: float = 1.0
    timeout_s: float = 5.0
    #: Stores a round's cosigned checkpoint (the ledger writer's ``store_cosigned``).
    persist: Callable[..., None] | None = None
    states: list[WitnessState] = field(default_factory=list)
    #: The newest checkpoint submitted, with every cosignature it got: what is served.
    published: str | None = None
    published_report: QuorumReport | None = None
    published_size: int = 0
    #: The newest checkpoint that met the quorum: what receipts carry.
    quorum_note: str | None = None
    quorum_size: int | None = None
    _round_size: int = -1

    def __post_init__(self) -> None:
        self.states = [WitnessState(w) for w in self.policy.witnesses if w.url]

    def adopt(self, note: str | None) -> None:
        """The quorum checkpoint stored by an earlier run, if it still meets the policy."""
        if note is None:
            return
        try:
            report = evaluate(self.policy, note, log_key=self.log_key)
        except LedgerError:
            return
        if report.ok:
            self.quorum_note, self.quorum_size = note, report.size
            self.published, self.published_report = note, report
            self.published_size = report.size

    # -- the rounds ---------------------------------------------------------------------------
    async def last_round(self) -> None:
        """One more round for the newest checkpoint, at the stop (after the last commit), so
        that a stopped hub's file ends with a checkpoint its witnesses cosigned."""
        head = self.checkpoints.latest
        if head is None or head.size == self._round_size:
            return
        async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout_s)
        ) as http:
            await self.round(http, head)

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while True:
                head = self.checkpoints.latest
                if head is not None and head.size != self._round_size:
                    try:
                        await self.round(http, head)
                    except Exception:
                        log.exception("a witness round failed; the next one retries")
                await asyncio.sleep(self.interval_s)

    async def round(self, http: aiohttp.ClientSession, head: SignedHead) -> None:
        """Submit ``head`` to every witness at once; publish what came back."""
        answers = await asyncio.gather(*(self._submit(http, s, head) for s in self.states))
        lines = [line for got in answers for line in got]
        note = attach_cosignatures(head.note, lines) if lines else head.note
        report = evaluate(self.policy, note, log_key=self.log_key, now=int(time.time()))
        self.published, self.published_report = note, report
        self.published_size = head.size
        if all(s.cosigned_size == head.size for s in self.states):
            self._round_size = head.size  # nothing more to collect for this head
        quorum = report.ok and (self.quorum_size is None or head.size >= self.quorum_size)
        if quorum:
            first = self.quorum_note is None
            self.quorum_note, self.quorum_size = note, head.size
            if first:
                log.info("the witness quorum is met at size %d", head.size)
        if lines and self.persist is not None:
            # The stored checkpoint of this size carries its cosignatures from now on
            # (what `ledger verify --policy` and `ledger prove` read from the file).
            loop = asyncio.get_running_loop()
            store = partial(self.persist, head.size, head.root, note, quorum=quorum)
            try:
                await loop.run_in_executor(None, store)
            except LedgerError as exc:
                log.warning("the cosigned checkpoint %d is not stored: %s", head.size, exc)
        self._observe(report)

    async def _submit(
        self, http: aiohttp.ClientSession, state: WitnessState, head: SignedHead
    ) -> tuple[str, ...]:
        url = _add_checkpoint_url(state.witness.url or "")
        for _ in range(ATTEMPTS):
            old = state.known_size or 0
            if old > head.size:
                error = (
                    f"the witness holds a tree of {old} entries, larger than this log's"
                    f" {head.size}: the log was rolled back or forked"
                )
                if error != state.error:  # said once, not at every round
                    log.error("witness %s: %s", state.witness.name, error)
                state.error = error
                return ()
            try:
                proof = self.reader.consistency_proof(old, head.size) if 0 < old < head.size else []
                body = request_body(old, proof, head.note)
                async with http.post(url, data=body) as resp:
                    raw = await resp.content.read(MAX_ANSWER_BYTES)
                    answer = read_answer(
                        resp.status, resp.content_type, raw, head.note, state.witness.key
                    )
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                state.reachable, state.error = False, f"unreachable: {exc.__class__.__name__}"
                return ()
            except LedgerError as exc:
                state.error = f"no consistency proof from {old}: {exc}"
                return ()
            state.reachable = True
            if isinstance(answer, Behind):
                state.known_size = answer.size
                continue
            if isinstance(answer, Cosigned):
                state.known_size = state.cosigned_size = head.size
                state.cosigned_at, state.error = time.time(), None
                return answer.lines
            assert isinstance(answer, Refused)
            error = f"HTTP {answer.status}: {answer.detail}"
            if error != state.error:  # said once, not at every round
                log.warning("witness %s refused size %d: %s", state.witness.name, head.size, error)
            state.error = error
            return ()
        state.error = "the witness's size kept changing during the round"
        return ()

    # -- what others read ------------------------------------------------------------------------
    def quorum_checkpoint(self) -> str | None:
        """The newest checkpoint that met the quorum (receipts carry it as ``cosigned``)."""
        return self.quorum_note

    def status(self, log_size: int) -> dict[str, Any]:
        """For /readyz and the dashboard: each witness, and the quorum."""
        now = time.time()
        report = self.published_report
        return {
            "quorum": self.policy.quorum,
            "quorum_met": bool(report is not None and report.ok),
            "quorum_size": self.quorum_size,
            "published_size": self.published_size if self.published is not None else None,
            "why": [] if report is None else report.reasons(),
            "witnesses": [s.public(log_size, now) for s in self.states],
        }

    def _observe(self, report: QuorumReport) -> None:
        m = self.metrics
        now = time.time()
        head = self.checkpoints.latest
        for s in self.states:
            name = s.witness.name
            m.witness_up.labels(name).set(1 if s.reachable else 0)
            if s.cosigned_size is not None:
                m.witness_cosigned_size.labels(name).set(s.cosigned_size)
                if head is not None:
                    m.witness_lag_entries.labels(name).set(head.size - s.cosigned_size)
            if s.cosigned_at is not None:
                m.witness_lag_seconds.labels(name).set(now - s.cosigned_at)
        m.witness_quorum_met.set(1 if report.ok else 0)


def _add_checkpoint_url(base: str) -> str:
    """The witness's submission URL: its prefix (the policy's URL) + ``add-checkpoint``."""
    return base.rstrip("/") + "/add-checkpoint"
