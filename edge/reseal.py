"""Re-sealing an outbox with a new key: what a rotation means for an agent's backlog.

The hub judges a source key when it *receives* a record, so records sealed with a key that
was rotated out (or revoked) some time ago are refused, however long ago they were
observed. When the agent starts with a new key it signs again, with that key, every record
its outbox still holds under another one, and brings back from the dead letters those the
hub refused only for their key (``key_not_valid``). Each keeps its id, seq, salt, body and
``observed_at``; the leaf hashes of its earlier seals stay with it, because one of them may
already be on the log (published before the switch, its receipt lost).
"""

from __future__ import annotations

import sqlite3

from ledger.envelope import parse_record

from .errors import OutboxError
from .outbox import Outbox
from .signer import Signer

#: Earlier seals remembered per record (one per key change while it waited).
MAX_EARLIER_SEALS = 8
#: Dead-letter reasons that mean "the key", not "the record": re-sealed with a new key.
KEY_REASONS = ("key_not_valid",)
RESEAL_PAGE = 500


def reseal(outbox: Outbox, signer: Signer) -> tuple[int, int]:
    """Sign again with ``signer`` every waiting record another key signed, and bring back
    to the outbox, re-sealed, every dead letter the hub refused only for its key
    (``key_not_valid``). One transaction; returns (re-sealed, brought back)."""
    conn = outbox.conn
    resealed: list[tuple[bytes, bytes, bytes, int]] = []
    revived: list[tuple[int, str, str, bytes, bytes, float, bytes]] = []
    last = 0
    while True:
        rows = conn.execute(
            "SELECT seq, wire, leaf_hash, earlier_leaf_hashes FROM outbox WHERE seq > ?"
            " ORDER BY seq LIMIT ?",
            (last, RESEAL_PAGE),
        ).fetchall()
        for seq, wire, old_hash, earlier in rows:
            new = signer.reseal(wire)
            if new is not None:
                resealed.append((new.wire, new.leaf_hash, _remember(earlier, old_hash), seq))
        if len(rows) < RESEAL_PAGE:
            break
        last = rows[-1][0]
    marks = ",".join("?" * len(KEY_REASONS))
    last = 0
    while True:
        dead = conn.execute(
            f"SELECT seq, wire, created_at FROM dead_letters WHERE reason IN ({marks})"
            " AND seq > ? ORDER BY seq LIMIT ?",
            (*KEY_REASONS, last, RESEAL_PAGE),
        ).fetchall()
        for seq, wire, created_at in dead:
            new = signer.reseal(wire)
            if new is not None:
                old_hash = _leaf_hash_of(wire, signer)
                row = (seq, new.id, new.type_id, new.leaf_hash, new.wire, created_at, old_hash)
                revived.append(row)
        if len(dead) < RESEAL_PAGE:
            break
        last = dead[-1][0]
    if not resealed and not revived:
        return 0, 0
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "UPDATE outbox SET wire = ?, leaf_hash = ?, earlier_leaf_hashes = ? WHERE seq = ?",
            resealed,
        )
        conn.executemany(
            "INSERT INTO outbox (seq, id, type, leaf_hash, wire, created_at,"
            " earlier_leaf_hashes) VALUES (?, ?, ?, ?, ?, ?, ?)",
            revived,
        )
        conn.executemany("DELETE FROM dead_letters WHERE seq = ?", [(r[0],) for r in revived])
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        n = len(resealed) + len(revived)
        raise OutboxError(f"cannot re-seal {n} records: {exc}") from None
    return len(resealed), len(revived)


def _remember(earlier: bytes, previous: bytes) -> bytes:
    """``earlier`` with ``previous`` added, keeping the last ``MAX_EARLIER_SEALS``."""
    return (earlier + previous)[-32 * MAX_EARLIER_SEALS :]


def _leaf_hash_of(wire: bytes, signer: Signer) -> bytes:
    """A dead letter's leaf hash (the table keeps only its wire), in the tree of the log the
    agent publishes to: its signer's suite's."""
    return signer.suite.tree.leaf(parse_record(wire).header.canonical())
