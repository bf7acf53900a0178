"""The demo's story, checked step by step: what the scenario's scripted queries and the
patient's withdrawal did (through real HTTP during the replay), what the audit shows, a
tampering attempt on a copy of the ledger caught by the verifier, the real ledger green.

Every step states what was expected and what happened; the demo exits 0 only if all hold.
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import aiohttp

from ledger.store import LedgerReader
from ledger.verify import VerifyReport, verify_ledger
from simulators.network import Network
from simulators.replay import QueryOutcome, ReplayReport

AUDITOR_ORG = "health-commission"
AUDITOR = "health-commission-audit"
STORY_PILOT = "chronic-care"


@dataclass(frozen=True)
class StoryStep:
    title: str
    expected: str
    observed: str
    ok: bool


def _story_patient(report: ReplayReport) -> tuple[QueryOutcome, ...]:
    """The chronic-care queries about the story patient, in order."""
    return tuple(
        q for q in report.queries if q.event.pilot == STORY_PILOT and q.event.patient is not None
    )


def query_steps(report: ReplayReport) -> list[StoryStep]:
    steps = []
    for q in report.queries:
        p = q.event.payload
        observed = f"{q.decision} (HTTP {q.status}" + (
            f", {q.records} records)" if q.decision == "allow" else ")"
        )
        steps.append(
            StoryStep(f"{p.story} [{q.client}, {p.purpose}]", p.expect, observed, q.as_expected)
        )
    return steps


def withdrawal_step(report: ReplayReport) -> StoryStep | None:
    about = {q.event.patient for q in _story_patient(report)}
    for w in report.withdrawals:
        if w.event.patient in about:
            return StoryStep(
                "The patient withdraws consent with erasure: the bodies of their records go, "
                "their hashes stay on the log.",
                "withdrawn, bodies erased",
                f"Consent/{w.event.consent} inactive, {w.erased} bodies erased",
                w.erased > 0,
            )
    return None


async def audit_step(
    network: Network, http: aiohttp.ClientSession, report: ReplayReport
) -> StoryStep | None:
    asked = _story_patient(report)
    if not asked or asked[0].event.patient is None:
        return None
    auditor = network.clients.get((STORY_PILOT, AUDITOR))
    if auditor is None:
        return None
    subject = network.pseudonym(STORY_PILOT, asked[0].event.patient)
    status, _, body = await network.call(http, auditor, "GET", f"/api/v1/audit?subject={subject}")
    expected = [(q.decision, q.client) for q in asked]
    if status != 200 or not isinstance(body, dict):
        return StoryStep(
            "The health commission's audit shows every decision about the patient.",
            ", ".join(d for d, _ in expected),
            f"HTTP {status}",
            False,
        )
    seen = [(str(e["decision"]), str(e["client"])) for e in body.get("entries", [])]
    return StoryStep(
        "The health commission's audit shows every decision about the patient, each on the log.",
        " ".join(f"{d}:{c}" for d, c in expected),
        " ".join(f"{d}:{c}" for d, c in seen),
        seen == expected,
    )


def tamper_copy(db_path: Path, copy: Path) -> int:
    """Copy the live ledger (SQLite's online backup) and change the middle record's leaf in
    the copy; the index changed."""
    copy.unlink(missing_ok=True)
    source = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    target = sqlite3.connect(copy)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()
    with LedgerReader(copy) as reader:
        count = sum(1 for _ in reader.leaves("record"))
        index, leaf = next(islice(reader.leaves("record"), count // 2, None))
    # A forger edits what the log says a source sent (the header's sequence number here),
    # in the file itself: no API of the ledger's would write it, which is the point.
    forged = leaf.replace(b'"seq":', b'"seq":9', 1)
    forger = sqlite3.connect(copy)
    try:
        forger.execute("UPDATE entries SET leaf = ? WHERE idx = ?", (forged, index))
        forger.commit()
    finally:
        forger.close()
    return index


async def tamper_step(db_path: Path, workdir: Path) -> StoryStep:
    copy = workdir / "tampered-copy.db"
    index = await asyncio.to_thread(tamper_copy, db_path, copy)
    report = await asyncio.to_thread(verify_ledger, copy)
    found = report.first_bad_index
    return StoryStep(
        f"Someone edits entry {index} in a copy of the ledger ({copy.name}); "
        "`swiftchain ledger verify` names it.",
        f"tampering caught at index {index}",
        "verifies, tampering missed" if report.ok else f"tampering caught at index {found}",
        (not report.ok) and found == index,
    )


async def verify_step(db_path: Path) -> tuple[StoryStep, VerifyReport]:
    report = await asyncio.to_thread(verify_ledger, db_path)
    observed = (
        f"{report.size:,} entries, {report.records:,} records, {report.signatures:,} signatures,"
        f" {report.erased} erased bodies: all verified"
        if report.ok
        else f"{report.problem_count} problems, first at index {report.first_bad_index}"
    )
    step = StoryStep(
        "The real ledger is recomputed from the file alone: leaves, tree, signatures.",
        "verifies",
        observed,
        report.ok,
    )
    return step, report
