"""The outbox's records awaiting quorum (``hub.require_quorum``, edge/quorum.py): accepted
by the hub, still in the outbox, waiting for a checkpoint that meets the agent's trust policy
to cover them and for their inclusion in it to be proven.

Functions of an :class:`~edge.outbox.Outbox`, run on its thread like its methods
(``await outbox.call(awaiting_quorum, now, 100)``). The rows are written by
:meth:`Outbox.settle` with ``hold=True``, in the receipt's transaction.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence

from .errors import OutboxError
from .outbox import Outbox
from .quorum import Awaiting, TrustedCheckpoint


def awaiting_quorum(box: Outbox, now: float, limit: int) -> list[Awaiting]:
    """Records awaiting quorum that are due (not failed), lowest index first."""
    rows = box.conn.execute(
        "SELECT id, seq, idx, leaf_hash, since, attempts FROM awaiting_quorum"
        " WHERE failed IS NULL AND next_at <= ? ORDER BY idx LIMIT ?",
        (now, limit),
    ).fetchall()
    return [Awaiting(rid, seq, idx, bytes(lh), since, n) for rid, seq, idx, lh, since, n in rows]


def quorum_settled(box: Outbox, record_ids: Sequence[str], checkpoint: TrustedCheckpoint) -> int:
    """These records are proven in ``checkpoint``, which met the trust policy: they leave
    the outbox, delivered. Returns how many did."""
    if not record_ids:
        return 0
    rows = [(rid,) for rid in record_ids]
    try:
        box.conn.execute("BEGIN IMMEDIATE")
        before = box.conn.total_changes
        box.conn.executemany("DELETE FROM outbox WHERE id = ?", rows)
        gone = box.conn.total_changes - before
        box.conn.executemany("DELETE FROM awaiting_quorum WHERE id = ?", rows)
        box._bump("delivered_total", gone)
        box._bump("quorum_settled_total", gone)
        _record_quorum(box, checkpoint, time.time())
        box.conn.execute("COMMIT")
    except sqlite3.Error as exc:
        box._rollback()
        raise OutboxError(f"cannot settle {len(rows)} records on the quorum: {exc}") from None
    return gone


def _record_quorum(box: Outbox, checkpoint: TrustedCheckpoint, now: float) -> None:
    current = box.meta("quorum_checkpoint")
    if current is not None and json.loads(current)["size"] >= checkpoint.size:
        return
    value = {
        "size": checkpoint.size,
        "root": checkpoint.root_hash.hex(),
        "origin": checkpoint.origin,
        "cosigned": list(checkpoint.cosigned),
        "at": now,
    }
    box.set_meta("quorum_checkpoint", json.dumps(value))
    box.set_meta("quorum_note", checkpoint.note)


def quorum_trusted(box: Outbox, checkpoint: TrustedCheckpoint) -> None:
    """Remember ``checkpoint`` (met the policy) as the newest trusted one."""
    box.conn.execute("BEGIN IMMEDIATE")
    _record_quorum(box, checkpoint, time.time())
    box.conn.execute("COMMIT")


def quorum_refused(box: Outbox, size: int | None, reason: str) -> None:
    """The latest cosigned checkpoint that did not meet the policy, and why."""
    value = {"size": size, "reason": reason[:4096], "at": time.time()}
    box.set_meta("quorum_refused", json.dumps(value))


def quorum_retry(box: Outbox, record_id: str, next_at: float) -> None:
    box.conn.execute(
        "UPDATE awaiting_quorum SET attempts = attempts + 1, next_at = ? WHERE id = ?",
        (next_at, record_id),
    )


def quorum_failed(box: Outbox, record_id: str, detail: str) -> None:
    """The hub's inclusion proof for this record did not verify: it stays in the
    outbox, never delivered, for an operator to look at."""
    box.conn.execute(
        "UPDATE awaiting_quorum SET failed = ?, attempts = attempts + 1 WHERE id = ?",
        (detail[:4096], record_id),
    )


def quorum_counts(box: Outbox) -> tuple[int, int]:
    """(records awaiting quorum, those whose proof failed)."""
    row = box.conn.execute(
        "SELECT count(*) FILTER (WHERE failed IS NULL),"
        " count(*) FILTER (WHERE failed IS NOT NULL) FROM awaiting_quorum"
    ).fetchone()
    return int(row[0]), int(row[1])
