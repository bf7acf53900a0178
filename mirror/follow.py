"""Following the hub: the loop that turns its public API into a verified copy.

Per c2sp.org/tlog-mirror ("Updating a Mirror"), in three stages, each durable before the
next: (1) the hub's checkpoint, its signature checked against the pinned log key, becomes
the *pending checkpoint* once a consistency proof from the mirror's reference to it verifies
(RFC 9162 2.1.4.2); (2) the entries up to it are fetched a page at a time, each page checked
(:func:`mirror.pages.check_page`, every record signature) and proven a prefix of the pending
checkpoint by a consistency proof from the page's end before it is written, in one
transaction; (3) once every entry is held, the checkpoint is stored and cosigned as the
*mirror checkpoint*. The mirror never signs before its entries are durably committed.

Every hash is the log's crypto suite's, which the pinned log key tells
(:attr:`ledger.checkpoint.NoteVerifier.suite`: SHA-256 for Ed25519, SM3 for SM2): leaf hashes,
consistency proofs, the empty tree, the registry's keys and the mirror's own copy.

A fork (:data:`mirror.plan.Action.FORK`, or a failed consistency proof between two signed
checkpoints) stops following and cosigning for good: both checkpoints are kept as evidence,
in the file's state and in ``fork-evidence.json`` beside it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from ledger.checkpoint import NoteVerifier, verify_checkpoint
from ledger.errors import CheckpointError, ProofError, StoreError
from ledger.proofs import verify_consistency
from ledger.sigcheck import check_signatures
from ledger.verify import RegistryKeys

from .errors import HubFault, HubUnreachable
from .hubapi import HubClient
from .metrics import MirrorMetrics
from .pages import check_page
from .plan import Action, Head, backoff, judge, next_page
from .store import HeldCheckpoint, MirrorStore

log = logging.getLogger("swiftchain.mirror")

EVIDENCE_FILE = "fork-evidence.json"


class Cosigner(Protocol):
    def cosign(self, note: str) -> str:
        """``note`` with this mirror's cosignature line added."""
        ...


