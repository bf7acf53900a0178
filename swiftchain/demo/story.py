"""The demo's story, checked step by step: what the scenario's scripted queries and the
patient's withdrawal did (through real HTTP during the replay), what the audit shows, the
alliance's witnesses cosigning the log, a tampering attempt on a copy of the ledger caught by
the verifier, the operator's rewrite of history refused by the witnesses, the real ledger green.

Every step states what was expected and what happened; the demo exits 0 only if all hold.
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import aiohttp

from gateway.alliance.submission import request_body
from ledger.checkpoint import Checkpoint, NoteSigner, parse_checkpoint, sign_checkpoint
from ledger.keys import load_private_key
from ledger.keystore import KeyStore
from ledger.policy import TrustPolicy
from ledger.quorum import evaluate
from ledger.store import MAX_ENTRIES_PAGE, LedgerReader
from ledger.tree import root_of
from ledger.verify import VerifyReport, verify_ledger
from simulators.network import Network
from simulators.replay import QueryOutcome, ReplayReport
from witness.store import origin_sha256

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


async def tamper_step(db_path: Path, workdir: Path) -> tuple[StoryStep, Path, int]:
    """The step, the tampered copy and the index edited in it."""
    copy = workdir / "tampered-copy.db"
    index = await asyncio.to_thread(tamper_copy, db_path, copy)
    report = await asyncio.to_thread(verify_ledger, copy)
    found = report.first_bad_index
    step = StoryStep(
        f"Someone edits entry {index} in a copy of the ledger ({copy.name}); "
        "`swiftchain ledger verify` names it.",
        f"tampering caught at index {index}",
        "verifies, tampering missed" if report.ok else f"tampering caught at index {found}",
        (not report.ok) and found == index,
    )
    return step, copy, index


#: How long the story waits for the witnesses to cosign the whole log (rounds are 0.2 s apart).
QUORUM_WAIT_S = 30.0


@dataclass(frozen=True)
class Quorum:
    """The witnesses' cosignature of the log as the hub publishes it, once the wait is over."""

    met: bool
    size: int
    """The published checkpoint's size."""
    log_size: int
    cosigned: tuple[str, ...]
    dashboard_met: bool
    why: tuple[str, ...]


async def _get_json(http: aiohttp.ClientSession, url: str) -> dict[str, object]:
    async with http.get(url) as resp:
        body = await resp.json()
        return body if resp.status == 200 and isinstance(body, dict) else {}


async def wait_for_quorum(http: aiohttp.ClientSession, hub_url: str, policy: TrustPolicy) -> Quorum:
    """Until the checkpoint the hub publishes is of the whole log and meets the quorum, and
    the dashboard says so (bounded by ``QUORUM_WAIT_S``): what it shows then."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + QUORUM_WAIT_S
    while True:
        ready = await _get_json(http, hub_url + "/readyz")
        witnesses = ready.get("witnesses")
        log_size = int(str(ready.get("log_size", 0)))
        async with http.get(hub_url + "/api/v1/ledger/checkpoint") as resp:
            note = await resp.text() if resp.status == 200 else ""
        summary = await _get_json(http, hub_url + "/api/v1/dashboard/summary")
        panel = summary.get("witnesses")
        dashboard_met = isinstance(panel, dict) and bool(panel.get("quorum_met"))
        report = evaluate(policy, note) if note else None
        met = report is not None and report.ok
        size = report.size if report is not None else 0
        if (met and size == log_size and dashboard_met) or loop.time() > deadline:
            why = witnesses.get("why", []) if isinstance(witnesses, dict) else ["no /readyz"]
            return Quorum(
                met,
                size,
                log_size,
                report.cosigned if report is not None else (),
                dashboard_met,
                tuple(str(w) for w in why) if isinstance(why, list) else (),
            )
        await asyncio.sleep(0.1)


async def quorum_step(
    http: aiohttp.ClientSession,
    hub_url: str,
    policy: TrustPolicy,
    operators: dict[str, str],
) -> tuple[StoryStep, Quorum]:
    """The alliance's witnesses, each run by a member organisation, cosign the whole log."""
    quorum = await wait_for_quorum(http, hub_url, policy)
    group = policy.quorum
    k_of_n = _k_of_n(policy)
    by = ", ".join(f"{operators.get(name, '?')}'s {name}" for name in quorum.cosigned)
    if quorum.met:
        observed = (
            f"size {quorum.size:,} of {quorum.log_size:,} cosigned by {by}: quorum {group}"
            f" ({k_of_n}) met" + ("; the dashboard shows it" if quorum.dashboard_met else "")
        )
    else:
        observed = f"quorum {group} not met at size {quorum.size:,}: " + (
            "; ".join(quorum.why) or "no cosignature yet"
        )
    step = StoryStep(
        "The alliance's witnesses (run by " + " and ".join(dict.fromkeys(operators.values())) + ") "
        "cosign the whole log; the hub publishes the checkpoint with their cosignatures.",
        f"quorum {group} ({k_of_n}) met at the log's size {quorum.log_size:,}",
        observed,
        quorum.met and quorum.size == quorum.log_size and quorum.dashboard_met,
    )
    return step, quorum


