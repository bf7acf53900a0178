"""``swiftchain edge status``: what the outbox says, read on a connection of its own."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import OutboxError
from .outbox import connect

MAX_DEAD_LETTERS_SHOWN = 20


@dataclass(frozen=True)
class DeadLetter:
    seq: int
    id: str
    type: str
    reason: str
    detail: str
    dead_at: float


@dataclass(frozen=True)
class Status:
    outbox_path: str
    depth: int
    oldest_pending_age: float | None
    last_seq: int
    delivered_total: int
    dead_letters_total: int
    dead_letters: list[DeadLetter] = field(default_factory=list)
    last_receipt: dict[str, Any] | None = None
    last_checkpoint: dict[str, Any] | None = None
    proofs_verified: int = 0
    proof_checks_pending: int = 0
    proof_checks_failed: int = 0
    hub_key_pinned: str | None = None
    #: Records the hub accepted that wait for a checkpoint meeting the agent's trust policy
    #: (``hub.require_quorum``), and those among them whose inclusion proof failed.
    awaiting_quorum: int = 0
    oldest_awaiting_quorum_age: float | None = None
    quorum_proofs_failed: int = 0
    quorum_settled_total: int = 0
    #: The newest checkpoint that met the policy: size, root, origin, cosigned, at.
    quorum_checkpoint: dict[str, Any] | None = None
    #: The latest cosigned checkpoint that did not: size, reason, at.
    quorum_refused: dict[str, Any] | None = None

    @property
    def requires_quorum(self) -> bool:
        """Has this outbox been used by an agent that requires the quorum?"""
        return bool(
            self.awaiting_quorum
            or self.quorum_proofs_failed
            or self.quorum_settled_total
            or self.quorum_checkpoint
            or self.quorum_refused
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def read_status(path: Path, now: float | None = None) -> Status:
    """The outbox's state; OutboxError if there is no outbox at ``path``."""
    if not Path(path).is_file():
        raise OutboxError(f"no outbox at {path}; has the agent run with this config?")
    now = time.time() if now is None else now
    conn = connect(Path(path), readonly=True)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not {"meta", "outbox", "dead_letters", "proof_checks"} <= tables:
            raise OutboxError(f"{path} is not an outbox yet (is the agent just starting?)")
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        depth, oldest = conn.execute("SELECT count(*), min(created_at) FROM outbox").fetchone()
        dead_total = conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0]
        dead = [
            DeadLetter(*row)
            for row in conn.execute(
                "SELECT seq, id, type, reason, detail, dead_at FROM dead_letters"
                " ORDER BY dead_at DESC LIMIT ?",
                (MAX_DEAD_LETTERS_SHOWN,),
            )
        ]
        pending, failed = conn.execute(
            "SELECT count(*) FILTER (WHERE failed IS NULL),"
            " count(*) FILTER (WHERE failed IS NOT NULL) FROM proof_checks"
        ).fetchone()
        max_seq = conn.execute(
            "SELECT max(s) FROM (SELECT max(seq) AS s FROM outbox"
            " UNION ALL SELECT max(seq) FROM dead_letters)"
        ).fetchone()[0]
        waiting, waiting_failed, waiting_since = 0, 0, None
        if "awaiting_quorum" in tables:
            waiting, waiting_failed, waiting_since = conn.execute(
                "SELECT count(*) FILTER (WHERE failed IS NULL),"
                " count(*) FILTER (WHERE failed IS NOT NULL), min(since) FROM awaiting_quorum"
            ).fetchone()
    except sqlite3.DatabaseError as exc:
        raise OutboxError(f"{path} is not a readable outbox: {exc}") from None
    finally:
        conn.close()
    return Status(
        outbox_path=str(path),
        depth=int(depth),
        oldest_pending_age=None if oldest is None else max(0.0, now - float(oldest)),
        last_seq=max(int(meta.get("last_seq", 0)), int(max_seq or 0)),
        delivered_total=int(meta.get("delivered_total", 0)),
        dead_letters_total=int(dead_total),
        dead_letters=dead,
        last_receipt=json.loads(meta["last_receipt"]) if "last_receipt" in meta else None,
        last_checkpoint=json.loads(meta["last_checkpoint"]) if "last_checkpoint" in meta else None,
        proofs_verified=int(meta.get("proofs_verified", 0)),
        proof_checks_pending=int(pending),
        proof_checks_failed=int(failed),
        hub_key_pinned=meta.get("hub_verifier_key"),
        awaiting_quorum=int(waiting),
        oldest_awaiting_quorum_age=(
            None if waiting_since is None else max(0.0, now - float(waiting_since))
        ),
        quorum_proofs_failed=int(waiting_failed),
        quorum_settled_total=int(meta.get("quorum_settled_total", 0)),
        quorum_checkpoint=_json(meta.get("quorum_checkpoint")),
        quorum_refused=_json(meta.get("quorum_refused")),
    )