class Follower:
    def __init__(
        self,
        store: MirrorStore,
        hub: HubClient,
        log_key: NoteVerifier,
        cosigner: Cosigner,
        metrics: MirrorMetrics,
        *,
        poll_s: float = 2.0,
        max_backoff_s: float = 60.0,
    ) -> None:
        self.store = store
        self.hub = hub
        self.log_key = log_key
        self.cosigner = cosigner
        self.metrics = metrics
        self.poll_s = poll_s
        self.max_backoff_s = max_backoff_s
        # The store's copy is of the same suite (MirrorStore opens it with the key's).
        self.suite = log_key.suite
        self.tree = self.suite.tree
        self.registry = RegistryKeys(self.suite)
        for leaf in store.registry_leaves():
            self.registry.learn(json.loads(leaf))
        self.fork: dict[str, Any] | None = store.fork()
        self.last_error: str | None = None
        self.crashed: str | None = None
        #: Counts what was made durable (pending checkpoints, pages, mirror checkpoints).
        self.progress = 0
        self.hub_size: int | None = None
        #: Poll the hub's checkpoint before the next page (after a failure, a fork may be why).
        self.recheck = False
        self._update_gauges()

    # -- the loop ---------------------------------------------------------------------------
    async def run(self) -> None:
        """Follow until cancelled or until a fork stops it."""
        try:
            await self._run()
        except Exception as exc:
            # A bug, not the hub: say so on /readyz rather than die silently.
            self.crashed = f"{type(exc).__name__}: {exc}"
            log.exception("the follower stopped")
            raise

    async def _run(self) -> None:
        failures = 0
        while self.fork is None:
            before = self.progress
            try:
                idle = await self.step()
            except (HubFault, HubUnreachable, StoreError) as exc:
                failures += 1
                self.last_error = str(exc)
                self.recheck = True
                kind = {HubUnreachable: "unreachable", StoreError: "store"}.get(type(exc), "fault")
                self.metrics.hub_errors.labels(kind).inc()
                self.metrics.hub_up.set(0 if kind == "unreachable" else 1)
                wait = backoff(failures, initial=self.poll_s, maximum=self.max_backoff_s)
                log.warning("%s; again in %.1fs", exc, wait)
                await asyncio.sleep(wait)
                continue
            # A poll that succeeds before the same failure again is no recovery: the wait
            # keeps doubling until something is stored or there is nothing left to do.
            if idle or self.progress != before:
                failures = 0
                self.last_error = None
            self.metrics.hub_up.set(1)
            if idle:
                await asyncio.sleep(self.poll_s)
        log.error("fork: %s; following and cosigning stopped", self.fork.get("reason"))

    async def step(self) -> bool:
        """One unit of progress; True when there is nothing to do until the next poll."""
        pending = self.store.pending()
        if pending is not None and not self.recheck:
            if self.store.stored < pending.head.size:
                await self._fetch_page(pending)
                return False
            await self._commit(pending)
            return False
        self.recheck = False
        return await self._poll()

    # -- stage 1: the hub's checkpoint ------------------------------------------------------
    async def _poll(self) -> bool:
        note = await self.hub.checkpoint()
        try:
            cp = verify_checkpoint(note, self.log_key)
        except CheckpointError as exc:
            raise HubFault(
                f"the hub's checkpoint does not verify under the pinned key: {exc}"
            ) from None
        if cp.origin != self.log_key.name:
            raise HubFault(f"the hub's checkpoint is of origin {cp.origin!r}")
        new = HeldCheckpoint(Head(cp.size, cp.root_hash), note)
        self.hub_size = cp.size
        ref = self.store.reference()
        reference = ref.head if ref is not None else Head(0, self.tree.empty_root)
        stored = self.store.stored
        held_root = self.store.root(cp.size) if cp.size <= stored else None
        verdict = judge(new.head, reference, stored, held_root)
        self._update_gauges()
        if verdict.action is Action.FORK:
            self._forked(verdict.reason, ref, new, None)
            return True
        if verdict.action in (Action.UNCHANGED, Action.BEHIND):
            return self.store.pending() is None
        assert verdict.proof is not None or verdict.action is Action.EXTEND
        if verdict.proof is not None:
            first, second = verdict.proof
            proof = await self.hub.consistency(first, second)
            lower, upper = (reference, new.head) if second == cp.size else (new.head, reference)
            try:
                verify_consistency(first, second, proof, lower.root, upper.root, self.tree)
            except ProofError as exc:
                self._forked(
                    f"the hub's checkpoint at size {cp.size} is not consistent with the one at"
                    f" size {reference.size} the mirror holds: {exc}",
                    ref,
                    new,
                    proof,
                )
                return True
        if verdict.action is Action.EXTEND:
            self.store.set_pending(new)
            self.progress += 1
        return False

    # -- stage 2: entries -------------------------------------------------------------------
    async def _fetch_page(self, pending: HeldCheckpoint) -> None:
        target = pending.head
        page_range = next_page(self.store.stored, target.size)
        assert page_range is not None
        start, end = page_range
        page = await self.hub.entries(start, end)
        if len(page.entries) != end - start:
            raise HubFault(f"asked for entries {start}..{end}, got {len(page.entries)}")
        checked = check_page(start, page.entries, self.registry)
        loop = asyncio.get_running_loop()
        # Ed25519 in libsodium releases the GIL: the loop keeps serving meanwhile. SM2 in
        # gmalglib holds it (ledger/sm2.py): on an sm2-sm3 log answers wait for the page.
        bad = await loop.run_in_executor(None, check_signatures, checked.signatures)
        if bad:
            raise HubFault(f"entry {min(bad)}: the record signature does not verify")
        frontier = self.store.writer.frontier.copy()
        frontier.extend(checked.leaf_hashes)
        root = frontier.root()
        try:
            if end < target.size:
                proof = await self.hub.consistency(end, target.size)
                verify_consistency(end, target.size, proof, root, target.root, self.tree)
            elif root != target.root:
                raise ProofError("the entries do not give the checkpoint's root")
        except ProofError as exc:
            raise HubFault(
                f"entries {start}..{end} are not in the hub's checkpoint at size"
                f" {target.size}: {exc}"
            ) from None
        # One durable transaction (synchronous=FULL): off the loop.
        await loop.run_in_executor(None, self.store.append, checked.entries)
        self.registry = checked.registry
        self.progress += 1
        self.metrics.fetched.inc(len(checked.entries))
        self._update_gauges()

    # -- stage 3: the mirror checkpoint -----------------------------------------------------
    async def _commit(self, pending: HeldCheckpoint) -> None:
        if self.store.current_root() != pending.head.root:
            raise HubFault("the held entries do not give the pending checkpoint's root")
        cosigned = self.cosigner.cosign(pending.note)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.store.commit_checkpoint, pending, cosigned)
        self.progress += 1
        self.metrics.cosignatures.inc()
        self.metrics.last_verified.set(time.time())
        self._update_gauges()
        log.info("holding and cosigning size %d", pending.head.size)

    # -- forks ------------------------------------------------------------------------------
    def _forked(
        self,
        reason: str,
        held: HeldCheckpoint | None,
        hub: HeldCheckpoint,
        proof: list[bytes] | None,
    ) -> None:
        evidence: dict[str, Any] = {
            "detected_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "reason": reason,
            "origin": self.log_key.name,
            "log_key": self.log_key.encode(),
            "held": None if held is None else _head_evidence(held),
            "hub": _head_evidence(hub),
            "stored": self.store.stored,
            "consistency_proof": None if proof is None else [h.hex() for h in proof],
        }
        if hub.head.size <= self.store.stored:
            evidence["held_root_at_hub_size"] = self.store.root(hub.head.size).hex()
        self.store.record_fork(evidence)
        write_evidence(self.store.writer.path.parent / EVIDENCE_FILE, evidence)
        self.fork = evidence
        self._update_gauges()

    def _update_gauges(self) -> None:
        m = self.metrics
        verified = self.store.verified()
        m.stored.set(self.store.stored)
        m.verified.set(verified.head.size if verified else 0)
        m.fork.set(1 if self.fork else 0)
        if self.hub_size is not None:
            m.hub_size.set(self.hub_size)
            m.lag.set(max(0, self.hub_size - self.store.stored))


def _head_evidence(held: HeldCheckpoint) -> dict[str, Any]:
    return {"size": held.head.size, "root": held.head.root.hex(), "note": held.note}


def write_evidence(path: Path, evidence: dict[str, Any]) -> None:
    """Write the evidence file atomically (a reader never sees half of it)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(evidence, fh, indent=2, sort_keys=True)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