def _k_of_n(policy: TrustPolicy) -> str:
    group = next((g for g in policy.groups if g.name == policy.quorum), None)
    if group is None:
        return "one witness"
    return f"{group.threshold} of {len(group.members)} organisations"


def forge_checkpoint(copy: Path, size: int, origin: str, signing_key: Path) -> str:
    """What an operator who rewrote the log would show the witnesses: the tree of the first
    ``size`` leaves of the edited ``copy``, its head signed with the hub's own key."""
    with LedgerReader(copy) as reader:
        # From the (edited) leaves themselves: the copy's stored node hashes are the old tree's.
        tree = reader.suite.tree
        hashes = [
            tree.leaf(bytes(e.leaf))
            for start in range(0, size, MAX_ENTRIES_PAGE)
            for e in reader.entries(start, min(start + MAX_ENTRIES_PAGE, size))
        ]
        root = root_of(hashes, tree)
    signer = NoteSigner(origin, load_private_key(signing_key))
    return sign_checkpoint(Checkpoint(origin, size, root), signer)


async def _add_checkpoint(
    http: aiohttp.ClientSession, url: str, old: int, note: str
) -> tuple[int, str]:
    async with http.post(
        url.rstrip("/") + "/add-checkpoint", data=request_body(old, [], note)
    ) as resp:
        return resp.status, (await resp.text()).strip()


async def rewrite_step(
    http: aiohttp.ClientSession,
    copy: Path,
    index: int,
    quorum: Quorum,
    origin: str,
    signing_key: Path,
    witnesses: dict[str, str],
) -> StoryStep:
    """The operator, holding the hub's key, rewrites entry ``index`` (the tampered copy) and
    asks the witnesses to cosign the rewritten log at the size they cosigned. Each answers as
    c2sp.org/tlog-witness prescribes: 409 with its size to an ``old`` that is not it, then 422
    to a checkpoint of that size with another root, a split view; none cosigns it.
    ``witnesses``: each witness's URL by who runs it."""
    note = await asyncio.to_thread(forge_checkpoint, copy, quorum.size, origin, signing_key)
    answers = []
    for name, url in witnesses.items():
        # The forger learns each witness's size as a log does: from its 409 to ``old 0``.
        status, text = await _add_checkpoint(http, url, 0, note)
        if status == 409 and text.isdigit():
            status, text = await _add_checkpoint(http, url, int(text), note)
        answers.append((name, status, text))
    forged_root = parse_checkpoint(note).checkpoint.root_hash
    kept = 0
    for url in witnesses.values():
        # The monitoring read (tlog-witness): what each witness holds as the latest cosigned.
        async with http.get(f"{url}/{origin_sha256(origin)}/checkpoint") as resp:
            latest = await resp.text() if resp.status == 200 else ""
        if latest and parse_checkpoint(latest).checkpoint.root_hash != forged_root:
            kept += 1
    refused = all(status in (409, 422) for _, status, _ in answers)
    observed = "; ".join(
        f"{name}: HTTP {status}" + (f" ({text.splitlines()[0]})" if status != 200 and text else "")
        for name, status, text in answers
    )
    observed += f"; {kept} of {len(witnesses)} still hold the hub's real checkpoint"
    refused = refused and kept == len(witnesses)
    return StoryStep(
        f"The operator rewrites entry {index}, re-signs a checkpoint of size {quorum.size:,}"
        " with the hub's key and submits it to the witnesses (add-checkpoint); they refuse.",
        "every witness refuses (409/422), none cosigns",
        observed if refused else f"cosigned: {observed}",
        refused and bool(answers),
    )


def _verify_with_keys(db_path: Path) -> VerifyReport:
    """Verify the demo's ledger with its key store (the hub's default, beside the file),
    so that the bodies, which are sealed, are checked against their commitments too."""
    with KeyStore.open(db_path.with_name(db_path.name + ".keys")) as keys:
        return verify_ledger(db_path, keys=keys)


async def verify_step(db_path: Path) -> tuple[StoryStep, VerifyReport]:
    report = await asyncio.to_thread(_verify_with_keys, db_path)
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