def _json(value: str | None) -> dict[str, Any] | None:
    return None if value is None else dict(json.loads(value))


def _ago(at: float, now: float) -> str:
    return f"{_duration(now - at)} ago"


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}min"
    return f"{seconds / 3600:.1f}h"


def render_status(status: Status, now: float | None = None) -> str:
    now = time.time() if now is None else now
    lines = [
        f"outbox          {status.outbox_path}",
        f"pending         {status.depth}",
        "oldest pending  "
        + ("-" if status.oldest_pending_age is None else _duration(status.oldest_pending_age)),
        f"last seq        {status.last_seq}",
        f"delivered       {status.delivered_total}",
    ]
    r = status.last_receipt
    lines.append(
        "last receipt    "
        + (
            "-"
            if r is None
            else f"{r['status']} {r['id']}"
            + (f" index {r['index']}" if r.get("index") is not None else "")
            + (f" ({r['reason']})" if r.get("reason") else "")
            + f", {_ago(r['at'], now)}"
        )
    )
    c = status.last_checkpoint
    lines.append(
        "last verified checkpoint  "
        + (
            "-"
            if c is None
            else f"{c['origin']} size {c['size']} root {c['root'][:16]}…, {_ago(c['at'], now)}"
        )
    )
    proofs = f"inclusion proofs  {status.proofs_verified} verified, "
    proofs += f"{status.proof_checks_pending} pending"
    if status.proof_checks_failed:
        proofs += f", {status.proof_checks_failed} FAILED"
    lines.append(proofs)
    if status.requires_quorum:
        lines.extend(_quorum_lines(status, now))
    lines.append(f"dead letters    {status.dead_letters_total}")
    for d in status.dead_letters:
        lines.append(
            f"  seq {d.seq} {d.id} {d.type}: {d.reason}: {d.detail} ({_ago(d.dead_at, now)})"
        )
    if status.dead_letters_total > len(status.dead_letters):
        lines.append(f"  ... and {status.dead_letters_total - len(status.dead_letters)} more")
    return "\n".join(lines)


def _quorum_lines(status: Status, now: float) -> list[str]:
    waiting = f"awaiting quorum  {status.awaiting_quorum}"
    if status.oldest_awaiting_quorum_age is not None:
        waiting += f" (oldest {_duration(status.oldest_awaiting_quorum_age)})"
    waiting += f", {status.quorum_settled_total} settled on the quorum"
    if status.quorum_proofs_failed:
        waiting += f", {status.quorum_proofs_failed} inclusion proofs FAILED (kept)"
    lines = [waiting]
    q = status.quorum_checkpoint
    lines.append(
        "quorum checkpoint  "
        + (
            "- (none has met the trust policy yet)"
            if q is None
            else f"{q['origin']} size {q['size']} root {q['root'][:16]}…, cosigned by "
            + (", ".join(q["cosigned"]) or "no witness")
            + f", {_ago(q['at'], now)}"
        )
    )
    r = status.quorum_refused
    if r is not None:
        size = "" if r.get("size") is None else f" size {r['size']}"
        lines.append(f"  last refused{size}: {r['reason']} ({_ago(r['at'], now)})")
    return lines
